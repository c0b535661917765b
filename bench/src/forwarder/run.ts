/**
 * The data-plane benchmark's entry point (`node bench/dist/forwarder/run.js [--quick]
 * [--rounds N] [--only tcp,http,udp,mem]`): measures the Portunus forwarder (packages/forwarder,
 * in its own process as the edge client runs it) beside direct loopback, socat and haproxy
 * (nbthread 1, tcp mode, no splice) in the same run, and prints every figure with the ratio
 * forwarder / baseline and the goals as PASS or MISS. Installs iperf3, wrk, socat,
 * haproxy and nginx-light with apt-get when they are missing (as root), and skips a side with a
 * line when its tool is not there. Timings are reported, never asserted: the exit code is 0
 * whether or not a goal is met, 1 when the benchmark itself breaks, 2 on a usage error. Every
 * child is stopped, and the work directory removed, at the end, on failure and on Ctrl-C.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { formatInt, formatSeconds, nowMs, printTable, progress } from '../store/report.js';
import { freeTcpUdpPort, killChildren, type Child } from './children.js';
import { forwarderBenchConfig } from './config.js';
import { Results, type Samples } from './measure.js';
import {
  connectionRate,
  idleMemory,
  tcpThroughput,
  udpRate,
  type MemoryFigure,
  type Side,
} from './sections.js';
import {
  startForwarder,
  startHaproxy,
  startIperfServer,
  startNginx,
  startNodeHttpTarget,
  startSocat,
  type Context,
} from './sides.js';
import { ensureTools, toolVersion } from './tools.js';

const USAGE =
  'usage: node bench/dist/forwarder/run.js [--quick] [--rounds N] [--only tcp,http,udp,mem]';
const SECTIONS = ['tcp', 'http', 'udp', 'mem'] as const;
type Section = (typeof SECTIONS)[number];

function parseArgs(argv: readonly string[]): { quick: boolean; rounds?: number; only: Section[] } {
  let quick = false;
  let rounds: number | undefined;
  let only: Section[] = [...SECTIONS];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    if (arg === '--quick') quick = true;
    else if (arg === '--rounds') {
      rounds = Number(argv[++index]);
      if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error('bad --rounds');
    } else if (arg === '--only') {
      const list = (argv[++index] ?? '').split(',');
      if (!list.every((name) => (SECTIONS as readonly string[]).includes(name))) {
        throw new Error('bad --only');
      }
      only = list as Section[];
    } else throw new Error(`unknown argument ${arg ?? ''}`);
  }
  return { quick, ...(rounds === undefined ? {} : { rounds }), only };
}

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
let parsedArgs: ReturnType<typeof parseArgs>;
try {
  parsedArgs = parseArgs(argv);
} catch (error) {
  console.error(`${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
const config = forwarderBenchConfig(parsedArgs.quick, parsedArgs.rounds);
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-bench-forwarder-'));
const cleanupDir = (): void => {
  fs.rmSync(workDir, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: killing the children and removing ${workDir}`);
    killChildren();
    cleanupDir();
    process.exit(130);
  });
}
const children: Child[] = [];

const fmt = (value: number, digits = 2): string =>
  Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
const range = (s: Samples, digits = 2): string =>
  s.values.length > 1 ? ` (${fmt(s.min, digits)}..${fmt(s.max, digits)})` : '';
const ratio = (ours: number, base: number): string =>
  Number.isFinite(ours) && Number.isFinite(base) && base > 0 ? `${(ours / base).toFixed(2)}x` : '';
const pct = (value: number): string => (Number.isFinite(value) ? `${Math.round(value)}` : '');

async function printMachine(ctx: Context): Promise<void> {
  const cpus = os.cpus();
  console.log(`Portunus data-plane (forwarder) benchmark${config.quick ? ' (--quick)' : ''}`);
  console.log(
    `date ${new Date().toISOString()}; machine: ${cpus.length} cores ` +
      `(${cpus[0]?.model.trim() ?? 'unknown cpu'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `${os.platform()} ${os.release()}; node ${process.version}`,
  );
  const versions: string[] = [];
  const { tools } = ctx;
  if (tools.iperf3) versions.push(await toolVersion(tools.iperf3, ['--version'], workDir));
  if (tools.wrk) versions.push((await toolVersion(tools.wrk, ['--version'], workDir)).slice(0, 30));
  if (tools.socat) {
    const text = await toolVersion(tools.socat, ['-V'], workDir, /version/);
    versions.push(text);
  }
  if (tools.haproxy) versions.push(await toolVersion(tools.haproxy, ['-v'], workDir));
  if (tools.nginx) versions.push(await toolVersion(tools.nginx, ['-v'], workDir));
  console.log(`tools: ${versions.join('; ')}`);
  console.log(
    `${config.rounds} round(s), sides interleaved; load generators, forwarders and targets share ` +
      'the machine. Ratios are forwarder / baseline throughput (1.00x = as fast).',
  );
}

async function main(): Promise<number> {
  const started = nowMs();
  const { tools, notes: toolNotes } = await ensureTools(workDir);
  const ctx: Context = { config, tools, dir: workDir };
  await printMachine(ctx);
  const notes: string[] = [...toolNotes];
  const results = new Results();
  const skip = (what: string, tool: string): void => {
    notes.push(`${what}: skipped, ${tool} is not installed and could not be installed.`);
  };
  const want = (section: Section): boolean => parsedArgs.only.includes(section);

  // Targets.
  const iperf = tools.iperf3 ? await startIperfServer(ctx) : undefined;
  if (iperf) children.push(iperf.child);
  let http: { port: number; what: string } | undefined;
  if (want('http')) {
    const target = tools.nginx ? await startNginx(ctx) : await startNodeHttpTarget(ctx);
    children.push(target.child);
    http = {
      port: target.port,
      what: tools.nginx ? 'nginx (1 worker)' : 'a node:http server (nginx missing)',
    };
  }

  // The sides of sections 1-3: one forwarder process holding every rule, one haproxy with a
  // listen per target, and one socat per listener.
  const rules: Parameters<typeof startForwarder>[2][number][] = [];
  const haproxyTargets: number[] = [];
  if (iperf) {
    rules.push({ ruleId: 'iperf', protocol: 'tcp', targetPort: iperf.port });
    rules.push({ ruleId: 'udp-ctl', protocol: 'tcp', targetPort: iperf.port });
    rules.push({
      ruleId: 'udp',
      protocol: 'udp',
      targetPort: iperf.port,
      listenPortFrom: 'udp-ctl',
    });
    haproxyTargets.push(iperf.port);
  }
  if (http) {
    rules.push({ ruleId: 'http', protocol: 'tcp', targetPort: http.port });
    haproxyTargets.push(http.port);
  }
  const fwd = rules.length > 0 ? await startForwarder(ctx, 'main', rules) : undefined;
  if (fwd) children.push(fwd.child);
  const fwdPid = fwd?.child.commandPid();
  const haproxy =
    tools.haproxy && haproxyTargets.length > 0
      ? await startHaproxy(ctx, 'main', haproxyTargets)
      : undefined;
  if (haproxy) children.push(haproxy.child);
  const haproxyPid = haproxy?.child.commandPid();
  if (!tools.haproxy) skip('haproxy baseline', 'haproxy');
  if (!tools.socat) skip('socat baseline', 'socat');

  const socatFor = async (
    proto: 'tcp' | 'udp',
    listen: number,
    target: number,
  ): Promise<number> => {
    const running = await startSocat(ctx, proto, listen, target);
    children.push(running.child);
    return running.child.commandPid() ?? 0;
  };

  const { freeTcpPort } = await import('./children.js');
  if (want('tcp')) {
    if (!iperf || !fwd) skip('section 1 (TCP throughput)', 'iperf3');
    else {
      const sides: Side[] = [{ name: 'direct', port: iperf.port }];
      if (tools.socat) {
        const port = await freeTcpPort();
        sides.push({ name: 'socat', port, pid: await socatFor('tcp', port, iperf.port) });
      }
      if (haproxy) sides.push({ name: 'haproxy', port: haproxy.ports[0] ?? 0, pid: haproxyPid });
      sides.push({ name: 'portunus', port: fwd.ports['iperf'] ?? 0, pid: fwdPid });
      await tcpThroughput(ctx, sides, results);
    }
  }
  if (want('http')) {
    if (!tools.wrk) skip('section 2 (connection rate)', 'wrk');
    else if (http && fwd) {
      const sides: Side[] = [{ name: 'direct', port: http.port }];
      if (tools.socat) {
        const port = await freeTcpPort();
        sides.push({ name: 'socat', port, pid: await socatFor('tcp', port, http.port) });
      }
      if (haproxy) {
        sides.push({ name: 'haproxy', port: haproxy.ports.at(-1) ?? 0, pid: haproxyPid });
      }
      sides.push({ name: 'portunus', port: fwd.ports['http'] ?? 0, pid: fwdPid });
      notes.push(`HTTP target: ${http.what}, body "hello\\n".`);
      await connectionRate(ctx, sides, results, notes);
    }
  }
  if (want('udp')) {
    if (!iperf || !fwd) skip('section 3 (UDP)', 'iperf3');
    else {
      const sides: Side[] = [{ name: 'direct', port: iperf.port }];
      if (tools.socat) {
        // iperf3's TCP control connection needs a TCP twin on the same port.
        const port = await freeTcpUdpPort();
        await socatFor('tcp', port, iperf.port);
        sides.push({ name: 'socat', port, pid: await socatFor('udp', port, iperf.port) });
      }
      sides.push({ name: 'portunus', port: fwd.ports['udp'] ?? 0, pid: fwdPid });
      notes.push('UDP: haproxy has no UDP proxy, so it is not a side of section 3.');
      await udpRate(ctx, sides, results);
    }
  }
  // Sections 1-3 are done: their processes would only add noise to the memory section.
  for (const child of children.splice(0).reverse()) await child.stop();

  let memory: MemoryFigure[] = [];
  if (want('mem')) memory = await idleMemory(ctx, notes);

  printReport(results, memory, notes);
  console.log(`\ntotal ${formatSeconds(nowMs() - started)}`);
  return 0;
}

function printReport(results: Results, memory: readonly MemoryFigure[], notes: string[]): void {
  const sideNames = ['direct', 'socat', 'haproxy', 'portunus'];
  const goals: { what: string; measured: string; target: string; met: boolean }[] = [];
  const get = (key: string): Samples | undefined =>
    results.has(key) ? results.get(key) : undefined;
  const versus = (key: (side: string) => string): string[] => {
    const ours = get(key('portunus'))?.median ?? Number.NaN;
    return ['direct', 'socat', 'haproxy'].map((side) =>
      ratio(ours, get(key(side))?.median ?? Number.NaN),
    );
  };

  if (get('tcp/portunus/P1')) {
    const rows = sideNames.flatMap((side) => {
      const one = get(`tcp/${side}/P1`);
      const many = get(`tcp/${side}/P${config.streams}`);
      if (!one || !many) return [];
      return [
        [
          side,
          `${fmt(one.median)}${range(one)}`,
          side === 'direct' ? '' : pct(one.cpuMedian),
          `${fmt(many.median)}${range(many)}`,
          side === 'direct' ? '' : pct(many.cpuMedian),
        ],
      ];
    });
    printTable(
      `1. TCP throughput, iperf3 -t ${config.iperfSeconds}, Gbit/s (median of ${config.rounds})`,
      ['side', '1 stream', 'fwd CPU %', `${config.streams} streams`, 'fwd CPU %'],
      rows,
    );
    printTable(
      '   portunus / baseline',
      ['measurement', 'vs direct', 'vs socat', 'vs haproxy'],
      [
        ['1 stream', ...versus((side) => `tcp/${side}/P1`)],
        [`${config.streams} streams`, ...versus((side) => `tcp/${side}/P${config.streams}`)],
      ],
    );
    const ours = get('tcp/portunus/P1')?.median ?? Number.NaN;
    const base = get('tcp/haproxy/P1')?.median ?? Number.NaN;
    goals.push({
      what: 'single-stream throughput vs haproxy userspace',
      measured: Number.isFinite(base) ? ratio(ours, base) : 'no haproxy',
      target: '>= 1.00x',
      met: ours / base >= 1,
    });
  }
  if (get('http/portunus/close')) {
    const rows = sideNames.flatMap((side) => {
      const ka = get(`http/${side}/keepalive`);
      const close = get(`http/${side}/close`);
      if (!ka || !close) return [];
      return [
        [
          side,
          `${formatInt(ka.median)}${range(ka, 0)}`,
          fmt(get(`http/${side}/keepalive/p99`)?.median ?? Number.NaN),
          side === 'direct' ? '' : pct(ka.cpuMedian),
          `${formatInt(close.median)}${range(close, 0)}`,
          fmt(get(`http/${side}/close/p99`)?.median ?? Number.NaN),
          side === 'direct' ? '' : pct(close.cpuMedian),
        ],
      ];
    });
    printTable(
      `2. HTTP through each side, wrk -c ${config.wrkConnections} -t ${config.wrkThreads} ` +
        `-d ${config.wrkSeconds}s (median of ${config.rounds})`,
      [
        'side',
        'keep-alive req/s',
        'p99 ms',
        'fwd CPU %',
        'close req/s (= conn/s)',
        'p99 ms',
        'fwd CPU %',
      ],
      rows,
    );
    printTable(
      '   portunus / baseline',
      ['measurement', 'vs direct', 'vs socat', 'vs haproxy'],
      [
        ['keep-alive req/s', ...versus((side) => `http/${side}/keepalive`)],
        ['Connection: close req/s', ...versus((side) => `http/${side}/close`)],
      ],
    );
    const ours = get('http/portunus/close')?.median ?? Number.NaN;
    const base = get('http/haproxy/close')?.median ?? Number.NaN;
    goals.push({
      what: 'new connections/s vs haproxy',
      measured: Number.isFinite(base) ? ratio(ours, base) : 'no haproxy',
      target: '>= 0.50x',
      met: ours / base >= 0.5,
    });
  }
  if (get('udp/portunus/best')) {
    const sides = ['direct', 'socat', 'portunus'].filter((side) => get(`udp/${side}/best`));
    const rows = config.udpSteps.map((pps) => [
      formatInt(pps),
      ...sides.map((side) => {
        const loss = get(`udp/${side}/${pps}/loss`);
        if (!loss) return '-';
        const cpu = side === 'direct' ? '' : ` / ${pct(loss.cpuMedian)} %`;
        return `${fmt(loss.median)}${cpu}`;
      }),
    ]);
    rows.push([
      'highest step < 1 %',
      ...sides.map((side) => formatInt(get(`udp/${side}/best`)?.median ?? Number.NaN)),
    ]);
    printTable(
      `3. UDP ${config.udpPayloadBytes}-byte datagrams, iperf3 -u, ${config.udpStepSeconds} s per ` +
        'step: loss % / fwd CPU % (a side stops after ' +
        `${config.udpFailStreak} failed steps in a row)`,
      ['offered pps', ...sides],
      rows,
    );
    const ours = get('udp/portunus/best')?.median ?? 0;
    printTable(
      '   portunus / baseline',
      ['measurement', 'vs direct', 'vs socat', 'vs haproxy'],
      [
        [
          'highest step with < 1 % loss',
          ...['direct', 'socat'].map((side) =>
            ratio(ours, get(`udp/${side}/best`)?.median ?? Number.NaN),
          ),
          'n/a (no UDP)',
        ],
      ],
    );
    goals.push({
      what: `UDP ${config.udpPayloadBytes} B datagrams/s at < 1 % loss`,
      measured: formatInt(ours),
      target: '>= 45,000',
      met: ours >= 45_000,
    });
  }
  if (memory.length > 0) {
    printTable(
      '4. RSS with idle proxied connections (client + upstream socket each; lower is better)',
      [
        'side',
        'connections',
        'RSS base MiB',
        'RSS loaded MiB',
        'KiB per connection',
        'JS heap MiB',
      ],
      memory.map((m) => [
        m.side,
        formatInt(m.connections),
        fmt(m.baseRss / 2 ** 20, 1),
        fmt(m.loadedRss / 2 ** 20, 1),
        fmt(m.bytesPerConnection / 1024),
        m.heapUsed === undefined ? '' : fmt(m.heapUsed / 2 ** 20, 1),
      ]),
    );
    const ours = memory.find((m) => m.side === 'portunus');
    const base = memory.find((m) => m.side === 'haproxy');
    if (ours && base) {
      notes.push(
        `memory: portunus uses ${ratio(ours.bytesPerConnection, base.bytesPerConnection)} ` +
          'the RSS per idle connection of haproxy (a cost: > 1.00x is more memory); direct has no ' +
          'proxy process and socat forks one process per connection, so neither has a figure.',
      );
    }
    if (ours) {
      goals.push({
        what: 'client (forwarder) memory per idle proxied connection',
        measured: `${fmt(ours.bytesPerConnection / 1024)} KiB`,
        target: '< 10 KiB',
        met: ours.bytesPerConnection < 10 * 1024,
      });
    }
  }
  if (notes.length > 0) {
    console.log('\nNotes');
    for (const note of notes) console.log(`  ${note}`);
  }
  printTable(
    'Goals',
    ['goal', 'measured', 'target', 'result'],
    goals.map((goal) => [goal.what, goal.measured, goal.target, goal.met ? 'PASS' : 'MISS']),
  );
}

let code: number;
try {
  code = await main();
} catch (error) {
  console.error(error);
  code = 1;
} finally {
  for (const child of children.reverse()) {
    try {
      await child.stop();
    } catch (error) {
      console.error(error);
    }
  }
  killChildren();
  cleanupDir();
}
process.exit(code);
