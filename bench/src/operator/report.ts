/**
 * The operator benchmark's tables, on top of the storage benchmark's helpers (percentiles,
 * formatting, fixed-width tables): one line per measured route, and one line per comparison with
 * its ratios ours / bare as a cost, so 1.00x means the same speed and 2.00x means our route takes
 * twice as long (per request, at the p50 or p99, or in server CPU).
 */
import { formatInt, formatMs, formatRatio, printTable } from '../store/report.js';
import { stats, type SideResult, type SideStats } from './measure.js';

export interface Comparison {
  what: string;
  ours: SideStats;
  bare: SideStats;
  /** Time per request (1 / throughput), ours / bare. */
  cost: number;
  p50: number;
  p99: number;
  /** Server CPU time per request, ours / bare. */
  cpu: number;
}

export function compare(what: string, ours: SideResult, bare: SideResult): Comparison {
  const o = stats(ours);
  const b = stats(bare);
  return {
    what,
    ours: o,
    bare: b,
    cost: b.reqPerSec / o.reqPerSec,
    p50: o.p50 / b.p50,
    p99: o.p99 / b.p99,
    cpu: o.cpuMsPerRequest / b.cpuMsPerRequest,
  };
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'n/a';
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(2)} MB`;
  if (bytes >= 1e4) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${Math.round(bytes)} B`;
}

const formatRate = (value: number): string =>
  value >= 100 ? formatInt(value) : Number.isFinite(value) ? value.toFixed(1) : 'n/a';

export function printSides(sides: readonly { result: SideResult; stats: SideStats }[]): void {
  printTable(
    'Every measured route (req/s: median round; p50/p99: all rounds pooled; CPU: server process)',
    [
      'server',
      'route',
      'c',
      'req/s',
      'rounds min-max',
      'p50',
      'p99',
      'server CPU/req',
      'body',
      'requests',
    ],
    sides.map(({ result, stats: s }) => [
      result.side.server,
      result.side.label,
      String(s.concurrency),
      formatRate(s.reqPerSec),
      `${formatRate(Math.min(...result.rates))}-${formatRate(Math.max(...result.rates))}`,
      formatMs(s.p50),
      formatMs(s.p99),
      formatMs(s.cpuMsPerRequest),
      formatBytes(s.bytesPerResponse),
      formatInt(s.requests),
    ]),
  );
}

export function printComparisons(title: string, comparisons: readonly Comparison[]): void {
  printTable(
    title,
    ['comparison', 'ours req/s', 'bare req/s', 'time/request', 'p50', 'p99', 'server CPU'],
    comparisons.map((c) => [
      c.what,
      formatRate(c.ours.reqPerSec),
      formatRate(c.bare.reqPerSec),
      formatRatio(c.cost),
      formatRatio(c.p50),
      formatRatio(c.p99),
      formatRatio(c.cpu),
    ]),
  );
}

/** The value of one sample line (`name` with its labels exactly as printed) of Prometheus text. */
export function readMetric(text: string, name: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return Number.NaN;
}
