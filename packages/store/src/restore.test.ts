// Proves restoreStore is all or nothing: every refusal (missing, non-SQLite, corrupt, too-new,
// failing migration, non-empty without --force, locked) leaves the data dir as it was, and a
// successful restore replaces the store with a private copy migrated forward to the binary's head.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import Database from 'better-sqlite3';

import { appendAudit, type AuditRecord } from './audit.js';
import { backupStore } from './backup.js';
import { loadMigrations, migrationFromText } from './migrate.js';
import { openStore } from './open.js';
import { storePaths } from './paths.js';
import { restoreStore } from './restore.js';
import { assertFails, tempStores, thrownError } from './store.harness.js';

const temp = tempStores();

const record = (actor: string, n: number): AuditRecord => ({
  ts: 1_750_000_000_000 + n,
  actor,
  outcome: 'allow',
  path: `/v1/n/${n}`,
});

/** A closed store in a fresh data dir holding `rows` audit rows by `actor`. */
function storeWith(actor: string, rows: number): string {
  const dir = temp.dir();
  const store = openStore(dir);
  appendAudit(
    store.db,
    Array.from({ length: rows }, (_, n) => record(actor, n)),
  );
  store.close();
  return dir;
}

async function backupOf(actor: string, rows: number): Promise<string> {
  const out = path.join(temp.dir(), `${actor}.db`);
  await backupStore(storeWith(actor, rows), out);
  return out;
}

/** The actors of every audit row in the data dir's store, read without the boot path. */
function actors(dataDir: string): string[] {
  const db = new Database(storePaths(dataDir).db, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT DISTINCT actor FROM audit ORDER BY actor').pluck().all() as string[];
  } finally {
    db.close();
  }
}

/** Name → contents of every file in the data dir except the lock file (which a refusal may create). */
function contents(dataDir: string): Map<string, Buffer> {
  return new Map(
    fs
      .readdirSync(dataDir)
      .filter((name) => name !== 'state.db.lock')
      .map((name) => [name, fs.readFileSync(path.join(dataDir, name))]),
  );
}

function assertUnchanged(dataDir: string, before: Map<string, Buffer>): void {
  const now = contents(dataDir);
  assert.deepEqual(
    [...now.keys()].sort(),
    [...before.keys()].sort(),
    'files were added or removed',
  );
  for (const [name, bytes] of before) assert.ok(now.get(name)?.equals(bytes), `${name} changed`);
}

describe('restoreStore', () => {
  it('restores into a new data dir: 0700 dir, 0600 file, the backup rows, nothing left over', async () => {
    const backup = await backupOf('alice', 20);
    fs.chmodSync(backup, 0o644);
    const target = path.join(temp.dir(), 'new-data');
    const result = restoreStore(target, backup);
    assert.deepEqual(result, {
      dataDir: target,
      schemaVersion: loadMigrations().length,
      migrationsApplied: 0,
      replaced: false,
      tls: 'none',
    });
    assert.equal(fs.statSync(target).mode & 0o777, 0o700);
    assert.equal(fs.statSync(storePaths(target).db).mode & 0o777, 0o600);
    assert.deepEqual(actors(target), ['alice']);
    assert.deepEqual(
      fs.readdirSync(target).filter((name) => name.includes('restoring')),
      [],
    );
    const store = openStore(target);
    try {
      assert.equal(store.db.prepare('SELECT count(*) FROM audit').pluck().get(), 20);
      assert.equal(store.db.pragma('quick_check', { simple: true }), 'ok');
    } finally {
      store.close();
    }
  });

  it('refuses a missing source (exit 5) before creating anything', () => {
    const target = path.join(temp.dir(), 'data');
    assertFails('source_not_found', 5, () => restoreStore(target, path.join(target, 'nope.db')));
    assert.equal(fs.existsSync(target), false);
  });

  it('says a directory input is a directory (exit 2) before creating anything', () => {
    const target = path.join(temp.dir(), 'data');
    const input = temp.dir();
    const error = assertFails('source_is_directory', 2, () => restoreStore(target, input));
    assert.match(error.message, /is a directory; pass the backup file itself/);
    assert.equal(fs.existsSync(target), false);
  });

  it('refuses a non-SQLite source (exit 7) and leaves the data dir untouched', () => {
    const target = storeWith('bob', 3);
    const before = contents(target);
    const source = path.join(temp.dir(), 'notes.txt');
    fs.writeFileSync(source, 'these are my notes, not a database');
    assertFails('not_sqlite', 7, () => restoreStore(target, source, { force: true }));
    assertUnchanged(target, before);
  });

  it('refuses a corrupt backup (exit 7) and leaves the data dir untouched', () => {
    const target = storeWith('bob', 3);
    const before = contents(target);
    const source = path.join(temp.dir(), 'corrupt.db');
    const bytes = Buffer.alloc(16_384, 0x5a);
    Buffer.from('SQLite format 3\0', 'latin1').copy(bytes);
    fs.writeFileSync(source, bytes);
    const error = thrownError(() => restoreStore(target, source, { force: true }));
    assert.equal(error.exitCode, 7, error.code);
    assertUnchanged(target, before);
  });

  it('refuses an existing state.db without force (exit 3), untouched; with force replaces it', async () => {
    const backup = await backupOf('carol', 5);
    const target = storeWith('dave', 7);
    const before = contents(target);
    assertFails('data_dir_not_empty', 3, () => restoreStore(target, backup));
    assertUnchanged(target, before);
    const result = restoreStore(target, backup, { force: true });
    assert.equal(result.replaced, true);
    // Checked before any reader opens it: a read-only WAL reader leaves -wal/-shm behind.
    const left = fs.readdirSync(target).sort();
    assert.deepEqual(
      left.filter((name) => name !== 'state.db.lock'),
      ['state.db'],
    );
    assert.deepEqual(actors(target), ['carol']);
  });

  it('refuses a backup with a newer schema (exit 78): state.db byte-identical, no staging left', async () => {
    const backup = await backupOf('erin', 4);
    const raw = new Database(backup);
    raw
      .prepare('INSERT INTO schema_migrations VALUES (999, ?, ?, 0)')
      .run('future', 'e'.repeat(64));
    raw.close();
    const target = storeWith('frank', 2);
    const before = contents(target);
    const error = assertFails('schema_version_too_new', 78, () =>
      restoreStore(target, backup, { force: true }),
    );
    assert.equal(error.fields['on_disk'], 999);
    assertUnchanged(target, before);
    assert.deepEqual(actors(target), ['frank']);
  });

  it('a refused restore names the input file and leaves no lock file or new data dir behind', async () => {
    const backup = await backupOf('erin', 1);
    const raw = new Database(backup);
    raw
      .prepare('INSERT INTO schema_migrations VALUES (999, ?, ?, 0)')
      .run('future', 'e'.repeat(64));
    raw.close();
    const empty = temp.dir();
    const error = assertFails('schema_version_too_new', 78, () => restoreStore(empty, backup));
    assert.ok(error.message.includes(backup), error.message);
    assert.ok(!error.message.includes('restoring'), error.message);
    assert.deepEqual(fs.readdirSync(empty), []);
    const parent = temp.dir();
    assertFails('schema_version_too_new', 78, () =>
      restoreStore(path.join(parent, 'a', 'data'), backup),
    );
    assert.deepEqual(fs.readdirSync(parent), []);
  });

  it('refuses a backup whose forward migration fails (exit 70) and keeps the old store', async () => {
    const backup = await backupOf('gina', 4);
    const target = storeWith('hank', 2);
    const before = contents(target);
    const broken = [
      ...loadMigrations(),
      migrationFromText(
        loadMigrations().length + 1,
        'broken',
        'CREATE TABLE extra (x INTEGER) STRICT; SELECT nope();',
      ),
    ];
    assertFails('migration_failed', 70, () =>
      restoreStore(target, backup, { force: true, migrations: broken }),
    );
    assertUnchanged(target, before);
  });

  it('migrates an older backup forward to the binary head', async () => {
    const backup = await backupOf('ivan', 6); // made by a binary shipping the current head
    const head = loadMigrations().length;
    const v2 = migrationFromText(
      head + 1,
      'extra',
      'CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT NOT NULL) STRICT;',
    );
    const migrations = [...loadMigrations(), v2];
    const target = temp.dir();
    const result = restoreStore(target, backup, { migrations });
    assert.equal(result.schemaVersion, head + 1);
    assert.equal(result.migrationsApplied, 1);
    const db = new Database(storePaths(target).db, { readonly: true });
    try {
      assert.deepEqual(
        db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all(),
        [
          ...loadMigrations().map(({ version, name }) => ({ version, name })),
          { version: head + 1, name: 'extra' },
        ],
      );
      assert.equal(db.prepare('SELECT count(*) FROM extra').pluck().get(), 0);
      assert.equal(db.prepare('SELECT count(*) FROM audit').pluck().get(), 6);
    } finally {
      db.close();
    }
    const store = openStore(target, { migrations });
    assert.equal(store.schemaVersion, head + 1);
    store.close();
  });

  it('refuses while the data dir is locked (exit 75) and changes nothing', async () => {
    const backup = await backupOf('judy', 2);
    const target = storeWith('kim', 3);
    const live = openStore(target);
    try {
      const before = contents(target);
      assertFails('store_in_use', 75, () => restoreStore(target, backup, { force: true }));
      assertUnchanged(target, before);
    } finally {
      live.close();
    }
    assert.deepEqual(actors(target), ['kim']);
  });
});
