// Proves the GET /v1/audit contract: superadmin only, the byte-stable legacy array (newest first) without since/until/cursor, the envelope walked to the end page by page, query validation and Cache-Control: no-store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { LightMyRequestResponse } from 'fastify';

import { appendAudit, type AuditRecord } from '@portunus/store';

import { errorCode, harnessPool, type ContractHarness } from './contract.harness.js';

const harnesses = harnessPool();
after(() => harnesses.closeAll());

const BASE = Date.UTC(2026, 1, 1);
const ROWS = 3000;

/** Row i: three rows share each second (ties broken by seq), a varied outcome and optional fields. */
function seedRecord(i: number): AuditRecord {
  const deny = i % 5 === 0 || i % 7 === 0;
  return {
    ts: BASE + Math.floor(i / 3) * 1000,
    actor: `user-${i % 11}`,
    role: i % 4 === 0 ? null : i % 2 === 0 ? 'superadmin' : 'user',
    outcome: deny ? 'deny' : 'allow',
    method: i % 3 === 0 ? 'DELETE' : 'POST',
    path: `/v1/seed/${i}`,
    reason: deny ? 'role_required' : null,
    action: !deny && i % 6 === 1 ? 'operator.rule_removed' : null,
    resourceKind: !deny && i % 6 === 1 ? 'rule' : null,
    resourceValue: !deny && i % 6 === 1 ? String(i) : null,
    details: i % 9 === 0 ? {} : { status: deny ? 403 : 200, n: i },
  };
}

interface Envelope {
  entries: { path: string; timestamp: string; outcome: string }[];
  next_cursor?: string;
  count: number;
}

describe('GET /v1/audit over a seeded log', () => {
  let h: ContractHarness;
  let root: string;
  const records = Array.from({ length: ROWS }, (_, i) => seedRecord(i));
  const call = (query: string): Promise<LightMyRequestResponse> =>
    h.bearer(root, { method: 'GET', url: `/v1/audit${query}` });
  /** Seed row indexes matching a filter, newest first (ts ascends with i, seq breaks ties). */
  const expected = (keep: (record: AuditRecord) => boolean): string[] =>
    records
      .map((record, i) => ({ record, i }))
      .filter(({ record }) => keep(record))
      .reverse()
      .map(({ i }) => `/v1/seed/${i}`);

  /**
   * The reference's AuditEntry JSON (§7.2) of seed row i, keys in contract order, absent values
   * omitted.
   */
  const wire = (i: number): Record<string, unknown> => {
    const r = records[i];
    assert.ok(r);
    const details = r.details ?? {};
    return {
      timestamp: new Date(r.ts).toISOString(),
      actor: r.actor,
      ...(r.role ? { role: r.role } : {}),
      method: r.method,
      path: r.path,
      outcome: r.outcome,
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.action ? { action: r.action } : {}),
      ...(r.resourceKind ? { resource_kind: r.resourceKind } : {}),
      ...(r.resourceValue ? { resource_value: r.resourceValue } : {}),
      ...(Object.keys(details).length > 0 ? { details } : {}),
    };
  };

  /** Follows next_cursor until it is absent; checks each page's shape on the way. */
  async function walk(query: string, limit: number): Promise<{ paths: string[]; pages: number }> {
    const paths: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const response = await call(
        `?${query}&limit=${limit}${cursor === undefined ? '' : `&cursor=${cursor}`}`,
      );
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers['cache-control'], 'no-store');
      const body = response.json<Envelope>();
      pages += 1;
      assert.equal(body.count, body.entries.length);
      assert.ok(body.count <= limit);
      paths.push(...body.entries.map((entry) => entry.path));
      if (body.next_cursor === undefined) {
        assert.deepEqual(Object.keys(body), ['entries', 'count']);
        return { paths, pages };
      }
      assert.deepEqual(Object.keys(body), ['entries', 'next_cursor', 'count']);
      assert.equal(body.count, limit, 'only the last page may be short');
      cursor = body.next_cursor;
      assert.ok(pages <= ROWS, 'the walk does not end');
    }
  }

  before(async () => {
    h = harnesses.fresh();
    root = await h.addUser('root', 'superadmin');
    appendAudit(h.store.db, records);
  });

  it('keeps the legacy array root, newest first, byte for byte', async () => {
    const response = await call('?limit=20');
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['cache-control'], 'no-store');
    assert.match(String(response.headers['content-type']), /^application\/json/);
    const newest = Array.from({ length: 20 }, (_, k) => ROWS - 1 - k);
    assert.equal(response.body, JSON.stringify(newest.map(wire)));
    // One row spelled out, so the helper above cannot drift from the contract unnoticed.
    assert.equal(
      JSON.stringify(response.json<unknown[]>()[0]),
      '{"timestamp":"2026-02-01T00:16:39.000Z","actor":"user-7","role":"user","method":"POST",' +
        '"path":"/v1/seed/2999","outcome":"allow","details":{"status":200,"n":2999}}',
    );
    const kinds = response.json<Record<string, unknown>[]>();
    assert.ok(kinds.some((row) => !('role' in row)));
    assert.ok(kinds.some((row) => !('details' in row)));
    assert.ok(kinds.some((row) => 'reason' in row));
    assert.ok(kinds.some((row) => 'resource_value' in row));
    const deny = await call('?limit=5&outcome=deny');
    const denied = records
      .map((record, i) => ({ record, i }))
      .filter(({ record }) => record.outcome === 'deny')
      .slice(-5)
      .reverse()
      .map(({ i }) => wire(i));
    assert.equal(deny.body, JSON.stringify(denied));
  });

  it('answers 100 rows by default and 1..1000 on request, as an array', async () => {
    const paths = async (query: string): Promise<string[]> => {
      const body = (await call(query)).json<{ path: string }[]>();
      assert.ok(Array.isArray(body), query);
      return body.map((row) => row.path);
    };
    const all = expected(() => true);
    assert.deepEqual(await paths(''), all.slice(0, 100));
    assert.deepEqual(await paths('?limit=1'), all.slice(0, 1));
    assert.deepEqual(await paths('?limit=1000'), all.slice(0, 1000));
    assert.deepEqual(
      await paths('?outcome=allow&limit=1000'),
      expected((r) => r.outcome === 'allow').slice(0, 1000),
    );
  });

  it('walks the whole log through the envelope: every row once, newest first', async () => {
    const { paths, pages } = await walk('since=1970-01-01T00:00:00Z', 97);
    assert.deepEqual(
      paths,
      expected(() => true),
    );
    assert.equal(pages, Math.ceil(ROWS / 97));
  });

  it('ends without next_cursor when the last page is exactly full', async () => {
    const { paths, pages } = await walk('since=1970-01-01T00:00:00Z', 1000);
    assert.equal(pages, 3);
    assert.deepEqual(
      paths,
      expected(() => true),
    );
  });

  it('walks a since/until window and an outcome filter, bounds inclusive, through tied seconds', async () => {
    // since and until fall on seconds shared by three rows each: all three are in.
    const since = BASE + 100 * 1000;
    const until = BASE + 800 * 1000;
    const inWindow = (r: AuditRecord): boolean => r.ts >= since && r.ts <= until;
    const window = `since=${new Date(since).toISOString()}&until=${new Date(until).toISOString()}`;
    const denies = await walk(`${window}&outcome=deny`, 13);
    assert.deepEqual(
      denies.paths,
      expected((r) => inWindow(r) && r.outcome === 'deny'),
    );
    const allows = await walk(`${window}&outcome=allow`, 250);
    assert.deepEqual(
      allows.paths,
      expected((r) => inWindow(r) && r.outcome === 'allow'),
    );
    assert.equal(denies.paths.length + allows.paths.length, 701 * 3);
    const offset = await walk('until=2026-02-01T00:10:00%2B00:10', 500);
    assert.deepEqual(
      offset.paths,
      expected((r) => r.ts <= BASE),
    );
  });

  it('answers the envelope for a cursor alone and for since equal to until', async () => {
    const first = (await call('?since=1970-01-01T00:00:00Z&limit=10')).json<Envelope>();
    assert.ok(first.next_cursor);
    const next = (await call(`?cursor=${first.next_cursor}&limit=10`)).json<Envelope>();
    assert.deepEqual(
      next.entries.map((entry) => entry.path),
      expected(() => true).slice(10, 20),
    );
    const instant = new Date(BASE + 5000).toISOString();
    const tie = (await call(`?since=${instant}&until=${instant}`)).json<Envelope>();
    assert.deepEqual(
      tie.entries.map((entry) => entry.path),
      ['/v1/seed/17', '/v1/seed/16', '/v1/seed/15'],
    );
    assert.equal(tie.next_cursor, undefined);
    const empty = (await call('?since=2030-01-01T00:00:00Z')).json<Envelope>();
    assert.deepEqual(empty, { entries: [], count: 0 });
  });
});

describe('GET /v1/audit: validation and access', () => {
  let h: ContractHarness;
  let root: string;
  before(async () => {
    h = harnesses.fresh();
    root = await h.addUser('root', 'superadmin');
  });

  it('refuses a bad query with its code and status, in both modes', async () => {
    const cases: [string, number, string][] = [
      ['?limit=0', 422, 'invalid_limit'],
      ['?limit=1001', 422, 'invalid_limit'],
      ['?limit=-1', 422, 'invalid_limit'],
      ['?limit=1.5', 422, 'invalid_limit'],
      ['?limit=ten', 422, 'invalid_limit'],
      ['?limit=', 422, 'invalid_limit'],
      ['?since=2026-01-01T00:00:00Z&limit=0', 422, 'invalid_limit'],
      ['?outcome=maybe', 422, 'invalid_outcome'],
      ['?outcome=ALLOW', 422, 'invalid_outcome'],
      ['?since=2026-01-01T00:00:00Z&outcome=', 422, 'invalid_outcome'],
      ['?since=yesterday', 400, 'invalid_timestamp'],
      ['?since=2026-01-01', 400, 'invalid_timestamp'],
      ['?until=2026-02-30T00:00:00Z', 400, 'invalid_timestamp'],
      ['?since=2026-02-02T00:00:00Z&until=2026-02-01T00:00:00Z', 400, 'invalid_time_range'],
      ['?cursor=***', 400, 'invalid_cursor'],
      ['?cursor=abc', 400, 'invalid_cursor'],
      [`?cursor=${Buffer.from('12.x').toString('base64url')}`, 400, 'invalid_cursor'],
      ['?cursor=', 400, 'invalid_cursor'],
    ];
    for (const [query, status, code] of cases) {
      const response = await h.bearer(root, { method: 'GET', url: `/v1/audit${query}` });
      assert.equal(response.statusCode, status, query);
      assert.equal(errorCode(response), code, query);
    }
  });

  it('is for superadmins only, and audits the refusals', async () => {
    const alice = await h.addUser('alice', 'user');
    const denied = await h.bearer(alice, { method: 'GET', url: '/v1/audit' });
    assert.equal(denied.statusCode, 403);
    assert.equal(errorCode(denied), 'role_required');
    const anonymous = await h.inject({ method: 'GET', url: '/v1/audit' });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(errorCode(anonymous), 'unauthenticated');
    const rows = (await h.bearer(root, { method: 'GET', url: '/v1/audit?limit=2' })).json<
      { actor: string; reason: string; path: string }[]
    >();
    assert.deepEqual(
      rows.map((row) => [row.actor, row.reason, row.path]),
      [
        ['_anonymous', 'unauthenticated', '/v1/audit'],
        ['alice', 'role_required', '/v1/audit'],
      ],
    );
  });
});
