/**
 * The limits benchmark (`node bench/dist/limits/run.js [--quick]`), two parts, reported and never
 * asserted (bench/README.md, "Limits benchmark"):
 *
 * 1. Cap accuracy: a rule capped at 100 KiB/s, 1 MiB/s and 10 MiB/s in a forwarder process of its
 *    own, driven as hard as the loopback allows: TCP in (a client writes into a sink through the
 *    rule), TCP out (a target writes to a reading client), and UDP in (1,200-byte datagrams sent at
 *    twice the cap). The figure is the steady-state rate over a window that starts after a
 *    warm-up long enough to spend the burst (default burst = one second of the rate), divided by
 *    the cap; the goal is 1.00 +- 0.05.
 * 2. The CPU cost of an uncapped rule: CPU seconds (user + system, /proc) of the forwarder
 *    process per GiB moved through one uncapped TCP rule, this branch against the forwarder of
 *    the wave's base commit (BASE_COMMIT, extracted with `git archive` and built in the same run)
 *    and against a second process of that same base build (the noise floor), the three streams
 *    running at once in every round so load from other work on the shared machine hits all alike.
 *
 * The load generators, sinks and targets run in this process; every child is stopped and the
 * work directory removed at the end. Depends on the bench helpers and @portunus/forwarder's
 * simpleRule only.
 */
import { execFileSync, execSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { simpleRule, type RateLimitSpec, type RuleSpec } from '@portunus/forwarder';

import { Child, cpuMs, killChildren } from '../forwarder/children.js';
import { median, nowMs, printTable, sleep } from '../store/report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..', '..');
const CHILD = path.join(HERE, 'forwarder-child.js');
const BRANCH_FORWARDER = path.join(REPO, 'packages', 'forwarder', 'dist', 'index.js');
/** The base of this wave: the forwarder before caps and source lists existed. */
const BASE_COMMIT = '4331320';

const quick = process.argv.includes('--quick');
/** Skips the cap-accuracy part (for re-measuring the CPU comparison alone). */
const cpuOnly = process.argv.includes('--cpu-only');
const WARMUP_MS = quick ? 1_500 : 2_500;
const WINDOW_MS = quick ? 3_000 : 8_000;
const CPU_ROUNDS = quick ? 2 : 8;
const CPU_BYTES = (quick ? 256 : 512) * 1024 * 1024;
const KIB = 1024;
const MIB = 1024 * 1024;
const RATES = [100 * KIB, 1 * MIB, 10 * MIB];
const DATAGRAM = 1200;

const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as net.AddressInfo).port);
    });
  });

async function startForwarder(
  dir: string,
  modulePath: string,
  rules: RuleSpec[],
): Promise<{ child: Child; port: number }> {
  const child = Child.start({
    name: 'limits-forwarder',
    command: process.execPath,
    args: [CHILD, modulePath, JSON.stringify(rules)],
    dir,
    lifetimeMs: 600_000,
  });
  const port = await child.waitForLine((line) => {
    const parsed = JSON.parse(line) as { ports?: Record<string, number[]> };
    return parsed.ports?.[rules[0]!.ruleId]?.[0];
  }, 15_000);
  return { child, port };
}

function rule(protocol: 'tcp' | 'udp', targetPort: number, caps: RateLimitSpec | null): RuleSpec {
  return simpleRule({
    ruleId: 'bench',
    protocol,
    listenPort: 0,
    targetHost: '127.0.0.1',
    targetPort,
    rateLimit: caps,
  });
}

/**
 * Counts arrivals and, after a warm-up, measures the rate between the first and the last arrival
 * of a window: a capped stream arrives in lumps (a 64 KiB read at 100 KiB/s is 0.64 s of budget),
 * and timing from arrival to arrival keeps a lump at either edge from skewing the figure.
 */
class Meter {
  private total = 0;
  private first: { at: number; total: number } | undefined;
  private last: { at: number; total: number } | undefined;
  private measuring = false;

  add(bytes: number): void {
    this.total += bytes;
    if (!this.measuring) return;
    const at = nowMs();
    if (this.first === undefined) this.first = { at, total: this.total };
    else this.last = { at, total: this.total };
  }

  /** Bytes per second over the window, from the first arrival in it to the last. */
  async steadyRate(warmupMs = WARMUP_MS): Promise<number> {
    await sleep(warmupMs);
    this.measuring = true;
    await sleep(WINDOW_MS);
    this.measuring = false;
    const { first, last } = this;
    if (!first || !last || last.at <= first.at) return Number.NaN;
    return ((last.total - first.total) * 1000) / (last.at - first.at);
  }
}

/** TCP in: one client writes as fast as it may into a sink through the capped rule. */
async function tcpIn(dir: string, cap: number): Promise<number> {
  const meter = new Meter();
  const sink = net.createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      meter.add(chunk.length);
    });
    socket.on('error', () => undefined);
  });
  const forwarder = await startForwarder(dir, BRANCH_FORWARDER, [
    rule('tcp', await listen(sink), { bandwidthInBps: cap }),
  ]);
  const socket = net.connect({ port: forwarder.port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  const chunk = Buffer.alloc(64 * KIB, 1);
  let writing = true;
  const pump = (): void => {
    while (writing && socket.write(chunk));
  };
  socket.on('drain', pump);
  socket.on('connect', pump);
  try {
    return (await meter.steadyRate()) / cap;
  } finally {
    writing = false;
    socket.destroy();
    sink.close();
    await forwarder.child.stop();
  }
}

/** TCP out: the target writes as fast as it may to a client that reads everything. */
async function tcpOut(dir: string, cap: number): Promise<number> {
  const chunk = Buffer.alloc(64 * KIB, 2);
  const source = net.createServer((socket) => {
    socket.on('error', () => undefined);
    const pump = (): void => {
      while (!socket.destroyed && socket.write(chunk));
    };
    socket.on('drain', pump);
    pump();
  });
  const forwarder = await startForwarder(dir, BRANCH_FORWARDER, [
    rule('tcp', await listen(source), { bandwidthOutBps: cap }),
  ]);
  const meter = new Meter();
  const socket = net.connect({ port: forwarder.port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  socket.on('data', (data: Buffer) => {
    meter.add(data.length);
  });
  try {
    return (await meter.steadyRate()) / cap;
  } finally {
    socket.destroy();
    source.close();
    await forwarder.child.stop();
  }
}

/** UDP in: datagrams offered at twice the cap, counted at the target; also the offered ratio. */
async function udpIn(dir: string, cap: number): Promise<{ ratio: number; offered: number }> {
  const target = dgram.createSocket('udp4');
  const meter = new Meter();
  target.on('message', (msg) => {
    meter.add(msg.length);
  });
  await new Promise<void>((resolve) => target.bind(0, '127.0.0.1', resolve));
  const forwarder = await startForwarder(dir, BRANCH_FORWARDER, [
    rule('udp', target.address().port, { bandwidthInBps: cap }),
  ]);
  const sender = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', resolve));
  const payload = Buffer.alloc(DATAGRAM, 3);
  const tickMs = 5;
  // Twice the cap, in whole datagrams per tick (at least one).
  const perTick = Math.max(1, Math.round((2 * cap * tickMs) / 1000 / DATAGRAM));
  let offered = 0;
  const began = nowMs();
  const timer = setInterval(() => {
    for (let i = 0; i < perTick; i++) sender.send(payload, forwarder.port, '127.0.0.1');
    offered += perTick * DATAGRAM;
  }, tickMs);
  try {
    // Offered at 2x, the burst (one second of the cap) drains in about a second when the
    // sender keeps up; a loaded machine slows the sender, so the warm-up is longer here.
    const rate = await meter.steadyRate(2 * WARMUP_MS);
    return { ratio: rate / cap, offered: (offered * 1000) / (nowMs() - began) / cap };
  } finally {
    clearInterval(timer);
    sender.close();
    target.close();
    await forwarder.child.stop();
  }
}

/** Extracts the base commit's core, api, test-support and forwarder, and builds them. */
function buildBase(dir: string): string {
  const base = path.join(dir, 'base');
  fs.mkdirSync(base);
  const packages = ['core', 'api', 'test-support', 'forwarder'];
  execSync(
    `git -C ${JSON.stringify(REPO)} archive ${BASE_COMMIT} tsconfig.base.json ` +
      packages.map((p) => `packages/${p}`).join(' ') +
      ` | tar -x -C ${JSON.stringify(base)}`,
  );
  // Third-party modules from this checkout; the workspace packages from the base commit.
  const modules = path.join(base, 'node_modules');
  fs.mkdirSync(path.join(modules, '@portunus'), { recursive: true });
  for (const entry of fs.readdirSync(path.join(REPO, 'node_modules'))) {
    if (entry === '@portunus' || entry === '.bin') continue;
    fs.symlinkSync(path.join(REPO, 'node_modules', entry), path.join(modules, entry));
  }
  for (const name of packages) {
    fs.symlinkSync(path.join(base, 'packages', name), path.join(modules, '@portunus', name));
  }
  execFileSync(
    process.execPath,
    [
      path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-b',
      path.join(base, 'packages', 'forwarder'),
    ],
    { stdio: 'inherit' },
  );
  return path.join(base, 'packages', 'forwarder', 'dist', 'index.js');
}

/** One forwarder process with an uncapped rule into a sink of its own, and a connection to it. */
async function uncappedStream(dir: string, modulePath: string) {
  const state = { received: 0 };
  const sink = net.createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      state.received += chunk.length;
    });
    socket.on('error', () => undefined);
  });
  const forwarder = await startForwarder(dir, modulePath, [rule('tcp', await listen(sink), null)]);
  const socket = net.connect({ port: forwarder.port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  return { state, sink, forwarder, socket, pid: forwarder.child.commandPid() };
}

/**
 * CPU seconds per GiB of each forwarder moving CPU_BYTES through an uncapped rule, all streams
 * at once: every forwarder meets the same load from the neighbours at the same moments, which a
 * machine shared this heavily does not give rounds run one after another.
 */
async function cpuPerGib(dir: string, modules: readonly string[]): Promise<number[]> {
  const streams = [];
  for (const modulePath of modules) streams.push(await uncappedStream(dir, modulePath));
  try {
    const chunk = Buffer.alloc(256 * KIB, 7);
    const before = streams.map((stream) => cpuMs(stream.pid));
    await Promise.all(
      streams.map(async (stream) => {
        let sent = 0;
        while (sent < CPU_BYTES) {
          sent += chunk.length;
          if (!stream.socket.write(chunk)) {
            await new Promise((resolve) => stream.socket.once('drain', resolve));
          }
        }
        while (stream.state.received < CPU_BYTES) {
          await new Promise((resolve) => setImmediate(resolve));
        }
      }),
    );
    const gib = CPU_BYTES / (1024 * MIB);
    return streams.map((stream, i) => (cpuMs(stream.pid) - before[i]!) / 1000 / gib);
  } finally {
    for (const stream of streams) {
      stream.socket.destroy();
      stream.sink.close();
      await stream.forwarder.child.stop();
    }
  }
}

const label = (rate: number): string =>
  rate >= MIB ? `${rate / MIB} MiB/s` : `${rate / KIB} KiB/s`;

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-bench-limits-'));
  try {
    console.log(
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${os.cpus().length} cores`,
    );
    const rows: string[][] = [];
    for (const rate of cpuOnly ? [] : RATES) {
      const measured = {
        in: await tcpIn(dir, rate),
        out: await tcpOut(dir, rate),
        udp: await udpIn(dir, rate),
      };
      const verdict = (ratio: number): string =>
        `${ratio.toFixed(3)} ${Math.abs(ratio - 1) <= 0.05 ? 'met' : 'MISSED'}`;
      rows.push([
        label(rate),
        verdict(measured.in),
        verdict(measured.out),
        verdict(measured.udp.ratio),
        `${measured.udp.offered.toFixed(2)}x`,
      ]);
    }
    if (!cpuOnly)
      printTable(
        `cap accuracy: steady-state rate / cap over ${WINDOW_MS / 1000} s after ${WARMUP_MS / 1000} s ` +
          'of warm-up (goal 1.00 +- 0.05)',
        ['cap', 'TCP in', 'TCP out', 'UDP in', 'UDP offered'],
        rows,
      );

    const baseForwarder = buildBase(dir);
    // 'base again' runs the very same build as 'base': how far apart two identical forwarders
    // land on this machine is the noise floor the branch's ratio must be read against.
    const contenders = [
      { name: `base ${BASE_COMMIT}`, module: baseForwarder },
      { name: 'this branch', module: BRANCH_FORWARDER },
      { name: `base ${BASE_COMMIT} again`, module: baseForwarder },
    ];
    const cpu = contenders.map(() => [] as number[]);
    for (let round = 0; round < CPU_ROUNDS; round++) {
      const result = await cpuPerGib(
        dir,
        contenders.map((c) => c.module),
      );
      result.forEach((value, index) => cpu[index]!.push(value));
    }
    const baseMedian = median(cpu[0]!);
    // The least CPU a round took: what the code costs when the neighbours' load interfered least.
    const baseMin = Math.min(...cpu[0]!);
    printTable(
      `uncapped TCP rule: forwarder CPU seconds per GiB, ${CPU_BYTES / MIB} MiB x ${CPU_ROUNDS} ` +
        `rounds, the three streams at once; goal: branch / base <= 1.05`,
      ['forwarder', 'median', 'vs base', 'min', 'vs base', 'rounds (CPU s/GiB)'],
      contenders.map((contender, index) => {
        const rounds = cpu[index]!;
        return [
          contender.name,
          median(rounds).toFixed(3),
          `${(median(rounds) / baseMedian).toFixed(3)}x`,
          Math.min(...rounds).toFixed(3),
          `${(Math.min(...rounds) / baseMin).toFixed(3)}x`,
          rounds.map((c) => c.toFixed(2)).join(' '),
        ];
      }),
    );
  } finally {
    killChildren();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
