// Proves the control side of rate limits and source lists through the real fleet (an in-process
// fake stream): a reconnect replays the Active rules and then SET for every owner envelope (none
// to a client too old for them); a rule with source lists is refused at push (422) and marked
// Failed at replay for an old client; a PUT of a live rule with new caps and source lists goes out
// as a PUSH of the same id carrying them, and is stored with a revision once activated; and a
// hand-built StatsReport feeds the stats route (rate_limit, source_denied) and the
// portunus_rate_limit_* / portunus_rule_source_denied_total series, with no rate-limit series for
// an uncapped rule and owner aggregate rows labelled rule="".
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { ServerMessage, WireRuleStats } from '@portunus/proto';
import {
  getRuleOrThrow,
  insertClient,
  insertRule,
  listRevisions,
  listRules,
  upsertOwnerRateLimit,
  type Rule,
} from '@portunus/store';

import { ContractHarness, errorCode } from '../operator/contract.harness.js';
import { wireStats } from '../operator/traffic.harness.js';
import { ControlFleet } from './fleet.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const CURRENT = '0.12.0';

let h: ContractHarness;
let fleet: ControlFleet;
let root: string;
const sent: ServerMessage[] = [];
let session: ReturnType<ControlFleet['open']>;

function connect(clientVersion = CURRENT): void {
  session = fleet.open(
    { clientId: EDGE, clientName: 'edge-1', remoteAddr: '127.0.0.1:5555' },
    {
      protocol_version: '1.0.0',
      client_version: clientVersion,
      supported_protocols: ['TCP', 'UDP'],
    },
    {
      send: (message) => {
        sent.push(message);
        if (!('rule_update' in message) || !message.rule_update.rule) return;
        const { request_id: requestId, rule } = message.rule_update;
        if (requestId.startsWith('replay-')) return;
        queueMicrotask(() => {
          fleet.status(session, {
            request_id: requestId,
            rule_id: rule.rule_id,
            outcome: 'ACTIVATED',
            reason: '',
          });
        });
      },
      end: () => undefined,
    },
  );
}

const target = { host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null };

function storedRule(
  listenPort: number,
  extra: Partial<Parameters<typeof insertRule>[1]> = {},
): Rule {
  return insertRule(h.store.db, {
    clientId: EDGE,
    ownerUserId: 'root',
    protocol: 'tcp',
    listenPort,
    targets: [target],
    state: { kind: 'active' },
    now: h.clock,
    ...extra,
  });
}

const call = (method: 'POST' | 'PUT' | 'GET', url: string, payload?: object) =>
  h.bearer(root, { method, url, ...(payload !== undefined ? { payload } : {}) });

before(async () => {
  h = new ContractHarness();
  fleet = new ControlFleet({
    db: h.store.db,
    logger: h.context.logger,
    metrics: h.metrics,
    now: () => h.clock,
  });
  h.context.fleet = fleet;
  root = await h.addUser('root', 'superadmin');
  await h.addUser('alice', 'user');
  insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-1', now: h.clock });
});

after(() => h.close());

describe('replay of owner envelopes', () => {
  it('sends SET for every envelope right after the Active rules', () => {
    storedRule(22001);
    storedRule(22002, { rateLimit: { concurrentConnections: 3 } });
    for (const owner of ['root', 'alice']) {
      upsertOwnerRateLimit(h.store.db, {
        clientId: EDGE,
        ownerUserId: owner,
        rateLimit: { bandwidthOutBps: 500 },
        now: h.clock,
      });
    }
    sent.length = 0;
    connect();
    fleet.replay(session, listRules(h.store.db, { clientId: EDGE }));
    const kinds = sent.map((message) =>
      'rule_update' in message
        ? `rule:${message.rule_update.rule?.rule_id ?? ''}`
        : 'owner_rate_limit_update' in message
          ? `owner:${message.owner_rate_limit_update.action}:${message.owner_rate_limit_update.owner_id}`
          : 'other',
    );
    const ruleIds = listRules(h.store.db, { clientId: EDGE }).map((rule) => `rule:${rule.ruleId}`);
    assert.deepEqual(kinds, [...ruleIds, 'owner:SET:alice', 'owner:SET:root']);
    // The caps are part of the replayed rule: they survive a client restart.
    const capped = sent.find(
      (m) => 'rule_update' in m && m.rule_update.rule?.listen_port === 22002,
    );
    assert.ok(capped && 'rule_update' in capped);
    assert.equal(capped.rule_update.rule?.rate_limit?.concurrent_connections, 3);
    const update = sent.at(-1);
    assert.ok(update && 'owner_rate_limit_update' in update);
    assert.equal(update.owner_rate_limit_update.client_id, EDGE);
    assert.equal(update.owner_rate_limit_update.rate_limit?.bandwidth_out_bps, 500);
  });

  it('skips the envelopes for a client too old for them, and fails its capped rules', () => {
    sent.length = 0;
    connect('0.11.4');
    fleet.replay(session, listRules(h.store.db, { clientId: EDGE }));
    assert.ok(sent.every((message) => !('owner_rate_limit_update' in message)));
    const capped = listRules(h.store.db, { clientId: EDGE }).find((r) => r.listenPort === 22002);
    assert.deepEqual(capped?.state, { kind: 'failed', reason: 'rate_limit_unsupported_by_client' });
  });
});

describe('the source-list gate', () => {
  it('refuses a push with source lists to an old client with 422, storing nothing', async () => {
    connect('0.11.0');
    const before = listRules(h.store.db).length;
    const response = await call('POST', '/v1/rules', {
      client: 'edge-1',
      listen_port: 22010,
      targets: [{ host: '10.0.0.1', port: 80 }],
      allowed_sources: ['10.0.0.0/8'],
    });
    assert.equal(response.statusCode, 422, response.body);
    assert.equal(errorCode(response), 'source_lists_unsupported_by_client');
    assert.equal(listRules(h.store.db).length, before);
    // Without lists the same client takes the rule.
    const plain = await call('POST', '/v1/rules', {
      client: 'edge-1',
      listen_port: 22010,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    assert.equal(plain.statusCode, 201, plain.body);
  });

  it('marks a stored rule with source lists Failed when an old client reconnects', () => {
    const restricted = storedRule(22011, { deniedSources: ['192.0.2.0/24'] });
    sent.length = 0;
    connect('0.11.0');
    fleet.replay(session, listRules(h.store.db, { clientId: EDGE }));
    assert.deepEqual(getRuleOrThrow(h.store.db, restricted.ruleId).state, {
      kind: 'failed',
      reason: 'source_lists_unsupported_by_client',
    });
    assert.ok(
      !sent.some(
        (message) =>
          'rule_update' in message &&
          message.rule_update.rule?.rule_id === String(restricted.ruleId),
      ),
    );
  });
});

describe('PUT /v1/rules/{id}: caps and source lists live', () => {
  it('pushes the new caps and lists as a PUSH of the same id, then stores them with a revision', async () => {
    connect();
    const created = await call('POST', '/v1/rules', {
      client: 'edge-1',
      listen_port: 22020,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    assert.equal(created.statusCode, 201, created.body);
    const ruleId = created.json<{ rule_id: number }>().rule_id;
    const revisionsBefore = listRevisions(h.store.db, {}).revisions.length;
    sent.length = 0;
    const edited = await call('PUT', `/v1/rules/${ruleId}`, {
      client: 'edge-1',
      listen_port: 22020,
      targets: [{ host: '10.0.0.1', port: 80 }],
      rate_limit: { bandwidth_in_bps: 4096, concurrent_connections: 8 },
      allowed_sources: ['10.0.0.0/8', '2001:DB8:0:0::/32'],
      denied_sources: ['10.9.9.9'],
    });
    assert.equal(edited.statusCode, 200, edited.body);
    const pushes = sent.flatMap((message) =>
      'rule_update' in message ? [message.rule_update] : [],
    );
    assert.equal(pushes.length, 1);
    assert.equal(pushes[0]?.action, 'PUSH');
    const wire = pushes[0].rule;
    assert.ok(wire);
    assert.equal(wire.rule_id, String(ruleId));
    assert.deepEqual(wire.rate_limit, {
      bandwidth_in_bps: 4096,
      bandwidth_out_bps: null,
      new_connections_per_sec: null,
      concurrent_connections: 8,
      bandwidth_in_burst: null,
      bandwidth_out_burst: null,
      new_connections_burst: null,
    });
    assert.deepEqual(wire.allowed_sources, ['10.0.0.0/8', '2001:db8::/32']);
    assert.deepEqual(wire.denied_sources, ['10.9.9.9/32']);
    const stored = getRuleOrThrow(h.store.db, ruleId);
    assert.deepEqual(stored.rateLimit, { bandwidthInBps: 4096, concurrentConnections: 8 });
    assert.deepEqual(stored.allowedSources, ['10.0.0.0/8', '2001:db8::/32']);
    assert.deepEqual(stored.deniedSources, ['10.9.9.9/32']);
    const revisions = listRevisions(h.store.db, {}).revisions;
    assert.equal(revisions.length, revisionsBefore + 1);
    for (const field of ['rate_limit', 'allowed_sources', 'denied_sources']) {
      assert.match(revisions[0]?.summary ?? '', new RegExp(`\\(.*${field}.*\\)`));
    }
    const audit = h.auditRows().findLast((row) => row.action === 'operator.rule_edited');
    assert.equal(audit?.resourceValue, String(ruleId));
    const json = await call('GET', `/v1/rules/${ruleId}`);
    assert.deepEqual(json.json<{ denied_sources: string[] }>().denied_sources, ['10.9.9.9/32']);

    // Clearing the lists is an edit too, and reaches the client the same way.
    sent.length = 0;
    const cleared = await call('PUT', `/v1/rules/${ruleId}`, {
      client: 'edge-1',
      listen_port: 22020,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    assert.equal(cleared.statusCode, 200, cleared.body);
    const clearedWire = sent.flatMap((m) => ('rule_update' in m ? [m.rule_update.rule] : []))[0];
    assert.ok(clearedWire);
    assert.deepEqual(clearedWire.allowed_sources, []);
    assert.equal(clearedWire.rate_limit, null);
    assert.deepEqual(getRuleOrThrow(h.store.db, ruleId).allowedSources, []);
  });
});

describe('rate-limit and source stats', () => {
  const base = (ruleId: number): WireRuleStats =>
    wireStats(ruleId, 10, 20, { active_connections: 1 });

  it('feeds the stats route and the rate-limit and source series from a StatsReport', async () => {
    connect();
    const capped = storedRule(22030, {
      ownerUserId: 'alice',
      rateLimit: { newConnectionsPerSec: 5, bandwidthInBps: 1000 },
      allowedSources: ['10.0.0.0/8'],
    });
    const plain = storedRule(22031);
    fleet.replay(session, listRules(h.store.db, { clientId: EDGE }));
    const limiter = {
      reject_total: [
        { reason: 'CONN_RATE' as const, total: 7 },
        { reason: 'OWNER_CONCURRENT' as const, total: 2 },
      ],
      throttle_micros_in: 1_500_000,
      throttle_micros_out: 250_000,
      active_connections: 3,
    };
    fleet.report(session, {
      sent_at_unix_ms: h.clock,
      stats: [
        { ...base(capped.ruleId), rate_limit: limiter, source_denied_total: 4 },
        // An uncapped rule that (wrongly) reports limiter counters still exports none.
        { ...base(plain.ruleId), rate_limit: limiter },
      ],
      owner_rate_limit_stats: [
        {
          owner_id: 'alice',
          stats: {
            reject_total: [{ reason: 'OWNER_CONN_RATE', total: 11 }],
            throttle_micros_in: 0,
            throttle_micros_out: 0,
            active_connections: 6,
          },
        },
      ],
    });
    const stats = await call('GET', `/v1/rules/${capped.ruleId}/stats`);
    assert.equal(stats.statusCode, 200, stats.body);
    const body = stats.json<Record<string, unknown>>();
    assert.equal(body['source_denied'], 4);
    assert.deepEqual(body['rate_limit'], {
      reject_total: { conn_rate: 7, owner_concurrent: 2 },
      throttle_seconds_in: 1.5,
      throttle_seconds_out: 0.25,
      active_connections: 3,
    });
    const plainStats = await call('GET', `/v1/rules/${plain.ruleId}/stats`);
    assert.equal(plainStats.json<Record<string, unknown>>()['source_denied'], 0);

    const text = await h.metrics.render();
    const rule = `client="edge-1",rule="${capped.ruleId}",owner="alice"`;
    for (const line of [
      `portunus_rate_limit_reject_total{${rule},reason="conn_rate"} 7`,
      `portunus_rate_limit_reject_total{${rule},reason="owner_concurrent"} 2`,
      `portunus_rate_limit_throttle_seconds_total{${rule},direction="in"} 1.5`,
      `portunus_rate_limit_throttle_seconds_total{${rule},direction="out"} 0.25`,
      `portunus_rate_limit_active_connections{${rule}} 3`,
      `portunus_rule_source_denied_total{${rule}} 4`,
      `portunus_rate_limit_reject_total{client="edge-1",rule="",owner="alice",reason="owner_conn_rate"} 11`,
      `portunus_rate_limit_active_connections{client="edge-1",rule="",owner="alice"} 6`,
    ]) {
      assert.ok(text.includes(line), `${line}\n${text}`);
    }
    assert.ok(!text.includes(`rule="${plain.ruleId}",owner="root",reason=`), text);
    assert.ok(
      !new RegExp(`portunus_rate_limit_\\w+\\{client="edge-1",rule="${plain.ruleId}"`).test(text),
      text,
    );
    assert.ok(
      !text.includes(`portunus_rule_source_denied_total{client="edge-1",rule="${plain.ruleId}"`),
    );

    // Removing the envelope stops its aggregate rows at once.
    fleet.sendOwnerRateLimit(EDGE, 'alice', null);
    const after = await h.metrics.render();
    assert.ok(!after.includes('rule="",owner="alice"'), after);
  });
});
