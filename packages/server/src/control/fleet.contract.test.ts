// Proves the push path through the real fleet: POST /v1/rules waits for the client's RuleStatus
// (201 Active, 422 activation_failed leaving Failed, 504 ack_timeout leaving Pending), the
// capability gates and the conflict model refuse before anything is stored, DELETE and cascades
// send REMOVE, replay resends Active rules, and StatsReports feed the stats route and the
// portunus_rule_* series. The stream is an in-process fake; the wire is covered end to end.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { silentLogger } from '@portunus/core';
import type { RuleUpdate, ServerMessage } from '@portunus/proto';
import { getRule, insertClient, insertGrant, listRules } from '@portunus/store';

import { ContractHarness, errorCode } from '../operator/contract.harness.js';
import { wireStats } from '../operator/traffic.harness.js';
import { ControlFleet, type EndReason } from './fleet.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';

type Answer = (
  update: RuleUpdate,
) => { outcome: 'ACTIVATED' | 'FAILED' | 'REMOVED'; reason?: string } | undefined;

let h: ContractHarness;
let fleet: ControlFleet;
let root: string;
let alice: string;
const sent: ServerMessage[] = [];
const ended: EndReason[] = [];
let answer: Answer = () => ({ outcome: 'ACTIVATED' });
let session: ReturnType<ControlFleet['open']>;

function connect(protocols: ('TCP' | 'UDP')[] = ['TCP', 'UDP'], clientVersion = '0.1.0'): void {
  session = fleet.open(
    { clientId: EDGE, clientName: 'edge-1', remoteAddr: '127.0.0.1:5555' },
    { protocol_version: '1.0.0', client_version: clientVersion, supported_protocols: protocols },
    {
      send: (message) => {
        sent.push(message);
        if (!('rule_update' in message)) return;
        const update = message.rule_update;
        const reply = answer(update);
        if (!reply || !update.rule) return;
        const status = {
          request_id: update.request_id,
          rule_id: update.rule.rule_id,
          outcome: reply.outcome,
          reason: reply.reason ?? '',
        };
        queueMicrotask(() => {
          fleet.status(session, status);
        });
      },
      end: (reason) => ended.push(reason),
    },
  );
}

const push = (token: string, body: Record<string, unknown>) =>
  h.bearer(token, { method: 'POST', url: '/v1/rules', payload: { client: 'edge-1', ...body } });

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
  alice = await h.addUser('alice', 'user');
  insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-1', now: h.clock });
  insertGrant(h.store.db, {
    grantId: 'g1',
    userId: 'alice',
    clientId: EDGE,
    listenPortStart: 20000,
    listenPortEnd: 20100,
    protocols: ['tcp', 'udp'],
    note: '',
    now: h.clock,
  });
  connect();
});

after(() => h.close());

describe('POST /v1/rules through the fleet', () => {
  it('answers 201 Active once the client activates, with the push shape', async () => {
    answer = () => ({ outcome: 'ACTIVATED' });
    const response = await push(alice, {
      listen_port: 20001,
      target_host: '127.0.0.1',
      target_port: 80,
    });
    assert.equal(response.statusCode, 201, response.body);
    const body = response.json<{
      rule_id: number;
      status: string;
      owner: string;
      protocol: string;
    }>();
    assert.equal(body.status, 'Active');
    assert.equal(body.owner, 'alice');
    assert.equal(getRule(h.store.db, body.rule_id)?.state.kind, 'active');
    const update = sent.findLast((m) => 'rule_update' in m);
    assert.ok(update && 'rule_update' in update);
    assert.equal(update.rule_update.action, 'PUSH');
    const wire = update.rule_update.rule;
    assert.ok(wire);
    assert.equal(wire.listen_port, 20001);
    assert.equal(wire.protocol, 'TCP');
    assert.equal(wire.owner_id, 'alice');
  });

  it('answers 422 activation_failed and keeps the rule Failed, which then blocks the port', async () => {
    answer = () => ({ outcome: 'FAILED', reason: 'port_in_use' });
    const response = await push(alice, {
      listen_port: 20010,
      target_host: '127.0.0.1',
      target_port: 80,
    });
    assert.equal(response.statusCode, 422);
    assert.equal(errorCode(response.body), 'activation_failed');
    const failed = listRules(h.store.db).find((rule) => rule.listenPort === 20010);
    assert.deepEqual(failed?.state, { kind: 'failed', reason: 'port_in_use' });
    answer = () => ({ outcome: 'ACTIVATED' });
    const again = await push(alice, {
      listen_port: 20010,
      target_host: '127.0.0.1',
      target_port: 81,
    });
    assert.equal(again.statusCode, 409);
    assert.equal(errorCode(again.body), 'port_in_use');
    assert.match(again.body, /port 20010/);
  });

  it('answers 504 ack_timeout and leaves the rule Pending; a late ack still lands', async () => {
    let late: RuleUpdate | undefined;
    answer = (update) => {
      late = update;
      return undefined;
    };
    const response = await push(alice, {
      listen_port: 20020,
      target_host: '127.0.0.1',
      target_port: 80,
      ack_timeout_secs: 1,
    });
    assert.equal(response.statusCode, 504);
    assert.equal(errorCode(response.body), 'ack_timeout');
    const pending = listRules(h.store.db).find((rule) => rule.listenPort === 20020);
    assert.equal(pending?.state.kind, 'pending');
    assert.ok(late?.rule);
    fleet.status(session, {
      request_id: late.request_id,
      rule_id: late.rule.rule_id,
      outcome: 'ACTIVATED',
      reason: '',
    });
    assert.equal(getRule(h.store.db, pending.ruleId)?.state.kind, 'active');
  });

  it('refuses a range overlapping an Active rule with 409 port_in_use naming the first port', async () => {
    const before = listRules(h.store.db).length;
    const response = await push(alice, {
      listen_port: 19999 + 1,
      listen_port_end: 20003,
      target_host: '127.0.0.1',
      target_port: 30000,
      target_port_end: 30003,
    });
    assert.equal(response.statusCode, 409);
    assert.match(response.body, /port 20001/);
    assert.equal(listRules(h.store.db).length, before);
  });

  it('lets TCP and UDP rules share a port number', async () => {
    answer = () => ({ outcome: 'ACTIVATED' });
    const response = await push(alice, {
      listen_port: 20001,
      protocol: 'udp',
      target_host: '127.0.0.1',
      target_port: 53,
    });
    assert.equal(response.statusCode, 201, response.body);
  });

  it('gates UDP for a client whose Hello lists TCP only, storing nothing', async () => {
    connect(['TCP']);
    assert.equal(ended.at(-1)?.kind, 'superseded');
    const before = listRules(h.store.db).length;
    const response = await push(root, {
      listen_port: 20050,
      protocol: 'udp',
      target_host: '127.0.0.1',
      target_port: 53,
    });
    assert.equal(response.statusCode, 422);
    assert.equal(errorCode(response.body), 'unsupported_protocol');
    assert.equal(listRules(h.store.db).length, before);
    connect();
  });

  it('DELETE sends REMOVE to the client and the rule leaves the store', async () => {
    const rule = listRules(h.store.db).find((r) => r.listenPort === 20020);
    assert.ok(rule);
    const response = await h.bearer(alice, { method: 'DELETE', url: `/v1/rules/${rule.ruleId}` });
    assert.equal(response.statusCode, 204);
    const remove = sent.findLast((m) => 'rule_update' in m && m.rule_update.action === 'REMOVE');
    assert.ok(remove && 'rule_update' in remove);
    assert.equal(remove.rule_update.rule?.rule_id, String(rule.ruleId));
    assert.equal(getRule(h.store.db, rule.ruleId), undefined);
  });

  it('replays only Active rules to a reconnecting client', () => {
    const mark = sent.length;
    connect();
    fleet.replay(session, listRules(h.store.db, { clientId: EDGE }));
    const replayed = sent
      .slice(mark)
      .flatMap((m) => ('rule_update' in m ? [Number(m.rule_update.rule?.rule_id)] : []));
    const active = listRules(h.store.db, { clientId: EDGE })
      .filter((rule) => rule.state.kind === 'active')
      .map((rule) => rule.ruleId);
    assert.deepEqual(replayed.sort(), active.sort());
    assert.ok(
      sent
        .slice(mark)
        .every((m) => !('rule_update' in m) || m.rule_update.request_id.startsWith('replay-')),
    );
  });

  it('serves stats from the last report, per port on request, and exports one series per rule', async () => {
    const rule = listRules(h.store.db).find((r) => r.listenPort === 20001 && r.protocol === 'tcp');
    assert.ok(rule);
    const missing = await h.bearer(alice, { method: 'GET', url: `/v1/rules/${rule.ruleId}/stats` });
    assert.equal(missing.statusCode, 404);
    const stats = wireStats(rule.ruleId, 1234, 5678, {
      active_connections: 2,
      per_port: [
        {
          listen_port: 20001,
          bytes_in: 1234,
          bytes_out: 5678,
          active_connections: 2,
          datagrams_in: 0,
          datagrams_out: 0,
        },
      ],
    });
    fleet.report(session, {
      sent_at_unix_ms: h.clock,
      stats: [stats, { ...stats, rule_id: '999999' }],
    });
    const response = await h.bearer(alice, {
      method: 'GET',
      url: `/v1/rules/${rule.ruleId}/stats?per_port=true`,
    });
    assert.equal(response.statusCode, 200, response.body);
    const body = response.json<{
      bytes_in: number;
      bytes_out: number;
      protocol: string;
      per_port: unknown[];
    }>();
    assert.equal(body.bytes_in, 1234);
    assert.equal(body.bytes_out, 5678);
    assert.equal(body.protocol, 'tcp');
    assert.equal(body.per_port.length, 1);
    const text = await h.metrics.render();
    const line = `portunus_rule_bytes_in_total{client="edge-1",rule="${rule.ruleId}",owner="alice"} 1234`;
    assert.ok(text.includes(line), text);
    assert.ok(!text.includes('rule="999999"'));
    assert.match(text, /portunus_clients_connected 1/);
  });

  it('shows per-target health and counters in the stats route, the rule JSON and metrics', async () => {
    connect(['TCP', 'UDP'], '0.10.0');
    answer = () => ({ outcome: 'ACTIVATED' });
    const created = await push(root, {
      listen_port: 20050,
      targets: [
        { host: '10.0.0.1', port: 80 },
        { host: 'app.internal', port: 8080, priority: 1, proxy_protocol: 'v2' },
      ],
    });
    assert.equal(created.statusCode, 201, created.body);
    const ruleId = created.json<{ rule_id: number }>().rule_id;
    const target = (index: number, host: string, port: number, health: number) => ({
      index,
      host,
      port,
      priority: index,
      health,
      consecutive_failures: health === 1 ? 3 : 0,
      last_failure_at_unix_ms: health === 1 ? 1_700_000_000_000 : 0,
      last_success_at_unix_ms: 1_600_000_000_000,
      bytes_in: 10 * (index + 1),
      bytes_out: 20 * (index + 1),
      connections_accepted: index + 4,
    });
    fleet.report(session, {
      sent_at_unix_ms: h.clock,
      stats: [
        {
          rule_id: String(ruleId),
          bytes_in: 30,
          bytes_out: 60,
          active_connections: 0,
          per_port: [],
          dns_failures: 2,
          datagrams_in: 0,
          datagrams_out: 0,
          active_flows: 0,
          flows_dropped_overflow: 0,
          target_failovers_total: 1,
          per_target: [target(0, '10.0.0.1', 80, 1), target(1, 'app.internal', 8080, 0)],
        },
      ],
    });
    const plain = await h.bearer(root, { method: 'GET', url: `/v1/rules/${ruleId}/stats` });
    assert.equal(plain.json<Record<string, unknown>>()['per_target'], undefined);
    const stats = await h.bearer(root, {
      method: 'GET',
      url: `/v1/rules/${ruleId}/stats?per_target=true`,
    });
    assert.equal(stats.statusCode, 200, `${stats.body} ${created.body}`);
    const body = stats.json<{
      dns_failures: number;
      target_failovers_total: number;
      per_target: { host: string; health: number; connections_accepted: number }[];
    }>();
    assert.equal(body.dns_failures, 2);
    assert.equal(body.target_failovers_total, 1);
    assert.deepEqual(
      body.per_target.map((t) => [t.host, t.health, t.connections_accepted]),
      [
        ['10.0.0.1', 1, 4],
        ['app.internal', 0, 5],
      ],
    );
    type Health = { healthy: boolean; consecutive_failures: number } | null;
    type RuleJson = { id: number; targets: { health: Health }[] };
    const one = await h.bearer(root, { method: 'GET', url: `/v1/rules/${ruleId}` });
    const healths = one.json<RuleJson>().targets.map((t) => t.health);
    assert.deepEqual(
      healths.map((x) => [x?.healthy, x?.consecutive_failures]),
      [
        [false, 3],
        [true, 0],
      ],
    );
    const list = await h.bearer(root, { method: 'GET', url: '/v1/rules' });
    const rules = list.json<RuleJson[]>();
    assert.deepEqual(
      rules.find((r) => r.id === ruleId)?.targets.map((t) => t.health?.healthy),
      [false, true],
    );
    assert.ok(
      rules.filter((r) => r.id !== ruleId).every((r) => r.targets.every((t) => t.health === null)),
      'rules without a per-target report keep health null',
    );
    const text = await h.metrics.render();
    assert.ok(
      text.includes(
        `portunus_rule_target_failovers_total{client="edge-1",rule="${ruleId}",owner="root"} 1`,
      ),
      text,
    );
  });

  it('revocation ends the session as terminal and the client is offline', () => {
    fleet.disconnect(EDGE, 'revoked');
    assert.deepEqual(ended.at(-1), { kind: 'revoked', terminal: true });
    assert.equal(fleet.isConnected(EDGE), false);
  });
});
