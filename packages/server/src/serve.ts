/**
 * `serve`: the composition root of the control plane. It reads server.toml, runs the store's boot
 * sequence, loads (or creates) the TLS identity, starts the hourly traffic rollup, completes the
 * operator-token bootstrap or issues a one-time setup token, binds the three listeners — control (TLS), operator HTTP and loopback
 * metrics — and logs `server.listening` with their real addresses. On SIGINT/SIGTERM it stops
 * accepting, drains the audit writer and closes the store (`server.stopped`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { EVENTS, PortunusError, type Logger } from '@portunus/core';

import {
  AuditWriter,
  StoreFaults,
  hasEnabledSuperadmin,
  openStore,
  recordTlsIdentity,
} from '@portunus/store';

import { advertisedSeed, loadServerConfig, type ListenAddress } from './config.js';
import { ControlFleet } from './control/fleet.js';
import { startControlService } from './control/service.js';
import { bootstrapOperatorToken, issueSetupToken } from './identity/bootstrap.js';
import {
  bind,
  closeServer,
  formatAddress,
  resolveListeners,
  type ListenerOverrides,
} from './listeners.js';
import { createServerMetrics } from './metrics.js';
import { buildOperatorApp } from './operator/app.js';
import type { OperatorContext } from './operator/context.js';
import { certCoversHost, loadOrCreateServerIdentity } from './tls/certificate.js';
import { TrafficAccounting } from './traffic/accounting.js';
import { AlertDispatcher, Alerter } from './traffic/alerts.js';
import { TrafficMaintenance } from './traffic/maintenance.js';
import { QuotaEngine, registerQuotaMetrics } from './traffic/quotas.js';

export interface ServeOptions {
  dataDir: string;
  logger: Logger;
  /**
   * The logger for `log_format = "compact"` in server.toml (one human-readable line per event);
   * without it (a test's own logger) `logger` is kept whatever the file says.
   */
  compactLogger?: () => Logger;
  env?: Readonly<Record<string, string | undefined>>;
  listeners?: ListenerOverrides;
  advertisedEndpoint?: string;
  /** Where the setup-token banner goes (stderr). */
  writeErr?: (text: string) => void;
  /** Resolves with the signal name that asked the server to stop. */
  stopSignal?: Promise<string>;
  now?: () => number;
}

export async function runServe(options: ServeOptions): Promise<number> {
  const { dataDir } = options;
  const env = options.env ?? process.env;
  const now = options.now ?? Date.now;
  const writeErr = options.writeErr ?? ((text: string) => process.stderr.write(text));
  // Handlers go in before readiness is announced: a signal sent right after server.listening
  // must drain, not kill.
  const stopSignal = options.stopSignal ?? waitForStopSignal();
  const config = loadServerConfig(dataDir);
  const logger =
    config.logFormat === 'compact' && options.compactLogger
      ? options.compactLogger()
      : options.logger;
  const addresses = resolveListeners(config, options.listeners ?? {}, env);
  const seed = advertisedSeed(options.advertisedEndpoint ?? env['PORTUNUS_ADVERTISED_ENDPOINT']);
  const store = openStore(dataDir, { logger });
  const cleanups: (() => Promise<void> | void)[] = [
    () => {
      store.close();
    },
  ];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.reverse()) await step();
  };
  try {
    const identity = await loadOrCreateServerIdentity({
      dataDir,
      ...(config.tlsCertPath ? { certPath: config.tlsCertPath } : {}),
      ...(config.tlsKeyPath ? { keyPath: config.tlsKeyPath } : {}),
      ...(seed ? { advertisedHost: seed.host } : {}),
      logger,
    });
    // A generated pair goes into the store so a backup alone can restore it and enrolled clients
    // keep their pin (store/src/tls-identity.ts); an operator's pair stays only in their files.
    if (!identity.operatorSupplied) {
      const recorded = recordTlsIdentity(store.db, identity, now());
      if (recorded) {
        logger.info(EVENTS.tlsIdentityRecorded, { fingerprint_sha256: identity.fingerprintSha256 });
      }
    }
    const metrics = createServerMetrics();
    const storeFaults = new StoreFaults(logger);
    const audit = new AuditWriter(store.db, {
      logger,
      faults: storeFaults,
      onDrop: () => {
        metrics.auditBufferDrops.inc();
      },
    });
    cleanups.push(() => {
      audit.close();
    });
    const operatorTokenHash = config.operatorToken
      ? bootstrapOperatorToken(store, config.operatorToken, logger, now())
      : undefined;

    // Traffic history lives in the store: rollup and retention run hourly, each report round of
    // a client is one transaction (store/src/traffic.ts).
    const trafficMaintenance = new TrafficMaintenance({ db: store.db, logger, now });
    trafficMaintenance.start();
    cleanups.push(() => {
      trafficMaintenance.stop();
    });
    // Alerts only exist with an [alerts] table; their timers and retries end before the store.
    let alerter: Alerter | undefined;
    if (config.alerts) {
      const dispatcher = new AlertDispatcher({
        config: config.alerts,
        logger,
        registry: metrics.registry,
        audit,
        now,
      });
      alerter = new Alerter({ dispatcher, config: config.alerts, now });
      const stopping = alerter;
      cleanups.push(() => {
        stopping.stop();
        dispatcher.close();
      });
    }
    // Quotas: usage grows in each round's transaction; the engine pushes budgets, rolls periods
    // every 60 s and fires threshold alerts (traffic/quotas.ts).
    const quotas = new QuotaEngine({
      db: store.db,
      logger,
      metrics: registerQuotaMetrics(metrics.registry, store.db),
      now,
      ...(config.alerts ? { thresholds: config.alerts.quotaThresholds } : {}),
      ...(alerter ? { alerts: alerter } : {}),
    });
    const traffic = new TrafficAccounting({
      db: store.db,
      logger,
      now,
      onRound: (clientId, result) => {
        quotas.onRound(clientId, result);
      },
    });
    const fleet = new ControlFleet({
      db: store.db,
      logger,
      metrics,
      now,
      traffic,
      quotas,
      ...(alerter ? { observer: alerter } : {}),
    });
    quotas.attach(fleet);
    quotas.start();
    cleanups.push(() => {
      quotas.stop();
    });
    const control = await startControlService(addresses.control, {
      db: store.db,
      logger,
      metrics,
      fleet,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
      fingerprintSha256: identity.fingerprintSha256,
      now,
      fallbackEndpoint: () => `127.0.0.1:${control.address.port}`,
      udpFlowIdleSecs: config.udpFlowIdleSecs,
      udpMaxFlowsPerRule: config.udpMaxFlowsPerRule,
    });
    const controlAddress = control.address;
    // SIGTERM drains the operator API for shutdown_drain_timeout_secs (a push in flight still
    // needs its client's answer over the control stream), then the control listener ends every
    // session at once — its clients reconnect to the next server — and gives calls still in
    // flight (an Enroll) at most CONTROL_CLOSE_GRACE_MS, never the whole budget.
    const drainMs = config.shutdownDrainTimeoutSecs * 1000;
    cleanups.push(async () => {
      const graceMs = Math.min(drainMs, CONTROL_CLOSE_GRACE_MS);
      if (await control.close(graceMs)) {
        logger.warn(EVENTS.serverDrainTimeout, { listener: 'control', timeout_ms: graceMs });
      }
    });

    const context: OperatorContext = {
      db: store.db,
      config,
      logger,
      audit,
      storeFaults,
      metrics,
      fleet,
      quotas,
      control: {
        fingerprintSha256: identity.fingerprintSha256,
        coversHost: (host) => certCoversHost(identity, host),
        port: controlAddress.port,
        ...(seed ? { seed: seed.text } : {}),
      },
      now,
      ...(operatorTokenHash ? { operatorTokenHash } : {}),
    };
    const app = await buildOperatorApp(context);
    cleanups.push(async () => {
      if (
        await closeWithin(app.close(), drainMs, () => {
          app.server.closeAllConnections();
        })
      ) {
        logger.warn(EVENTS.serverDrainTimeout, { listener: 'operator_http', timeout_ms: drainMs });
      }
    });
    const operatorAddress = await listenOperator(
      app.server,
      () => app.listen({ host: addresses.operatorHttp.host, port: addresses.operatorHttp.port }),
      addresses.operatorHttp,
    );

    const metricsServer = http.createServer((request, response) => {
      if (request.method === 'GET' && request.url?.split('?')[0] === '/metrics') {
        void metrics.render().then((text) => {
          response.writeHead(200, { 'content-type': metrics.contentType }).end(text);
        });
        return;
      }
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
    const metricsAddress = await bind(metricsServer, addresses.metrics, 'metrics');
    cleanups.push(() => closeServer(metricsServer));

    if (!hasEnabledSuperadmin(store.db)) {
      const token = issueSetupToken(store, logger, now());
      writeErr(
        `Portunus onboarding setup token: ${token}\n` +
          `Open http://${formatAddress(operatorAddress)}/onboarding to create the first superadmin (the token expires in 30 minutes).\n`,
      );
    }
    logger.info(EVENTS.serverListening, {
      data_dir: dataDir,
      schema_version: store.schemaVersion,
      config: config.source,
      tls_fingerprint_sha256: identity.fingerprintSha256,
      listeners: {
        control: formatAddress(controlAddress),
        operator_http: formatAddress(operatorAddress),
        metrics: formatAddress(metricsAddress),
      },
    });
    const signal = await stopSignal;
    logger.info(EVENTS.shutdownSignal, { signal });
    logger.info(EVENTS.serverDraining, {});
  } finally {
    await cleanup();
  }
  logger.info(EVENTS.serverStopped, {});
  return 0;
}

async function listenOperator(
  server: http.Server,
  listen: () => Promise<string>,
  address: ListenAddress,
): Promise<ListenAddress> {
  try {
    await listen();
  } catch (error) {
    throw new PortunusError(
      'listen_failed',
      `cannot bind the operator HTTP listener on ${formatAddress(address)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { listener: 'operator_http', address: formatAddress(address) },
      { cause: error },
    );
  }
  const bound = server.address() as AddressInfo;
  return { host: bound.address, port: bound.port };
}

/** The control listener's share of the drain: its sessions are ended, not waited for. */
const CONTROL_CLOSE_GRACE_MS = 2_000;

/**
 * Waits for `closing` for at most `ms`; past that, `cut` closes what is left (requests still in
 * flight) and the wait goes on for `closing` to settle. Resolves true when it had to cut.
 */
async function closeWithin(
  closing: Promise<unknown>,
  ms: number,
  cut: () => void,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<true>((resolve) => {
    timer = setTimeout(() => {
      resolve(true);
    }, ms);
  });
  const cutNeeded = await Promise.race([closing.then(() => false as const), late]);
  clearTimeout(timer);
  if (cutNeeded) {
    cut();
    await closing;
  }
  return cutNeeded;
}

export function waitForStopSignal(
  signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      for (const name of signals) process.off(name, onSignal);
      resolve(signal);
    };
    for (const name of signals) process.on(name, onSignal);
  });
}
