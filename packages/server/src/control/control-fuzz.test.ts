// Proves, by property-based fuzzing with fixed seeds, that no byte sequence after the TLS handshake, no sequence of HTTP/2 frames after a valid preface, and no gRPC body sent to Enroll or Channel (with and without a valid client token) crashes the control listener, makes it log an error, leaves a connection open after the peer ends it, or changes what the store holds about clients, enrollments and rules; a real gRPC client is served after every case. PORTUNUS_FUZZ_RUNS raises the run count (bench/README.md, bench:fuzz).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import fc from 'fast-check';

import { insertClient } from '@portunus/store';
import { waitFor } from '@portunus/test-support';

import { hashSecret } from '../identity/secrets.js';
import {
  CHANNEL_PATH,
  ControlListenerHarness,
  ENROLL_PATH,
  HTTP2_PREFACE,
  closed,
  grpcFrame,
  h2Frame,
} from './listener.harness.js';

const RUNS = Number(process.env.PORTUNUS_FUZZ_RUNS ?? 100);
const SEED = Number(process.env.PORTUNUS_FUZZ_SEED ?? 20261203);
/** Each case opens real connections: a quarter of the HTTP fuzz count keeps the suite quick. */
const CASES = Math.max(8, Math.floor(RUNS / 4));
const TOKEN = 'fuzz-client-token-0123456789abcdef0123456789abcdef';
const MAX_MESSAGE = 16 * 1024;

let h: ControlListenerHarness;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  h = await ControlListenerHarness.start({
    tlsHandshakeTimeoutMs: 1_500,
    maxReceiveMessageBytes: MAX_MESSAGE,
    idleConnectionTimeoutMs: 400,
  });
  insertClient(h.store.db, {
    clientId: '01JFUZZCLIENT0000000000000',
    clientName: 'fuzz-edge',
    tokenHash: hashSecret(TOKEN),
    now: Date.now(),
  });
});

after(async () => {
  process.off('unhandledRejection', onUnhandled);
  await h.close();
});

/**
 * What a hostile peer must never change: clients (but for when and from where one last
 * connected, which a decodable Hello legitimately records), enrollments, rules and targets.
 */
function snapshot(): string {
  const db = h.store.db;
  const all = (sql: string): unknown[] => db.prepare(sql).all();
  return JSON.stringify([
    all('SELECT client_id, client_name, client_address, token_hash, revoked_at FROM clients'),
    all('SELECT * FROM client_enrollments'),
    all('SELECT * FROM rules'),
    all('SELECT * FROM rule_targets'),
  ]);
}

async function assertUnharmed(before: string): Promise<void> {
  await h.assertServing();
  assert.equal(snapshot(), before);
  assert.deepEqual(unhandled, []);
}

/** Writes `bytes` on a finished TLS connection, ends it, and waits until the server closed it. */
async function sendAndEnd(bytes: Uint8Array): Promise<void> {
  const peer = await h.openTls();
  peer.on('error', () => undefined);
  peer.end(Buffer.from(bytes));
  await Promise.race([
    closed(peer),
    waitFor(() => peer.destroyed, { what: 'the server to close the connection', timeoutMs: 5_000 }),
  ]);
}

const frameArb = fc.record({
  // Every defined type (DATA..CONTINUATION, 0x0-0x9) and some undefined ones.
  type: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 10, max: 255 })),
  flags: fc.integer({ min: 0, max: 255 }),
  streamId: fc.oneof(fc.constantFrom(0, 1, 3), fc.integer({ min: 0, max: 2 ** 31 - 1 })),
  payload: fc.uint8Array({ maxLength: 256 }),
});

const bodyArb = fc.oneof(
  // Not gRPC-framed at all.
  fc.uint8Array({ maxLength: 512 }),
  // Framed, random protobuf.
  fc.uint8Array({ maxLength: 512 }).map((payload) => grpcFrame(Buffer.from(payload))),
  // A length prefix that claims more than follows (truncated message), or too much.
  fc
    .tuple(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 65, max: 2 ** 32 - 1 }))
    .map(([payload, claimed]) => {
      const framed = grpcFrame(Buffer.from(payload));
      framed.writeUInt32BE(claimed, 1);
      return framed;
    }),
  // The compressed flag with no grpc-encoding negotiated.
  fc.uint8Array({ maxLength: 64 }).map((payload) => {
    const framed = grpcFrame(Buffer.from(payload));
    framed.writeUInt8(1, 0);
    return framed;
  }),
  // Several messages in one body.
  fc
    .array(fc.uint8Array({ maxLength: 64 }), { minLength: 2, maxLength: 4 })
    .map((payloads) => Buffer.concat(payloads.map((p) => grpcFrame(Buffer.from(p))))),
);

describe('control listener under fuzzed input', () => {
  it('survives any bytes after the TLS handshake', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.uint8Array({ maxLength: 2048 }),
        async (withPreface, bytes) => {
          const before = snapshot();
          const prefix = withPreface ? HTTP2_PREFACE : Buffer.alloc(0);
          await sendAndEnd(Buffer.concat([prefix, Buffer.from(bytes)]));
          await assertUnharmed(before);
        },
      ),
      { numRuns: CASES, seed: SEED },
    );
  });

  it('survives any HTTP/2 frames after a valid preface', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frameArb, { maxLength: 8 }), async (frames) => {
        const before = snapshot();
        const bytes = Buffer.concat([
          HTTP2_PREFACE,
          ...frames.map((f) => h2Frame(f.type, f.flags, f.streamId, Buffer.from(f.payload))),
        ]);
        await sendAndEnd(bytes);
        await assertUnharmed(before);
      }),
      { numRuns: CASES, seed: SEED + 1 },
    );
  });

  it('answers any gRPC body to Enroll and Channel, authenticated or not, and stores nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(ENROLL_PATH, CHANNEL_PATH),
        fc.constantFrom(undefined, `Bearer ${TOKEN}`, 'Bearer not-a-token', 'garbage'),
        bodyArb,
        async (path, authorization, body) => {
          const before = snapshot();
          const headers = authorization === undefined ? {} : { authorization };
          const status = await h.rawCall(path, Buffer.from(body), headers, undefined, 3_000);
          // A status, a cancel of a stream the server still holds open, or a reset: never OK for
          // a body that is not one whole valid message... unless it decoded as one.
          assert.ok(status === undefined || /^\d+$|^cancelled$/.test(status), String(status));
          await assertUnharmed(before);
        },
      ),
      { numRuns: CASES, seed: SEED + 2 },
    );
  });
});
