// Contract of the advertised-endpoint settings, GET /v1/audit (legacy array and envelope walked
// to the end) and GET /v1/metrics, including who may call them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { appendAudit, type AuditRecord } from '@portunus/store';

import { ContractHarness, errorCode } from './contract.harness.js';

describe('advertised endpoint settings', () => {
  let h: ContractHarness;
  let root: string;
  let alice: string;
  before(async () => {
    h = new ContractHarness();
    root = await h.addUser('root', 'superadmin');
    alice = await h.addUser('alice', 'user');
  });
  after(() => h.close());

  const get = async (host = 'localhost:7080'): Promise<Record<string, unknown>> =>
    (
      await h.bearer(root, {
        method: 'GET',
        url: '/v1/settings/advertised-endpoint',
        headers: { host },
      })
    ).json();
  const put = (value: unknown): ReturnType<ContractHarness['bearer']> =>
    h.bearer(root, {
      method: 'PUT',
      url: '/v1/settings/advertised-endpoint',
      payload: { advertised_endpoint: value },
    });

  it('derives from a covered Host header, else falls back to loopback', async () => {
    assert.deepEqual(await get('localhost:7080'), {
      override: null,
      effective: 'localhost:7443',
      source: 'derived',
      diagnostic: null,
    });
    const uncovered = await get('other.test:7080');
    assert.equal(uncovered['source'], 'loopback');
    assert.equal(uncovered['effective'], '127.0.0.1:7443');
    assert.match(String(uncovered['diagnostic']), /not covered/);
  });

  it('stores a covered override, refuses bad ones, and clears', async () => {
    const ok = await put('edge.example.com:443');
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), {
      override: 'edge.example.com:443',
      effective: 'edge.example.com:443',
      source: 'override',
      diagnostic: null,
    });
    for (const bad of [
      'https://a.example.com:1',
      'a.example.com',
      'a.example.com:0',
      'a.example.com:08',
      '[::1]:7443',
      '1.2.3:80',
      'a.example.com:1/x',
    ]) {
      assert.equal(errorCode((await put(bad)).body), 'endpoint_invalid', bad);
    }
    assert.equal(errorCode((await put('other.test:7443')).body), 'endpoint_not_in_cert_san');
    assert.equal((await get())['override'], 'edge.example.com:443');
    assert.equal((await put(null)).json<{ override: unknown }>().override, null);
    assert.equal((await put('127.0.0.1:9443')).statusCode, 200);
    assert.equal((await put('')).json<{ source: string }>().source, 'derived');
    const rows = h.auditRows().filter((row) => row.action === 'operator.settings_updated');
    assert.equal(rows.length, 4);
  });

  it('uses a covered seed before deriving', async () => {
    const seeded = new ContractHarness({ control: { seed: 'edge.example.com:7443' } });
    const token = await seeded.addUser('root', 'superadmin');
    const response = await seeded.bearer(token, {
      method: 'GET',
      url: '/v1/settings/advertised-endpoint',
    });
    assert.equal(response.json<{ source: string }>().source, 'seed');
    await seeded.close();
  });

  it('is for superadmins only', async () => {
    const denied = await h.bearer(alice, {
      method: 'GET',
      url: '/v1/settings/advertised-endpoint',
    });
    assert.equal(errorCode(denied.body), 'role_required');
  });
});

describe('GET /v1/audit', () => {
  let h: ContractHarness;
  let root: string;
  const base = Date.UTC(2026, 1, 1);
  before(async () => {
    h = new ContractHarness();
    root = await h.addUser('root', 'superadmin');
    const records: AuditRecord[] = Array.from({ length: 2500 }, (_, i) => ({
      ts: base + Math.floor(i / 2) * 60_000,
      actor: 'seed',
      outcome: i % 4 === 0 ? 'deny' : 'allow',
      method: 'POST',
      path: `/v1/seed/${i}`,
    }));
    appendAudit(h.store.db, records);
  });
  after(() => h.close());

  const call = (query: string): ReturnType<ContractHarness['bearer']> =>
    h.bearer(root, { method: 'GET', url: `/v1/audit${query}` });

  it('keeps the legacy array root without since/until/cursor', async () => {
    const response = await call('?limit=3');
    assert.equal(response.headers['cache-control'], 'no-store');
    const rows = response.json<{ path: string; timestamp: string }[]>();
    assert.ok(Array.isArray(rows));
    assert.deepEqual(
      rows.map((row) => row.path),
      ['/v1/seed/2499', '/v1/seed/2498', '/v1/seed/2497'],
    );
    assert.equal((await call('')).json<unknown[]>().length, 100);
  });

  it('walks the envelope to the end, every row once, newest first', async () => {
    const since = new Date(base + 100 * 60_000).toISOString();
    const until = new Date(base + 1100 * 60_000).toISOString();
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page += 1) {
      const query = `?since=${since}&until=${until}&limit=97&outcome=allow${cursor ? `&cursor=${cursor}` : ''}`;
      const body = (await call(query)).json<{
        entries: { path: string }[];
        next_cursor?: string;
        count: number;
      }>();
      assert.equal(body.count, body.entries.length);
      seen.push(...body.entries.map((entry) => entry.path));
      cursor = body.next_cursor;
      if (cursor === undefined) break;
    }
    const expected: string[] = [];
    for (let i = 2499; i >= 0; i -= 1) {
      const minute = Math.floor(i / 2);
      if (minute >= 100 && minute <= 1100 && i % 4 !== 0) expected.push(`/v1/seed/${i}`);
    }
    assert.deepEqual(seen, expected);
  });

  it('validates its query', async () => {
    const cases: [string, number, string][] = [
      ['?limit=0', 422, 'invalid_limit'],
      ['?limit=1001', 422, 'invalid_limit'],
      ['?limit=ten', 422, 'invalid_limit'],
      ['?outcome=maybe', 422, 'invalid_outcome'],
      ['?since=yesterday', 400, 'invalid_timestamp'],
      ['?since=2026-02-02T00:00:00Z&until=2026-02-01T00:00:00Z', 400, 'invalid_time_range'],
      ['?cursor=***', 400, 'invalid_cursor'],
    ];
    for (const [query, status, code] of cases) {
      const response = await call(query);
      assert.equal(response.statusCode, status, query);
      assert.equal(errorCode(response.body), code, query);
    }
  });

  it('is for superadmins only', async () => {
    const alice = await h.addUser('alice', 'user');
    const denied = await h.bearer(alice, { method: 'GET', url: '/v1/audit' });
    assert.equal(errorCode(denied.body), 'role_required');
  });
});

describe('GET /v1/metrics', () => {
  it('serves the Prometheus text with request outcomes and audit drops, to superadmins', async () => {
    const h = new ContractHarness({ auditCapacity: 1 });
    const root = await h.addUser('root', 'superadmin');
    const alice = await h.addUser('alice', 'user');
    // Three denials in one turn: the one-slot audit queue keeps one and drops two.
    await Promise.all([1, 2, 3].map(() => h.inject({ method: 'GET', url: '/v1/users' })));
    const denied = await h.bearer(alice, { method: 'GET', url: '/v1/metrics' });
    assert.equal(errorCode(denied.body), 'role_required');
    const response = await h.bearer(root, { method: 'GET', url: '/v1/metrics' });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = response.body;
    assert.match(
      text,
      /portunus_operator_requests_total\{outcome="deny",reason="unauthenticated"\} 3/,
    );
    assert.match(
      text,
      /portunus_operator_requests_total\{outcome="deny",reason="role_required"\} 1/,
    );
    assert.match(text, /portunus_audit_buffer_drops_total [1-9]/);
    assert.match(text, /portunus_clients_connected 0/);
    await h.close();
  });
});
