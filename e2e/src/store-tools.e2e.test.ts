// Proves the seed's operator commands with the real binary and real concurrent processes:
// acknowledged writes survive SIGKILL, backup under a live writer restores to a consistent
// database, restore/reset refuse what they must (exit 3/5/7/75/78) without touching the data
// dir, and audit prune really shrinks the file on disk.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import Database from 'better-sqlite3';

import { appendAudit, loadMigrations, openStore, type AuditRecord } from '@portunus/store';
import { AUDIT_WRITER_PROCESS, type RunningProcess } from '@portunus/test-support';

import { Harness, auditSeqs, eventNames, fileMode, inspect } from './harness.js';

const harness = new Harness();
after(() => harness.close());

/** Every seq the writer acknowledged so far. */
function ackedSeqs(writer: RunningProcess): number[] {
  return writer.stdoutLines
    .filter((line) => line.startsWith('ack '))
    .flatMap((line) => line.slice(4).split(' ').map(Number));
}

async function waitForAcks(writer: RunningProcess, count: number): Promise<void> {
  await writer.waitForStdoutLine(() => ackedSeqs(writer).length >= count, 30_000);
}

async function initialisedDataDir(): Promise<string> {
  const dataDir = harness.newDataDir();
  const result = await harness.cli([
    '--data-dir',
    dataDir,
    'audit',
    'prune',
    '--before',
    '1970-01-01T00:00:00Z',
    '--dry-run',
  ]);
  assert.equal(result.code, 0, result.stderr);
  return dataDir;
}

describe('durability', () => {
  for (const batch of [1, 50]) {
    it(`keeps every acknowledged write after SIGKILL (batch ${batch})`, async () => {
      const dataDir = harness.newDataDir();
      const writer = harness.processes.node(AUDIT_WRITER_PROCESS, [
        dataDir,
        'locked',
        '0',
        String(batch),
      ]);
      await waitForAcks(writer, 300);
      writer.kill('SIGKILL');
      assert.equal(await writer.exited(), 137);
      const acked = ackedSeqs(writer);
      // The lock died with the writer: serve opens the data dir at once and recovers the WAL.
      const server = await harness.serve(dataDir);
      server.kill('SIGTERM');
      assert.equal(await server.exited(), 0);
      const stored = auditSeqs(path.join(dataDir, 'state.db'));
      const missing = acked.filter((seq) => !stored.has(seq));
      assert.deepEqual(missing, [], `${missing.length} acknowledged writes lost`);
      assert.ok(stored.size >= acked.length);
    });
  }
});

describe('backup and restore', () => {
  it('backs up while serve holds the lock and another process commits, and the copy restores consistently', async () => {
    const dataDir = await initialisedDataDir();
    const server = await harness.serve(dataDir);
    const writer = harness.processes.node(AUDIT_WRITER_PROCESS, [dataDir, 'shared', '0', '1']);
    await waitForAcks(writer, 200);
    const ackedBefore = ackedSeqs(writer);
    const outDir = harness.dirs.make();
    const backup = await harness.cli(['--data-dir', dataDir, 'backup', '--out', outDir]);
    const ackedAfter = ackedSeqs(writer);
    writer.kill('SIGTERM');
    await writer.exited();
    assert.equal(backup.code, 0, backup.stderr);
    const match = /^backup=(.+portunus-state-\d{8}T\d{6}Z\.db)$/m.exec(backup.stdout);
    assert.ok(match?.[1], backup.stdout);
    const file = match[1];
    assert.ok(eventNames(backup).includes('cli.backup_complete'));
    assert.equal(fileMode(file), 0o600);
    assert.deepEqual(fs.readdirSync(outDir), [path.basename(file)]); // no partial files left
    inspect(file, (db) => {
      assert.equal(db.pragma('quick_check', { simple: true }), 'ok');
      assert.equal(db.pragma('journal_mode', { simple: true }), 'delete');
    });
    const copied = auditSeqs(file);
    for (const seq of ackedBefore)
      assert.ok(copied.has(seq), `seq ${seq} acked before the backup is missing`);
    assert.ok(copied.size <= ackedAfter.length, 'the copy holds rows nobody committed');
    // a consistent prefix: no holes
    const sorted = [...copied].sort((a, b) => a - b);
    assert.deepEqual(
      sorted,
      Array.from({ length: sorted.length }, (_, index) => (sorted[0] ?? 0) + index),
    );

    const target = harness.newDataDir();
    const restore = await harness.cli(['--data-dir', target, 'restore', '--in', file]);
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(restore.stdout, `restore=ok data_dir=${target}\n`);
    const restored = await harness.serve(target);
    restored.kill('SIGTERM');
    assert.equal(await restored.exited(), 0);
    assert.deepEqual(auditSeqs(path.join(target, 'state.db')), copied);
    server.kill('SIGTERM');
    assert.equal(await server.exited(), 0);
  });

  it('never overwrites: an existing destination exits 3 and is untouched', async () => {
    const dataDir = await initialisedDataDir();
    const dest = path.join(harness.dirs.make(), 'keep.db');
    fs.writeFileSync(dest, 'precious');
    const result = await harness.cli(['--data-dir', dataDir, 'backup', '--out', dest]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /error: destination_exists: /);
    assert.equal(fs.readFileSync(dest, 'utf8'), 'precious');
  });

  it('refuses a missing (5) or non-SQLite (7) source and a non-empty data dir without --force (3)', async () => {
    const dataDir = await initialisedDataDir();
    const dbFile = path.join(dataDir, 'state.db');
    const before = fs.readFileSync(dbFile);
    const missing = await harness.cli([
      '--data-dir',
      dataDir,
      'restore',
      '--in',
      '/nonexistent/backup.db',
      '--force',
    ]);
    assert.equal(missing.code, 5);
    const notSqlite = path.join(harness.dirs.make(), 'notes.db');
    fs.writeFileSync(notSqlite, 'x'.repeat(4096));
    const bad = await harness.cli(['--data-dir', dataDir, 'restore', '--in', notSqlite, '--force']);
    assert.equal(bad.code, 7);
    assert.ok(eventNames(bad).includes('store.not_sqlite'));
    const backupFile = path.join(harness.dirs.make(), 'b.db');
    assert.equal(
      (await harness.cli(['--data-dir', dataDir, 'backup', '--out', backupFile])).code,
      0,
    );
    const notEmpty = await harness.cli(['--data-dir', dataDir, 'restore', '--in', backupFile]);
    assert.equal(notEmpty.code, 3);
    assert.match(notEmpty.stderr, /error: data_dir_not_empty: .*reset --confirm/);
    assert.deepEqual(fs.readFileSync(dbFile), before);
    const forced = await harness.cli([
      '--data-dir',
      dataDir,
      'restore',
      '--in',
      backupFile,
      '--force',
    ]);
    assert.equal(forced.code, 0, forced.stderr);
  });

  it('refuses a backup whose schema is newer (78) and leaves the data dir exactly as it was', async () => {
    const dataDir = await initialisedDataDir();
    const store = openStore(dataDir);
    appendAudit(store.db, [
      { ts: Date.now(), actor: 'ops', outcome: 'allow', method: 'POST', path: '/v1/users' },
    ]);
    store.close();
    const future = path.join(harness.dirs.make(), 'future.db');
    assert.equal((await harness.cli(['--data-dir', dataDir, 'backup', '--out', future])).code, 0);
    const db = new Database(future);
    const futureVersion = loadMigrations().length + 1;
    db.prepare("INSERT INTO schema_migrations VALUES (?, 'from_the_future', ?, 0)").run(
      futureVersion,
      'a'.repeat(64),
    );
    db.close();
    const snapshot = new Map(
      fs.readdirSync(dataDir).map((name) => [name, fs.readFileSync(path.join(dataDir, name))]),
    );
    const result = await harness.cli(['--data-dir', dataDir, 'restore', '--in', future, '--force']);
    assert.equal(result.code, 78);
    const event = result.events.find((line) => line['event'] === 'startup.schema_version_too_new');
    assert.equal(event?.['on_disk'], futureVersion);
    assert.deepEqual(
      new Map(
        fs.readdirSync(dataDir).map((name) => [name, fs.readFileSync(path.join(dataDir, name))]),
      ),
      snapshot,
    );
  });
});

describe('reset', () => {
  it('dry-runs by default, then removes the store files but keeps TLS material and server.toml', async () => {
    const dataDir = await initialisedDataDir();
    const kept = ['server.crt', 'server.key', 'server.toml'];
    for (const name of kept)
      fs.writeFileSync(path.join(dataDir, name), name === 'server.toml' ? '' : `${name} data`);
    const dry = await harness.cli(['--data-dir', dataDir, 'reset']);
    assert.equal(dry.code, 0);
    assert.match(dry.stdout, new RegExp(`^would remove: ${path.join(dataDir, 'state.db')}$`, 'm'));
    assert.ok(fs.existsSync(path.join(dataDir, 'state.db')));
    const real = await harness.cli(['--data-dir', dataDir, 'reset', '--confirm']);
    assert.equal(real.code, 0, real.stderr);
    assert.deepEqual(fs.readdirSync(dataDir).sort(), kept);
    const again = await harness.cli(['--data-dir', dataDir, 'reset', '--confirm']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /nothing to remove/);
  });

  it('refuses a state.db that is not SQLite (7), in the dry run too, and removes nothing', async () => {
    const dataDir = harness.newDataDir();
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'state.db'), 'SQLite format 2 but not really');
    for (const args of [['reset'], ['reset', '--confirm']]) {
      const result = await harness.cli(['--data-dir', dataDir, ...args]);
      assert.equal(result.code, 7);
      assert.match(result.stderr, /error: not_sqlite: /);
    }
    assert.equal(
      fs.readFileSync(path.join(dataDir, 'state.db'), 'utf8'),
      'SQLite format 2 but not really',
    );
  });
});

describe('audit prune', () => {
  it('counts in a dry run, deletes exactly the older rows and shrinks the file on disk', async () => {
    const dataDir = await initialisedDataDir();
    const start = Date.UTC(2026, 0, 1);
    const cutoff = Date.UTC(2026, 0, 16);
    const store = openStore(dataDir);
    const day = 86_400_000;
    const rows = 40_000;
    const records: AuditRecord[] = Array.from({ length: rows }, (_, index) => ({
      ts: start + Math.floor((index * 30 * day) / rows),
      actor: `user${index % 50}`,
      outcome: index % 7 === 0 ? 'deny' : 'allow',
      method: 'POST',
      path: `/v1/rules/${index}`,
      details: { note: 'x'.repeat(150) },
    }));
    for (let offset = 0; offset < rows; offset += 5000)
      appendAudit(store.db, records.slice(offset, offset + 5000));
    const older = records.filter((record) => record.ts < cutoff).length;
    store.close();
    const dbFile = path.join(dataDir, 'state.db');
    const sizeBefore = fs.statSync(dbFile).size;

    const bad = await harness.cli([
      '--data-dir',
      dataDir,
      'audit',
      'prune',
      '--before',
      '2026-01-16',
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error: invalid_timestamp: /);

    const dry = await harness.cli([
      '--data-dir',
      dataDir,
      'audit',
      'prune',
      '--before',
      '2026-01-16T00:00:00Z',
      '--dry-run',
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, `audit_prune dry_run=true would_delete=${older} rule_revisions=0\n`);
    assert.equal(
      inspect(dbFile, (db) => db.prepare('SELECT count(*) FROM audit').pluck().get()),
      rows,
    );

    const real = await harness.cli([
      '--data-dir',
      dataDir,
      'audit',
      'prune',
      '--before',
      '2026-01-16T00:00:00Z',
    ]);
    assert.equal(real.code, 0, real.stderr);
    assert.match(real.stdout, new RegExp(`^audit_prune deleted=${older} `));
    const sizeAfter = fs.statSync(dbFile).size;
    assert.ok(sizeAfter < sizeBefore * 0.7, `file did not shrink: ${sizeBefore} -> ${sizeAfter}`);
    inspect(dbFile, (db) => {
      assert.equal(db.prepare('SELECT count(*) FROM audit').pluck().get(), rows - older);
      assert.equal(db.prepare('SELECT count(*) FROM audit WHERE ts < ?').pluck().get(cutoff), 0);
      assert.equal(db.pragma('freelist_count', { simple: true }), 0);
    });
  });
});
