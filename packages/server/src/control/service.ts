/**
 * The control listener: a gRPC server over the pinned TLS identity serving `Control.Channel` (one
 * long-lived stream per client, bearer checked before anything else, reference §4.1/§4.3) and
 * `ClientEnrollment.Enroll` (code → credential bundle, §4.5). It translates between the wire and
 * the fleet and the store; rule semantics live in fleet.ts. No HTTP here.
 */
import type * as http2 from 'node:http2';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';

import type { Database } from 'better-sqlite3';

import { EVENTS, PortunusError, type Logger } from '@portunus/core';
import {
  CONTROL_SERVICE,
  ENROLLMENT_SERVICE,
  grpc,
  parseBearer,
  type ClientMessage,
  type CredentialBundle,
  type EnrollClientRequest,
  type Hello,
  type ServerMessage,
} from '@portunus/proto';
import {
  clientByTokenHash,
  listRules,
  recordClientConnected,
  redeemEnrollment,
} from '@portunus/store';

import type { ListenAddress } from '../config.js';
import { generateSecret, hashSecret, MAX_SECRET_BYTES } from '../identity/secrets.js';
import { formatAddress } from '../listeners.js';
import type { ServerMetrics } from '../metrics.js';
import type { ControlFleet, EndReason, SessionStream } from './fleet.js';

export const SERVER_PROTOCOL_VERSION = '0.1.0';

/** How long a new stream may take to send its Hello before it is served with default caps. */
const HELLO_WAIT_MS = 5_000;

export interface ControlServiceOptions {
  db: Database;
  logger: Logger;
  metrics: ServerMetrics;
  fleet: ControlFleet;
  certPem: string;
  keyPem: string;
  fingerprintSha256: string;
  now: () => number;
  /** The endpoint written into bundles whose enrollment row stored none. */
  fallbackEndpoint: () => string;
  udpFlowIdleSecs: number;
  udpMaxFlowsPerRule: number;
}

export interface ControlService {
  address: ListenAddress;
  /**
   * Ends every client session (they reconnect to the next server), stops accepting, lets calls
   * in flight (an Enroll) finish for up to `graceMs` (default 2 s), then cuts what is left.
   * Resolves true when it had to cut.
   */
  close(graceMs?: number): Promise<boolean>;
}

type ChannelCall = grpc.ServerDuplexStream<ClientMessage, ServerMessage>;

/**
 * The decrypted socket as a plain duplex: node's HTTP/2 session does not read from a server-side
 * TLS socket it did not create itself, but it does serve any JS duplex (through a wrapper socket
 * of its own, whose peer address notePeer fills in).
 */
function asPlainStream(socket: tls.TLSSocket): net.Socket {
  const plain = Duplex.from({ readable: socket, writable: socket }) as unknown as net.Socket;
  Object.defineProperties(plain, {
    setNoDelay: { value: () => plain },
    setKeepAlive: { value: () => plain },
    setTimeout: { value: () => plain },
  });
  plain.on('error', () => undefined);
  plain.on('close', () => socket.destroy());
  return plain;
}

/**
 * Node serves a JS duplex through a wrapper socket of its own (`JSStreamSocket`, which keeps the
 * duplex as `.stream`) that has no peer address, so grpc-js's `call.getPeer()` said "unknown" in
 * logs, in `GET /v1/clients` and in `clients.last_remote_addr`. The wrapper reads its peer from
 * `_peername` when its handle cannot tell, so each new HTTP/2 session of the injector's server is
 * given the address of the TLS socket under it. grpc-js keeps those servers in a private map;
 * hostile.test.ts fails if a grpc-js or Node upgrade moves any of these.
 */
function namePeers(server: grpc.Server, tlsSocketOf: WeakMap<object, tls.TLSSocket>): void {
  const servers = (server as unknown as { http2Servers?: Map<http2.Http2Server, unknown> })
    .http2Servers;
  for (const http2Server of servers?.keys() ?? []) {
    http2Server.on('session', (session: http2.ServerHttp2Session) => {
      const wrapper = session.socket as unknown as { stream?: object; _peername?: object };
      const socket = wrapper.stream === undefined ? undefined : tlsSocketOf.get(wrapper.stream);
      if (socket?.remoteAddress === undefined) return;
      wrapper._peername = {
        address: socket.remoteAddress,
        port: socket.remotePort,
        family: socket.remoteFamily,
      };
    });
  }
}

function endStatus(reason: EndReason): Partial<grpc.StatusObject> {
  if (reason.kind === 'revoked')
    return { code: grpc.status.UNAUTHENTICATED, details: 'token_revoked' };
  if (reason.kind === 'rotated')
    return { code: grpc.status.UNAUTHENTICATED, details: 'token_rotated' };
  return { code: grpc.status.UNAVAILABLE, details: reason.kind };
}

/**
 * Limits of the control listener against slow or hostile peers. The reference has no server.toml
 * keys for them, so they are constants; tests inject short ones. TLS is terminated here (not by
 * grpc-js) because grpc-js exposes neither a handshake timeout nor a connection cap: a peer that
 * opens TCP and never finishes the handshake would otherwise hold a socket for as long as it likes.
 */
export interface ControlListenerLimits {
  /** A peer must finish the TLS handshake within this, or its socket is destroyed. */
  tlsHandshakeTimeoutMs: number;
  /** Sockets still in the TLS handshake beyond this are refused at accept. */
  maxPendingHandshakes: number;
  /** Open sockets beyond this are dropped at accept (node `server.maxConnections`). */
  maxConnections: number;
  /** Largest gRPC message a client may send; larger is RESOURCE_EXHAUSTED, the server stays up. */
  maxReceiveMessageBytes: number;
  /**
   * A connection with no open call for this long is closed (grpc-js `max_connection_idle_ms`,
   * which counts from the TLS handshake too): node's HTTP/2 session waits forever for a truncated
   * preface or a silent peer, so a connection that finished TLS and then stalled, or spoke garbage
   * node never rejects, would otherwise hold a socket past every other limit. A client's control
   * stream is one call that stays open, so it is never idle.
   */
  idleConnectionTimeoutMs: number;
}

export const DEFAULT_CONTROL_LISTENER_LIMITS: ControlListenerLimits = {
  tlsHandshakeTimeoutMs: 10_000,
  maxPendingHandshakes: 1024,
  maxConnections: 10_000,
  // Client messages are Hello, acks and stats; 4 MiB leaves room for stats of many rules.
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  idleConnectionTimeoutMs: 10_000,
};

export async function startControlService(
  listen: ListenAddress,
  options: ControlServiceOptions,
  overrides: Partial<ControlListenerLimits> = {},
): Promise<ControlService> {
  const limits = { ...DEFAULT_CONTROL_LISTENER_LIMITS, ...overrides };
  const server = new grpc.Server({
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    'grpc.max_receive_message_length': limits.maxReceiveMessageBytes,
    // channelz keeps a trace, call counters and a registry entry for every session and call;
    // nothing here reads them, and at thousands of streams they are a sizeable share of memory.
    'grpc.enable_channelz': 0,
    'grpc.max_connection_idle_ms': limits.idleConnectionTimeoutMs,
  });
  // Set by close(): a client whose session was just ended reconnects at once, possibly on the
  // same HTTP/2 connection before grpc-js's GOAWAY reaches it; that call is refused here, or it
  // would hold the drain open until the budget runs out.
  let closing = false;
  server.addService(CONTROL_SERVICE, {
    Channel: (call: ChannelCall) => {
      if (closing) {
        call.emit('error', endStatus({ kind: 'shutdown', terminal: false }));
        return;
      }
      channel(call, options);
    },
  });
  server.addService(ENROLLMENT_SERVICE, {
    Enroll: (
      call: grpc.ServerUnaryCall<EnrollClientRequest, CredentialBundle>,
      callback: grpc.sendUnaryData<CredentialBundle>,
    ) => {
      enroll(call, callback, options);
    },
  });
  // grpc-js speaks HTTP/2 over the already-decrypted socket this listener hands it.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const tlsSocketOf = new WeakMap<object, tls.TLSSocket>();
  namePeers(server, tlsSocketOf);
  const secureContext = tls.createSecureContext({
    cert: options.certPem,
    key: options.keyPem,
    minVersion: 'TLSv1.2',
  });
  const tlsServer = net.createServer();
  tlsServer.maxConnections = limits.maxConnections;
  let pending = 0;
  tlsServer.on('connection', (raw) => {
    raw.on('error', () => undefined);
    if (pending >= limits.maxPendingHandshakes) {
      options.logger.warn(EVENTS.controlHandshakeCapacity, {
        remote_addr: raw.remoteAddress,
        pending,
      });
      raw.destroy();
      return;
    }
    pending += 1;
    let waiting = true;
    const settle = (): void => {
      if (waiting) pending -= 1;
      waiting = false;
      clearTimeout(timer);
    };
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext, ALPNProtocols: ['h2'] });
    // A failed or stalled handshake is the peer's problem: logged at debug, never fatal.
    const fail = (reason: string): void => {
      if (!waiting) return;
      settle();
      options.logger.debug(EVENTS.controlHandshakeFailed, {
        remote_addr: raw.remoteAddress,
        reason,
      });
      socket.destroy();
      raw.destroy();
    };
    const timer = setTimeout(() => {
      fail('handshake_timeout');
    }, limits.tlsHandshakeTimeoutMs);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      fail(error.code ?? error.message);
    });
    socket.once('close', settle);
    socket.once('secure', () => {
      settle();
      // Accepted before close() but secured after it: a session created now would miss the
      // GOAWAY that tryShutdown sent the others and hold the drain open.
      if (closing) {
        socket.destroy();
        raw.destroy();
        return;
      }
      const plain = asPlainStream(socket);
      tlsSocketOf.set(plain, socket);
      injector.injectConnection(plain);
    });
  });
  const target = formatAddress(listen);
  const port = await new Promise<number>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        new PortunusError(
          'listen_failed',
          `cannot bind the control listener on ${target}: ${error.code ?? error.message}`,
          { listener: 'control', address: target },
          { cause: error },
        ),
      );
    };
    tlsServer.once('error', onError);
    tlsServer.listen({ host: listen.host, port: listen.port }, () => {
      tlsServer.off('error', onError);
      resolve((tlsServer.address() as net.AddressInfo).port);
    });
  });
  return {
    address: { host: listen.host, port },
    close: async (graceMs = 2_000) => {
      closing = true;
      options.fleet.shutdown();
      tlsServer.close();
      return new Promise<boolean>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve(true);
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve(false);
        });
      });
    },
  };
}

function channel(call: ChannelCall, options: ControlServiceOptions): void {
  const { db, logger, metrics, fleet } = options;
  const remoteAddr = call.getPeer();
  const refuse = (reason: string): void => {
    metrics.authFailures.inc({ reason });
    logger.warn(EVENTS.authFailure, { reason, remote_addr: remoteAddr });
    call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: reason });
  };
  const bearer = parseBearer(call.metadata);
  if ('problem' in bearer) {
    refuse(bearer.problem);
    return;
  }
  const client = clientByTokenHash(db, hashSecret(bearer.token));
  if (!client) {
    refuse('token_not_found');
    return;
  }
  if (client.revokedAt !== null) {
    refuse('token_revoked');
    return;
  }

  let ended = false;
  const stream: SessionStream = {
    send: (message) => {
      if (!ended) call.write(message);
    },
    end: (reason) => {
      if (ended) return;
      ended = true;
      call.emit('error', endStatus(reason));
    },
  };
  let session: ReturnType<ControlFleet['open']> | undefined;
  const start = (hello: Hello | undefined): NonNullable<typeof session> => {
    clearTimeout(helloTimer);
    const opened = fleet.open(
      { clientId: client.clientId, clientName: client.clientName, remoteAddr },
      hello,
      stream,
    );
    session = opened;
    recordClientConnected(db, client.clientId, remoteAddr, options.now());
    logger.info(EVENTS.clientConnected, {
      client_id: client.clientId,
      client_name: client.clientName,
      remote_addr: remoteAddr,
      client_version: hello?.client_version ?? '',
      protocols: [...opened.caps.protocols],
    });
    if (!hello) logger.warn(EVENTS.clientHelloMissing, { client_id: client.clientId });
    const plan = fleet.planReplay(opened, listRules(db, { clientId: client.clientId }));
    stream.send({
      welcome: {
        server_version: SERVER_PROTOCOL_VERSION,
        server_time_unix_ms: options.now(),
        udp_flow_idle_secs: options.udpFlowIdleSecs,
        udp_max_flows_per_rule: options.udpMaxFlowsPerRule,
        replay_rule_ids: plan.rules.map((rule) => String(rule.ruleId)),
        replay_manifest: true,
      },
    });
    fleet.replayQuotas(opened);
    fleet.sendReplay(opened, plan.rules);
    logger.info(EVENTS.rulesReplayed, {
      client_id: client.clientId,
      replayed: plan.rules.length,
      gated: plan.gated,
    });
    return opened;
  };
  const helloTimer = setTimeout(() => start(undefined), HELLO_WAIT_MS);

  call.on('data', (message: ClientMessage) => {
    if (!session) {
      if (message.payload === 'hello') {
        start(message.hello);
        return;
      }
      start(undefined);
    }
    const live = session;
    if (!live) return;
    if (message.payload === 'rule_status') fleet.status(live, message.rule_status);
    else if (message.payload === 'stats_report') fleet.report(live, message.stats_report);
    else if (message.payload === 'hello') {
      logger.info(EVENTS.clientHelloAfterWelcome, { client_id: client.clientId });
    }
  });
  const finish = (): void => {
    clearTimeout(helloTimer);
    if (session) {
      const wasLive = fleet.isConnected(client.clientId);
      fleet.close(session);
      if (wasLive) {
        logger.info(EVENTS.clientDisconnected, {
          client_id: client.clientId,
          client_name: client.clientName,
        });
      }
      session = undefined;
    }
    if (!ended) {
      ended = true;
      call.end();
    }
  };
  call.on('end', finish);
  call.on('cancelled', finish);
  call.on('error', () => {
    clearTimeout(helloTimer);
    if (session) fleet.close(session);
  });
}

function enroll(
  call: grpc.ServerUnaryCall<EnrollClientRequest, CredentialBundle>,
  callback: grpc.sendUnaryData<CredentialBundle>,
  options: ControlServiceOptions,
): void {
  const code = call.request.code;
  const fail = (reason: string): void => {
    options.logger.warn(EVENTS.authFailure, { reason, remote_addr: call.getPeer(), rpc: 'enroll' });
    callback({ code: grpc.status.UNAUTHENTICATED, details: reason });
  };
  if (code === '' || Buffer.byteLength(code) > MAX_SECRET_BYTES) {
    fail('enrollment_invalid');
    return;
  }
  const token = generateSecret();
  let redeemed: ReturnType<typeof redeemEnrollment>;
  try {
    redeemed = redeemEnrollment(options.db, {
      codeHash: hashSecret(code),
      tokenHash: hashSecret(token),
      now: options.now(),
    });
  } catch (error) {
    if (error instanceof PortunusError && error.code.startsWith('enrollment_')) {
      fail(error.code);
      return;
    }
    options.logger.error(EVENTS.unexpectedError, { error: String(error), rpc: 'enroll' });
    callback({ code: grpc.status.INTERNAL, details: 'internal_error' });
    return;
  }
  if (redeemed.existed) {
    options.fleet.disconnect(redeemed.clientId, 'rotated');
    options.logger.info(EVENTS.clientEnrollmentRotated, { client_id: redeemed.clientId });
  }
  options.logger.info(EVENTS.clientEnrollmentRedeemed, {
    client_id: redeemed.clientId,
    client_name: redeemed.clientName,
    remote_addr: call.getPeer(),
  });
  callback(null, {
    version: 1,
    client_name: redeemed.clientName,
    server_endpoint: redeemed.advertisedEndpoint ?? options.fallbackEndpoint(),
    server_cert_sha256: options.fingerprintSha256,
    token,
    client_id: redeemed.clientId,
  });
}
