// Proves the grant routes: SA-only CRUD, every validation code, and the revoke rule cascade.
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';

import type { LightMyRequestResponse } from 'fastify';

import { formatRfc3339, type LogFields, type Logger } from '@portunus/core';
import {
  createEnrollment,
  getClient,
  insertClient,
  insertGrant,
  redeemEnrollment,
  insertRule,
  listGrants,
  listRules,
  type Protocol,
} from '@portunus/store';

import { ulid } from '../identity/secrets.js';
import { ContractHarness, errorCode, harnessPool, requestCount } from './contract.harness.js';

const harnesses = harnessPool();
after(() => harnesses.closeAll());
const fresh = harnesses.fresh;

interface GrantJson {
  grant_id: string;
  user_id: string;
  client: string;
  client_id: string | null;
  listen_port_start: number;
  listen_port_end: number;
  protocols: Protocol[];
  note: string;
  created_at: string;
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

interface LogLine {
  event: string;
  fields: LogFields;
}

/** A logger that keeps every line's raw fields (before redaction). */
function recordingLogger(lines: LogLine[]): Logger {
  const keep = (event: string, fields: LogFields = {}): void => {
    lines.push({ event, fields });
  };
  const logger: Logger = { debug: keep, info: keep, warn: keep, error: keep, child: () => logger };
  return logger;
}

function addClient(h: ContractHarness, clientName: string): string {
  const clientId = ulid(h.clock);
  insertClient(h.store.db, { clientId, clientName, now: h.clock });
  return clientId;
}

function addRule(
  h: ContractHarness,
  owner: string,
  clientId: string,
  protocol: Protocol,
  listenPort: number,
  listenPortEnd?: number,
): number {
  return insertRule(h.store.db, {
    clientId,
    ownerUserId: owner,
    protocol,
    listenPort,
    listenPortEnd: listenPortEnd ?? null,
    targets: [{ host: '10.0.0.1', port: 8080, portEnd: null, priority: 0, proxyProtocol: null }],
    state: { kind: 'active' },
    now: h.clock,
  }).ruleId;
}

describe('creating grants', () => {
  let h: ContractHarness;
  let rootToken: string;
  let aliceToken: string;
  let edgeId: string;
  const create = (payload: Record<string, unknown>): Promise<LightMyRequestResponse> =>
    h.bearer(rootToken, { method: 'POST', url: '/v1/grants', payload });
  beforeEach(async () => {
    h = fresh();
    rootToken = await h.addUser('root', 'superadmin');
    aliceToken = await h.addUser('alice', 'user');
    edgeId = addClient(h, 'edge-1');
  });

  it('creates a grant for a client named by name, with defaults, and answers the grant view', async () => {
    const lines: LogLine[] = [];
    h.context.logger = recordingLogger(lines);
    const response = await create({
      user_id: 'alice',
      client: 'edge-1',
      listen_port_start: 10000,
      listen_port_end: 10099,
    });
    assert.equal(response.statusCode, 201, response.body);
    const grant = response.json<GrantJson>();
    assert.match(grant.grant_id, ULID);
    assert.deepEqual(grant, {
      grant_id: grant.grant_id,
      user_id: 'alice',
      client: 'edge-1',
      client_id: edgeId,
      listen_port_start: 10000,
      listen_port_end: 10099,
      protocols: ['tcp'],
      note: '',
      created_at: formatRfc3339(h.clock),
    });
    const logged = lines.find((line) => line.event === 'operator.grant_added');
    assert.ok(logged);
    assert.equal(logged.fields['grant_id'], grant.grant_id);
    assert.equal(logged.fields['user_id'], 'alice');
  });

  it('grants a client that is enrolled but has not connected yet, by name or id', async () => {
    const enroll = (clientId: string, clientName: string, code: number): void => {
      createEnrollment(h.store.db, {
        clientId,
        clientName,
        clientAddress: null,
        advertisedEndpoint: '127.0.0.1:7443',
        codeHash: code.toString(16).padStart(64, '0'),
        now: h.clock,
        ttlSecs: 600,
      });
    };
    const pendingId = '01J9GRANT00000000000000001';
    enroll(pendingId, 'edge-new', 1);
    const byName = await create({
      user_id: 'alice',
      client: 'edge-new',
      listen_port_start: 20000,
      listen_port_end: 20099,
    });
    assert.equal(byName.statusCode, 201, byName.body);
    assert.equal(byName.json<GrantJson>().client_id, pendingId);
    assert.equal(getClient(h.store.db, pendingId)?.enrolled, false);
    // Redeeming the code later finds the provisioned row: the grant still points at it.
    const redeemed = redeemEnrollment(h.store.db, {
      codeHash: (1).toString(16).padStart(64, '0'),
      tokenHash: 'f'.repeat(64),
      now: h.clock,
    });
    assert.equal(redeemed.clientId, pendingId);
    assert.equal(getClient(h.store.db, pendingId)?.enrolled, true);
    assert.equal(listGrants(h.store.db, 'alice')[0]?.clientId, pendingId);

    const otherId = '01J9GRANT00000000000000002';
    enroll(otherId, 'edge-later', 2);
    const byId = await create({
      user_id: 'alice',
      client: otherId,
      listen_port_start: 21000,
      listen_port_end: 21000,
    });
    assert.equal(byId.statusCode, 201, byId.body);
    assert.equal(byId.json<GrantJson>().client, 'edge-later');
  });

  it('refuses a pending name two enrollments share, and provisions nothing on refusal', async () => {
    for (const [n, id] of ['01J9GRANT00000000000000003', '01J9GRANT00000000000000004'].entries()) {
      createEnrollment(h.store.db, {
        clientId: id,
        clientName: 'twin',
        clientAddress: null,
        advertisedEndpoint: null,
        codeHash: (10 + n).toString(16).padStart(64, '0'),
        now: h.clock,
        ttlSecs: 600,
      });
    }
    const ambiguous = await create({
      user_id: 'alice',
      client: 'twin',
      listen_port_start: 1,
      listen_port_end: 2,
    });
    assert.equal(errorCode(ambiguous), 'ambiguous_client_name');
    const badUser = await create({
      user_id: 'nobody',
      client: '01J9GRANT00000000000000003',
      listen_port_start: 1,
      listen_port_end: 2,
    });
    assert.notEqual(badUser.statusCode, 201);
    assert.equal(getClient(h.store.db, '01J9GRANT00000000000000003'), undefined);
    assert.equal(getClient(h.store.db, '01J9GRANT00000000000000004'), undefined);
  });

  it('accepts a client id, both protocols, a note and a single port', async () => {
    const response = await create({
      user_id: 'alice',
      client: edgeId,
      listen_port_start: 443,
      listen_port_end: 443,
      protocols: ['udp', 'tcp', 'udp'],
      // 256 code points (512 UTF-16 units): the column's CHECK counts code points.
      note: '🦀'.repeat(256),
    });
    assert.equal(response.statusCode, 201, response.body);
    const grant = response.json<GrantJson>();
    assert.equal(grant.client, 'edge-1');
    assert.equal(grant.client_id, edgeId);
    assert.deepEqual(grant.protocols, ['tcp', 'udp']);
    assert.equal(Array.from(grant.note).length, 256);
  });

  it("grants every client with '*'", async () => {
    const clients = async (): Promise<unknown[]> =>
      (await h.bearer(aliceToken, { method: 'GET', url: '/v1/clients' })).json<unknown[]>();
    assert.deepEqual(await clients(), []);
    const response = await create({
      user_id: 'alice',
      client: '*',
      listen_port_start: 1,
      listen_port_end: 65535,
      protocols: ['udp'],
    });
    assert.equal(response.statusCode, 201, response.body);
    const grant = response.json<GrantJson>();
    assert.equal(grant.client, '*');
    assert.equal(grant.client_id, null);
    assert.deepEqual(grant.protocols, ['udp']);
    // The '*' grant lets alice see every client, including ones enrolled later.
    addClient(h, 'edge-2');
    assert.equal((await clients()).length, 2);
  });

  it('answers every validation code', async () => {
    const base = {
      user_id: 'alice',
      client: 'edge-1',
      listen_port_start: 100,
      listen_port_end: 200,
    };
    const cases: [Record<string, unknown>, number, string][] = [
      [{ ...base, listen_port_start: 0 }, 422, 'invalid_port_range'],
      [{ ...base, listen_port_end: 65536 }, 422, 'invalid_port_range'],
      [{ ...base, listen_port_start: 300 }, 422, 'invalid_port_range'],
      [{ ...base, listen_port_start: 100.5 }, 422, 'invalid_port_range'],
      [{ ...base, listen_port_start: -1 }, 422, 'invalid_port_range'],
      [{ ...base, protocols: [] }, 422, 'empty_protocol_set'],
      [{ ...base, protocols: ['tcp', 'sctp'] }, 400, 'invalid_protocol'],
      [{ ...base, protocols: ['TCP'] }, 400, 'invalid_protocol'],
      [{ ...base, client: 'no-such-edge' }, 422, 'invalid_client'],
      [{ ...base, client: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }, 422, 'invalid_client'],
      [{ ...base, client: '' }, 422, 'invalid_client'],
      [{ ...base, client: '   ' }, 422, 'invalid_client'],
      [{ ...base, user_id: 'ghost' }, 404, 'user_not_found'],
      [{ ...base, note: 'n'.repeat(257) }, 400, 'validation_failed'],
      [{ ...base, listen_port_start: '100' }, 400, 'validation_failed'],
      [{ ...base, protocols: 'tcp' }, 400, 'validation_failed'],
      [{ ...base, extra: true }, 400, 'validation_failed'],
      [{ user_id: 'alice', client: 'edge-1', listen_port_start: 1 }, 400, 'validation_failed'],
    ];
    for (const [payload, status, code] of cases) {
      const response = await create(payload);
      assert.equal(response.statusCode, status, `${JSON.stringify(payload)}: ${response.body}`);
      assert.equal(errorCode(response), code, JSON.stringify(payload));
    }
    const malformed = await h.bearer(rootToken, {
      method: 'POST',
      url: '/v1/grants',
      headers: { 'content-type': 'application/json' },
      payload: '{"user_id":',
    });
    assert.equal(errorCode(malformed), 'invalid_body');
    // Nothing was created, and every refusal left a deny row naming its code.
    assert.deepEqual((await h.bearer(rootToken, { method: 'GET', url: '/v1/grants' })).json(), []);
    const deny = h.auditRows().filter((row) => row.outcome === 'deny');
    assert.deepEqual(
      deny.map((row) => row.reason),
      [...cases.map(([, , code]) => code), 'invalid_body'],
    );
    for (const row of deny) {
      assert.equal(row.actor, 'root');
      assert.equal(row.method, 'POST');
      assert.equal(row.path, '/v1/grants');
    }
  });

  it('refuses a name two clients share with ambiguous_client_name, and accepts either id', async () => {
    const first = addClient(h, 'twin');
    const second = addClient(h, 'twin');
    const ambiguous = await create({
      user_id: 'alice',
      client: 'twin',
      listen_port_start: 1,
      listen_port_end: 2,
    });
    assert.equal(ambiguous.statusCode, 422);
    assert.equal(errorCode(ambiguous), 'ambiguous_client_name');
    assert.match(ambiguous.json<{ error: { message: string } }>().error.message, new RegExp(first));
    for (const clientId of [first, second]) {
      const byId = await create({
        user_id: 'alice',
        client: clientId,
        listen_port_start: 1,
        listen_port_end: 2,
      });
      assert.equal(byId.statusCode, 201, byId.body);
      assert.equal(byId.json<GrantJson>().client_id, clientId);
      assert.equal(byId.json<GrantJson>().client, 'twin');
    }
  });

  it('audits each creation as operator.grant_added and counts it', async () => {
    const before = await requestCount(h, 'allow', 'ok');
    const response = await create({
      user_id: 'alice',
      client: 'edge-1',
      listen_port_start: 5000,
      listen_port_end: 5010,
      protocols: ['tcp', 'udp'],
      note: 'for the game servers',
    });
    const grantId = response.json<GrantJson>().grant_id;
    assert.equal(await requestCount(h, 'allow', 'ok'), before + 1);
    const rows = h.auditRows();
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.ok(row);
    assert.equal(row.actor, 'root');
    assert.equal(row.role, 'superadmin');
    assert.equal(row.outcome, 'allow');
    assert.equal(row.method, 'POST');
    assert.equal(row.path, '/v1/grants');
    assert.equal(row.action, 'operator.grant_added');
    assert.equal(row.resourceKind, 'grant');
    assert.equal(row.resourceValue, grantId);
    assert.deepEqual(row.details, {
      status: 201,
      remote_addr: '127.0.0.1',
      auth_method: 'bearer',
      user_id: 'alice',
      client_id: edgeId,
      listen_port_start: 5000,
      listen_port_end: 5010,
      protocols: ['tcp', 'udp'],
    });
  });
});

describe('listing grants', () => {
  it('lists every grant oldest first, or one user with ?user_id=', async () => {
    const h = fresh();
    const rootToken = await h.addUser('root', 'superadmin');
    await h.addUser('alice', 'user');
    await h.addUser('bob', 'user');
    addClient(h, 'edge-1');
    const ids: string[] = [];
    for (const [user, client] of [
      ['alice', 'edge-1'],
      ['bob', '*'],
      ['alice', '*'],
    ] as const) {
      h.clock += 1_000;
      const created = await h.bearer(rootToken, {
        method: 'POST',
        url: '/v1/grants',
        payload: { user_id: user, client, listen_port_start: 80, listen_port_end: 80 },
      });
      ids.push(created.json<GrantJson>().grant_id);
    }
    const all = await h.bearer(rootToken, { method: 'GET', url: '/v1/grants' });
    assert.equal(all.statusCode, 200);
    assert.deepEqual(
      all.json<GrantJson[]>().map((grant) => [grant.grant_id, grant.user_id, grant.client]),
      [
        [ids[0], 'alice', 'edge-1'],
        [ids[1], 'bob', '*'],
        [ids[2], 'alice', '*'],
      ],
    );
    const alice = await h.bearer(rootToken, { method: 'GET', url: '/v1/grants?user_id=alice' });
    assert.deepEqual(
      alice.json<GrantJson[]>().map((grant) => grant.grant_id),
      [ids[0], ids[2]],
    );
    const nobody = await h.bearer(rootToken, { method: 'GET', url: '/v1/grants?user_id=ghost' });
    assert.deepEqual(nobody.json(), []);
    const badQuery = await h.bearer(rootToken, { method: 'GET', url: '/v1/grants?client=x' });
    assert.equal(errorCode(badQuery), 'validation_failed');
    // grant_count on the user view follows the grants.
    const user = await h.bearer(rootToken, { method: 'GET', url: '/v1/users/alice' });
    assert.equal(user.json<{ grant_count: number }>().grant_count, 2);
  });
});

describe('revoking grants', () => {
  let h: ContractHarness;
  let rootToken: string;
  let edge: string;
  let other: string;
  beforeEach(async () => {
    h = fresh();
    rootToken = await h.addUser('root', 'superadmin');
    await h.addUser('alice', 'user');
    await h.addUser('bob', 'user');
    edge = addClient(h, 'edge-1');
    other = addClient(h, 'edge-2');
  });
  const grant = async (payload: Record<string, unknown>): Promise<string> => {
    const response = await h.bearer(rootToken, { method: 'POST', url: '/v1/grants', payload });
    assert.equal(response.statusCode, 201, response.body);
    return response.json<GrantJson>().grant_id;
  };
  const revoke = (grantId: string): Promise<LightMyRequestResponse> =>
    h.bearer(rootToken, { method: 'DELETE', url: `/v1/grants/${grantId}` });
  const ruleIds = (owner: string): number[] =>
    listRules(h.store.db, { ownerUserId: owner }).map((rule) => rule.ruleId);

  it('removes exactly the rules no remaining grant covers, and keeps the rest', async () => {
    const wide = await grant({
      user_id: 'alice',
      client: 'edge-1',
      listen_port_start: 1000,
      listen_port_end: 2000,
    });
    const narrow = await grant({
      user_id: 'alice',
      client: edge,
      listen_port_start: 1500,
      listen_port_end: 1600,
      protocols: ['tcp', 'udp'],
    });
    await grant({
      user_id: 'alice',
      client: '*',
      listen_port_start: 3000,
      listen_port_end: 3000,
      protocols: ['udp'],
    });
    const onlyWide = addRule(h, 'alice', edge, 'tcp', 1000);
    const rangeOnlyWide = addRule(h, 'alice', edge, 'tcp', 1590, 1610);
    const both = addRule(h, 'alice', edge, 'tcp', 1550);
    const rangeBoth = addRule(h, 'alice', edge, 'tcp', 1500, 1600);
    const udpNarrow = addRule(h, 'alice', edge, 'udp', 1550);
    const star = addRule(h, 'alice', other, 'udp', 3000);
    // Other owners' rules on the same ports are never touched.
    await grant({
      user_id: 'bob',
      client: 'edge-1',
      listen_port_start: 1000,
      listen_port_end: 1000,
    });
    const bobs = addRule(h, 'bob', edge, 'tcp', 1000);
    const roots = addRule(h, 'root', edge, 'tcp', 1000);

    const first = await revoke(wide);
    assert.equal(first.statusCode, 200, first.body);
    assert.deepEqual(first.json(), { grant_id: wide, removed_rule_ids: [onlyWide, rangeOnlyWide] });
    assert.deepEqual(ruleIds('alice'), [both, rangeBoth, udpNarrow, star]);

    const second = await revoke(narrow);
    assert.deepEqual(second.json(), {
      grant_id: narrow,
      removed_rule_ids: [both, rangeBoth, udpNarrow],
    });
    assert.deepEqual(ruleIds('alice'), [star]);
    assert.deepEqual(ruleIds('bob'), [bobs]);
    assert.deepEqual(ruleIds('root'), [roots]);

    const remaining = await h.bearer(rootToken, { method: 'GET', url: '/v1/grants?user_id=alice' });
    assert.deepEqual(
      remaining.json<GrantJson[]>().map((g) => g.client),
      ['*'],
    );
  });

  it("keeps a superadmin's rules when a grant of theirs is revoked", async () => {
    const rootsGrant = await grant({
      user_id: 'root',
      client: 'edge-1',
      listen_port_start: 22,
      listen_port_end: 22,
    });
    const rule = addRule(h, 'root', edge, 'tcp', 22);
    const response = await revoke(rootsGrant);
    assert.deepEqual(response.json(), { grant_id: rootsGrant, removed_rule_ids: [] });
    assert.deepEqual(ruleIds('root'), [rule]);
  });

  it('answers 404 grant_not_found for an unknown or already revoked grant', async () => {
    const id = await grant({
      user_id: 'alice',
      client: '*',
      listen_port_start: 1,
      listen_port_end: 1,
    });
    assert.equal((await revoke(id)).statusCode, 200);
    const again = await revoke(id);
    assert.equal(again.statusCode, 404);
    assert.equal(errorCode(again), 'grant_not_found');
    const unknown = await revoke('not-a-grant');
    assert.equal(errorCode(unknown), 'grant_not_found');
  });

  it('audits each revocation as operator.grant_revoked with the removed rules, and logs it', async () => {
    const lines: LogLine[] = [];
    h.context.logger = recordingLogger(lines);
    const id = await grant({
      user_id: 'alice',
      client: 'edge-1',
      listen_port_start: 80,
      listen_port_end: 80,
    });
    const rule = addRule(h, 'alice', edge, 'tcp', 80);
    const before = await requestCount(h, 'allow', 'ok');
    await revoke(id);
    assert.equal(await requestCount(h, 'allow', 'ok'), before + 1);
    const row = h.auditRows().find((r) => r.action === 'operator.grant_revoked');
    assert.ok(row);
    assert.equal(row.actor, 'root');
    assert.equal(row.role, 'superadmin');
    assert.equal(row.outcome, 'allow');
    assert.equal(row.method, 'DELETE');
    assert.equal(row.path, `/v1/grants/${id}`);
    assert.equal(row.resourceKind, 'grant');
    assert.equal(row.resourceValue, id);
    assert.deepEqual(row.details, {
      status: 200,
      remote_addr: '127.0.0.1',
      auth_method: 'bearer',
      user_id: 'alice',
      client_id: edge,
      removed_rule_ids: [rule],
    });
    const logged = lines.find((line) => line.event === 'operator.grant_revoked');
    assert.ok(logged);
    assert.equal(logged.fields['grant_id'], id);
    assert.equal(logged.fields['removed_rules'], 1);
  });
});

describe('RBAC', () => {
  it('refuses a plain user every grant route with 403 role_required, audited as deny', async () => {
    const h = fresh();
    await h.addUser('root', 'superadmin');
    const aliceToken = await h.addUser('alice', 'user');
    addClient(h, 'edge-1');
    const existing = insertGrant(h.store.db, {
      grantId: ulid(h.clock),
      userId: 'alice',
      clientId: null,
      listenPortStart: 1,
      listenPortEnd: 65535,
      protocols: ['tcp', 'udp'],
      note: '',
      now: h.clock,
    });
    const denyBefore = await requestCount(h, 'deny', 'role_required');
    const requests = [
      {
        method: 'POST' as const,
        url: '/v1/grants',
        payload: { user_id: 'alice', client: '*', listen_port_start: 1, listen_port_end: 2 },
      },
      { method: 'GET' as const, url: '/v1/grants' },
      { method: 'GET' as const, url: '/v1/grants?user_id=alice' },
      { method: 'DELETE' as const, url: `/v1/grants/${existing.grantId}` },
    ];
    for (const request of requests) {
      const response = await h.bearer(aliceToken, request);
      assert.equal(response.statusCode, 403, `${request.method} ${request.url}`);
      assert.equal(errorCode(response), 'role_required');
    }
    // Through a session cookie as well.
    const cookie = await h.login('alice');
    const viaCookie = await h.session(cookie, {
      method: 'DELETE',
      url: `/v1/grants/${existing.grantId}`,
    });
    assert.equal(errorCode(viaCookie), 'role_required');
    assert.equal(await requestCount(h, 'deny', 'role_required'), denyBefore + 5);
    const deny = h.auditRows().filter((row) => row.outcome === 'deny');
    assert.deepEqual(
      deny.map((row) => [
        row.actor,
        row.role,
        row.method,
        row.path,
        row.reason,
        row.details.auth_method,
      ]),
      [
        ['alice', 'user', 'POST', '/v1/grants', 'role_required', 'bearer'],
        ['alice', 'user', 'GET', '/v1/grants', 'role_required', 'bearer'],
        ['alice', 'user', 'GET', '/v1/grants', 'role_required', 'bearer'],
        ['alice', 'user', 'DELETE', `/v1/grants/${existing.grantId}`, 'role_required', 'bearer'],
        ['alice', 'user', 'DELETE', `/v1/grants/${existing.grantId}`, 'role_required', 'cookie'],
      ],
    );
    // Nothing changed.
    assert.deepEqual(
      listGrants(h.store.db).map((grant) => grant.grantId),
      [existing.grantId],
    );
    assert.equal(h.auditRows().filter((row) => row.outcome === 'allow').length, 1); // the login
    const unauthenticated = await h.inject({ method: 'GET', url: '/v1/grants' });
    assert.equal(errorCode(unauthenticated), 'unauthenticated');
  });
});
