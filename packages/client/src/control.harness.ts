/**
 * Test-only doubles for the client (STYLE.md habit 11): a fake control server speaking the real
 * gRPC protocol from memory over TLS with a certificate made in the test, a recording logger
 * whose events can be awaited, a TCP echo server and deadline-bounded waits. The fake records
 * anything unexpected instead of guessing. Never imported by product code; @peculiar/x509 is a
 * devDependency of this package only, so the edge install stays clean.
 */
import 'reflect-metadata';

import * as x509 from '@peculiar/x509';
import { KeyObject, createHash, webcrypto } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';

import type { LogFields, Logger } from '@portunus/core';
import {
  CONTROL_SERVICE,
  ENROLLMENT_SERVICE,
  grpc,
  parseBearer,
  type ClientMessage,
  type CredentialBundle,
  type EnrollClientRequest,
  type Hello,
  type RuleStatus,
  type ServerMessage,
  type StatsReport,
  type WireRule,
} from '@portunus/proto';

import type { Bundle } from './bundle.js';

x509.cryptoProvider.set(webcrypto);

export const DEADLINE_MS = 10_000;

/** Change notifications plus "wait until this holds, or fail after a deadline". */
export class Watch {
  private readonly listeners = new Set<() => void>();

  notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  until<T>(check: () => T | undefined, what: string, deadlineMs = DEADLINE_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const listener = (): void => {
        const found = check();
        if (found === undefined) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`timed out after ${deadlineMs} ms waiting for ${what}`));
      }, deadlineMs);
      this.listeners.add(listener);
      listener();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// certificates

export interface TestIdentity {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the certificate DER, lowercase hex. */
  sha256: string;
}

/** A self-signed ECDSA P-256 server certificate for localhost / 127.0.0.1, as the server makes. */
export async function makeIdentity(commonName = 'portunus-test'): Promise<TestIdentity> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: [{ CN: [commonName] }],
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 24 * 3600_000),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: 'dns', value: 'localhost' },
          { type: 'ip', value: '127.0.0.1' },
        ]),
      ],
    },
    webcrypto,
  );
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' });
  return {
    certPem: cert.toString('pem'),
    keyPem: String(keyPem),
    sha256: createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex'),
  };
}

// ---------------------------------------------------------------------------------------------
// the fake control server

type ChannelCall = grpc.ServerDuplexStream<ClientMessage, ServerMessage>;

export type EnrollAnswer = CredentialBundle | { code: grpc.status; details: string };

export interface FakeServerOptions {
  identity: TestIdentity;
  /** Answers an Enroll call; default: refuse every code as enrollment_invalid. */
  enroll?: (code: string) => EnrollAnswer;
  /** A refusal reason for a bearer token (answered UNAUTHENTICATED), or undefined to accept. */
  authorize?: (token: string) => string | undefined;
  /** Send Welcome as soon as Hello arrives (default true). */
  autoWelcome?: boolean;
}

export class FakeSession {
  readonly messages: ClientMessage[] = [];
  readonly watch = new Watch();
  hello: Hello | undefined;
  ended = false;
  private nextRequest = 0;

  constructor(
    readonly token: string,
    private readonly call: ChannelCall,
    private readonly unexpected: string[],
  ) {}

  receive(message: ClientMessage): void {
    if (this.messages.length === 0 && message.payload !== 'hello') {
      this.unexpected.push(`first message was ${String(message.payload)}, not hello`);
    } else if (this.messages.length > 0 && message.payload === 'hello') {
      this.unexpected.push('a second hello');
    }
    if (message.payload === 'hello') this.hello = message.hello;
    this.messages.push(message);
    this.watch.notify();
  }

  send(message: ServerMessage): void {
    this.call.write(message);
  }

  /** `replayIds` given: the Welcome carries a complete replay manifest (newer servers). */
  welcome(udpIdleSecs = 0, udpMaxFlows = 0, replayIds?: string[]): void {
    this.send({
      welcome: {
        server_version: 'fake-0.0.1',
        server_time_unix_ms: Date.now(),
        udp_flow_idle_secs: udpIdleSecs,
        udp_max_flows_per_rule: udpMaxFlows,
        replay_rule_ids: replayIds ?? [],
        replay_manifest: replayIds !== undefined,
      },
    });
  }

  /** Sends a PUSH and returns its request id. */
  push(
    rule: Partial<WireRule> & Pick<WireRule, 'rule_id' | 'listen_port' | 'target_port'>,
  ): string {
    const requestId = `req-${++this.nextRequest}`;
    this.send({
      rule_update: {
        request_id: requestId,
        action: 'PUSH',
        rule: {
          target_host: '127.0.0.1',
          protocol: 'TCP',
          listen_port_end: 0,
          target_port_end: 0,
          targets: [],
          health_check_interval_secs: 0,
          ...rule,
        },
      },
    });
    return requestId;
  }

  remove(ruleId: string): string {
    const requestId = `req-${++this.nextRequest}`;
    this.send({
      rule_update: {
        request_id: requestId,
        action: 'REMOVE',
        rule: {
          rule_id: ruleId,
          listen_port: 0,
          target_host: '',
          target_port: 0,
          protocol: 'PROTOCOL_UNSPECIFIED',
          listen_port_end: 0,
          target_port_end: 0,
          targets: [],
          health_check_interval_secs: 0,
        },
      },
    });
    return requestId;
  }

  status(requestId: string, deadlineMs?: number): Promise<RuleStatus> {
    return this.watch.until(
      () =>
        this.messages.flatMap((m) =>
          m.payload === 'rule_status' && m.rule_status.request_id === requestId
            ? [m.rule_status]
            : [],
        )[0],
      `RuleStatus for ${requestId}`,
      deadlineMs,
    );
  }

  stats(where: (report: StatsReport) => boolean, deadlineMs?: number): Promise<StatsReport> {
    return this.watch.until(
      () =>
        this.messages.flatMap((m) =>
          m.payload === 'stats_report' && where(m.stats_report) ? [m.stats_report] : [],
        )[0],
      'a matching StatsReport',
      deadlineMs,
    );
  }

  /** Ends the stream from the server side with a status, as a real server does. */
  end(code: grpc.status, details: string): void {
    if (this.ended) return;
    this.ended = true;
    this.call.emit('error', { code, details });
  }
}

/** The bundle a test client dials `server` with: pinned to the test identity, token accepted. */
export function bundleFor(server: { endpoint: string }, identity: TestIdentity): Bundle {
  return {
    version: 1,
    client_name: 'edge',
    client_id: '01JCLIENT',
    server_endpoint: server.endpoint,
    server_cert_sha256: identity.sha256,
    token: 'good-token',
  };
}

export class FakeControlServer {
  readonly sessions: FakeSession[] = [];
  readonly enrollCodes: string[] = [];
  readonly unexpected: string[] = [];
  readonly watch = new Watch();
  port = 0;
  private readonly server = new grpc.Server();

  constructor(private readonly options: FakeServerOptions) {
    this.server.addService(CONTROL_SERVICE, {
      Channel: (call: ChannelCall) => {
        this.channel(call);
      },
    });
    this.server.addService(ENROLLMENT_SERVICE, {
      Enroll: (
        call: grpc.ServerUnaryCall<EnrollClientRequest, CredentialBundle>,
        callback: grpc.sendUnaryData<CredentialBundle>,
      ) => {
        this.enrollCodes.push(call.request.code);
        this.watch.notify();
        const answer = this.options.enroll?.(call.request.code) ?? {
          code: grpc.status.UNAUTHENTICATED,
          details: 'enrollment_invalid',
        };
        if ('token' in answer) callback(null, answer);
        else callback(answer);
      },
    });
  }

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const credentials = grpc.ServerCredentials.createSsl(
      null,
      [
        {
          cert_chain: Buffer.from(this.options.identity.certPem),
          private_key: Buffer.from(this.options.identity.keyPem),
        },
      ],
      false,
    );
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync('127.0.0.1:0', credentials, (error, port) => {
        if (error) reject(error);
        else resolve(port);
      });
    });
    return this;
  }

  /** Waits for the n-th (1-based) Channel call that sent its Hello. */
  session(n: number, deadlineMs?: number): Promise<FakeSession> {
    return this.watch.until(
      () => {
        const session = this.sessions[n - 1];
        return session?.hello ? session : undefined;
      },
      `control session #${n}`,
      deadlineMs,
    );
  }

  close(): void {
    this.server.forceShutdown();
  }

  private channel(call: ChannelCall): void {
    const bearer = parseBearer(call.metadata);
    if ('problem' in bearer) {
      this.unexpected.push(`channel without a valid bearer: ${bearer.problem}`);
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: bearer.problem });
      return;
    }
    const refusal = this.options.authorize?.(bearer.token);
    const session = new FakeSession(bearer.token, call, this.unexpected);
    this.sessions.push(session);
    if (refusal !== undefined) {
      session.ended = true;
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: refusal });
      this.watch.notify();
      return;
    }
    call.on('data', (message: ClientMessage) => {
      session.receive(message);
      if (message.payload === 'hello' && this.options.autoWelcome !== false) session.welcome();
      this.watch.notify();
    });
    call.on('error', () => undefined);
    const finish = (): void => {
      session.ended = true;
      session.watch.notify();
      this.watch.notify();
    };
    call.on('cancelled', finish);
    call.on('end', () => {
      finish();
      call.end();
    });
    this.watch.notify();
  }
}

// ---------------------------------------------------------------------------------------------
// logs and sockets

export interface RecordedLine {
  level: string;
  event: string;
  fields: LogFields;
}

export interface RecordingLogger extends Logger {
  readonly lines: RecordedLine[];
  events(): string[];
  waitFor(
    event: string,
    where?: (fields: LogFields) => boolean,
    deadlineMs?: number,
  ): Promise<LogFields>;
  count(event: string): number;
}

export function recordingLogger(): RecordingLogger {
  const lines: RecordedLine[] = [];
  const watch = new Watch();
  const at =
    (level: string) =>
    (event: string, fields: LogFields = {}): void => {
      lines.push({ level, event, fields });
      watch.notify();
    };
  const logger: RecordingLogger = {
    lines,
    events: () => lines.map((line) => line.event),
    count: (event) => lines.filter((line) => line.event === event).length,
    waitFor: (event, where = () => true, deadlineMs) =>
      watch.until(
        () => lines.find((line) => line.event === event && where(line.fields))?.fields,
        `log event ${event}`,
        deadlineMs,
      ),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}

export async function listen(server: net.Server, host = '127.0.0.1', port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as net.AddressInfo).port;
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}

/** A TCP echo server on 127.0.0.1 that tracks its sockets so `close` never hangs. */
export async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  const port = await listen(server);
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await closeServer(server);
    },
  };
}

/** A port that was free a moment ago (bound and released on the dual-stack wildcard). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server, '::');
  await closeServer(server);
  return port;
}

/** Connects, writes `payload`, and resolves with the same number of bytes echoed back. */
export function roundTrip(
  port: number,
  payload: Buffer,
  deadlineMs = DEADLINE_MS,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let received = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`echo through port ${port} timed out`));
    }, deadlineMs);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= payload.length) {
        clearTimeout(timer);
        socket.end();
        resolve(Buffer.concat(chunks));
      }
    });
    socket.write(payload);
  });
}

/** Resolves when a TCP connect to the port is refused (nothing listens any more). */
export function connectRefused(port: number, deadlineMs = DEADLINE_MS): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${port} neither failed nor succeeded`));
    }, deadlineMs);
    socket.on('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(false);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code === 'ECONNREFUSED');
    });
  });
}

/** A connection whose echo of one write has been seen (the caller destroys it). */
export function echoedConnection(port: number, deadlineMs = DEADLINE_MS): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no echo through port ${port}`));
    }, deadlineMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('data', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.write('ping');
  });
}

/** 'reset' when the listener refuses a connection with an RST, 'open' when it echoes. */
export function connectOutcome(port: number, deadlineMs = DEADLINE_MS): Promise<'reset' | 'open'> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${port} was neither reset nor echoed`));
    }, deadlineMs);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ECONNRESET') resolve('reset');
      else reject(error);
    });
    socket.on('data', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('open');
    });
    socket.write('x');
  });
}

/** A UDP echo socket on 127.0.0.1. */
export async function udpEcho(): Promise<{ port: number; close: () => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, remote) => {
    socket.send(message, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    close: () =>
      new Promise<void>((resolve) => {
        socket.close(() => {
          resolve();
        });
      }),
  };
}

/** Sends one datagram to the port and resolves with the first reply. */
export function udpRoundTrip(
  port: number,
  payload: Buffer,
  deadlineMs = DEADLINE_MS,
): Promise<Buffer> {
  const socket = dgram.createSocket('udp4');
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no UDP reply through port ${port}`));
    }, deadlineMs);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('message', (message) => {
      clearTimeout(timer);
      resolve(message);
    });
    socket.send(payload, port, '127.0.0.1');
  }).finally(() => {
    socket.close();
  });
}
