// Proves the edges of audit paging and appends: atomic batches, exact last pages with no
// trailing cursor, cursor/until folding both ways, strict cursors, and the JSON of full entries.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { PortunusError } from '@portunus/core';

import {
  AUDIT_MAX_LIMIT,
  appendAudit,
  auditEntryJson,
  auditEnvelopeJson,
  encodeAuditCursor,
  queryAudit,
  type AuditQuery,
  type AuditRecord,
} from './audit.js';
import type { Store } from './open.js';
import { tempStores, thrownCode } from './store.harness.js';

const temp = tempStores();

const BASE = Date.UTC(2026, 4, 1);
const rec = (ts: number, outcome: 'allow' | 'deny' = 'allow'): AuditRecord => ({
  ts,
  actor: 'pager',
  outcome,
});

/** Every page of a walk, so tests can look at page sizes and cursors, not only the rows. */
function pages(target: Store, query: AuditQuery): { seqs: number[]; cursor?: string }[] {
  const out: { seqs: number[]; cursor?: string }[] = [];
  let cursor: string | undefined;
  do {
    const page = queryAudit(target.db, { ...query, ...(cursor ? { cursor } : {}) });
    cursor = page.nextCursor;
    out.push({ seqs: page.entries.map((entry) => entry.seq), ...(cursor ? { cursor } : {}) });
    assert.ok(out.length < 1000, 'pagination did not end');
  } while (cursor);
  return out;
}

describe('appendAudit', () => {
  it('returns [] for no records and seqs in order for a batch', () => {
    const target = temp.open();
    assert.deepEqual(appendAudit(target.db, []), []);
    const seqs = appendAudit(target.db, [rec(3), rec(1), rec(2)]);
    assert.deepEqual(seqs, [1, 2, 3]);
    assert.deepEqual(
      target.db.prepare('SELECT ts FROM audit ORDER BY seq').pluck().all(),
      [3, 1, 2],
    );
  });

  it('commits a batch all or nothing', () => {
    const target = temp.open();
    assert.throws(() => appendAudit(target.db, [rec(1), { ...rec(2), actor: '' }, rec(3)]));
    assert.equal(target.db.prepare('SELECT count(*) FROM audit').pluck().get(), 0);
    assert.equal(target.db.inTransaction, false);
  });
});

describe('queryAudit pages', () => {
  const target = temp.open();
  // 300 rows: ts pairs share a timestamp; every third row is a deny.
  appendAudit(
    target.db,
    Array.from({ length: 300 }, (_, i) =>
      rec(BASE + Math.floor(i / 2) * 1000, i % 3 === 0 ? 'deny' : 'allow'),
    ),
  );
  const allSeqsDesc = Array.from({ length: 300 }, (_, i) => 300 - i);

  it('ends a walk whose rows exactly fill the pages without an empty trailing page', () => {
    const walk = pages(target, { limit: 100 });
    assert.deepEqual(
      walk.map((page) => page.seqs.length),
      [100, 100, 100],
    );
    assert.equal(walk.at(-1)?.cursor, undefined);
    assert.deepEqual(
      walk.flatMap((page) => page.seqs),
      allSeqsDesc,
    );
  });

  it('splits rows sharing one timestamp across pages without loss or repeat', () => {
    // limit 3 over pairs of equal ts: every page boundary falls inside a pair.
    const seqs = pages(target, { limit: 3 }).flatMap((page) => page.seqs);
    assert.deepEqual(seqs, allSeqsDesc);
  });

  it('returns everything in one page at the maximum limit', () => {
    const page = queryAudit(target.db, { limit: AUDIT_MAX_LIMIT });
    assert.equal(page.entries.length, 300);
    assert.equal(page.nextCursor, undefined);
  });

  it('lets a cursor below until win, and until win over a cursor above it', () => {
    const first = queryAudit(target.db, { limit: 250 }); // cursor deep down, at ts of row 50
    assert.ok(first.nextCursor);
    const lastOfFirst = first.entries.at(-1);
    assert.ok(lastOfFirst);
    const until = BASE + 140 * 1000; // above the cursor position
    const continued = queryAudit(target.db, { limit: 1000, until, cursor: first.nextCursor });
    assert.deepEqual(
      continued.entries.map((entry) => entry.seq),
      allSeqsDesc.slice(250),
    );
    const low = BASE + 10 * 1000; // below the cursor position
    const clipped = queryAudit(target.db, { limit: 1000, until: low, cursor: first.nextCursor });
    assert.ok(clipped.entries.every((entry) => entry.ts <= low));
    assert.equal(clipped.entries.length, 22);
  });

  it('filters by outcome and window across pages', () => {
    const since = BASE + 20 * 1000;
    const until = BASE + 100 * 1000;
    const seqs = pages(target, { limit: 7, since, until, outcome: 'deny' }).flatMap(
      (page) => page.seqs,
    );
    const expected = allSeqsDesc.filter((seq) => {
      const i = seq - 1;
      const ts = BASE + Math.floor(i / 2) * 1000;
      return i % 3 === 0 && ts >= since && ts <= until;
    });
    assert.deepEqual(seqs, expected);
    assert.deepEqual(queryAudit(target.db, { since: BASE + 10_000_000 }).entries, []);
  });

  it('accepts since == until and refuses since > until', () => {
    const one = queryAudit(target.db, { since: BASE, until: BASE });
    assert.deepEqual(
      one.entries.map((entry) => entry.seq),
      [2, 1],
    );
    assert.equal(
      thrownCode(() => queryAudit(target.db, { since: BASE + 1, until: BASE })),
      'invalid_time_range',
    );
  });

  it('refuses cursors it did not issue', () => {
    const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');
    const bad = [
      'a b',
      'abc=',
      'a+b/',
      b64('1.2.3'),
      b64('-1.5'),
      b64(' 1.5'),
      b64(`${'9'.repeat(16)}.1`), // 16 digits, beyond Number.MAX_SAFE_INTEGER
      b64('99999999999999999.1'),
      b64('1.'),
      b64('.1'),
    ];
    for (const cursor of bad) {
      assert.equal(
        thrownCode(() => queryAudit(target.db, { cursor })),
        'invalid_cursor',
        cursor,
      );
    }
    assert.equal(
      thrownCode(() => queryAudit(target.db, { cursor: b64('1.1') })),
      'none',
    );
    assert.throws(
      () => queryAudit(target.db, { cursor: 'abc=' }),
      (error: unknown) => {
        assert.ok(error instanceof PortunusError);
        assert.equal(error.exitCode, 2);
        assert.equal(error.httpStatus, 400);
        return true;
      },
    );
  });
});

describe('audit JSON', () => {
  it('renders every present field, omits absent ones and never leaks the correlation id', () => {
    const target = temp.open();
    const ts = Date.UTC(2026, 4, 8, 12, 30, 15, 250);
    appendAudit(target.db, [
      {
        ts,
        actor: 'alice',
        role: 'superadmin',
        outcome: 'deny',
        method: 'DELETE',
        path: '/v1/users/bob',
        reason: 'forbidden',
        action: 'user.remove',
        resourceKind: 'user',
        resourceValue: 'bob',
        correlationId: 'req-123',
        details: { cascade: true },
      },
      { ts, actor: 'bob', outcome: 'allow', method: 'GET', path: '/v1/rules' },
    ]);
    const [plain, full] = queryAudit(target.db).entries;
    assert.ok(full && plain);
    assert.deepEqual(auditEntryJson(full), {
      timestamp: '2026-05-08T12:30:15.250Z',
      actor: 'alice',
      role: 'superadmin',
      method: 'DELETE',
      path: '/v1/users/bob',
      outcome: 'deny',
      reason: 'forbidden',
      action: 'user.remove',
      resource_kind: 'user',
      resource_value: 'bob',
      details: { cascade: true },
    });
    assert.deepEqual(auditEntryJson(plain), {
      timestamp: '2026-05-08T12:30:15.250Z',
      actor: 'bob',
      method: 'GET',
      path: '/v1/rules',
      outcome: 'allow',
    });
    assert.equal(full.correlationId, 'req-123');
    assert.doesNotMatch(JSON.stringify(auditEntryJson(full)), /req-123/);
  });

  it('wraps a page as {entries, next_cursor?, count}', () => {
    const target = temp.open();
    appendAudit(
      target.db,
      Array.from({ length: 3 }, (_, i) => rec(BASE + i)),
    );
    const first = queryAudit(target.db, { limit: 2 });
    const envelope = auditEnvelopeJson(first);
    assert.deepEqual(Object.keys(envelope), ['entries', 'next_cursor', 'count']);
    assert.equal(envelope.count, 2);
    assert.equal(envelope.entries.length, 2);
    assert.equal(envelope.next_cursor, encodeAuditCursor({ ts: BASE + 1, seq: 2 }));
    const rest = auditEnvelopeJson(
      queryAudit(target.db, {
        limit: 2,
        ...(first.nextCursor ? { cursor: first.nextCursor } : {}),
      }),
    );
    assert.deepEqual(Object.keys(rest), ['entries', 'count']);
    assert.equal(rest.count, 1);
    assert.equal(JSON.stringify(rest).includes('next_cursor'), false);
  });
});
