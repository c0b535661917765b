// Proves the migration runner's refusals leave the database exactly as it was: a version the
// binary does not ship, a too-new schema, a failed migration, and the file names it accepts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import Database from 'better-sqlite3';

import { silentLogger } from '@portunus/core';

import {
  latestVersion,
  loadMigrations,
  migrate,
  migrationChecksum,
  migrationFromText,
  readSchemaVersion,
} from './migrate.js';
import { openDatabase, openStore } from './open.js';
import { storePaths } from './paths.js';
import { assertFails, tempStores } from './store.harness.js';

const temp = tempStores();

const v1 = migrationFromText(1, 'one', 'CREATE TABLE one (x INTEGER) STRICT;');
const v2 = migrationFromText(2, 'two', 'CREATE TABLE two (x INTEGER) STRICT;');
const v3 = migrationFromText(3, 'three', 'CREATE TABLE three (x INTEGER) STRICT;');

/** Everything a migration could have changed, for before/after comparisons. */
function snapshot(db: Database.Database): unknown {
  return {
    schema: db.prepare('SELECT type, name, sql FROM sqlite_schema ORDER BY name').all(),
    history: db.prepare('SELECT * FROM schema_migrations ORDER BY version').all(),
    userVersion: db.pragma('user_version', { simple: true }),
  };
}

/**
 * A closed store whose history records a V999 this binary does not ship, as a newer binary leaves
 * it; with `rollbackJournal`, switched out of WAL like a copied backup. Returns its state.db.
 */
function tooNewStateDb(dir: string, options: { rollbackJournal?: boolean } = {}): string {
  openStore(dir).close();
  const file = storePaths(dir).db;
  const raw = new Database(file);
  raw.prepare('INSERT INTO schema_migrations VALUES (999, ?, ?, 0)').run('future', 'f'.repeat(64));
  if (options.rollbackJournal) raw.pragma('journal_mode = DELETE');
  raw.close();
  return file;
}

describe('migrate', () => {
  it('records every shipped migration of a fresh store with version, name and checksum', () => {
    const store = openStore(temp.dir());
    try {
      const shipped = loadMigrations();
      assert.ok(shipped.length >= 1);
      assert.deepEqual(
        store.db.prepare('SELECT version, name, checksum FROM schema_migrations').all(),
        shipped.map(({ version, name, sql }) => ({
          version,
          name,
          checksum: migrationChecksum(sql),
        })),
      );
      assert.equal(store.schemaVersion, latestVersion(shipped));
      assert.equal(store.db.pragma('user_version', { simple: true }), latestVersion(shipped));
      const appliedAt = store.db.prepare('SELECT applied_at FROM schema_migrations').pluck().all();
      for (const at of appliedAt) assert.ok(typeof at === 'number' && at > 0);
    } finally {
      store.close();
    }
  });

  it('reopens an up-to-date store without applying or recording anything', () => {
    const dir = temp.dir();
    openStore(dir).close();
    const before = fs.readFileSync(storePaths(dir).db);
    const store = openStore(dir);
    try {
      assert.equal(
        store.db.prepare('SELECT count(*) FROM schema_migrations').pluck().get(),
        loadMigrations().length,
      );
    } finally {
      store.close();
    }
    assert.ok(fs.readFileSync(storePaths(dir).db).equals(before), 'a no-op boot rewrote state.db');
  });

  it('normalises CRLF line endings in checksums', () => {
    assert.equal(migrationChecksum('A;\r\nB;\r\n'), migrationChecksum('A;\nB;\n'));
    assert.notEqual(migrationChecksum('A;\nB;\n'), migrationChecksum('A;\nB; \n'));
  });

  it('refuses a recorded version the binary does not ship (migration_missing) and changes nothing', () => {
    const db = new Database(':memory:');
    migrate(db, [v1, v2], silentLogger, 'mem');
    const before = snapshot(db);
    const error = assertFails('migration_missing', 70, () =>
      migrate(db, [v1, v3], silentLogger, 'mem'),
    );
    assert.equal(error.fields['version'], 2);
    assert.match(error.message, /V2 \(two\)/);
    assert.deepEqual(snapshot(db), before);
  });

  it('refuses an edited applied migration, naming it, and applies nothing after it', () => {
    const db = new Database(':memory:');
    migrate(db, [v1], silentLogger, 'mem');
    const edited = migrationFromText(1, 'one', 'CREATE TABLE one (x INTEGER, y TEXT) STRICT;');
    const before = snapshot(db);
    const error = assertFails('migration_checksum_mismatch', 70, () =>
      migrate(db, [edited, v2], silentLogger, 'mem'),
    );
    assert.equal(error.fields['version'], 1);
    assert.equal(error.fields['recorded'], v1.checksum);
    assert.equal(error.fields['shipped'], edited.checksum);
    assert.deepEqual(snapshot(db), before, 'V2 must not run after a refused history');
  });

  it('refuses a too-new database with on_disk/binary_supports and changes nothing', () => {
    const db = new Database(':memory:');
    migrate(db, [v1, v2, v3], silentLogger, 'mem');
    const before = snapshot(db);
    const error = assertFails('schema_version_too_new', 78, () =>
      migrate(db, [v1], silentLogger, 'mem'),
    );
    assert.equal(error.event, 'startup.schema_version_too_new');
    assert.equal(error.fields['on_disk'], 3);
    assert.equal(error.fields['binary_supports'], 1);
    assert.deepEqual(snapshot(db), before);
  });

  it('refuses a too-new state.db through openStore, leaves the file byte-identical and unlocks', () => {
    const dir = temp.dir();
    const file = tooNewStateDb(dir);
    const before = fs.readFileSync(file);
    const error = assertFails('schema_version_too_new', 78, () => openStore(dir));
    assert.equal(error.fields['on_disk'], 999);
    assert.equal(error.fields['binary_supports'], latestVersion(loadMigrations()));
    assert.ok(fs.readFileSync(file).equals(before), 'state.db changed');
    assert.equal(fs.existsSync(storePaths(dir).wal), false, 'a -wal file was left behind');
    // The refusal released the lock: the next attempt fails for the same reason, not 75.
    assertFails('schema_version_too_new', 78, () => openStore(dir));
  });

  it('refuses a too-new state.db in rollback-journal mode (a copied backup) without touching it', () => {
    // Backups are rollback-journal files; the boot order refuses a too-new schema before any
    // PRAGMA (journal_mode=WAL rewrites header bytes 18-19) writes to the file (DESIGN.md §4).
    const dir = temp.dir();
    const file = tooNewStateDb(dir, { rollbackJournal: true });
    const before = fs.readFileSync(file);
    assert.equal(before[18], 1, 'the fixture is a rollback-journal file');
    assertFails('schema_version_too_new', 78, () => openStore(dir));
    const afterwards = fs.readFileSync(file);
    assert.equal(afterwards[18], 1, 'the refused boot switched the file to WAL');
    assert.ok(afterwards.equals(before), 'state.db changed');
  });

  it('rolls a failing migration back completely, keeps the earlier ones and does not record it', () => {
    const db = new Database(':memory:');
    const bad = migrationFromText(
      3,
      'bad',
      `CREATE TABLE half (x INTEGER) STRICT;
       INSERT INTO half VALUES (1);
       CREATE INDEX half_x ON half (x);
       INSERT INTO one VALUES ('not an integer');`,
    );
    const error = assertFails('migration_failed', 70, () =>
      migrate(db, [v1, v2, bad], silentLogger, 'mem'),
    );
    assert.equal(error.fields['version'], 3);
    assert.match(error.message, /V3 \(bad\).*previous version/);
    assert.ok(error.cause instanceof Error);
    const names = db.prepare('SELECT name FROM sqlite_schema').pluck().all();
    assert.ok(names.includes('one') && names.includes('two'));
    assert.ok(!names.includes('half') && !names.includes('half_x'), String(names));
    assert.deepEqual(
      db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all(),
      [1, 2],
    );
    assert.equal(readSchemaVersion(db), 2);
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    // Fixed, it applies on the next run.
    const fixed = migrationFromText(3, 'bad', 'CREATE TABLE half (x INTEGER) STRICT;');
    assert.deepEqual(
      migrate(db, [v1, v2, fixed], silentLogger, 'mem').applied.map((m) => m.version),
      [3],
    );
  });

  it('reports a failed migration through openDatabase and leaves the file at the previous version', () => {
    const file = path.join(temp.dir(), 'state.db');
    openDatabase(file, { migrations: [v1] }).db.close();
    const bad = migrationFromText(2, 'bad', 'CREATE TABLE two (x INTEGER) STRICT; SELECT nope();');
    assertFails('migration_failed', 70, () => openDatabase(file, { migrations: [v1, bad] }));
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(readSchemaVersion(db), 1);
      assert.equal(
        db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'two'").pluck().get(),
        0,
      );
    } finally {
      db.close();
    }
  });
});

describe('loadMigrations', () => {
  function dirWith(files: Readonly<Record<string, string>>): string {
    const dir = temp.dir();
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
  }

  it('orders by number, not by name, parses names and ignores other files', () => {
    const dir = dirWith({
      'V010__ten.sql': 'SELECT 10;',
      'V002__two_words.sql': 'SELECT 2;',
      'V001__init.sql': 'SELECT 1;',
      'README.md': 'not a migration',
      ...Object.fromEntries(
        Array.from({ length: 6 }, (_, i) => [`V00${i + 3}__n${i + 3}.sql`, `SELECT ${i + 3};`]),
      ),
      'V009__nine.sql': 'SELECT 9;',
    });
    const loaded = loadMigrations(dir);
    assert.deepEqual(
      loaded.map((m) => m.version),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.equal(loaded[1]?.name, 'two_words');
    assert.equal(loaded[0]?.checksum, migrationChecksum('SELECT 1;'));
  });

  it('refuses a gap, a duplicate number, a missing V001 and badly named .sql files', () => {
    const refused: Readonly<Record<string, string>>[] = [
      { 'V001__a.sql': '', 'V003__c.sql': '' },
      { 'V002__b.sql': '' },
      { 'V001__a.sql': '', 'V001__again.sql': '' },
      { 'V001__a.sql': '', 'V2__b.sql': '' },
      { 'V001__a.sql': '', 'V002-b.sql': '' },
      { 'V001__a.sql': '', 'V002__Upper.sql': '' },
      { 'V001__a.sql': '', 'v002__b.sql': '' },
    ];
    for (const files of refused) {
      assertFails('migration_failed', 70, () => loadMigrations(dirWith(files)));
    }
    assert.deepEqual(loadMigrations(dirWith({})), []);
  });

  it('ships V001 first and only well-formed, gapless files', () => {
    const shipped = loadMigrations();
    assert.equal(shipped[0]?.name, 'init');
    shipped.forEach((migration, index) => {
      assert.equal(migration.version, index + 1);
    });
  });
});
