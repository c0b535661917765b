/**
 * The sizes and limits of one data-plane benchmark run: the full run the README's figures come
 * from, and `--quick`, a smoke run with one round and shorter steps. Every load loop in the
 * benchmark is bounded by one of these counts and one of these durations.
 */
export interface ForwarderBenchConfig {
  quick: boolean;
  /** Rounds of the TCP and HTTP sections; each round runs every side in turn. */
  rounds: number;
  /** iperf3 `-t` of each TCP throughput run, in seconds. */
  iperfSeconds: number;
  /** Parallel streams of the multi-stream run. */
  streams: number;
  /** wrk settings of the connection-rate section. */
  wrkConnections: number;
  wrkThreads: number;
  wrkSeconds: number;
  /** Offered rates (datagrams/s) of the UDP section, low to high, and each step's length. */
  udpSteps: readonly number[];
  udpStepSeconds: number;
  udpPayloadBytes: number;
  /** A side stops stepping after this many steps in a row at >= lossLimit % loss. */
  udpFailStreak: number;
  udpLossLimitPercent: number;
  /** Idle proxied connections of the memory section, and the client processes that open them. */
  idleConnections: number;
  idleClientProcesses: number;
  idleConnectsInFlight: number;
  /** Connections opened and closed before the baseline RSS is read. */
  idleWarmup: number;
  /** Time left to the processes after the last connection is up, before RSS is read. */
  idleSettleMs: number;
  /** Limits on waiting: a child announcing readiness, connections coming up, one tool run. */
  startTimeoutMs: number;
  connectPhaseTimeoutMs: number;
  toolSlackMs: number;
  /** Children run under coreutils `timeout` with this lifetime, so none outlives the run. */
  childLifetimeMs: number;
}

export function forwarderBenchConfig(quick: boolean, rounds?: number): ForwarderBenchConfig {
  const common = {
    quick,
    streams: 8,
    wrkConnections: 50,
    wrkThreads: 2,
    udpPayloadBytes: 64,
    udpFailStreak: 2,
    udpLossLimitPercent: 1,
    idleClientProcesses: 2,
    idleConnectsInFlight: 256,
    idleWarmup: 200,
    startTimeoutMs: 15_000,
    connectPhaseTimeoutMs: 60_000,
    toolSlackMs: 20_000,
  };
  return quick
    ? {
        ...common,
        rounds: rounds ?? 1,
        iperfSeconds: 2,
        wrkSeconds: 2,
        udpSteps: [15_000, 30_000, 45_000, 60_000],
        udpStepSeconds: 2,
        idleConnections: 2_000,
        idleSettleMs: 1_000,
        childLifetimeMs: 10 * 60_000,
      }
    : {
        ...common,
        rounds: rounds ?? 3,
        iperfSeconds: 5,
        wrkSeconds: 5,
        udpSteps: [15_000, 30_000, 45_000, 55_000, 65_000, 80_000, 100_000],
        udpStepSeconds: 3,
        idleConnections: 9_000,
        idleSettleMs: 2_000,
        childLifetimeMs: 40 * 60_000,
      };
}
