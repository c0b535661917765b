/**
 * The large store shared by sections 2-4: a real data dir opened with openStore, filled with
 * `rows` deterministic audit records spread over 30 days (ROWS_PER_TS rows per timestamp) through
 * appendAudit in 10k-row transactions. synchronous=OFF while building only: the build is setup,
 * not a measurement, and the store is closed and reopened normally before anything is timed.
 */
import fs from 'node:fs';

import { appendAudit, openStore, storePaths } from '@portunus/store';

import { makeRecord, rng, tableTs } from './fixtures.js';
import { nowMs, progress } from './report.js';

export interface LargeStore {
  dataDir: string;
  rows: number;
  bytes: number;
  buildMs: number;
}

export function buildLargeStore(dataDir: string, rows: number, batch: number): LargeStore {
  progress(`building ${rows.toLocaleString('en-US')} audit rows in ${dataDir}`);
  const store = openStore(dataDir);
  const start = nowMs();
  try {
    store.db.pragma('synchronous = OFF');
    const next = rng(7);
    for (let offset = 0; offset < rows; offset += batch) {
      const count = Math.min(batch, rows - offset);
      const records = Array.from({ length: count }, (_, index) =>
        makeRecord(next, tableTs(offset + index, rows)),
      );
      appendAudit(store.db, records);
    }
    // The sections compute (ts, seq) of row i as (tableTs(i), i + 1); check that once here.
    const shape = store.db
      .prepare('SELECT count(*) AS n, min(seq) AS first, max(seq) AS last FROM audit')
      .get() as { n: number; first: number; last: number };
    if (shape.n !== rows || shape.first !== 1 || shape.last !== rows) {
      throw new Error(`unexpected table shape after the build: ${JSON.stringify(shape)}`);
    }
  } finally {
    store.close(); // checkpoints the WAL into the main file
  }
  const buildMs = nowMs() - start;
  const bytes = fs.statSync(storePaths(dataDir).db).size;
  progress(`built in ${(buildMs / 1000).toFixed(1)} s, ${(bytes / 1e6).toFixed(1)} MB`);
  return { dataDir, rows, bytes, buildMs };
}
