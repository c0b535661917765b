/**
 * The daemon loop of `portunus-client` (reference §1.6, §4.3): connect, serve a session, and on
 * stream loss tear the rules down (drain bounded by the drain timeout, immediate when nothing is
 * in flight) and reconnect after a full-jitter backoff; the server replays the active rules.
 * UNAUTHENTICATED is terminal: the client stops reconnecting and idles until stopped. Pin
 * mismatches and transport errors are retried. The stop request arrives as an AbortSignal;
 * signals themselves are the CLI's. Depends on core, proto (via control.ts) and forwarder; never
 * on SQLite or HTTP.
 */
import { EVENTS, type Logger } from '@portunus/core';
import type { Forwarder } from '@portunus/forwarder';

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
  forwarderOptions?: SessionConfig['forwarderOptions'];
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
  const config: SessionConfig = {
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
    ...(options.forwarderOptions ? { forwarderOptions: options.forwarderOptions } : {}),
    ...(options.channelOptions ? { channelOptions: options.channelOptions } : {}),
  };
  const drain = async (forwarder: Forwarder | undefined, draining: Promise<unknown>[]) => {
    await Promise.allSettled([
      forwarder?.close({ drainMs: options.shutdownDrainTimeoutMs }),
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
      if (end.kind === 'terminal') {
        log.error(EVENTS.controlTerminal, { reason: end.reason });
        await drain(result.forwarder, result.draining);
        await aborted(signal);
        return 'terminal';
      }
      if (end.kind === 'lost') {
        const fields = { code: end.code, details: end.details };
        if (end.welcomed) log.warn(EVENTS.controlDisconnected, fields);
        else log.warn(CONNECT_FAILED_EVENT, { attempt, ...fields, error: end.details });
      }
      await drain(result.forwarder, result.draining);
    }
    if (stopped()) break;
    const delayMs = fullJitterDelayMs(Math.max(attempt - 1, 0), policy, options.random);
    log.info(EVENTS.controlReconnectScheduled, { attempt: attempt + 1, delay_ms: delayMs });
    await sleep(delayMs, signal);
  }
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
