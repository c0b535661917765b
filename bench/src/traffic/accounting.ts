/**
 * The accounting measurements shared by the traffic and quotas benchmarks: a fleet of rules on one
 * client seeded into a real store, a bounded loop of StatsReport rounds that also measures the WAL
 * bytes each round appends (autocheckpoint off, so the WAL only grows), the raw better-sqlite3
 * baselines (the same counters upserted in one transaction, and a one-row durable commit: the
 * fsync floor of any round), and the table row that prints a case. Depends on better-sqlite3, the
 * store and the bench report helpers; it knows nothing of quotas or of queries.
 */
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';

import { immediate, insertClient, insertRule, insertUser, type Store } from '@portunus/store';

import { formatInt, formatMs, formatRatio, nowMs } from '../store/report.js';

export const FLEET_CLIENT = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
/** bytes_in + bytes_out, 8 bytes each, per rule and round: the logical size of a report. */
export const COUNTER_BYTES = 16;

/** Every measuring loop stops at whichever comes first. */
export interface LoopBounds {
  rounds: number;
  limitMs: number;
}

export interface RoundFigures {
  msPerRound: number;
  walBytesPerRound: number;
  rounds: number;
}

function walBytes(dbFile: string): number {
  try {
    return fs.statSync(`${dbFile}-wal`).size;
  } catch {
    return 0;
  }
}

/** Runs `round(i)` within `bounds`; WAL growth measured with no checkpoint in between. */
export function measureRounds(
  db: Database.Database,
  file: string,
  bounds: LoopBounds,
  round: (i: number) => void,
): RoundFigures {
  db.pragma('wal_autocheckpoint = 0');
  db.pragma('wal_checkpoint(TRUNCATE)');
  const before = walBytes(file);
  const start = nowMs();
  let rounds = 0;
  while (rounds < bounds.rounds && nowMs() - start < bounds.limitMs) round(rounds++);
  const elapsed = nowMs() - start;
  const figures = {
    msPerRound: elapsed / rounds,
    walBytesPerRound: (walBytes(file) - before) / rounds,
    rounds,
  };
  db.pragma('wal_checkpoint(TRUNCATE)');
  return figures;
}

/** `users` owners (`user0` …) and `rules` TCP rules on FLEET_CLIENT, owned round-robin. */
export function seedFleet(store: Store, rules: number, users: number): number[] {
  const now = Date.now();
  insertClient(store.db, { clientId: FLEET_CLIENT, clientName: 'edge-1', now });
  const ruleIds: number[] = [];
  immediate(store.db, () => {
    for (let u = 0; u < users; u++) {
      insertUser(store.db, { userId: `user${u}`, role: 'user', displayName: `user ${u}`, now });
    }
    for (let r = 0; r < rules; r++) {
      const rule = insertRule(store.db, {
        clientId: FLEET_CLIENT,
        ownerUserId: `user${r % users}`,
        protocol: 'tcp',
        listenPort: 10_000 + r,
        targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
        state: { kind: 'active' },
        now,
      });
      ruleIds.push(rule.ruleId);
    }
  });
  return ruleIds;
}

/** A raw better-sqlite3 file in `dir` with the durability the store uses (WAL, FULL). */
export function openRaw(dir: string): { db: Database.Database; file: string } {
  const file = path.join(dir, 'raw.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return { db, file };
}

/**
 * The raw baselines on a fresh file: the counters of `ruleIds` upserted in one transaction per
 * round, and a one-row durable commit.
 */
export function rawBaselines(
  dir: string,
  ruleIds: readonly number[],
  bounds: LoopBounds,
): { upserts: RoundFigures; fsyncFloor: RoundFigures } {
  const { db, file } = openRaw(dir);
  try {
    db.exec(
      'CREATE TABLE counters (rule_id INTEGER PRIMARY KEY, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL) STRICT',
    );
    const upsert = db.prepare(
      'INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT (rule_id) DO UPDATE SET bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out',
    );
    const round = db.transaction((i: number) => {
      for (const ruleId of ruleIds) upsert.run(ruleId, (i + 1) * 1000, (i + 1) * 4000);
    });
    const upserts = measureRounds(db, file, bounds, (i) => {
      round.immediate(i);
    });
    // One real row change, so the commit appends a frame and fsyncs like any round must.
    const touch = db.prepare('UPDATE counters SET bytes_in = bytes_in + 1 WHERE rule_id = ?');
    const commit = db.transaction(() => touch.run(ruleIds[0] ?? 1));
    const fsyncFloor = measureRounds(db, file, bounds, () => {
      commit.immediate();
    });
    return { upserts, fsyncFloor };
  } finally {
    db.close();
  }
}

export const ROUND_COLUMNS = [
  'case',
  'per round',
  'rounds/s',
  'WAL bytes/round',
  'write ampl.',
  'time / raw',
];

/** One table row: time and rate, WAL bytes, their ratio to `logicalBytes`, time against `ratioTo`. */
export function roundRow(
  what: string,
  figures: RoundFigures,
  logicalBytes: number,
  ratioTo?: RoundFigures,
): string[] {
  return [
    what,
    formatMs(figures.msPerRound),
    formatInt(Math.round(1000 / figures.msPerRound)),
    formatInt(Math.round(figures.walBytesPerRound)),
    `${(figures.walBytesPerRound / logicalBytes).toFixed(1)}x`,
    ratioTo ? formatRatio(figures.msPerRound / ratioTo.msPerRound) : '',
  ];
}
