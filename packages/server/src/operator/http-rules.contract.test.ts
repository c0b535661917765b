// Contract of the rule routes: Rule JSON, ownership and role checks on list/get/delete, and the
// push pipeline's validation order, RBAC and the client_not_connected answer that stores nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { insertClient, insertGrant, insertRule, type Rule } from '@portunus/store';

import { ContractHarness, errorCode } from './contract.harness.js';

const CLIENT = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const TWIN_A = '01HZZZZZZZZZZZZZZZZZZZZZZ2';
const TWIN_B = '01HZZZZZZZZZZZZZZZZZZZZZZ3';

let h: ContractHarness;
let root: string;
let alice: string;
let aliceRule: Rule;
let rootRule: Rule;

before(async () => {
  h = new ContractHarness();
  root = await h.addUser('root', 'superadmin');
  alice = await h.addUser('alice', 'user');
  await h.addUser('bob', 'user');
  const db = h.store.db;
  insertClient(db, { clientId: CLIENT, clientName: 'edge-1', now: h.clock });
  insertClient(db, { clientId: TWIN_A, clientName: 'twin', now: h.clock });
  insertClient(db, { clientId: TWIN_B, clientName: 'twin', now: h.clock });
  insertGrant(db, {
    grantId: 'g1',
    userId: 'alice',
    clientId: CLIENT,
    listenPortStart: 20000,
    listenPortEnd: 20010,
    protocols: ['tcp'],
    note: '',
    now: h.clock,
  });
  aliceRule = insertRule(db, {
    clientId: CLIENT,
    ownerUserId: 'alice',
    protocol: 'tcp',
    listenPort: 20001,
    targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
    state: { kind: 'active' },
    now: h.clock,
  });
  rootRule = insertRule(db, {
    clientId: CLIENT,
    ownerUserId: 'root',
    protocol: 'udp',
    listenPort: 30000,
    listenPortEnd: 30009,
    targets: [
      { host: 'backend.internal', port: 40000, portEnd: 40009, priority: 0, proxyProtocol: null },
    ],
    rateLimit: { concurrentConnections: 10 },
    state: { kind: 'failed', reason: 'port_in_use' },
    now: h.clock,
  });
});
after(() => h.close());

const ruleCount = (): number =>
  h.store.db.prepare('SELECT count(*) FROM rules').pluck().get() as number;

describe('GET /v1/rules', () => {
  it('renders the reference Rule JSON', async () => {
    const response = await h.bearer(root, { method: 'GET', url: `/v1/rules/${rootRule.ruleId}` });
    assert.deepEqual(response.json(), {
      id: rootRule.ruleId,
      client_id: CLIENT,
      client_name: 'edge-1',
      listen_port: 30000,
      listen_port_end: 30009,
      target_host: 'backend.internal',
      target_port: 40000,
      target_port_end: 40009,
      prefer_ipv6: false,
      protocol: 'udp',
      state: { kind: 'failed', reason: 'port_in_use' },
      created_at: '2026-05-01T12:00:00.000Z',
      last_state_change_at: '2026-05-01T12:00:00.000Z',
      owner_user_id: 'root',
      targets: [
        { host: 'backend.internal', port: 40000, priority: 0, proxy_protocol: null, health: null },
      ],
      rate_limit: { concurrent_connections: 10 },
    });
  });

  it('answers a repeated list from cache only while nothing changed', async () => {
    const ids = async (): Promise<number[]> =>
      (await h.bearer(root, { method: 'GET', url: '/v1/rules' }))
        .json<{ id: number }[]>()
        .map((r) => r.id);
    const before = await ids();
    assert.deepEqual(await ids(), before);
    const extra = insertRule(h.store.db, {
      clientId: CLIENT,
      ownerUserId: 'root',
      protocol: 'tcp',
      listenPort: 31000,
      targets: [{ host: 'x.example', port: 1, portEnd: null, priority: 0, proxyProtocol: null }],
      now: h.clock,
    });
    assert.deepEqual(await ids(), [...before, extra.ruleId]);
    h.store.db
      .prepare('UPDATE clients SET client_name = ? WHERE client_id = ?')
      .run('edge-renamed', CLIENT);
    const renamed = (await h.bearer(root, { method: 'GET', url: '/v1/rules' })).json<
      { client_name: string }[]
    >();
    assert.ok(renamed.every((rule) => rule.client_name === 'edge-renamed'));
    h.store.db
      .prepare('UPDATE clients SET client_name = ? WHERE client_id = ?')
      .run('edge-1', CLIENT);
    h.store.db.prepare('DELETE FROM rules WHERE rule_id = ?').run(extra.ruleId);
    assert.deepEqual(await ids(), before);
  });

  it('lists exactly what the single-rule route renders', async () => {
    const list = (await h.bearer(root, { method: 'GET', url: '/v1/rules' })).json<
      { id: number }[]
    >();
    assert.ok(list.length >= 2);
    for (const rule of list) {
      const one = await h.bearer(root, { method: 'GET', url: `/v1/rules/${rule.id}` });
      assert.deepEqual(rule, one.json());
    }
  });

  it('shows a user only their own rules and keeps the owner filter for superadmins', async () => {
    const mine = await h.bearer(alice, { method: 'GET', url: '/v1/rules' });
    assert.deepEqual(
      mine.json<{ id: number }[]>().map((rule) => rule.id),
      [aliceRule.ruleId],
    );
    const all = await h.bearer(root, { method: 'GET', url: '/v1/rules' });
    assert.equal(all.json<unknown[]>().length, 2);
    const byOwner = await h.bearer(root, { method: 'GET', url: '/v1/rules?owner=alice' });
    assert.deepEqual(
      byOwner.json<{ id: number }[]>().map((rule) => rule.id),
      [aliceRule.ruleId],
    );
    const byClient = await h.bearer(root, { method: 'GET', url: '/v1/rules?client=nope' });
    assert.deepEqual(byClient.json(), []);
    const denied = await h.bearer(alice, { method: 'GET', url: '/v1/rules?owner=root' });
    assert.equal(errorCode(denied.body), 'role_required');
  });

  it('answers not_owner and rule_not_found', async () => {
    const other = await h.bearer(alice, { method: 'GET', url: `/v1/rules/${rootRule.ruleId}` });
    assert.equal(other.statusCode, 403);
    assert.equal(errorCode(other.body), 'not_owner');
    for (const id of ['999999', 'abc', '0']) {
      const missing = await h.bearer(root, { method: 'GET', url: `/v1/rules/${id}` });
      assert.equal(missing.statusCode, 404, id);
      assert.equal(errorCode(missing.body), 'rule_not_found');
    }
  });
});

describe('DELETE /v1/rules/{id}', () => {
  it('lets only the owner or a superadmin remove a rule, and audits it', async () => {
    const db = h.store.db;
    const rule = insertRule(db, {
      clientId: CLIENT,
      ownerUserId: 'alice',
      protocol: 'tcp',
      listenPort: 20005,
      targets: [{ host: 'a.example', port: 1, portEnd: null, priority: 0, proxyProtocol: null }],
      now: h.clock,
    });
    const bob = await h.login('bob');
    const denied = await h.session(bob, { method: 'DELETE', url: `/v1/rules/${rule.ruleId}` });
    assert.equal(errorCode(denied.body), 'not_owner');
    const removed = await h.bearer(alice, { method: 'DELETE', url: `/v1/rules/${rule.ruleId}` });
    assert.equal(removed.statusCode, 204);
    const row = h.auditRows().find((r) => r.action === 'operator.rule_removed');
    assert.equal(row?.resourceValue, String(rule.ruleId));
    assert.equal(row.actor, 'alice');
    const again = await h.bearer(alice, { method: 'DELETE', url: `/v1/rules/${rule.ruleId}` });
    assert.equal(errorCode(again.body), 'rule_not_found');
  });
});

describe('POST /v1/rules', () => {
  const legacy = { client: 'edge-1', listen_port: 20002, target_host: '10.0.0.2', target_port: 80 };
  const push = async (token: string, body: Record<string, unknown>): Promise<string> => {
    const before = ruleCount();
    const response = await h.bearer(token, { method: 'POST', url: '/v1/rules', payload: body });
    assert.equal(ruleCount(), before, 'a rejected push stored something');
    return errorCode(response.body);
  };

  it('answers client_not_connected for a valid push and stores nothing', async () => {
    const response = await h.bearer(alice, { method: 'POST', url: '/v1/rules', payload: legacy });
    assert.equal(response.statusCode, 422);
    assert.equal(await push(alice, legacy), 'client_not_connected');
    assert.equal(await push(root, { ...legacy, listen_port: 50000 }), 'client_not_connected');
  });

  it('reports each validation failure with its code', async () => {
    const targets = [{ host: 'a.example', port: 1 }];
    const cases: [Record<string, unknown>, string][] = [
      [{ ...legacy, targets }, 'rule_shape_conflict'],
      [{ client: 'edge-1', listen_port: 20002 }, 'rule_shape_missing'],
      [{ ...legacy, listen_port_end: 20003 }, 'range_invalid'],
      [{ ...legacy, listen_port: 0 }, 'range_invalid'],
      [{ ...legacy, listen_port_end: 20004, target_port_end: 81 }, 'range_invalid'],
      [{ client: 'edge-1', listen_port: 20002, targets: [] }, 'targets_empty'],
      [
        {
          client: 'edge-1',
          listen_port: 20002,
          targets: Array.from({ length: 9 }, (_, i) => ({ host: 'h', port: i + 1 })),
        },
        'targets_too_many',
      ],
      [
        { client: 'edge-1', listen_port: 20002, targets: [{ host: ' ', port: 1 }] },
        'invalid_target_host',
      ],
      [
        { client: 'edge-1', listen_port: 20002, targets: [{ host: 'h', port: 0 }] },
        'target_invalid_port',
      ],
      [
        {
          client: 'edge-1',
          listen_port: 20002,
          targets: [
            { host: 'h', port: 1 },
            { host: 'H', port: 1 },
          ],
        },
        'targets_duplicate',
      ],
      [{ ...legacy, health_check_interval_secs: 5 }, 'health_check_interval_out_of_range'],
      [
        { client: 'edge-1', listen_port: 20002, targets, health_check_interval_secs: 3601 },
        'health_check_interval_out_of_range',
      ],
      [
        { ...legacy, protocol: 'udp', sni_pattern: 'a.example' },
        'validation.sni_on_unsupported_rule',
      ],
      [{ ...legacy, sni_pattern: '*.com' }, 'validation.sni_pattern_malformed'],
      [{ ...legacy, sni_pattern: 'bad_label.example' }, 'validation.sni_pattern_malformed'],
      [
        { ...legacy, rate_limit: { concurrent_connections: 5 } },
        'validation.rate_limit_on_legacy_shape',
      ],
      [
        { client: 'edge-1', listen_port: 20002, targets, rate_limit: { bandwidth_in_bps: 0 } },
        'validation.rate_limit_cap_zero',
      ],
      [
        { client: 'edge-1', listen_port: 20002, targets, rate_limit: { bandwidth_in_burst: 10 } },
        'validation.rate_limit_burst_without_rate',
      ],
      [{ ...legacy, protocol: 'sctp' }, 'invalid_protocol'],
      [{ ...legacy, target_host: 'bad host!' }, 'invalid_target_host'],
      [{ ...legacy, target_host: '1.2.3' }, 'invalid_target_host'],
      [{ ...legacy, client: 'nowhere' }, 'client_not_found'],
      [{ ...legacy, unexpected: 1 }, 'validation_failed'],
    ];
    for (const [body, code] of cases)
      assert.equal(await push(root, body), code, JSON.stringify(body));
  });

  it('checks in the reference order: shape before ranges before protocol before host', async () => {
    assert.equal(
      await push(root, { ...legacy, targets: [], protocol: 'sctp' }),
      'rule_shape_conflict',
    );
    assert.equal(
      await push(root, { ...legacy, listen_port: 0, protocol: 'sctp' }),
      'range_invalid',
    );
    assert.equal(
      await push(root, { ...legacy, protocol: 'sctp', target_host: 'bad host!' }),
      'invalid_protocol',
    );
  });

  it('enforces grants for users: client, then protocol, then one grant covering the range', async () => {
    const bob = await h.addUser('carol', 'user');
    assert.equal(await push(bob, legacy), 'client_not_granted');
    assert.equal(await push(alice, { ...legacy, protocol: 'udp' }), 'protocol_not_granted');
    assert.equal(await push(alice, { ...legacy, listen_port: 20011 }), 'port_outside_grant');
    assert.equal(
      await push(alice, {
        ...legacy,
        listen_port: 20009,
        listen_port_end: 20011,
        target_port_end: 82,
      }),
      'port_outside_grant',
    );
    const denied = h.auditRows().filter((row) => row.reason === 'port_outside_grant');
    assert.equal(denied.length, 2);
    assert.equal(denied[0]?.outcome, 'deny');
  });

  it('resolves clients by display name, whichever twin', async () => {
    assert.equal(await push(root, { ...legacy, client: 'twin' }), 'client_not_connected');
  });
});
