/**
 * The credential bundle on disk (reference §4.5, DESIGN.md §3): its JSON shape and validation,
 * where it is looked for when `--bundle` is omitted, where `enroll` writes it, and the atomic
 * 0600 write. The token is a secret: it is never put in an error message or a log field. Pure
 * file work on `node:fs`; it must not depend on the control stream or the data plane.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { PortunusError } from '@portunus/core';

export const BUNDLE_VERSION = 1;
export const BUNDLE_FILE_NAME = 'client.bundle.json';

/** The file as written by `enroll` (reference §4.5). `client_id` is absent in pre-v2 bundles. */
export interface Bundle {
  version: 1;
  client_name: string;
  client_id?: string;
  server_endpoint: string;
  /** 64 lowercase hex: SHA-256 of the server certificate's DER. */
  server_cert_sha256: string;
  token: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

const PIN = /^[0-9a-f]{64}$/;

function nonBlank(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value : undefined;
}

/**
 * The search order when `--bundle` is omitted: `$PORTUNUS_CLIENT_BUNDLE`,
 * `$XDG_CONFIG_HOME/portunus/client.bundle.json`, `$HOME/.config/portunus/client.bundle.json`,
 * `./client.bundle.json`. Unset or blank variables are skipped.
 */
export function bundleCandidates(env: Env, cwd: string): string[] {
  const candidates: string[] = [];
  const explicit = nonBlank(env['PORTUNUS_CLIENT_BUNDLE']);
  if (explicit) candidates.push(path.resolve(cwd, explicit));
  candidates.push(...enrollCandidates(env, cwd));
  return candidates;
}

/** Where `enroll` writes without `--out`: the same chain minus `$PORTUNUS_CLIENT_BUNDLE`. */
export function enrollCandidates(env: Env, cwd: string): string[] {
  const candidates: string[] = [];
  const xdg = nonBlank(env['XDG_CONFIG_HOME']);
  if (xdg) candidates.push(path.resolve(cwd, xdg, 'portunus', BUNDLE_FILE_NAME));
  const home = nonBlank(env['HOME']);
  if (home) candidates.push(path.resolve(cwd, home, '.config', 'portunus', BUNDLE_FILE_NAME));
  candidates.push(path.resolve(cwd, BUNDLE_FILE_NAME));
  return candidates;
}

export function defaultEnrollPath(env: Env, cwd: string): string {
  // The last candidate (./client.bundle.json) always exists, so the first is defined.
  return enrollCandidates(env, cwd)[0]!;
}

export type BundleResolution =
  | { found: true; path: string; attempted: string[] }
  | { found: false; attempted: string[]; bootstrapPath: string };

/**
 * Picks the bundle path. An explicit path is used as given (found or not); otherwise the first
 * existing candidate. When nothing exists, `bootstrapPath` is where a self-bootstrap enrolls to.
 */
export function resolveBundlePath(
  explicit: string | undefined,
  env: Env,
  cwd: string,
  exists: (file: string) => boolean = fs.existsSync,
): BundleResolution {
  const attempted =
    explicit !== undefined ? [path.resolve(cwd, explicit)] : bundleCandidates(env, cwd);
  const hit = attempted.find((file) => exists(file));
  if (hit !== undefined) return { found: true, path: hit, attempted };
  return { found: false, attempted, bootstrapPath: attempted[0]! };
}

export function bundleNotFound(attempted: readonly string[]): PortunusError {
  return new PortunusError(
    'bundle_not_found',
    `no client bundle found; tried: ${attempted.join(', ')} ` +
      '(run `portunus-client enroll <URI>` or pass --bundle)',
    { attempted },
  );
}

function invalid(file: string, why: string): PortunusError {
  return new PortunusError('bundle_invalid', `client bundle ${file}: ${why}`, { path: file });
}

/** `host:port` with a port in 1..65535; IPv6 hosts in brackets. */
export function splitEndpoint(endpoint: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(endpoint.trim());
  if (!match) return undefined;
  const host = match[1] ?? match[2] ?? '';
  const port = Number(match[3]);
  if (host === '' || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** Validates parsed JSON as a version-1 bundle; `file` only names it in messages. */
export function validateBundle(value: unknown, file: string): Bundle {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(file, 'not a JSON object');
  }
  const raw = value as Record<string, unknown>;
  if (raw['version'] !== BUNDLE_VERSION) {
    throw invalid(file, `version must be ${BUNDLE_VERSION}, got ${JSON.stringify(raw['version'])}`);
  }
  const text = (name: string): string | undefined => {
    const field = raw[name];
    if (field === undefined || field === null) return undefined;
    if (typeof field !== 'string') throw invalid(file, `${name} must be a string`);
    return field;
  };
  const endpoint = text('server_endpoint') ?? '';
  if (!splitEndpoint(endpoint)) throw invalid(file, 'server_endpoint must be host:port');
  const pin = (text('server_cert_sha256') ?? '').toLowerCase().replace(/^sha256:/, '');
  if (!PIN.test(pin)) throw invalid(file, 'server_cert_sha256 must be 64 hex characters');
  const token = text('token') ?? '';
  // The token's value never appears in a message.
  if (token.trim() === '') throw invalid(file, 'token is missing');
  const clientId = text('client_id');
  return {
    version: BUNDLE_VERSION,
    client_name: text('client_name') ?? '',
    ...(clientId !== undefined && clientId !== '' ? { client_id: clientId } : {}),
    server_endpoint: endpoint.trim(),
    server_cert_sha256: pin,
    token,
  };
}

export function readBundle(file: string): Bundle {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new PortunusError('bundle_invalid', `client bundle ${file}: cannot read (${code})`, {
      path: file,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid(file, 'not valid JSON');
  }
  return validateBundle(parsed, file);
}

/**
 * Writes the bundle atomically: missing parents are created 0700, the data goes to a 0600 temp
 * file in the same directory, is flushed, then renamed over the destination.
 */
export function writeBundle(file: string, bundle: Bundle): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const body = `${JSON.stringify(
    {
      version: bundle.version,
      client_name: bundle.client_name,
      ...(bundle.client_id !== undefined ? { client_id: bundle.client_id } : {}),
      server_endpoint: bundle.server_endpoint,
      server_cert_sha256: bundle.server_cert_sha256,
      token: bundle.token,
    },
    null,
    2,
  )}\n`;
  const fd = fs.openSync(temp, 'wx', 0o600);
  try {
    fs.writeFileSync(fd, body);
    // The umask can only remove bits; this makes 0600 exact even if the mode was masked.
    fs.fchmodSync(fd, 0o600);
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
}
