// Proves the control listener survives hostile and slow peers on real loopback sockets: hundreds of TCP connections that never start TLS do not stop a real TLS+gRPC client, and are closed by the handshake timeout; garbage bytes before TLS, invalid protobuf inside a valid gRPC frame and a message over the receive limit are each refused while the server keeps answering good clients and logs no error.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';

import { EVENTS, silentLogger, type Logger } from '@portunus/core';
import { ENROLLMENT_SERVICE, EnrollmentClient, grpc, type CredentialBundle } from '@portunus/proto';
import { openStore, type Store } from '@portunus/store';
import { tempDirs, waitFor } from '@portunus/test-support';

import { createServerMetrics } from '../metrics.js';
import { loadOrCreateServerIdentity, type ServerIdentity } from '../tls/certificate.js';
import { ControlFleet } from './fleet.js';
import { startControlService, type ControlService } from './service.js';

const MAX_MESSAGE = 64 * 1024;
const STALLED = 300;
const dirs = tempDirs();
const errors: { event: string; fields: unknown }[] = [];
const warnings: { event: string; fields: Record<string, unknown> }[] = [];
const logger: Logger = {
  ...silentLogger,
  warn: (event, fields = {}) => {
    warnings.push({ event, fields });
  },
  error: (event, fields) => {
    errors.push({ event, fields });
  },
};
let store: Store;
let service: ControlService;
let identity: ServerIdentity;
const sockets: net.Socket[] = [];
const clients: grpc.Client[] = [];

before(async () => {
  const dataDir = dirs.make('portunus-hostile-control-');
  store = openStore(dataDir);
  identity = await loadOrCreateServerIdentity({ dataDir, logger, hostname: 'localhost' });
  const metrics = createServerMetrics({ collectProcessMetrics: false });
  const fleet = new ControlFleet({ db: store.db, logger, metrics, now: Date.now });
  service = await startControlService(
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
    // Short enough that the stalled connections are cut within the test; the pending cap is
    // above the flood so the real client is not refused at accept.
    {
      tlsHandshakeTimeoutMs: 1_500,
      maxPendingHandshakes: 1024,
      maxReceiveMessageBytes: MAX_MESSAGE,
      idleConnectionTimeoutMs: 1_500,
    },
  );
});

after(async () => {
  for (const client of clients) client.close();
  for (const socket of sockets) socket.destroy();
  await service.close();
  store.close();
  dirs.cleanup();
});

const port = (): number => service.address.port;

/** A real client's Enroll with an unknown code: UNAUTHENTICATED means the server answered. */
function enrollUnknown(): Promise<grpc.ServiceError | null> {
  const credentials = grpc.credentials.createSsl(Buffer.from(identity.certPem), null, null, {
    checkServerIdentity: () => undefined,
  });
  const client = new EnrollmentClient(`127.0.0.1:${port()}`, credentials, {
    'grpc.ssl_target_name_override': 'localhost',
  });
  clients.push(client);
  const method = (
    client as unknown as Record<
      string,
      (r: { code: string }, cb: (e: grpc.ServiceError | null, b?: CredentialBundle) => void) => void
    >
  )['Enroll'];
  assert.ok(method);
  return new Promise((resolve) => {
    method.call(client, { code: 'no-such-code' }, (error) => {
      resolve(error);
    });
  });
}

async function assertServing(): Promise<void> {
  const error = await enrollUnknown();
  assert.equal(error?.code, grpc.status.UNAUTHENTICATED, String(error));
  assert.deepEqual(errors, []);
}

function openRaw(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port(), '127.0.0.1', () => {
      resolve(socket);
    });
    socket.on('error', reject);
    sockets.push(socket);
  });
}

/** A finished TLS handshake (ALPN h2, as a real client offers) with nothing sent after it. */
function openTls(): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: port(),
      ca: identity.certPem,
      servername: 'localhost',
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    socket.once('secureConnect', () => {
      resolve(socket);
    });
    socket.on('error', reject);
    socket.on('data', () => undefined);
    sockets.push(socket);
  });
}

const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** An HTTP/2 frame header + payload (RFC 9113 §4.1). */
function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}
const SETTINGS = 0x4;

const closed = (socket: net.Socket): Promise<void> =>
  new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else
      socket.once('close', () => {
        resolve();
      });
  });

/** A raw HTTP/2 gRPC call to Enroll with the given (framed) body; resolves with grpc-status. */
async function rawEnroll(body: Buffer): Promise<string | undefined> {
  const session = http2.connect(`https://127.0.0.1:${port()}`, {
    ca: identity.certPem,
    servername: 'localhost',
    checkServerIdentity: () => undefined,
  });
  try {
    return await rawEnrollOn(session, body);
  } finally {
    session.close();
  }
}

/** One Enroll call on an open HTTP/2 session; resolves with its grpc-status. */
function rawEnrollOn(session: http2.ClientHttp2Session, body: Buffer): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    session.once('error', reject);
    const request = session.request({
      ':method': 'POST',
      ':path': ENROLL_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let status: string | undefined;
    request.on('response', (headers) => {
      status ??= headers['grpc-status'] as string | undefined;
    });
    request.on('trailers', (trailers: http2.IncomingHttpHeaders) => {
      status ??= trailers['grpc-status'] as string | undefined;
    });
    request.on('data', () => undefined);
    request.on('close', () => {
      session.off('error', reject);
      resolve(status);
    });
    request.on('error', () => undefined);
    request.end(body);
  });
}

const ENROLL_PATH = (ENROLLMENT_SERVICE as unknown as Record<string, { path: string }>)['Enroll']!
  .path;

const frame = (payload: Buffer): Buffer => {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
};

describe('control listener under hostile peers', () => {
  it(`serves a real client while ${STALLED} connections stall before TLS, then closes them`, async () => {
    const stalled = await Promise.all(Array.from({ length: STALLED }, openRaw));
    await assertServing();
    await Promise.all(stalled.map(closed));
    await assertServing();
  });

  it('refuses garbage bytes before TLS, and stays up', async () => {
    const garbage = await openRaw();
    garbage.write(Buffer.from('GET / HTTP/1.1\r\n\r\n\u0000\u00ff garbage'));
    await closed(garbage);

    await assertServing();
  });

  it('closes a TLS peer that sends garbage instead of the HTTP/2 preface, and stays up', async () => {
    const peer = await openTls();
    peer.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\u0000\u00ff'));
    await closed(peer);
    await assertServing();
  });

  it('closes a TLS peer that stops in the middle of the HTTP/2 preface', async () => {
    const peer = await openTls();
    peer.write(HTTP2_PREFACE.subarray(0, 10));
    await closed(peer);
    await assertServing();
  });

  it('closes a TLS peer that sends nothing after the handshake (idle limit)', async () => {
    const peer = await openTls();
    await closed(peer);
    await assertServing();
  });

  it('closes a peer whose SETTINGS frame is malformed, and stays up', async () => {
    const peer = await openTls();
    // A SETTINGS payload must be a multiple of 6 bytes: 5 is a FRAME_SIZE_ERROR.
    peer.write(Buffer.concat([HTTP2_PREFACE, h2Frame(SETTINGS, 0, 0, Buffer.alloc(5))]));
    await closed(peer);
    await assertServing();
  });

  it('closes a peer that speaks valid HTTP/2 but never opens a call', async () => {
    const peer = await openTls();
    peer.write(Buffer.concat([HTTP2_PREFACE, h2Frame(SETTINGS, 0, 0, Buffer.alloc(0))]));
    await closed(peer);
    await assertServing();
  });

  it('names the peer of a call, and never cuts a connection while a call is open', async () => {
    const session = http2.connect(`https://127.0.0.1:${port()}`, {
      ca: identity.certPem,
      servername: 'localhost',
      checkServerIdentity: () => undefined,
    });
    session.on('error', () => undefined);
    try {
      // EnrollClientRequest{code: "nope"}: a valid call the handler answers UNAUTHENTICATED.
      const request = Buffer.concat([Buffer.from([0x0a, 4]), Buffer.from('nope')]);
      const status = await rawEnrollOn(session, frame(request));
      assert.equal(status, String(grpc.status.UNAUTHENTICATED));
      // The refusal names the peer as it is, not "unknown".
      const local = (session.socket as unknown as { localPort: number }).localPort;
      const refusal = warnings.findLast((line) => line.event === EVENTS.authFailure);
      assert.equal(refusal?.fields['remote_addr'], `127.0.0.1:${local}`);

      // A call left open (headers sent, no message yet) for twice the idle limit.
      const open = session.request({
        ':method': 'POST',
        ':path': ENROLL_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      open.on('error', () => undefined);
      const twiceTheLimit = Date.now() + 3_000;
      await waitFor(() => Date.now() > twiceTheLimit || session.destroyed || session.closed, {
        what: 'twice the idle-connection limit',
        timeoutMs: 5_000,
      });
      assert.equal(session.destroyed || session.closed, false, 'the connection was cut');
      const pinged = await new Promise<boolean>((resolve) => {
        session.ping((error) => {
          resolve(error === null);
        });
      });
      assert.ok(pinged, 'the connection no longer answers');
      open.close();
    } finally {
      session.destroy();
    }
  });

  it('answers invalid protobuf in a valid gRPC frame with a status, and stays up', async () => {
    const status = await rawEnroll(frame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x80])));
    assert.ok(status !== undefined && status !== '0', `grpc-status ${String(status)}`);
    await assertServing();
  });

  it('answers a message over the receive limit with RESOURCE_EXHAUSTED, and stays up', async () => {
    const status = await rawEnroll(frame(Buffer.alloc(MAX_MESSAGE * 2, 0x41)));
    assert.equal(status, String(grpc.status.RESOURCE_EXHAUSTED));
    await assertServing();
  });
});
