// Proves the traffic task's schedule without waiting: it runs once at start (catch-up), then at
// one minute past each hour, with an injected clock and timer against a real store file.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { silentLogger } from '@portunus/core';
import { HOUR_MS, MINUTE_MS, openStore, trafficRolledUntil } from '@portunus/store';
import { tempDirs } from '@portunus/test-support';

import { TrafficMaintenance, nextMaintenanceAt, type MaintenanceTimers } from './maintenance.js';

const dirs = tempDirs();
after(() => {
  dirs.cleanup();
});

const H = Date.UTC(2026, 4, 1, 12, 0, 0);

describe('nextMaintenanceAt', () => {
  it('is the next H+1 min strictly after now', () => {
    assert.equal(nextMaintenanceAt(H), H + MINUTE_MS);
    assert.equal(nextMaintenanceAt(H + MINUTE_MS - 1), H + MINUTE_MS);
    assert.equal(nextMaintenanceAt(H + MINUTE_MS), H + HOUR_MS + MINUTE_MS);
    assert.equal(nextMaintenanceAt(H + 59 * MINUTE_MS), H + HOUR_MS + MINUTE_MS);
  });
});

describe('TrafficMaintenance', () => {
  it('rolls up at start and again at each H+1 min, and stops cleanly', () => {
    const store = openStore(dirs.make('portunus-traffic-task-'));
    let clock = H + 30 * MINUTE_MS;
    const pending: { run: () => void; delayMs: number }[] = [];
    let cleared = 0;
    const timers: MaintenanceTimers = {
      setTimeout: (run, delayMs) => {
        pending.push({ run, delayMs });
        return {};
      },
      clearTimeout: () => {
        cleared += 1;
      },
    };
    const task = new TrafficMaintenance({
      db: store.db,
      logger: silentLogger,
      now: () => clock,
      timers,
    });
    task.start();
    assert.equal(trafficRolledUntil(store.db), H);
    assert.equal(pending.length, 1);
    assert.equal(pending[0]?.delayMs, 31 * MINUTE_MS);
    clock = H + HOUR_MS + MINUTE_MS;
    pending.shift()?.run();
    assert.equal(trafficRolledUntil(store.db), H + HOUR_MS);
    assert.deepEqual(
      pending.map((timer) => timer.delayMs),
      [HOUR_MS],
    );
    task.stop();
    assert.equal(cleared, 1);
    store.close();
  });
});
