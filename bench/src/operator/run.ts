/**
 * The operator API benchmark's entry point (`node bench/dist/operator/run.js [--quick]`): builds
 * a real store with 10,000 rules in a temporary data dir, starts the real `portunus-server serve`
 * and a bare fastify app as two separate processes on loopback, and drives both from this process
 * with a keep-alive load generator: GET /v1/rules (bearer) against a bare route serving the same
 * body, GET /v1/users/me against a bare small GET, and POST /v1/grants against a bare POST echo.
 * Prints every route's figures, the ratios ours / bare as a cost, and the issue's goal (the
 * authenticated read path within 2x of the bare route). Timings are reported, never asserted: the
 * exit code is 0 whether or not the goal is met, 1 when a section fails (a server that will not
 * start, a wrong answer, a missing route), 2 on a usage error. Both servers are stopped and the
 * directory removed at the end, on failure, and on Ctrl-C.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { SERVER_VERSION } from '@portunus/server';
import { tempDirs } from '@portunus/test-support';

import { formatInt, formatSeconds, nowMs, printGoals, progress } from '../store/report.js';
import { operatorBenchConfig } from './config.js';
import { ADMIN_ID, buildOperatorStore, type OperatorStore } from './fixtures.js';
import { client, fetchOnce, type Client } from './load.js';
import { stats } from './measure.js';
import { killServers } from './processes.js';
import { formatBytes, printComparisons, printSides, readMetric } from './report.js';
import { bearer, runSections } from './sections.js';
import {
  startBareServer,
  startRealServer,
  type RealServer,
  type RunningServer,
} from './servers.js';

const USAGE = 'usage: node bench/dist/operator/run.js [--quick]';

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
const config = operatorBenchConfig(args.includes('--quick'));

const dirs = tempDirs();
const workDir = dirs.make('portunus-bench-operator-');
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: killing the servers and removing ${workDir}`);
    killServers();
    dirs.cleanup();
    process.exit(130);
  });
}
const servers: RunningServer[] = [];

function printMachine(): void {
  const cpus = os.cpus();
  console.log(`Portunus operator API benchmark${config.quick ? ' (--quick)' : ''}`);
  console.log(
    `machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown cpu'}), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}`,
  );
  console.log(
    `node ${process.version}, portunus-server ${SERVER_VERSION}, data in ${workDir}; servers and ` +
      'load generator share the machine',
  );
  console.log(
    `load: ${config.concurrency} requests in flight over keep-alive connections (Node http), ` +
      `${config.rounds} round(s) per route, each <= ${formatSeconds(config.measureMs)} and <= ` +
      `${config.measureRequests.toLocaleString('en-US')} requests after a warm-up of <= ` +
      formatSeconds(config.warmupMs),
  );
}

/** Checks the real server's answers once before anything is measured; returns the rules body. */
async function checkRealServer(
  ours: Client,
  store: OperatorStore,
): Promise<{ rulesBody: string | undefined; notes: string[] }> {
  const timeoutMs = config.requestTimeoutMs;
  const notes: string[] = [];
  for (const [what, token] of [
    ['API credential', store.token],
    ['operator_token', store.operatorToken],
  ] as const) {
    const me = await fetchOnce(
      ours,
      { method: 'GET', path: '/v1/users/me', headers: bearer(token), expectStatus: 200 },
      timeoutMs,
    );
    if (me.status !== 200) {
      throw new Error(`GET /v1/users/me with the ${what} answered ${me.status}: ${me.text}`);
    }
    const userId = (JSON.parse(me.text) as { user_id?: unknown }).user_id;
    const expected = token === store.token ? ADMIN_ID : '_legacy';
    if (userId !== expected) throw new Error(`the ${what} authenticated as ${String(userId)}`);
  }
  const rules = await fetchOnce(
    ours,
    { method: 'GET', path: '/v1/rules', headers: bearer(store.token), expectStatus: 200 },
    timeoutMs,
  );
  if (rules.status !== 200) {
    notes.push(
      `GET /v1/rules answered ${rules.status} (${rules.text.slice(0, 200)}): the route is not ` +
        'there in this build, so section 1 was not measured.',
    );
    return { rulesBody: undefined, notes };
  }
  const parsed = JSON.parse(rules.text) as unknown;
  if (!Array.isArray(parsed) || parsed.length !== store.rules) {
    throw new Error(
      `GET /v1/rules returned ${Array.isArray(parsed) ? `${parsed.length} rules` : 'no array'}, ` +
        `expected ${store.rules}`,
    );
  }
  notes.push(
    `1: GET /v1/rules answers ${store.rules.toLocaleString('en-US')} rules in ` +
      `${formatBytes(Buffer.byteLength(rules.text))} (one rule: ${JSON.stringify(parsed[0])}).`,
  );
  return { rulesBody: rules.text, notes };
}

async function main(): Promise<number> {
  const started = nowMs();
  printMachine();
  const store = buildOperatorStore(path.join(workDir, 'data'), config);
  progress('starting portunus-server serve');
  const real: RealServer = await startRealServer(store.dataDir, workDir, config);
  servers.push(real);
  const ours = client(real.target, config.concurrency);
  const { rulesBody, notes } = await checkRealServer(ours, store);

  const payloadFile = path.join(workDir, 'rules.json');
  fs.writeFileSync(payloadFile, rulesBody ?? '[]');
  progress('starting the bare fastify server');
  const bare = await startBareServer(payloadFile, workDir, config);
  servers.push(bare);
  const baseline = client(bare.target, config.concurrency);
  console.log(
    `servers: portunus-server pid ${real.pid} on ${real.target.host}:${real.target.port}, ` +
      `bare fastify ${bare.fastifyVersion} pid ${bare.pid} on ${bare.target.host}:${bare.target.port}`,
  );

  const out = await runSections({
    config,
    store,
    real,
    ours,
    bare,
    baseline,
    rulesAvailable: rulesBody !== undefined,
  });

  const metrics = await fetchOnce(
    client(real.metrics, 1),
    { method: 'GET', path: '/metrics', expectStatus: 200 },
    config.requestTimeoutMs,
  );
  const allowed = readMetric(
    metrics.text,
    'portunus_operator_requests_total{outcome="allow",reason="ok"}',
  );
  const drops = readMetric(metrics.text, 'portunus_audit_buffer_drops_total');
  notes.push(
    ...out.notes,
    `server metrics at the end: ${formatInt(allowed)} allowed protected requests, ` +
      `${formatInt(drops)} audit records dropped (queue full).`,
  );

  printSides(out.results.map((result) => ({ result, stats: stats(result) })));
  printComparisons(
    'Ours / bare as a cost (time per request = 1 / throughput; > 1.00x means ours is slower)',
    out.comparisons,
  );
  console.log('\nNotes');
  for (const note of notes) console.log(`  ${note}`);
  printGoals(out.goals);
  console.log(
    `\ntotal ${formatSeconds(nowMs() - started)} (store build ${formatSeconds(store.buildMs)}, ` +
      `${(store.bytes / 1e6).toFixed(1)} MB); ratios are ours / bare from the same run`,
  );
  // A missing GET /v1/rules is a section that could not run.
  return rulesBody === undefined ? 1 : 0;
}

let code: number;
try {
  code = await main();
} catch (error) {
  console.error(error);
  code = 1;
} finally {
  for (const server of servers.reverse()) {
    try {
      await server.process.stop();
    } catch (error) {
      console.error(error);
    }
  }
  killServers();
  dirs.cleanup();
}
process.exit(code);
