// Proves runMain turns each outcome into the right exit code, event and one stderr line.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';

import { PortunusError } from './errors.js';
import { createLogger } from './log.js';
import { runMain } from './run-main.js';

function harness(): {
  logger: ReturnType<typeof createLogger>;
  events: () => string[];
  errLines: string[];
  writeErrorLine: (line: string) => void;
} {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const errLines: string[] = [];
  return {
    logger: createLogger({ destination }),
    events: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { event: string }).event),
    errLines,
    writeErrorLine: (line) => errLines.push(line),
  };
}

describe('runMain', () => {
  it('returns 0 or the code main returns', async () => {
    const h = harness();
    assert.equal(await runMain(() => Promise.resolve(undefined), h), 0);
    assert.equal(await runMain(() => Promise.resolve(3), h), 3);
    assert.deepEqual(h.errLines, []);
  });

  it('maps a PortunusError to its exit code, event and one error line', async () => {
    const h = harness();
    const code = await runMain(() => {
      throw new PortunusError('store_in_use', 'another process holds /d/state.db.lock', {
        path: '/d',
      });
    }, h);
    assert.equal(code, 75);
    assert.deepEqual(h.events(), ['startup.store_in_use']);
    assert.deepEqual(h.errLines, ['error: store_in_use: another process holds /d/state.db.lock\n']);
  });

  it('maps anything else to exit 1 and internal_error', async () => {
    const h = harness();
    const code = await runMain(() => Promise.reject(new TypeError('x is undefined')), h);
    assert.equal(code, 1);
    assert.deepEqual(h.events(), ['process.unexpected_error']);
    assert.deepEqual(h.errLines, ['error: internal_error: x is undefined\n']);
  });
});
