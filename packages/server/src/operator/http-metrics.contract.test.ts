// Proves the GET /v1/metrics contract: superadmin only, the Prometheus text content type, request counters by outcome and reason, audit drops counted when the audit queue overflows, and the connected-clients gauge.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import type { LightMyRequestResponse } from 'fastify';

import { errorCode, harnessPool, requestCount, type ContractHarness } from './contract.harness.js';

const harnesses = harnessPool();
after(() => harnesses.closeAll());

const metrics = (h: ContractHarness, token: string): Promise<LightMyRequestResponse> =>
  h.bearer(token, { method: 'GET', url: '/v1/metrics' });

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /v1/metrics', () => {
  it('serves Prometheus text to superadmins only', async () => {
    const h = harnesses.fresh();
    const root = await h.addUser('root', 'superadmin');
    const alice = await h.addUser('alice', 'user');
    const response = await metrics(h, root);
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(response.body, /^# HELP portunus_operator_requests_total /m);
    assert.match(response.body, /^# TYPE portunus_operator_requests_total counter$/m);
    const denied = await metrics(h, alice);
    assert.equal(denied.statusCode, 403);
    assert.equal(errorCode(denied), 'role_required');
    const anonymous = await h.inject({ method: 'GET', url: '/v1/metrics' });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(errorCode(anonymous), 'unauthenticated');
  });

  it('counts protected requests by outcome and reason', async () => {
    const h = harnesses.fresh();
    const root = await h.addUser('root', 'superadmin');
    const alice = await h.addUser('alice', 'user');
    const me = { method: 'GET', url: '/v1/users/me' } as const;
    await h.bearer(root, me);
    await h.bearer(alice, me);
    await h.bearer(alice, { method: 'GET', url: '/v1/users' });
    await h.bearer(alice, { method: 'GET', url: '/v1/audit' });
    await h.inject(me);
    await h.bearer('not-a-token', me);
    await h.bearer(root, { method: 'GET', url: '/v1/audit?limit=0' });
    // The metrics request renders before it is counted itself.
    const text = (await metrics(h, root)).body;
    const series = (outcome: string, reason: string): number | undefined =>
      sample(text, `portunus_operator_requests_total{outcome="${outcome}",reason="${reason}"}`);
    assert.equal(series('allow', 'ok'), 2);
    assert.equal(series('deny', 'role_required'), 2);
    assert.equal(series('deny', 'unauthenticated'), 1);
    assert.equal(series('deny', 'credential_invalid'), 1);
    assert.equal(series('deny', 'invalid_limit'), 1);
    assert.equal(series('deny', 'not_owner'), undefined);
    // Public routes count only when they fail or name an action.
    await h.inject({ method: 'GET', url: '/v1/auth/status' });
    assert.equal(await requestCount(h, 'allow', 'ok'), 3);
  });

  it('counts audit records dropped when the audit queue overflows', async () => {
    const h = harnesses.fresh({ auditCapacity: 1 });
    const root = await h.addUser('root', 'superadmin');
    const before = sample((await metrics(h, root)).body, 'portunus_audit_buffer_drops_total');
    assert.equal(before, 0);
    // Twenty denials in one turn of the event loop: the one-slot queue keeps the first until its
    // flush timer, so the rest overflow. Whatever the timing, kept + dropped = 20.
    const denials = 20;
    const answers = await Promise.all(
      Array.from({ length: denials }, () => h.inject({ method: 'GET', url: '/v1/users' })),
    );
    assert.ok(answers.every((answer) => answer.statusCode === 401));
    const kept = h.auditRows().filter((row) => row.reason === 'unauthenticated').length;
    assert.ok(h.audit.dropped >= 1, `nothing was dropped (${kept} kept)`);
    assert.equal(kept + h.audit.dropped, denials);
    const text = (await metrics(h, root)).body;
    assert.match(text, /^# TYPE portunus_audit_buffer_drops_total counter$/m);
    assert.equal(sample(text, 'portunus_audit_buffer_drops_total'), h.audit.dropped);
    assert.equal(
      sample(text, 'portunus_operator_requests_total{outcome="deny",reason="unauthenticated"}'),
      denials,
    );
  });

  it('exposes the connected-clients gauge', async () => {
    const h = harnesses.fresh();
    const root = await h.addUser('root', 'superadmin');
    const text = (await metrics(h, root)).body;
    assert.match(text, /^# TYPE portunus_clients_connected gauge$/m);
    assert.equal(sample(text, 'portunus_clients_connected'), 0);
    h.metrics.clientsConnected.set(3);
    assert.equal(sample((await metrics(h, root)).body, 'portunus_clients_connected'), 3);
  });
});
