/**
 * The exclusive lock on `<data-dir>/state.db.lock` that keeps one process per data dir (seed:
 * store_in_use, exit 75). It must vanish when its holder dies, even by SIGKILL, with no PID files
 * or staleness guesses. Node has no flock(2), so the lock is a POSIX advisory lock taken through
 * SQLite: the lock file is opened as an (empty) SQLite database and held in an open
 * `BEGIN EXCLUSIVE` transaction. SQLite's unix VFS locks it with fcntl(2), which the kernel
 * releases when the process exits, and it also refuses a second connection inside the same
 * process. Nothing else may open the lock file: closing any descriptor of a file drops the
 * process's fcntl locks on it, so the file is only ever created (exclusively) here, never opened
 * and closed again by this process, which may already hold it.
 */
import fs from 'node:fs';

import Database from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

export interface StoreLock {
  readonly path: string;
  release(): void;
}

export function acquireStoreLock(lockPath: string): StoreLock {
  createLockFile(lockPath);
  const holder = new Database(lockPath, { timeout: 0 });
  try {
    holder.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    holder.close();
    if (isBusy(error)) {
      throw new PortunusError(
        'store_in_use',
        `another portunus-server process holds ${lockPath}; stop it first (clustering is out of scope)`,
        { path: lockPath },
      );
    }
    throw new PortunusError(
      'io_error',
      `cannot lock ${lockPath}: ${String(error)}`,
      { path: lockPath },
      {
        cause: error,
      },
    );
  }
  let held = true;
  return {
    path: lockPath,
    release() {
      if (!held) return;
      held = false;
      holder.close();
    },
  };
}

/**
 * Creates the lock file with 0600 before SQLite opens it (SQLite would use 0644). Only a file that
 * did not exist is opened and closed: opening and closing an existing one would drop the fcntl
 * locks this process may hold on it (POSIX), handing the store to a second process.
 */
function createLockFile(lockPath: string): void {
  let fd: number;
  try {
    fd = fs.openSync(lockPath, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new PortunusError(
      'io_error',
      `cannot create ${lockPath}: ${String(error)}`,
      { path: lockPath },
      { cause: error },
    );
  }
  fs.closeSync(fd);
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}
