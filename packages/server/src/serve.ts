/**
 * `serve`: the composition root of the control plane. For now it reads server.toml, runs the
 * store's full boot sequence, announces readiness with `server.listening`, holds the data dir's
 * lock until SIGINT/SIGTERM and then closes the store cleanly (`server.stopped`). The HTTP,
 * metrics and control listeners attach here in later work; their real addresses will join the
 * `listeners` field of `server.listening`.
 */
import { EVENTS, type Logger } from '@portunus/core';
import { openStore } from '@portunus/store';

import { loadServerConfig } from './config.js';

export interface ServeOptions {
  dataDir: string;
  logger: Logger;
  /** Resolves with the signal name that asked the server to stop. */
  stopSignal?: Promise<string>;
}

export async function runServe(options: ServeOptions): Promise<number> {
  const { dataDir, logger } = options;
  // Handlers go in before readiness is announced: a signal sent right after server.listening
  // must drain, not kill.
  const stopSignal = options.stopSignal ?? waitForStopSignal();
  const config = loadServerConfig(dataDir);
  const store = openStore(dataDir, { logger });
  try {
    logger.info(EVENTS.serverListening, {
      data_dir: dataDir,
      schema_version: store.schemaVersion,
      config: config.source,
      listeners: {},
    });
    // Signal handlers do not keep Node's event loop alive; until listeners do, this timer does.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const signal = await stopSignal.finally(() => {
      clearInterval(keepAlive);
    });
    logger.info(EVENTS.shutdownSignal, { signal });
    logger.info(EVENTS.serverDraining, {});
  } finally {
    store.close();
  }
  logger.info(EVENTS.serverStopped, {});
  return 0;
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
