/**
 * The migration runner: numbered plain-SQL files (`V001__init.sql`) applied in order, each in
 * its own `BEGIN IMMEDIATE` transaction, recorded in `schema_migrations` with name and checksum
 * (DESIGN.md §4). It refuses three things before touching the schema: a database newer than the
 * shipped files (`schema_version_too_new`, exit 78), an applied migration whose file changed
 * (`migration_checksum_mismatch`) and a recorded version the binary does not ship
 * (`migration_missing`). No library checks both checksums and a too-new schema (see
 * reference/deps-verified.md §2), hence our own ~100 lines. Depends on core and better-sqlite3.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { Database } from 'better-sqlite3';

import { EVENTS, PortunusError, type Logger } from '@portunus/core';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export interface MigrationResult {
  readonly applied: readonly Migration[];
  readonly schemaVersion: number;
}

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));
const FILE_NAME = /^V(\d{3,})__([a-z0-9_]+)\.sql$/;

/** Checksum of a migration's text; line endings are normalised so a checkout on Windows agrees. */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n')).digest('hex');
}

export function migrationFromText(version: number, name: string, sql: string): Migration {
  return { version, name, sql, checksum: migrationChecksum(sql) };
}

/** Reads and orders the shipped migrations; versions must run 1, 2, 3 … with no gap. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations = fs
    .readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .map((file) => {
      const match = FILE_NAME.exec(file);
      if (!match?.[1] || !match[2]) {
        throw new PortunusError(
          'migration_failed',
          `migration file ${file} is not named V<nnn>__<name>.sql`,
        );
      }
      return migrationFromText(
        Number(match[1]),
        match[2],
        fs.readFileSync(`${dir}/${file}`, 'utf8'),
      );
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new PortunusError(
        'migration_failed',
        `migrations must be numbered from 1 without gaps; found V${migration.version}`,
      );
    }
  });
  return migrations;
}

export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.at(-1)?.version ?? 0;
}

interface HistoryRow {
  version: number;
  name: string;
  checksum: string;
}

const HISTORY_DDL = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY CHECK (version >= 1),
  name       TEXT    NOT NULL,
  checksum   TEXT    NOT NULL CHECK (length(checksum) = 64),
  applied_at INTEGER NOT NULL CHECK (applied_at >= 0)
) STRICT`;

function readHistory(db: Database): HistoryRow[] {
  const exists = db
    .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (!exists) return [];
  return db
    .prepare('SELECT version, name, checksum FROM schema_migrations ORDER BY version')
    .all() as HistoryRow[];
}

/** The highest applied migration, 0 for a fresh database. */
export function readSchemaVersion(db: Database): number {
  return readHistory(db).at(-1)?.version ?? 0;
}

/** Throws `schema_version_too_new` when the database is ahead of the shipped migrations. */
export function assertSchemaNotTooNew(
  db: Database,
  migrations: readonly Migration[],
  file: string,
): void {
  const onDisk = readSchemaVersion(db);
  const supported = latestVersion(migrations);
  if (onDisk > supported) {
    throw new PortunusError(
      'schema_version_too_new',
      `${file} has schema version ${onDisk} but this binary supports up to ${supported}; ` +
        'use the matching (or a newer) portunus-server',
      { path: file, on_disk: onDisk, binary_supports: supported },
    );
  }
}

export function migrate(
  db: Database,
  migrations: readonly Migration[],
  logger: Logger,
  file: string,
  now: () => number = Date.now,
): MigrationResult {
  db.exec(HISTORY_DDL);
  assertSchemaNotTooNew(db, migrations, file);
  const shipped = new Map(migrations.map((migration) => [migration.version, migration]));
  const history = readHistory(db);
  for (const row of history) {
    const migration = shipped.get(row.version);
    if (!migration) {
      throw new PortunusError(
        'migration_missing',
        `${file} records migration V${row.version} (${row.name}), which this binary does not ship`,
        {
          path: file,
          version: row.version,
        },
      );
    }
    if (migration.checksum !== row.checksum) {
      throw new PortunusError(
        'migration_checksum_mismatch',
        `migration V${row.version} (${row.name}) was changed after it was applied to ${file}; ` +
          'restore the original file and add a new migration instead',
        { path: file, version: row.version, recorded: row.checksum, shipped: migration.checksum },
      );
    }
  }
  const done = new Set(history.map((row) => row.version));
  const record = db.prepare(
    'INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)',
  );
  const applied: Migration[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    const apply = db.transaction(() => {
      db.exec(migration.sql);
      record.run(migration.version, migration.name, migration.checksum, now());
      // A cheap mirror of the version, readable from header offset 60 without SQL.
      db.pragma(`user_version = ${migration.version}`);
    });
    try {
      apply.immediate();
    } catch (error) {
      throw new PortunusError(
        'migration_failed',
        `migration V${migration.version} (${migration.name}) failed on ${file}: ${(error as Error).message}; the database was left at the previous version`,
        { path: file, version: migration.version },
        { cause: error },
      );
    }
    logger.info(EVENTS.migrationApplied, { version: migration.version, name: migration.name });
    applied.push(migration);
  }
  return { applied, schemaVersion: latestVersion(migrations) };
}
