/**
 * The four measurements of the data-plane benchmark, each run against every side that is up:
 * TCP throughput (iperf3, 1 and N streams), connection rate (wrk, keep-alive and
 * `Connection: close`), UDP 64-byte datagrams per second at < 1 % loss (iperf3 -u, rising offered
 * rate), and the forwarder's RSS per idle proxied connection. Rounds interleave the sides, and
 * the side measured first rotates, to spread drift on a shared 2-core machine. Each load run is
 * bounded by its tool's own duration plus a slack, and by a count of rounds or steps.
 */
import { formatInt, nowMs, progress, sleep } from '../store/report.js';
import { Child, rssBytes, runTool } from './children.js';
import { iperfTcpBits, iperfUdp, parseWrk, withCpu, type Results } from './measure.js';
import { askStatus, forwarderStatus, startForwarder, startHaproxy, type Context } from './sides.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** One place the load generator can be pointed at: a baseline or the forwarder. */
export interface Side {
  name: string;
  port: number;
  /** The process whose CPU is measured (none for direct). */
  pid?: number | undefined;
}

/** The side order of one round: rotated by the round number. */
function rotate<T>(items: readonly T[], round: number): T[] {
  const shift = round % Math.max(1, items.length);
  return [...items.slice(shift), ...items.slice(0, shift)];
}

export async function tcpThroughput(
  ctx: Context,
  sides: readonly Side[],
  results: Results,
): Promise<void> {
  const iperf3 = ctx.tools.iperf3;
  if (iperf3 === undefined) return;
  const seconds = ctx.config.iperfSeconds;
  for (let round = 0; round < ctx.config.rounds; round++) {
    for (const streams of [1, ctx.config.streams]) {
      for (const side of rotate(sides, round)) {
        progress(`tcp round ${round + 1}: ${side.name}, ${streams} stream(s), ${seconds} s`);
        const { result, cpuPercent } = await withCpu(side.pid, () =>
          runTool(
            {
              name: `iperf3-${side.name}-P${streams}`,
              command: iperf3,
              args: [
                '-c',
                '127.0.0.1',
                '-p',
                String(side.port),
                '-t',
                String(seconds),
                '-J',
              ].concat(streams > 1 ? ['-P', String(streams)] : []),
              dir: ctx.dir,
            },
            seconds * 1000 + ctx.config.toolSlackMs,
          ),
        );
        let gbits = Number.NaN;
        try {
          gbits = iperfTcpBits(result.stdout) / 1e9;
        } catch (error) {
          progress(`  ${side.name}: ${String(error)}`);
        }
        results.get(`tcp/${side.name}/P${streams}`).add(gbits, cpuPercent);
      }
    }
  }
}

export async function connectionRate(
  ctx: Context,
  sides: readonly Side[],
  results: Results,
  notes: string[],
): Promise<void> {
  const wrk = ctx.tools.wrk;
  if (wrk === undefined) return;
  const { wrkConnections, wrkThreads, wrkSeconds } = ctx.config;
  const errors: string[] = [];
  for (let round = 0; round < ctx.config.rounds; round++) {
    for (const mode of ['keepalive', 'close'] as const) {
      for (const side of rotate(sides, round)) {
        progress(`http round ${round + 1}: ${side.name}, ${mode}, ${wrkSeconds} s`);
        const args = [
          '-c',
          String(wrkConnections),
          '-t',
          String(wrkThreads),
          '-d',
          `${wrkSeconds}s`,
          '--latency',
          ...(mode === 'close' ? ['-H', 'Connection: close'] : []),
          `http://127.0.0.1:${side.port}/`,
        ];
        const { result, cpuPercent } = await withCpu(side.pid, () =>
          runTool(
            { name: `wrk-${side.name}-${mode}`, command: wrk, args, dir: ctx.dir },
            wrkSeconds * 1000 + ctx.config.toolSlackMs,
          ),
        );
        try {
          const parsed = parseWrk(result.stdout);
          const key = `http/${side.name}/${mode}`;
          results.get(key).add(parsed.requestsPerSecond, cpuPercent);
          results.get(`${key}/p99`).add(parsed.p99Ms);
          results.get(`${key}/p50`).add(parsed.p50Ms);
          if (parsed.socketErrors > 0 || parsed.non2xx > 0) {
            errors.push(
              `${side.name} ${mode} round ${round + 1}: ${parsed.socketErrors} socket errors, ` +
                `${parsed.non2xx} non-2xx`,
            );
          }
        } catch (error) {
          progress(`  ${side.name}: ${String(error)}`);
          results.get(`http/${side.name}/${mode}`).add(Number.NaN);
        }
      }
    }
  }
  notes.push(
    errors.length === 0
      ? 'wrk: every run had 0 socket errors and 0 non-2xx responses.'
      : `wrk errors: ${errors.join('; ')}`,
  );
}

/**
 * Steps the offered rate up for every side in turn (interleaved per step); a side drops out
 * after `udpFailStreak` steps in a row at >= the loss limit. Records, per side, the highest step
 * with loss under the limit, and each step's loss and delivered rate.
 */
export async function udpRate(
  ctx: Context,
  sides: readonly Side[],
  results: Results,
): Promise<void> {
  const iperf3 = ctx.tools.iperf3;
  if (iperf3 === undefined) return;
  const { udpSteps, udpStepSeconds, udpPayloadBytes, udpFailStreak, udpLossLimitPercent } =
    ctx.config;
  const streak = new Map<string, number>(sides.map((side) => [side.name, 0]));
  const best = new Map<string, number>(sides.map((side) => [side.name, 0]));
  for (const [index, pps] of udpSteps.entries()) {
    for (const side of rotate(sides, index)) {
      if ((streak.get(side.name) ?? 0) >= udpFailStreak) continue;
      progress(`udp ${side.name}: ${formatInt(pps)} datagrams/s offered, ${udpStepSeconds} s`);
      const bits = pps * udpPayloadBytes * 8;
      const { result, cpuPercent } = await withCpu(side.pid, () =>
        runTool(
          {
            name: `iperf3-udp-${side.name}-${pps}`,
            command: iperf3,
            args: [
              '-c',
              '127.0.0.1',
              '-p',
              String(side.port),
              '-u',
              '-l',
              String(udpPayloadBytes),
              '-b',
              String(bits),
              '-t',
              String(udpStepSeconds),
              '-J',
            ],
            dir: ctx.dir,
          },
          udpStepSeconds * 1000 + ctx.config.toolSlackMs,
        ),
      );
      let loss = 100;
      let delivered = 0;
      try {
        const parsed = iperfUdp(result.stdout);
        loss = parsed.lostPercent;
        delivered = parsed.deliveredPps;
      } catch (error) {
        progress(`  ${side.name}: ${String(error)}`);
      }
      results.get(`udp/${side.name}/${pps}/loss`).add(loss, cpuPercent);
      results.get(`udp/${side.name}/${pps}/delivered`).add(delivered);
      if (loss < udpLossLimitPercent) {
        streak.set(side.name, 0);
        best.set(side.name, Math.max(best.get(side.name) ?? 0, pps));
      } else {
        streak.set(side.name, (streak.get(side.name) ?? 0) + 1);
      }
    }
  }
  for (const side of sides) results.get(`udp/${side.name}/best`).add(best.get(side.name) ?? 0);
}

interface ClientsDone {
  open: number;
  failed: number;
}

async function openIdleClients(
  ctx: Context,
  port: number,
  total: number,
  close: boolean,
): Promise<{ children: Child[]; open: number; failed: number }> {
  const processes = close ? 1 : ctx.config.idleClientProcesses;
  const children: Child[] = [];
  for (let index = 0; index < processes; index++) {
    const count = Math.floor(total / processes) + (index < total % processes ? 1 : 0);
    children.push(
      Child.start({
        name: `idle-clients-${close ? 'warmup' : index}`,
        command: process.execPath,
        args: [
          path.join(HERE, 'idle-clients.js'),
          String(port),
          String(count),
          String(ctx.config.idleConnectsInFlight),
          String(ctx.config.connectPhaseTimeoutMs),
          ...(close ? ['--close'] : []),
        ],
        dir: ctx.dir,
        lifetimeMs: ctx.config.childLifetimeMs,
      }),
    );
  }
  let open = 0;
  let failed = 0;
  for (const child of children) {
    const done = await child.waitForLine((line) => {
      const parsed = JSON.parse(line) as { event?: string } & ClientsDone;
      return parsed.event === 'bench.clients_done' ? parsed : undefined;
    }, ctx.config.connectPhaseTimeoutMs + 10_000);
    open += done.open;
    failed += done.failed;
  }
  return { children, open, failed };
}

/** Polls until `count()` reaches `target` or the time limit passes; returns the last count. */
async function waitForCount(
  count: () => Promise<number>,
  target: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = nowMs() + timeoutMs;
  let last = await count();
  while (last < target && nowMs() < deadline) {
    await sleep(250);
    last = await count();
  }
  return last;
}

export interface MemoryFigure {
  side: string;
  connections: number;
  baseRss: number;
  loadedRss: number;
  bytesPerConnection: number;
  heapUsed?: number;
}

/**
 * RSS of a forwarder (ours, then haproxy) holding `idleConnections` idle proxied connections to
 * an idle sink, opened by separate client processes so none of them nears the fd limit. The
 * baseline is read after a warm-up of connections opened and closed; both readings of ours come
 * after a GC.
 */
export async function idleMemory(ctx: Context, notes: string[]): Promise<MemoryFigure[]> {
  const figures: MemoryFigure[] = [];
  const n = ctx.config.idleConnections;
  const timeout = ctx.config.connectPhaseTimeoutMs;
  const sink = Child.start({
    name: 'idle-sink',
    command: process.execPath,
    args: [path.join(HERE, 'idle-sink.js')],
    dir: ctx.dir,
    lifetimeMs: ctx.config.childLifetimeMs,
  });
  try {
    const sinkPort = await sink.waitForLine((line) => {
      const parsed = JSON.parse(line) as { event?: string; port?: number };
      return parsed.event === 'bench.sink_ready' ? parsed.port : undefined;
    }, ctx.config.startTimeoutMs);
    const sinkOpen = async (): Promise<number> =>
      (await askStatus<{ seq: number; open: number }>(sink, 'bench.sink_status', 10_000)).open;

    const kinds = ['portunus', ...(ctx.tools.haproxy ? ['haproxy'] : [])];
    for (const kind of kinds) {
      progress(`memory: ${kind} with ${formatInt(n)} idle connections`);
      const started =
        kind === 'portunus'
          ? await startForwarder(ctx, 'memory', [
              { ruleId: 'idle', protocol: 'tcp', targetPort: sinkPort },
            ]).then((f) => ({ child: f.child, port: f.ports['idle'] ?? 0 }))
          : await startHaproxy(ctx, 'memory', [sinkPort], n + 500).then((h) => ({
              child: h.child,
              port: h.ports[0] ?? 0,
            }));
      const holders: Child[] = [];
      try {
        const pid = started.child.commandPid();
        const readRss = async (): Promise<{ rss: number; heap?: number }> => {
          if (kind !== 'portunus') return { rss: rssBytes(pid) };
          const status = await forwarderStatus(started.child, 10_000);
          return { rss: status.rss, heap: status.heap_used };
        };
        const activeInForwarder = async (): Promise<number> =>
          (await forwarderStatus(started.child, 10_000)).stats[0]?.active_connections ?? 0;

        const warm = await openIdleClients(ctx, started.port, ctx.config.idleWarmup, true);
        await waitForCount(async () => -(await sinkOpen()), 0, 10_000);
        await sleep(ctx.config.idleSettleMs);
        const base = await readRss();

        const opened = await openIdleClients(ctx, started.port, n, false);
        holders.push(...opened.children, ...warm.children);
        const upstream = await waitForCount(sinkOpen, opened.open, timeout);
        if (kind === 'portunus') await waitForCount(activeInForwarder, opened.open, timeout);
        await sleep(ctx.config.idleSettleMs);
        const loaded = await readRss();
        const connections = Math.min(opened.open, upstream);
        if (opened.failed > 0 || connections < n) {
          notes.push(
            `memory (${kind}): ${formatInt(opened.open)} of ${formatInt(n)} client connections ` +
              `opened (${formatInt(opened.failed)} failed), ${formatInt(upstream)} reached the sink.`,
          );
        }
        figures.push({
          side: kind,
          connections,
          baseRss: base.rss,
          loadedRss: loaded.rss,
          bytesPerConnection: (loaded.rss - base.rss) / Math.max(1, connections),
          ...(loaded.heap === undefined ? {} : { heapUsed: loaded.heap }),
        });
      } finally {
        for (const holder of holders) await holder.stop();
        await started.child.stop();
      }
      await waitForCount(async () => -(await sinkOpen()), 0, 15_000);
    }
  } finally {
    await sink.stop();
  }
  return figures;
}
