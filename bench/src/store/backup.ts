/**
 * Section 4, online backup of the large store while a second process commits one record per
 * transaction: our backupStore (one-step copy, quick_check, rollback-journal copy, link into
 * place) against, from a separate read-only connection under the same writer, a raw one-step
 * `db.backup()`, `VACUUM INTO`, and the raw stepped `db.backup()` with its default 100 pages per
 * step, which restarts on every foreign commit and is cut off at a hard limit. Writer commits
 * during each copy are counted from the source's max(seq) before and after, which is exact even
 * while this event loop is blocked by a one-step copy.
 */
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';

import { BUSY_TIMEOUT_MS, backupStore, storePaths } from '@portunus/store';

import type { BenchConfig } from './config.js';
import type { LargeStore } from './large-store.js';
import {
  formatInt,
  formatMb,
  formatSeconds,
  nowMs,
  printTable,
  progress,
  sleep,
  type Goal,
  type ResultRow,
  type SectionResult,
} from './report.js';
import { WriterProcess } from './writer.js';

const ALL_PAGES = 0x7fffffff;
const DEFAULT_STEP_PAGES = 100;

interface CopyOutcome {
  finished: boolean;
  detail: string;
}

interface BackupRun {
  method: string;
  ms: number;
  finished: boolean;
  bytes: number;
  rowsInCopy: number;
  commitsDuring: number;
  detail: string;
}

class StepLimitReached extends Error {}

function removeWithSidecars(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    fs.rmSync(`${file}${suffix}`, { force: true });
  }
}

function rowsIn(file: string): number {
  const copy = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return copy.prepare('SELECT count(*) FROM audit').pluck().get() as number;
  } finally {
    copy.close();
  }
}

export async function benchBackup(
  large: LargeStore,
  workDir: string,
  config: BenchConfig,
): Promise<SectionResult & { printBackups: () => void }> {
  const source = storePaths(large.dataDir).db;
  const outDir = path.join(workDir, 'backups');
  fs.mkdirSync(outDir, { recursive: true });
  progress('backup: starting the concurrent writer process');
  const writer = await WriterProcess.start(
    large.dataDir,
    path.join(workDir, 'writer-acks.log'),
    config.steppedBackupLimitMs + 180_000,
  );
  const probe = new Database(source, { readonly: true, timeout: BUSY_TIMEOUT_MS });
  const maxSeq = probe.prepare('SELECT max(seq) FROM audit').pluck();
  const seqNow = (): number => maxSeq.get() as number;
  const runs: BackupRun[] = [];

  const measure = async (
    method: string,
    copy: (dest: string) => Promise<CopyOutcome>,
  ): Promise<BackupRun> => {
    progress(`backup: ${method}`);
    const dest = path.join(outDir, `${String(runs.length)}.db`);
    const before = seqNow();
    const start = nowMs();
    const outcome = await copy(dest);
    const ms = nowMs() - start;
    const commitsDuring = seqNow() - before;
    if (!writer.running) throw new Error('the audit writer stopped during the backup section');
    const run: BackupRun = {
      method,
      ms,
      finished: outcome.finished,
      bytes: outcome.finished ? fs.statSync(dest).size : Number.NaN,
      rowsInCopy: outcome.finished ? rowsIn(dest) : Number.NaN,
      commitsDuring,
      detail: outcome.detail,
    };
    removeWithSidecars(dest);
    runs.push(run);
    return run;
  };

  /** A raw read-only source connection, as backupStore opens one. */
  const withSource = async <T>(body: (db: Database.Database) => Promise<T>): Promise<T> => {
    const db = new Database(source, {
      readonly: true,
      fileMustExist: true,
      timeout: BUSY_TIMEOUT_MS,
    });
    try {
      return await body(db);
    } finally {
      db.close();
    }
  };

  try {
    // The writer's undisturbed commit rate, to compare with its rate during each copy.
    const rateStart = seqNow();
    await sleep(1000);
    const writerRate = seqNow() - rateStart;

    const ours = await measure('backupStore (ours)', async (dest) => {
      const result = await backupStore(large.dataDir, dest);
      return { finished: true, detail: `schema v${result.schemaVersion}, quick_check ok` };
    });
    const rawOneStep = await measure('raw db.backup, one step', (dest) =>
      withSource(async (db) => {
        await db.backup(dest, { progress: () => ALL_PAGES });
        return { finished: true, detail: 'no verification' };
      }),
    );
    await measure('raw VACUUM INTO', (dest) =>
      withSource((db) => {
        db.prepare('VACUUM INTO ?').run(dest);
        return Promise.resolve({ finished: true, detail: 'compacted copy' });
      }),
    );
    const stepped = await measure(
      `raw db.backup, ${DEFAULT_STEP_PAGES} pages/step (default)`,
      (dest) =>
        withSource(async (db) => {
          let steps = 0;
          let stalled = 0;
          let lastRemaining = Number.POSITIVE_INFINITY;
          let bestRemaining = Number.POSITIVE_INFINITY;
          let totalPages = 0;
          const start = nowMs();
          const summary = (): string => {
            const best = totalPages > 0 ? (1 - bestRemaining / totalPages) * 100 : 0;
            return (
              `${formatInt(steps)} steps, ${formatInt(stalled)} without progress (restarts), ` +
              `best ${best.toFixed(1)}% of ${formatInt(totalPages)} pages`
            );
          };
          try {
            await db.backup(dest, {
              progress: (info) => {
                steps += 1;
                totalPages = info.totalPages;
                // After a restart a step copies from page 1 again, so the remaining count does not
                // fall (or rises): that step made no progress.
                if (info.remainingPages >= lastRemaining) stalled += 1;
                lastRemaining = info.remainingPages;
                bestRemaining = Math.min(bestRemaining, info.remainingPages);
                if (nowMs() - start > config.steppedBackupLimitMs) throw new StepLimitReached();
                return DEFAULT_STEP_PAGES;
              },
            });
            return { finished: true, detail: summary() };
          } catch (error) {
            if (!(error instanceof StepLimitReached)) throw error;
            return {
              finished: false,
              detail: `stopped at the ${formatSeconds(config.steppedBackupLimitMs)} limit: ${summary()}`,
            };
          }
        }),
    );

    const rows: ResultRow[] = [
      {
        what: '4 backup under a writer, time',
        ours: formatSeconds(ours.ms),
        raw: `${formatSeconds(rawOneStep.ms)} (one step)`,
        ratio: ours.ms / rawOneStep.ms,
      },
    ];
    const goals: Goal[] = [
      {
        what: 'backupStore completes under a concurrent writer',
        measured: `${formatSeconds(ours.ms)}, ${formatInt(ours.rowsInCopy)} rows`,
        target: 'completes',
        met: ours.finished,
      },
      {
        what: 'the writer keeps committing during backupStore',
        measured: `${formatInt(ours.commitsDuring)} commits during the copy`,
        target: '> 0',
        met: ours.commitsDuring > 0,
      },
    ];
    const notes = [
      `4: the writer commits ${formatInt(writerRate)}/s undisturbed (1 record per transaction, ` +
        'synchronous=FULL, separate process and connection).',
      `4: stepped baseline: ${stepped.finished ? 'FINISHED' : 'did not finish'} (${stepped.detail}).`,
    ];
    const printBackups = (): void => {
      printTable(
        `Backup of a ${formatMb(large.bytes)} store while another process commits`,
        ['method', 'time', 'finished', 'copy size', 'rows in copy', 'writer commits during'],
        runs.map((run) => [
          run.method,
          formatSeconds(run.ms),
          run.finished ? 'yes' : 'NO',
          formatMb(run.bytes),
          formatInt(run.rowsInCopy),
          `${formatInt(run.commitsDuring)} (${formatInt((run.commitsDuring * 1000) / run.ms)}/s)`,
        ]),
      );
      for (const run of runs) console.log(`  ${run.method}: ${run.detail}`);
    };
    return { rows, goals, notes, printBackups };
  } finally {
    probe.close();
    await writer.stop();
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}
