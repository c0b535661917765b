/**
 * `restore --in PATH [--force]`: replaces the data dir's store with a backup, all or nothing
 * (seed: "Restore"). Order: source exists (exit 5) and is SQLite (exit 7) → filesystem check →
 * the data dir's lock (exit 75 while `serve` runs) → no existing state.db unless --force (exit 3)
 * → the backup is copied to a temporary file in the data dir and opened there with the normal
 * boot path, so a too-new schema (exit 78), a failed migration (exit 70) or corruption (exit 7)
 * is found before anything live is touched → only then are the old files removed and the copy
 * renamed into place. On any failure the temporary files are removed and the data dir is as it was.
 */
import fs from 'node:fs';

import { PortunusError, silentLogger, type Logger } from '@portunus/core';

import { ensureDataDir } from './data-dir.js';
import { checkFilesystem, type StatfsType } from './filesystem.js';
import { acquireStoreLock } from './lock.js';
import type { Migration } from './migrate.js';
import { openDatabase } from './open.js';
import { storePaths, withSidecars } from './paths.js';
import { assertSqliteFile, readHeaderUserVersion } from './sqlite-header.js';

export interface RestoreOptions {
  force?: boolean;
  logger?: Logger;
  migrations?: readonly Migration[];
  statfsType?: StatfsType;
}

export interface RestoreResult {
  dataDir: string;
  schemaVersion: number;
  migrationsApplied: number;
  replaced: boolean;
}

export function restoreStore(
  dataDir: string,
  source: string,
  options: RestoreOptions = {},
): RestoreResult {
  if (!fs.existsSync(source) || !fs.statSync(source).isFile()) {
    throw new PortunusError('source_not_found', `backup ${source} does not exist`, {
      path: source,
    });
  }
  assertSqliteFile(source);
  ensureDataDir(dataDir);
  checkFilesystem(dataDir, options.statfsType);
  const paths = storePaths(dataDir);
  const lock = acquireStoreLock(paths.lock);
  try {
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
      const opened = openDatabase(staging, {
        logger: options.logger ?? silentLogger,
        ...(options.migrations ? { migrations: options.migrations } : {}),
      });
      opened.db.close(); // checkpoints and removes the staging WAL
      if (hasStore) removeFiles([paths.db, paths.wal, paths.shm]);
      fs.renameSync(staging, paths.db);
      return {
        dataDir,
        schemaVersion: opened.schemaVersion,
        migrationsApplied: opened.schemaVersion - before,
        replaced: hasStore,
      };
    } finally {
      removeFiles(withSidecars(staging));
    }
  } finally {
    lock.release();
  }
}

function removeFiles(files: readonly string[]): void {
  for (const file of files) fs.rmSync(file, { force: true });
}
