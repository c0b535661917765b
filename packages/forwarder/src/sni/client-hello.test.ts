/**
 * The ClientHello reader on real hellos captured from node:tls (with and without a server name),
 * the same bytes split over several records and over reads, truncated, garbled and oversized
 * input, and a fixed-seed property that arbitrary bytes never throw and never claim more bytes
 * than they were given.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import fc from 'fast-check';

import { captureClientHello } from '@portunus/test-support';

import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from './client-hello.js';

let withName: Buffer;
let withoutName: Buffer;

before(async () => {
  withName = await captureClientHello('api.example.com');
  withoutName = await captureClientHello(undefined);
});

/** Re-frames one handshake record's payload into records of at most `size` bytes each. */
function reframe(hello: Buffer, size: number): Buffer {
  return frame(hello.subarray(5, 5 + hello.readUInt16BE(3)), size);
}

/** A handshake payload in records of at most `size` bytes each. */
function frame(payload: Buffer, size: number): Buffer {
  const records: Buffer[] = [];
  for (let at = 0; at < payload.length; at += size) {
    const part = payload.subarray(at, Math.min(payload.length, at + size));
    const header = Buffer.from([0x16, 3, 1, 0, 0]);
    header.writeUInt16BE(part.length, 3);
    records.push(header, part);
  }
  return Buffer.concat(records);
}

/** A ClientHello with this server_name extension data and a padding extension (type 21). */
function helloWith(serverNameExtension: Buffer, padding = 0): Buffer {
  const extensions = Buffer.concat([
    Buffer.from([0, 0, serverNameExtension.length >> 8, serverNameExtension.length & 0xff]),
    serverNameExtension,
    Buffer.from([0, 21, padding >> 8, padding & 0xff]),
    Buffer.alloc(padding),
  ]);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7), // random
    Buffer.from([0]), // session id
    Buffer.from([0, 2, 0x13, 0x01]), // one cipher suite
    Buffer.from([1, 0]), // null compression
    Buffer.from([extensions.length >> 8, extensions.length & 0xff]),
    extensions,
  ]);
  const handshake = Buffer.concat([
    Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
  return frame(handshake, 16 * 1024);
}

function serverName(name: Buffer): Buffer {
  const entry = Buffer.concat([Buffer.from([0, name.length >> 8, name.length & 0xff]), name]);
  return Buffer.concat([Buffer.from([entry.length >> 8, entry.length & 0xff]), entry]);
}

describe('parseClientHello', () => {
  it('reads the server name of a real node:tls ClientHello', () => {
    assert.deepEqual(parseClientHello(withName), {
      kind: 'sni',
      name: 'api.example.com',
      length: withName.length,
    });
  });

  it('answers no_sni for a real hello without the extension', () => {
    assert.deepEqual(parseClientHello(withoutName), {
      kind: 'no_sni',
      length: withoutName.length,
    });
  });

  it('reassembles a hello fragmented over several records', () => {
    for (const size of [1, 7, 100]) {
      const framed = reframe(withName, size);
      assert.deepEqual(
        parseClientHello(framed),
        { kind: 'sni', name: 'api.example.com', length: framed.length },
        `records of ${size}`,
      );
    }
  });

  it('asks for more on every strict prefix, over records and over reads', () => {
    const framed = reframe(withName, 50);
    for (let cut = 0; cut < framed.length; cut++) {
      assert.equal(parseClientHello(framed.subarray(0, cut)).kind, 'need_more', `cut ${cut}`);
    }
    assert.equal(parseClientHello(framed).kind, 'sni');
  });

  it('never decides early on a truncated single record', () => {
    for (let cut = 0; cut < withName.length; cut++) {
      assert.equal(parseClientHello(withName.subarray(0, cut)).kind, 'need_more', `cut ${cut}`);
    }
  });

  it('refuses what is not a TLS handshake at once', () => {
    assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), {
      kind: 'invalid',
      reason: 'not_handshake',
    });
    assert.deepEqual(parseClientHello(Buffer.from([0x16])), { kind: 'need_more' });
    assert.deepEqual(parseClientHello(Buffer.from([0x16, 9])), {
      kind: 'invalid',
      reason: 'bad_version',
    });
    // A handshake record whose message is not a ClientHello (type 2 = ServerHello).
    assert.deepEqual(parseClientHello(Buffer.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0])), {
      kind: 'invalid',
      reason: 'not_client_hello',
    });
    assert.deepEqual(parseClientHello(Buffer.from([0x16, 3, 1, 0, 0])), {
      kind: 'invalid',
      reason: 'bad_record_length',
    });
  });

  it('refuses a hello body above 16 KiB and accepts one at the limit', () => {
    const base = helloWith(serverName(Buffer.from('a.example')));
    const baseBody = base.readUIntBE(6, 3);
    const atLimit = helloWith(
      serverName(Buffer.from('a.example')),
      MAX_CLIENT_HELLO_BYTES - baseBody,
    );
    const over = helloWith(
      serverName(Buffer.from('a.example')),
      MAX_CLIENT_HELLO_BYTES - baseBody + 1,
    );
    assert.equal(atLimit.readUIntBE(6, 3), MAX_CLIENT_HELLO_BYTES);
    assert.deepEqual(parseClientHello(over), { kind: 'invalid', reason: 'too_large' });
    // The size is judged from the handshake header: the first record is enough.
    assert.deepEqual(parseClientHello(over.subarray(0, 9)), {
      kind: 'invalid',
      reason: 'too_large',
    });
    assert.equal(parseClientHello(atLimit).kind, 'sni');
    assert.equal(parseClientHello(base).kind, 'sni');
  });

  it('refuses a garbled server_name and control bytes in the name', () => {
    assert.deepEqual(parseClientHello(helloWith(Buffer.from([0, 9, 0, 0]))), {
      kind: 'invalid',
      reason: 'bad_server_name',
    });
    assert.deepEqual(parseClientHello(helloWith(serverName(Buffer.from('a\nb.example')))), {
      kind: 'invalid',
      reason: 'bad_server_name',
    });
    assert.deepEqual(parseClientHello(helloWith(serverName(Buffer.alloc(0)))), {
      kind: 'invalid',
      reason: 'bad_server_name',
    });
  });

  it('never throws and never claims more than it was given (fixed seed)', () => {
    const verdict = (bytes: Uint8Array): void => {
      const result = parseClientHello(bytes);
      if (result.kind === 'sni' || result.kind === 'no_sni') {
        assert.ok(result.length <= bytes.length);
      }
      if (result.kind === 'sni') assert.ok(result.name.length <= bytes.length);
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        verdict(bytes);
      }),
      { seed: 1103, numRuns: 2000 },
    );
    // Mutations of a real hello reach far deeper into the parser than random bytes.
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
        (edits, cut) => {
          const bytes = Buffer.from(withName);
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          verdict(bytes);
          verdict(bytes.subarray(0, cut % (bytes.length + 1)));
        },
      ),
      { seed: 2207, numRuns: 3000 },
    );
  });
});
