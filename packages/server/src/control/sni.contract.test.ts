// Proves the server's side of shared SNI ports (docs/sni-routing.md) through the real fleet and
// the operator routes: the conflict matrix (duplicate pattern, second fallback, plain <-> SNI in
// both directions, ranges, an edit that would switch a port's mode, Failed rules still holding
// their pattern; other clients and other protocols never conflict), every refusal a 409 that
// stores nothing; replay sends patterned rules before fallbacks; and a StatsReport's SNI
// counters reach the rule stats JSON and the portunus_tls_* series.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SNI_PEEK_BUCKETS_SECONDS } from '@portunus/api';
import { silentLogger } from '@portunus/core';
import type { RuleUpdate, ServerMessage } from '@portunus/proto';
import { insertClient, listRules } from '@portunus/store';

import { ContractHarness, errorCode } from '../operator/contract.harness.js';
import { wireStats } from '../operator/traffic.harness.js';
import { ControlFleet } from './fleet.js';

const EDGE_1 = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const EDGE_2 = '01HZZZZZZZZZZZZZZZZZZZZZZ2';
const PORT = 8443;

let h: ContractHarness;
let fleet: ControlFleet;
let root: string;
const sent: ServerMessage[] = [];
let failNext: string | undefined;
const sessions = new Map<string, ReturnType<ControlFleet['open']>>();

function connect(clientId: string, clientName: string): void {
  const session = fleet.open(
    { clientId, clientName, remoteAddr: '127.0.0.1:5555' },
    { protocol_version: '1.0.0', client_version: '0.11.0', supported_protocols: ['TCP', 'UDP'] },
    {
      send: (message) => {
        sent.push(message);
        if (!('rule_update' in message)) return;
        const update: RuleUpdate = message.rule_update;
        if (!update.rule) return;
        const reason = failNext;
        failNext = undefined;
        const status = {
          request_id: update.request_id,
          rule_id: update.rule.rule_id,
          outcome: reason === undefined ? ('ACTIVATED' as const) : ('FAILED' as const),
          reason: reason ?? '',
        };
        queueMicrotask(() => {
          fleet.status(sessions.get(clientId)!, status);
        });
      },
      end: () => undefined,
    },
  );
  sessions.set(clientId, session);
}

function rows(): string {
  const db = h.store.db;
  const rules = db.prepare('SELECT count(*) FROM rules').pluck().get() as number;
  const revisions = db.prepare('SELECT count(*) FROM rule_revisions').pluck().get() as number;
  return `${rules} rules, ${revisions} revisions`;
}

async function push(body: Record<string, unknown>, client = 'edge-1') {
  return h.bearer(root, {
    method: 'POST',
    url: '/v1/rules',
    payload: { client, target_host: '10.0.0.1', target_port: 443, ...body },
  });
}

async function accepted(body: Record<string, unknown>, client = 'edge-1'): Promise<number> {
  const response = await push(body, client);
  assert.equal(response.statusCode, 201, response.body);
  return response.json<{ rule_id: number }>().rule_id;
}

async function refused(body: Record<string, unknown>, code: string, holder: number) {
  const before = rows();
  const response = await push(body);
  assert.equal(response.statusCode, 409, response.body);
  assert.equal(errorCode(response.body), code, response.body);
  assert.match(response.body, new RegExp(`rule ${holder}\\b`));
  assert.equal(rows(), before, `a refused push changed the store: ${JSON.stringify(body)}`);
}

let exact: number;
let wildcard: number;
let fallback: number;

before(async () => {
  h = new ContractHarness();
  fleet = new ControlFleet({
    db: h.store.db,
    logger: silentLogger,
    metrics: h.metrics,
    now: () => h.clock,
  });
  h.context.fleet = fleet;
  root = await h.addUser('root', 'superadmin');
  insertClient(h.store.db, { clientId: EDGE_1, clientName: 'edge-1', now: h.clock });
  insertClient(h.store.db, { clientId: EDGE_2, clientName: 'edge-2', now: h.clock });
  connect(EDGE_1, 'edge-1');
  connect(EDGE_2, 'edge-2');
  exact = await accepted({ listen_port: PORT, sni_pattern: 'API.example.com' });
  wildcard = await accepted({ listen_port: PORT, sni_pattern: '*.apps.example.com' });
  fallback = await accepted({ listen_port: PORT });
});

after(() => h.close());

describe('the SNI conflict matrix (docs/sni-routing.md)', () => {
  it('lets patterns and one fallback share a port', () => {
    const shared = listRules(h.store.db).filter((rule) => rule.listenPort === PORT);
    assert.deepEqual(
      shared.map((rule) => rule.sniPattern),
      ['api.example.com', '*.apps.example.com', null],
    );
    assert.ok(shared.every((rule) => rule.state.kind === 'active'));
  });

  it('refuses a duplicate pattern, in any spelling', async () => {
    await refused(
      { listen_port: PORT, sni_pattern: ' api.EXAMPLE.com' },
      'conflict.sni_route_duplicate',
      exact,
    );
    await refused(
      { listen_port: PORT, sni_pattern: '*.apps.example.com' },
      'conflict.sni_route_duplicate',
      wildcard,
    );
  });

  it('refuses a second fallback', async () => {
    await refused({ listen_port: PORT }, 'conflict.sni_fallback_duplicate', fallback);
  });

  it('refuses a range over an SNI port and an SNI rule on a plain port', async () => {
    await refused(
      { listen_port: PORT - 1, listen_port_end: PORT + 1, target_port_end: 445 },
      'conflict.legacy_to_sni_unsupported',
      exact,
    );
    const plain = await accepted({ listen_port: 9000 });
    await refused(
      { listen_port: 9000, sni_pattern: 'a.example.com' },
      'conflict.legacy_to_sni_unsupported',
      plain,
    );
    // Two plain rules are the ordinary port conflict.
    await refused({ listen_port: 9000 }, 'port_in_use', plain);
    const range = await accepted({
      listen_port: 9100,
      listen_port_end: 9103,
      target_port_end: 446,
    });
    await refused(
      { listen_port: 9102, sni_pattern: 'a.example.com' },
      'conflict.legacy_to_sni_unsupported',
      range,
    );
  });

  it('refuses an edit that would turn a plain port into an SNI one, and stores nothing', async () => {
    const plain = await accepted({ listen_port: 9200 });
    const before = rows();
    const response = await h.bearer(root, {
      method: 'PUT',
      url: `/v1/rules/${plain}`,
      payload: {
        client: 'edge-1',
        listen_port: 9200,
        target_host: '10.0.0.1',
        target_port: 443,
        sni_pattern: 'a.example.com',
      },
    });
    assert.equal(response.statusCode, 409, response.body);
    assert.equal(errorCode(response.body), 'conflict.legacy_to_sni_unsupported');
    assert.equal(rows(), before);
    assert.equal(listRules(h.store.db).find((r) => r.ruleId === plain)?.sniPattern, null);
    // Editing a member within its SNI port is fine: the pattern changes, the port stays shared.
    const edit = await h.bearer(root, {
      method: 'PUT',
      url: `/v1/rules/${wildcard}`,
      payload: {
        client: 'edge-1',
        listen_port: PORT,
        target_host: '10.0.0.2',
        target_port: 443,
        sni_pattern: '*.web.example.com',
      },
    });
    assert.equal(edit.statusCode, 200, edit.body);
  });

  it('keeps a Failed member holding its pattern until it is removed', async () => {
    failNext = 'bind_failed';
    const response = await push({ listen_port: 9300, sni_pattern: 'f.example.com' });
    assert.equal(response.statusCode, 422, response.body);
    const failed = listRules(h.store.db).find((rule) => rule.listenPort === 9300);
    assert.ok(failed);
    assert.equal(failed.state.kind, 'failed');
    await refused(
      { listen_port: 9300, sni_pattern: 'f.example.com' },
      'conflict.sni_route_duplicate',
      failed.ruleId,
    );
    await accepted({ listen_port: 9300, sni_pattern: 'g.example.com' });
  });

  it('never conflicts across clients or protocols', async () => {
    await accepted({ listen_port: PORT, sni_pattern: 'api.example.com' }, 'edge-2');
    await accepted({ listen_port: PORT }, 'edge-2');
    await accepted({ listen_port: PORT, protocol: 'udp' });
  });
});

describe('replay and stats of SNI rules', () => {
  it('replays patterned rules before fallbacks', () => {
    const session = sessions.get(EDGE_1)!;
    const stored = listRules(h.store.db).filter((rule) => rule.clientId === EDGE_1);
    // Store order puts the fallback among the patterns; the plan must not.
    const plan = fleet.planReplay(session, [...stored].reverse()).rules;
    const firstFallback = plan.findIndex((rule) => rule.sniPattern === null);
    assert.ok(firstFallback > 0);
    assert.ok(plan.slice(firstFallback).every((rule) => rule.sniPattern === null));
  });

  it('shows route counters in the stats JSON and the tls series in metrics', async () => {
    const session = sessions.get(EDGE_1)!;
    // Each rule below replaces the rule_id.
    const counters = wireStats(0, 100, 200);
    const buckets = SNI_PEEK_BUCKETS_SECONDS.map(() => 0).concat([0]);
    buckets[0] = 3;
    buckets[4] = 2;
    fleet.report(session, {
      sent_at_unix_ms: h.clock,
      stats: [
        { ...counters, rule_id: String(exact), sni_route_exact_total: 5 },
        { ...counters, rule_id: String(wildcard), sni_route_wildcard_total: 7 },
        { ...counters, rule_id: String(fallback), sni_route_fallback_total: 4 },
      ],
      sni_listener_stats: [
        {
          listen_port: PORT,
          sni_route_miss_total: 2,
          client_hello_parse_failures_total: 1,
          client_hello_peek_bucket_counts: buckets,
          client_hello_peek_sum_micros: 2500,
          client_hello_peek_count: 5,
        },
      ],
    });
    const stats = await h.bearer(root, { method: 'GET', url: `/v1/rules/${exact}/stats` });
    assert.equal(stats.statusCode, 200, stats.body);
    assert.deepEqual(
      (({ sni_route_exact_total, sni_route_wildcard_total, sni_route_fallback_total }) => ({
        sni_route_exact_total,
        sni_route_wildcard_total,
        sni_route_fallback_total,
      }))(stats.json<Record<string, number>>()),
      { sni_route_exact_total: 5, sni_route_wildcard_total: 0, sni_route_fallback_total: 0 },
    );
    const text = await h.metrics.render();
    const has = (line: string) => {
      assert.ok(text.includes(line), `missing ${line}`);
    };
    const rule = (id: number) => `client="edge-1",rule="${id}",owner="root"`;
    has(`portunus_tls_sni_route_total{${rule(exact)},result="exact"} 5`);
    has(`portunus_tls_sni_route_total{${rule(wildcard)},result="wildcard"} 7`);
    has(`portunus_tls_sni_route_total{${rule(fallback)},result="fallback"} 4`);
    has(`portunus_tls_sni_listener_miss_total{client="edge-1",port="${PORT}"} 2`);
    has(`portunus_tls_sni_listener_parse_failures_total{client="edge-1",port="${PORT}"} 1`);
    const peek = 'portunus_tls_client_hello_peek_duration_seconds';
    has(`${peek}_bucket{client="edge-1",port="${PORT}",le="0.0001"} 3`);
    has(`${peek}_bucket{client="edge-1",port="${PORT}",le="0.001"} 3`);
    has(`${peek}_bucket{client="edge-1",port="${PORT}",le="0.0025"} 5`);
    has(`${peek}_bucket{client="edge-1",port="${PORT}",le="+Inf"} 5`);
    has(`${peek}_sum{client="edge-1",port="${PORT}"} 0.0025`);
    has(`${peek}_count{client="edge-1",port="${PORT}"} 5`);
    // Active patterned rules across clients: 1 exact + 1 wildcard + 1 on edge-2 + 1 on 9300.
    has('portunus_tls_sni_routes_active 4');
  });
});
