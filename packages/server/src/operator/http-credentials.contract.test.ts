// Proves the API credential routes (DESIGN §8.4): token shown once, owner-only, never audited.
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';

import { formatRfc3339 } from '@portunus/core';

import { ContractHarness, errorCode, harnessPool, requestCount } from './contract.harness.js';

const harnesses = harnessPool();
after(() => harnesses.closeAll());
const fresh = harnesses.fresh;

interface CredentialJson {
  credential_id: string;
  user_id: string;
  label: string;
  status: 'active' | 'revoked';
  issued_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
  token?: string;
}

const VIEW_KEYS = [
  'credential_id',
  'user_id',
  'label',
  'status',
  'issued_at',
  'revoked_at',
  'last_used_at',
];
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

describe('creating a credential', () => {
  let h: ContractHarness;
  let rootToken: string;
  let aliceToken: string;
  beforeEach(async () => {
    h = fresh();
    rootToken = await h.addUser('root', 'superadmin');
    aliceToken = await h.addUser('alice', 'user');
  });

  it('answers 201 with the view and a 43-char token, once, that authenticates as its owner', async () => {
    const created = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { label: 'ci runner' },
    });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.headers['cache-control'], 'no-store');
    const body = created.json<CredentialJson>();
    assert.deepEqual(Object.keys(body).sort(), [...VIEW_KEYS, 'token'].sort());
    assert.match(body.credential_id, ULID);
    assert.equal(body.user_id, 'alice');
    assert.equal(body.label, 'ci runner');
    assert.equal(body.status, 'active');
    assert.equal(body.issued_at, formatRfc3339(h.clock));
    assert.equal(body.revoked_at, null);
    assert.equal(body.last_used_at, null);
    const token = body.token ?? '';
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);

    const me = await h.bearer(token, { method: 'GET', url: '/v1/users/me' });
    assert.equal(me.statusCode, 200);
    assert.equal(me.json<{ user_id: string }>().user_id, 'alice');

    // Never shown again: not in the list, not in the item's later views.
    const list = await h.bearer(aliceToken, { method: 'GET', url: '/v1/credentials' });
    assert.ok(!list.body.includes(token));
  });

  it('accepts no body at all (empty label) and a session cookie with CSRF', async () => {
    const bare = await h.bearer(aliceToken, { method: 'POST', url: '/v1/credentials' });
    assert.equal(bare.statusCode, 201, bare.body);
    assert.equal(bare.json<CredentialJson>().label, '');
    const cookie = await h.login('alice');
    const viaCookie = await h.session(cookie, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { label: 'from the web' },
    });
    assert.equal(viaCookie.statusCode, 201, viaCookie.body);
    const noCsrf = await h.session(cookie, {
      method: 'POST',
      url: '/v1/credentials',
      payload: {},
      headers: { 'x-portunus-csrf': undefined },
    });
    assert.equal(errorCode(noCsrf), 'csrf_header_required');
  });

  it('validates the label and the body shape', async () => {
    const max = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      // Code points, as the column's CHECK counts them: 128 crabs are 256 UTF-16 units.
      payload: { label: '🦀'.repeat(128) },
    });
    assert.equal(max.statusCode, 201, max.body);
    const long = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { label: '🦀'.repeat(129) },
    });
    assert.equal(long.statusCode, 422);
    assert.equal(errorCode(long), 'invalid_label');
    const wrongType = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { label: 5 },
    });
    assert.equal(wrongType.statusCode, 400);
    assert.equal(errorCode(wrongType), 'validation_failed');
    const unknownField = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { label: 'x', scope: 'all' },
    });
    assert.equal(errorCode(unknownField), 'validation_failed');
  });

  it("lets only a superadmin create another user's credential", async () => {
    const denied = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { user_id: 'root' },
    });
    assert.equal(denied.statusCode, 403);
    assert.equal(errorCode(denied), 'role_required');
    const own = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { user_id: 'alice' },
    });
    assert.equal(own.statusCode, 201);

    const forAlice = await h.bearer(rootToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { user_id: 'alice', label: 'issued by root' },
    });
    assert.equal(forAlice.statusCode, 201, forAlice.body);
    const issued = forAlice.json<CredentialJson>();
    assert.equal(issued.user_id, 'alice');
    const me = await h.bearer(issued.token ?? '', { method: 'GET', url: '/v1/users/me' });
    assert.deepEqual(me.json(), { user_id: 'alice', role: 'user', display_name: 'alice name' });

    const ghost = await h.bearer(rootToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { user_id: 'ghost' },
    });
    assert.equal(ghost.statusCode, 404);
    assert.equal(errorCode(ghost), 'user_not_found');
  });

  it('leaves an allow row per creation and a deny row per refusal, and counts both', async () => {
    const allowBefore = await requestCount(h, 'allow', 'ok');
    const denyBefore = await requestCount(h, 'deny', 'role_required');
    const created = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { label: 'audited' },
    });
    const id = created.json<CredentialJson>().credential_id;
    await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { user_id: 'root' },
    });
    assert.equal(await requestCount(h, 'allow', 'ok'), allowBefore + 1);
    assert.equal(await requestCount(h, 'deny', 'role_required'), denyBefore + 1);
    const rows = h.auditRows();
    const allow = rows.find((row) => row.action === 'operator.credential_created');
    assert.ok(allow);
    assert.equal(allow.actor, 'alice');
    assert.equal(allow.role, 'user');
    assert.equal(allow.outcome, 'allow');
    assert.equal(allow.method, 'POST');
    assert.equal(allow.path, '/v1/credentials');
    assert.equal(allow.resourceKind, 'credential');
    assert.equal(allow.resourceValue, id);
    assert.deepEqual(allow.details, {
      status: 201,
      remote_addr: '127.0.0.1',
      auth_method: 'bearer',
      user_id: 'alice',
      label: 'audited',
    });
    const deny = rows.find((row) => row.outcome === 'deny');
    assert.ok(deny);
    assert.equal(deny.actor, 'alice');
    assert.equal(deny.role, 'user');
    assert.equal(deny.method, 'POST');
    assert.equal(deny.path, '/v1/credentials');
    assert.equal(deny.reason, 'role_required');
    assert.equal(deny.action, null);
  });
});

describe('listing credentials', () => {
  let h: ContractHarness;
  let rootToken: string;
  let aliceToken: string;
  beforeEach(async () => {
    h = fresh();
    rootToken = await h.addUser('root', 'superadmin');
    aliceToken = await h.addUser('alice', 'user');
    await h.addUser('bob', 'user');
  });

  it('shows a user only their own, without hashes or tokens', async () => {
    h.clock += 1_000;
    const created = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { label: 'second' },
    });
    const token = created.json<CredentialJson>().token ?? '';
    const list = await h.bearer(aliceToken, { method: 'GET', url: '/v1/credentials' });
    assert.equal(list.statusCode, 200);
    const items = list.json<CredentialJson[]>();
    assert.deepEqual(
      items.map((item) => [item.user_id, item.label]),
      [
        ['alice', 'test'],
        ['alice', 'second'],
      ],
    );
    for (const item of items) assert.deepEqual(Object.keys(item).sort(), [...VIEW_KEYS].sort());
    assert.ok(!list.body.includes(token));
    assert.ok(!list.body.includes(aliceToken));
    assert.ok(!/hash/i.test(list.body));
    assert.ok(!/[0-9a-f]{64}/.test(list.body), 'no BLAKE3 hex in the answer');

    const own = await h.bearer(aliceToken, { method: 'GET', url: '/v1/credentials?user_id=alice' });
    assert.equal(own.json<CredentialJson[]>().length, 2);
    const others = await h.bearer(aliceToken, {
      method: 'GET',
      url: '/v1/credentials?user_id=bob',
    });
    assert.equal(others.statusCode, 403);
    assert.equal(errorCode(others), 'role_required');
    const unknownQuery = await h.bearer(aliceToken, { method: 'GET', url: '/v1/credentials?x=1' });
    assert.equal(errorCode(unknownQuery), 'validation_failed');
    const rows = h.auditRows();
    assert.deepEqual(
      rows.map((row) => [row.actor, row.outcome, row.method, row.path, row.reason]),
      [
        ['alice', 'allow', 'POST', '/v1/credentials', null],
        ['alice', 'deny', 'GET', '/v1/credentials', 'role_required'],
        ['alice', 'deny', 'GET', '/v1/credentials', 'validation_failed'],
      ],
    );
  });

  it('shows a superadmin everyone, or one user with ?user_id=', async () => {
    const all = await h.bearer(rootToken, { method: 'GET', url: '/v1/credentials' });
    assert.deepEqual(
      all
        .json<CredentialJson[]>()
        .map((item) => item.user_id)
        .sort(),
      ['alice', 'bob', 'root'],
    );
    const bob = await h.bearer(rootToken, { method: 'GET', url: '/v1/credentials?user_id=bob' });
    assert.deepEqual(
      bob.json<CredentialJson[]>().map((item) => item.user_id),
      ['bob'],
    );
    const nobody = await h.bearer(rootToken, {
      method: 'GET',
      url: '/v1/credentials?user_id=ghost',
    });
    assert.deepEqual(nobody.json(), []);
    // Successful reads are not audited.
    assert.deepEqual(h.auditRows(), []);
  });

  it('sets last_used_at when the token is used, at most once a minute', async () => {
    const created = await h.bearer(rootToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { user_id: 'bob', label: 'automation' },
    });
    const { credential_id: id, token } = created.json<CredentialJson>();
    const lastUsed = async (): Promise<string | null> => {
      const list = await h.bearer(rootToken, { method: 'GET', url: '/v1/credentials?user_id=bob' });
      const item = list.json<CredentialJson[]>().find((c) => c.credential_id === id);
      assert.ok(item);
      return item.last_used_at;
    };
    assert.equal(await lastUsed(), null);
    h.clock += 5_000;
    const firstUse = h.clock;
    assert.equal(
      (await h.bearer(token ?? '', { method: 'GET', url: '/v1/users/me' })).statusCode,
      200,
    );
    assert.equal(await lastUsed(), formatRfc3339(firstUse));
    h.clock += 30_000;
    await h.bearer(token ?? '', { method: 'GET', url: '/v1/users/me' });
    assert.equal(await lastUsed(), formatRfc3339(firstUse));
    h.clock += 31_000;
    await h.bearer(token ?? '', { method: 'GET', url: '/v1/users/me' });
    assert.equal(await lastUsed(), formatRfc3339(h.clock));
  });
});

describe('revoking a credential', () => {
  let h: ContractHarness;
  let rootToken: string;
  let aliceToken: string;
  let bobToken: string;
  const idOf = async (token: string): Promise<string> => {
    const list = await h.bearer(token, { method: 'GET', url: '/v1/credentials' });
    const first = list.json<CredentialJson[]>()[0];
    assert.ok(first);
    return first.credential_id;
  };
  beforeEach(async () => {
    h = fresh();
    rootToken = await h.addUser('root', 'superadmin');
    aliceToken = await h.addUser('alice', 'user');
    bobToken = await h.addUser('bob', 'user');
  });

  it('revokes idempotently; the token then answers 401 credential_invalid', async () => {
    const created = await h.bearer(aliceToken, {
      method: 'POST',
      url: '/v1/credentials',
      payload: { label: 'short-lived' },
    });
    const { credential_id: id, token } = created.json<CredentialJson>();
    h.clock += 1_000;
    const revokedAt = h.clock;
    const revoke = await h.bearer(aliceToken, { method: 'DELETE', url: `/v1/credentials/${id}` });
    assert.equal(revoke.statusCode, 200, revoke.body);
    const view = revoke.json<CredentialJson>();
    assert.deepEqual(Object.keys(view).sort(), [...VIEW_KEYS].sort());
    assert.equal(view.status, 'revoked');
    assert.equal(view.revoked_at, formatRfc3339(revokedAt));

    const refused = await h.bearer(token ?? '', { method: 'GET', url: '/v1/users/me' });
    assert.equal(refused.statusCode, 401);
    assert.equal(errorCode(refused), 'credential_invalid');

    h.clock += 1_000;
    const again = await h.bearer(aliceToken, { method: 'DELETE', url: `/v1/credentials/${id}` });
    assert.equal(again.statusCode, 200);
    assert.equal(again.json<CredentialJson>().revoked_at, formatRfc3339(revokedAt));

    const rows = h.auditRows().filter((row) => row.action === 'operator.credential_revoked');
    assert.deepEqual(
      rows.map((row) => [
        row.actor,
        row.role,
        row.outcome,
        row.method,
        row.path,
        row.resourceKind,
        row.resourceValue,
        row.details.already_revoked,
      ]),
      [
        ['alice', 'user', 'allow', 'DELETE', `/v1/credentials/${id}`, 'credential', id, false],
        ['alice', 'user', 'allow', 'DELETE', `/v1/credentials/${id}`, 'credential', id, true],
      ],
    );
    const denied = h.auditRows().find((row) => row.outcome === 'deny');
    assert.ok(denied);
    assert.equal(denied.reason, 'credential_invalid');
    assert.equal(denied.actor, '_anonymous');
    assert.equal(denied.path, '/v1/users/me');
  });

  it('lets a caller revoke the very credential it authenticates with', async () => {
    const id = await idOf(aliceToken);
    const revoke = await h.bearer(aliceToken, { method: 'DELETE', url: `/v1/credentials/${id}` });
    assert.equal(revoke.statusCode, 200);
    const next = await h.bearer(aliceToken, { method: 'GET', url: '/v1/users/me' });
    assert.equal(errorCode(next), 'credential_invalid');
  });

  it("refuses a user another user's credential (403 not_owner) and unknown ids (404)", async () => {
    const bobsId = await idOf(bobToken);
    const denied = await h.bearer(aliceToken, {
      method: 'DELETE',
      url: `/v1/credentials/${bobsId}`,
    });
    assert.equal(denied.statusCode, 403);
    assert.equal(errorCode(denied), 'not_owner');
    assert.equal(
      (await h.bearer(bobToken, { method: 'GET', url: '/v1/users/me' })).statusCode,
      200,
    );
    const unknown = await h.bearer(aliceToken, {
      method: 'DELETE',
      url: '/v1/credentials/01HZZZZZZZZZZZZZZZZZZZZZZZ',
    });
    assert.equal(unknown.statusCode, 404);
    assert.equal(errorCode(unknown), 'credential_not_found');
    const deny = h.auditRows().filter((row) => row.outcome === 'deny');
    assert.deepEqual(
      deny.map((row) => [row.actor, row.role, row.method, row.path, row.reason]),
      [
        ['alice', 'user', 'DELETE', `/v1/credentials/${bobsId}`, 'not_owner'],
        [
          'alice',
          'user',
          'DELETE',
          '/v1/credentials/01HZZZZZZZZZZZZZZZZZZZZZZZ',
          'credential_not_found',
        ],
      ],
    );
  });

  it("lets a superadmin revoke anyone's credential", async () => {
    const bobsId = await idOf(bobToken);
    const denyBefore = await requestCount(h, 'deny', 'credential_invalid');
    const revoke = await h.bearer(rootToken, {
      method: 'DELETE',
      url: `/v1/credentials/${bobsId}`,
    });
    assert.equal(revoke.statusCode, 200);
    assert.equal(revoke.json<CredentialJson>().user_id, 'bob');
    const bob = await h.bearer(bobToken, { method: 'GET', url: '/v1/users/me' });
    assert.equal(errorCode(bob), 'credential_invalid');
    assert.equal(await requestCount(h, 'deny', 'credential_invalid'), denyBefore + 1);
    const row = h.auditRows().find((r) => r.action === 'operator.credential_revoked');
    assert.ok(row);
    assert.equal(row.actor, 'root');
    assert.equal(row.role, 'superadmin');
    assert.equal(row.details.user_id, 'bob');
  });
});

describe('secrets stay out of the audit log', () => {
  it('no audit row, field or details holds a token', async () => {
    const h = fresh();
    const rootToken = await h.addUser('root', 'superadmin');
    const aliceToken = await h.addUser('alice', 'user');
    const tokens = [rootToken, aliceToken];
    for (const [caller, payload] of [
      [aliceToken, { label: 'one' }],
      [rootToken, { user_id: 'alice', label: 'two' }],
      [rootToken, {}],
    ] as const) {
      const created = await h.bearer(caller, { method: 'POST', url: '/v1/credentials', payload });
      assert.equal(created.statusCode, 201);
      tokens.push(created.json<CredentialJson>().token ?? '');
    }
    const last = tokens.at(-1) ?? '';
    await h.bearer(last, { method: 'GET', url: '/v1/users/me' });
    const list = await h.bearer(rootToken, { method: 'GET', url: '/v1/credentials' });
    const ids = list.json<CredentialJson[]>().map((item) => item.credential_id);
    const rootsOwn = list
      .json<CredentialJson[]>()
      .find((item) => item.label === 'test' && item.user_id === 'root');
    assert.ok(rootsOwn);
    // Its own credential last, so every revocation is made with a valid token.
    for (const id of [
      ...ids.filter((id) => id !== rootsOwn.credential_id),
      rootsOwn.credential_id,
    ]) {
      const revoke = await h.bearer(rootToken, { method: 'DELETE', url: `/v1/credentials/${id}` });
      assert.equal(revoke.statusCode, 200);
    }
    // Denials with the (now revoked) tokens, and a token in a query string.
    for (const token of tokens) await h.bearer(token, { method: 'GET', url: '/v1/credentials' });
    await h.inject({ method: 'GET', url: `/v1/credentials?token=${last}` });

    const rows = h.auditRows();
    assert.ok(rows.length >= 9);
    const everything = JSON.stringify(rows);
    for (const token of tokens) {
      assert.equal(token.length, 43);
      assert.ok(!everything.includes(token), 'a token reached the audit log');
    }
    const detailsJson = h.store.db
      .prepare('SELECT details_json, path, action, resource_value FROM audit')
      .all();
    const raw = JSON.stringify(detailsJson);
    for (const token of tokens) assert.ok(!raw.includes(token));
  });
});
