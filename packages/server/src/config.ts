/**
 * `server.toml`: the optional file in the data dir that overrides built-in defaults (reference
 * §9.1). Parsing is a pure function of the text: it returns a frozen config or throws one
 * `config_invalid` (exit 2) listing every problem at once, including each unknown key by name, so
 * an operator fixes the file in one pass. Depends on core and smol-toml.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { parse, TomlError } from 'smol-toml';

import { PortunusError } from '@portunus/core';

export const SERVER_TOML = 'server.toml';

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * `[alerts]` (beyond the reference): webhook receivers of quota, client and target alerts, signed
 * with one HMAC-SHA256 secret. The secret is a secret: never logged, and a server.toml holding it
 * must not be readable by group or others (DESIGN.md §3: secrets 0600).
 */
export interface AlertsConfig {
  webhookUrls: readonly string[];
  secret: string;
  /** Fractions of a quota's limit that fire `quota.threshold`, ascending. */
  quotaThresholds: readonly number[];
  /** A client offline this long fires `client.offline`; a reconnect within it fires nothing. */
  clientOfflineGraceSecs: number;
  /** A target's new health must hold this long before `target.down` / `target.up`. */
  targetDebounceSecs: number;
}

export const DEFAULT_ALERTS = {
  quotaThresholds: [0.8, 1.0],
  clientOfflineGraceSecs: 60,
  targetDebounceSecs: 30,
} as const;

export interface ServerConfig {
  controlListen: ListenAddress;
  operatorHttpListen: ListenAddress;
  operatorHttpPublicOrigin?: string;
  metricsListen: ListenAddress;
  tlsCertPath?: string;
  tlsKeyPath?: string;
  shutdownDrainTimeoutSecs: number;
  logFormat: 'json' | 'compact';
  rangeRuleMaxPorts: number;
  udpFlowIdleSecs: number;
  udpMaxFlowsPerRule: number;
  operatorToken?: string;
  alerts?: AlertsConfig;
  /** Where the values came from, for the startup log. */
  source: string | null;
}

export const DEFAULT_CONFIG: Readonly<ServerConfig> = Object.freeze({
  controlListen: { host: '0.0.0.0', port: 7443 },
  operatorHttpListen: { host: '127.0.0.1', port: 7080 },
  metricsListen: { host: '127.0.0.1', port: 7081 },
  shutdownDrainTimeoutSecs: 30,
  logFormat: 'json',
  rangeRuleMaxPorts: 1024,
  udpFlowIdleSecs: 60,
  udpMaxFlowsPerRule: 1024,
  source: null,
});

type Problems = string[];

/** Parses `host:port` or `[v6]:port`; port 0 (pick a free port) is allowed. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const host = match[1] ?? match[2] ?? '';
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  if (match[1] !== undefined && !net.isIPv6(host)) return undefined;
  if (match[2] !== undefined && net.isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host))
    return undefined;
  return { host, port };
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

interface Field<T> {
  read(value: unknown, key: string, problems: Problems): T | undefined;
}

const listen: Field<ListenAddress> = {
  read(value, key, problems) {
    const address = typeof value === 'string' ? parseListenAddress(value) : undefined;
    if (!address)
      problems.push(
        `${key}: expected "host:port" (IPv6 as "[::1]:port"), got ${JSON.stringify(value)}`,
      );
    return address;
  },
};

function integer(min: number, max: number): Field<number> {
  return {
    read(value, key, problems) {
      if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max)
        return value;
      if (typeof value === 'bigint' && value >= BigInt(min) && value <= BigInt(max))
        return Number(value);
      problems.push(
        `${key}: expected an integer from ${min} to ${max}, got ${JSON.stringify(String(value))}`,
      );
      return undefined;
    },
  };
}

function text(check: (value: string) => string | undefined): Field<string> {
  return {
    read(value, key, problems) {
      if (typeof value !== 'string') {
        problems.push(`${key}: expected a string`);
        return undefined;
      }
      const problem = check(value);
      if (problem) problems.push(`${key}: ${problem}`);
      return problem ? undefined : value;
    },
  };
}

const anyText = text(() => undefined);

// A blank path would silently fall back to the default location (e.g. an unset variable in a
// templated server.toml), so it is refused like a blank path flag.
const pathText = text((value) =>
  value.trim() === '' ? 'must be a path, not empty or whitespace' : undefined,
);

const publicOrigin = text((value) => {
  const match = /^(https?):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.exec(value);
  return match ? undefined : 'expected http(s)://host[:port] with no path, query or trailing slash';
});

const operatorToken = text((value) => {
  const bytes = Buffer.byteLength(value);
  return bytes >= 1 && bytes <= 256 ? undefined : 'must be 1..256 bytes';
});

const logFormat = text((value) =>
  value === 'json' || value === 'compact' ? undefined : 'expected "json" or "compact"',
);

const MAX_WEBHOOKS = 8;

function webhookUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  return value;
}

/** `[alerts]`: its own unknown keys are refused like the top level's. */
const alertsTable: Field<AlertsConfig> = {
  read(value, key, problems) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${key}: expected a table`);
      return undefined;
    }
    const table = value as Record<string, unknown>;
    const before = problems.length;
    const known = new Set([
      'webhook_urls',
      'secret',
      'quota_thresholds',
      'client_offline_grace_secs',
      'target_debounce_secs',
    ]);
    for (const name of Object.keys(table)) {
      if (!known.has(name)) problems.push(`unknown key ${JSON.stringify(`${key}.${name}`)}`);
    }
    const urls = table['webhook_urls'];
    const webhookUrls: string[] = [];
    if (!Array.isArray(urls) || urls.length === 0 || urls.length > MAX_WEBHOOKS) {
      problems.push(`${key}.webhook_urls: expected 1..${MAX_WEBHOOKS} http(s) URLs`);
    } else {
      urls.forEach((url: unknown, index) => {
        const checked = webhookUrl(url);
        if (checked === undefined) {
          problems.push(
            `${key}.webhook_urls[${index}]: expected an http(s) URL without credentials`,
          );
        } else webhookUrls.push(checked);
      });
    }
    const secret = table['secret'];
    // The value itself never appears in a problem: it is a secret.
    if (typeof secret !== 'string' || Buffer.byteLength(secret) < 16 || secret.length > 256) {
      problems.push(`${key}.secret: expected a string of 16..256 bytes`);
    }
    let quotaThresholds: number[] = [...DEFAULT_ALERTS.quotaThresholds];
    const thresholds = table['quota_thresholds'];
    if (thresholds !== undefined) {
      const valid =
        Array.isArray(thresholds) &&
        thresholds.length >= 1 &&
        thresholds.length <= 8 &&
        thresholds.every(
          (threshold: unknown) => typeof threshold === 'number' && threshold > 0 && threshold <= 1,
        );
      if (!valid) problems.push(`${key}.quota_thresholds: expected 1..8 fractions in (0, 1]`);
      else quotaThresholds = [...new Set(thresholds as number[])].sort((a, b) => a - b);
    }
    const grace =
      table['client_offline_grace_secs'] === undefined
        ? DEFAULT_ALERTS.clientOfflineGraceSecs
        : integer(0, 86_400).read(
            table['client_offline_grace_secs'],
            `${key}.client_offline_grace_secs`,
            problems,
          );
    const debounce =
      table['target_debounce_secs'] === undefined
        ? DEFAULT_ALERTS.targetDebounceSecs
        : integer(0, 3600).read(
            table['target_debounce_secs'],
            `${key}.target_debounce_secs`,
            problems,
          );
    if (problems.length > before || grace === undefined || debounce === undefined) return undefined;
    return {
      webhookUrls,
      secret: secret as string,
      quotaThresholds,
      clientOfflineGraceSecs: grace,
      targetDebounceSecs: debounce,
    };
  },
};

/** Every accepted key, with how to read it. Legacy path keys are accepted and ignored. */
const FIELDS = {
  control_listen: listen,
  operator_http_listen: listen,
  operator_http_public_origin: publicOrigin,
  metrics_listen: listen,
  tls_cert_path: pathText,
  tls_key_path: pathText,
  shutdown_drain_timeout_secs: integer(0, 3600),
  log_format: logFormat,
  range_rule_max_ports: integer(1, 65535),
  udp_flow_idle_secs: integer(30, 300),
  udp_max_flows_per_rule: integer(1, 65535),
  operator_token: operatorToken,
  token_store_path: anyText,
  operator_store_path: anyText,
  alerts: alertsTable,
} as const satisfies Record<string, Field<unknown>>;

type Key = keyof typeof FIELDS;
type Values = { [K in Key]?: (typeof FIELDS)[K] extends Field<infer T> ? T : never };

export function parseServerConfig(source: string, tomlText: string): ServerConfig {
  let document: Record<string, unknown>;
  try {
    document = parse(tomlText);
  } catch (error) {
    const where = error instanceof TomlError ? ` (line ${error.line}, column ${error.column})` : '';
    throw new PortunusError(
      'config_invalid',
      `${source} is not valid TOML${where}: ${(error as Error).message.split('\n')[0] ?? ''}`,
      {
        path: source,
      },
    );
  }
  const problems: Problems = [];
  const values: Values = {};
  for (const [key, value] of Object.entries(document)) {
    if (!(key in FIELDS)) {
      problems.push(`unknown key ${JSON.stringify(key)}`);
      continue;
    }
    const field = FIELDS[key as Key] as Field<unknown>;
    (values as Record<string, unknown>)[key] = field.read(value, key, problems);
  }
  const metrics = values.metrics_listen;
  if (metrics && !isLoopbackHost(metrics.host)) {
    problems.push(
      `metrics_listen: must be a loopback address (127.0.0.0/8, ::1, localhost), got ${metrics.host}`,
    );
  }
  if (problems.length > 0) {
    throw new PortunusError('config_invalid', `${source}: ${problems.join('; ')}`, {
      path: source,
      problems,
    });
  }
  const config: ServerConfig = {
    ...DEFAULT_CONFIG,
    ...(values.control_listen ? { controlListen: values.control_listen } : {}),
    ...(values.operator_http_listen ? { operatorHttpListen: values.operator_http_listen } : {}),
    ...(values.operator_http_public_origin
      ? { operatorHttpPublicOrigin: values.operator_http_public_origin }
      : {}),
    ...(values.metrics_listen ? { metricsListen: values.metrics_listen } : {}),
    ...(values.tls_cert_path ? { tlsCertPath: values.tls_cert_path } : {}),
    ...(values.tls_key_path ? { tlsKeyPath: values.tls_key_path } : {}),
    ...(values.shutdown_drain_timeout_secs !== undefined
      ? { shutdownDrainTimeoutSecs: values.shutdown_drain_timeout_secs }
      : {}),
    ...(values.log_format ? { logFormat: values.log_format as 'json' | 'compact' } : {}),
    ...(values.range_rule_max_ports !== undefined
      ? { rangeRuleMaxPorts: values.range_rule_max_ports }
      : {}),
    ...(values.udp_flow_idle_secs !== undefined
      ? { udpFlowIdleSecs: values.udp_flow_idle_secs }
      : {}),
    ...(values.udp_max_flows_per_rule !== undefined
      ? { udpMaxFlowsPerRule: values.udp_max_flows_per_rule }
      : {}),
    ...(values.operator_token ? { operatorToken: values.operator_token } : {}),
    ...(values.alerts ? { alerts: Object.freeze(values.alerts) } : {}),
    source,
  };
  return Object.freeze(config);
}

export type ReadFile = (file: string) => string | undefined;
/** The permission bits of a file, undefined when it cannot be stat'ed (injectable for tests). */
export type FileMode = (file: string) => number | undefined;

const statMode: FileMode = (file) => {
  try {
    return fs.statSync(file).mode;
  } catch {
    return undefined;
  }
};

const readIfPresent: ReadFile = (file) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PortunusError('io_error', `cannot read ${file}: ${(error as Error).message}`, {
      path: file,
    });
  }
};

/** Reads `<data-dir>/server.toml` if present; defaults otherwise. */
export function loadServerConfig(
  dataDir: string,
  readFile: ReadFile = readIfPresent,
  fileMode: FileMode = statMode,
): ServerConfig {
  const file = path.join(dataDir, SERVER_TOML);
  const tomlText = readFile(file);
  if (tomlText === undefined) return DEFAULT_CONFIG;
  const config = parseServerConfig(file, tomlText);
  // A webhook secret sits in this file: like every secret it must be 0600 (DESIGN.md §3).
  if (config.alerts && ((fileMode(file) ?? 0) & 0o077) !== 0) {
    const problem = `${file} holds the [alerts] secret and is readable by group or others; chmod 600 it`;
    throw new PortunusError('config_invalid', problem, { path: file, problems: [problem] });
  }
  return config;
}

/**
 * The seed tier of the advertised endpoint (`--advertised-endpoint` /
 * PORTUNUS_ADVERTISED_ENDPOINT); host-less values such as `:7443` are dropped (reference §1.1).
 */
export function advertisedSeed(
  text: string | undefined,
): { text: string; host: string } | undefined {
  const value = text?.trim();
  if (!value) return undefined;
  const host = value.replace(/:\d*$/, '');
  return host === '' ? undefined : { text: value, host };
}
