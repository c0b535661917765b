// Proves the quota period arithmetic of reference §5.10: months added to the anchor with the day
// clamped to the month's end but always recomputed from the anchor (Jan 31 → Feb 28/29 → Mar 31),
// leap-day anchors, the anchor's time of day kept, reset days, a clock jump of several months
// caught up in one rollover and a clock rewind never rolling back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  anchorForResetDay,
  monthlyPeriodAt,
  periodEnd,
  periodIndexAt,
  periodStart,
  rolloverTo,
} from './quota-period.js';

const utc = (y: number, m: number, d: number, h = 0, min = 0): number =>
  Date.UTC(y, m - 1, d, h, min);
const iso = (ms: number): string => new Date(ms).toISOString();

describe('quota periods', () => {
  it('clamps a Jan 31 anchor to the end of short months and returns to the 31st', () => {
    const anchor = utc(2025, 1, 31, 10, 30);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((n) => iso(periodStart(anchor, n))),
      [
        '2025-01-31T10:30:00.000Z',
        '2025-02-28T10:30:00.000Z',
        '2025-03-31T10:30:00.000Z',
        '2025-04-30T10:30:00.000Z',
        '2025-05-31T10:30:00.000Z',
      ],
    );
    // In a leap year February has a 29th.
    assert.equal(iso(periodStart(utc(2024, 1, 31), 1)), '2024-02-29T00:00:00.000Z');
  });

  it('honours a leap-day anchor in leap years only', () => {
    const anchor = utc(2024, 2, 29, 6);
    assert.equal(iso(periodStart(anchor, 12)), '2025-02-28T06:00:00.000Z');
    assert.equal(iso(periodStart(anchor, 13)), '2025-03-29T06:00:00.000Z');
    assert.equal(iso(periodStart(anchor, 48)), '2028-02-29T06:00:00.000Z');
  });

  it('crosses year ends', () => {
    const anchor = utc(2025, 11, 15);
    assert.equal(iso(periodStart(anchor, 2)), '2026-01-15T00:00:00.000Z');
    assert.equal(iso(periodStart(anchor, 14)), '2027-01-15T00:00:00.000Z');
  });

  it('finds the period holding an instant, with the time of day deciding the boundary', () => {
    const anchor = utc(2025, 1, 31, 10);
    // Feb 28 09:59 is still January's period; 10:00 starts February's.
    assert.equal(periodIndexAt(anchor, utc(2025, 2, 28, 9, 59)), 0);
    assert.equal(periodIndexAt(anchor, utc(2025, 2, 28, 10)), 1);
    assert.equal(periodIndexAt(anchor, utc(2025, 3, 30)), 1);
    assert.equal(periodIndexAt(anchor, utc(2025, 3, 31, 10)), 2);
    // Before the anchor: period 0.
    assert.equal(periodIndexAt(anchor, utc(2024, 6, 1)), 0);
    assert.deepEqual(monthlyPeriodAt(anchor, utc(2025, 3, 1)), {
      start: utc(2025, 2, 28, 10),
      end: utc(2025, 3, 31, 10),
    });
  });

  it('turns a reset day into the latest midnight of that day not after now', () => {
    assert.equal(iso(anchorForResetDay(15, utc(2026, 5, 20, 8))), '2026-05-15T00:00:00.000Z');
    assert.equal(iso(anchorForResetDay(15, utc(2026, 5, 10))), '2026-04-15T00:00:00.000Z');
    assert.equal(iso(anchorForResetDay(1, utc(2026, 1, 1))), '2026-01-01T00:00:00.000Z');
    assert.equal(iso(anchorForResetDay(28, utc(2026, 1, 3))), '2025-12-28T00:00:00.000Z');
  });

  it('rolls a due period into the current one in one step after a clock jump', () => {
    const anchor = utc(2026, 1, 31);
    const quota = {
      period: 'monthly' as const,
      billingAnchor: anchor,
      currentPeriodStartedAt: anchor,
    };
    assert.equal(periodEnd(quota), utc(2026, 2, 28));
    assert.equal(rolloverTo(quota, utc(2026, 2, 27, 23, 59)), undefined);
    assert.equal(rolloverTo(quota, utc(2026, 2, 28)), utc(2026, 2, 28));
    // Five months later at once: straight into June's period (started May 31).
    assert.equal(iso(rolloverTo(quota, utc(2026, 6, 15)) ?? 0), '2026-05-31T00:00:00.000Z');
  });

  it('never rolls back when the clock goes backwards', () => {
    const anchor = utc(2026, 1, 10);
    const quota = {
      period: 'monthly' as const,
      billingAnchor: anchor,
      currentPeriodStartedAt: utc(2026, 4, 10),
    };
    // The clock rewound to February: the stored period stays, nothing is due.
    assert.equal(rolloverTo(quota, utc(2026, 2, 15)), undefined);
    assert.equal(periodEnd(quota), utc(2026, 5, 10));
  });

  it('gives a never-renewing allowance no end and no rollover', () => {
    const quota = { period: 'never' as const, billingAnchor: 0, currentPeriodStartedAt: 0 };
    assert.equal(periodEnd(quota), null);
    assert.equal(rolloverTo(quota, utc(2099, 1, 1)), undefined);
  });
});
