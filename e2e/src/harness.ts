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
    const server = this.processes.node(SERVER_BIN, ['--data-dir', dataDir, 'serve'], { env });
    await server.waitForEvent('server.listening');
    return server;
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
