/**
 * Section 1, durable audit appends per second: one record per transaction through appendAudit,
 * then 256-record transactions through AuditWriter (write() promises, group commit) and through
 * appendAudit, each against raw better-sqlite3 running the same INSERT in its own
 * `BEGIN IMMEDIATE` transaction on a database with the store's PRAGMAs (synchronous=FULL, so
 * every commit is an fsync) and the same audit DDL. The methods run in alternating order over
 * several rounds and the median round is reported, so disk and cache drift hit all of them.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { Database as SqliteDatabase } from 'better-sqlite3';

import { AuditWriter, appendAudit, openStore, type AuditRecord } from '@portunus/store';

import type { BenchConfig } from './config.js';
import {
  BASE_TS,
  makeRecords,
  openRawAuditDb,
  rawAppend,
  rawInsert,
  rawRow,
  type RawInsert,
  type RawRow,
} from './fixtures.js';
import {
  formatInt,
  median,
  nowMs,
  progress,
  type Goal,
  type ResultRow,
  type SectionResult,
} from './report.js';

const BATCH = 256;
/** Goal from the issue: batched appends within 1.5x of raw. */
export const BATCHED_GOAL = 1.5;

interface Run {
  records: number;
  ms: number;
}

const rate = (run: Run): number => (run.records * 1000) / run.ms;

/** Runs `body` for each item until the list or the time limit is exhausted. */
function timed<T>(items: readonly T[], limitMs: number, body: (item: T) => number): Run {
  const start = nowMs();
  let records = 0;
  for (const item of items) {
    records += body(item);
    if (nowMs() - start > limitMs) break;
  }
  return { records, ms: nowMs() - start };
}

async function timedWriter(
  writer: AuditWriter,
  records: readonly AuditRecord[],
  limitMs: number,
): Promise<Run> {
  const start = nowMs();
  let written = 0;
  // Never more in flight than the queue holds (an overflow would drop records); the chunk is a
  // whole number of batches, so every flush is a full 256-record batch on the next tick.
  for (let offset = 0; offset < records.length; offset += writer.capacity) {
    const chunk = records.slice(offset, offset + writer.capacity);
    await Promise.all(chunk.map((record) => writer.write(record)));
    written += chunk.length;
    if (nowMs() - start > limitMs) break;
  }
  return { records: written, ms: nowMs() - start };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let offset = 0; offset < items.length; offset += size) {
    out.push(items.slice(offset, offset + size));
  }
  return out;
}

/** `methods` run once per round, the starting method rotating each round. */
async function rounds(
  count: number,
  methods: readonly (() => Run | Promise<Run>)[],
): Promise<Run[][]> {
  const runs: Run[][] = methods.map(() => []);
  for (let round = 0; round < count; round += 1) {
    for (let step = 0; step < methods.length; step += 1) {
      const index = (round + step) % methods.length;
      const method = methods[index]!;
      runs[index]!.push(await method());
    }
  }
  return runs;
}

const medianRate = (runs: readonly Run[]): number => median(runs.map(rate));

export async function benchAppends(workDir: string, config: BenchConfig): Promise<SectionResult> {
  const oursDir = path.join(workDir, 'appends-ours');
  const rawDir = path.join(workDir, 'appends-raw');
  fs.mkdirSync(rawDir, { recursive: true });
  const store = openStore(oursDir);
  const raw: SqliteDatabase = openRawAuditDb(path.join(rawDir, 'raw.db'));
  try {
    const insert: RawInsert = rawInsert(raw);
    const single = makeRecords(1, config.singleCommits, BASE_TS);
    const singleRaw: RawRow[] = single.map(rawRow);
    const batched = makeRecords(2, config.batches * BATCH, BASE_TS);
    const batchedRaw = chunks(batched.map(rawRow), BATCH);
    const batchedOurs = chunks(batched, BATCH);
    const limit = config.appendRunLimitMs;

    progress(`appends: ${config.rounds} rounds of ${config.singleCommits} single commits each`);
    const [singleOurs = [], singleRawRuns = []] = await rounds(config.rounds, [
      () => timed(single, limit, (record) => appendAudit(store.db, [record]).length),
      () =>
        timed(singleRaw, limit, (row) => {
          rawAppend(insert, [row]);
          return 1;
        }),
    ]);

    progress(`appends: ${config.rounds} rounds of ${batched.length} records in 256-record batches`);
    const writer = new AuditWriter(store.db);
    if (writer.capacity % writer.batchSize !== 0 || writer.batchSize !== BATCH) {
      throw new Error(
        `AuditWriter defaults changed (capacity ${writer.capacity}, batch ${writer.batchSize}); ` +
          'update bench/src/store/appends.ts',
      );
    }
    let writerRuns: Run[];
    let appendRuns: Run[];
    let rawBatchRuns: Run[];
    try {
      [writerRuns = [], appendRuns = [], rawBatchRuns = []] = await rounds(config.rounds, [
        () => timedWriter(writer, batched, limit),
        () => timed(batchedOurs, limit, (batch) => appendAudit(store.db, batch).length),
        () =>
          timed(batchedRaw, limit, (batch) => {
            rawAppend(insert, batch);
            return batch.length;
          }),
      ]);
    } finally {
      writer.close();
    }
    if (writer.dropped > 0) throw new Error(`AuditWriter dropped ${writer.dropped} records`);

    const oursSingle = medianRate(singleOurs);
    const rawSingle = medianRate(singleRawRuns);
    const oursWriter = medianRate(writerRuns);
    const oursAppend = medianRate(appendRuns);
    const rawBatch = medianRate(rawBatchRuns);
    const perSecond = (value: number): string => `${formatInt(value)} rec/s`;
    const rows: ResultRow[] = [
      {
        what: '1a append, 1 record/tx (appendAudit)',
        ours: perSecond(oursSingle),
        raw: perSecond(rawSingle),
        ratio: rawSingle / oursSingle,
      },
      {
        what: '1b append, 256/tx (AuditWriter.write)',
        ours: perSecond(oursWriter),
        raw: perSecond(rawBatch),
        ratio: rawBatch / oursWriter,
      },
      {
        what: '1b append, 256/tx (appendAudit)',
        ours: perSecond(oursAppend),
        raw: perSecond(rawBatch),
        ratio: rawBatch / oursAppend,
      },
    ];
    const goal = (what: string, ratio: number): Goal => ({
      what,
      measured: `${ratio.toFixed(2)}x raw`,
      target: `<= ${BATCHED_GOAL}x raw`,
      met: ratio <= BATCHED_GOAL,
    });
    const goals = [
      goal('batched appends, AuditWriter', rawBatch / oursWriter),
      goal('batched appends, appendAudit 256', rawBatch / oursAppend),
    ];
    const notes = [
      `1a: ${formatInt(1e6 / oursSingle)} µs per durable commit (ours) against ` +
        `${formatInt(1e6 / rawSingle)} µs (raw); each commit is one fsync (synchronous=FULL).`,
    ];
    return { rows, goals, notes };
  } finally {
    store.close();
    raw.close();
    fs.rmSync(oursDir, { recursive: true, force: true });
    fs.rmSync(rawDir, { recursive: true, force: true });
  }
}
