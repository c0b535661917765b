// Proves the operator API answers hostile request shapes the same way on every registered route: malformed JSON is 400 invalid_body, a wrong content type 415, an oversized body 413 payload_too_large, an unknown body field 400 validation_failed naming the field — always as the catalogued JSON envelope, and without changing the store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { InjectOptions } from 'fastify';

import { registeredRoutes, type RegisteredRoute } from './app.js';
import { ContractHarness } from './contract.harness.js';
import { assertErrorEnvelope, fillPath, storeSnapshot } from './hostile.harness.js';

const BODY_LIMIT = 4096;
// A small limit keeps the oversized bodies small; the mapping is the same at 1 MiB.
const h = new ContractHarness({ limits: { bodyLimitBytes: BODY_LIMIT } });
let root = '';
let routes: readonly RegisteredRoute[] = [];
before(async () => {
  root = await h.addUser('root', 'superadmin');
  routes = registeredRoutes(await h.app());
});
after(() => h.close());

const withBody = (route: RegisteredRoute): boolean =>
  ['POST', 'PUT', 'PATCH'].includes(route.method);

async function rejected(
  route: RegisteredRoute,
  options: Omit<InjectOptions, 'method' | 'url'>,
  status: number,
  code: string,
): Promise<string> {
  const before = storeSnapshot(h.store.db);
  const response = await h.bearer(root, {
    method: route.method,
    url: fillPath(route.url, 'x1'),
    ...options,
  });
  const what = `${route.method} ${route.url}`;
  assert.equal(response.statusCode, status, `${what}: ${response.body}`);
  assert.equal(assertErrorEnvelope(response, what), code, what);
  assert.deepEqual(storeSnapshot(h.store.db), before, `${what}: a rejected request stored nothing`);
  return response.json<{ error: { message: string } }>().error.message;
}

describe('hostile request shapes on every route', () => {
  it('lists the routes it walks (a new route is covered without editing this test)', () => {
    assert.ok(routes.filter(withBody).length >= 10, `only ${routes.length} routes`);
  });

  it('malformed JSON is 400 invalid_body', async () => {
    for (const route of routes.filter(withBody)) {
      await rejected(
        route,
        { headers: { 'content-type': 'application/json' }, payload: '{"a": ' },
        400,
        'invalid_body',
      );
    }
  });

  it('a wrong content type is 415 unsupported_media_type', async () => {
    for (const route of routes.filter(withBody)) {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
        await rejected(
          route,
          { headers: { 'content-type': type }, payload: '{}' },
          415,
          'unsupported_media_type',
        );
      }
    }
  });

  it('a body over the limit is 413 payload_too_large, declared or streamed', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(BODY_LIMIT * 2) });
    for (const route of routes.filter(withBody)) {
      await rejected(
        route,
        { headers: { 'content-type': 'application/json' }, payload: big },
        413,
        'payload_too_large',
      );
    }
  });

  it('an unknown body field is 400 validation_failed naming the field', async () => {
    for (const route of routes.filter((r) => withBody(r) && r.hasBodySchema)) {
      const message = await rejected(
        route,
        { payload: { zz_unknown_field: 1, ...minimalBody(route) } },
        400,
        'validation_failed',
      );
      if (!/required property/.test(message)) assert.match(message, /zz_unknown_field/, route.url);
    }
  });

  it('a body of the wrong JSON type is 400 validation_failed', async () => {
    for (const route of routes.filter((r) => withBody(r) && r.hasBodySchema)) {
      for (const payload of ['[]', '"text"', '42', 'true']) {
        await rejected(
          route,
          { headers: { 'content-type': 'application/json' }, payload },
          400,
          'validation_failed',
        );
      }
    }
  });

  it('limit and timestamp queries answer their catalogued codes', async () => {
    const audit = routes.find((r) => r.method === 'GET' && r.url === '/v1/audit');
    assert.ok(audit);
    for (const limit of ['-1', 'abc', '1e3', '99999999', '']) {
      await rejected(audit, { query: { limit } }, 422, 'invalid_limit');
    }
    for (const since of ['yesterday', '2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '']) {
      const response = await h.bearer(root, { method: 'GET', url: '/v1/audit', query: { since } });
      assert.equal(response.statusCode, 400, response.body);
      assert.match(assertErrorEnvelope(response, `since=${since}`), /timestamp|validation/);
      assert.match(response.body, /since/);
    }
  });
});

/** Per-route bodies that pass the schema's required fields, so the unknown field is what fails. */
function minimalBody(route: RegisteredRoute): Record<string, unknown> {
  const bodies: Record<string, Record<string, unknown>> = {
    'POST /v1/auth/onboarding': { setup_token: 'x', user_id: 'root2', password: 'p' },
    'POST /v1/auth/login': { user_id: 'root', password: 'p' },
    'POST /v1/users/me/password': { current_password: 'p', new_password: 'q' },
    'POST /v1/users': { user_id: 'u1', role: 'user', display_name: 'u' },
  };
  return bodies[`${route.method} ${route.url}`] ?? {};
}
