// Proves log lines are one JSON object each with the event field, and that secrets never reach
// the output whatever their depth or spelling.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';

import { EVENTS } from './events.js';
import { REDACTED, createLogger, isSecretField, redactSecrets } from './log.js';

function capture(): {
  lines: () => Record<string, unknown>[];
  stream: Writable & { write: Writable['write'] };
} {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('logger', () => {
  it('writes one JSON object per line with event, level, time and message', () => {
    const out = capture();
    const logger = createLogger({ destination: out.stream });
    logger.info(EVENTS.storeReady, { schema_version: 3 }, 'ready');
    logger.error('startup.store_in_use', { path: '/d' });
    const [first, second] = out.lines();
    assert.equal(first?.['event'], 'store.ready');
    assert.equal(first['level'], 'info');
    assert.equal(first['schema_version'], 3);
    assert.equal(first['msg'], 'ready');
    assert.match(String(first['time']), /^\d{4}-\d{2}-\d{2}T/);
    assert.equal(second?.['event'], 'startup.store_in_use');
    assert.equal(second['level'], 'error');
  });

  it('does not let a field called event replace the event', () => {
    const out = capture();
    createLogger({ destination: out.stream }).info(EVENTS.storeReady, { event: 'forged' });
    assert.equal(out.lines()[0]?.['event'], 'store.ready');
  });

  it('redacts secret fields at any depth, in child bindings and in arrays', () => {
    const out = capture();
    const logger = createLogger({ destination: out.stream }).child({ session_cookie: 'c00kie' });
    logger.info(EVENTS.storeReady, {
      token: 'tok-1',
      nested: { password: 'pw-2', deeper: [{ apiKey: 'k-3' }, { private_key: 'k-4' }] },
      Authorization: 'Bearer tok-5',
      client_secret: 's-6',
      key_path: '/etc/portunus/server.key',
      monkey_count: 3,
    });
    const raw = JSON.stringify(out.lines());
    for (const secret of ['tok-1', 'pw-2', 'k-3', 'k-4', 'tok-5', 's-6', 'c00kie']) {
      assert.ok(!raw.includes(secret), `${secret} leaked: ${raw}`);
    }
    const line = out.lines()[0];
    assert.equal(line?.['token'], REDACTED);
    assert.equal(line['key_path'], '/etc/portunus/server.key');
    assert.equal(line['monkey_count'], 3);
  });

  it('classifies field names', () => {
    for (const name of [
      'token',
      'setup_token',
      'password',
      'secret',
      'cookie',
      'key',
      'private_key',
      'apiKey',
    ]) {
      assert.ok(isSecretField(name), name);
    }
    for (const name of ['key_path', 'monkey', 'path', 'keyboard', 'event', 'user_id']) {
      assert.ok(!isSecretField(name), name);
    }
  });

  it('serialises errors without their stack and redacts inside them', () => {
    const error = Object.assign(new Error('boom'), { code: 'E_X' });
    assert.deepEqual(redactSecrets({ error }), {
      error: { name: 'Error', message: 'boom', code: 'E_X' },
    });
  });

  it('stops at a depth limit instead of recursing forever', () => {
    type Deep = { next?: Deep };
    const root: Deep = {};
    let cursor = root;
    for (let i = 0; i < 20; i += 1) {
      cursor.next = {};
      cursor = cursor.next;
    }
    assert.ok(JSON.stringify(redactSecrets(root)).includes('[truncated]'));
  });
});
