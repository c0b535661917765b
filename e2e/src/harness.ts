/**
 * Shared plumbing for the end-to-end tests: run the built `portunus-server` binary against a temp
 * data dir, start `serve` and wait for `server.listening`, and seed or inspect a store directly.
 * Every process is tracked by one ProcessGroup so `after` can kill what is left.
 */
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';

import { ProcessGroup, SERVER_BIN, tempDirs, type RunningProcess } from '@portunus/test-support';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  events: readonly Readonly<Record<string, unknown>>[];
}

/** Every listener on loopback port 0, so tests never collide on ports. */
export const EPHEMERAL_LISTENERS = [
  '--control-listen',
  '127.0.0.1:0',
  '--operator-http-listen',
  '127.0.0.1:0',
  '--metrics-listen',
  '127.0.0.1:0',
] as const;

export const EPHEMERAL_LISTENER_ENV = {
  PORTUNUS_CONTROL_LISTEN: '127.0.0.1:0',
  PORTUNUS_OPERATOR_HTTP_LISTEN: '127.0.0.1:0',
  PORTUNUS_METRICS_LISTEN: '127.0.0.1:0',
} as const;

/** Deadline for one process step (start, exit, a CLI run) when CI's two cores are busy. */
export const SLOW_STEP_MS = 60_000;

export class Harness {
  readonly processes = new ProcessGroup();
  readonly dirs = tempDirs();

  /** A fresh data dir path that does not exist yet (so the server creates it). */
  newDataDir(): string {
    return path.join(this.dirs.make(), 'data');
  }

  cli(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
    return this.processes.run(SERVER_BIN, args, { env });
  }

  async serve(
    dataDir: string,
    env: Record<string, string | undefined> = {},
  ): Promise<RunningProcess> {
    const server = this.processes.node(
      SERVER_BIN,
      ['--data-dir', dataDir, 'serve', ...EPHEMERAL_LISTENERS],
      {
        env,
      },
    );
    await server.waitForEvent('server.listening');
    return server;
  }

  /**
   * Like serve(), with a deadline fit for a loaded 2-core machine (SLOW_STEP_MS) instead of the
   * default 20 s.
   */
  async serveWithin(
    dataDir: string,
    env: Record<string, string | undefined> = {},
    timeoutMs = SLOW_STEP_MS,
  ): Promise<RunningProcess> {
    const server = this.processes.node(
      SERVER_BIN,
      ['--data-dir', dataDir, 'serve', ...EPHEMERAL_LISTENERS],
      { env },
    );
    await server.waitForEvent('server.listening', { timeoutMs });
    return server;
  }

  /** Runs `portunus-server args…` to completion (optionally feeding stdin), within SLOW_STEP_MS. */
  run(
    args: readonly string[],
    options: { env?: Record<string, string | undefined>; stdin?: string } = {},
  ): Promise<CliResult> {
    return this.processes.run(SERVER_BIN, args, {
      env: options.env ?? {},
      ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
      timeoutMs: SLOW_STEP_MS,
    });
  }

  async close(): Promise<void> {
    await this.processes.killAll();
    this.dirs.cleanup();
  }
}

export function eventNames(result: {
  events: readonly Readonly<Record<string, unknown>>[];
}): string[] {
  return result.events.map((line) => String(line['event']));
}

/** Opens a database file read-only for assertions. */
export function inspect<T>(file: string, read: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

export function auditSeqs(file: string): Set<number> {
  return inspect(
    file,
    (db) => new Set(db.prepare('SELECT seq FROM audit').pluck().all() as number[]),
  );
}

export function fileMode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

/** The real addresses `server.listening` reported, each "host:port". */
export interface ListenerAddresses {
  control: string;
  operator_http: string;
  metrics: string;
}

export function listenersOf(server: RunningProcess): ListenerAddresses {
  const listening = server.events.find((line) => line.event === 'server.listening');
  if (!listening) throw new Error('server.listening has not been logged yet');
  return listening['listeners'] as ListenerAddresses;
}

const SETUP_BANNER = /^Portunus onboarding setup token: (\S+)$/m;

/** The setup token of the stderr banner (printed before server.listening), if there is one. */
export function setupTokenOf(server: RunningProcess): string | undefined {
  return SETUP_BANNER.exec(server.stderr())?.[1];
}

/** How a request authenticates: an API/operator token, or a web session cookie (+ CSRF headers). */
export type HttpAuth = { bearer: string } | { cookie: string } | undefined;

export interface HttpAnswer<T> {
  status: number;
  headers: Headers;
  body: T;
  /** The `error.code` of an error envelope, if the answer is one. */
  errorCode: string | undefined;
}

/** A tiny client for the operator HTTP API of a running server, over real sockets. */
export class OperatorHttp {
  constructor(readonly hostPort: string) {}

  get origin(): string {
    return `http://${this.hostPort}`;
  }

  async request<T = Record<string, unknown>>(
    method: string,
    urlPath: string,
    options: { auth?: HttpAuth; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<HttpAnswer<T>> {
    const headers: Record<string, string> = {};
    const auth = options.auth;
    if (auth && 'bearer' in auth) headers['authorization'] = `Bearer ${auth.bearer}`;
    if (auth && 'cookie' in auth) {
      headers['cookie'] = auth.cookie;
      headers['origin'] = this.origin;
      headers['x-portunus-csrf'] = '1';
    }
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    Object.assign(headers, options.headers);
    const response = await fetch(`${this.origin}${urlPath}`, {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      signal: AbortSignal.timeout(SLOW_STEP_MS),
    });
    const text = await response.text();
    const body = (text === '' ? undefined : JSON.parse(text)) as T;
    const envelope = body as { error?: { code?: unknown } } | undefined;
    const code = envelope?.error?.code;
    return {
      status: response.status,
      headers: response.headers,
      body,
      errorCode: typeof code === 'string' ? code : undefined,
    };
  }

  /** Every audit row, newest first, by walking the envelope's next_cursor to the end. */
  async auditAll(auth: HttpAuth, pageSize = 1000): Promise<Record<string, unknown>[]> {
    const since = encodeURIComponent('1970-01-01T00:00:00Z');
    const entries: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await this.request<{
        entries: Record<string, unknown>[];
        next_cursor?: string;
        count: number;
      }>(
        'GET',
        `/v1/audit?since=${since}&limit=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        { auth },
      );
      if (page.status !== 200) {
        throw new Error(`GET /v1/audit answered ${page.status}: ${JSON.stringify(page.body)}`);
      }
      entries.push(...page.body.entries);
      cursor = page.body.next_cursor;
      if (cursor === undefined) return entries;
    }
  }
}
