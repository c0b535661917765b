// Proves the boot sequence's parts on real files: data dir resolution and mode, the filesystem
// table, the kernel-released lock, the header check, PRAGMAs and the migration runner's refusals.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import Database from 'better-sqlite3';

import { silentLogger } from '@portunus/core';

import { ensureDataDir, resolveDataDir } from './data-dir.js';
import { REFUSED_FILESYSTEMS, checkFilesystem } from './filesystem.js';
import { acquireStoreLock } from './lock.js';
import { loadMigrations, migrate, migrationFromText, readSchemaVersion } from './migrate.js';
import { openDatabase, openStore } from './open.js';
import { assertFails, tempStores } from './store.harness.js';

const temp = tempStores();

describe('data dir', () => {
  it('resolves flag > STATE_DIRECTORY > XDG_STATE_HOME > HOME, skipping blank env values', () => {
    const env = { STATE_DIRECTORY: '/sd/a:/sd/b', XDG_STATE_HOME: '/xdg', HOME: '/home/u' };
    assert.deepEqual(resolveDataDir('/flag', env), { path: '/flag', source: 'flag' });
    assert.deepEqual(resolveDataDir(undefined, env), { path: '/sd/a', source: 'STATE_DIRECTORY' });
    // A blank flag is refused (an unset shell variable), never read as "use the default".
    assertFails('usage_error', 2, () => resolveDataDir(' ', env));
    assert.deepEqual(resolveDataDir(undefined, { ...env, STATE_DIRECTORY: '' }), {
      path: '/xdg/portunus',
      source: 'XDG_STATE_HOME',
    });
    assert.deepEqual(resolveDataDir(undefined, { HOME: '/home/u', XDG_STATE_HOME: ' ' }), {
      path: '/home/u/.local/state/portunus',
      source: 'HOME',
    });
    assertFails('data_dir_unresolvable', 1, () => resolveDataDir(undefined, {}));
  });

  it('creates the directory 0700 whatever the umask, and refuses a regular file', () => {
    const base = temp.dir();
    const previous = process.umask(0);
    try {
      assert.equal(ensureDataDir(path.join(base, 'a/b')), true);
    } finally {
      process.umask(previous);
    }
    assert.equal(fs.statSync(path.join(base, 'a/b')).mode & 0o777, 0o700);
    assert.equal(ensureDataDir(path.join(base, 'a/b')), false);
    fs.writeFileSync(path.join(base, 'file'), '');
    assertFails('io_error', 1, () => ensureDataDir(path.join(base, 'file')));
  });
});

describe('filesystem check', () => {
  it('refuses every listed filesystem with exit 78, naming path and filesystem', () => {
    for (const [magic, name] of REFUSED_FILESYSTEMS) {
      const error = assertFails('unsupported_filesystem', 78, () =>
        checkFilesystem('/data', () => magic),
      );
      assert.match(error.message, new RegExp(`/data is on ${name}.*local writable filesystem`));
      assert.deepEqual(error.fields, { path: '/data', fs: name });
    }
    // f_type arrives signed for magics above 2^31 on some ABIs
    assertFails('unsupported_filesystem', 78, () => checkFilesystem('/d', () => 0xff534d42 | 0));
    assert.equal(
      checkFilesystem('/d', () => 0xef53),
      '0xef53',
    );
  });

  it('refuses the real /dev/shm', { skip: !fs.existsSync('/dev/shm') }, () => {
    const dir = fs.mkdtempSync('/dev/shm/portunus-unit-');
    try {
      assertFails('unsupported_filesystem', 78, () => openStore(dir));
      assert.equal(fs.existsSync(path.join(dir, 'state.db')), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('lock', () => {
  it('admits one holder per file, 0600, and admits again after release', () => {
    const file = path.join(temp.dir(), 'state.db.lock');
    const first = acquireStoreLock(file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assertFails('store_in_use', 75, () => acquireStoreLock(file));
    first.release();
    first.release(); // idempotent
    acquireStoreLock(file).release();
  });

  it('keeps a second openStore out while the first is open', () => {
    const dir = temp.dir();
    const store = openStore(dir);
    assertFails('store_in_use', 75, () => openStore(dir));
    store.close();
    openStore(dir).close();
  });
});

describe('open', () => {
  it('sets the PRAGMAs of DESIGN.md §4 and creates state.db 0600', () => {
    const store = openStore(temp.dir());
    try {
      const pragma = (name: string): unknown => store.db.pragma(name, { simple: true });
      assert.equal(pragma('journal_mode'), 'wal');
      assert.equal(pragma('synchronous'), 2);
      assert.equal(pragma('foreign_keys'), 1);
      assert.equal(pragma('busy_timeout'), 5000);
      assert.equal(pragma('auto_vacuum'), 2);
      assert.equal(pragma('temp_store'), 2);
      assert.equal(fs.statSync(store.paths.db).mode & 0o777, 0o600);
      assert.equal(store.schemaVersion, loadMigrations().length);
    } finally {
      store.close();
    }
  });

  it('refuses a non-SQLite state.db with exit 7 and leaves it unchanged; accepts a zero-byte one', () => {
    const dir = temp.dir();
    fs.writeFileSync(path.join(dir, 'state.db'), 'not a database at all, just text');
    assertFails('not_sqlite', 7, () => openStore(dir));
    assert.equal(
      fs.readFileSync(path.join(dir, 'state.db'), 'utf8'),
      'not a database at all, just text',
    );
    const empty = temp.dir();
    fs.writeFileSync(path.join(empty, 'state.db'), '');
    openStore(empty).close();
  });

  it('converts a database made without incremental auto-vacuum', () => {
    const dir = temp.dir();
    const plain = new Database(path.join(dir, 'state.db'));
    plain.exec('CREATE TABLE scratch (x)');
    plain.close();
    const opened = openDatabase(path.join(dir, 'state.db'));
    assert.equal(opened.db.pragma('auto_vacuum', { simple: true }), 2);
    opened.db.close();
  });

  it('enforces CHECK constraints and cascades', () => {
    const store = openStore(temp.dir());
    try {
      assert.throws(() =>
        store.db.prepare("INSERT INTO users VALUES ('x', 'root', 'X', 0, NULL, 0, 1, 1)").run(),
      );
      assert.throws(() =>
        store.db.prepare("INSERT INTO audit (ts, actor, outcome) VALUES (1, 'a', 'maybe')").run(),
      );
      store.db.prepare("INSERT INTO users VALUES ('x', 'user', 'X', 0, NULL, 0, 1, 1)").run();
      store.db
        .prepare(
          "INSERT INTO credentials (credential_id, user_id, hash, issued_at) VALUES ('c', 'x', ?, 1)",
        )
        .run('a'.repeat(64));
      store.db.prepare("DELETE FROM users WHERE user_id = 'x'").run();
      assert.equal(store.db.prepare('SELECT count(*) FROM credentials').pluck().get(), 0);
    } finally {
      store.close();
    }
  });
});

describe('migrations', () => {
  const v1 = migrationFromText(1, 'one', 'CREATE TABLE one (x ANY) STRICT;');
  const v2 = migrationFromText(2, 'two', 'CREATE TABLE two (x ANY) STRICT;');
  const fresh = (): Database.Database => new Database(':memory:');

  it('applies in order, records name and checksum, and is idempotent', () => {
    const db = fresh();
    assert.equal(migrate(db, [v1, v2], silentLogger, 'mem').applied.length, 2);
    assert.equal(migrate(db, [v1, v2], silentLogger, 'mem').applied.length, 0);
    assert.deepEqual(db.prepare('SELECT version, name, checksum FROM schema_migrations').all(), [
      { version: 1, name: 'one', checksum: v1.checksum },
      { version: 2, name: 'two', checksum: v2.checksum },
    ]);
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    assert.equal(readSchemaVersion(db), 2);
  });

  it('refuses an edited applied migration (70), a too-new database (78) and an unknown version (70)', () => {
    const db = fresh();
    migrate(db, [v1, v2], silentLogger, 'mem');
    const edited = migrationFromText(1, 'one', 'CREATE TABLE one (x ANY, y ANY) STRICT;');
    assertFails('migration_checksum_mismatch', 70, () =>
      migrate(db, [edited, v2], silentLogger, 'mem'),
    );
    const error = assertFails('schema_version_too_new', 78, () =>
      migrate(db, [v1], silentLogger, 'mem'),
    );
    assert.equal(error.fields['on_disk'], 2);
    assert.equal(error.fields['binary_supports'], 1);
    db.prepare('DELETE FROM schema_migrations WHERE version = 1').run();
    db.prepare("INSERT INTO schema_migrations VALUES (1, 'gone', ?, 0)").run('0'.repeat(64));
    assertFails('migration_checksum_mismatch', 70, () =>
      migrate(db, [v1, v2], silentLogger, 'mem'),
    );
  });

  it('rolls back a failing migration completely and keeps the earlier ones', () => {
    const db = fresh();
    const bad = migrationFromText(
      2,
      'bad',
      'CREATE TABLE half (x); INSERT INTO nowhere VALUES (1);',
    );
    assertFails('migration_failed', 70, () => migrate(db, [v1, bad], silentLogger, 'mem'));
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
    assert.ok(tables.includes('one'));
    assert.ok(!tables.includes('half'));
    assert.equal(readSchemaVersion(db), 1);
  });

  it('loads only well-named, gapless files', () => {
    const dir = temp.dir();
    fs.writeFileSync(path.join(dir, 'V001__init.sql'), 'SELECT 1;');
    assert.equal(loadMigrations(dir).length, 1);
    fs.writeFileSync(path.join(dir, 'V003__later.sql'), 'SELECT 1;');
    assertFails('migration_failed', 70, () => loadMigrations(dir));
    fs.rmSync(path.join(dir, 'V003__later.sql'));
    fs.writeFileSync(path.join(dir, 'v2-bad.sql'), 'SELECT 1;');
    assertFails('migration_failed', 70, () => loadMigrations(dir));
  });
});
