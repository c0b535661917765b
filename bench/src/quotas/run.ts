/**
 * The quotas benchmark (`npm run bench:quotas`, or `node bench/dist/quotas/run.js [--quick]`),
 * reported and never asserted on time (bench/README.md, "Quotas"):
 * 1. The cost of accounting with quotas: StatsReport rounds of 1,000 rules per second the server
 *    absorbs (`TrafficAccounting.recordRound`) when every one of the 100 owners has a quota on the
 *    client (so each round also adds usage to 100 quota rows in its transaction), against the same
 *    fleet without quotas and against raw better-sqlite3 upserting the same rows (1,000 counters,
 *    100 samples, 100 quota rows) in one transaction, the three run in turn; with the WAL write
 *    amplification of each.
 * 2. The enforcement overrun: a real Forwarder (its own process) with one TCP rule whose owner has
 *    a budget of 1, 16 or 256 MiB; 1 or 8 senders push through it as fast as loopback allows
 *    (bounded by bytes and time) until the forwarder half-closes them; the figures are the bytes
 *    the target received and the bytes the forwarder debited beyond the budget, per connection,
 *    beside the chunk that bounds them (one 64 KiB socket read per connection:
 *    packages/forwarder/src/policy/quota.ts), and the bytes paid for but never received.
 * 3. The throughput cost of metering: the same forwarder moving a fixed transfer through a rule
 *    whose owner has a budget it never reaches, against a rule whose owner has none.
 * Exit 0 whatever the figures, 1 when a result is wrong (quota usage not what the rounds added,
 * an overrun past its bound, paid bytes not delivered), 2 on a usage error. Every child is stopped and the directories removed at the end. Depends on
 * the bench helpers, the store, the server's accounting and @portunus/forwarder's simpleRule.
 */
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type Database from 'better-sqlite3';

import { silentLogger } from '@portunus/core';
import { simpleRule } from '@portunus/forwarder';
import { TrafficAccounting } from '@portunus/server';
import { listQuotas, openStore, writeQuota, type Store } from '@portunus/store';
import { tempDirs } from '@portunus/test-support';

import { Child, killChildren } from '../forwarder/children.js';
import { formatRatio, median, nowMs, printTable, progress, sleep } from '../store/report.js';
import {
  COUNTER_BYTES,
  FLEET_CLIENT,
  ROUND_COLUMNS,
  measureRounds,
  openRaw,
  rawBaselines,
  roundRow,
  seedFleet,
  type LoopBounds,
  type RoundFigures,
} from '../traffic/accounting.js';

const USAGE = 'usage: node bench/dist/quotas/run.js [--quick]';
const args = process.argv.slice(2);
if (args.some((arg) => arg !== '--quick')) {
  console.error(USAGE);
  process.exit(2);
}
const quick = args.includes('--quick');
const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(HERE, 'forwarder-child.js');

const RULES = 1_000;
const USERS = 100;
const BOUNDS: LoopBounds = { rounds: quick ? 40 : 150, limitMs: quick ? 3_000 : 8_000 };
/** Rounds each accounting case runs before the next one has its turn. */
const SLICE = 10;
const KIB = 1024;
const MIB = 1024 * KIB;
/** One socket read of libuv: what a connection is granted past the budget at most. */
const CHUNK = 64 * KIB;
const BUDGETS = [1 * MIB, 16 * MIB, 256 * MIB];
const CONNECTIONS = [1, 8];
/** A sender stops by itself this far past the budget: an enforcement that never stops is bounded. */
const SENDER_SLACK = 64 * MIB;
const CASE_LIMIT_MS = 30_000;
const OVERRUN_REPEATS = quick ? 1 : 3;
const METER_TRANSFER = (quick ? 128 : 512) * MIB;
const METER_ROUNDS = quick ? 2 : 5;
/** A budget no transfer here reaches: the owner is metered on every chunk but never stopped. */
const UNREACHED_BUDGET = 2 ** 50;

const dirs = tempDirs();
const failures: string[] = [];

// 1. Accounting with quotas.

/** One accounting case: its connection and file, and what one round `i` does. */
interface RoundCase {
  db: Database.Database;
  file: string;
  round: (i: number) => void;
}

function storeCase(store: Store, dir: string, ruleIds: readonly number[]): RoundCase {
  let clock = Date.now();
  const recorder = new TrafficAccounting({ db: store.db, logger: silentLogger, now: () => clock });
  return {
    db: store.db,
    file: path.join(dir, 'state.db'),
    // Every rule's counters grow every round: the worst case, each owner's quota row updated.
    round: (i) => {
      clock += 5_000;
      recorder.recordRound(
        FLEET_CLIENT,
        ruleIds.map((ruleId) => ({ ruleId, bytesIn: (i + 1) * 1000, bytesOut: (i + 1) * 4000 })),
      );
    },
  };
}

/** Raw better-sqlite3 writing what a round with quotas writes: counters, samples, quota rows. */
function rawSameRowsCase(
  db: Database.Database,
  file: string,
  ruleIds: readonly number[],
): RoundCase {
  db.exec(`
    CREATE TABLE counters (rule_id INTEGER PRIMARY KEY, bytes_in INTEGER NOT NULL,
      bytes_out INTEGER NOT NULL) STRICT;
    CREATE TABLE samples (user_id TEXT NOT NULL, ts_minute INTEGER NOT NULL,
      bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
      PRIMARY KEY (user_id, ts_minute)) STRICT, WITHOUT ROWID;
    CREATE TABLE quotas (user_id TEXT PRIMARY KEY, used INTEGER NOT NULL) STRICT, WITHOUT ROWID;
  `);
  const addQuota = db.prepare('INSERT INTO quotas VALUES (?, 0)');
  for (let u = 0; u < USERS; u++) addQuota.run(`user${u}`);
  const counter = db.prepare(
    'INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT (rule_id) DO UPDATE SET bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out',
  );
  const sample = db.prepare(
    'INSERT INTO samples VALUES (?, ?, ?, ?) ON CONFLICT (user_id, ts_minute) DO UPDATE SET bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out',
  );
  const usage = db.prepare('UPDATE quotas SET used = used + ? WHERE user_id = ?');
  const perOwner = (RULES / USERS) * 5000;
  let clock = Date.now();
  const round = db.transaction((i: number) => {
    clock += 5_000;
    for (const ruleId of ruleIds) counter.run(ruleId, (i + 1) * 1000, (i + 1) * 4000);
    const minute = clock - (clock % 60_000);
    for (let u = 0; u < USERS; u++) {
      sample.run(`user${u}`, minute, perOwner / 5, (perOwner * 4) / 5);
      usage.run(perOwner, `user${u}`);
    }
  });
  return {
    db,
    file,
    round: (i) => {
      round.immediate(i);
    },
  };
}

/**
 * Runs the cases in turn, SLICE rounds each, until each has had BOUNDS.rounds (or the time is
 * up): load from other work on the shared machine then hits every case alike.
 */
function inTurn(cases: readonly RoundCase[]): RoundFigures[] {
  const totals = cases.map(() => ({ ms: 0, wal: 0, rounds: 0 }));
  const start = nowMs();
  while (
    totals.every((total) => total.rounds < BOUNDS.rounds) &&
    nowMs() - start < BOUNDS.limitMs * cases.length
  ) {
    cases.forEach((round, k) => {
      const total = totals[k]!;
      const done = total.rounds;
      const figures = measureRounds(round.db, round.file, { ...BOUNDS, rounds: SLICE }, (i) => {
        round.round(done + i);
      });
      total.ms += figures.msPerRound * figures.rounds;
      total.wal += figures.walBytesPerRound * figures.rounds;
      total.rounds += figures.rounds;
    });
  }
  return totals.map((total) => ({
    msPerRound: total.ms / total.rounds,
    walBytesPerRound: total.wal / total.rounds,
    rounds: total.rounds,
  }));
}

function accounting(): void {
  progress(`accounting: ${RULES} rules, ${USERS} owners, up to ${BOUNDS.rounds} rounds per case`);
  const plainDir = dirs.make('portunus-bench-quotas-plain-');
  const plainStore = openStore(plainDir);
  const ruleIds = seedFleet(plainStore, RULES, USERS);
  const quotaDir = dirs.make('portunus-bench-quotas-');
  const quotaStore = openStore(quotaDir);
  const quotaRules = seedFleet(quotaStore, RULES, USERS);
  const now = Date.now();
  for (let u = 0; u < USERS; u++) {
    writeQuota(quotaStore.db, {
      userId: `user${u}`,
      clientId: FLEET_CLIENT,
      monthlyBytes: UNREACHED_BUDGET,
      billingAnchor: now,
      currentPeriodStartedAt: now,
      currentPeriodBytesUsed: 0,
      exhaustedAt: null,
      enforcement: 'hard',
      period: 'monthly',
      resetDay: null,
      alertsFired: [],
      now,
    });
  }
  const raw = openRaw(dirs.make('portunus-bench-quotas-raw-'));
  let figures: RoundFigures[];
  try {
    figures = inTurn([
      storeCase(quotaStore, quotaDir, quotaRules),
      storeCase(plainStore, plainDir, ruleIds),
      rawSameRowsCase(raw.db, raw.file, ruleIds),
    ]);
    // Each owner has RULES / USERS rules, each growing 5,000 bytes a round (the first round
    // counts its whole reading: there is no baseline yet).
    const expected = (figures[0]?.rounds ?? 0) * (RULES / USERS) * 5000;
    const wrong = listQuotas(quotaStore.db).filter((q) => q.currentPeriodBytesUsed !== expected);
    if (wrong.length > 0) {
      console.error(
        `${wrong.length} quotas hold the wrong usage (expected ${expected} bytes each)`,
      );
      failures.push('wrong result');
    }
  } finally {
    quotaStore.close();
    plainStore.close();
    raw.db.close();
  }
  const [withQuotas, plain, sameRows] = figures as [RoundFigures, RoundFigures, RoundFigures];
  const counters = rawBaselines(dirs.make('portunus-bench-quotas-counters-'), ruleIds, BOUNDS);
  const logical = RULES * COUNTER_BYTES;
  printTable(
    `1. Accounting one StatsReport round of ${RULES} rules (${USERS} owners, every rule grew), synchronous=FULL; the first three in turn, ${SLICE} rounds at a time`,
    ROUND_COLUMNS,
    [
      roundRow(`ours: ${USERS} owners with quotas`, withQuotas, logical, sameRows),
      roundRow('ours: no quotas', plain, logical, sameRows),
      roundRow('raw: same rows (1,000 counters + 100 samples + 100 quotas)', sameRows, logical),
      roundRow('raw: upsert 1,000 counters, 1 tx', counters.upserts, logical),
      roundRow('raw: one-row durable commit', counters.fsyncFloor, logical),
    ],
  );
  console.log(
    `with quotas / without: ${formatRatio(withQuotas.msPerRound / plain.msPerRound)} time per round, ` +
      `${formatRatio(withQuotas.walBytesPerRound / plain.walBytesPerRound)} WAL bytes per round; ` +
      `write amplification = WAL bytes / ${logical} bytes of reported counters`,
  );
}

// 2. and 3. The data plane.

const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as net.AddressInfo).port);
    });
  });

/** A target that counts what it receives, the connections it got and those the forwarder ended. */
async function sink(): Promise<{
  port: number;
  received: () => number;
  opened: () => number;
  ended: () => number;
  close: () => void;
}> {
  let received = 0;
  let opened = 0;
  let ended = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    opened += 1;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.on('end', () => {
      ended += 1;
      socket.end();
    });
    socket.on('error', () => undefined);
  });
  const port = await listen(server);
  return {
    port,
    received: () => received,
    opened: () => opened,
    ended: () => ended,
    close: () => {
      server.close();
    },
  };
}

/** Writes 64 KiB blocks as fast as the socket takes them, until `limit` bytes or it closes. */
function push(port: number, limit: number, deadline: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const block = Buffer.alloc(CHUNK, 7);
    let written = 0;
    let stopped = false;
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      socket.end();
      socket.destroySoon();
    };
    // Past the deadline nothing is flushed any more: the socket is torn down, 'close' resolves.
    const timer = setTimeout(() => socket.destroy(), Math.max(0, deadline - nowMs()));
    const pump = (): void => {
      while (!stopped && written < limit) {
        written += block.length;
        if (!socket.write(block)) return;
      }
      stop();
    };
    socket.on('connect', pump);
    socket.on('drain', pump);
    // The forwarder's half-close: nothing more will be forwarded.
    socket.on('end', stop);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      stopped = true;
      clearTimeout(timer);
      resolve(written);
    });
    socket.resume();
  });
}

async function waitUntil(condition: () => boolean, deadline: number): Promise<boolean> {
  while (!condition()) {
    if (nowMs() > deadline) return false;
    await sleep(10);
  }
  return true;
}

interface Forwarder {
  child: Child;
  ports: Record<string, number>;
  /** Stops it and returns what remained of each budget (null: unlimited). */
  stop: () => Promise<Record<string, number | null>>;
}

async function startForwarder(
  targets: Record<string, { owner: string; port: number }>,
  budgets: Record<string, number>,
): Promise<Forwarder> {
  const rules = Object.entries(targets).map(([ruleId, target]) =>
    simpleRule({
      ruleId,
      protocol: 'tcp',
      listenPort: 0,
      targetHost: '127.0.0.1',
      targetPort: target.port,
      ownerId: target.owner,
    }),
  );
  const child = Child.start({
    name: 'quotas-forwarder',
    command: process.execPath,
    args: [CHILD, JSON.stringify({ rules, budgets })],
    dir: dirs.make('portunus-bench-quotas-fw-'),
    lifetimeMs: 300_000,
  });
  const bound = await child.waitForLine((line) => {
    const parsed = JSON.parse(line) as { ports?: Record<string, number[]> };
    return parsed.ports;
  }, 15_000);
  const ports = Object.fromEntries(
    Object.entries(bound).map(([ruleId, list]) => [ruleId, list[0] ?? 0]),
  );
  return {
    child,
    ports,
    stop: async () => {
      await child.stop();
      for (const line of child.stdout().split('\n')) {
        if (!line.includes('bench.quotas_forwarder_budgets')) continue;
        const { budgets: left } = JSON.parse(line) as {
          budgets: { ownerId: string; remaining: number | null }[];
        };
        return Object.fromEntries(left.map((b) => [b.ownerId, b.remaining]));
      }
      return {};
    },
  };
}

const gbps = (bytes: number, ms: number): number => (bytes * 8) / (ms * 1e6);

interface OverrunFigures {
  budget: number;
  connections: number;
  /** Upstream connections the forwarder opened (the others were refused: budget used up). */
  opened: number;
  received: number;
  paid: number;
  gbps: number;
  stoppedAll: boolean;
}

async function overrunCase(budget: number, connections: number): Promise<OverrunFigures> {
  const target = await sink();
  const forwarder = await startForwarder(
    { q: { owner: 'alice', port: target.port } },
    { alice: budget },
  );
  const port = forwarder.ports['q'] ?? 0;
  const began = nowMs();
  const deadline = began + CASE_LIMIT_MS;
  try {
    const limit = Math.ceil((budget + SENDER_SLACK) / connections);
    await Promise.all(Array.from({ length: connections }, () => push(port, limit, deadline)));
    // Each upstream connection ends with the FIN of the forwarder's half-close; a sender that
    // connected after the budget was used up was refused at accept and has none.
    const stoppedAll = await waitUntil(() => target.ended() >= target.opened(), deadline);
    const elapsed = nowMs() - began;
    const left = await forwarder.stop();
    return {
      budget,
      connections,
      opened: target.opened(),
      received: target.received(),
      paid: budget - (left['alice'] ?? budget),
      gbps: gbps(target.received(), elapsed),
      stoppedAll,
    };
  } finally {
    // A no-op once stopped above; stops it when a case failed half-way.
    await forwarder.stop();
    target.close();
  }
}

async function overrun(): Promise<void> {
  progress(
    `overrun: budgets ${BUDGETS.map((b) => `${b / MIB} MiB`).join(', ')} x ${CONNECTIONS.join(' and ')} connections, ${OVERRUN_REPEATS} runs each`,
  );
  const rows: string[][] = [];
  for (const budget of BUDGETS) {
    for (const connections of CONNECTIONS) {
      const runs: OverrunFigures[] = [];
      for (let i = 0; i < OVERRUN_REPEATS; i++) runs.push(await overrunCase(budget, connections));
      // The worst run of each figure: the bound is a claim about every connection.
      const worst = (pick: (run: OverrunFigures) => number): number => Math.max(...runs.map(pick));
      const perConn = worst((run) => (run.received - budget) / Math.max(1, run.opened));
      const paidPerConn = worst((run) => (run.paid - budget) / Math.max(1, run.opened));
      const lost = worst((run) => run.paid - run.received);
      const stoppedAll = runs.every((run) => run.stoppedAll);
      if (!stoppedAll || paidPerConn > CHUNK || perConn > CHUNK)
        failures.push('overrun past bound');
      if (lost > 0) failures.push('paid bytes not delivered');
      rows.push([
        `${budget / MIB} MiB`,
        runs.map((run) => `${run.opened}/${connections}`).join(' '),
        `${median(runs.map((run) => run.gbps)).toFixed(2)} Gbit/s`,
        String(Math.round(perConn)),
        String(Math.round(paidPerConn)),
        `${CHUNK / KIB} KiB`,
        String(lost),
        stoppedAll ? 'yes' : 'NO',
      ]);
    }
  }
  printTable(
    `2. Enforcement overrun past the owner budget, per forwarded connection, worst of ${OVERRUN_REPEATS} runs (one TCP rule, forwarder in its own process)`,
    [
      'budget',
      'forwarded/conns',
      'rate to target',
      'received over',
      'paid over',
      'bound',
      'paid, not received',
      'all stopped',
    ],
    rows,
  );
  console.log(
    'received over = (bytes the target received - budget) / forwarded connections; paid over: the same from the budget the forwarder debited; senders refused at accept (budget already used up) are not forwarded',
  );
}

/** Time for one connection to move METER_TRANSFER bytes to the target through `port`. */
async function transfer(port: number, target: { received: () => number }): Promise<number> {
  const start = nowMs();
  const from = target.received();
  const deadline = start + CASE_LIMIT_MS * 2;
  await push(port, METER_TRANSFER, deadline);
  await waitUntil(() => target.received() - from >= METER_TRANSFER, deadline);
  const moved = target.received() - from;
  if (moved < METER_TRANSFER) failures.push('wrong result');
  return gbps(moved, nowMs() - start);
}

async function meteringCost(): Promise<void> {
  progress(`metering: ${METER_TRANSFER / MIB} MiB per transfer, ${METER_ROUNDS} rounds`);
  const target = await sink();
  const forwarder = await startForwarder(
    {
      metered: { owner: 'alice', port: target.port },
      plain: { owner: 'bob', port: target.port },
    },
    { alice: UNREACHED_BUDGET },
  );
  const rates = { metered: [] as number[], plain: [] as number[] };
  try {
    // Interleaved, so load from other work on the machine hits both alike.
    for (let round = 0; round < METER_ROUNDS; round++) {
      rates.plain.push(await transfer(forwarder.ports['plain'] ?? 0, target));
      rates.metered.push(await transfer(forwarder.ports['metered'] ?? 0, target));
    }
  } finally {
    await forwarder.stop();
    target.close();
  }
  const plain = median(rates.plain);
  const metered = median(rates.metered);
  printTable(
    `3. Metering cost: one TCP connection moving ${METER_TRANSFER / MIB} MiB, median of ${METER_ROUNDS}`,
    ['rule', 'throughput', 'metered / unbudgeted'],
    [
      [
        'owner with a budget it never reaches',
        `${metered.toFixed(2)} Gbit/s`,
        formatRatio(metered / plain),
      ],
      ['owner without a budget', `${plain.toFixed(2)} Gbit/s`, ''],
    ],
  );
}

try {
  accounting();
  await overrun();
  await meteringCost();
} finally {
  killChildren();
  dirs.cleanup();
}
if (failures.length > 0) console.error(`wrong results: ${[...new Set(failures)].join(', ')}`);
process.exitCode = failures.length > 0 ? 1 : 0;
