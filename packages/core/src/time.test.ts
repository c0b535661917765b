// Proves RFC3339 parsing is strict (operator typos fail with invalid_timestamp) and exact.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { PortunusError } from './errors.js';
import { compactUtcStamp, formatRfc3339, parseRfc3339 } from './time.js';

describe('parseRfc3339', () => {
  it('parses UTC, offsets and fractions exactly', () => {
    assert.equal(parseRfc3339('2026-05-01T00:00:00Z'), Date.UTC(2026, 4, 1));
    assert.equal(parseRfc3339('2026-05-01t00:00:00z'), Date.UTC(2026, 4, 1));
    assert.equal(parseRfc3339('2026-05-01T02:30:00+02:30'), Date.UTC(2026, 4, 1, 0, 0));
    assert.equal(parseRfc3339('2026-04-30T20:00:00-04:00'), Date.UTC(2026, 4, 1, 0, 0));
    assert.equal(parseRfc3339('2026-05-01T00:00:00.123Z'), Date.UTC(2026, 4, 1) + 123);
    assert.equal(parseRfc3339('2026-05-01T00:00:00.123456789Z'), Date.UTC(2026, 4, 1) + 123);
    assert.equal(parseRfc3339('2024-02-29T12:00:00Z'), Date.UTC(2024, 1, 29, 12));
  });

  it('rejects everything else with invalid_timestamp naming the field', () => {
    const bad = [
      '',
      'bogus',
      '2026-05-01',
      '2026-05-01 00:00:00Z',
      '2026-05-01T00:00:00',
      '2026-13-01T00:00:00Z',
      '2026-02-29T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '2026-05-01T24:00:00Z',
      '2026-05-01T00:60:00Z',
      '2026-05-01T00:00:00+25:00',
      '1714521600',
      'May 1 2026',
      ' 2026-05-01T00:00:00Z',
    ];
    for (const text of bad) {
      assert.throws(
        () => parseRfc3339(text, '--before'),
        (error: unknown) =>
          error instanceof PortunusError &&
          error.code === 'invalid_timestamp' &&
          error.exitCode === 2 &&
          error.message.includes('--before'),
        text,
      );
    }
  });

  it('round-trips through formatRfc3339 and renders compact stamps', () => {
    const t = Date.UTC(2026, 4, 8, 12, 34, 56, 789);
    assert.equal(formatRfc3339(t), '2026-05-08T12:34:56.789Z');
    assert.equal(parseRfc3339(formatRfc3339(t)), t);
    assert.equal(compactUtcStamp(t), '20260508T123456Z');
  });
});
