/**
 * `backup`: an online copy of the live store through SQLite's backup API, safe while `serve`
 * writes (seed: "Online backup … WAL-aware, no quiescing needed"). It takes no lock and opens
 * the source read-only. The copy is made in one step: a step-wise backup restarts whenever another
 * connection commits and may never finish under a busy writer (reference/deps-verified.md §1). It
 * is written to a temporary file beside the destination, checked with `quick_check`, switched to
 * a self-contained rollback-journal file, and only then linked into place, so the destination
 * either does not exist or holds a verified backup; an existing destination is never replaced.
 * The source is never opened with `fs`: the library may run inside `serve`, whose live connection
 * holds fcntl locks on state.db that POSIX drops when any descriptor of that file in the process
 * is closed, so its header is checked by SQLite itself (SQLITE_NOTADB is `not_sqlite`).
 */
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';

import { PortunusError, compactUtcStamp } from '@portunus/core';

import { BUSY_TIMEOUT_MS } from './open.js';
import { storePaths, withSidecars } from './paths.js';
import { readSchemaVersion } from './migrate.js';

export interface BackupResult {
  path: string;
  bytes: number;
  schemaVersion: number;
  durationMs: number;
}

/** Every page in one step (see the module comment). */
const ALL_PAGES = 0x7fffffff;

/** Where `--out` points: a file path, or a directory that gets a timestamped file inside. */
export function resolveBackupTarget(out: string, now: number = Date.now()): string {
  const target = path.resolve(out);
  if (fs.existsSync(target) && fs.statSync(target).isDirectory()) {
    return path.join(target, `portunus-state-${compactUtcStamp(now)}.db`);
  }
  return target;
}

export async function backupStore(
  dataDir: string,
  out: string,
  now: () => number = Date.now,
): Promise<BackupResult> {
  const started = now();
  const source = storePaths(dataDir).db;
  const db = openSource(source);
  try {
    return await backupFrom(db, resolveBackupTarget(out, started), started, now);
  } finally {
    db.close();
  }
}

/**
 * Opens the source read-only and makes SQLite read its header, refusing a missing file (exit 5)
 * and one that is not SQLite (exit 7) without ever opening and closing it through `fs`.
 */
function openSource(source: string): Database.Database {
  if (!fs.existsSync(source)) {
    throw new PortunusError('source_not_found', `no store to back up: ${source} does not exist`, {
      path: source,
    });
  }
  // SQLite reads a zero-byte file as an empty database; the header check refuses it (no open).
  if (fs.statSync(source).size === 0) throw notSqlite(source);
  let db: Database.Database | undefined;
  try {
    db = new Database(source, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    db.pragma('schema_version'); // reads page 1: SQLITE_NOTADB unless SQLite recognises its header
    return db;
  } catch (error) {
    db?.close();
    if ((error as { code?: unknown }).code === 'SQLITE_NOTADB') throw notSqlite(source, error);
    throw new PortunusError(
      'io_error',
      `cannot read ${source}: ${(error as Error).message}`,
      { path: source },
      { cause: error },
    );
  }
}

function notSqlite(source: string, cause?: unknown): PortunusError {
  return new PortunusError(
    'not_sqlite',
    `${source} is not a SQLite database (SQLite does not recognise its header); nothing was changed`,
    { path: source },
    cause === undefined ? {} : { cause },
  );
}

async function backupFrom(
  db: Database.Database,
  target: string,
  started: number,
  now: () => number,
): Promise<BackupResult> {
  if (fs.existsSync(target)) {
    throw new PortunusError(
      'destination_exists',
      `${target} already exists; backup never overwrites`,
      {
        path: target,
      },
    );
  }
  if (!fs.existsSync(path.dirname(target))) {
    throw new PortunusError('io_error', `directory ${path.dirname(target)} does not exist`, {
      path: target,
    });
  }
  const partial = `${target}.partial-${process.pid}`;
  try {
    await db.backup(partial, { progress: () => ALL_PAGES });
    fs.chmodSync(partial, 0o600); // the store holds credential hashes
    const schemaVersion = verifyCopy(partial);
    try {
      fs.linkSync(partial, target); // atomic, and fails instead of replacing a file that appeared
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new PortunusError(
          'destination_exists',
          `${target} already exists; backup never overwrites`,
          {
            path: target,
          },
        );
      }
      throw error;
    }
    return {
      path: target,
      bytes: fs.statSync(target).size,
      schemaVersion,
      durationMs: now() - started,
    };
  } catch (error) {
    if (error instanceof PortunusError) throw error;
    throw new PortunusError(
      'io_error',
      `backup to ${target} failed: ${(error as Error).message}`,
      { path: target },
      {
        cause: error,
      },
    );
  } finally {
    for (const file of withSidecars(partial)) fs.rmSync(file, { force: true });
  }
}

/** quick_check the copy and make it one self-contained file; returns its schema version. */
function verifyCopy(file: string): number {
  const copy = new Database(file, { fileMustExist: true });
  try {
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') {
      throw new PortunusError('store_corrupt', `backup copy failed quick_check: ${String(check)}`, {
        path: file,
      });
    }
    copy.pragma('journal_mode = DELETE');
    return readSchemaVersion(copy);
  } finally {
    copy.close();
  }
}
