/**
 * The storage benchmark's entry point (`npm run bench`, or `node bench/dist/store/run.js
 * [--quick]`): prints the machine, runs the four sections (durable appends, envelope pages on
 * the large table, online backup under a concurrent writer, prune + vacuum), each next to raw
 * better-sqlite3 in the same run, then the tables and a summary against the issue's goals. All
 * data lives in one temporary directory on a real disk, removed at the end and on Ctrl-C. Timings
 * are reported, never asserted: the exit code is 0 whether or not a goal is met, 1 when a section
 * fails (a wrong result, a writer that would not start), 2 on a usage error.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import Database from 'better-sqlite3';

import { tempDirs } from '@portunus/test-support';

import { benchAppends } from './appends.js';
import { benchBackup } from './backup.js';
import { benchConfig } from './config.js';
import { benchEnvelope } from './envelope.js';
import { buildLargeStore } from './large-store.js';
import { benchPrune } from './prune.js';
import {
  formatSeconds,
  nowMs,
  printGoals,
  printResults,
  progress,
  type SectionResult,
} from './report.js';
import { killWriters } from './writer.js';

const USAGE = 'usage: node bench/dist/store/run.js [--quick]';
const FILESYSTEMS: Readonly<Record<number, string>> = {
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x2fc12fc1: 'zfs',
  0x01021994: 'tmpfs',
};

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const unknown = args.filter((arg) => arg !== '--quick');
if (unknown.length > 0) {
  console.error(`unknown argument ${unknown.join(' ')}\n${USAGE}`);
  process.exit(2);
}
const config = benchConfig(args.includes('--quick'));

const dirs = tempDirs();
const workDir = dirs.make('portunus-bench-');
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping the writer and removing ${workDir}`);
    killWriters();
    dirs.cleanup();
    process.exit(130);
  });
}

function printMachine(): void {
  const cpus = os.cpus();
  const fsMagic = fs.statfsSync(workDir).type >>> 0;
  const sqlite = new Database(':memory:');
  const version = sqlite.prepare('SELECT sqlite_version()').pluck().get() as string;
  sqlite.close();
  console.log(`Portunus storage benchmark${config.quick ? ' (--quick)' : ''}`);
  console.log(
    `machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown cpu'}), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}`,
  );
  console.log(
    `node ${process.version}, SQLite ${version} (better-sqlite3), data in ${workDir} ` +
      `(${FILESYSTEMS[fsMagic] ?? `fs 0x${fsMagic.toString(16)}`})`,
  );
  console.log(
    `sizes: ${config.rows.toLocaleString('en-US')} audit rows, ${config.singleCommits} single ` +
      `commits and ${(config.batches * 256).toLocaleString('en-US')} batched records per run, ` +
      `${config.rounds} rounds, ${config.querySamples} page queries per kind`,
  );
}

async function main(): Promise<void> {
  const started = nowMs();
  printMachine();
  const appends = await benchAppends(workDir, config);
  printResults('1. Durable audit appends (synchronous=FULL)', appends.rows);

  const large = buildLargeStore(path.join(workDir, 'large'), config.rows, config.buildBatch);
  const envelope = await benchEnvelope(large, config);
  printResults(
    `2. Envelope pages of 100 on ${config.rows.toLocaleString('en-US')} rows`,
    envelope.rows,
  );

  const prune = benchPrune(large, workDir);
  printResults('3. Prune the older half + vacuum', prune.rows);

  const backup = await benchBackup(large, workDir, config);
  printResults(
    '4. Online backup under a concurrent writer (raw = one-step db.backup)',
    backup.rows,
  );
  backup.printBackups();

  const sections: SectionResult[] = [appends, envelope, prune, backup];
  console.log('\nNotes');
  for (const note of sections.flatMap((section) => section.notes)) console.log(`  ${note}`);
  printGoals(sections.flatMap((section) => section.goals));
  console.log(
    `\ntotal ${formatSeconds(nowMs() - started)}; ratios are ours / raw as time per unit of work`,
  );
}

let code = 0;
try {
  await main();
} catch (error) {
  console.error(error);
  code = 1;
} finally {
  killWriters();
  dirs.cleanup();
}
process.exit(code);
