/**
 * Where serve's three listeners bind: server.toml values, overridden by environment variables,
 * overridden by flags (reference §1.2, §9.2). A malformed override is a usage error (exit 2); the
 * metrics listener must stay on loopback whatever sets it. Also binds a node server with a clear
 * catalogued failure and reports the real address, so port 0 works and `server.listening` can
 * carry it.
 */
import type { AddressInfo, Server } from 'node:net';

import { PortunusError } from '@portunus/core';

import {
  isLoopbackHost,
  parseListenAddress,
  type ListenAddress,
  type ServerConfig,
} from './config.js';

export interface ListenerOverrides {
  controlListen?: string;
  operatorHttpListen?: string;
  metricsListen?: string;
}

export interface ResolvedListeners {
  control: ListenAddress;
  operatorHttp: ListenAddress;
  metrics: ListenAddress;
}

const ENV = {
  control: 'PORTUNUS_CONTROL_LISTEN',
  operatorHttp: 'PORTUNUS_OPERATOR_HTTP_LISTEN',
  metrics: 'PORTUNUS_METRICS_LISTEN',
} as const;

export function resolveListeners(
  config: ServerConfig,
  flags: ListenerOverrides,
  env: Readonly<Record<string, string | undefined>>,
): ResolvedListeners {
  const pick = (
    name: keyof typeof ENV,
    flag: string | undefined,
    flagName: string,
    fallback: ListenAddress,
  ): ListenAddress => {
    const [source, text] =
      flag !== undefined ? [flagName, flag] : [ENV[name], env[ENV[name]]?.trim() || undefined];
    if (text === undefined) return fallback;
    const address = parseListenAddress(text);
    if (!address) {
      throw new PortunusError(
        'usage_error',
        `${source}=${JSON.stringify(text)}: expected "host:port" (IPv6 as "[::1]:port")`,
        { source },
      );
    }
    return address;
  };
  const listeners = {
    control: pick('control', flags.controlListen, '--control-listen', config.controlListen),
    operatorHttp: pick(
      'operatorHttp',
      flags.operatorHttpListen,
      '--operator-http-listen',
      config.operatorHttpListen,
    ),
    metrics: pick('metrics', flags.metricsListen, '--metrics-listen', config.metricsListen),
  };
  if (!isLoopbackHost(listeners.metrics.host)) {
    throw new PortunusError(
      'usage_error',
      `the metrics listener must be on loopback, not ${listeners.metrics.host}`,
    );
  }
  return listeners;
}

export function formatAddress(address: ListenAddress): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** Binds `server` and resolves with the address it really got. */
export function bind(server: Server, address: ListenAddress, name: string): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        new PortunusError(
          'listen_failed',
          `cannot bind the ${name} listener on ${formatAddress(address)}: ${error.code ?? error.message}`,
          { listener: name, address: formatAddress(address), errno: error.code },
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', onError);
      const bound = server.address() as AddressInfo;
      resolve({ host: bound.address, port: bound.port });
    });
  });
}

/** Closes a server, resolving once it is closed (idle connections are closed too). */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
  });
}
