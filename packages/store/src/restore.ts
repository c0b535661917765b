/**
 * `restore --in PATH [--force]`: replaces the data dir's store with a backup, all or nothing
 * (seed: "Restore"). Order: source exists (exit 5) and is SQLite (exit 7) → filesystem check →
 * the data dir's lock (exit 75 while `serve` runs) → no existing state.db unless --force (exit 3)
 * → the backup is copied to a temporary file in the data dir and opened there with the normal
 * boot path, so a too-new schema (exit 78), a failed migration (exit 70) or corruption (exit 7)
 * is found before anything live is touched → only then is the copy swapped in (swapInto: state.db
 * is always one whole store, even if the process dies mid-swap). On any failure the data dir is exactly as it was: the temporary files go, a
 * lock file or data dir this call created goes, and the error names the operator's input file
 * rather than the staging copy. The filesystem is checked before the data dir is created, so a
 * refused location (tmpfs) gets nothing.
 */
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';

import { PortunusError, silentLogger, type Logger } from '@portunus/core';

import { ensureDataDir } from './data-dir.js';
import { checkFilesystem, nearestExistingAncestor, type StatfsType } from './filesystem.js';
import { acquireStoreLock } from './lock.js';
import type { Migration } from './migrate.js';
import { openDatabase } from './open.js';
import { storePaths, withSidecars, type StorePaths } from './paths.js';
import { assertSqliteFile, readHeaderUserVersion } from './sqlite-header.js';
import {
  commitTlsFiles,
  discardTlsFiles,
  getTlsIdentity,
  stageTlsFiles,
  tlsFilesAreOurs,
  verifyTlsIdentity,
  type StoredTlsIdentity,
} from './tls-identity.js';

export interface RestoreOptions {
  force?: boolean;
  logger?: Logger;
  migrations?: readonly Migration[];
  statfsType?: StatfsType;
  /**
   * Fault tests only: told before each step of the swap, so a test can kill the process there
   * and prove that state.db is always one whole store.
   */
  onSwapStep?: (step: SwapStep) => void;
}

/** The steps of putting a checked copy in place of the live store, in order. */
export type SwapStep = 'checkpoint_old' | 'set_old_wal_aside' | 'rename_new' | 'drop_old_wal';

export interface RestoreResult {
  dataDir: string;
  schemaVersion: number;
  migrationsApplied: number;
  replaced: boolean;
  /**
   * The server TLS identity: `restored` as server.crt/server.key from the backup's
   * server_tls_identity row, `kept_operator` when the data dir holds an operator's pair, or
   * `none` when the backup has no row (a store made before the table existed).
   */
  tls: 'restored' | 'kept_operator' | 'none';
}

export function restoreStore(
  dataDir: string,
  source: string,
  options: RestoreOptions = {},
): RestoreResult {
  const sourceStat = fs.statSync(source, { throwIfNoEntry: false });
  if (sourceStat?.isDirectory()) {
    throw new PortunusError(
      'source_is_directory',
      `backup ${source} is a directory; pass the backup file itself (backup --out DIR writes a timestamped file inside it)`,
      { path: source },
    );
  }
  if (sourceStat === undefined || !sourceStat.isFile()) {
    throw new PortunusError('source_not_found', `backup ${source} does not exist`, {
      path: source,
    });
  }
  assertSqliteFile(source);
  checkFilesystem(dataDir, options.statfsType);
  const existingAncestor = nearestExistingAncestor(dataDir);
  const createdDir = ensureDataDir(dataDir);
  const paths = storePaths(dataDir);
  const hadLockFile = fs.existsSync(paths.lock);
  let restored = false;
  try {
    const lock = acquireStoreLock(paths.lock);
    try {
      const result = replaceStore(paths, source, options);
      restored = true;
      return result;
    } finally {
      lock.release();
    }
  } finally {
    if (!restored) {
      // Leave no trace of the refused attempt: only what this call created is removed.
      if (!hadLockFile) removeFiles(withSidecars(paths.lock));
      if (createdDir) removeEmptyDirs(dataDir, existingAncestor);
    }
  }
}

function replaceStore(paths: StorePaths, source: string, options: RestoreOptions): RestoreResult {
  const hasStore = fs.existsSync(paths.db);
  if (hasStore && !options.force) {
    throw new PortunusError(
      'data_dir_not_empty',
      `${paths.db} already exists; run 'portunus-server reset --confirm' first or pass --force`,
      { path: paths.db },
    );
  }
  const staging = `${paths.db}.restoring`;
  removeFiles(withSidecars(staging));
  try {
    fs.copyFileSync(source, staging, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(staging, 0o600);
    const before = readHeaderUserVersion(staging);
    let opened;
    try {
      opened = openDatabase(staging, {
        logger: options.logger ?? silentLogger,
        ...(options.migrations ? { migrations: options.migrations } : {}),
      });
    } catch (error) {
      throw namingSource(error, staging, source);
    }
    let identity: StoredTlsIdentity | undefined;
    try {
      identity = getTlsIdentity(opened.db);
      if (identity !== undefined) verifyTlsIdentity(identity);
    } finally {
      opened.db.close(); // checkpoints and removes the staging WAL
    }
    const tls =
      identity === undefined
        ? 'none'
        : tlsFilesAreOurs(paths.dataDir)
          ? 'restored'
          : 'kept_operator';
    // The TLS files are staged before the live store changes and renamed after it: a crash in
    // between leaves pending files that the next serve completes (see tls-identity.ts).
    let markerCreated = false;
    try {
      if (tls === 'restored' && identity !== undefined) {
        markerCreated = stageTlsFiles(paths.dataDir, identity).markerCreated;
      }
      swapInto(paths, staging, hasStore, options.onSwapStep);
    } catch (error) {
      discardTlsFiles(paths.dataDir, { marker: markerCreated });
      throw error;
    }
    if (tls === 'restored') commitTlsFiles(paths.dataDir);
    return {
      dataDir: paths.dataDir,
      schemaVersion: opened.schemaVersion,
      migrationsApplied: opened.schemaVersion - before,
      replaced: hasStore,
      tls,
    };
  } finally {
    removeFiles(withSidecars(staging));
  }
}

/**
 * Puts the checked copy in place of the live store so that, whenever the process dies, state.db
 * is either the whole old store or the whole new one — never missing, as it was while the old
 * files were deleted before the rename. The old store's WAL (a crashed server's committed
 * transactions) is first folded into it; whatever WAL is left is moved aside before the rename
 * (SQLite would replay a stale WAL onto the new file) and dropped only once the new file is in
 * place, so an interrupted swap leaves the old store with its WAL beside it, recoverable.
 */
function swapInto(
  paths: StorePaths,
  staging: string,
  hasStore: boolean,
  onStep: (step: SwapStep) => void = () => undefined,
): void {
  const oldWalAside = `${paths.wal}.replaced`;
  if (hasStore) {
    onStep('checkpoint_old');
    checkpointQuietly(paths.db);
    onStep('set_old_wal_aside');
    if (fs.existsSync(paths.wal)) fs.renameSync(paths.wal, oldWalAside);
    fs.rmSync(paths.shm, { force: true }); // derived from the WAL; rebuilt on open
  }
  onStep('rename_new');
  fs.renameSync(staging, paths.db);
  onStep('drop_old_wal');
  fs.rmSync(oldWalAside, { force: true });
}

/**
 * Folds the WAL into the store file, if the store opens at all: an operator may be restoring
 * precisely because it does not, and then there is nothing to fold.
 */
function checkpointQuietly(file: string): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true });
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch {
    // Unreadable or corrupt: the WAL is moved aside as it is.
  } finally {
    db?.close();
  }
}

/** The staging copy is an implementation detail: an operator must read the file they passed. */
function namingSource(error: unknown, staging: string, source: string): unknown {
  if (!(error instanceof PortunusError)) return error;
  const fields = Object.fromEntries(
    Object.entries(error.fields).map(([key, value]) => [
      key,
      typeof value === 'string' ? value.replaceAll(staging, source) : value,
    ]),
  );
  return new PortunusError(error.code, error.message.replaceAll(staging, source), fields, {
    cause: error,
  });
}

/** Removes `dir` and its parents up to (not including) `stop`, each only while empty. */
function removeEmptyDirs(dir: string, stop: string): void {
  let current = path.resolve(dir);
  while (current !== stop && current !== path.dirname(current)) {
    try {
      fs.rmdirSync(current);
    } catch {
      return; // not empty (someone else's file) or already gone: leave it
    }
    current = path.dirname(current);
  }
}

function removeFiles(files: readonly string[]): void {
  for (const file of files) fs.rmSync(file, { force: true });
}
