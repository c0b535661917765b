// Proves the quota rollover as `serve` runs it (reference §5.10): the engine's own periodic task,
// scheduled every 60 s on an injected timer, is what rolls a due period over and pushes
// TrafficQuotaUpdate{SET} with the whole budget to the live client; a tick before the period ends
// changes and pushes nothing; stop() clears the task. And `quota.threshold` alerts, once per
// threshold per period, fire again in the period after a rollover — delivered by the real
// dispatcher to a real webhook receiver on loopback. Real store, real fleet with a recording
// session stream, real traffic accounting; the clock is the harness's.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Registry } from 'prom-client';

import { silentLogger } from '@portunus/core';
import type { ServerMessage, TrafficQuotaUpdate } from '@portunus/proto';
import { getQuotaOrThrow, insertClient } from '@portunus/store';
import { WebhookReceiver } from '@portunus/test-support';

import type { ControlFleet } from '../control/fleet.js';
import { ContractHarness } from '../operator/contract.harness.js';
import {
  activeTcpRule,
  grantTcpPorts,
  openEdge,
  quotaFleet,
  wireStats,
} from '../operator/traffic.harness.js';
import { putQuota } from '../services/quotas.js';
import { AlertDispatcher, Alerter, type AlertBody } from './alerts.js';
import { QUOTA_ROLLOVER_INTERVAL_MS, type QuotaEngine } from './quotas.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZR1';
const LIMIT = 1000;

let h: ContractHarness;
let engine: QuotaEngine;
let fleet: ControlFleet;
let session: ReturnType<ControlFleet['open']>;
let dispatcher: AlertDispatcher;
const receiver = new WebhookReceiver();
let sent: ServerMessage[] = [];
let ruleId = 0;
let reported = 0;

/** The injected timer: what the engine scheduled, and a way to run it as the interval would. */
const scheduled: { run: () => void; everyMs: number; handle: number }[] = [];
const cleared: unknown[] = [];

function tick(): void {
  assert.equal(scheduled.length, 1, 'one periodic task');
  scheduled[0]!.run();
}

function updates(): TrafficQuotaUpdate[] {
  return sent.flatMap((message) =>
    'traffic_quota_update' in message ? [message.traffic_quota_update] : [],
  );
}

/** The rule's cumulative counters grow by `bytes` (half in, half out) in the next stats round. */
function transfer(bytes: number): void {
  reported += bytes;
  fleet.report(session, {
    sent_at_unix_ms: h.clock,
    stats: [wireStats(ruleId, Math.floor(reported / 2), Math.ceil(reported / 2))],
  });
}

/** The thresholds of the quota.threshold alerts the receiver got, in order. */
async function thresholdsDelivered(count: number): Promise<number[]> {
  await receiver.waitForCount(count, `${count} threshold alerts`);
  await dispatcher.idle();
  return receiver
    .bodies<AlertBody>()
    .filter((body) => body.event === 'quota.threshold')
    .map((body) => Number(body.subject['threshold']));
}

before(async () => {
  await receiver.start();
  h = new ContractHarness();
  dispatcher = new AlertDispatcher({
    config: { webhookUrls: [receiver.url], secret: 'a-webhook-secret-of-enough-bytes' },
    logger: silentLogger,
    registry: new Registry(),
    audit: { offer: () => true },
    now: () => h.clock,
  });
  const alerter = new Alerter({
    dispatcher,
    config: { clientOfflineGraceSecs: 60, targetDebounceSecs: 30 },
    now: () => h.clock,
  });
  ({ fleet, engine } = quotaFleet(h, {
    engine: {
      alerts: alerter,
      timers: {
        setInterval: (run, everyMs) => {
          const handle = scheduled.length + 1;
          scheduled.push({ run, everyMs, handle });
          return { unref: () => undefined, handle };
        },
        clearInterval: (handle) => cleared.push(handle),
      },
    },
  }));
  await h.addUser('alice', 'user');
  insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-r', now: h.clock });
  grantTcpPorts(h, {
    grantId: '01HZZZZZZZZZZZZZZZZZZZZGR1',
    userId: 'alice',
    clientId: EDGE,
    start: 20000,
    end: 20999,
  });
  ruleId = activeTcpRule(h, EDGE, 'alice', 20000);
  session = openEdge(fleet, { clientId: EDGE, clientName: 'edge-r' }, (message) => {
    sent.push(message);
  });
});

after(async () => {
  dispatcher.close();
  await receiver.stop();
  await h.close();
});

describe('quota rollover on the 60 s task', () => {
  it('schedules the rollover every 60 s when started', () => {
    engine.start();
    assert.equal(QUOTA_ROLLOVER_INTERVAL_MS, 60_000);
    assert.deepEqual(
      scheduled.map((task) => task.everyMs),
      [60_000],
    );
  });

  it('fires 0.8 and 1.0 once each in the first period', async () => {
    const view = putQuota(
      { db: h.store.db, engine, quotaGate: () => undefined, now: () => h.clock },
      { userId: 'root', role: 'superadmin' },
      'alice',
      EDGE,
      { monthly_bytes: LIMIT },
    );
    assert.equal(view.current_period_ends_at, Date.UTC(2026, 5, 1, 12) / 1000);
    transfer(850);
    transfer(200);
    transfer(100);
    assert.deepEqual(await thresholdsDelivered(2), [0.8, 1]);
    assert.equal(getQuotaOrThrow(h.store.db, 'alice', EDGE).exhaustedAt, h.clock);
  });

  it('a tick before the period ends rolls and pushes nothing', () => {
    h.clock = Date.UTC(2026, 5, 1, 11, 59);
    sent = [];
    tick();
    assert.deepEqual(updates(), []);
    assert.equal(getQuotaOrThrow(h.store.db, 'alice', EDGE).currentPeriodBytesUsed, 1150);
  });

  it('the first tick after the period end rolls it over and pushes SET with the whole budget', () => {
    h.clock = Date.UTC(2026, 5, 1, 12, 0, 30);
    sent = [];
    tick();
    const quota = getQuotaOrThrow(h.store.db, 'alice', EDGE);
    assert.equal(quota.currentPeriodBytesUsed, 0);
    assert.equal(quota.currentPeriodStartedAt, Date.UTC(2026, 5, 1, 12));
    assert.equal(quota.exhaustedAt, null);
    assert.deepEqual(quota.alertsFired, []);
    const [update, ...rest] = updates();
    assert.deepEqual(rest, []);
    assert.equal(update?.action, 'SET');
    assert.equal(update.client_id, EDGE);
    assert.equal(update.user_id, 'alice');
    assert.deepEqual(update.state, {
      monthly_bytes: LIMIT,
      budget_remaining_bytes: LIMIT,
      period_started_at_unix_sec: Date.UTC(2026, 5, 1, 12) / 1000,
      period_ends_at_unix_sec: Date.UTC(2026, 6, 1, 12) / 1000,
      exhausted: false,
    });
    sent = [];
    tick();
    assert.deepEqual(updates(), [], 'the next tick finds nothing due');
  });

  it('fires 0.8 and 1.0 again in the new period, once each', async () => {
    transfer(810);
    transfer(190);
    transfer(500);
    assert.deepEqual(await thresholdsDelivered(4), [0.8, 1, 0.8, 1]);
    const quota = getQuotaOrThrow(h.store.db, 'alice', EDGE);
    assert.equal(quota.currentPeriodBytesUsed, 1500);
    assert.deepEqual(quota.alertsFired, [0.8, 1]);
  });

  it('stop() clears the periodic task', () => {
    engine.stop();
    assert.equal(cleared.length, 1);
  });
});
