/**
 * The figures of the data-plane benchmark: samples per (section, side, mode), their median and
 * range, and the parsers for the JSON of iperf3 and the text of wrk. Every ratio here is a
 * throughput ratio, forwarder / baseline, so 1.00x means as fast and 0.50x half as fast (the
 * issue's goals are stated that way); memory is the one cost, and says so where printed.
 */
import { median } from '../store/report.js';
import { cpuMs } from './children.js';

/** Samples of one figure; NaN marks a failed run. */
export class Samples {
  readonly values: number[] = [];
  readonly cpu: number[] = [];

  add(value: number, cpuPercent = Number.NaN): void {
    this.values.push(value);
    this.cpu.push(cpuPercent);
  }

  private ok(list: readonly number[]): number[] {
    return list.filter((value) => Number.isFinite(value));
  }

  get median(): number {
    return median(this.ok(this.values));
  }

  get min(): number {
    const ok = this.ok(this.values);
    return ok.length === 0 ? Number.NaN : Math.min(...ok);
  }

  get max(): number {
    const ok = this.ok(this.values);
    return ok.length === 0 ? Number.NaN : Math.max(...ok);
  }

  get cpuMedian(): number {
    return median(this.ok(this.cpu));
  }
}

/** Samples keyed by "section/side/mode", created on first use. */
export class Results {
  private readonly map = new Map<string, Samples>();

  get(key: string): Samples {
    let samples = this.map.get(key);
    if (!samples) {
      samples = new Samples();
      this.map.set(key, samples);
    }
    return samples;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }
}

/** Runs `work` and returns its result with the process's CPU % over the same wall time. */
export async function withCpu<T>(
  pid: number | undefined,
  work: () => Promise<T>,
): Promise<{ result: T; cpuPercent: number }> {
  const cpuBefore = cpuMs(pid);
  const started = performance.now();
  const result = await work();
  const wall = performance.now() - started;
  // socat's per-connection children are counted once reaped; give the master a moment.
  await new Promise((resolve) => setTimeout(resolve, 150));
  const cpuPercent = ((cpuMs(pid) - cpuBefore) / wall) * 100;
  return { result, cpuPercent };
}

/** Received bits/s of an iperf3 TCP run (-J). */
export function iperfTcpBits(json: string): number {
  const parsed = JSON.parse(json) as {
    error?: string;
    end?: { sum_received?: { bits_per_second?: number } };
  };
  if (parsed.error !== undefined) throw new Error(`iperf3: ${parsed.error}`);
  const bits = parsed.end?.sum_received?.bits_per_second;
  if (bits === undefined) throw new Error('iperf3 output has no end.sum_received');
  return bits;
}

export interface UdpResult {
  sent: number;
  lost: number;
  lostPercent: number;
  /** Datagrams per second that reached the iperf3 server. */
  deliveredPps: number;
}

/** The server-side counts of an iperf3 UDP run (-J). */
export function iperfUdp(json: string): UdpResult {
  const parsed = JSON.parse(json) as {
    error?: string;
    end?: {
      sum_received?: { packets?: number; lost_packets?: number; seconds?: number };
    };
  };
  if (parsed.error !== undefined) throw new Error(`iperf3: ${parsed.error}`);
  const sum = parsed.end?.sum_received;
  if (sum?.packets === undefined || sum.lost_packets === undefined || !sum.seconds) {
    throw new Error('iperf3 output has no end.sum_received packet counts');
  }
  const sent = sum.packets;
  const lost = sum.lost_packets;
  return {
    sent,
    lost,
    lostPercent: sent === 0 ? 100 : (lost / sent) * 100,
    deliveredPps: (sent - lost) / sum.seconds,
  };
}

export interface WrkResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  socketErrors: number;
  non2xx: number;
}

function wrkDurationMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  const unit = match[2];
  if (unit === 'us') return value / 1000;
  if (unit === 'ms') return value;
  if (unit === 's') return value * 1000;
  return value * 60_000;
}

/** The figures of `wrk --latency` text output. */
export function parseWrk(text: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  if (!rps) throw new Error(`wrk output has no Requests/sec:\n${text.slice(0, 1000)}`);
  const percentile = (p: string): number => {
    const match = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text);
    return match?.[1] === undefined ? Number.NaN : wrkDurationMs(match[1]);
  };
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = errors ? errors.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  return {
    requestsPerSecond: Number(rps[1]),
    p50Ms: percentile('50'),
    p99Ms: percentile('99'),
    socketErrors,
    non2xx,
  };
}
