/**
 * The traffic-history benchmark (`npm run bench:traffic`, or `node bench/dist/traffic/run.js
 * [--quick]`), on real store files in a temporary data dir:
 * 1. the accounting: how many StatsReport rounds of 1,000 rules per second the server absorbs
 *    (`TrafficAccounting.recordRound`, one transaction per round), and its write amplification
 *    (WAL bytes appended per round over the 16 bytes of counters per rule). Baselines in the same
 *    run: raw better-sqlite3 upserting the 1,000 counters in one transaction, and a one-row
 *    durable commit (the fsync floor of any round).
 * 2. a traffic query over 90 days of 1-hour samples for 100 users (`readTraffic`, the routes'
 *    use case), p50/p99; baselines: the raw SELECT of the same rows, and the same readTraffic on
 *    a store left at V006 (without the covering index of V007), queried in turn with the others.
 * Prints figures and ratios; never asserts a time. Exit 0 whatever the figures, 1 when a result
 * is wrong, 2 on a usage error. The directory is removed at the end.
 */
import path from 'node:path';

import { silentLogger } from '@portunus/core';
import { TrafficAccounting, readTraffic } from '@portunus/server';
import {
  HOUR_MS,
  immediate,
  insertClient,
  insertUser,
  loadMigrations,
  openStore,
  queryTraffic,
  type Store,
} from '@portunus/store';
import { tempDirs } from '@portunus/test-support';

import {
  formatInt,
  formatMs,
  formatRatio,
  nowMs,
  percentile,
  printTable,
  progress,
} from '../store/report.js';

import {
  COUNTER_BYTES,
  FLEET_CLIENT as CLIENT,
  ROUND_COLUMNS,
  measureRounds,
  rawBaselines,
  roundRow,
  seedFleet,
} from './accounting.js';

const USAGE = 'usage: node bench/dist/traffic/run.js [--quick]';
const args = process.argv.slice(2);
if (args.some((arg) => arg !== '--quick')) {
  console.error(USAGE);
  process.exit(2);
}
const quick = args.includes('--quick');
const RULES = 1_000;
const USERS = 100;
/** Each measuring loop stops after this many rounds or this long, whichever comes first. */
const BOUNDS = { rounds: quick ? 40 : 150, limitMs: quick ? 3_000 : 8_000 };
const QUERIES = quick ? 200 : 1_000;
const DAYS = 90;

const dirs = tempDirs();
const failures: string[] = [];

function accounting(): void {
  progress(`accounting: ${RULES} rules, ${USERS} owners, up to ${BOUNDS.rounds} rounds per case`);
  const dataDir = dirs.make('portunus-bench-traffic-');
  const store = openStore(dataDir);
  const file = path.join(dataDir, 'state.db');
  const ruleIds = seedFleet(store, RULES, USERS);
  let clock = Date.now();
  const recorder = new TrafficAccounting({ db: store.db, logger: silentLogger, now: () => clock });
  // Every rule's counters grow every round: the worst case.
  const allBusy = measureRounds(store.db, file, BOUNDS, (i) => {
    clock += 5_000;
    recorder.recordRound(
      CLIENT,
      ruleIds.map((ruleId) => ({ ruleId, bytesIn: (i + 1) * 1000, bytesOut: (i + 1) * 4000 })),
    );
  });
  // One rule in ten carries traffic, the others report unchanged counters.
  const base = BOUNDS.rounds + 1;
  // Not measured: the first such round moves every baseline off the previous case's values.
  recorder.recordRound(
    CLIENT,
    ruleIds.map((ruleId) => ({ ruleId, bytesIn: base * 1000, bytesOut: base * 4000 })),
  );
  const tenthBusy = measureRounds(store.db, file, BOUNDS, (i) => {
    clock += 5_000;
    recorder.recordRound(
      CLIENT,
      ruleIds.map((ruleId, r) => {
        const grown = r % 10 === i % 10 ? (base + i + 1) * 1000 : base * 1000;
        return { ruleId, bytesIn: grown, bytesOut: grown * 4 };
      }),
    );
  });
  const expectedIn = allBusy.rounds * 1000 * RULES;
  const from = Math.floor((Date.now() - 3 * 86_400_000) / 1000);
  const stored = queryTraffic(store.db, { kind: 'global' }, '1h', from * 1000, clock + HOUR_MS);
  const storedIn = stored.reduce((sum, sample) => sum + sample.bytesIn, 0);
  if (storedIn < expectedIn) {
    console.error(`accounting lost bytes: stored ${storedIn}, expected at least ${expectedIn}`);
    failures.push('wrong result');
  }
  store.close();

  const raw = rawBaselines(dirs.make('portunus-bench-traffic-raw-'), ruleIds, BOUNDS);

  const logical = RULES * COUNTER_BYTES;
  printTable(
    `1. Accounting one StatsReport round of ${RULES} rules (${USERS} owners), synchronous=FULL`,
    ROUND_COLUMNS,
    [
      roundRow('ours: every rule grew', allBusy, logical, raw.upserts),
      roundRow('ours: 1 rule in 10 grew', tenthBusy, logical, raw.upserts),
      roundRow('raw: upsert 1,000 counters, 1 tx', raw.upserts, logical),
      roundRow('raw: one-row durable commit', raw.fsyncFloor, logical),
    ],
  );
  console.log(
    `write amplification = WAL bytes appended per round / ${formatInt(logical)} bytes of reported counters`,
  );
  console.log(
    `at a 5 s report interval, one round every ${formatMs(allBusy.msPerRound)} absorbs ~${formatInt(Math.floor((5000 / allBusy.msPerRound) * RULES))} busy rules (all counters growing)`,
  );
}

/** USERS x DAYS of 1h samples on CLIENT, each hour before the current one rolled up. */
function seedHours(store: Store, now: number): void {
  const hour = now - (now % HOUR_MS);
  insertClient(store.db, { clientId: CLIENT, clientName: 'edge-1', now });
  immediate(store.db, () => {
    const add = store.db.prepare(
      'INSERT INTO traffic_samples_1h (user_id, client_id, ts_hour, bytes_in, bytes_out) VALUES (?, ?, ?, ?, ?)',
    );
    for (let u = 0; u < USERS; u++) {
      insertUser(store.db, { userId: `user${u}`, role: 'user', displayName: `user ${u}`, now });
      for (let h = 1; h <= DAYS * 24; h++)
        add.run(`user${u}`, CLIENT, hour - h * HOUR_MS, h * 10, h * 40);
    }
    store.db
      .prepare('UPDATE server_settings SET traffic_last_rolled_up_hour = ? WHERE id = 1')
      .run(hour);
  });
}

function query(): void {
  progress(`query: ${USERS} users x ${DAYS} days of 1h samples`);
  const store = openStore(dirs.make('portunus-bench-traffic-q-'));
  // The same rows in a store left at V006: the query without V007's covering index.
  const v6 = openStore(dirs.make('portunus-bench-traffic-v6-'), {
    migrations: loadMigrations().filter((migration) => migration.version <= 6),
  });
  const now = Date.now();
  const hours = DAYS * 24;
  seedHours(store, now);
  seedHours(v6, now);
  const from = Math.ceil((now - DAYS * 86_400_000) / 1000) + 60;
  const to = Math.floor(now / 1000);
  const reader = { userId: 'root', role: 'superadmin' as const };
  const ours: number[] = [];
  const raw: number[] = [];
  const noIndex: number[] = [];
  const rawSelect = store.db.prepare(
    'SELECT ts_hour, bytes_in, bytes_out FROM traffic_samples_1h WHERE user_id = ? AND ts_hour >= ? AND ts_hour < ? ORDER BY ts_hour',
  );
  let rows = 0;
  for (let i = 0; i < QUERIES; i++) {
    const userId = `user${(i * 37) % USERS}`;
    let start = nowMs();
    const view = readTraffic(
      store.db,
      reader,
      { kind: 'user', userId },
      { from: String(from), to: String(to) },
      Date.now(),
    );
    ours.push(nowMs() - start);
    rows = view.samples.length;
    start = nowMs();
    readTraffic(
      v6.db,
      reader,
      { kind: 'user', userId },
      { from: String(from), to: String(to) },
      Date.now(),
    );
    noIndex.push(nowMs() - start);
    start = nowMs();
    rawSelect.all(userId, from * 1000 - HOUR_MS, to * 1000 + HOUR_MS);
    raw.push(nowMs() - start);
  }
  if (rows < hours - 2) {
    console.error(`query returned ${rows} samples, expected about ${hours}`);
    failures.push('wrong result');
  }
  const global: number[] = [];
  for (let i = 0; i < Math.min(30, QUERIES); i++) {
    const start = nowMs();
    readTraffic(
      store.db,
      reader,
      { kind: 'global' },
      { from: String(from), to: String(to) },
      Date.now(),
    );
    global.push(nowMs() - start);
  }
  store.close();
  v6.close();
  const p = (samples: number[], q: number): string => formatMs(percentile(samples, q));
  printTable(
    `2. GET …/traffic over ${DAYS} days, bucket 1h (${formatInt(rows)} samples), ${formatInt(USERS * hours)} rows stored`,
    ['query', 'p50', 'p99', 'p50 ours / raw'],
    [
      [
        'ours: one user (readTraffic)',
        p(ours, 50),
        p(ours, 99),
        formatRatio(percentile(ours, 50) / percentile(raw, 50)),
      ],
      [
        'ours on a V006 store (no covering index)',
        p(noIndex, 50),
        p(noIndex, 99),
        formatRatio(percentile(noIndex, 50) / percentile(raw, 50)),
      ],
      ['raw: SELECT the same rows', p(raw, 50), p(raw, 99), ''],
      [`ours: global, all ${USERS} users summed`, p(global, 50), p(global, 99), ''],
    ],
  );
  console.log(
    `goal: one user's 90-day query p99 under 20 ms: ${percentile(ours, 99) < 20 ? 'met' : 'NOT met'}`,
  );
}

try {
  accounting();
  query();
} finally {
  dirs.cleanup();
}
process.exitCode = failures.length > 0 ? 1 : 0;
