/**
 * Section 3, pruning the older half of the large table and giving the space back to the disk:
 * pruneAudit (DELETE under `BEGIN IMMEDIATE`, `PRAGMA incremental_vacuum`, a truncating WAL
 * checkpoint) against the same three statements through raw better-sqlite3. Each side works on
 * its own byte-identical copy of the large store, flushed to disk first so the copies' write-back
 * does not land on either timing, and the large store itself stays whole for the backup section.
 */
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';

import { BUSY_TIMEOUT_MS, openStore, pruneAudit, storePaths } from '@portunus/store';

import { applyStorePragmas, tableTs } from './fixtures.js';
import type { LargeStore } from './large-store.js';
import {
  formatMb,
  formatSeconds,
  nowMs,
  progress,
  type Goal,
  type ResultRow,
  type SectionResult,
} from './report.js';

/** Copies a closed, checkpointed database file and fsyncs the copy. */
function durableCopy(from: string, to: string): void {
  fs.copyFileSync(from, to);
  const fd = fs.openSync(to, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function benchPrune(large: LargeStore, workDir: string): SectionResult {
  // The large store was closed after its build, which checkpointed the WAL: the main file alone
  // is the whole database.
  const source = storePaths(large.dataDir).db;
  const oursDir = path.join(workDir, 'prune-ours');
  const rawDir = path.join(workDir, 'prune-raw');
  fs.mkdirSync(oursDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(rawDir, { recursive: true });
  const rawFile = path.join(rawDir, 'state.db');
  progress('prune: copying the large store twice');
  durableCopy(source, storePaths(oursDir).db);
  durableCopy(source, rawFile);
  // Rows 0 .. rows/2-1 are older than this.
  const midTs = tableTs(large.rows >> 1, large.rows);

  try {
    progress('prune: pruneAudit (ours)');
    const store = openStore(oursDir);
    let ours: ReturnType<typeof pruneAudit>;
    let oursMs: number;
    let oursLeft: number;
    try {
      const start = nowMs();
      ours = pruneAudit(store, midTs, { dryRun: false });
      oursMs = nowMs() - start;
      oursLeft = store.db.prepare('SELECT count(*) FROM audit').pluck().get() as number;
    } finally {
      store.close();
    }

    progress('prune: raw DELETE + incremental_vacuum + wal_checkpoint(TRUNCATE)');
    const raw = new Database(rawFile, { timeout: BUSY_TIMEOUT_MS });
    let rawMs: number;
    let rawRows: number;
    let rawLeft: number;
    const rawBefore = fs.statSync(rawFile).size;
    const phases: string[] = [];
    try {
      applyStorePragmas(raw);
      const remove = raw.prepare('DELETE FROM audit WHERE ts < ?');
      const start = nowMs();
      let mark = start;
      const phase = (name: string): void => {
        const at = nowMs();
        phases.push(`${name} ${formatSeconds(at - mark)}`);
        mark = at;
      };
      rawRows = raw.transaction(() => remove.run(midTs).changes).immediate();
      phase('delete');
      raw.exec('PRAGMA incremental_vacuum');
      phase('incremental_vacuum');
      raw.pragma('wal_checkpoint(TRUNCATE)');
      phase('checkpoint');
      rawMs = nowMs() - start;
      rawLeft = raw.prepare('SELECT count(*) FROM audit').pluck().get() as number;
    } finally {
      raw.close();
    }
    const rawAfter = fs.statSync(rawFile).size;

    if (ours.rows !== rawRows || oursLeft !== rawLeft) {
      throw new Error(
        `prune disagrees: ours deleted ${ours.rows} (left ${oursLeft}), raw ${rawRows} (left ${rawLeft})`,
      );
    }
    const rows: ResultRow[] = [
      {
        what: `3 prune ${ours.rows.toLocaleString('en-US')} rows + vacuum, time`,
        ours: formatSeconds(oursMs),
        raw: formatSeconds(rawMs),
        ratio: oursMs / rawMs,
      },
      {
        what: '3 file size before -> after',
        ours: `${formatMb(ours.bytesBefore)} -> ${formatMb(ours.bytesAfter)}`,
        raw: `${formatMb(rawBefore)} -> ${formatMb(rawAfter)}`,
      },
    ];
    const goals: Goal[] = [
      {
        what: 'prune gives the space back to the disk',
        measured: `${formatMb(ours.bytesBefore)} -> ${formatMb(ours.bytesAfter)}`,
        target: '<= 60% of before',
        met: ours.bytesAfter <= ours.bytesBefore * 0.6,
      },
    ];
    const notes = [
      `3: raw phases: ${phases.join(', ')}; ours freed ${ours.pagesFreed.toLocaleString('en-US')} pages.`,
    ];
    return { rows, goals, notes };
  } finally {
    fs.rmSync(oursDir, { recursive: true, force: true });
    fs.rmSync(rawDir, { recursive: true, force: true });
  }
}
