// Proves that the generated identity works as a pinned TLS server identity (DESIGN.md §6): a
// client that trusts only the certificate's PEM and compares the SHA-256 of the real peer
// certificate with the fingerprint connects; the same client with another identity's fingerprint,
// or facing an impostor certificate, is refused. Also records the trap that makes the naive
// option set (`rejectUnauthorized: false` + `checkServerIdentity`) accept anything.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';

import { silentLogger } from '@portunus/core';
import { tempDirs } from '@portunus/test-support';

import { loadOrCreateServerIdentity, type ServerIdentity } from './certificate.js';

const GREETING = 'welcome\n';
const dirs = tempDirs();

interface Running {
  server: tls.Server;
  port: number;
}

async function serve(identity: ServerIdentity): Promise<Running> {
  const server = tls.createServer({ cert: identity.certPem, key: identity.keyPem }, (socket) => {
    socket.end(GREETING);
  });
  // A client that rejects the handshake makes the server side fail too; that is expected here.
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

function sha256(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The client side of the pin: the peer certificate's SHA-256 must equal the pinned one. */
function pinCheck(fingerprint: string, calls: { count: number }) {
  return (_host: string, cert: tls.PeerCertificate): Error | undefined => {
    calls.count += 1;
    return sha256(cert.raw) === fingerprint ? undefined : new Error('fingerprint mismatch');
  };
}

type Outcome = { greeting: string } | { error: Error };

function connect(port: number, options: tls.ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('end', () => {
      socket.destroy();
      resolve({ greeting: received });
    });
    socket.on('error', (error: Error) => {
      socket.destroy();
      resolve({ error });
    });
  });
}

/** First contact (enrollment): fetch the leaf without trusting it, to compare with the pin. */
async function peerFingerprint(port: number): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  try {
    await once(socket, 'secureConnect');
    return sha256(socket.getPeerCertificate().raw);
  } finally {
    socket.destroy();
  }
}

describe('pinning the generated certificate', () => {
  let real: ServerIdentity;
  let other: ServerIdentity;
  let realServer: Running;
  let impostor: Running;

  before(async () => {
    real = await loadOrCreateServerIdentity({ dataDir: dirs.make(), logger: silentLogger });
    other = await loadOrCreateServerIdentity({ dataDir: dirs.make(), logger: silentLogger });
    realServer = await serve(real);
    impostor = await serve(other);
  });

  after(async () => {
    for (const running of [realServer, impostor]) {
      running.server.close();
      await once(running.server, 'close');
    }
    dirs.cleanup();
  });

  it('exposes the fingerprint on the wire', async () => {
    const seen = await peerFingerprint(realServer.port);
    assert.equal(seen, real.fingerprintSha256);
    assert.notEqual(seen, other.fingerprintSha256);
  });

  it('accepts a client pinned to the fingerprint', async () => {
    const calls = { count: 0 };
    const outcome = await connect(realServer.port, {
      ca: [real.certPem],
      checkServerIdentity: pinCheck(real.fingerprintSha256, calls),
    });
    assert.deepEqual(outcome, { greeting: GREETING });
    assert.equal(calls.count, 1, 'the pin was compared with the real certificate');
  });

  it("refuses a client pinned to another identity's fingerprint", async () => {
    const calls = { count: 0 };
    const outcome = await connect(realServer.port, {
      ca: [real.certPem],
      checkServerIdentity: pinCheck(other.fingerprintSha256, calls),
    });
    assert.ok('error' in outcome);
    assert.match(outcome.error.message, /fingerprint mismatch/);
    assert.equal(calls.count, 1);
  });

  it('refuses an impostor presenting another self-signed certificate', async () => {
    const calls = { count: 0 };
    const outcome = await connect(impostor.port, {
      ca: [real.certPem],
      checkServerIdentity: pinCheck(real.fingerprintSha256, calls),
    });
    assert.ok('error' in outcome);
    assert.equal(calls.count, 0, 'chain verification fails before the pin is consulted');
  });

  it('documents the trap: without the PEM as trust anchor the pin is never checked', async () => {
    const calls = { count: 0 };
    const outcome = await connect(impostor.port, {
      rejectUnauthorized: false,
      checkServerIdentity: pinCheck(real.fingerprintSha256, calls),
    });
    assert.deepEqual(outcome, { greeting: GREETING }, 'connected to the impostor');
    assert.equal(calls.count, 0);
  });
});
