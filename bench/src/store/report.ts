/**
 * Timing, statistics and printing for the storage benchmark: a monotonic clock, percentiles,
 * number formatting, the fixed-width result tables and the goal lines of the final summary. Every
 * comparison is "ours / raw" as a cost (time per unit of work), so 1.00 means the same speed and
 * 2.00 means our path takes twice as long. Nothing here knows what is being measured.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';

export const nowMs = (): number => performance.now();

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** A time span on the nowMs() clock. */
export interface Span {
  start: number;
  end: number;
}

/**
 * Records V8 garbage-collection pauses, so a tail latency can be told apart from the query
 * itself: GC entries use the same clock as nowMs(). They are delivered asynchronously, hence
 * `stop()` yields once before returning them.
 */
export function trackGc(): { stop: () => Promise<Span[]> } {
  const pauses: Span[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      pauses.push({ start: entry.startTime, end: entry.startTime + entry.duration });
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    async stop() {
      await sleep(20);
      observer.disconnect();
      return pauses;
    },
  };
}

export function overlapsAny(span: Span, pauses: readonly Span[]): boolean {
  return pauses.some((pause) => pause.start < span.end && pause.end > span.start);
}

/** Nearest-rank percentile of unsorted samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export const median = (samples: readonly number[]): number => percentile(samples, 50);

export function formatInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value < 10 ? `${value.toFixed(3)} ms` : `${value.toFixed(1)} ms`;
}

export function formatSeconds(ms: number): string {
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'n/a';
}

export function formatMb(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 1e6).toFixed(1)} MB` : 'n/a';
}

export function formatRatio(ratio: number | undefined): string {
  return ratio === undefined || !Number.isFinite(ratio) ? '' : `${ratio.toFixed(2)}x`;
}

/** One line of a comparison table. */
export interface ResultRow {
  what: string;
  ours: string;
  raw: string;
  /** ours / raw as a cost; undefined when there is nothing to divide. */
  ratio?: number;
}

/** A goal from the issue, checked against a measured ratio or condition. */
export interface Goal {
  what: string;
  measured: string;
  target: string;
  met: boolean;
}

/** What each section hands back to the runner: its table rows, goal lines and notes. */
export interface SectionResult {
  rows: ResultRow[];
  goals: Goal[];
  notes: string[];
}

export function printTable(
  title: string,
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): void {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  ')
      .trimEnd();
  console.log(`\n${title}`);
  console.log(line(headers));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of rows) console.log(line(row));
}

export function printResults(title: string, rows: readonly ResultRow[]): void {
  printTable(
    title,
    ['measurement', 'ours', 'raw better-sqlite3', 'ours / raw'],
    rows.map((row) => [row.what, row.ours, row.raw, formatRatio(row.ratio)]),
  );
}

export function printGoals(goals: readonly Goal[]): void {
  printTable(
    'Summary against the goals',
    ['goal', 'measured', 'target', 'met'],
    goals.map((goal) => [goal.what, goal.measured, goal.target, goal.met ? 'yes' : 'NO']),
  );
}

/** Progress on stderr, so stdout stays the tables alone. */
export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}
