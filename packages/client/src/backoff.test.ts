// Proves the reconnect backoff (reference §4.3 item 8): the ceiling doubles from the base and
// stops at the cap, and the delay is drawn uniformly from 0..=ceiling by the injected random.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { backoffCeilingMs, fullJitterDelayMs } from './backoff.js';

const POLICY = { initialDelayMs: 500, maxDelayMs: 30_000 };

describe('full-jitter backoff', () => {
  it('doubles the ceiling per attempt up to the cap', () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 100, 10_000].map((a) => backoffCeilingMs(a, POLICY));
    assert.deepEqual(
      ceilings,
      [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000],
    );
  });

  it('draws from 0 ..= ceiling', () => {
    assert.equal(
      fullJitterDelayMs(0, POLICY, () => 0),
      0,
    );
    assert.equal(
      fullJitterDelayMs(0, POLICY, () => 0.5),
      250,
    );
    assert.equal(
      fullJitterDelayMs(0, POLICY, () => 0.999_999_9),
      500,
    );
    assert.equal(
      fullJitterDelayMs(3, POLICY, () => 0.25),
      1000,
    );
    assert.equal(
      fullJitterDelayMs(50, POLICY, () => 0.999_999_9),
      30_000,
    );
  });

  it('stays within bounds for any random value', () => {
    for (let attempt = 0; attempt < 12; attempt += 1) {
      for (const r of [0, 0.1, 0.5, 0.9, 0.999_999, 1, -1, 2]) {
        const delay = fullJitterDelayMs(attempt, POLICY, () => r);
        assert.ok(delay >= 0 && delay <= backoffCeilingMs(attempt, POLICY), `${attempt} ${r}`);
        assert.ok(Number.isInteger(delay));
      }
    }
  });
});
