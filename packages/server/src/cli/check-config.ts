/**
 * `portunus-server check-config`: validates `<data-dir>/server.toml` and the PORTUNUS_* variables
 * serve reads, without starting anything — no lock, no store, no TLS identity, no listener, and
 * the data dir is not even created. It reuses the server.toml parser of config.ts and the listen
 * address grammar of serve, so "ok" here means serve accepts the same configuration, and it
 * collects every problem (file and environment) into one `config_invalid` (exit 2) so an operator
 * fixes them in one pass (README "server.toml"). Must not depend on the store, the operator app
 * or the control stream.
 */
import fs from 'node:fs';
import path from 'node:path';

import { PortunusError, isPortunusError } from '@portunus/core';

import {
  SERVER_TOML,
  advertisedSeed,
  isLoopbackHost,
  loadServerConfig,
  parseListenAddress,
  type FileMode,
  type ReadFile,
} from '../config.js';
import { parseEndpoint } from '../services/advertised-endpoint.js';

/** The environment variables that override server.toml's listeners (README "Listeners"). */
const LISTEN_ENV = [
  ['PORTUNUS_CONTROL_LISTEN', 'control'],
  ['PORTUNUS_OPERATOR_HTTP_LISTEN', 'operatorHttp'],
  ['PORTUNUS_METRICS_LISTEN', 'metrics'],
] as const;

export interface ConfigCheck {
  /** The file that was read, or null when the data dir holds no server.toml. */
  file: string | null;
  problems: string[];
}

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

/**
 * Every problem of the configuration serve would run with: server.toml's problems (as the
 * loader names them) followed by those of the environment. Pure apart from `readFile`.
 */
export function checkServerConfig(
  dataDir: string,
  env: Readonly<Record<string, string | undefined>>,
  readFile: ReadFile = readIfPresent,
  fileMode?: FileMode,
): ConfigCheck {
  const file = path.join(dataDir, SERVER_TOML);
  const seen = { present: false };
  const tracked: ReadFile = (name) => {
    const text = readFile(name);
    seen.present = text !== undefined;
    return text;
  };
  const problems: string[] = [];
  try {
    loadServerConfig(dataDir, tracked, fileMode);
  } catch (error) {
    if (!isPortunusError(error) || error.code !== 'config_invalid') throw error;
    const listed = error.fields['problems'];
    problems.push(...(Array.isArray(listed) ? listed.map(String) : []));
    if (!Array.isArray(listed)) problems.push(error.message);
  }
  for (const [name, key] of LISTEN_ENV) {
    const text = env[name]?.trim();
    if (!text) continue;
    const address = parseListenAddress(text);
    if (!address) {
      problems.push(`${name}=${JSON.stringify(text)}: expected "host:port" (IPv6 as "[::1]:port")`);
    } else if (key === 'metrics' && !isLoopbackHost(address.host)) {
      // serve refuses a public metrics listener whichever layer sets it (listeners.ts).
      problems.push(`${name}: must be a loopback address, got ${address.host}`);
    }
  }
  // Enrollment refuses a malformed seed (fail closed, reference §9.4); host-less ones are ignored.
  const seed = advertisedSeed(env['PORTUNUS_ADVERTISED_ENDPOINT']);
  const endpoint = seed ? parseEndpoint(seed.text) : undefined;
  if (endpoint && 'problem' in endpoint) {
    problems.push(
      `PORTUNUS_ADVERTISED_ENDPOINT=${JSON.stringify(seed?.text)}: ${endpoint.problem} (expected host:port)`,
    );
  }
  return { file: seen.present ? file : null, problems };
}

/** Throws one config_invalid naming every problem, or returns what was checked. */
export function requireValidConfig(
  dataDir: string,
  env: Readonly<Record<string, string | undefined>>,
  readFile?: ReadFile,
  fileMode?: FileMode,
): ConfigCheck {
  const result = checkServerConfig(dataDir, env, readFile, fileMode);
  if (result.problems.length > 0) {
    throw new PortunusError(
      'config_invalid',
      `${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} (${result.file ?? 'no server.toml'}, environment): ${result.problems.join('; ')}`,
      { problems: result.problems, ...(result.file ? { path: result.file } : {}) },
    );
  }
  return result;
}
