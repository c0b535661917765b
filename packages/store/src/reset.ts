/**
 * `reset [--confirm]`: wipes the store's files so the next `serve` starts empty (seed: "Reset").
 * Without --confirm it only reports what it would remove. It removes state.db and its sidecars
 * and the lock file, never server.crt, server.key or server.toml, and refuses a state.db whose
 * first 16 bytes are not the SQLite header (a typo'd --data-dir must not delete someone's file).
 * It takes the data dir's lock, so it refuses while `serve` runs.
 */
import fs from 'node:fs';

import { acquireStoreLock } from './lock.js';
import { storePaths } from './paths.js';
import { assertSqliteFile } from './sqlite-header.js';

export interface ResetResult {
  /** The database path that is (or would be) removed; undefined when there is no store. */
  db?: string;
  removed: string[];
  dryRun: boolean;
}

export function resetStore(dataDir: string, options: { confirm: boolean }): ResetResult {
  const paths = storePaths(dataDir);
  if (!fs.existsSync(paths.db)) return { removed: [], dryRun: !options.confirm };
  assertSqliteFile(paths.db);
  if (!options.confirm) return { db: paths.db, removed: [], dryRun: true };
  const lock = acquireStoreLock(paths.lock);
  const removed: string[] = [];
  try {
    assertSqliteFile(paths.db); // checked again under the lock
    for (const file of [paths.db, paths.wal, paths.shm]) {
      if (fs.existsSync(file)) {
        fs.rmSync(file);
        removed.push(file);
      }
    }
    // Unlinking the lock file while holding it is safe: the lock lives on the open inode.
    fs.rmSync(paths.lock, { force: true });
    removed.push(paths.lock);
  } finally {
    lock.release();
  }
  return { db: paths.db, removed, dryRun: false };
}
