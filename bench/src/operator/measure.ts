/**
 * Measuring a group of sides (one route on one server each) that belong together: every side is
 * warmed up and then measured once per round, the side that goes first rotating from round to
 * round so drift in the machine hits all of them. Besides the client's view (requests per second,
 * latency percentiles), each measurement reads the server process's CPU time from /proc, which
 * gives the server's own cost per request, apart from the load generator sharing the machine.
 */
import { median, percentile, progress } from '../store/report.js';
import type { OperatorBenchConfig } from './config.js';
import { runLoad, type Client, type RequestSpec } from './load.js';
import { cpuMs } from './processes.js';

export interface Side {
  /** What the tables call it. */
  label: string;
  /** `ours` or `bare`: which server it runs on, for the tables. */
  server: 'ours' | 'bare';
  peer: Client;
  spec: RequestSpec;
  serverPid: number;
  /** Requests in flight; the config's concurrency unless set. */
  concurrency?: number;
}

export interface SideResult {
  side: Side;
  concurrency: number;
  /** Requests per second of each round. */
  rates: number[];
  /** Server CPU time per request of each round, in ms. */
  cpuPerRequest: number[];
  /** Every round's latencies, in ms. */
  latencies: number[];
  requests: number;
  bytesPerResponse: number;
}

export interface SideStats {
  reqPerSec: number;
  p50: number;
  p99: number;
  cpuMsPerRequest: number;
  requests: number;
  bytesPerResponse: number;
  concurrency: number;
}

export function stats(result: SideResult): SideStats {
  return {
    reqPerSec: median(result.rates),
    p50: percentile(result.latencies, 50),
    p99: percentile(result.latencies, 99),
    cpuMsPerRequest: median(result.cpuPerRequest),
    requests: result.requests,
    bytesPerResponse: result.bytesPerResponse,
    concurrency: result.concurrency,
  };
}

/** Numbers POST bodies across the whole run, so that no request repeats an earlier one. */
export interface RequestCounter {
  next: number;
}

/**
 * Runs every side once, unmeasured, right after the servers start: the first requests a fresh
 * process serves are several times slower (module and JIT warm-up, startup garbage), and without
 * this the route measured first would carry that cost alone.
 */
export async function warmUp(
  sides: readonly Side[],
  config: OperatorBenchConfig,
  counter: RequestCounter,
): Promise<void> {
  for (const side of sides) {
    progress(`warming up: ${side.server} ${side.label}`);
    const run = await runLoad(
      side.peer,
      side.spec,
      {
        concurrency: side.concurrency ?? config.concurrency,
        requests: config.measureRequests,
        ms: config.startWarmupMs,
        timeoutMs: config.requestTimeoutMs,
      },
      counter.next,
    );
    counter.next += run.latencies.length;
  }
}

export async function measureGroup(
  name: string,
  sides: readonly Side[],
  config: OperatorBenchConfig,
  counter: RequestCounter,
): Promise<SideResult[]> {
  const results: SideResult[] = sides.map((side) => ({
    side,
    concurrency: side.concurrency ?? config.concurrency,
    rates: [],
    cpuPerRequest: [],
    latencies: [],
    requests: 0,
    bytesPerResponse: Number.NaN,
  }));
  for (let round = 0; round < config.rounds; round += 1) {
    for (let step = 0; step < sides.length; step += 1) {
      const result = results[(round + step) % sides.length]!;
      const { side, concurrency } = result;
      progress(
        `${name}, round ${round + 1}/${config.rounds}: ${side.server} ${side.label} (c=${concurrency})`,
      );
      const warm = await runLoad(
        side.peer,
        side.spec,
        {
          concurrency,
          requests: config.warmupRequests,
          ms: config.warmupMs,
          timeoutMs: config.requestTimeoutMs,
        },
        counter.next,
      );
      counter.next += warm.latencies.length;
      const cpuBefore = cpuMs(side.serverPid);
      const run = await runLoad(
        side.peer,
        side.spec,
        {
          concurrency,
          requests: config.measureRequests,
          ms: config.measureMs,
          timeoutMs: config.requestTimeoutMs,
        },
        counter.next,
      );
      const cpuAfter = cpuMs(side.serverPid);
      counter.next += run.latencies.length;
      result.rates.push((run.requests * 1000) / run.ms);
      result.cpuPerRequest.push((cpuAfter - cpuBefore) / run.requests);
      for (const latency of run.latencies) result.latencies.push(latency);
      result.requests += run.requests;
      result.bytesPerResponse = run.bytes / run.requests;
    }
  }
  return results;
}
