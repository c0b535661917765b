/**
 * A real control listener on loopback for hostile-peer and fuzz tests: a store on disk, the
 * server's generated identity, the fleet and `startControlService` with short limits, plus raw
 * ways in — TCP, finished TLS, an HTTP/2 session, a hand-framed gRPC call — and the proof that
 * it still serves a real gRPC client and logged no error. Tests only; it depends on the control
 * service, the store and proto, never on the operator API.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';

import { silentLogger, type LogFields, type Logger } from '@portunus/core';
import {
  CONTROL_SERVICE,
  ENROLLMENT_SERVICE,
  EnrollmentClient,
  grpc,
  type CredentialBundle,
} from '@portunus/proto';
import { openStore, type Store } from '@portunus/store';
import { tempDirs } from '@portunus/test-support';

import { createServerMetrics } from '../metrics.js';
import { loadOrCreateServerIdentity, type ServerIdentity } from '../tls/certificate.js';
import { ControlFleet } from './fleet.js';
import { startControlService, type ControlListenerLimits, type ControlService } from './service.js';

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const SETTINGS_FRAME = 0x4;

const pathOf = (service: unknown, method: string): string =>
  (service as Record<string, { path: string }>)[method]!.path;
export const ENROLL_PATH = pathOf(ENROLLMENT_SERVICE, 'Enroll');
export const CHANNEL_PATH = pathOf(CONTROL_SERVICE, 'Channel');

/** An HTTP/2 frame header + payload (RFC 9113 §4.1). */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** A gRPC length-prefixed message (uncompressed). */
export function grpcFrame(payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

export const closed = (socket: net.Socket): Promise<void> =>
  new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else
      socket.once('close', () => {
        resolve();
      });
  });

interface Line {
  event: string;
  fields: LogFields;
}

export class ControlListenerHarness {
  private readonly sockets: net.Socket[] = [];
  private readonly clients: grpc.Client[] = [];
  private readonly sessions: http2.ClientHttp2Session[] = [];

  private constructor(
    readonly store: Store,
    readonly identity: ServerIdentity,
    readonly service: ControlService,
    /** What the listener logged at error and warn level, in order. */
    readonly errors: Line[],
    readonly warnings: Line[],
    private readonly dirs: ReturnType<typeof tempDirs>,
  ) {}

  static async start(limits: Partial<ControlListenerLimits>): Promise<ControlListenerHarness> {
    const errors: Line[] = [];
    const warnings: Line[] = [];
    const logger: Logger = {
      ...silentLogger,
      warn: (event, fields = {}) => {
        warnings.push({ event, fields });
      },
      error: (event, fields = {}) => {
        errors.push({ event, fields });
      },
    };
    const dirs = tempDirs();
    const dataDir = dirs.make('portunus-control-listener-');
    const store = openStore(dataDir);
    const identity = await loadOrCreateServerIdentity({ dataDir, logger, hostname: 'localhost' });
    const metrics = createServerMetrics({ collectProcessMetrics: false });
    const fleet = new ControlFleet({ db: store.db, logger, metrics, now: Date.now });
    const service = await startControlService(
      { host: '127.0.0.1', port: 0 },
      {
        db: store.db,
        logger,
        metrics,
        fleet,
        certPem: identity.certPem,
        keyPem: identity.keyPem,
        fingerprintSha256: identity.fingerprintSha256,
        now: Date.now,
        fallbackEndpoint: () => '127.0.0.1:1',
        udpFlowIdleSecs: 45,
        udpMaxFlowsPerRule: 512,
      },
      limits,
    );
    return new ControlListenerHarness(store, identity, service, errors, warnings, dirs);
  }

  get port(): number {
    return this.service.address.port;
  }

  /** A TCP connection with nothing sent. */
  openRaw(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.port, '127.0.0.1', () => {
        resolve(socket);
      });
      socket.on('error', reject);
      this.sockets.push(socket);
    });
  }

  /** A finished TLS handshake (ALPN h2, as a real client offers) with nothing sent after it. */
  openTls(): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: this.port,
        ca: this.identity.certPem,
        servername: 'localhost',
        ALPNProtocols: ['h2'],
        checkServerIdentity: () => undefined,
      });
      socket.once('secureConnect', () => {
        resolve(socket);
      });
      socket.on('error', reject);
      socket.on('data', () => undefined);
      this.sockets.push(socket);
    });
  }

  /** An HTTP/2 session over pinned TLS; destroyed in close(). */
  h2(): http2.ClientHttp2Session {
    const session = http2.connect(`https://127.0.0.1:${this.port}`, {
      ca: this.identity.certPem,
      servername: 'localhost',
      checkServerIdentity: () => undefined,
    });
    session.on('error', () => undefined);
    this.sessions.push(session);
    return session;
  }

  /**
   * One gRPC call with a hand-made body on `session` (a new one if not given); resolves with its
   * grpc-status, or undefined when the stream was reset without one.
   */
  async rawCall(
    path: string,
    body: Buffer,
    headers: http2.OutgoingHttpHeaders = {},
    session?: http2.ClientHttp2Session,
    /** Cancel the call after this long and resolve 'cancelled' (an open stream is legal). */
    timeoutMs?: number,
  ): Promise<string | undefined> {
    const own = session === undefined;
    const on = session ?? this.h2();
    try {
      return await new Promise((resolve) => {
        const request = on.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          ...headers,
        });
        let status: string | undefined;
        request.on('response', (response) => {
          status ??= response['grpc-status'] as string | undefined;
        });
        request.on('trailers', (trailers: http2.IncomingHttpHeaders) => {
          status ??= trailers['grpc-status'] as string | undefined;
        });
        request.on('data', () => undefined);
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                status ??= 'cancelled';
                request.close(http2.constants.NGHTTP2_CANCEL);
              }, timeoutMs);
        request.on('close', () => {
          clearTimeout(timer);
          resolve(status);
        });
        request.on('error', () => undefined);
        request.end(body);
      });
    } finally {
      if (own) on.close();
    }
  }

  /** A real client's Enroll with an unknown code: UNAUTHENTICATED means the server answered. */
  private enrollUnknown(): Promise<grpc.ServiceError | null> {
    const credentials = grpc.credentials.createSsl(Buffer.from(this.identity.certPem), null, null, {
      checkServerIdentity: () => undefined,
    });
    const client = new EnrollmentClient(`127.0.0.1:${this.port}`, credentials, {
      'grpc.ssl_target_name_override': 'localhost',
    });
    this.clients.push(client);
    const method = (
      client as unknown as Record<
        string,
        (
          r: { code: string },
          cb: (e: grpc.ServiceError | null, b?: CredentialBundle) => void,
        ) => void
      >
    )['Enroll'];
    assert.ok(method);
    return new Promise((resolve) => {
      method.call(client, { code: 'no-such-code' }, (error) => {
        resolve(error);
      });
    });
  }

  /** The listener still answers a real gRPC client, and nothing was logged as an error. */
  async assertServing(): Promise<void> {
    const error = await this.enrollUnknown();
    assert.equal(error?.code, grpc.status.UNAUTHENTICATED, String(error));
    assert.deepEqual(this.errors, []);
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.close();
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    await this.service.close();
    this.store.close();
    this.dirs.cleanup();
  }
}
