// Proves traffic quotas from the operator's side with the real binaries: a served store, a real
// enrolled client and the `portunus-server` CLI. `quota set|get|list|clear|remove` print their
// table and, with --format json, QuotaView; bad input exits with the catalogued code and stores
// nothing (negative or non-integer bytes: invalid_quota_size; a user without a grant on the
// client: quota_target_not_found; a plain user reading another user's quota: not_owner, a write:
// role_required); `traffic client` and `traffic global` answer a superadmin's API credential and
// refuse a plain user's. Then usage survives restarts: a hard quota used up by a real transfer
// keeps its used bytes across a server restart on the same data dir and a client restart, the
// replayed budget still refuses new connections, and `quota clear` lets them through again.
// Waits on log events and conditions with deadlines, never on fixed sleeps.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ERROR_CATALOGUE } from '@portunus/core';
import type { RunningProcess } from '@portunus/test-support';

import {
  FleetHarness,
  countEvents,
  freePort,
  nextEvent,
  waitUntil,
  type FleetServer,
} from './fleet.harness.js';
import type { CliResult } from './harness.js';
import {
  CountingSink,
  addRule,
  clientIdOf,
  grantAllPorts,
  statsRounds,
  stream,
  type TrafficAnswer,
} from './traffic.harness.js';

/** The fields of QuotaView (@portunus/api, which e2e may not import) this test reads. */
interface QuotaView {
  user_id: string;
  client_id: string;
  client_name: string;
  monthly_bytes: number;
  current_period_bytes_used: number;
  budget_remaining_bytes: number;
  exhausted: boolean;
  enforcement: string;
  period: string;
  reset_day: number | null;
}

const h = new FleetHarness();
let server: FleetServer;
let bundle: string;
let client: RunningProcess;
let clientId: string;
let port: number;
let ruleId: number;
/** API credentials of a superadmin user and a plain user (bob is only the user without a grant). */
const tokens = { ops: '', alice: '' };
const BUDGET = 256 * 1024;
/** libuv reads at most 64 KiB at a time: the per-connection overrun bound (reference §5.10). */
const CHUNK = 64 * 1024;
const QUOTA_HEADER = [
  'USER',
  'CLIENT_ID',
  'CLIENT',
  'LIMIT',
  'USED',
  'REMAINING',
  'POLICY',
  'PERIOD_ENDS',
  'STATE',
];

/** The target: counts every byte; a 4-byte probe that half-closes gets 'pong' back. */
const sink = new CountingSink();

function cli(args: readonly string[], token = server.auth.bearer): Promise<CliResult> {
  return h.run([...args, '--http-endpoint', server.http.hostPort], {
    env: { PORTUNUS_OPERATOR_TOKEN: token },
  });
}

function assertFails(result: CliResult, code: keyof typeof ERROR_CATALOGUE): void {
  assert.equal(result.code, ERROR_CATALOGUE[code].exitCode, `${code}: ${result.stderr}`);
  assert.match(result.stderr, new RegExp(`^error: ${code.replaceAll('.', '\\.')}(:|$)`, 'm'));
  assert.equal(result.stdout, '');
}

function rows(result: CliResult): string[][] {
  assert.equal(result.code, 0, result.stderr);
  return result.stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.split(/\s{2,}/));
}

function parsed(result: CliResult): unknown {
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

const quotasOf = (result: CliResult) => parsed(result) as QuotaView[];
const trafficOf = (result: CliResult) => parsed(result) as TrafficAnswer;

async function storedQuotas(): Promise<QuotaView[]> {
  const answer = await server.http.request<QuotaView[]>('GET', `/v1/clients/${clientId}/quotas`, {
    auth: server.auth,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

async function legacyQuota(): Promise<QuotaView> {
  const [view] = quotasOf(await cli(['quota', 'get', '_legacy', 'edge-c', '--format', 'json']));
  assert.ok(view);
  return view;
}

async function addUser(userId: string, role: 'superadmin' | 'user'): Promise<string> {
  const created = await server.http.request('POST', '/v1/users', {
    auth: server.auth,
    body: {
      user_id: userId,
      display_name: userId,
      role,
      initial_password: `${userId} has a long password`,
      password_change_required: false,
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const credential = await server.http.request<{ token: string }>('POST', '/v1/credentials', {
    auth: server.auth,
    body: { user_id: userId, label: 'quotas-cli' },
  });
  assert.equal(credential.status, 201, JSON.stringify(credential.body));
  return credential.body.token;
}

before(async () => {
  const sinkPort = await sink.start();
  server = await h.fleetServer();
  bundle = await h.enroll(server, 'edge-c');
  client = await h.daemon(bundle);
  clientId = await clientIdOf(server, 'edge-c');
  port = await freePort();
  ruleId = await addRule(server, clientId, port, sinkPort);
  tokens.ops = await addUser('ops', 'superadmin');
  tokens.alice = await addUser('alice', 'user');
  await addUser('bob', 'user');
  // The rule's owner (_legacy) and alice get grants on the client; bob gets none.
  await grantAllPorts(server, '_legacy', clientId);
  await grantAllPorts(server, 'alice', clientId);
});

after(async () => {
  await h.close();
  await sink.close();
});

describe('quota commands', { timeout: 300_000 }, () => {
  it('refuses bad bytes, a user without a grant, and a plain user, storing nothing', async () => {
    for (const bytes of ['-5', '1.5', 'lots']) {
      assertFails(
        await cli(['quota', 'set', 'alice', 'edge-c', `--bytes=${bytes}`]),
        'invalid_quota_size',
      );
    }
    assertFails(
      await cli(['quota', 'set', 'bob', 'edge-c', '--bytes', '1000']),
      'quota_target_not_found',
    );
    assertFails(
      await cli(['quota', 'set', 'alice', 'edge-c', '--bytes', '1000'], tokens.alice),
      'role_required',
    );
    assertFails(await cli(['quota', 'list']), 'usage_error');
    assertFails(await cli(['quota', 'get', 'alice', 'edge-c']), 'quota_not_found');
    assert.deepEqual(await storedQuotas(), []);
  });

  it('set, get, list and clear print the table and, with --format json, QuotaView', async () => {
    const set = rows(await cli(['quota', 'set', 'alice', 'edge-c', '--bytes', '5000']));
    assert.deepEqual(set[0], QUOTA_HEADER);
    assert.equal(set.length, 2);
    const [user, id, name, limit, used, remaining, policy, ends, state] = set[1]!;
    assert.deepEqual(
      [user, id, name, limit, used, remaining, policy, state],
      ['alice', clientId, 'edge-c', '5000', '0', '5000', 'hard/monthly', 'ok'],
    );
    assert.match(ends!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

    const replaced = quotasOf(
      await cli([
        'quota',
        'set',
        'alice',
        clientId,
        '--bytes',
        '7000',
        '--enforcement',
        'soft',
        '--reset-day',
        '3',
        '--format',
        'json',
      ]),
    );
    assert.equal(replaced.length, 1);
    assert.equal(replaced[0]?.monthly_bytes, 7000);
    assert.equal(replaced[0].enforcement, 'soft');
    assert.equal(replaced[0].reset_day, 3);
    assert.equal(replaced[0].client_id, clientId);

    const got = rows(await cli(['quota', 'get', 'alice', 'edge-c']));
    assert.deepEqual(got[0], QUOTA_HEADER);
    assert.deepEqual(got[1]?.slice(3, 7), ['7000', '0', '7000', 'soft/monthly']);
    const gotJson = quotasOf(await cli(['quota', 'get', 'alice', 'edge-c', '--format', 'json']));
    assert.deepEqual(gotJson, replaced);

    // Alice reads her own quota with her own credential.
    const own = quotasOf(
      await cli(['quota', 'list', '--user', 'alice', '--format', 'json'], tokens.alice),
    );
    assert.deepEqual(
      own.map((quota) => quota.user_id),
      ['alice'],
    );
    const byClient = rows(await cli(['quota', 'list', '--client', 'edge-c']));
    assert.deepEqual(byClient[0], QUOTA_HEADER);
    assert.deepEqual(
      byClient.slice(1).map((row) => row[0]),
      ['alice'],
    );
    const byClientJson = quotasOf(
      await cli(['quota', 'list', '--client', clientId, '--format', 'json']),
    );
    assert.deepEqual(byClientJson, gotJson);

    const cleared = rows(await cli(['quota', 'clear', 'alice', 'edge-c']));
    assert.deepEqual(cleared[0], QUOTA_HEADER);
    assert.equal(cleared[1]?.[4], '0');
    const clearedJson = quotasOf(
      await cli(['quota', 'clear', 'alice', 'edge-c', '--format', 'json']),
    );
    assert.equal(clearedJson[0]?.current_period_bytes_used, 0);
  });

  it("refuses a plain user another user's quota (403) and a change", async () => {
    // A quota of _legacy, the rule's owner, for alice to be refused (and for the restart below).
    const set = await cli(['quota', 'set', '_legacy', 'edge-c', '--bytes', String(BUDGET)]);
    assert.equal(set.code, 0, set.stderr);
    assertFails(await cli(['quota', 'get', '_legacy', 'edge-c'], tokens.alice), 'not_owner');
    assertFails(await cli(['quota', 'list', '--user', '_legacy'], tokens.alice), 'not_owner');
    assertFails(await cli(['quota', 'list', '--client', 'edge-c'], tokens.alice), 'role_required');
    assertFails(await cli(['quota', 'clear', '_legacy', 'edge-c'], tokens.alice), 'role_required');
    assertFails(await cli(['quota', 'remove', 'alice', 'edge-c'], tokens.alice), 'role_required');
    assert.equal((await storedQuotas()).length, 2);
  });

  it('remove prints nothing, and the quota is gone', async () => {
    const removed = await cli(['quota', 'remove', 'alice', 'edge-c']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, '');
    assertFails(await cli(['quota', 'get', 'alice', 'edge-c']), 'quota_not_found');
    assertFails(await cli(['quota', 'remove', 'alice', 'edge-c']), 'quota_not_found');
    assert.deepEqual(
      (await storedQuotas()).map((quota) => quota.user_id),
      ['_legacy'],
    );
  });
});

describe('usage across restarts', { timeout: 300_000 }, () => {
  let usedBefore = 0;

  it('a transfer uses the budget up and the server counts it', async () => {
    await waitUntil(
      () => client.events.some((line) => line.event === 'control.traffic_quota_set'),
      'the budget on the edge',
    );
    const first = await stream(port, 4 * 1024 * 1024);
    assert.equal(first.echoed, 0);
    await waitUntil(() => sink.received >= BUDGET, 'the budget to reach the sink');
    assert.ok(sink.received <= BUDGET + CHUNK, `overrun ${sink.received - BUDGET} > one chunk`);
    await waitUntil(async () => (await legacyQuota()).exhausted, 'the quota marked exhausted');
    // Nothing moves any more: once two more reports landed the count is final.
    await statsRounds(server, ruleId, 2);
    const view = await legacyQuota();
    usedBefore = view.current_period_bytes_used;
    assert.ok(usedBefore >= BUDGET && usedBefore <= BUDGET + 2 * CHUNK, `used ${usedBefore}`);
  });

  it('keeps the used bytes and the enforcement across a server restart', async () => {
    const connected = countEvents(client, 'control.connected');
    const budgets = countEvents(client, 'control.traffic_quota_set');
    server = await h.restartServer(server);
    const view = await legacyQuota();
    assert.equal(view.current_period_bytes_used, usedBefore, 'the store kept the usage');
    assert.equal(view.exhausted, true);
    await nextEvent(client, 'control.connected', connected);
    await nextEvent(client, 'control.traffic_quota_set', budgets);
    const before = sink.received;
    assert.equal((await stream(port, 4)).echoed, 0, 'a new connection is still refused');
    assert.equal(sink.received, before);
    await statsRounds(server, ruleId, 2);
    assert.equal((await legacyQuota()).current_period_bytes_used, usedBefore, 'counted once');
  });

  it('keeps them across a client restart too, until quota clear lets traffic through', async () => {
    client.kill('SIGKILL');
    await client.exited();
    client = await h.daemon(bundle);
    await waitUntil(
      () => client.events.some((line) => line.event === 'control.traffic_quota_set'),
      'the replayed budget on the restarted edge',
    );
    const before = sink.received;
    assert.equal((await stream(port, 4)).echoed, 0, 'refused on the restarted edge');
    assert.equal(sink.received, before);
    assert.equal((await legacyQuota()).current_period_bytes_used, usedBefore);

    const budgets = countEvents(client, 'control.traffic_quota_set');
    const cleared = rows(await cli(['quota', 'clear', '_legacy', 'edge-c']));
    assert.deepEqual(cleared[1]?.slice(4, 6), ['0', String(BUDGET)]);
    assert.equal(cleared[1][8], 'ok');
    await nextEvent(client, 'control.traffic_quota_set', budgets);
    assert.equal((await stream(port, 4)).echoed, 4, 'new connections flow again: ping, pong');
  });
});

describe('traffic client and global with a superadmin credential', { timeout: 120_000 }, () => {
  it('print rows and totals, match the HTTP answer in JSON, and refuse a plain user', async () => {
    // The last probe's bytes land in the next reports; after two the totals hold still.
    await statsRounds(server, ruleId, 2);
    const now = Math.floor(Date.now() / 1000);
    const range = ['--from', String(now - 3600), '--to', String(now + 60)];
    const query = `from=${now - 3600}&to=${now + 60}`;
    for (const [args, path] of [
      [['traffic', 'client', clientId], `/v1/clients/${clientId}/traffic?${query}`],
      [['traffic', 'global'], `/v1/traffic/global?${query}`],
    ] as const) {
      const http = await server.http.request<TrafficAnswer>('GET', path, {
        auth: { bearer: tokens.ops },
      });
      assert.equal(http.status, 200, JSON.stringify(http.body));
      assert.ok(http.body.total_bytes_in > 0, `${path} saw the transfer`);
      const printed = trafficOf(await cli([...args, ...range, '--format', 'json'], tokens.ops));
      assert.equal(printed.bucket, '1m');
      assert.equal(printed.total_bytes_in, http.body.total_bytes_in);
      assert.equal(printed.total_bytes_out, http.body.total_bytes_out);
      const table = await cli([...args, ...range], tokens.ops);
      assert.equal(table.code, 0, table.stderr);
      const lines = table.stdout.trimEnd().split('\n');
      assert.deepEqual(lines[0]?.split(/\s{2,}/), ['TS', 'BYTES_IN', 'BYTES_OUT']);
      assert.equal(lines.length, printed.samples.length + 2);
      assert.equal(
        lines.at(-1),
        `bucket=1m total_bytes_in=${printed.total_bytes_in} total_bytes_out=${printed.total_bytes_out}`,
      );
      assertFails(await cli([...args, ...range], tokens.alice), 'role_required');
    }
  });
});
