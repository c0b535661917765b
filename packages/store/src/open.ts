/**
 * The store's boot sequence (DESIGN.md §4), each step with its own event: data dir (0700) →
 * filesystem check → exclusive lock → header check → refuse a too-new schema → PRAGMAs → migrate
 * → `store.ready {schema_version}`. The too-new check only reads, and precedes the PRAGMAs because
 * `journal_mode=WAL` rewrites the header of a rollback-journal file (a backup): a refused file is
 * left byte-identical. `openDatabase` is the part after the lock, shared with `restore`, which
 * validates a copy before it becomes the live database. Depends on core and better-sqlite3 only.
 */
import fs from 'node:fs';

import Database, { type Database as SqliteDatabase } from 'better-sqlite3';

import { EVENTS, PortunusError, silentLogger, type Logger } from '@portunus/core';

import { ensureDataDir } from './data-dir.js';
import { checkFilesystem, type StatfsType } from './filesystem.js';
import { acquireStoreLock, type StoreLock } from './lock.js';
import { assertSchemaNotTooNew, loadMigrations, migrate, type Migration } from './migrate.js';
import { storePaths, type StorePaths } from './paths.js';
import { assertSqliteFile } from './sqlite-header.js';

export const BUSY_TIMEOUT_MS = 5000;
const AUTO_VACUUM_INCREMENTAL = 2;

export interface OpenDatabaseOptions {
  logger?: Logger;
  migrations?: readonly Migration[];
  now?: () => number;
}

export interface OpenedDatabase {
  db: SqliteDatabase;
  schemaVersion: number;
}

export interface Store {
  readonly db: SqliteDatabase;
  readonly paths: StorePaths;
  readonly schemaVersion: number;
  /** Closes the connection (checkpointing the WAL) and then releases the lock. Idempotent. */
  close(): void;
}

export interface OpenStoreOptions extends OpenDatabaseOptions {
  statfsType?: StatfsType;
}

export function openStore(dataDir: string, options: OpenStoreOptions = {}): Store {
  const logger = options.logger ?? silentLogger;
  const paths = storePaths(dataDir);
  // Checked first, so a refused location (e.g. /dev/shm) gets no directory created in it.
  const fsType = checkFilesystem(dataDir, options.statfsType);
  ensureDataDir(dataDir);
  logger.info(EVENTS.filesystemChecked, { path: dataDir, fs_magic: fsType });
  const lock = acquireStoreLock(paths.lock);
  logger.info(EVENTS.storeLocked, { path: paths.lock });
  let opened: OpenedDatabase;
  try {
    opened = openDatabase(paths.db, options);
  } catch (error) {
    lock.release();
    throw error;
  }
  logger.info(EVENTS.storeReady, { path: paths.db, schema_version: opened.schemaVersion });
  return lockedStore(opened, paths, lock, logger);
}

function lockedStore(
  opened: OpenedDatabase,
  paths: StorePaths,
  lock: StoreLock,
  logger: Logger,
): Store {
  let open = true;
  return {
    db: opened.db,
    paths,
    schemaVersion: opened.schemaVersion,
    close() {
      if (!open) return;
      open = false;
      try {
        opened.db.close();
      } finally {
        lock.release();
      }
      logger.info(EVENTS.storeClosed, { path: paths.db });
    },
  };
}

/**
 * Opens (creating if missing) one database file with the store's PRAGMAs and brings its schema
 * to the shipped head. The caller must already hold the data dir's lock.
 */
export function openDatabase(file: string, options: OpenDatabaseOptions = {}): OpenedDatabase {
  const logger = options.logger ?? silentLogger;
  const migrations = options.migrations ?? loadMigrations();
  if (fs.existsSync(file)) {
    // A zero-byte file is how SQLite spells "new, empty database"; anything else must be SQLite.
    if (fs.statSync(file).size > 0) assertSqliteFile(file);
  } else {
    fs.closeSync(fs.openSync(file, 'a', 0o600)); // SQLite would create it 0644; WAL/SHM copy this mode.
  }
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  try {
    // Before any PRAGMA: journal_mode=WAL would already rewrite a refused file's header.
    assertSchemaNotTooNew(db, migrations, file);
    const isNew = (db.pragma('page_count', { simple: true }) as number) === 0;
    applyPragmas(db, isNew);
    logger.info(EVENTS.storeOpened, { path: file, created: isNew });
    const result = migrate(db, migrations, logger, file, options.now);
    ensureIncrementalVacuum(db, logger, file);
    return { db, schemaVersion: result.schemaVersion };
  } catch (error) {
    db.close();
    throw classifyOpenError(error, file);
  }
}

function applyPragmas(db: SqliteDatabase, isNew: boolean): void {
  // Must precede the first table; on an existing file ensureIncrementalVacuum converts it.
  if (isNew) db.pragma('auto_vacuum = INCREMENTAL');
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal')
    throw new PortunusError('store_error', `cannot enable WAL (journal_mode=${String(mode)})`);
  // FULL: an acknowledged write survives power loss, not only a crash (DESIGN.md §8.3).
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma('temp_store = MEMORY');
}

function ensureIncrementalVacuum(db: SqliteDatabase, logger: Logger, file: string): void {
  if (db.pragma('auto_vacuum', { simple: true }) === AUTO_VACUUM_INCREMENTAL) return;
  // A file created without it (by another tool, or an old backup): switching needs one VACUUM.
  db.pragma('auto_vacuum = INCREMENTAL');
  db.exec('VACUUM');
  logger.info(EVENTS.storeAutoVacuumEnabled, { path: file });
}

function classifyOpenError(error: unknown, file: string): unknown {
  if (error instanceof PortunusError) return error;
  const code = (error as { code?: unknown }).code;
  if (code === 'SQLITE_NOTADB') {
    return new PortunusError(
      'not_sqlite',
      `${file} is not a SQLite database`,
      { path: file },
      { cause: error },
    );
  }
  if (code === 'SQLITE_CORRUPT') {
    return new PortunusError(
      'store_corrupt',
      `${file} is corrupt: ${(error as Error).message}`,
      { path: file },
      {
        cause: error,
      },
    );
  }
  if (code === 'SQLITE_BUSY') {
    return new PortunusError(
      'store_in_use',
      `${file} is busy: another process is writing it`,
      { path: file },
      {
        cause: error,
      },
    );
  }
  return new PortunusError(
    'store_error',
    `cannot open ${file}: ${(error as Error).message}`,
    { path: file },
    {
      cause: error,
    },
  );
}
