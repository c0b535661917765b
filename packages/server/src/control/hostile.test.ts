// Proves the control listener survives hostile and slow peers on real loopback sockets: hundreds of TCP connections that never start TLS do not stop a real TLS+gRPC client, and are closed by the handshake timeout; garbage bytes before TLS, invalid protobuf inside a valid gRPC frame and a message over the receive limit are each refused while the server keeps answering good clients and logs no error.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { EVENTS } from '@portunus/core';
import { grpc } from '@portunus/proto';
import { waitFor } from '@portunus/test-support';

import {
  ControlListenerHarness,
  ENROLL_PATH,
  HTTP2_PREFACE,
  SETTINGS_FRAME,
  closed,
  grpcFrame,
  h2Frame,
} from './listener.harness.js';

const MAX_MESSAGE = 64 * 1024;
const STALLED = 300;
let h: ControlListenerHarness;

before(async () => {
  // Short enough that the stalled connections are cut within the test; the pending cap is
  // above the flood so the real client is not refused at accept.
  h = await ControlListenerHarness.start({
    tlsHandshakeTimeoutMs: 1_500,
    maxPendingHandshakes: 1024,
    maxReceiveMessageBytes: MAX_MESSAGE,
    idleConnectionTimeoutMs: 1_500,
  });
});

after(() => h.close());

describe('control listener under hostile peers', () => {
  it(`serves a real client while ${STALLED} connections stall before TLS, then closes them`, async () => {
    const stalled = await Promise.all(Array.from({ length: STALLED }, () => h.openRaw()));
    await h.assertServing();
    await Promise.all(stalled.map(closed));
    await h.assertServing();
  });

  it('refuses garbage bytes before TLS, and stays up', async () => {
    const garbage = await h.openRaw();
    garbage.write(Buffer.from('GET / HTTP/1.1\r\n\r\n\u0000\u00ff garbage'));
    await closed(garbage);

    await h.assertServing();
  });

  it('closes a TLS peer that sends garbage instead of the HTTP/2 preface, and stays up', async () => {
    const peer = await h.openTls();
    peer.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\u0000\u00ff'));
    await closed(peer);
    await h.assertServing();
  });

  it('closes a TLS peer that stops in the middle of the HTTP/2 preface', async () => {
    const peer = await h.openTls();
    peer.write(HTTP2_PREFACE.subarray(0, 10));
    await closed(peer);
    await h.assertServing();
  });

  it('closes a TLS peer that sends nothing after the handshake (idle limit)', async () => {
    const peer = await h.openTls();
    await closed(peer);
    await h.assertServing();
  });

  it('closes a peer whose SETTINGS frame is malformed, and stays up', async () => {
    const peer = await h.openTls();
    // A SETTINGS payload must be a multiple of 6 bytes: 5 is a FRAME_SIZE_ERROR.
    peer.write(Buffer.concat([HTTP2_PREFACE, h2Frame(SETTINGS_FRAME, 0, 0, Buffer.alloc(5))]));
    await closed(peer);
    await h.assertServing();
  });

  it('closes a peer that speaks valid HTTP/2 but never opens a call', async () => {
    const peer = await h.openTls();
    peer.write(Buffer.concat([HTTP2_PREFACE, h2Frame(SETTINGS_FRAME, 0, 0, Buffer.alloc(0))]));
    await closed(peer);
    await h.assertServing();
  });

  it('names the peer of a call, and never cuts a connection while a call is open', async () => {
    const session = h.h2();
    try {
      // EnrollClientRequest{code: "nope"}: a valid call the handler answers UNAUTHENTICATED.
      const request = Buffer.concat([Buffer.from([0x0a, 4]), Buffer.from('nope')]);
      const status = await h.rawCall(ENROLL_PATH, grpcFrame(request), {}, session);
      assert.equal(status, String(grpc.status.UNAUTHENTICATED));
      // The refusal names the peer as it is, not "unknown".
      const local = (session.socket as unknown as { localPort: number }).localPort;
      const refusal = h.warnings.findLast((line) => line.event === EVENTS.authFailure);
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
    const status = await h.rawCall(
      ENROLL_PATH,
      grpcFrame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x80])),
    );
    assert.ok(status !== undefined && status !== '0', `grpc-status ${String(status)}`);
    await h.assertServing();
  });

  it('answers a message over the receive limit with RESOURCE_EXHAUSTED, and stays up', async () => {
    const status = await h.rawCall(ENROLL_PATH, grpcFrame(Buffer.alloc(MAX_MESSAGE * 2, 0x41)));
    assert.equal(status, String(grpc.status.RESOURCE_EXHAUSTED));
    await h.assertServing();
  });
});
