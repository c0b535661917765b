// Proves traffic quotas through the real parts: the quota routes over the real store, the real
// fleet with a recording session stream (what the edge would receive), the real traffic
// accounting feeding the real quota engine. Covered: QuotaView in the reference shape; the grant
// and capability gates (quota_target_not_found, quota_unsupported_by_client for offline and old
// clients; soft quotas storable offline); every bad input refused with its code and nothing
// stored; RBAC (superadmin writes, users read only their own); usage from stats rounds crossing
// the limit (exhausted, SET pushed, counter bumped, thresholds fired once); replacement keeping
// usage unless cleared (DESIGN.md §8.9); PATCH raising the limit and clearing; DELETE pushing
// REMOVE; rollover after a clock jump, never back after a rewind; the Welcome replay matched by
// client_id; the metrics; the audit rows. The clock is the harness's; nothing waits.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import type { InjectOptions } from 'fastify';

import type { QuotaView } from '@portunus/api';
import type { ServerMessage, TrafficQuotaUpdate } from '@portunus/proto';

type InjectPayload = InjectOptions['payload'];
import { insertClient, listQuotas, type TrafficQuota } from '@portunus/store';

import type { ControlFleet } from '../control/fleet.js';
import type { QuotaEngine } from '../traffic/quotas.js';
import { ContractHarness, errorCode } from './contract.harness.js';
import {
  activeTcpRule,
  grantTcpPorts,
  openEdge,
  quotaFleet,
  quotaStatus,
  wireStats,
} from './traffic.harness.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZQ1';
const OLD_EDGE = '01HZZZZZZZZZZZZZZZZZZZZZQ2';
const OFFLINE = '01HZZZZZZZZZZZZZZZZZZZZZQ3';
const NO_GRANT = '01HZZZZZZZZZZZZZZZZZZZZZQ4';

let h: ContractHarness;
let fleet: ControlFleet;
let engine: QuotaEngine;
let root: string;
let alice: string;
let session: ReturnType<ControlFleet['open']>;
let sent: ServerMessage[] = [];
let ruleId = 0;
let reported = 0;
const fired: { user: string; threshold: number }[] = [];

/** Alice's rule on EDGE moves `bytes` more (half in, half out), as the next stats round. */
function transfer(bytes: number): void {
  reported += bytes;
  fleet.report(session, {
    sent_at_unix_ms: h.clock,
    stats: [wireStats(ruleId, Math.floor(reported / 2), Math.ceil(reported / 2))],
  });
}

function quotaUpdates(): TrafficQuotaUpdate[] {
  return updatesIn(sent);
}

function updatesIn(messages: readonly ServerMessage[]): TrafficQuotaUpdate[] {
  return messages.flatMap((message) =>
    'traffic_quota_update' in message ? [message.traffic_quota_update] : [],
  );
}

async function put(
  token: string,
  client: string,
  payload: InjectPayload,
  user = 'alice',
): Promise<ReturnType<ContractHarness['inject']>> {
  return h.bearer(token, { method: 'PUT', url: `/v1/users/${user}/quotas/${client}`, payload });
}

function status(user = 'alice', client = EDGE): Promise<QuotaView> {
  return quotaStatus(h, root, user, client);
}

function storedQuotas(): TrafficQuota[] {
  return listQuotas(h.store.db);
}

async function metricValue(name: string, user: string): Promise<number | undefined> {
  for (const line of (await h.metrics.render()).split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(`user="${user}"`)) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return undefined;
}

before(async () => {
  h = new ContractHarness();
  ({ fleet, engine } = quotaFleet(h, {
    engine: {
      alerts: {
        quotaThreshold: (quota, threshold) => fired.push({ user: quota.userId, threshold }),
      },
    },
  }));
  h.context.fleet = fleet;
  h.context.quotas = engine;
  root = await h.addUser('root', 'superadmin');
  alice = await h.addUser('alice', 'user');
  await h.addUser('bob', 'user');
  for (const [clientId, clientName] of [
    [EDGE, 'edge-1'],
    [OLD_EDGE, 'edge-old'],
    [OFFLINE, 'edge-off'],
    [NO_GRANT, 'edge-nogrant'],
  ] as const) {
    insertClient(h.store.db, { clientId, clientName, now: h.clock });
  }
  let grant = 0;
  for (const clientId of [EDGE, OLD_EDGE, OFFLINE]) {
    grantTcpPorts(h, {
      grantId: `01HZZZZZZZZZZZZZZZZZZZZG0${grant++}`,
      userId: 'alice',
      clientId,
      start: 20000,
      end: 20999,
    });
  }
  ruleId = activeTcpRule(h, EDGE, 'alice', 20000);
  const record = (message: ServerMessage): void => {
    sent.push(message);
  };
  session = openEdge(fleet, { clientId: EDGE, clientName: 'edge-1' }, record);
  openEdge(
    fleet,
    { clientId: OLD_EDGE, clientName: 'edge-old', remoteAddr: '127.0.0.1:5556' },
    record,
    { client_version: '0.12.3' },
  );
});

beforeEach(() => {
  sent = [];
});

after(() => h.close());

describe('quota routes: refusals store nothing', () => {
  it('refuses a quota where the user has no grant (422 quota_target_not_found)', async () => {
    const response = await put(root, NO_GRANT, { monthly_bytes: 1000 });
    assert.equal(response.statusCode, 422);
    assert.equal(errorCode(response), 'quota_target_not_found');
    assert.deepEqual(storedQuotas(), []);
  });

  it('refuses a hard quota for an offline or too old client, but stores a soft one', async () => {
    for (const client of [OFFLINE, OLD_EDGE]) {
      const response = await put(root, client, { monthly_bytes: 1000 });
      assert.equal(response.statusCode, 422, client);
      assert.equal(errorCode(response), 'quota_unsupported_by_client');
    }
    assert.deepEqual(storedQuotas(), []);
    const soft = await put(root, OFFLINE, { monthly_bytes: 1000, enforcement: 'soft' });
    assert.equal(soft.statusCode, 200, soft.body);
    assert.equal(soft.json<QuotaView>().enforcement, 'soft');
    // Switching it to hard is gated like a PUT.
    const hard = await h.bearer(root, {
      method: 'PATCH',
      url: `/v1/users/alice/quotas/${OFFLINE}`,
      payload: { enforcement: 'hard' },
    });
    assert.equal(errorCode(hard), 'quota_unsupported_by_client');
    assert.equal((await status('alice', OFFLINE)).enforcement, 'soft');
    const removed = await h.bearer(root, {
      method: 'DELETE',
      url: `/v1/users/alice/quotas/${OFFLINE}`,
    });
    assert.equal(removed.statusCode, 204);
    assert.deepEqual(quotaUpdates(), [], 'an offline client is sent nothing');
  });

  it('refuses every bad body with its code', async () => {
    const cases: [InjectPayload, number, string][] = [
      [{ monthly_bytes: -1 }, 400, 'invalid_quota_size'],
      [{ monthly_bytes: 1.5 }, 400, 'invalid_quota_size'],
      [{ monthly_bytes: '100' }, 400, 'invalid_quota_size'],
      [{ monthly_bytes: 2 ** 53 }, 400, 'invalid_quota_size'],
      [{}, 400, 'invalid_quota_size'],
      [{ monthly_bytes: 10, billing_anchor: -5 }, 400, 'invalid_billing_anchor'],
      [{ monthly_bytes: 10, billing_anchor: 1.5 }, 400, 'invalid_billing_anchor'],
      [{ monthly_bytes: 10, billing_anchor: 4_000_000_000 }, 400, 'invalid_billing_anchor'],
      [{ monthly_bytes: 10, billing_anchor: 0, reset_day: 3 }, 400, 'invalid_billing_anchor'],
      [{ monthly_bytes: 10, reset_day: 29 }, 400, 'invalid_quota_policy'],
      [{ monthly_bytes: 10, reset_day: 0 }, 400, 'invalid_quota_policy'],
      [{ monthly_bytes: 10, reset_day: 5, period: 'never' }, 400, 'invalid_quota_policy'],
      [{ monthly_bytes: 10, enforcement: 'maybe' }, 400, 'invalid_quota_policy'],
      [{ monthly_bytes: 10, period: 'weekly' }, 400, 'invalid_quota_policy'],
      [{ monthly_bytes: 10, clear_period_usage: 'yes' }, 400, 'validation_failed'],
      [{ monthly_bytes: 10, extra: 1 }, 400, 'validation_failed'],
      [[1], 400, 'validation_failed'],
    ];
    for (const [payload, statusCode, code] of cases) {
      const response = await put(root, EDGE, payload);
      assert.equal(response.statusCode, statusCode, JSON.stringify(payload));
      assert.equal(errorCode(response), code, JSON.stringify(payload));
    }
    const unknownUser = await put(root, EDGE, { monthly_bytes: 10 }, 'nobody');
    assert.equal(errorCode(unknownUser), 'user_not_found');
    const unknownClient = await put(root, '01HZZZZZZZZZZZZZZZZZZZZZZZ', { monthly_bytes: 10 });
    assert.equal(errorCode(unknownClient), 'client_not_found');
    assert.deepEqual(storedQuotas(), []);
    assert.deepEqual(quotaUpdates(), []);
  });

  it('lets only superadmins write, and users read only their own', async () => {
    const denied = await put(alice, EDGE, { monthly_bytes: 10 });
    assert.equal(denied.statusCode, 403);
    assert.equal(errorCode(denied), 'role_required');
    assert.deepEqual(storedQuotas(), []);
    const others = await h.bearer(alice, { method: 'GET', url: '/v1/users/bob/quotas' });
    assert.equal(others.statusCode, 403);
    assert.equal(errorCode(others), 'not_owner');
    const othersStatus = await h.bearer(alice, {
      method: 'GET',
      url: `/v1/users/bob/quotas/${EDGE}/status`,
    });
    assert.equal(errorCode(othersStatus), 'not_owner');
    const othersTraffic = await h.bearer(alice, {
      method: 'GET',
      url: `/v1/users/bob/traffic?from=${Math.floor(h.clock / 1000) - 60}&to=${Math.floor(h.clock / 1000)}`,
    });
    assert.equal(othersTraffic.statusCode, 403);
    const clientList = await h.bearer(alice, { method: 'GET', url: `/v1/clients/${EDGE}/quotas` });
    assert.equal(errorCode(clientList), 'role_required');
    const own = await h.bearer(alice, { method: 'GET', url: '/v1/users/alice/quotas' });
    assert.equal(own.statusCode, 200);
    assert.deepEqual(own.json(), []);
    const missing = await h.bearer(alice, {
      method: 'GET',
      url: `/v1/users/alice/quotas/${EDGE}/status`,
    });
    assert.equal(missing.statusCode, 404);
    assert.equal(errorCode(missing), 'quota_not_found');
  });
});

describe('a hard quota from PUT to exhaustion, replacement, PATCH, rollover and DELETE', () => {
  it('answers QuotaView and pushes SET with the whole budget', async () => {
    const response = await put(root, 'edge-1', { monthly_bytes: 1000 });
    assert.equal(response.statusCode, 200, response.body);
    const view = response.json<QuotaView>();
    const now = Math.floor(h.clock / 1000);
    assert.deepEqual(Object.keys(view).sort(), [
      'billing_anchor',
      'budget_remaining_bytes',
      'client_id',
      'client_name',
      'created_at',
      'current_period_bytes_used',
      'current_period_ends_at',
      'current_period_started_at',
      'enforcement',
      'exhausted',
      'exhausted_at',
      'monthly_bytes',
      'period',
      'reset_day',
      'updated_at',
      'user_id',
    ]);
    assert.equal(view.client_id, EDGE);
    assert.equal(view.client_name, 'edge-1');
    assert.equal(view.billing_anchor, now);
    assert.equal(view.current_period_started_at, now);
    // The harness clock is 2026-05-01T12:00Z: the period ends a calendar month later.
    assert.equal(view.current_period_ends_at, Date.UTC(2026, 5, 1, 12) / 1000);
    assert.equal(view.budget_remaining_bytes, 1000);
    assert.equal(view.exhausted, false);
    assert.equal(view.exhausted_at, null);
    const [update] = quotaUpdates();
    assert.equal(update?.action, 'SET');
    assert.equal(update.client_id, EDGE);
    assert.equal(update.user_id, 'alice');
    assert.deepEqual(update.state, {
      monthly_bytes: 1000,
      budget_remaining_bytes: 1000,
      period_started_at_unix_sec: now,
      period_ends_at_unix_sec: Date.UTC(2026, 5, 1, 12) / 1000,
      exhausted: false,
    });
  });

  it('adds usage from stats rounds and exhausts on the first crossing only', async () => {
    transfer(700);
    let view = await status();
    assert.equal(view.current_period_bytes_used, 700);
    assert.equal(view.exhausted, false);
    assert.deepEqual(quotaUpdates(), [], 'no push below the limit');
    assert.deepEqual(fired, [{ user: 'alice', threshold: 0.8 }].slice(0, 0));
    transfer(150);
    assert.deepEqual(fired, [{ user: 'alice', threshold: 0.8 }]);
    h.clock += 60_000;
    transfer(200);
    view = await status();
    assert.equal(view.current_period_bytes_used, 1050);
    assert.equal(view.budget_remaining_bytes, -50);
    assert.equal(view.exhausted, true);
    assert.equal(view.exhausted_at, Math.floor(h.clock / 1000));
    const [update] = quotaUpdates();
    assert.equal(update?.action, 'SET');
    assert.equal(update.state?.exhausted, true);
    assert.equal(update.state.budget_remaining_bytes, -50);
    assert.deepEqual(fired, [
      { user: 'alice', threshold: 0.8 },
      { user: 'alice', threshold: 1 },
    ]);
    // More bytes after exhaustion: no second push, no second alert, no second count.
    sent = [];
    transfer(10);
    assert.deepEqual(quotaUpdates(), []);
    assert.equal(fired.length, 2);
    assert.equal(await metricValue('portunus_traffic_quota_exhausted_total', 'alice'), 1);
    assert.equal(await metricValue('portunus_traffic_quota_exhausted', 'alice'), 1);
    assert.equal(await metricValue('portunus_traffic_quota_bytes_used', 'alice'), 1060);
    assert.equal(await metricValue('portunus_traffic_quota_bytes_limit', 'alice'), 1000);
  });

  it('keeps usage when the quota is replaced, and clears it only when asked', async () => {
    const kept = await put(root, EDGE, { monthly_bytes: 5000 });
    assert.equal(kept.statusCode, 200, kept.body);
    const view = kept.json<QuotaView>();
    assert.equal(view.current_period_bytes_used, 1060);
    assert.equal(view.exhausted, false);
    assert.equal(quotaUpdates()[0]?.state?.budget_remaining_bytes, 3940);
    const lowered = await put(root, EDGE, { monthly_bytes: 1000 });
    assert.equal(lowered.json<QuotaView>().exhausted, true);
    const cleared = await put(root, EDGE, { monthly_bytes: 1000, clear_period_usage: true });
    assert.equal(cleared.json<QuotaView>().current_period_bytes_used, 0);
    assert.equal(cleared.json<QuotaView>().exhausted, false);
  });

  it('PATCH applies the limit, then the clear, with one SET push', async () => {
    transfer(1200);
    assert.equal((await status()).exhausted, true);
    sent = [];
    const raised = await h.bearer(root, {
      method: 'PATCH',
      url: `/v1/users/alice/quotas/${EDGE}`,
      payload: { monthly_bytes: 2000 },
    });
    assert.equal(raised.statusCode, 200, raised.body);
    assert.equal(raised.json<QuotaView>().exhausted, false);
    assert.equal(raised.json<QuotaView>().budget_remaining_bytes, 800);
    assert.equal(quotaUpdates().length, 1);
    assert.equal(quotaUpdates()[0]?.state?.budget_remaining_bytes, 800);
    const bad = await h.bearer(root, {
      method: 'PATCH',
      url: `/v1/users/alice/quotas/${EDGE}`,
      payload: { monthly_bytes: -3 },
    });
    assert.equal(errorCode(bad), 'invalid_quota_size');
    const clearedNow = await h.bearer(root, {
      method: 'PATCH',
      url: `/v1/users/alice/quotas/${EDGE}`,
      payload: { monthly_bytes: 100, clear_period_usage: true },
    });
    assert.equal(clearedNow.json<QuotaView>().monthly_bytes, 100);
    assert.equal(clearedNow.json<QuotaView>().current_period_bytes_used, 0);
    assert.equal(quotaUpdates().length, 2);
  });

  it('rolls a due period over once after a clock jump, and never back after a rewind', async () => {
    transfer(90);
    const before = await status();
    const jumped = h.clock + 95 * 86_400_000;
    h.clock = jumped;
    sent = [];
    assert.equal(engine.rollover(), 1);
    const view = await status();
    assert.equal(view.current_period_bytes_used, 0);
    // Three months on, in one step: the period holding now (anchor day 1, 12:00 UTC).
    assert.equal(view.current_period_started_at, Date.UTC(2026, 7, 1, 12) / 1000);
    assert.ok(view.current_period_started_at > before.current_period_started_at);
    assert.equal(quotaUpdates()[0]?.state?.budget_remaining_bytes, 100);
    assert.equal(await metricValue('portunus_traffic_quota_period_resets_total', 'alice'), 1);
    assert.equal(engine.rollover(), 0, 'not due again');
    h.clock = jumped - 40 * 86_400_000;
    assert.equal(engine.rollover(), 0, 'a rewind rolls nothing back');
    assert.equal((await status()).current_period_started_at, view.current_period_started_at);
    h.clock = jumped;
  });

  it('replays each quota of the client after Welcome, matched by client_id', () => {
    const again = openEdge(
      fleet,
      { clientId: EDGE, clientName: 'edge-1', remoteAddr: '127.0.0.1:5557' },
      (message) => sent.push(message),
    );
    assert.equal(fleet.replayQuotas(again), 1);
    assert.equal(quotaUpdates()[0]?.user_id, 'alice');
    assert.equal(quotaUpdates()[0]?.action, 'SET');
    session = again;
    const replayed: ServerMessage[] = [];
    const old = openEdge(
      fleet,
      { clientId: OLD_EDGE, clientName: 'edge-old', remoteAddr: '127.0.0.1:5558' },
      (message) => replayed.push(message),
      { client_version: '0.12.0' },
    );
    assert.equal(fleet.replayQuotas(old), 0, 'replay skipped for an old client');
  });

  it('a soft quota is taken off the edge (REMOVE) and never stops traffic', async () => {
    const soft = await put(root, EDGE, { monthly_bytes: 100, enforcement: 'soft' });
    assert.equal(soft.statusCode, 200, soft.body);
    assert.equal(quotaUpdates()[0]?.action, 'REMOVE');
    sent = [];
    transfer(500);
    const view = await status('alice', EDGE);
    assert.equal(view.exhausted, true);
    assert.deepEqual(quotaUpdates(), [], 'soft exhaustion pushes nothing');
  });

  it('a never-renewing allowance has no period end and is not rolled over', async () => {
    const once = await put(root, EDGE, {
      monthly_bytes: 10_000,
      enforcement: 'hard',
      period: 'never',
    });
    assert.equal(once.statusCode, 200, once.body);
    assert.equal(once.json<QuotaView>().current_period_ends_at, null);
    assert.equal(quotaUpdates()[0]?.state?.period_ends_at_unix_sec, 0);
    h.clock += 400 * 86_400_000;
    assert.equal(engine.rollover(), 0);
  });

  it('DELETE removes the quota and pushes REMOVE; a second DELETE is 404', async () => {
    const listed = await h.bearer(root, { method: 'GET', url: `/v1/clients/${EDGE}/quotas` });
    assert.equal(listed.json<QuotaView[]>().length, 1);
    const removed = await h.bearer(root, {
      method: 'DELETE',
      url: `/v1/users/alice/quotas/${EDGE}`,
    });
    assert.equal(removed.statusCode, 204);
    assert.equal(quotaUpdates()[0]?.action, 'REMOVE');
    assert.equal(quotaUpdates()[0]?.client_id, EDGE);
    const again = await h.bearer(root, { method: 'DELETE', url: `/v1/users/alice/quotas/${EDGE}` });
    assert.equal(again.statusCode, 404);
    assert.equal(errorCode(again), 'quota_not_found');
    assert.equal(await metricValue('portunus_traffic_quota_bytes_used', 'alice'), undefined);
  });

  it('writes a named audit row for every change', () => {
    const actions = h
      .auditRows()
      .filter((row) => row.action?.startsWith('operator.quota_'))
      .map((row) => `${row.action} ${row.resourceValue}`);
    assert.ok(actions.includes(`operator.quota_set alice/${EDGE}`), actions.join('\n'));
    assert.ok(actions.includes(`operator.quota_updated alice/${EDGE}`));
    assert.ok(actions.includes(`operator.quota_removed alice/${EDGE}`));
  });
});
