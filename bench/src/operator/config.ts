/**
 * The sizes and limits of one operator API benchmark run: the full run the README's figures come
 * from, and `--quick`, a smoke run with the same store (10,000 rules) and shorter measurements.
 * Every loop in the benchmark is bounded by one of these counts and one of these durations.
 */
export interface OperatorBenchConfig {
  quick: boolean;
  /** Rules in the store, spread over `clients` clients. */
  rules: number;
  clients: number;
  /** Rules per transaction while building the store. */
  buildBatch: number;
  /** Requests in flight at once (keep-alive connections) during every measurement. */
  concurrency: number;
  /** Measurement rounds; the side measured first alternates from round to round. */
  rounds: number;
  /** Each route's untimed run right after the servers start, before any measurement. */
  startWarmupMs: number;
  /** Untimed requests before each measurement, bounded by count and by time. */
  warmupRequests: number;
  warmupMs: number;
  /** Upper bounds on one measurement: whichever is reached first ends it. */
  measureRequests: number;
  measureMs: number;
  /** A single request may take at most this long before the section is declared broken. */
  requestTimeoutMs: number;
  /** How long a server process may take to announce its port. */
  startTimeoutMs: number;
  /** The servers run under coreutils `timeout` with this lifetime, so none can outlive the run. */
  serverLifetimeMs: number;
}

export function operatorBenchConfig(quick: boolean): OperatorBenchConfig {
  const common = {
    rules: 10_000,
    clients: 50,
    buildBatch: 2_000,
    concurrency: 16,
    requestTimeoutMs: 30_000,
    startTimeoutMs: 30_000,
  };
  return quick
    ? {
        ...common,
        quick,
        rounds: 1,
        startWarmupMs: 1_000,
        warmupRequests: 200,
        warmupMs: 500,
        measureRequests: 20_000,
        measureMs: 1_500,
        serverLifetimeMs: 5 * 60_000,
      }
    : {
        ...common,
        quick,
        rounds: 3,
        startWarmupMs: 2_000,
        warmupRequests: 2_000,
        warmupMs: 1_000,
        measureRequests: 200_000,
        measureMs: 5_000,
        serverLifetimeMs: 20 * 60_000,
      };
}
