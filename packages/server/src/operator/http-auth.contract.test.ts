// Contract of the auth layer and the auth routes: bootstrap gate, onboarding with the setup
// token, login cookies, bearer and cookie identification, CSRF, forced password change,
// throttling, JSON errors for malformed bodies and unknown paths, and the audit rows each leaves.
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';

import { replaceSetupToken, setPassword } from '@portunus/store';

import { hashPassword } from '../identity/passwords.js';
import { hashSecret } from '../identity/secrets.js';
import { ContractHarness, harnessPool, TEST_PASSWORD } from './contract.harness.js';
import { SESSION_COOKIE } from './context.js';

const harnesses = harnessPool();
after(() => harnesses.closeAll());
const fresh = harnesses.fresh;

describe('bootstrap and onboarding', () => {
  it('answers 503 bootstrap_required on protected routes until a superadmin exists, and audits it as _anonymous', async () => {
    const h = fresh();
    const status = await h.inject({ method: 'GET', url: '/v1/auth/status' });
    assert.deepEqual(status.json(), { onboarding_required: true });
    const users = await h.inject({ method: 'GET', url: '/v1/users' });
    assert.equal(users.statusCode, 503);
    assert.equal(users.json<{ error: { code: string } }>().error.code, 'bootstrap_required');
    const rows = h.auditRows();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.actor, '_anonymous');
    assert.equal(rows[0].outcome, 'deny');
    assert.equal(rows[0].reason, 'bootstrap_required');
  });

  it('onboards the first superadmin with the setup token, once', async () => {
    const h = fresh();
    replaceSetupToken(h.store.db, {
      tokenHash: hashSecret('the-setup-token'),
      issuedAt: h.clock,
      expiresAt: h.clock + 1_800_000,
    });
    const body = {
      user_id: 'admin',
      display_name: 'Admin',
      password: TEST_PASSWORD,
      password_confirm: TEST_PASSWORD,
    };
    const missing = await h.inject({ method: 'POST', url: '/v1/auth/onboarding', payload: body });
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.json<{ error: { code: string } }>().error.code, 'setup_token_required');
    const wrong = await h.inject({
      method: 'POST',
      url: '/v1/auth/onboarding',
      payload: { ...body, setup_token: 'nope' },
    });
    assert.equal(wrong.json<{ error: { code: string } }>().error.code, 'setup_token_invalid');
    const ok = await h.inject({
      method: 'POST',
      url: '/v1/auth/onboarding',
      payload: { ...body, setup_token: 'the-setup-token' },
    });
    assert.equal(ok.statusCode, 201, ok.body);
    assert.deepEqual(ok.json(), { user_id: 'admin', display_name: 'Admin', role: 'superadmin' });
    assert.equal(ok.headers['set-cookie'], undefined);
    const again = await h.inject({
      method: 'POST',
      url: '/v1/auth/onboarding',
      payload: { ...body, user_id: 'admin2', setup_token: 'the-setup-token' },
    });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json<{ error: { code: string } }>().error.code, 'already_bootstrapped');
    const cookie = await h.login('admin');
    const me = await h.session(cookie, { method: 'GET', url: '/v1/users/me' });
    assert.deepEqual(me.json(), { user_id: 'admin', role: 'superadmin', display_name: 'Admin' });
    const allow = h.auditRows().filter((row) => row.outcome === 'allow');
    assert.deepEqual(
      allow.map((row) => [row.actor, row.action]),
      [
        ['admin', 'operator.onboarding'],
        ['admin', 'operator.login'],
      ],
    );
  });
});

describe('identification', () => {
  let h: ContractHarness;
  let token: string;
  beforeEach(async () => {
    h = fresh();
    token = await h.addUser('root', 'superadmin');
  });

  it('accepts a bearer credential and rejects missing, malformed and unknown ones', async () => {
    assert.equal((await h.bearer(token, { method: 'GET', url: '/v1/users/me' })).statusCode, 200);
    const none = await h.inject({ method: 'GET', url: '/v1/users/me' });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json<{ error: { code: string } }>().error.code, 'unauthenticated');
    const malformed = await h.inject({
      method: 'GET',
      url: '/v1/users/me',
      headers: { authorization: 'Basic abc' },
    });
    assert.equal(malformed.json<{ error: { code: string } }>().error.code, 'unauthenticated');
    const unknown = await h.bearer('x'.repeat(43), { method: 'GET', url: '/v1/users/me' });
    assert.equal(unknown.json<{ error: { code: string } }>().error.code, 'credential_invalid');
    const huge = await h.bearer('x'.repeat(300), { method: 'GET', url: '/v1/users/me' });
    assert.equal(huge.statusCode, 401);
  });

  it('lets a present cookie decide alone, and sets the cookie attributes', async () => {
    const login = await h.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { user_id: 'root', password: TEST_PASSWORD },
    });
    const setCookie = String(login.headers['set-cookie']);
    assert.match(
      setCookie,
      new RegExp(
        `^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Lax; Max-Age=604800$`,
      ),
    );
    const withBadCookie = await h.inject({
      method: 'GET',
      url: '/v1/users/me',
      headers: { authorization: `Bearer ${token}` },
      cookies: { [SESSION_COOKIE]: 'stale' },
    });
    assert.equal(withBadCookie.statusCode, 401);
  });

  it('marks the cookie Secure behind an https public origin', async () => {
    const secure = fresh({ config: { operatorHttpPublicOrigin: 'https://ops.example.com' } });
    await secure.addUser('root', 'superadmin');
    const login = await secure.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { user_id: 'root', password: TEST_PASSWORD },
    });
    assert.match(String(login.headers['set-cookie']), /; Secure$/);
  });

  it('authenticates the static operator token as _legacy', async () => {
    const legacy = fresh({ operatorToken: 'static-operator-token' });
    await legacy.addUser('_legacy', 'superadmin');
    const me = await legacy.bearer('static-operator-token', { method: 'GET', url: '/v1/users/me' });
    assert.equal(me.json<{ user_id: string }>().user_id, '_legacy');
  });

  it('expires sessions after 8 h idle and on logout', async () => {
    const cookie = await h.login('root');
    h.clock += 7 * 3600_000;
    assert.equal((await h.session(cookie, { method: 'GET', url: '/v1/users/me' })).statusCode, 200);
    h.clock += 8 * 3600_000 + 1;
    assert.equal((await h.session(cookie, { method: 'GET', url: '/v1/users/me' })).statusCode, 401);
    const second = await h.login('root');
    const logout = await h.session(second, { method: 'POST', url: '/v1/auth/logout' });
    assert.equal(logout.statusCode, 204);
    assert.match(String(logout.headers['set-cookie']), /Max-Age=0/);
    assert.equal((await h.session(second, { method: 'GET', url: '/v1/users/me' })).statusCode, 401);
  });
});

describe('CSRF for cookie-authenticated writes', () => {
  it('requires Origin, a matching origin, X-Portunus-CSRF: 1 and JSON', async () => {
    const h = fresh();
    await h.addUser('root', 'superadmin');
    const cookie = await h.login('root');
    const create = {
      method: 'POST' as const,
      url: '/v1/users',
      payload: { user_id: 'bob', display_name: 'Bob', initial_password: TEST_PASSWORD },
    };
    const code = async (headers: Record<string, string | undefined>): Promise<string | number> => {
      const response = await h.session(cookie, { ...create, headers });
      return response.statusCode < 400
        ? response.statusCode
        : response.json<{ error: { code: string } }>().error.code;
    };
    assert.equal(await code({ origin: undefined }), 'csrf_origin_required');
    assert.equal(await code({ origin: 'http://evil.test' }), 'csrf_origin_mismatch');
    assert.equal(await code({ 'x-portunus-csrf': undefined }), 'csrf_header_required');
    assert.equal(await code({ 'content-type': 'text/plain' }), 'csrf_content_type_required');
    assert.equal(await code({}), 201);
  });
});

describe('forced password change', () => {
  it('allows only users/me and the password change until it is done', async () => {
    const h = fresh();
    await h.addUser('root', 'superadmin');
    await h.addUser('alice', 'user');
    setPassword(h.store.db, 'alice', await hashPassword(TEST_PASSWORD), true, h.clock);
    const cookie = await h.login('alice');
    assert.equal((await h.session(cookie, { method: 'GET', url: '/v1/users/me' })).statusCode, 200);
    const blocked = await h.session(cookie, { method: 'GET', url: '/v1/clients' });
    assert.equal(
      blocked.json<{ error: { code: string } }>().error.code,
      'password_change_required',
    );
    const change = await h.session(cookie, {
      method: 'POST',
      url: '/v1/users/me/password',
      payload: {
        current_password: TEST_PASSWORD,
        new_password: 'another long password',
        new_password_confirm: 'another long password',
      },
    });
    assert.equal(change.statusCode, 204, change.body);
    assert.equal((await h.session(cookie, { method: 'GET', url: '/v1/clients' })).statusCode, 200);
  });
});

describe('login throttle', () => {
  it('locks after the 5th failure for 60 s, doubling, and answers 429 before verifying', async () => {
    const h = fresh();
    await h.addUser('root', 'superadmin');
    const attempt = async (password: string): Promise<string | number> => {
      const response = await h.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { user_id: 'root', password },
      });
      return response.statusCode === 200
        ? 200
        : response.json<{ error: { code: string } }>().error.code;
    };
    for (let i = 0; i < 5; i += 1) assert.equal(await attempt('wrong password!!'), 'invalid_login');
    assert.equal(await attempt(TEST_PASSWORD), 'rate_limited');
    h.clock += 60_001;
    assert.equal(await attempt('wrong password!!'), 'invalid_login'); // a new burst starts
    assert.equal(await attempt(TEST_PASSWORD), 200);
    const unknown = await h.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { user_id: 'ghost', password: TEST_PASSWORD },
    });
    assert.equal(unknown.json<{ error: { code: string } }>().error.code, 'invalid_login');
  });
});

describe('error envelope', () => {
  it('answers JSON errors for malformed JSON, wrong types and unknown /v1 paths', async () => {
    const h = fresh();
    const token = await h.addUser('root', 'superadmin');
    const malformed = await h.bearer(token, {
      method: 'POST',
      url: '/v1/users',
      headers: { 'content-type': 'application/json' },
      payload: '{"user_id": ',
    });
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.json<{ error: { code: string } }>().error.code, 'invalid_body');
    const wrongType = await h.bearer(token, {
      method: 'POST',
      url: '/v1/users',
      payload: { user_id: 5, display_name: 'x' },
    });
    assert.equal(wrongType.statusCode, 400);
    assert.equal(wrongType.json<{ error: { code: string } }>().error.code, 'validation_failed');
    const unknown = await h.bearer(token, { method: 'GET', url: '/v1/nope' });
    assert.equal(unknown.statusCode, 404);
    assert.deepEqual(Object.keys(unknown.json<{ error: object }>().error), ['code', 'message']);
    const anonymousUnknown = await h.inject({ method: 'GET', url: '/v1/nope' });
    assert.equal(anonymousUnknown.statusCode, 404);
  });

  it('masks store failures as store_error without leaking SQL or paths', async () => {
    const h = fresh();
    const token = await h.addUser('root', 'superadmin');
    h.store.db.pragma('foreign_keys = OFF');
    h.store.db.exec('DROP TABLE grants');
    const response = await h.bearer(token, { method: 'GET', url: '/v1/users' });
    assert.equal(response.statusCode, 500);
    assert.deepEqual(response.json(), { error: { code: 'store_error', message: 'store_error' } });
  });
});
