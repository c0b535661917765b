/**
 * The sizes and time limits of one benchmark run: the full run the README's figures come from,
 * and `--quick`, a smoke run that exercises every section at a tenth of the size. Every loop in
 * the benchmark is bounded by one of these counts and one of these durations.
 */
export interface BenchConfig {
  quick: boolean;
  /** Rows in the large audit table (envelope queries, backup, prune). */
  rows: number;
  /** Rows per transaction while building it. */
  buildBatch: number;
  /** Single-record commits per measured run. */
  singleCommits: number;
  /** 256-record batches per measured run; a multiple of 4 so AuditWriter never waits its timer. */
  batches: number;
  /** Alternating ours/raw rounds of each append measurement; the median round is reported. */
  rounds: number;
  /** Upper bound on one append run, whatever its count. */
  appendRunLimitMs: number;
  /** Timed page queries per kind (each for ours and for raw), after `warmup` untimed ones. */
  querySamples: number;
  warmup: number;
  /** Upper bound on one kind of page query. */
  queryKindLimitMs: number;
  /** The hard limit on the stepped backup baseline, which is expected never to finish. */
  steppedBackupLimitMs: number;
}

export function benchConfig(quick: boolean): BenchConfig {
  return quick
    ? {
        quick,
        rows: 100_000,
        buildBatch: 10_000,
        singleCommits: 300,
        batches: 24,
        rounds: 2,
        appendRunLimitMs: 3_000,
        querySamples: 300,
        warmup: 50,
        queryKindLimitMs: 5_000,
        steppedBackupLimitMs: 5_000,
      }
    : {
        quick,
        rows: 1_000_000,
        buildBatch: 10_000,
        singleCommits: 1_500,
        batches: 96,
        rounds: 3,
        appendRunLimitMs: 6_000,
        querySamples: 2_000,
        warmup: 200,
        queryKindLimitMs: 20_000,
        steppedBackupLimitMs: 20_000,
      };
}
