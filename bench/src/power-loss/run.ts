/**
 * The long power-loss run (`node bench/dist/power-loss/run.js [--cuts N] [--seed S]
 * [--writers W]`): one store on the losing disk of PowerLossDisk (packages/test-support), cut N
 * times at seeded random points while W writers have requests in flight. After each cut the disk
 * is fscked and remounted, serve boots on it, every write acknowledged so far (across all cuts)
 * is checked through the API, the server is stopped and `PRAGMA integrity_check` must say ok.
 * Prints how many acknowledged writes were checked and how many were lost (must be 0). Exit 0
 * when nothing was lost, 1 on a loss or a failed step, 2 on a usage error; skips (exit 0, with
 * the reason) when not root or FUSE/loop are missing. Owns its processes, mounts and temp dir;
 * must not depend on product internals beyond the built server binary.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';

import {
  PowerLossDisk,
  ProcessGroup,
  SERVER_BIN,
  powerLossUnsupportedReason,
  selfCheck,
  tempDirs,
  type RunningProcess,
} from '@portunus/test-support';

import { Ledger, prng, type Api } from './workload.js';

const USAGE = 'usage: node bench/dist/power-loss/run.js [--cuts N] [--seed S] [--writers W]';
const STEP_MS = 60_000;

function option(name: string, fallback: number): number {
  const args = process.argv.slice(2);
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} needs a positive integer\n${USAGE}`);
    process.exit(2);
  }
  return value;
}

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const cuts = option('--cuts', 10);
const seed = option('--seed', 42);
const writers = option('--writers', 4);

const unsupported = powerLossUnsupportedReason();
if (unsupported !== undefined) {
  console.log(`power-loss: skipped: ${unsupported}`);
  process.exit(0);
}

const processes = new ProcessGroup();
const dirs = tempDirs();
let disk: PowerLossDisk | undefined;

async function cleanup(): Promise<void> {
  await processes.killAll();
  await disk?.close();
  dirs.cleanup();
}
process.once('SIGINT', () => {
  void cleanup().finally(() => process.exit(130));
});

async function serve(dataDir: string): Promise<RunningProcess> {
  const server = processes.node(SERVER_BIN, [
    '--data-dir',
    dataDir,
    'serve',
    '--control-listen',
    '127.0.0.1:0',
    '--operator-http-listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
  ]);
  await server.waitForEvent('server.listening', { timeoutMs: STEP_MS });
  return server;
}

function apiOf(server: RunningProcess, token: string): Api {
  const listening = server.events.find((line) => line.event === 'server.listening');
  const listeners = listening?.['listeners'] as { operator_http: string };
  return { origin: `http://${listeners.operator_http}`, token };
}

async function stop(server: RunningProcess): Promise<void> {
  server.kill('SIGTERM');
  const code = await server.exited(STEP_MS);
  if (code !== 0) throw new Error(`serve exited ${code}:\n${server.stderr()}`);
}

function integrity(dbFile: string): string {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return String(db.pragma('integrity_check', { simple: true }));
  } finally {
    db.close();
  }
}

async function main(): Promise<number> {
  const started = performance.now();
  // The cut must have teeth before its zero means anything: an unsynced file must not survive.
  const probe = await PowerLossDisk.create(processes, dirs.make('portunus-power-loss-probe-'));
  try {
    const teeth = await selfCheck(probe);
    if (teeth.synced !== 'synced data' || teeth.unsynced === 'unsynced data') {
      throw new Error(`the cut does not drop unflushed writes: ${JSON.stringify(teeth)}`);
    }
    console.log('self-check: fsynced file kept, unsynced file dropped by the cut');
  } finally {
    await probe.close();
  }
  disk = await PowerLossDisk.create(processes, dirs.make('portunus-power-loss-bench-'));
  const dataDir = path.join(disk.mountDir, 'data');
  const token = crypto.randomBytes(32).toString('base64url');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  // The operator writes server.toml, not the server: fsync it (and its directory entries)
  // ourselves, or the first cut takes the token with it and every later request is a 401.
  const toml = fs.openSync(path.join(dataDir, 'server.toml'), 'w', 0o600);
  fs.writeSync(toml, `operator_token = "${token}"\n`);
  fs.fsyncSync(toml);
  fs.closeSync(toml);
  for (const dir of [dataDir, disk.mountDir]) {
    const fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  }
  const random = prng(seed);
  const ledger = new Ledger();
  let lostTotal = 0;
  console.log(`power-loss: ${cuts} cuts, seed ${seed}, ${writers} writers`);

  for (let cut = 1; cut <= cuts; cut++) {
    // Cut at a seeded random point: after this many more acknowledged writes.
    const cutAfter = 20 + Math.floor(random() * 180);
    const server = await serve(dataDir);
    const api = apiOf(server, token);
    const base = ledger.mutations;
    ledger.cutting = false;
    let cutting: Promise<number> | undefined;
    const writer = async (): Promise<void> => {
      while (!ledger.cutting) {
        await ledger.mutate(api, random);
        // startCut() is synchronous: no answer processed after it counts as acknowledged.
        if (ledger.mutations - base >= cutAfter && ledger.startCut()) {
          cutting = disk!.cut().then((dropped) => {
            server.kill('SIGKILL');
            return dropped;
          });
        }
      }
    };
    await Promise.all(Array.from({ length: writers }, writer));
    const droppedPages = await cutting!;
    await server.exited(STEP_MS);
    const report = await disk.restart({ armed: true });
    if (report.fsckCode > 1) throw new Error(`e2fsck failed:\n${report.fsckOutput}`);

    const again = await serve(dataDir);
    const lost = await ledger.verify(apiOf(again, token));
    await stop(again);
    const check = integrity(path.join(dataDir, 'state.db'));
    lostTotal += lost.length;
    console.log(
      `cut ${cut}: ${ledger.mutations - base} acknowledged this round, ${droppedPages} unflushed ` +
        `pages dropped, ${report.writesAfterCut} writes after the cut discarded, ` +
        `${report.flushes} flushes, fsck ${report.fsckCode}, ${ledger.checked} checked, ` +
        `${lost.length} lost, integrity_check ${check}`,
    );
    for (const what of lost.slice(0, 20)) console.log(`  lost: ${what}`);
    if (check !== 'ok') lostTotal++;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `power-loss: ${cuts} cuts, ${ledger.mutations} acknowledged mutations, ${ledger.checked} ` +
      `acknowledged writes checked at the end, ${lostTotal} lost or unclean (must be 0), ${seconds} s`,
  );
  return lostTotal === 0 ? 0 : 1;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  console.error(error);
} finally {
  await cleanup();
}
process.exit(exitCode);
