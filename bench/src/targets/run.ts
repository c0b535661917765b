/**
 * The targets benchmark (`node bench/dist/targets/run.js [--quick]`): what multi-target rules,
 * DNS targets and PROXY protocol cost in the data plane, each against a baseline measured in the
 * same run. The forwarder runs in its own process (bench/src/forwarder/forwarder-process.ts, as
 * the edge client runs it); targets, the DNS server (test-support's FakeDnsServer) and the load
 * run in this one. Sections:
 *   1. single-stream throughput: a 2-target rule with PROXY v2 vs a plain 1-target rule;
 *   2. DNS overhead per new connection: a cached name target vs an IP target;
 *   3. failover: the active target is killed under steady connection load — connections failed,
 *      for how long, and when traffic returns after it comes back — passive health vs a 1 s probe.
 * Figures are reported, never asserted: exit 0 whether or not a goal is met, 1 when the bench
 * breaks, 2 on a bad argument. Every child is stopped and the work directory removed at the end.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { simpleRule, type RuleSpec, type TargetSpec } from '@portunus/forwarder';
import { FakeDnsServer } from '@portunus/test-support';

import { Child, killChildren } from '../forwarder/children.js';
import { formatRatio, median, nowMs, printTable, progress, sleep } from '../store/report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FORWARDER_PROCESS = path.join(HERE, '..', 'forwarder', 'forwarder-process.js');

interface Config {
  streamBytes: number;
  streamRounds: number;
  connections: number;
  failoverLoadMs: number;
  failoverKillAtMs: number;
  failoverReviveAtMs: number;
  workers: number;
}

const FULL: Config = {
  streamBytes: 384 * 1024 * 1024,
  streamRounds: 5,
  connections: 3000,
  failoverLoadMs: 9_000,
  failoverKillAtMs: 2_000,
  failoverReviveAtMs: 5_000,
  workers: 16,
};
const QUICK: Config = {
  streamBytes: 96 * 1024 * 1024,
  streamRounds: 1,
  connections: 600,
  failoverLoadMs: 6_000,
  failoverKillAtMs: 1_500,
  failoverReviveAtMs: 3_000,
  workers: 8,
};

/** A loopback TCP server whose live sockets can be destroyed at once (a target "dies"). */
class Target {
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  served = 0;
  bytes = 0;

  constructor(
    private readonly mode: 'echo' | 'sink',
    onSinkBytes?: (total: number) => void,
  ) {
    this.server = net.createServer({ noDelay: true }, (socket) => {
      this.served++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      if (this.mode === 'echo') socket.pipe(socket);
      else {
        socket.on('data', (chunk: Buffer) => {
          this.bytes += chunk.length;
          onSinkBytes?.(this.bytes);
        });
        socket.on('end', () => socket.end());
      }
    });
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as net.AddressInfo).port;
  }

  kill(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}

async function startForwarder(
  dir: string,
  rules: RuleSpec[],
  dnsServers?: string[],
): Promise<{ child: Child; ports: Record<string, number> }> {
  const child = Child.start({
    name: 'forwarder',
    command: process.execPath,
    args: [FORWARDER_PROCESS, JSON.stringify({ rules, ...(dnsServers ? { dnsServers } : {}) })],
    dir,
    lifetimeMs: 120_000,
  });
  const ports = await child.waitForLine((line) => {
    const parsed = JSON.parse(line) as { event?: string; ports?: Record<string, number[]> };
    return parsed.event === 'bench.forwarder_ready' ? parsed.ports : undefined;
  }, 10_000);
  return {
    child,
    ports: Object.fromEntries(Object.entries(ports).map(([id, list]) => [id, list[0] ?? 0])),
  };
}

function rule(ruleId: string, targets: TargetSpec[], extra: Partial<RuleSpec> = {}): RuleSpec {
  return {
    ...simpleRule({ ruleId, protocol: 'tcp', listenPort: 0, targetHost: '', targetPort: 1 }),
    targets,
    ...extra,
  };
}

const target = (
  host: string,
  port: number,
  priority: number,
  proxy: 'v2' | null = null,
): TargetSpec => ({
  host,
  port,
  portEnd: null,
  priority,
  proxyProtocol: proxy,
});

/** Writes `bytes` through `port` on one connection; resolves with the ms until the sink has all. */
async function stream(
  port: number,
  sink: { bytes: number; waitFor: (n: number) => Promise<void> },
  bytes: number,
): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 7);
  const start = sink.bytes;
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const began = nowMs();
  const arrived = sink.waitFor(start + bytes);
  let sent = 0;
  while (sent < bytes) {
    const piece = Math.min(chunk.length, bytes - sent);
    sent += piece;
    if (!socket.write(piece === chunk.length ? chunk : chunk.subarray(0, piece))) {
      await new Promise<void>((resolve) => socket.once('drain', resolve));
    }
  }
  await arrived;
  const elapsed = nowMs() - began;
  socket.destroy();
  return elapsed;
}

function sinkCounter(): { target: Target; bytes: number; waitFor: (n: number) => Promise<void> } {
  let waiter: { n: number; resolve: () => void } | undefined;
  const state = {
    target: undefined as unknown as Target,
    get bytes() {
      return state.target.bytes;
    },
    waitFor: (n: number) =>
      new Promise<void>((resolve) => {
        // The PROXY header adds a few bytes; "at least n" is what the sender wrote.
        if (state.target.bytes >= n) resolve();
        else waiter = { n, resolve };
      }),
  };
  state.target = new Target('sink', (total) => {
    if (waiter && total >= waiter.n) {
      const wake = waiter.resolve;
      waiter = undefined;
      wake();
    }
  });
  return state;
}

async function throughput(dir: string, config: Config): Promise<string[][]> {
  const sink = sinkCounter();
  const sinkPort = await sink.target.listen();
  const spare = new Target('echo');
  const sparePort = await spare.listen();
  const { child, ports } = await startForwarder(dir, [
    rule('plain', [target('127.0.0.1', sinkPort, 0)]),
    rule('multi', [target('127.0.0.1', sinkPort, 0, 'v2'), target('127.0.0.1', sparePort, 1)]),
  ]);
  try {
    const plain: number[] = [];
    const multi: number[] = [];
    for (let round = 0; round < config.streamRounds; round++) {
      progress(`throughput round ${round + 1}/${config.streamRounds}`);
      // The side measured first alternates, so a machine speeding up or slowing down mid-round
      // does not always favour the same one.
      const order = round % 2 === 0 ? (['plain', 'multi'] as const) : (['multi', 'plain'] as const);
      for (const side of order) {
        const ms = await stream(ports[side]!, sink, config.streamBytes);
        (side === 'plain' ? plain : multi).push(ms);
      }
    }
    const mbps = (ms: number): number => (config.streamBytes * 8) / (ms / 1000) / 1e6;
    const plainMbps = mbps(median(plain));
    const multiMbps = mbps(median(multi));
    const spread = (samples: number[]): string =>
      `${mbps(Math.max(...samples)).toFixed(0)}..${mbps(Math.min(...samples)).toFixed(0)}`;
    return [
      ['plain rule (1 target)', `${plainMbps.toFixed(0)} Mbit/s (${spread(plain)})`, '', ''],
      [
        '2 targets + PROXY v2',
        `${multiMbps.toFixed(0)} Mbit/s (${spread(multi)})`,
        formatRatio(multiMbps / plainMbps),
        multiMbps / plainMbps >= 0.95 ? 'met (>= 0.95x)' : 'MISSED (>= 0.95x)',
      ],
    ];
  } finally {
    await child.stop();
    await sink.target.kill();
    await spare.kill();
  }
}

/** One short connection: connect, 1 byte, its echo, close. Resolves with ms, rejects on failure. */
function ping(port: number, timeoutMs = 5_000): Promise<number> {
  const began = nowMs();
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    socket.once('data', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(nowMs() - began);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed'));
    });
    socket.write('x');
  });
}

async function dnsOverhead(dir: string, config: Config): Promise<string[][]> {
  const echo = new Target('echo');
  const echoPort = await echo.listen();
  const dns = await FakeDnsServer.start();
  dns.set('target.bench.test', { a: ['127.0.0.1'], ttl: 300 });
  const { child, ports } = await startForwarder(
    dir,
    [
      rule('ip', [target('127.0.0.1', echoPort, 0)]),
      rule('name', [target('target.bench.test', echoPort, 0)]),
    ],
    [dns.server],
  );
  try {
    const times: Record<'ip' | 'name', number[]> = { ip: [], name: [] };
    // Interleaved, so drift in the machine's speed hits both sides alike.
    for (let i = 0; i < config.connections; i++) {
      for (const side of ['ip', 'name'] as const) times[side].push(await ping(ports[side]!));
    }
    const ip = median(times.ip) * 1000;
    const name = median(times.name) * 1000;
    return [
      ['IP target', `${ip.toFixed(0)} µs/conn`, '', ''],
      [
        'name target (cached)',
        `${name.toFixed(0)} µs/conn`,
        formatRatio(name / ip),
        `${dns.count('target.bench.test')} DNS queries for ${config.connections} connections`,
      ],
    ];
  } finally {
    await child.stop();
    await echo.kill();
    await dns.close();
  }
}

async function failover(dir: string, config: Config, probeSecs: number | null): Promise<string[]> {
  const primary = new Target('echo');
  const primaryPort = await primary.listen();
  const backup = new Target('echo');
  const backupPort = await backup.listen();
  const { child, ports } = await startForwarder(dir, [
    rule('f', [target('127.0.0.1', primaryPort, 0), target('127.0.0.1', backupPort, 1)], {
      healthCheckIntervalSecs: probeSecs,
    }),
  ]);
  const port = ports['f']!;
  const began = nowMs();
  const failures: number[] = [];
  let ok = 0;
  let killedAt = 0;
  let revivedAt = 0;
  let backAt = 0;
  let primaryBaseline = 0;
  const worker = async (): Promise<void> => {
    while (nowMs() - began < config.failoverLoadMs) {
      try {
        await ping(port);
        ok++;
      } catch {
        failures.push(nowMs() - began);
      }
      if (revivedAt > 0 && backAt === 0 && primary.served > primaryBaseline) {
        backAt = nowMs() - began;
      }
    }
  };
  const chaos = async (): Promise<void> => {
    await sleep(config.failoverKillAtMs);
    killedAt = nowMs() - began;
    await primary.kill();
    await sleep(config.failoverReviveAtMs - config.failoverKillAtMs);
    primaryBaseline = primary.served;
    await primary.listen(primaryPort);
    revivedAt = nowMs() - began;
  };
  try {
    await Promise.all([chaos(), ...Array.from({ length: config.workers }, worker)]);
  } finally {
    await child.stop();
    await primary.kill();
    await backup.kill();
  }
  const window =
    failures.length === 0
      ? '0 ms'
      : `${(Math.max(...failures) - Math.min(...failures)).toFixed(0)} ms`;
  return [
    probeSecs === null ? 'passive only' : `passive + ${probeSecs} s probe`,
    String(ok),
    String(failures.length),
    window,
    failures.length === 0 ? '-' : `${(Math.min(...failures) - killedAt).toFixed(0)} ms`,
    backAt === 0 ? 'never (no probe)' : `${(backAt - revivedAt).toFixed(0)} ms`,
  ];
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.some((arg) => arg !== '--quick')) {
    console.error('usage: node bench/dist/targets/run.js [--quick]');
    return 2;
  }
  const config = args.includes('--quick') ? QUICK : FULL;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-bench-targets-'));
  const stop = (): void => {
    killChildren();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    stop();
    process.exitCode = 130;
  });
  try {
    console.log(
      `machine: ${os.cpus().length} cpu, node ${process.version}, ${os.cpus()[0]?.model ?? '?'}`,
    );
    progress('section 1: single-stream throughput');
    printTable(
      '1. Single-stream throughput (forwarder in its own process, one connection)',
      ['rule', 'throughput', 'vs plain', 'goal'],
      await throughput(dir, config),
    );
    progress('section 2: DNS overhead per new connection');
    printTable(
      '2. New-connection cost: name target vs IP target (median of interleaved connections)',
      ['target', 'median', 'vs IP', 'note'],
      await dnsOverhead(dir, config),
    );
    progress('section 3: failover under load');
    const rows = [await failover(dir, config, null), await failover(dir, config, 1)];
    printTable(
      `3. Failover: ${config.workers} workers of short connections; primary killed at ${config.failoverKillAtMs} ms, back at ${config.failoverReviveAtMs} ms`,
      [
        'health',
        'conns ok',
        'conns failed',
        'failure window',
        'first failure after kill',
        'traffic back on primary after its return',
      ],
      rows,
    );
    return 0;
  } catch (error) {
    console.error(error);
    return 1;
  } finally {
    stop();
  }
}

process.exitCode = await main();
