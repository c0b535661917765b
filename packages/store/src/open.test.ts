// Proves openStore's boot on real files: event order, private file modes, refusals that leave
// the file and the lock as they were, the auto_vacuum conversion, and the schema's constraints.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import Database from 'better-sqlite3';

import { silentLogger } from '@portunus/core';

import { acquireStoreLock } from './lock.js';
import { loadMigrations, migrate } from './migrate.js';
import { openStore, type Store } from './open.js';
import { storePaths } from './paths.js';
import { SCHEMA_SNAPSHOT_FILE } from './schema-snapshot.js';
import {
  assertFails,
  recordingLogger,
  tempStores,
  thrownError,
  withStore,
  type LoggedLine,
} from './store.harness.js';

const temp = tempStores();

const count = (store: Store, table: string): number =>
  store.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;

describe('openStore', () => {
  it('boots in the order of DESIGN.md §4, one event per step, ending with store.ready', () => {
    const lines: LoggedLine[] = [];
    const dir = path.join(temp.dir(), 'data');
    const store = openStore(dir, { logger: recordingLogger(lines) });
    store.close();
    store.close(); // idempotent
    assert.deepEqual(
      lines.map((line) => line.event),
      [
        'startup.filesystem_checked',
        'store.locked',
        'store.opened',
        ...loadMigrations().map(() => 'store.migration_applied'),
        'store.ready',
        'store.closed',
      ],
    );
    const ready = lines.find((line) => line.event === 'store.ready');
    assert.equal(ready?.fields['schema_version'], store.schemaVersion);
    assert.equal(lines.find((line) => line.event === 'store.opened')?.fields['created'], true);
  });

  it('creates the data dir 0700 and state.db, -wal and -shm 0600 under a permissive umask', () => {
    const dir = path.join(temp.dir(), 'nested', 'data');
    const previous = process.umask(0);
    let store: Store;
    try {
      store = openStore(dir);
    } finally {
      process.umask(previous);
    }
    try {
      store.db.prepare("INSERT INTO audit (ts, actor, outcome) VALUES (1, 'a', 'allow')").run();
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      for (const file of [store.paths.db, store.paths.wal, store.paths.shm, store.paths.lock]) {
        assert.equal(fs.statSync(file).mode & 0o777, 0o600, file);
      }
    } finally {
      store.close();
    }
  });

  it('removes the WAL on close, so a closed store is one self-contained file', () => {
    const dir = temp.dir();
    withStore(dir, (store) => {
      store.db.prepare("INSERT INTO audit (ts, actor, outcome) VALUES (1, 'a', 'allow')").run();
      assert.ok(fs.existsSync(store.paths.wal));
    });
    assert.equal(fs.existsSync(storePaths(dir).wal), false);
    withStore(dir, (store) => {
      assert.equal(count(store, 'audit'), 1);
    });
  });

  it('refuses a non-SQLite state.db with exit 7, creating nothing beside it and releasing the lock', () => {
    const dir = temp.dir();
    const paths = storePaths(dir);
    const text = 'port = 9000\n'.repeat(10);
    fs.writeFileSync(paths.db, text);
    const error = assertFails('not_sqlite', 7, () => openStore(dir));
    assert.equal(error.fields['path'], paths.db);
    assert.equal(fs.readFileSync(paths.db, 'utf8'), text);
    assert.equal(fs.existsSync(paths.wal), false);
    assert.equal(fs.existsSync(paths.shm), false);
    acquireStoreLock(paths.lock).release(); // not left locked
  });

  it('refuses a file shorter than the header and one with the magic but garbage pages', () => {
    const short = temp.dir();
    fs.writeFileSync(storePaths(short).db, 'SQLite');
    assertFails('not_sqlite', 7, () => openStore(short));
    const garbage = temp.dir();
    const bytes = Buffer.alloc(8192, 0xa5);
    Buffer.from('SQLite format 3\0', 'latin1').copy(bytes);
    fs.writeFileSync(storePaths(garbage).db, bytes);
    const error = thrownError(() => {
      openStore(garbage).close();
    });
    assert.ok(['not_sqlite', 'store_corrupt'].includes(error.code), error.code);
    assert.equal(error.exitCode, 7);
    assert.ok(fs.readFileSync(storePaths(garbage).db).equals(bytes), 'the file was changed');
    acquireStoreLock(storePaths(garbage).lock).release();
  });

  it('boots on disk to exactly the schema and header values checked in as schema.sql', () => {
    const dir = temp.dir();
    const snapshot = fs.readFileSync(SCHEMA_SNAPSHOT_FILE, 'utf8');
    withStore(dir, (store) => {
      const pragma = (name: string): string => String(store.db.pragma(name, { simple: true }));
      const statements = store.db
        .prepare(
          `SELECT sql FROM sqlite_schema
           WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type, name`,
        )
        .pluck()
        .all() as string[];
      const header =
        `-- application_id=${pragma('application_id')} user_version=${pragma('user_version')}` +
        ` auto_vacuum=${pragma('auto_vacuum')}`;
      assert.ok(snapshot.includes(`\n${header}\n`), `schema.sql lacks the header ${header}`);
      assert.ok(
        snapshot.endsWith(`\n\n${statements.map((sql) => `${sql};\n`).join('\n')}`),
        'the booted store differs from schema.sql: run `npm run build && npm run schema:update -w @portunus/store`',
      );
    });
  });

  it('treats a zero-byte state.db as a new store', () => {
    const dir = temp.dir();
    fs.writeFileSync(storePaths(dir).db, '');
    withStore(dir, (store) => {
      assert.equal(store.schemaVersion, loadMigrations().length);
      assert.equal(store.db.pragma('auto_vacuum', { simple: true }), 2);
      assert.equal(count(store, 'server_settings'), 1);
    });
  });

  it('converts a migrated store made without auto_vacuum, keeping its rows', () => {
    const dir = temp.dir();
    const raw = new Database(storePaths(dir).db);
    raw.pragma('auto_vacuum = NONE');
    migrate(raw, loadMigrations(), silentLogger, 'raw');
    raw.prepare("INSERT INTO users VALUES ('u1', 'user', 'U', 0, NULL, 0, 1, 1)").run();
    raw.close();
    const lines: LoggedLine[] = [];
    const store = openStore(dir, { logger: recordingLogger(lines) });
    try {
      assert.equal(store.db.pragma('auto_vacuum', { simple: true }), 2);
      assert.equal(store.db.pragma('quick_check', { simple: true }), 'ok');
      assert.equal(count(store, 'users'), 1);
      assert.ok(lines.some((line) => line.event === 'store.auto_vacuum_enabled'));
      assert.ok(!lines.some((line) => line.event === 'store.migration_applied'));
    } finally {
      store.close();
    }
    // Converted once: the next boot has nothing to convert.
    lines.length = 0;
    openStore(dir, { logger: recordingLogger(lines) }).close();
    assert.ok(!lines.some((line) => line.event === 'store.auto_vacuum_enabled'));
  });
});

describe('schema constraints', () => {
  const store = temp.open();
  const sqliteCode = (sql: string, ...params: unknown[]): string => {
    try {
      store.db.prepare(sql).run(...params);
    } catch (error) {
      return String((error as { code?: unknown }).code);
    }
    return 'accepted';
  };
  const user = (id: string): void => {
    store.db
      .prepare('INSERT INTO users VALUES (?, ?, ?, 0, NULL, 0, 1, 1)')
      .run(id, 'user', `User ${id}`);
  };

  it('rejects enum values outside their CHECK lists', () => {
    const insertAudit = "INSERT INTO audit (ts, actor, outcome) VALUES (1, 'a', ?)";
    assert.equal(sqliteCode(insertAudit, 'maybe'), 'SQLITE_CONSTRAINT_CHECK');
    assert.equal(sqliteCode(insertAudit, 'deny'), 'accepted');
    const insertUser = "INSERT INTO users VALUES ('r', ?, 'R', 0, NULL, 0, 1, 1)";
    assert.equal(sqliteCode(insertUser, 'root'), 'SQLITE_CONSTRAINT_CHECK');
    assert.equal(sqliteCode(insertUser, 'superadmin'), 'accepted');
    assert.equal(
      sqliteCode('INSERT INTO onboarding_setup VALUES (2, ?, 1, 2)', 'a'.repeat(64)),
      'SQLITE_CONSTRAINT_CHECK',
    );
    assert.equal(
      sqliteCode(
        "INSERT INTO audit (ts, actor, outcome, details_json) VALUES (1, 'a', 'allow', '{')",
      ),
      'SQLITE_CONSTRAINT_CHECK',
    );
  });

  it('is STRICT: a text in an INTEGER column is refused, not coerced', () => {
    assert.equal(
      sqliteCode("INSERT INTO audit (ts, actor, outcome) VALUES ('yesterday', 'a', 'allow')"),
      'SQLITE_CONSTRAINT_DATATYPE',
    );
  });

  it('enforces foreign keys and cascades a user delete to what hangs off the user', () => {
    assert.equal(
      sqliteCode(
        "INSERT INTO credentials (credential_id, user_id, hash, issued_at) VALUES ('c0', 'ghost', ?, 1)",
        'b'.repeat(64),
      ),
      'SQLITE_CONSTRAINT_FOREIGNKEY',
    );
    user('casc');
    store.db
      .prepare(
        "INSERT INTO credentials (credential_id, user_id, hash, issued_at) VALUES ('c1', 'casc', ?, 1)",
      )
      .run('c'.repeat(64));
    store.db
      .prepare(
        'INSERT INTO web_sessions (session_hash, user_id, created_at, last_seen_at, absolute_expires_at) VALUES (?, ?, 1, 1, 2)',
      )
      .run('d'.repeat(64), 'casc');
    store.db.prepare("DELETE FROM users WHERE user_id = 'casc'").run();
    assert.equal(count(store, "credentials WHERE user_id = 'casc'"), 0);
    assert.equal(count(store, "web_sessions WHERE user_id = 'casc'"), 0);
    assert.deepEqual(store.db.pragma('foreign_key_check'), []);
  });
});
