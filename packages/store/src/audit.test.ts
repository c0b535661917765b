// Proves the audit aggregate: batched appends, newest-first keyset pages walked to the end under
// every filter, strict cursor/limit/range validation, JSON shapes, and the bounded writer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  appendAudit,
  auditEntryJson,
  auditEnvelopeJson,
  decodeAuditCursor,
  encodeAuditCursor,
  queryAudit,
  type AuditQuery,
  type AuditRecord,
} from './audit.js';
import { AuditWriter } from './audit-writer.js';
import type { Store } from './open.js';
import { tempStores, thrownCode } from './store.harness.js';

const temp = tempStores();

const BASE = Date.UTC(2026, 0, 1);
/** 3,000 rows; three share each timestamp so pages must break ties by seq. */
function seed(target: Store): AuditRecord[] {
  const records: AuditRecord[] = Array.from({ length: 3000 }, (_, i) => ({
    ts: BASE + Math.floor(i / 3) * 1000,
    actor: `u${i % 7}`,
    outcome: i % 5 === 0 ? 'deny' : 'allow',
    method: 'POST',
    path: `/v1/x/${i}`,
    details: { i },
  }));
  appendAudit(target.db, records);
  return records;
}

function walk(target: Store, query: AuditQuery): number[] {
  const seen: number[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages += 1) {
    const page = queryAudit(target.db, { ...query, ...(cursor ? { cursor } : {}) });
    assert.ok(page.entries.length <= (query.limit ?? 100));
    seen.push(...page.entries.map((entry) => entry.details['i'] as number));
    if (!page.nextCursor) return seen;
    assert.equal(page.entries.length, query.limit ?? 100);
    cursor = page.nextCursor;
  }
  assert.fail('pagination did not end');
}

describe('audit queries', () => {
  const target = temp.open();
  const records = seed(target);
  const expected = (keep: (record: AuditRecord, i: number) => boolean): number[] =>
    records
      .map((record, i) => ({ record, i }))
      .filter(({ record, i }) => keep(record, i))
      .map(({ i }) => i)
      .reverse();

  it('walks every row exactly once, newest first, for each filter', () => {
    const since = BASE + 200_000;
    const until = BASE + 700_000;
    const cases: [AuditQuery, (record: AuditRecord) => boolean][] = [
      [{ limit: 100 }, () => true],
      [{ limit: 7 }, () => true],
      [{ limit: 1000, outcome: 'deny' }, (r) => r.outcome === 'deny'],
      [{ limit: 50, since, until }, (r) => r.ts >= since && r.ts <= until],
      [{ limit: 33, since, outcome: 'allow' }, (r) => r.ts >= since && r.outcome === 'allow'],
      [{ limit: 100, until }, (r) => r.ts <= until],
    ];
    for (const [query, keep] of cases) {
      assert.deepEqual(walk(target, query), expected(keep), JSON.stringify(query));
    }
  });

  it('folds until into a cursor that lies beyond it', () => {
    const first = queryAudit(target.db, { limit: 10 });
    assert.ok(first.nextCursor);
    const until = BASE + 5_000;
    const page = queryAudit(target.db, { limit: 100, until, cursor: first.nextCursor });
    assert.ok(page.entries.every((entry) => entry.ts <= until));
    assert.equal(page.entries.length, 18);
  });

  it('validates limit, range and cursor', () => {
    for (const limit of [0, 1001, 1.5, -1]) {
      assert.equal(
        thrownCode(() => queryAudit(target.db, { limit })),
        'invalid_limit',
      );
    }
    assert.equal(queryAudit(target.db).entries.length, 100);
    assert.equal(
      thrownCode(() => queryAudit(target.db, { since: 10, until: 5 })),
      'invalid_time_range',
    );
    const bad = [
      '',
      '!!!',
      Buffer.from('12').toString('base64url'),
      Buffer.from('a.b').toString('base64url'),
      'x'.repeat(65),
    ];
    for (const cursor of bad) {
      assert.equal(
        thrownCode(() => queryAudit(target.db, { cursor })),
        'invalid_cursor',
        cursor,
      );
    }
    assert.deepEqual(decodeAuditCursor(encodeAuditCursor({ ts: 5, seq: 9 })), { ts: 5, seq: 9 });
  });

  it('renders entries and the envelope with absent values omitted', () => {
    const page = queryAudit(target.db, { limit: 2 });
    const [first] = page.entries;
    assert.ok(first);
    assert.deepEqual(Object.keys(auditEntryJson(first)).sort(), [
      'actor',
      'details',
      'method',
      'outcome',
      'path',
      'timestamp',
    ]);
    assert.match(auditEntryJson(first).timestamp, /^2026-01-01T\d{2}:\d{2}:\d{2}\.000Z$/);
    const envelope = auditEnvelopeJson(page);
    assert.equal(envelope.count, 2);
    assert.equal(envelope.next_cursor, page.nextCursor);
    assert.equal('next_cursor' in auditEnvelopeJson({ entries: [] }), false);
    const named = appendAudit(target.db, [
      { ts: BASE, actor: '_local_cli', outcome: 'allow', action: 'operator.password_reset' },
    ]);
    const row = queryAudit(target.db, { limit: 1000, since: BASE, until: BASE }).entries.find(
      (entry) => entry.seq === named[0],
    );
    assert.ok(row);
    assert.equal(auditEntryJson(row).path, 'operator.password_reset');
    assert.equal(auditEntryJson(row).method, '');
  });

  it('never reuses a seq after the newest rows are deleted', () => {
    const other = temp.open();
    const [a, b] = appendAudit(other.db, [
      { ts: 1, actor: 'a', outcome: 'allow' },
      { ts: 2, actor: 'a', outcome: 'allow' },
    ]);
    other.db.prepare('DELETE FROM audit').run();
    const [c] = appendAudit(other.db, [{ ts: 3, actor: 'a', outcome: 'allow' }]);
    assert.ok(a !== undefined && b !== undefined && c !== undefined && c > b && b > a);
  });

  it('pages with an index walk, never a scan or a sort', () => {
    for (const sql of [
      'SELECT * FROM audit WHERE (ts, seq) < (?, ?) AND ts >= ? ORDER BY ts DESC, seq DESC LIMIT 101',
      "SELECT * FROM audit WHERE outcome = 'deny' AND (ts, seq) < (?, ?) AND ts >= ? ORDER BY ts DESC, seq DESC LIMIT 101",
    ]) {
      const plan = (
        target.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(1, 1, 0) as { detail: string }[]
      )
        .map((row) => row.detail)
        .join('; ');
      assert.match(plan, /SEARCH audit USING INDEX audit_(outcome_)?ts/, plan);
      assert.doesNotMatch(plan, /TEMP B-TREE|SCAN audit/, plan);
    }
  });
});

describe('audit writer', () => {
  it('resolves write() with the seq once committed, batching records of one turn', async () => {
    const target = temp.open();
    let transactions = 0;
    const writer = new AuditWriter(target.db, { batchSize: 100 });
    const original = target.db.transaction.bind(target.db);
    target.db.transaction = ((fn: never) => {
      transactions += 1;
      return original(fn);
    }) as typeof target.db.transaction;
    const seqs = await Promise.all(
      Array.from({ length: 250 }, (_, i) => writer.write({ ts: i, actor: 'a', outcome: 'allow' })),
    );
    assert.equal(new Set(seqs).size, 250);
    assert.equal(target.db.prepare('SELECT count(*) FROM audit').pluck().get(), 250);
    assert.equal(transactions, 3); // 100 + 100 + 50
    target.db.transaction = original;
    writer.close();
  });

  it('drops and counts records beyond capacity, never blocking, and drains on close', async () => {
    const target = temp.open();
    let drops = 0;
    const writer = new AuditWriter(target.db, {
      capacity: 5,
      flushIntervalMs: 60_000,
      onDrop: () => {
        drops += 1;
      },
    });
    for (let i = 0; i < 8; i += 1) writer.offer({ ts: i, actor: 'a', outcome: 'deny' });
    assert.equal(writer.pending, 5);
    assert.equal(writer.dropped, 3);
    assert.equal(drops, 3);
    await assert.rejects(writer.write({ ts: 9, actor: 'a', outcome: 'allow' }), /queue is full/);
    writer.close();
    assert.equal(target.db.prepare('SELECT count(*) FROM audit').pluck().get(), 5);
    assert.equal(writer.offer({ ts: 10, actor: 'a', outcome: 'deny' }), false);
    assert.equal(writer.dropped, 5);
  });
});
