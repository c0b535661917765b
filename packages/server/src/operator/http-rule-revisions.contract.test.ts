// Proves live rule edits and rule-set revisions through the real fleet and a real store: PUT
// /v1/rules/{id} keeps the id, pushes RuleUpdate{PUSH} with it and stores the new definition only
// once the client activated it (a refusal or a timeout leaves the stored rule as it was; an edit
// that changes nothing sends nothing); conflicts, grants, ownership and self-loops are refused
// with nothing stored; every change (push, edit, remove, cascades) is a revision with who and
// when; diff names what differs from now; restore pushes only the difference, is a revision
// itself and reports what it could not apply. The client side is an in-process fake session.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import type { LightMyRequestResponse } from 'fastify';

import { silentLogger } from '@portunus/core';
import type { RuleUpdate, ServerMessage } from '@portunus/proto';
import { getRule, insertClient, insertGrant, listRules, type Rule } from '@portunus/store';

import { ControlFleet } from '../control/fleet.js';
import { ContractHarness, errorCode } from './contract.harness.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const OFFLINE = '01HZZZZZZZZZZZZZZZZZZZZZZ2';

type Json = Record<string, unknown>;
type Reply = { outcome: 'ACTIVATED' | 'FAILED'; reason?: string } | undefined;

let h: ContractHarness;
let fleet: ControlFleet;
let root: string;
let alice: string;
let bob: string;
let session: ReturnType<ControlFleet['open']>;
const sent: RuleUpdate[] = [];
let answer: (update: RuleUpdate) => Reply = () => ({ outcome: 'ACTIVATED' });

function connect(): void {
  session = fleet.open(
    { clientId: EDGE, clientName: 'edge-1', remoteAddr: '192.0.2.7:5555' },
    { protocol_version: '1.0.0', client_version: '1.0.0', supported_protocols: ['TCP', 'UDP'] },
    {
      send: (message: ServerMessage) => {
        if (!('rule_update' in message)) return;
        const update = message.rule_update;
        sent.push(update);
        if (update.action !== 'PUSH' || !update.rule) return;
        const reply = answer(update);
        if (!reply) return;
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
      end: () => undefined,
    },
  );
}

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
  bob = await h.addUser('bob', 'user');
  insertClient(h.store.db, {
    clientId: EDGE,
    clientName: 'edge-1',
    clientAddress: 'edge1.example.net',
    now: h.clock,
  });
  insertClient(h.store.db, { clientId: OFFLINE, clientName: 'edge-2', now: h.clock });
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
beforeEach(() => {
  sent.length = 0;
  answer = () => ({ outcome: 'ACTIVATED' });
  h.clock += 1000;
});

const call = (
  token: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  payload?: Json,
): Promise<LightMyRequestResponse> =>
  h.bearer(token, { method, url, ...(payload !== undefined ? { payload } : {}) });

async function pushed(token: string, body: Json): Promise<number> {
  const response = await call(token, 'POST', '/v1/rules', { client: 'edge-1', ...body });
  assert.equal(response.statusCode, 201, response.body);
  return response.json<{ rule_id: number }>().rule_id;
}

function revisionCount(): number {
  return h.store.db.prepare('SELECT count(*) FROM rule_revisions').pluck().get() as number;
}

function stored(ruleId: number): Rule {
  const rule = getRule(h.store.db, ruleId);
  assert.ok(rule, `rule ${ruleId} is stored`);
  return rule;
}

/** A refused request: its code and status, with the rules and revisions left as they were. */
async function refused(
  token: string,
  method: 'POST' | 'PUT',
  url: string,
  body: Json,
  code: string,
  status: number,
): Promise<void> {
  const rulesBefore = JSON.stringify(listRules(h.store.db));
  const revisionsBefore = revisionCount();
  const response = await call(token, method, url, body);
  assert.equal(errorCode(response), code, `${method} ${JSON.stringify(body)}: ${response.body}`);
  assert.equal(response.statusCode, status, response.body);
  assert.equal(JSON.stringify(listRules(h.store.db)), rulesBefore, 'the rules changed');
  assert.equal(revisionCount(), revisionsBefore, 'a revision was recorded');
}

interface RevisionJson {
  revision: number;
  at: string;
  actor: string;
  action: string;
  summary: string;
}

async function history(): Promise<RevisionJson[]> {
  const response = await call(root, 'GET', '/v1/rule-revisions?limit=1000');
  assert.equal(response.statusCode, 200, response.body);
  return response.json<{ revisions: RevisionJson[] }>().revisions;
}

describe('PUT /v1/rules/{id}', () => {
  it('replaces every field live under the same id, pushed and stored once activated', async () => {
    const ruleId = await pushed(alice, {
      listen_port: 20001,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    sent.length = 0;
    const response = await call(alice, 'PUT', `/v1/rules/${ruleId}`, {
      client: 'edge-1',
      listen_port: 20002,
      targets: [
        { host: 'a.example', port: 8080, proxy_protocol: 'v2' },
        { host: '10.0.0.2', port: 8080, priority: 7 },
      ],
      prefer_ipv6: true,
      health_check_interval_secs: 30,
      rate_limit: { concurrent_connections: 9 },
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), {
      rule_id: ruleId,
      status: 'Active',
      target_host: 'a.example',
      prefer_ipv6: true,
      protocol: 'tcp',
      owner: 'alice',
    });
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.action, 'PUSH');
    assert.equal(sent[0].rule?.rule_id, String(ruleId));
    assert.equal(sent[0].rule.listen_port, 20002);
    assert.equal(sent[0].rule.targets.length, 2);
    const rule = stored(ruleId);
    assert.equal(rule.listenPort, 20002);
    assert.equal(rule.preferIpv6, true);
    assert.equal(rule.healthCheckIntervalSecs, 30);
    assert.deepEqual(rule.rateLimit, { concurrentConnections: 9 });
    assert.deepEqual(
      rule.targets.map((target) => [target.host, target.priority, target.proxyProtocol]),
      [
        ['a.example', 0, 'v2'],
        ['10.0.0.2', 7, null],
      ],
    );
    assert.equal(rule.state.kind, 'active');
    const [latest] = await history();
    assert.equal(latest?.action, 'edit');
    assert.equal(latest.actor, 'alice');
    assert.equal(latest.at, new Date(h.clock).toISOString());
    assert.match(latest.summary, new RegExp(`^edit rule ${ruleId} \\(listen_port, prefer_ipv6`));
    const row = h.auditRows().findLast((entry) => entry.action === 'operator.rule_edited');
    assert.equal(row?.actor, 'alice');
    assert.equal(row.resourceValue, String(ruleId));
    assert.equal(row.details['changed'], true);
  });

  it('answers an edit that changes nothing with 200 and no push, no revision', async () => {
    const body = { listen_port: 20005, targets: [{ host: '10.0.0.5', port: 80 }] };
    const ruleId = await pushed(alice, body);
    sent.length = 0;
    const revisions = revisionCount();
    const response = await call(alice, 'PUT', `/v1/rules/${ruleId}`, {
      client: 'edge-1',
      ...body,
      targets: [{ host: '10.0.0.5', port: 80, priority: 0, proxy_protocol: ' ' }],
      ack_timeout_secs: 9,
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.json<{ rule_id: number }>().rule_id, ruleId);
    assert.equal(sent.length, 0);
    assert.equal(revisionCount(), revisions);
  });

  it('leaves the stored rule as it was when the client refuses the edit', async () => {
    const ruleId = await pushed(alice, {
      listen_port: 20010,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    const before = stored(ruleId);
    const revisions = revisionCount();
    answer = () => ({ outcome: 'FAILED', reason: 'port_in_use' });
    const response = await call(alice, 'PUT', `/v1/rules/${ruleId}`, {
      client: 'edge-1',
      listen_port: 20011,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    assert.equal(response.statusCode, 422, response.body);
    assert.equal(errorCode(response), 'activation_failed');
    assert.match(response.body, /keeps its previous definition: port_in_use/);
    assert.deepEqual(stored(ruleId), before, 'definition and Active state untouched');
    assert.equal(revisionCount(), revisions);
  });

  it('answers 504 and keeps the stored definition when the client does not answer', async () => {
    const ruleId = await pushed(alice, {
      listen_port: 20012,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    const before = stored(ruleId);
    answer = () => undefined;
    const response = await call(alice, 'PUT', `/v1/rules/${ruleId}`, {
      client: 'edge-1',
      listen_port: 20012,
      targets: [{ host: '10.0.0.9', port: 80 }],
      ack_timeout_secs: 1,
    });
    assert.equal(response.statusCode, 504, response.body);
    assert.equal(errorCode(response), 'ack_timeout');
    assert.deepEqual(stored(ruleId), before);
  });

  it('checks conflicts against other rules only, and grants, ownership and the client', async () => {
    const first = await pushed(alice, {
      listen_port: 20020,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    const second = await pushed(alice, {
      listen_port: 20021,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    const url = `/v1/rules/${second}`;
    const body = (listen: Json): Json => ({
      client: 'edge-1',
      targets: [{ host: '10.0.0.1', port: 81 }],
      ...listen,
    });
    // Its own port is no conflict; another rule's is.
    assert.equal((await call(alice, 'PUT', url, body({ listen_port: 20021 }))).statusCode, 200);
    await refused(alice, 'PUT', url, body({ listen_port: 20020 }), 'port_in_use', 409);
    await refused(
      alice,
      'PUT',
      url,
      body({
        listen_port: 20019,
        listen_port_end: 20020,
        targets: undefined,
        target_host: 'x.example',
        target_port: 1,
        target_port_end: 2,
      }),
      'port_in_use',
      409,
    );
    await refused(alice, 'PUT', url, body({ listen_port: 20200 }), 'port_outside_grant', 403);
    await refused(bob, 'PUT', url, body({ listen_port: 20021 }), 'not_owner', 403);
    await refused(
      root,
      'PUT',
      url,
      { ...body({ listen_port: 20021 }), client: 'edge-2' },
      'validation.rule_update_shape_mismatch',
      400,
    );
    await refused(
      root,
      'PUT',
      '/v1/rules/999999',
      body({ listen_port: 20021 }),
      'rule_not_found',
      404,
    );
    await refused(
      root,
      'PUT',
      '/v1/rules/abc',
      body({ listen_port: 20021 }),
      'rule_not_found',
      404,
    );
    // A superadmin editing a user's rule cannot take it outside the owner's grants.
    await refused(root, 'PUT', url, body({ listen_port: 30000 }), 'port_outside_grant', 403);
    assert.equal(stored(first).listenPort, 20020);
  });

  it('refuses an edit to an offline client with client_not_connected, storing nothing', async () => {
    const ruleId = await pushed(root, {
      listen_port: 40000,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    fleet.close(session);
    try {
      await refused(
        root,
        'PUT',
        `/v1/rules/${ruleId}`,
        { client: 'edge-1', listen_port: 40001, targets: [{ host: '10.0.0.1', port: 80 }] },
        'client_not_connected',
        422,
      );
    } finally {
      connect();
    }
  });
});

describe('self-loops', () => {
  const selfTargets: [Json, string][] = [
    [{ target_host: '127.0.0.1', target_port: 20030 }, 'loopback on its own port'],
    [{ target_host: '127.1.2.3', target_port: 20030 }, 'anywhere in 127/8'],
    [{ target_host: 'localhost', target_port: 20030 }, 'localhost'],
    [{ target_host: 'LocalHost.', target_port: 20030 }, 'localhost, any case, trailing dot'],
    [{ target_host: 'api.localhost', target_port: 20030 }, 'a name under localhost'],
    [{ target_host: '0.0.0.0', target_port: 20030 }, 'the unspecified address'],
    [{ target_host: '::1', target_port: 20030 }, 'IPv6 loopback'],
    [{ target_host: '::', target_port: 20030 }, 'IPv6 unspecified'],
    [{ target_host: '::ffff:127.0.0.1', target_port: 20030 }, 'IPv4-mapped loopback'],
    [{ target_host: 'edge1.example.net', target_port: 20030 }, "the client's entry address"],
    [{ target_host: '192.0.2.7', target_port: 20030 }, 'the address the client dialled from'],
    [
      {
        targets: [
          { host: '10.0.0.1', port: 80 },
          { host: '127.0.0.1', port: 20030 },
        ],
      },
      'any target',
    ],
  ];

  it('refuses a target that is the rule itself, on push and on edit', async () => {
    for (const [target, why] of selfTargets) {
      await refused(
        alice,
        'POST',
        '/v1/rules',
        { client: 'edge-1', listen_port: 20030, ...target },
        'validation.target_is_self',
        400,
      ).catch((error: unknown) => {
        throw new Error(`${why}: ${String(error)}`);
      });
    }
    const ruleId = await pushed(alice, {
      listen_port: 20031,
      target_host: '127.0.0.1',
      target_port: 20030,
    });
    for (const [target, why] of selfTargets) {
      await refused(
        alice,
        'PUT',
        `/v1/rules/${ruleId}`,
        { client: 'edge-1', listen_port: 20030, ...target },
        'validation.target_is_self',
        400,
      ).catch((error: unknown) => {
        throw new Error(`${why}: ${String(error)}`);
      });
    }
  });

  it('refuses a range whose target range meets its listen range, and allows one beside it', async () => {
    const range = (targetPort: number): Json => ({
      client: 'edge-1',
      listen_port: 20040,
      listen_port_end: 20044,
      target_host: '127.0.0.1',
      target_port: targetPort,
      target_port_end: targetPort + 4,
    });
    for (const port of [20040, 20036, 20044]) {
      await refused(alice, 'POST', '/v1/rules', range(port), 'validation.target_is_self', 400);
    }
    assert.equal((await call(alice, 'POST', '/v1/rules', range(20045))).statusCode, 201);
    // Another host on the same port, or loopback on another port, is an ordinary rule.
    await pushed(alice, { listen_port: 20050, target_host: '10.0.0.1', target_port: 20050 });
    await pushed(alice, { listen_port: 20051, target_host: '127.0.0.1', target_port: 8080 });
  });
});

describe('rule-set revisions', () => {
  it('records every change with who and when: push, edit, remove and the cascades', async () => {
    const start = (await history())[0]?.revision ?? 0;
    const ruleId = await pushed(alice, {
      listen_port: 20060,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    const edited = await call(alice, 'PUT', `/v1/rules/${ruleId}`, {
      client: 'edge-1',
      listen_port: 20060,
      targets: [{ host: '10.0.0.2', port: 80 }],
    });
    assert.equal(edited.statusCode, 200, edited.body);
    assert.equal((await call(root, 'DELETE', `/v1/rules/${ruleId}`)).statusCode, 204);
    // A cascade: removing bob removes his rule, in the same revision log.
    await h.bearer(root, {
      method: 'POST',
      url: '/v1/grants',
      payload: {
        user_id: 'bob',
        client: 'edge-1',
        listen_port_start: 21000,
        listen_port_end: 21010,
        protocols: ['tcp'],
      },
    });
    const bobRule = await pushed(bob, {
      listen_port: 21001,
      target_host: '10.0.0.3',
      target_port: 80,
    });
    assert.equal((await call(root, 'DELETE', '/v1/users/bob')).statusCode, 200);
    const revisions = (await history()).filter((revision) => revision.revision > start);
    assert.deepEqual(revisions.map((revision) => [revision.action, revision.actor]).reverse(), [
      ['push', 'alice'],
      ['edit', 'alice'],
      ['remove', 'root'],
      ['push', 'bob'],
      ['user_removed', 'root'],
    ]);
    assert.equal(revisions[0]?.summary, `remove user bob: rules ${bobRule}`);
    assert.match(
      revisions[2]?.summary ?? '',
      new RegExp(`^remove rule ${ruleId}: edge-1 tcp 20060 -> 10.0.0.2:80$`),
    );
    assert.ok(revisions.every((revision) => /^\d{4}-\d\d-\d\dT/.test(revision.at)));
    // The removed user cannot come back, so neither can the rule: reported, nothing stored.
    const beforeRemoval = (revisions[1]?.revision ?? 0).toString();
    const restore = await call(root, 'POST', `/v1/rule-revisions/${beforeRemoval}/restore`, {});
    assert.equal(restore.statusCode, 200, restore.body);
    assert.deepEqual(restore.json<{ revision: unknown; failed: Json[] }>(), {
      revision: null,
      restored_to: Number(beforeRemoval),
      removed: [],
      pushed: [],
      edited: [],
      failed: [
        {
          rule_id: bobRule,
          action: 'push',
          code: 'user_not_found',
          message: 'owner bob no longer exists; the rule cannot come back',
        },
      ],
    });
    assert.equal(getRule(h.store.db, bobRule), undefined);
    // REMOVE went to the client for the cascade too.
    assert.ok(
      sent.some((update) => update.action === 'REMOVE' && update.rule?.rule_id === String(bobRule)),
    );
  });

  it('pages the history like the audit log and refuses bad paging', async () => {
    const all = await history();
    const first = await call(root, 'GET', '/v1/rule-revisions?limit=2');
    const page = first.json<{ revisions: RevisionJson[]; next_cursor?: string }>();
    assert.deepEqual(
      page.revisions.map((revision) => revision.revision),
      all.slice(0, 2).map((revision) => revision.revision),
    );
    assert.ok(page.next_cursor);
    const next = await call(root, 'GET', `/v1/rule-revisions?limit=2&cursor=${page.next_cursor}`);
    assert.deepEqual(
      next.json<{ revisions: RevisionJson[] }>().revisions.map((revision) => revision.revision),
      all.slice(2, 4).map((revision) => revision.revision),
    );
    assert.equal(first.headers['cache-control'], 'no-store');
    for (const [query, code, status] of [
      ['limit=0', 'invalid_limit', 422],
      ['limit=1001', 'invalid_limit', 422],
      ['limit=x', 'invalid_limit', 422],
      ['cursor=!!', 'invalid_cursor', 400],
    ] as const) {
      const response = await call(root, 'GET', `/v1/rule-revisions?${query}`);
      assert.equal(errorCode(response), code, query);
      assert.equal(response.statusCode, status, query);
    }
  });

  it('diffs a revision against now, and restores it by pushing only the difference', async () => {
    const keep = await pushed(root, {
      listen_port: 41000,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    const edit = await pushed(root, {
      listen_port: 41001,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    const drop = await pushed(root, {
      listen_port: 41002,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    const mark = (await history())[0]?.revision ?? 0;
    const changed = await call(root, 'PUT', `/v1/rules/${edit}`, {
      client: 'edge-1',
      listen_port: 41011,
      targets: [{ host: '10.0.0.2', port: 81, proxy_protocol: 'v1' }],
      rate_limit: { new_connections_per_sec: 5 },
    });
    assert.equal(changed.statusCode, 200, changed.body);
    assert.equal((await call(root, 'DELETE', `/v1/rules/${drop}`)).statusCode, 204);
    const added = await pushed(root, {
      listen_port: 41003,
      targets: [{ host: '10.0.0.3', port: 80 }],
    });

    const diff = await call(root, 'GET', `/v1/rule-revisions/${mark}/diff`);
    assert.equal(diff.statusCode, 200, diff.body);
    const body = diff.json<{
      revision: number;
      head: number;
      added: Json[];
      removed: Json[];
      changed: { rule_id: number; fields: string[]; revision: Json; now: Json }[];
    }>();
    assert.equal(body.revision, mark);
    assert.equal(body.head, mark + 3);
    assert.deepEqual(
      body.added.map((rule) => rule['rule_id']),
      [added],
    );
    assert.deepEqual(body.removed, [
      {
        rule_id: drop,
        client_id: EDGE,
        owner_user_id: 'root',
        protocol: 'tcp',
        listen_port: 41002,
        prefer_ipv6: false,
        targets: [{ host: '10.0.0.1', port: 80, priority: 0, proxy_protocol: null }],
        allowed_sources: [],
        denied_sources: [],
        client_name: 'edge-1',
      },
    ]);
    assert.equal(body.changed.length, 1);
    assert.equal(body.changed[0]?.rule_id, edit);
    assert.deepEqual(body.changed[0].fields, ['listen_port', 'targets', 'rate_limit']);
    assert.equal(body.changed[0].revision['listen_port'], 41001);
    assert.equal(body.changed[0].now['listen_port'], 41011);
    assert.deepEqual(body.changed[0].now['rate_limit'], { new_connections_per_sec: 5 });

    sent.length = 0;
    const restore = await call(root, 'POST', `/v1/rule-revisions/${mark}/restore`, {});
    assert.equal(restore.statusCode, 200, restore.body);
    const result = restore.json<Json>();
    assert.deepEqual(result, {
      revision: mark + 4,
      restored_to: mark,
      removed: [added],
      pushed: [{ rule_id: drop, status: 'Active' }],
      edited: [{ rule_id: edit, fields: ['listen_port', 'targets', 'rate_limit'] }],
      failed: [],
    });
    // Only the difference travelled: one REMOVE, one PUSH to recreate, one PUSH to revert.
    assert.deepEqual(
      sent.map((update) => [update.action, Number(update.rule?.rule_id)]),
      [
        ['REMOVE', added],
        ['PUSH', edit],
        ['PUSH', drop],
      ],
    );
    assert.equal(stored(edit).listenPort, 41001);
    assert.equal(stored(edit).rateLimit, null);
    assert.equal(stored(drop).listenPort, 41002);
    assert.equal(stored(drop).state.kind, 'active');
    assert.equal(getRule(h.store.db, added), undefined);
    assert.equal(stored(keep).listenPort, 41000);
    const after = (await call(root, 'GET', `/v1/rule-revisions/${mark}/diff`)).json<Json>();
    assert.deepEqual([after['added'], after['removed'], after['changed']], [[], [], []]);
    const [latest] = await history();
    assert.equal(latest?.action, 'restore');
    assert.equal(latest.actor, 'root');
    assert.equal(
      latest.summary,
      `restore revision ${mark}: removed ${added}; reverted ${edit}; re-created ${drop}`,
    );
    // Restoring what is already live changes nothing and records nothing.
    const again = await call(root, 'POST', `/v1/rule-revisions/${mark}/restore`, {});
    assert.equal(again.json<Json>()['revision'], null);
    assert.equal((await history())[0]?.revision, mark + 4);
    // The restore itself can be undone: diff and restore work from it as from any revision.
    const undo = await call(root, 'POST', `/v1/rule-revisions/${mark + 3}/restore`, {});
    assert.equal(undo.statusCode, 200, undo.body);
    assert.equal(stored(edit).listenPort, 41011);
    assert.equal(stored(added).listenPort, 41003);
    assert.equal(getRule(h.store.db, drop), undefined);
    const audit = h.auditRows().findLast((row) => row.action === 'operator.rule_revision_restored');
    assert.equal(audit?.actor, 'root');
    assert.equal(audit.resourceValue, String(mark + 3));
  });

  it('reports the steps it cannot apply (client refuses, client offline) and stores nothing for them', async () => {
    const ruleId = await pushed(root, {
      listen_port: 42000,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    const mark = (await history())[0]?.revision ?? 0;
    const edited = await call(root, 'PUT', `/v1/rules/${ruleId}`, {
      client: 'edge-1',
      listen_port: 42001,
      targets: [{ host: '10.0.0.1', port: 80 }],
    });
    assert.equal(edited.statusCode, 200);
    answer = () => ({ outcome: 'FAILED', reason: 'port_in_use' });
    const refusedRestore = await call(root, 'POST', `/v1/rule-revisions/${mark}/restore`, {});
    assert.equal(refusedRestore.statusCode, 200, refusedRestore.body);
    const result = refusedRestore.json<{ revision: number | null; failed: Json[] }>();
    assert.equal(result.revision, null, 'a restore that applied nothing is no revision');
    assert.deepEqual(result.failed, [
      {
        rule_id: ruleId,
        action: 'edit',
        code: 'activation_failed',
        message: `the client refused rule ${ruleId}: port_in_use`,
      },
    ]);
    assert.equal(stored(ruleId).listenPort, 42001);
    assert.equal(stored(ruleId).state.kind, 'active');
    answer = () => ({ outcome: 'ACTIVATED' });
    fleet.close(session);
    try {
      const offline = await call(root, 'POST', `/v1/rule-revisions/${mark}/restore`, {});
      const failed = offline.json<{ failed: Json[] }>().failed;
      assert.equal(failed[0]?.['code'], 'client_not_connected');
      assert.equal(stored(ruleId).listenPort, 42001);
    } finally {
      connect();
    }
  });

  it('answers revision_not_found for unknown or malformed revisions', async () => {
    const head = (await history())[0]?.revision ?? 0;
    for (const revision of [String(head + 1), '0', 'abc', '-1', '1e3', '9'.repeat(20)]) {
      for (const [method, url] of [
        ['GET', `/v1/rule-revisions/${revision}/diff`],
        ['POST', `/v1/rule-revisions/${revision}/restore`],
      ] as const) {
        const response = await call(root, method, url, method === 'POST' ? {} : undefined);
        assert.equal(errorCode(response), 'revision_not_found', `${method} ${url}`);
        assert.equal(response.statusCode, 404);
      }
    }
  });

  it('is for superadmins only, like the audit log', async () => {
    const head = (await history())[0]?.revision ?? 1;
    for (const [method, url] of [
      ['GET', '/v1/rule-revisions'],
      ['GET', `/v1/rule-revisions/${head}/diff`],
      ['POST', `/v1/rule-revisions/${head}/restore`],
    ] as const) {
      const response = await call(alice, method, url, method === 'POST' ? {} : undefined);
      assert.equal(errorCode(response), 'role_required', `${method} ${url}`);
      assert.equal(response.statusCode, 403);
    }
    assert.equal(
      errorCode(await h.inject({ method: 'GET', url: '/v1/rule-revisions' })),
      'unauthenticated',
    );
  });

  it('refuses a malformed restore body', async () => {
    const head = (await history())[0]?.revision ?? 1;
    for (const payload of [{ ack_timeout_secs: 0 }, { ack_timeout_secs: 61 }, { surprise: 1 }]) {
      const response = await call(root, 'POST', `/v1/rule-revisions/${head}/restore`, payload);
      assert.equal(errorCode(response), 'validation_failed', JSON.stringify(payload));
    }
  });
});
