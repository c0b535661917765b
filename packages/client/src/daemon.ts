/**
 * The daemon loop of `portunus-client` (reference §1.6, §4.3): connect, serve a session, and on
 * stream loss reconnect after a full-jitter backoff. The data plane belongs to the daemon, not
 * to a session: one Forwarder (with its DNS cache, health and counters) lives as long as the
 * process, keeps forwarding while the stream is down, and is reconciled with the server's replay
 * on reconnect (control.ts) — deliberately unlike the reference, which tears every rule down on
 * each blip. Rules drain only when the daemon stops (bounded by the drain timeout) or goes
 * terminal: UNAUTHENTICATED means the credential was revoked, so nothing may keep forwarding;
 * the client then idles until stopped. Pin mismatches and transport errors are retried. The stop
 * request arrives as an AbortSignal; signals themselves are the CLI's. Depends on core, proto
 * (via control.ts) and forwarder; never on SQLite or HTTP.
 */
import { EVENTS, type Logger } from '@portunus/core';
import { Forwarder, type ForwarderOptions } from '@portunus/forwarder';

import { fullJitterDelayMs, type BackoffPolicy } from './backoff.js';
import { splitEndpoint, type Bundle } from './bundle.js';
import {
  CONNECT_FAILED_EVENT,
  describeConnectFailure,
  runSession,
  type SessionConfig,
} from './control.js';

export interface DaemonOptions {
  bundle: Bundle;
  logger: Logger;
  /** Aborting it stops the daemon: stream closed, rules drained, runDaemon resolves. */
  signal: AbortSignal;
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
  shutdownDrainTimeoutMs: number;
  statsReportIntervalMs: number;
  /** [0, 1) source for the backoff jitter. */
  random?: () => number;
  connectTimeoutMs?: number;
  /** Extra forwarder options (tests: listen host, resolver); UDP tunables come from Welcome. */
  forwarderOptions?: Omit<ForwarderOptions, 'logger'>;
  /** A data plane to use instead of a new one (tests inspect it). */
  forwarder?: Forwarder;
  channelOptions?: SessionConfig['channelOptions'];
}

export type DaemonOutcome = 'stopped' | 'terminal';

/** Runs until `signal` aborts; reports whether it had gone terminal before that. */
export async function runDaemon(options: DaemonOptions): Promise<DaemonOutcome> {
  const { bundle, logger: log, signal } = options;
  const endpoint = splitEndpoint(bundle.server_endpoint);
  if (!endpoint) throw new Error(`invalid server_endpoint ${bundle.server_endpoint}`);
  const policy: BackoffPolicy = {
    initialDelayMs: options.reconnectInitialDelayMs,
    maxDelayMs: options.reconnectMaxDelayMs,
  };
  const forwarder =
    options.forwarder ?? new Forwarder({ ...options.forwarderOptions, logger: log });
  const config: SessionConfig = {
    forwarder,
    host: endpoint.host,
    port: endpoint.port,
    pinSha256: bundle.server_cert_sha256,
    token: bundle.token,
    logger: log,
    statsReportIntervalMs: options.statsReportIntervalMs,
    drainMs: options.shutdownDrainTimeoutMs,
    ...(options.connectTimeoutMs !== undefined
      ? { connectTimeoutMs: options.connectTimeoutMs }
      : {}),
    ...(options.channelOptions ? { channelOptions: options.channelOptions } : {}),
  };
  const draining: Promise<unknown>[] = [];
  const drain = async (): Promise<void> => {
    await Promise.allSettled([
      forwarder.close({ drainMs: options.shutdownDrainTimeoutMs }),
      ...draining,
    ]);
  };

  // Connection attempts since the last Welcome; the backoff exponent is one less.
  // A function, not the property, so the checks after each await are not narrowed away.
  const stopped = (): boolean => signal.aborted;
  let attempt = 0;
  while (!stopped()) {
    attempt += 1;
    log.info(EVENTS.controlConnecting, { attempt, endpoint: bundle.server_endpoint });
    let result: Awaited<ReturnType<typeof runSession>> | undefined;
    try {
      result = await runSession(config, signal, () => {
        attempt = 0;
      });
    } catch (error) {
      if (stopped()) break;
      log.warn(CONNECT_FAILED_EVENT, {
        attempt,
        endpoint: bundle.server_endpoint,
        ...describeConnectFailure(error),
      });
    }
    if (result) {
      const { end } = result;
      draining.push(...result.draining);
      if (end.kind === 'terminal') {
        log.error(EVENTS.controlTerminal, { reason: end.reason });
        await drain();
        await aborted(signal);
        return 'terminal';
      }
      if (end.kind === 'lost') {
        // The rules keep running: the stream is how they are managed, not what carries them.
        const fields = { code: end.code, details: end.details, rules: forwarder.ruleIds().length };
        if (end.welcomed) log.warn(EVENTS.controlDisconnected, fields);
        else log.warn(CONNECT_FAILED_EVENT, { attempt, ...fields, error: end.details });
      }
    }
    if (stopped()) break;
    const delayMs = fullJitterDelayMs(Math.max(attempt - 1, 0), policy, options.random);
    log.info(EVENTS.controlReconnectScheduled, { attempt: attempt + 1, delay_ms: delayMs });
    await sleep(delayMs, signal);
  }
  await drain();
  return 'stopped';
}

/**
 * Resolves when `signal` aborts. A ref'd timer holds the process open meanwhile: signal listeners
 * alone do not, and an idle terminal client must wait for SIGTERM rather than exit on its own.
 */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(keepAlive);
        resolve();
      },
      { once: true },
    );
  });
}

/** Waits `ms`, or less if `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
