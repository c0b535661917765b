/**
 * `audit prune --before T [--dry-run]`: bounds the durable audit log (seed: "Audit prune"). The
 * dry run counts; the real prune deletes under `BEGIN IMMEDIATE`, then runs
 * `PRAGMA incremental_vacuum` and a truncating WAL checkpoint so the file really shrinks on disk
 * (DESIGN.md §8.2: the reference never reclaimed the space). Rule-set revisions older than the
 * cutoff go with the audit rows: they are the same kind of history (who changed what, when).
 * Runs on an open, locked store.
 */
import fs from 'node:fs';

import { countAuditBefore, deleteAuditBefore } from './audit.js';
import type { Store } from './open.js';
import { countRevisionsBefore, deleteRevisionsBefore } from './rule-revisions.js';

export interface AuditPruneResult {
  dryRun: boolean;
  /** Rows deleted, or that would be deleted in a dry run. */
  rows: number;
  /** Rule-set revisions deleted (or that would be): they share the audit log's retention. */
  revisions: number;
  bytesBefore: number;
  bytesAfter: number;
  pagesFreed: number;
}

export function pruneAudit(
  store: Store,
  beforeMs: number,
  options: { dryRun: boolean },
): AuditPruneResult {
  const { db } = store;
  const bytesBefore = fs.statSync(store.paths.db).size;
  if (options.dryRun) {
    const rows = countAuditBefore(db, beforeMs);
    const revisions = countRevisionsBefore(db, beforeMs);
    return { dryRun: true, rows, revisions, bytesBefore, bytesAfter: bytesBefore, pagesFreed: 0 };
  }
  const rows = deleteAuditBefore(db, beforeMs);
  const revisions = deleteRevisionsBefore(db, beforeMs);
  const freeBefore = db.pragma('freelist_count', { simple: true }) as number;
  db.exec('PRAGMA incremental_vacuum');
  const freeAfter = db.pragma('freelist_count', { simple: true }) as number;
  // The shrink reaches the main file only when the WAL is checkpointed into it.
  db.pragma('wal_checkpoint(TRUNCATE)');
  const bytesAfter = fs.statSync(store.paths.db).size;
  return {
    dryRun: false,
    rows,
    revisions,
    bytesBefore,
    bytesAfter,
    pagesFreed: freeBefore - freeAfter,
  };
}
