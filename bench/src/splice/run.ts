/**
 * The fast-path benchmark (`node bench/dist/splice/run.js [--quick] [--rounds N]`, docs/fast-path.md):
 * the Portunus forwarder with its splice addon beside haproxy with `option splice-auto` (nbthread
 * matched to the addon's worker threads), direct loopback, and the same forwarder with
 * PORTUNUS_DISABLE_SPLICE=1 (its JavaScript copy), all in one run. Figures: single-stream and
 * 8-stream TCP (iperf3), `Connection: close` HTTP through the edge (wrk against nginx), CPU seconds
 * per GB moved, idle RSS per proxied connection, and the addon's own counters (pairs, pipes made
 * against pipes reused) as the per-connection profile. Medians of interleaved rounds, printed as
 * ratios; goals as PASS or MISS, never asserted. It reuses the data-plane harness of
 * bench/src/forwarder (sides, sections, measure) and copies none of it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { formatInt, formatSeconds, nowMs, printTable, progress } from '../store/report.js';
import { killChildren, type Child } from '../forwarder/children.js';
import { forwarderBenchConfig } from '../forwarder/config.js';
import { Results, type Samples } from '../forwarder/measure.js';
import { connectionRate, idleMemory, tcpThroughput, type Side } from '../forwarder/sections.js';
import {
  askStatus,
  startForwarder,
  startHaproxy,
  startIperfServer,
  startNginx,
  startNodeHttpTarget,
  type Context,
} from '../forwarder/sides.js';
import { ensureTools } from '../forwarder/tools.js';

const USAGE = 'usage: node bench/dist/splice/run.js [--quick] [--rounds N]';
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const roundsAt = argv.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : undefined;
if (
  argv.includes('--help') ||
  (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 1 || rounds > 20))
) {
  console.log(USAGE);
  process.exit(rounds === undefined ? 0 : 2);
}
const config = forwarderBenchConfig(quick, rounds);
/** The addon's worker threads (splice.ts: one per core, at most two); haproxy gets as many. */
const threads = Math.min(2, os.availableParallelism());
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-bench-splice-'));
const children: Child[] = [];
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killChildren();
    fs.rmSync(workDir, { recursive: true, force: true });
    process.exit(130);
  });
}

const fmt = (value: number, digits = 2): string =>
  Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
const ratio = (ours: number, base: number): string =>
  Number.isFinite(ours) && Number.isFinite(base) && base > 0 ? `${(ours / base).toFixed(2)}x` : '';

interface SpliceCounters {
  pairs: number;
  pipes_created: number;
  pipes_reused: number;
  splices: number;
  wakeups: number;
}

async function counters(child: Child): Promise<SpliceCounters | null> {
  const status = await askStatus<{ seq: number; splice: SpliceCounters | null }>(
    child,
    'bench.forwarder_status',
    10_000,
  );
  return status.splice;
}

/** A forwarder process started with PORTUNUS_DISABLE_SPLICE=1 in its environment. */
async function startJsForwarder(
  ctx: Context,
  rules: Parameters<typeof startForwarder>[2],
): Promise<Awaited<ReturnType<typeof startForwarder>>> {
  // Child.start spawns with this process's environment, read at spawn time.
  process.env['PORTUNUS_DISABLE_SPLICE'] = '1';
  try {
    return await startForwarder(ctx, 'js', rules);
  } finally {
    delete process.env['PORTUNUS_DISABLE_SPLICE'];
  }
}

async function main(): Promise<number> {
  const started = nowMs();
  const { tools, notes } = await ensureTools(workDir);
  const ctx: Context = { config, tools, dir: workDir };
  const cpus = os.cpus();
  console.log(`Portunus fast-path (splice) benchmark${quick ? ' (--quick)' : ''}`);
  console.log(
    `date ${new Date().toISOString()}; ${cpus.length} cores (${cpus[0]?.model.trim() ?? '?'}); ` +
      `${os.platform()} ${os.release()}; node ${process.version}; load average ` +
      `${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}; ${config.rounds} interleaved round(s); ` +
      `addon threads ${threads}, haproxy nbthread ${threads} with option splice-auto`,
  );
  if (!tools.iperf3 || !tools.haproxy || !tools.wrk) {
    console.log('iperf3, haproxy and wrk are needed; missing: ' + notes.join(' '));
    return 1;
  }
  const iperf = await startIperfServer(ctx);
  children.push(iperf.child);
  const http = tools.nginx ? await startNginx(ctx) : await startNodeHttpTarget(ctx);
  children.push(http.child);
  const rules = [
    { ruleId: 'iperf', protocol: 'tcp' as const, targetPort: iperf.port },
    { ruleId: 'http', protocol: 'tcp' as const, targetPort: http.port },
  ];
  const fwd = await startForwarder(ctx, 'splice', rules);
  children.push(fwd.child);
  const js = await startJsForwarder(ctx, rules);
  children.push(js.child);
  const haproxy = await startHaproxy(ctx, 'splice', [iperf.port, http.port], 4000, {
    splice: true,
    nbthread: threads,
  });
  children.push(haproxy.child);
  const pid = {
    portunus: fwd.child.commandPid(),
    js: js.child.commandPid(),
    haproxy: haproxy.child.commandPid(),
  };

  const results = new Results();
  await tcpThroughput(
    ctx,
    [
      { name: 'direct', port: iperf.port },
      { name: 'haproxy', port: haproxy.ports[0] ?? 0, pid: pid.haproxy },
      { name: 'portunus', port: fwd.ports['iperf'] ?? 0, pid: pid.portunus },
      { name: 'portunus-js', port: js.ports['iperf'] ?? 0, pid: pid.js },
    ],
    results,
  );
  const beforeHttp = await counters(fwd.child);
  const httpSides: Side[] = [
    { name: 'direct', port: http.port },
    { name: 'haproxy', port: haproxy.ports[1] ?? 0, pid: pid.haproxy },
    { name: 'portunus', port: fwd.ports['http'] ?? 0, pid: pid.portunus },
    { name: 'portunus-js', port: js.ports['http'] ?? 0, pid: pid.js },
  ];
  await connectionRate(ctx, httpSides, results, notes);
  const afterHttp = await counters(fwd.child);
  for (const child of children.splice(0).reverse()) await child.stop();
  const memory = await idleMemory(ctx, notes);

  const sides = ['direct', 'haproxy', 'portunus', 'portunus-js'];
  const get = (key: string): Samples => results.get(key);
  const cpuPerGb = (key: string): number => {
    // CPU % of one core over the run / GB per second moved = CPU seconds per GB.
    const samples = get(key);
    return samples.cpuMedian / 100 / (samples.median / 8);
  };
  const streams = config.streams;
  printTable(
    `TCP, iperf3 -t ${config.iperfSeconds}, Gbit/s (median of ${config.rounds}) and CPU s per GB`,
    ['side', '1 stream', 'CPU s/GB', `${streams} streams`, 'CPU s/GB'],
    sides.map((side) => [
      side,
      fmt(get(`tcp/${side}/P1`).median),
      side === 'direct' ? '' : fmt(cpuPerGb(`tcp/${side}/P1`)),
      fmt(get(`tcp/${side}/P${streams}`).median),
      side === 'direct' ? '' : fmt(cpuPerGb(`tcp/${side}/P${streams}`)),
    ]),
  );
  printTable(
    `HTTP through each side to ${tools.nginx ? 'nginx' : 'node:http'}, wrk -c ` +
      `${config.wrkConnections} -t ${config.wrkThreads} -d ${config.wrkSeconds}s`,
    ['side', 'keep-alive req/s', 'close req/s', 'close p99 ms', 'close CPU %'],
    sides.map((side) => [
      side,
      formatInt(get(`http/${side}/keepalive`).median),
      formatInt(get(`http/${side}/close`).median),
      fmt(get(`http/${side}/close/p99`).median),
      side === 'direct' ? '' : fmt(get(`http/${side}/close`).cpuMedian, 0),
    ]),
  );
  const median = (key: string): number => get(key).median;
  const ours1 = median('tcp/portunus/P1');
  const oursN = median(`tcp/portunus/P${streams}`);
  const oursClose = median('http/portunus/close');
  const goals = [
    ['1 stream vs haproxy splice', ratio(ours1, median('tcp/haproxy/P1')), '>= 1.00x'],
    ['1 stream vs direct loopback', ratio(ours1, median('tcp/direct/P1')), '>= 0.60x'],
    [
      `${streams} streams vs haproxy splice`,
      ratio(oursN, median(`tcp/haproxy/P${streams}`)),
      '>= 1.00x',
    ],
    ['Connection: close vs haproxy', ratio(oursClose, median('http/haproxy/close')), '>= 0.80x'],
    [
      'CPU s/GB, 1 stream, vs haproxy (a cost)',
      ratio(cpuPerGb('tcp/portunus/P1'), cpuPerGb('tcp/haproxy/P1')),
      'reported',
    ],
  ];
  const mine = memory.find((m) => m.side === 'portunus');
  goals.push([
    'idle RSS per proxied connection',
    mine ? `${fmt(mine.bytesPerConnection / 1024)} KiB` : 'n/a',
    '< 10 KiB',
  ]);
  printTable(
    'Goals (portunus = forwarder with the splice addon)',
    ['goal', 'measured', 'target', 'result'],
    goals.map(([what, measured, target]) => {
      const value = Number.parseFloat(measured ?? '');
      const bound = Number.parseFloat((target ?? '').replace(/[^0-9.]/g, ''));
      const met = target?.startsWith('>=')
        ? value >= bound
        : target?.startsWith('<')
          ? value < bound
          : undefined;
      return [
        what ?? '',
        measured ?? '',
        target ?? '',
        met === undefined ? '' : met ? 'PASS' : 'MISS',
      ];
    }),
  );
  if (memory.length > 0) {
    printTable(
      'Idle memory (RSS after a GC, client + upstream socket per connection)',
      ['side', 'connections', 'KiB per connection'],
      memory.map((m) => [m.side, formatInt(m.connections), fmt(m.bytesPerConnection / 1024)]),
    );
  }
  if (beforeHttp && afterHttp) {
    const pairs = afterHttp.pairs - beforeHttp.pairs;
    const made = afterHttp.pipes_created - beforeHttp.pipes_created;
    const reused = afterHttp.pipes_reused - beforeHttp.pipes_reused;
    printTable(
      'Addon counters over the HTTP section (the per-connection profile)',
      ['pairs', 'pipes created', 'pipes reused', 'created per pair', 'splices per pair'],
      [
        [
          formatInt(pairs),
          formatInt(made),
          formatInt(reused),
          fmt(made / Math.max(1, pairs), 4),
          fmt((afterHttp.splices - beforeHttp.splices) / Math.max(1, pairs), 1),
        ],
      ],
    );
  }
  if (notes.length > 0) console.log(`\nNotes\n  ${notes.join('\n  ')}`);
  progress(`total ${formatSeconds(nowMs() - started)}`);
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(error);
} finally {
  for (const child of children.reverse()) await child.stop().catch(() => undefined);
  killChildren();
  fs.rmSync(workDir, { recursive: true, force: true });
}
process.exit(code);
