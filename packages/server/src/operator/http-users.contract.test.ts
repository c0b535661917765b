// Proves the user routes: self profile/password, SA user management, cascades, admin reset.
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';

import type { LightMyRequestResponse } from 'fastify';

import { formatRfc3339 } from '@portunus/core';
import {
  deleteUser,
  getUser,
  insertClient,
  insertGrant,
  insertRule,
  listRules,
} from '@portunus/store';

import { ulid } from '../identity/secrets.js';
import {
  ContractHarness,
  errorCode,
  harnessPool,
  requestCount,
  TEST_PASSWORD,
} from './contract.harness.js';

const harnesses = harnessPool();
after(() => harnesses.closeAll());
const fresh = harnesses.fresh;

const NEW_PASSWORD = 'a different long password';
const USER_VIEW_KEYS = [
  'created_at',
  'disabled',
  'display_name',
  'grant_count',
  'password_change_required',
  'role',
  'user_id',
];

interface UserJson {
  user_id: string;
  display_name: string;
  role: string;
  disabled: boolean;
  password_change_required: boolean;
  created_at: string;
  grant_count: number;
}

interface RemovalJson {
  user_id: string;
  removed_credential_ids: string[];
  revoked_grant_ids: string[];
  removed_rule_ids: number[];
}

interface ResetJson {
  user_id: string;
  sessions_revoked: number;
  temporary_password?: string;
}

/** Logs in and answers the status and the login body, without throwing on failure. */
async function tryLogin(
  h: ContractHarness,
  userId: string,
  password: string,
): Promise<{ status: number; changeRequired?: boolean; code?: string }> {
  const response = await h.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { user_id: userId, password },
  });
  if (response.statusCode !== 200)
    return { status: response.statusCode, code: errorCode(response) };
  return {
    status: 200,
    changeRequired: response.json<{ password_change_required: boolean }>().password_change_required,
  };
}

describe('GET /v1/users/me', () => {
  it('answers the caller by bearer token and by session cookie', async () => {
    const h = fresh();
    const rootToken = await h.addUser('root', 'superadmin');
    await h.addUser('alice', 'user');
    const root = await h.bearer(rootToken, { method: 'GET', url: '/v1/users/me' });
    assert.deepEqual(root.json(), {
      user_id: 'root',
      role: 'superadmin',
      display_name: 'root name',
    });
    const cookie = await h.login('alice');
    const alice = await h.session(cookie, { method: 'GET', url: '/v1/users/me' });
    assert.deepEqual(alice.json(), { user_id: 'alice', role: 'user', display_name: 'alice name' });
    // Successful reads leave no audit row.
    assert.deepEqual(
      h.auditRows().map((row) => row.action),
      ['operator.login'],
    );
  });
});

describe('POST /v1/users/me/password', () => {
  let h: ContractHarness;
  let cookie: string;
  const change = (payload: Record<string, unknown>): Promise<LightMyRequestResponse> =>
    h.session(cookie, { method: 'POST', url: '/v1/users/me/password', payload });
  beforeEach(async () => {
    h = fresh();
    await h.addUser('root', 'superadmin');
    await h.addUser('alice', 'user');
    cookie = await h.login('alice');
  });

  it('refuses a wrong current password (401 invalid_login) and differing new ones (422)', async () => {
    const wrong = await change({
      current_password: 'not the password',
      new_password: NEW_PASSWORD,
      new_password_confirm: NEW_PASSWORD,
    });
    assert.equal(wrong.statusCode, 401);
    assert.equal(errorCode(wrong), 'invalid_login');
    const mismatch = await change({
      current_password: TEST_PASSWORD,
      new_password: NEW_PASSWORD,
      new_password_confirm: `${NEW_PASSWORD}!`,
    });
    assert.equal(mismatch.statusCode, 422);
    assert.equal(errorCode(mismatch), 'password_mismatch');
    const short = await change({
      current_password: TEST_PASSWORD,
      new_password: 'short',
      new_password_confirm: 'short',
    });
    assert.equal(short.statusCode, 422);
    assert.equal(errorCode(short), 'password_too_short');
    const missing = await change({ current_password: TEST_PASSWORD, new_password: NEW_PASSWORD });
    assert.equal(missing.statusCode, 400);
    assert.equal(errorCode(missing), 'validation_failed');
    // The old password still works; the session was not affected.
    assert.equal((await tryLogin(h, 'alice', TEST_PASSWORD)).status, 200);
    const deny = h.auditRows().filter((row) => row.outcome === 'deny');
    assert.deepEqual(
      deny.map((row) => [row.actor, row.method, row.path, row.reason]),
      [
        ['alice', 'POST', '/v1/users/me/password', 'invalid_login'],
        ['alice', 'POST', '/v1/users/me/password', 'password_mismatch'],
        ['alice', 'POST', '/v1/users/me/password', 'password_too_short'],
        ['alice', 'POST', '/v1/users/me/password', 'validation_failed'],
      ],
    );
  });

  it('changes the password (204), keeps the sessions, and audits without the password', async () => {
    const before = await requestCount(h, 'allow', 'ok');
    const ok = await change({
      current_password: TEST_PASSWORD,
      new_password: NEW_PASSWORD,
      new_password_confirm: NEW_PASSWORD,
    });
    assert.equal(ok.statusCode, 204, ok.body);
    assert.equal(ok.body, '');
    assert.equal(await requestCount(h, 'allow', 'ok'), before + 1);
    assert.equal((await tryLogin(h, 'alice', TEST_PASSWORD)).code, 'invalid_login');
    assert.equal((await tryLogin(h, 'alice', NEW_PASSWORD)).status, 200);
    assert.equal((await h.session(cookie, { method: 'GET', url: '/v1/users/me' })).statusCode, 200);
    const row = h.auditRows().find((r) => r.action === 'operator.password_change');
    assert.ok(row);
    assert.equal(row.actor, 'alice');
    assert.equal(row.role, 'user');
    assert.equal(row.outcome, 'allow');
    assert.equal(row.method, 'POST');
    assert.equal(row.path, '/v1/users/me/password');
    assert.equal(row.resourceKind, 'user');
    assert.equal(row.resourceValue, 'alice');
    assert.deepEqual(row.details, { status: 204, remote_addr: '127.0.0.1', auth_method: 'cookie' });
    const everything = JSON.stringify(h.auditRows());
    assert.ok(!everything.includes(NEW_PASSWORD));
    assert.ok(!everything.includes(TEST_PASSWORD));
  });

  it('throttles wrong current passwords: 429 from the 6th attempt', async () => {
    const wrong = {
      current_password: 'not the password',
      new_password: NEW_PASSWORD,
      new_password_confirm: NEW_PASSWORD,
    };
    for (let i = 0; i < 5; i += 1) assert.equal(errorCode(await change(wrong)), 'invalid_login');
    const locked = await change({ ...wrong, current_password: TEST_PASSWORD });
    assert.equal(locked.statusCode, 429);
    assert.equal(errorCode(locked), 'rate_limited');
    h.clock += 60_001;
    const right = await change({ ...wrong, current_password: TEST_PASSWORD });
    assert.equal(right.statusCode, 204);
  });
});

describe('POST /v1/users', () => {
  let h: ContractHarness;
  let rootToken: string;
  let aliceToken: string;
  const create = (payload: Record<string, unknown>): Promise<LightMyRequestResponse> =>
    h.bearer(rootToken, { method: 'POST', url: '/v1/users', payload });
  beforeEach(async () => {
    h = fresh();
    rootToken = await h.addUser('root', 'superadmin');
    aliceToken = await h.addUser('alice', 'user');
  });

  it('creates a user (201), trims the display name, defaults the role, and audits it', async () => {
    const before = await requestCount(h, 'allow', 'ok');
    const created = await create({
      user_id: 'bob',
      display_name: '  Bob Builder  ',
      initial_password: TEST_PASSWORD,
    });
    assert.equal(created.statusCode, 201, created.body);
    assert.deepEqual(created.json(), { user_id: 'bob', display_name: 'Bob Builder', role: 'user' });
    assert.equal(await requestCount(h, 'allow', 'ok'), before + 1);
    assert.equal((await tryLogin(h, 'bob', TEST_PASSWORD)).changeRequired, false);
    const [row] = h.auditRows();
    assert.ok(row);
    assert.equal(row.actor, 'root');
    assert.equal(row.role, 'superadmin');
    assert.equal(row.outcome, 'allow');
    assert.equal(row.method, 'POST');
    assert.equal(row.path, '/v1/users');
    assert.equal(row.action, 'operator.user_added');
    assert.equal(row.resourceKind, 'user');
    assert.equal(row.resourceValue, 'bob');
    assert.deepEqual(row.details['role'], 'user');
    assert.ok(!JSON.stringify(h.auditRows()).includes(TEST_PASSWORD));
  });

  it('creates superadmins, and users who must change their password first', async () => {
    const admin = await create({
      user_id: 'admin2',
      display_name: 'Second admin',
      role: 'superadmin',
      initial_password: TEST_PASSWORD,
    });
    assert.equal(admin.json<{ role: string }>().role, 'superadmin');
    const forced = await create({
      user_id: 'carol',
      display_name: 'Carol',
      initial_password: TEST_PASSWORD,
      password_change_required: true,
    });
    assert.equal(forced.statusCode, 201);
    assert.equal((await tryLogin(h, 'carol', TEST_PASSWORD)).changeRequired, true);
    const cookie = await h.login('carol');
    assert.equal((await h.session(cookie, { method: 'GET', url: '/v1/users/me' })).statusCode, 200);
    const blocked = await h.session(cookie, { method: 'GET', url: '/v1/clients' });
    assert.equal(blocked.statusCode, 403);
    assert.equal(errorCode(blocked), 'password_change_required');
  });

  it('answers every validation code and 409 for an existing id', async () => {
    const base = { user_id: 'bob', display_name: 'Bob', initial_password: TEST_PASSWORD };
    const cases: [Record<string, unknown>, number, string][] = [
      [{ ...base, user_id: 'Bob' }, 422, 'invalid_user_id'],
      [{ ...base, user_id: '1bob' }, 422, 'invalid_user_id'],
      [{ ...base, user_id: '' }, 422, 'invalid_user_id'],
      [{ ...base, user_id: `b${'o'.repeat(32)}` }, 422, 'invalid_user_id'],
      [{ ...base, user_id: 'bob smith' }, 422, 'invalid_user_id'],
      [{ ...base, user_id: '_legacy' }, 422, 'reserved_user_id'],
      [{ ...base, user_id: '_bob' }, 422, 'reserved_user_id'],
      [{ ...base, display_name: '   ' }, 422, 'invalid_display_name'],
      [{ ...base, display_name: 'x'.repeat(65) }, 422, 'invalid_display_name'],
      [{ ...base, role: 'admin' }, 422, 'invalid_role'],
      [{ user_id: 'bob', display_name: 'Bob' }, 422, 'initial_password_required'],
      [{ ...base, initial_password: '' }, 422, 'initial_password_required'],
      [{ ...base, initial_password: 'elevenchars' }, 422, 'password_too_short'],
      [{ ...base, initial_password: 'é'.repeat(513) }, 422, 'password_too_long'],
      [{ ...base, user_id: 'alice' }, 409, 'user_already_exists'],
      [{ ...base, role: 5 }, 400, 'validation_failed'],
      [{ ...base, admin: true }, 400, 'validation_failed'],
      [{ display_name: 'Bob', initial_password: TEST_PASSWORD }, 400, 'validation_failed'],
    ];
    for (const [payload, status, code] of cases) {
      const response = await create(payload);
      assert.equal(response.statusCode, status, `${JSON.stringify(payload)}: ${response.body}`);
      assert.equal(errorCode(response), code, JSON.stringify(payload));
    }
    // Boundaries that pass: 32-char id, 64-char name, 12 characters, 1024 bytes.
    const edge = await create({
      user_id: `b${'o'.repeat(31)}`,
      display_name: 'é'.repeat(64),
      initial_password: `${'é'.repeat(511)}xx`,
    });
    assert.equal(edge.statusCode, 201, edge.body);
    assert.equal(getUser(h.store.db, 'bob'), undefined);
    const deny = h.auditRows().filter((row) => row.outcome === 'deny');
    assert.deepEqual(
      deny.map((row) => row.reason),
      cases.map(([, , code]) => code),
    );
  });

  it('refuses a plain user with 403 role_required and audits the denial', async () => {
    const before = await requestCount(h, 'deny', 'role_required');
    const denied = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/users',
      payload: { user_id: 'mallory', display_name: 'M', initial_password: TEST_PASSWORD },
    });
    assert.equal(denied.statusCode, 403);
    assert.equal(errorCode(denied), 'role_required');
    assert.equal(await requestCount(h, 'deny', 'role_required'), before + 1);
    assert.equal(getUser(h.store.db, 'mallory'), undefined);
    const [row] = h.auditRows();
    assert.ok(row);
    assert.equal(row.actor, 'alice');
    assert.equal(row.role, 'user');
    assert.equal(row.outcome, 'deny');
    assert.equal(row.method, 'POST');
    assert.equal(row.path, '/v1/users');
    assert.equal(row.reason, 'role_required');
    assert.deepEqual(row.details, { status: 403, remote_addr: '127.0.0.1', auth_method: 'bearer' });
  });
});

describe('GET /v1/users and /v1/users/:id', () => {
  let h: ContractHarness;
  let rootToken: string;
  let aliceToken: string;
  beforeEach(async () => {
    h = fresh();
    rootToken = await h.addUser('root', 'superadmin');
    aliceToken = await h.addUser('alice', 'user');
    await h.addUser('_legacy', 'superadmin');
    for (const clientId of [null, null]) {
      insertGrant(h.store.db, {
        grantId: ulid(h.clock),
        userId: 'alice',
        clientId,
        listenPortStart: 1,
        listenPortEnd: 2,
        protocols: ['tcp'],
        note: '',
        now: h.clock,
      });
    }
  });

  it('lists every user with grant_count and never a password hash', async () => {
    const list = await h.bearer(rootToken, { method: 'GET', url: '/v1/users' });
    assert.equal(list.statusCode, 200);
    const users = list.json<UserJson[]>();
    assert.deepEqual(
      users.map((user) => [user.user_id, user.role, user.grant_count]),
      [
        ['_legacy', 'superadmin', 0],
        ['alice', 'user', 2],
        ['root', 'superadmin', 0],
      ],
    );
    for (const user of users) assert.deepEqual(Object.keys(user).sort(), USER_VIEW_KEYS);
    const alice = users.find((user) => user.user_id === 'alice');
    assert.deepEqual(alice, {
      user_id: 'alice',
      display_name: 'alice name',
      role: 'user',
      disabled: false,
      password_change_required: false,
      created_at: formatRfc3339(h.clock),
      grant_count: 2,
    });
    assert.ok(!list.body.includes('$argon2'));
    assert.ok(!/hash/i.test(list.body));
  });

  it('gets one user, reserved ids included, and 404s unknown ones', async () => {
    const alice = await h.bearer(rootToken, { method: 'GET', url: '/v1/users/alice' });
    assert.equal(alice.json<UserJson>().grant_count, 2);
    assert.ok(!alice.body.includes('$argon2'));
    const legacy = await h.bearer(rootToken, { method: 'GET', url: '/v1/users/_legacy' });
    assert.equal(legacy.statusCode, 200);
    assert.equal(legacy.json<UserJson>().role, 'superadmin');
    const ghost = await h.bearer(rootToken, { method: 'GET', url: '/v1/users/ghost' });
    assert.equal(ghost.statusCode, 404);
    assert.equal(errorCode(ghost), 'user_not_found');
  });

  it('refuses both to a plain user with 403 role_required', async () => {
    for (const url of ['/v1/users', '/v1/users/alice', '/v1/users/root']) {
      const response = await h.bearer(aliceToken, { method: 'GET', url });
      assert.equal(response.statusCode, 403, url);
      assert.equal(errorCode(response), 'role_required');
    }
    assert.deepEqual(
      h.auditRows().map((row) => [row.actor, row.outcome, row.method, row.path, row.reason]),
      [
        ['alice', 'deny', 'GET', '/v1/users', 'role_required'],
        ['alice', 'deny', 'GET', '/v1/users/alice', 'role_required'],
        ['alice', 'deny', 'GET', '/v1/users/root', 'role_required'],
      ],
    );
  });
});

describe('DELETE /v1/users/:id', () => {
  it('refuses to remove the caller (409 cannot_remove_self)', async () => {
    const h = fresh();
    const rootToken = await h.addUser('root', 'superadmin');
    await h.addUser('admin', 'superadmin');
    const self = await h.bearer(rootToken, { method: 'DELETE', url: '/v1/users/root' });
    assert.equal(self.statusCode, 409);
    assert.equal(errorCode(self), 'cannot_remove_self');
    assert.notEqual(getUser(h.store.db, 'root'), undefined);
    const [row] = h.auditRows();
    assert.ok(row);
    assert.equal(row.actor, 'root');
    assert.equal(row.outcome, 'deny');
    assert.equal(row.method, 'DELETE');
    assert.equal(row.path, '/v1/users/root');
    assert.equal(row.reason, 'cannot_remove_self');
  });

  it('lets _legacy (the operator token) remove a superadmin while it is a superadmin itself', async () => {
    const h = fresh({ operatorToken: 'static-operator-token' });
    await h.addUser('_legacy', 'superadmin');
    await h.addUser('root', 'superadmin');
    const removed = await h.bearer('static-operator-token', {
      method: 'DELETE',
      url: '/v1/users/root',
    });
    assert.equal(removed.statusCode, 200, removed.body);
    const self = await h.bearer('static-operator-token', {
      method: 'DELETE',
      url: '/v1/users/_legacy',
    });
    assert.equal(errorCode(self), 'cannot_remove_self');
    const rows = h.auditRows();
    assert.deepEqual(
      rows.map((row) => [row.actor, row.role, row.outcome, row.path, row.action ?? row.reason]),
      [
        ['_legacy', 'superadmin', 'allow', '/v1/users/root', 'operator.user_removed'],
        ['_legacy', 'superadmin', 'deny', '/v1/users/_legacy', 'cannot_remove_self'],
      ],
    );
  });

  it('refuses to remove the last enabled superadmin (409 last_superadmin)', async () => {
    // The caller is always an enabled superadmin other than the target, so over HTTP this
    // guard only fires when a concurrent request removed the caller after it authenticated.
    // A hook between the auth layer and the handler plays that concurrent removal.
    const h = fresh({ operatorToken: 'static-operator-token' });
    await h.addUser('_legacy', 'superadmin');
    await h.addUser('root', 'superadmin');
    const app = await h.app();
    app.addHook('preHandler', (request, _reply, done) => {
      if (request.headers['x-test-concurrent-removal'] === '_legacy') {
        deleteUser(h.store.db, '_legacy');
      }
      done();
    });
    const last = await h.bearer('static-operator-token', {
      method: 'DELETE',
      url: '/v1/users/root',
      headers: { 'x-test-concurrent-removal': '_legacy' },
    });
    assert.equal(last.statusCode, 409, last.body);
    assert.equal(errorCode(last), 'last_superadmin');
    assert.notEqual(getUser(h.store.db, 'root'), undefined);
    const [row] = h.auditRows();
    assert.ok(row);
    assert.equal(row.actor, '_legacy');
    assert.equal(row.outcome, 'deny');
    assert.equal(row.method, 'DELETE');
    assert.equal(row.path, '/v1/users/root');
    assert.equal(row.reason, 'last_superadmin');
  });

  it('removes the user with its credentials, grants and rules, and its token stops working', async () => {
    const h = fresh();
    const rootToken = await h.addUser('root', 'superadmin');
    const bobToken = await h.addUser('bob', 'user');
    await h.addUser('carol', 'user');
    h.clock += 1_000;
    const extra = await h.bearer(rootToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { user_id: 'bob', label: 'ci' },
    });
    assert.equal(extra.statusCode, 201, extra.body);
    const clientId = ulid(h.clock);
    insertClient(h.store.db, { clientId, clientName: 'edge-1', now: h.clock });
    const grantIds: string[] = [];
    for (const user of ['bob', 'bob', 'carol']) {
      h.clock += 1;
      const grant = await h.bearer(rootToken, {
        method: 'POST',
        url: '/v1/grants',
        payload: { user_id: user, client: 'edge-1', listen_port_start: 80, listen_port_end: 90 },
      });
      assert.equal(grant.statusCode, 201, grant.body);
      grantIds.push(grant.json<{ grant_id: string }>().grant_id);
    }
    const rule = (owner: string, listenPort: number): number =>
      insertRule(h.store.db, {
        clientId,
        ownerUserId: owner,
        protocol: 'tcp',
        listenPort,
        targets: [{ host: '10.0.0.2', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
        now: h.clock,
      }).ruleId;
    const bobRules = [rule('bob', 80), rule('bob', 81)];
    const carolRule = rule('carol', 82);
    const bobCookie = await h.login('bob');
    const credentialIds = (
      await h.bearer(rootToken, { method: 'GET', url: '/v1/credentials?user_id=bob' })
    )
      .json<{ credential_id: string }[]>()
      .map((c) => c.credential_id)
      .sort();
    assert.equal(credentialIds.length, 2);

    const before = await requestCount(h, 'allow', 'ok');
    const removed = await h.bearer(rootToken, { method: 'DELETE', url: '/v1/users/bob' });
    assert.equal(removed.statusCode, 200, removed.body);
    assert.equal(await requestCount(h, 'allow', 'ok'), before + 1);
    const expected: RemovalJson = {
      user_id: 'bob',
      removed_credential_ids: credentialIds,
      revoked_grant_ids: grantIds.slice(0, 2).sort(),
      removed_rule_ids: bobRules,
    };
    assert.deepEqual(removed.json(), expected);
    assert.deepEqual(
      listRules(h.store.db).map((r) => r.ruleId),
      [carolRule],
    );

    const token = await h.bearer(bobToken, { method: 'GET', url: '/v1/users/me' });
    assert.equal(token.statusCode, 401);
    assert.equal(errorCode(token), 'credential_invalid');
    const extraToken = extra.json<{ token: string }>().token;
    assert.equal(
      errorCode(await h.bearer(extraToken, { method: 'GET', url: '/v1/users/me' })),
      'credential_invalid',
    );
    const session = await h.session(bobCookie, { method: 'GET', url: '/v1/users/me' });
    assert.equal(session.statusCode, 401);
    assert.equal((await tryLogin(h, 'bob', TEST_PASSWORD)).code, 'invalid_login');
    const again = await h.bearer(rootToken, { method: 'DELETE', url: '/v1/users/bob' });
    assert.equal(again.statusCode, 404);
    assert.equal(errorCode(again), 'user_not_found');

    const row = h.auditRows().find((r) => r.action === 'operator.user_removed');
    assert.ok(row);
    assert.equal(row.actor, 'root');
    assert.equal(row.role, 'superadmin');
    assert.equal(row.outcome, 'allow');
    assert.equal(row.method, 'DELETE');
    assert.equal(row.path, '/v1/users/bob');
    assert.equal(row.resourceKind, 'user');
    assert.equal(row.resourceValue, 'bob');
    assert.deepEqual(row.details, {
      status: 200,
      remote_addr: '127.0.0.1',
      auth_method: 'bearer',
      removed_credential_ids: expected.removed_credential_ids,
      revoked_grant_ids: expected.revoked_grant_ids,
      removed_rule_ids: expected.removed_rule_ids,
    });
  });

  it('refuses a plain user with 403 role_required', async () => {
    const h = fresh();
    await h.addUser('root', 'superadmin');
    const aliceToken = await h.addUser('alice', 'user');
    await h.addUser('bob', 'user');
    const denied = await h.bearer(aliceToken, { method: 'DELETE', url: '/v1/users/bob' });
    assert.equal(denied.statusCode, 403);
    assert.equal(errorCode(denied), 'role_required');
    assert.notEqual(getUser(h.store.db, 'bob'), undefined);
    const [row] = h.auditRows();
    assert.ok(row);
    assert.deepEqual(
      [row.actor, row.role, row.outcome, row.method, row.path, row.reason],
      ['alice', 'user', 'deny', 'DELETE', '/v1/users/bob', 'role_required'],
    );
  });
});

describe('POST /v1/users/:id/password', () => {
  let h: ContractHarness;
  let rootToken: string;
  let bobToken: string;
  const reset = (
    userId: string,
    payload?: Record<string, unknown>,
  ): Promise<LightMyRequestResponse> =>
    h.bearer(rootToken, {
      method: 'POST',
      url: `/v1/users/${userId}/password`,
      ...(payload ? { payload } : {}),
    });
  beforeEach(async () => {
    h = fresh();
    rootToken = await h.addUser('root', 'superadmin');
    bobToken = await h.addUser('bob', 'user');
  });

  it('generates a temporary password that forces a change, and revokes the sessions', async () => {
    const first = await h.login('bob');
    const second = await h.login('bob');
    const response = await reset('bob');
    assert.equal(response.statusCode, 200, response.body);
    const body = response.json<ResetJson>();
    assert.deepEqual(Object.keys(body).sort(), [
      'sessions_revoked',
      'temporary_password',
      'user_id',
    ]);
    assert.equal(body.user_id, 'bob');
    assert.equal(body.sessions_revoked, 2);
    const temporary = body.temporary_password ?? '';
    assert.match(temporary, /^[A-Za-z0-9_-]{43}$/);
    for (const cookie of [first, second]) {
      const old = await h.session(cookie, { method: 'GET', url: '/v1/users/me' });
      assert.equal(old.statusCode, 401);
      assert.equal(errorCode(old), 'credential_invalid');
    }
    assert.equal((await tryLogin(h, 'bob', TEST_PASSWORD)).code, 'invalid_login');
    assert.deepEqual(await tryLogin(h, 'bob', temporary), { status: 200, changeRequired: true });

    const cookie = await h.login('bob', temporary);
    assert.equal((await h.session(cookie, { method: 'GET', url: '/v1/users/me' })).statusCode, 200);
    const blocked = await h.session(cookie, { method: 'GET', url: '/v1/clients' });
    assert.equal(errorCode(blocked), 'password_change_required');
    const blockedWrite = await h.session(cookie, {
      method: 'POST',
      url: '/v1/credentials',
      payload: {},
    });
    assert.equal(errorCode(blockedWrite), 'password_change_required');
    const changed = await h.session(cookie, {
      method: 'POST',
      url: '/v1/users/me/password',
      payload: {
        current_password: temporary,
        new_password: NEW_PASSWORD,
        new_password_confirm: NEW_PASSWORD,
      },
    });
    assert.equal(changed.statusCode, 204, changed.body);
    assert.equal((await h.session(cookie, { method: 'GET', url: '/v1/clients' })).statusCode, 200);

    const row = h.auditRows().find((r) => r.action === 'operator.password_reset');
    assert.ok(row);
    assert.equal(row.actor, 'root');
    assert.equal(row.role, 'superadmin');
    assert.equal(row.outcome, 'allow');
    assert.equal(row.method, 'POST');
    assert.equal(row.path, '/v1/users/bob/password');
    assert.equal(row.resourceKind, 'user');
    assert.equal(row.resourceValue, 'bob');
    assert.deepEqual(row.details, {
      status: 200,
      remote_addr: '127.0.0.1',
      auth_method: 'bearer',
      sessions_revoked: 2,
      temporary_password_generated: true,
      password_change_required: true,
      source: 'http',
      reset_by: 'root',
    });
    const detailsJson = h.store.db.prepare('SELECT details_json FROM audit').pluck().all();
    assert.ok(!JSON.stringify(detailsJson).includes(temporary));
    assert.ok(!JSON.stringify(h.auditRows()).includes(temporary));
  });

  it('sets an explicit password, temporary only when asked', async () => {
    const explicit = await reset('bob', { new_password: NEW_PASSWORD });
    assert.equal(explicit.statusCode, 200, explicit.body);
    assert.deepEqual(explicit.json(), { user_id: 'bob', sessions_revoked: 0 });
    assert.deepEqual(await tryLogin(h, 'bob', NEW_PASSWORD), {
      status: 200,
      changeRequired: false,
    });
    const temporary = await reset('bob', {
      new_password: 'yet another long password',
      temporary_password: true,
    });
    assert.deepEqual(temporary.json(), { user_id: 'bob', sessions_revoked: 1 });
    assert.deepEqual(await tryLogin(h, 'bob', 'yet another long password'), {
      status: 200,
      changeRequired: true,
    });
    const rows = h.auditRows().filter((r) => r.action === 'operator.password_reset');
    assert.deepEqual(
      rows.map((r) => [
        r.details.sessions_revoked,
        r.details.temporary_password_generated,
        r.details.password_change_required,
      ]),
      [
        [0, false, false],
        [1, false, true],
      ],
    );
    const everything = JSON.stringify(h.store.db.prepare('SELECT * FROM audit').all());
    assert.ok(!everything.includes(NEW_PASSWORD));
    assert.ok(!everything.includes('yet another long password'));
    // API credentials are not sessions: the reset leaves them alone.
    assert.equal(
      (await h.bearer(bobToken, { method: 'GET', url: '/v1/users/me' })).statusCode,
      200,
    );
  });

  it('validates the new password and the body', async () => {
    const short = await reset('bob', { new_password: 'short' });
    assert.equal(short.statusCode, 422);
    assert.equal(errorCode(short), 'password_too_short');
    const long = await reset('bob', { new_password: 'x'.repeat(1025) });
    assert.equal(errorCode(long), 'password_too_long');
    const unknownField = await reset('bob', { password: NEW_PASSWORD });
    assert.equal(errorCode(unknownField), 'validation_failed');
    assert.equal((await tryLogin(h, 'bob', TEST_PASSWORD)).status, 200);
  });

  it('throttles resets of an unknown user: 404 five times, then 429 until the lock ends', async () => {
    const before = await requestCount(h, 'deny', 'rate_limited');
    for (let i = 0; i < 5; i += 1) {
      const response = await reset('ghost');
      assert.equal(response.statusCode, 404);
      assert.equal(errorCode(response), 'user_not_found');
    }
    const locked = await reset('ghost');
    assert.equal(locked.statusCode, 429);
    assert.equal(errorCode(locked), 'rate_limited');
    assert.equal(await requestCount(h, 'deny', 'rate_limited'), before + 1);
    // Another target is a different throttle key.
    assert.equal((await reset('bob', { new_password: NEW_PASSWORD })).statusCode, 200);
    h.clock += 60_001;
    assert.equal(errorCode(await reset('ghost')), 'user_not_found');
    const deny = h.auditRows().filter((row) => row.outcome === 'deny');
    assert.deepEqual(
      deny.map((row) => row.reason),
      [...Array<string>(5).fill('user_not_found'), 'rate_limited', 'user_not_found'],
    );
    for (const row of deny) assert.equal(row.path, '/v1/users/ghost/password');
  });

  it('refuses a plain user with 403 role_required', async () => {
    const denied = await h.bearer(bobToken, {
      method: 'POST',
      url: '/v1/users/root/password',
      payload: { new_password: NEW_PASSWORD },
    });
    assert.equal(denied.statusCode, 403);
    assert.equal(errorCode(denied), 'role_required');
    assert.equal((await tryLogin(h, 'root', TEST_PASSWORD)).status, 200);
    const [row] = h.auditRows();
    assert.ok(row);
    assert.deepEqual(
      [row.actor, row.role, row.outcome, row.method, row.path, row.reason],
      ['bob', 'user', 'deny', 'POST', '/v1/users/root/password', 'role_required'],
    );
  });
});
