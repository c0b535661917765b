// Proves pruneAudit: the dry run only counts, the real prune deletes exactly the rows older than
// the cutoff, and the file on disk shrinks with no free pages left (DESIGN.md §8.2).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';

import { appendAudit, type AuditRecord } from './audit.js';
import { pruneAudit } from './audit-prune.js';
import { openStore, type Store } from './open.js';
import { tempStores, withStore } from './store.harness.js';

const temp = tempStores();

const BASE = Date.UTC(2026, 3, 1);
const ROWS = 20_000;
const CUTOFF = BASE + (ROWS / 2) * 1000; // rows 0..9999 are older

/** A closed store of ROWS audit rows one second apart, as the prune CLI finds it. */
function seeded(): string {
  const dir = temp.dir();
  const store = openStore(dir);
  const padding = 'x'.repeat(120);
  for (let offset = 0; offset < ROWS; offset += 5000) {
    const records: AuditRecord[] = Array.from({ length: 5000 }, (_, i) => ({
      ts: BASE + (offset + i) * 1000,
      actor: `user${(offset + i) % 13}`,
      outcome: (offset + i) % 4 === 0 ? 'deny' : 'allow',
      method: 'POST',
      path: `/v1/rules/${offset + i}`,
      details: { padding },
    }));
    appendAudit(store.db, records);
  }
  store.close();
  return dir;
}

const scalar = (store: Store, sql: string): number => store.db.prepare(sql).pluck().get() as number;

describe('pruneAudit', () => {
  const dir = seeded();

  it('counts in a dry run and deletes nothing', () => {
    withStore(dir, (store) => {
      const size = fs.statSync(store.paths.db).size;
      const result = pruneAudit(store, CUTOFF, { dryRun: true });
      assert.deepEqual(result, {
        dryRun: true,
        rows: ROWS / 2,
        revisions: 0,
        bytesBefore: size,
        bytesAfter: size,
        pagesFreed: 0,
      });
      assert.equal(scalar(store, 'SELECT count(*) FROM audit'), ROWS);
      assert.equal(fs.statSync(store.paths.db).size, size);
    });
  });

  it('deletes exactly the rows before the cutoff and shrinks the file on disk', () => {
    withStore(dir, (store) => {
      const result = pruneAudit(store, CUTOFF, { dryRun: false });
      assert.equal(result.dryRun, false);
      assert.equal(result.rows, ROWS / 2);
      assert.ok(result.pagesFreed > 0, `pagesFreed ${result.pagesFreed}`);
      assert.ok(
        result.bytesAfter < result.bytesBefore * 0.75,
        `${result.bytesAfter} is not well below ${result.bytesBefore}`,
      );
      assert.equal(fs.statSync(store.paths.db).size, result.bytesAfter);
      assert.equal(store.db.pragma('freelist_count', { simple: true }), 0);
      const pageSize = store.db.pragma('page_size', { simple: true }) as number;
      const pages = store.db.pragma('page_count', { simple: true }) as number;
      assert.equal(pages * pageSize, result.bytesAfter);
      // The boundary row (ts == cutoff) stays; everything older is gone.
      assert.equal(scalar(store, 'SELECT count(*) FROM audit'), ROWS / 2);
      assert.equal(scalar(store, 'SELECT min(ts) FROM audit'), CUTOFF);
      assert.equal(scalar(store, 'SELECT max(ts) FROM audit'), BASE + (ROWS - 1) * 1000);
      assert.equal(store.db.pragma('quick_check', { simple: true }), 'ok');
    });
  });

  it('is idempotent, keeps seqs unique after a prune and survives a reopen', () => {
    withStore(dir, (store) => {
      assert.equal(pruneAudit(store, CUTOFF, { dryRun: false }).rows, 0);
      const [seq] = appendAudit(store.db, [{ ts: BASE, actor: 'late', outcome: 'allow' }]);
      assert.equal(seq, ROWS + 1, 'a pruned seq must never be reused');
    });
    withStore(dir, (store) => {
      assert.equal(scalar(store, 'SELECT count(*) FROM audit'), ROWS / 2 + 1);
      // Pruning everything leaves a small, still valid store.
      const everything = pruneAudit(store, Number.MAX_SAFE_INTEGER, { dryRun: false });
      assert.equal(everything.rows, ROWS / 2 + 1);
      assert.equal(scalar(store, 'SELECT count(*) FROM audit'), 0);
      assert.ok(everything.bytesAfter < 256 * 1024, `${everything.bytesAfter} bytes left`);
      assert.equal(store.db.pragma('freelist_count', { simple: true }), 0);
    });
  });
});
