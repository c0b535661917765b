/**
 * One load process of the scale benchmark: runs the real client daemon loop (`runDaemon` of
 * @portunus/client: pin-checked connect, Hello, Welcome, RuleStatus answers, periodic
 * StatsReport, full-jitter reconnect backoff) for each of the bundles it is given, all in this
 * one process, so a few processes hold N control streams. Each session gets its own gRPC
 * subchannel pool, so the server sees one TLS connection per client as it would from N edges.
 * Rules pushed to it bind real listeners on loopback. It reports on stdout, one JSON line per
 * change of state: how many of its sessions are welcomed, and when all of them first are (again).
 * Depends on the client package and core only; never on the server or the store.
 */
import fs from 'node:fs';

import { runDaemon, type Bundle } from '@portunus/client';
import { EVENTS, silentLogger, type LogEvent, type LogFields, type Logger } from '@portunus/core';

export interface LoadSpec {
  bundles: Bundle[];
  statsReportIntervalMs: number;
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
}

function emit(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...fields, at_ms: Date.now() })}\n`);
}

const spec = JSON.parse(fs.readFileSync(process.argv[2] ?? '', 'utf8')) as LoadSpec;
const total = spec.bundles.length;
const controller = new AbortController();
let connected = 0;
let generation = 0;
let reported = -1;
/** Why welcomed sessions were lost (gRPC code and details), so a run says what made them drop. */
const losses = new Map<string, number>();

function report(): void {
  if (connected === reported) return;
  reported = connected;
  const lost = Object.fromEntries(losses);
  if (connected === total) {
    generation += 1;
    emit({ event: 'scale.load.full', generation, connected, lost });
  } else {
    emit({ event: 'scale.load.status', generation, connected, lost });
  }
}

/** A logger that counts each session's Welcome and loss; everything else is dropped. */
function countingLogger(): Logger {
  let welcomed = false;
  const count = (event: LogEvent, fields: LogFields = {}): void => {
    if (event === EVENTS.controlConnected && !welcomed) {
      welcomed = true;
      connected += 1;
      report();
    } else if (event === EVENTS.controlDisconnected && welcomed) {
      welcomed = false;
      const reason = `${String(fields['code'])} ${String(fields['details'])}`;
      losses.set(reason, (losses.get(reason) ?? 0) + 1);
      connected -= 1;
      report();
    } else if (event === EVENTS.controlTerminal) {
      emit({ event: 'scale.load.terminal' });
    }
  };
  const logger: Logger = { ...silentLogger, info: count, warn: count, error: count };
  logger.child = () => logger;
  return logger;
}

const daemons = spec.bundles.map((bundle) =>
  runDaemon({
    bundle,
    logger: countingLogger(),
    signal: controller.signal,
    reconnectInitialDelayMs: spec.reconnectInitialDelayMs,
    reconnectMaxDelayMs: spec.reconnectMaxDelayMs,
    shutdownDrainTimeoutMs: 0,
    statsReportIntervalMs: spec.statsReportIntervalMs,
    forwarderOptions: { listenHost: '127.0.0.1' },
    // Without this grpc-js shares one HTTP/2 connection among identical channels.
    channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
  }),
);

const stop = (): void => {
  controller.abort();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
emit({ event: 'scale.load.started', sessions: total, pid: process.pid });
await Promise.allSettled(daemons);
emit({ event: 'scale.load.stopped' });
