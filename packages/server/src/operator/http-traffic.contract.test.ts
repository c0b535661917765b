// Proves traffic history through the real parts: StatsReports handed to the real fleet become
// stored per-owner samples (one transaction per round, a client restart neither doubling nor
// losing bytes), which the three traffic routes answer in the reference shape with 1m/1h
// buckets, the auto bucket, RBAC (own traffic for users, everything for superadmins), and every
// bad input refused with its catalogued code. The clock is the harness's; nothing waits.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { silentLogger } from '@portunus/core';
import type { WireRuleStats } from '@portunus/proto';
import { HOUR_MS, MINUTE_MS, insertClient } from '@portunus/store';

import { ControlFleet } from '../control/fleet.js';
import type { TrafficView } from '../services/traffic.js';
import { TrafficAccounting } from '../traffic/accounting.js';
import { TrafficMaintenance } from '../traffic/maintenance.js';
import { ContractHarness, errorCode } from './contract.harness.js';
import { activeTcpRule, wireStats } from './traffic.harness.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const OTHER = '01HZZZZZZZZZZZZZZZZZZZZZZ2';

let h: ContractHarness;
let fleet: ControlFleet;
let root: string;
let alice: string;
let session: ReturnType<ControlFleet['open']>;
const rules: Record<'alice1' | 'alice2' | 'bob', number> = { alice1: 0, alice2: 0, bob: 0 };
/** The clock at the first report, on a minute boundary. */
let t0: number;

function report(at: number, entries: WireRuleStats[]): void {
  h.clock = at;
  fleet.report(session, { sent_at_unix_ms: at, stats: entries });
}

const secs = (ms: number): number => Math.floor(ms / 1000);

async function get(token: string, url: string): Promise<TrafficView> {
  const response = await h.bearer(token, { method: 'GET', url });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<TrafficView>();
}

before(async () => {
  h = new ContractHarness();
  fleet = new ControlFleet({
    db: h.store.db,
    logger: silentLogger,
    metrics: h.metrics,
    now: () => h.clock,
    traffic: new TrafficAccounting({ db: h.store.db, logger: silentLogger, now: () => h.clock }),
  });
  h.context.fleet = fleet;
  root = await h.addUser('root', 'superadmin');
  alice = await h.addUser('alice', 'user');
  await h.addUser('bob', 'user');
  insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-1', now: h.clock });
  insertClient(h.store.db, { clientId: OTHER, clientName: 'edge-2', now: h.clock });
  const rule = (ownerUserId: string, listenPort: number): number =>
    activeTcpRule(h, EDGE, ownerUserId, listenPort);
  rules.alice1 = rule('alice', 20000);
  rules.alice2 = rule('alice', 20001);
  rules.bob = rule('bob', 20002);
  session = fleet.open(
    { clientId: EDGE, clientName: 'edge-1', remoteAddr: '127.0.0.1:5555' },
    { protocol_version: '1.0.0', client_version: '0.1.0', supported_protocols: ['TCP', 'UDP'] },
    { send: () => undefined, end: () => undefined },
  );
  t0 = h.clock - (h.clock % HOUR_MS);
  // Minute 0: three rules report; minute 1: alice1 grows, then the client restarts (counters
  // start over) and reports again in minute 2.
  report(t0 + 5_000, [
    wireStats(rules.alice1, 100, 1000),
    wireStats(rules.alice2, 10, 20),
    wireStats(rules.bob, 1, 2),
  ]);
  report(t0 + MINUTE_MS + 5_000, [
    wireStats(rules.alice1, 150, 1000),
    wireStats(rules.alice2, 10, 20),
    wireStats(rules.bob, 1, 2),
  ]);
  report(t0 + 2 * MINUTE_MS + 5_000, [
    wireStats(rules.alice1, 7, 3),
    wireStats(rules.alice2, 0, 0),
    wireStats(rules.bob, 1, 2),
  ]);
  // A report naming a rule of another client, or an unknown rule, adds nothing.
  report(t0 + 2 * MINUTE_MS + 10_000, [wireStats(999_999, 5, 5)]);
});

after(() => h.close());

describe('traffic history from stats reports', () => {
  it("answers a user's own traffic per minute, with a client restart counted once", async () => {
    const view = await get(
      alice,
      `/v1/users/alice/traffic?from=${secs(t0)}&to=${secs(t0 + 10 * MINUTE_MS)}`,
    );
    assert.deepEqual(view, {
      bucket: '1m',
      samples: [
        { ts: secs(t0), bytes_in: 110, bytes_out: 1020 },
        { ts: secs(t0 + MINUTE_MS), bytes_in: 50, bytes_out: 0 },
        { ts: secs(t0 + 2 * MINUTE_MS), bytes_in: 7, bytes_out: 3 },
      ],
      total_bytes_in: 167,
      total_bytes_out: 1023,
    });
    const onOther = await get(
      alice,
      `/v1/users/alice/traffic?from=${secs(t0)}&to=${secs(t0 + 10 * MINUTE_MS)}&client_id=${OTHER}`,
    );
    assert.deepEqual(onOther.samples, []);
  });

  it('answers a client (optionally one user on it) and the whole fleet to a superadmin', async () => {
    const range = `from=${secs(t0)}&to=${secs(t0 + 10 * MINUTE_MS)}`;
    const client = await get(root, `/v1/clients/${EDGE}/traffic?${range}`);
    assert.equal(client.total_bytes_in, 168);
    assert.equal(client.total_bytes_out, 1025);
    const bob = await get(root, `/v1/clients/${EDGE}/traffic?${range}&user_id=bob`);
    assert.deepEqual(bob.samples, [{ ts: secs(t0), bytes_in: 1, bytes_out: 2 }]);
    const global = await get(root, `/v1/traffic/global?${range}&bucket=1h`);
    assert.deepEqual(global, {
      bucket: '1h',
      samples: [{ ts: secs(t0), bytes_in: 168, bytes_out: 1025 }],
      total_bytes_in: 168,
      total_bytes_out: 1025,
    });
    const other = await get(root, `/v1/users/bob/traffic?${range}`);
    assert.equal(other.total_bytes_in, 1);
  });

  it('picks 1h buckets past 24 h and shows the same hours before and after the rollup', async () => {
    const url = `/v1/users/alice/traffic?from=${secs(t0 - 24 * HOUR_MS)}&to=${secs(t0 + HOUR_MS)}`;
    const before = await get(alice, url);
    assert.equal(before.bucket, '1h');
    assert.deepEqual(before.samples, [{ ts: secs(t0), bytes_in: 167, bytes_out: 1023 }]);
    h.clock = t0 + HOUR_MS + MINUTE_MS;
    const maintenance = new TrafficMaintenance({
      db: h.store.db,
      logger: silentLogger,
      now: () => h.clock,
    });
    assert.ok((maintenance.runOnce()?.hoursRolled ?? 0) >= 1);
    assert.deepEqual(await get(alice, url), before);
  });

  it("refuses a user reading another user's traffic, and users reading clients or the fleet", async () => {
    const range = `from=${secs(t0)}&to=${secs(t0 + MINUTE_MS)}`;
    for (const [url, code] of [
      [`/v1/users/bob/traffic?${range}`, 'not_owner'],
      [`/v1/clients/${EDGE}/traffic?${range}`, 'role_required'],
      [`/v1/traffic/global?${range}`, 'role_required'],
    ] as const) {
      const response = await h.bearer(alice, { method: 'GET', url });
      assert.equal(response.statusCode, 403, url);
      assert.equal(errorCode(response), code, url);
    }
    const anonymous = await h.inject({ method: 'GET', url: `/v1/traffic/global?${range}` });
    assert.equal(anonymous.statusCode, 401);
  });

  it('refuses bad ranges, buckets and parameters with their catalogued codes', async () => {
    const now = secs(h.clock);
    const day = 86_400;
    const cases: [string, number, string][] = [
      ['/v1/traffic/global', 400, 'invalid_traffic_range'],
      [`/v1/traffic/global?to=${now}`, 400, 'invalid_traffic_range'],
      [`/v1/traffic/global?from=abc&to=${now}`, 400, 'invalid_traffic_range'],
      [`/v1/traffic/global?from=-5&to=${now}`, 400, 'invalid_traffic_range'],
      [`/v1/traffic/global?from=${now}&to=${now}`, 400, 'invalid_traffic_range'],
      [`/v1/traffic/global?from=${now}&to=${now - 60}`, 400, 'invalid_traffic_range'],
      [`/v1/traffic/global?from=${now - 60}&to=${now}&bucket=5m`, 400, 'invalid_traffic_range'],
      [`/v1/traffic/global?from=${now - 60}&to=${now}&from=1`, 400, 'validation_failed'],
      [`/v1/traffic/global?from=${now - 60}&to=${now}&user_id=bob`, 400, 'validation_failed'],
      [`/v1/users/alice/traffic?from=${now - 60}&to=${now}&user_id=bob`, 400, 'validation_failed'],
      [
        `/v1/traffic/global?from=${now - 8 * day}&to=${now}&bucket=1m`,
        422,
        'traffic_bucket_out_of_retention',
      ],
      [
        `/v1/traffic/global?from=${now - 8 * day}&to=${now - 7 * day}`,
        422,
        'traffic_bucket_out_of_retention',
      ],
      [
        `/v1/traffic/global?from=${now - 91 * day}&to=${now}`,
        422,
        'traffic_bucket_out_of_retention',
      ],
      [
        `/v1/traffic/global?from=${now - 7 * day + 60}&to=${now + day}&bucket=1m`,
        422,
        'traffic_too_many_rows',
      ],
      [
        `/v1/traffic/global?from=${now - 89 * day}&to=${now + 400 * day}&bucket=1h`,
        422,
        'traffic_too_many_rows',
      ],
      [`/v1/users/nobody/traffic?from=${now - 60}&to=${now}`, 404, 'user_not_found'],
      [
        `/v1/clients/01HZZZZZZZZZZZZZZZZZZZZZZ9/traffic?from=${now - 60}&to=${now}`,
        404,
        'client_not_found',
      ],
    ];
    for (const [url, status, code] of cases) {
      const response = await h.bearer(root, { method: 'GET', url });
      assert.equal(response.statusCode, status, `${url}: ${response.body}`);
      assert.equal(errorCode(response), code, url);
    }
    // The widest 1m range that fits: 10,000 buckets.
    const widest = await h.bearer(root, {
      method: 'GET',
      url: `/v1/traffic/global?from=${now - 6 * day}&to=${now - 6 * day + 10_000 * 60}&bucket=1m`,
    });
    assert.equal(widest.statusCode, 200, widest.body);
  });
});
