// Proves backupStore as a library call: never overwrites, names directory targets by time, and
// leaves exactly one verified, private, self-contained file — also while another process commits,
// and without costing a live store in the same process (as under `serve`) any of its locks.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';

import { PortunusError } from '@portunus/core';
import { AUDIT_WRITER_PROCESS, ProcessGroup } from '@portunus/test-support';

import { appendAudit, type AuditRecord } from './audit.js';
import { backupStore, resolveBackupTarget } from './backup.js';
import { openStore } from './open.js';
import { storePaths } from './paths.js';
import { assertRejects, tempStores } from './store.harness.js';

const processes = new ProcessGroup();
const temp = tempStores({ processes });

const NOW = Date.UTC(2026, 4, 8, 12, 0, 0);
const EXCLUSIVE_PROBE = fileURLToPath(new URL('./fixtures/exclusive-probe.js', import.meta.url));

/** Asks a separate process whether it can take state.db's EXCLUSIVE lock: 'busy' or 'exclusive'. */
async function probeExclusive(file: string): Promise<string> {
  const result = await processes.run(EXCLUSIVE_PROBE, [file]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim();
}

const record = (n: number): AuditRecord => ({
  ts: NOW + n,
  actor: 'backup-test',
  outcome: 'allow',
  path: `/v1/n/${n}`,
});

/** Opens a copy read-only and returns what the tests look at. */
function inspect(file: string): { check: unknown; journal: unknown; rows: number; seqs: number[] } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      check: db.pragma('quick_check', { simple: true }),
      journal: db.pragma('journal_mode', { simple: true }),
      rows: db.prepare('SELECT count(*) FROM audit').pluck().get() as number,
      seqs: db.prepare('SELECT seq FROM audit ORDER BY seq').pluck().all() as number[],
    };
  } finally {
    db.close();
  }
}

describe('backupStore', () => {
  it('copies a live store, WAL content included, into one private rollback-journal file', async () => {
    const source = temp.open();
    appendAudit(
      source.db,
      Array.from({ length: 50 }, (_, n) => record(n)),
    );
    assert.ok(fs.statSync(source.paths.wal).size > 0, 'the rows are still in the WAL');
    const outDir = temp.dir();
    const out = path.join(outDir, 'copy.db');
    const previous = process.umask(0);
    let result;
    try {
      result = await backupStore(source.paths.dataDir, out, () => NOW);
    } finally {
      process.umask(previous);
    }
    assert.equal(result.path, out);
    assert.equal(result.schemaVersion, source.schemaVersion);
    assert.equal(result.bytes, fs.statSync(out).size);
    assert.equal(fs.statSync(out).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(out)[18], 1, 'header says rollback journal, not WAL');
    const copy = inspect(out);
    assert.equal(copy.check, 'ok');
    assert.equal(copy.journal, 'delete');
    assert.equal(copy.rows, 50);
    assert.deepEqual(fs.readdirSync(outDir), ['copy.db'], 'no .partial or sidecar files remain');
  });

  it('names a file inside a directory target portunus-state-<UTC stamp>.db', async () => {
    const source = temp.open();
    const outDir = temp.dir();
    assert.equal(
      resolveBackupTarget(outDir, NOW),
      path.join(outDir, 'portunus-state-20260508T120000Z.db'),
    );
    assert.equal(resolveBackupTarget(path.join(outDir, 'x.db'), NOW), path.join(outDir, 'x.db'));
    const result = await backupStore(source.paths.dataDir, outDir, () => NOW);
    assert.equal(result.path, path.join(outDir, 'portunus-state-20260508T120000Z.db'));
    assert.deepEqual(fs.readdirSync(outDir), ['portunus-state-20260508T120000Z.db']);
    // The same second again: the stamped name exists, so the second backup refuses.
    await assertRejects(
      'destination_exists',
      3,
      backupStore(source.paths.dataDir, outDir, () => NOW),
    );
  });

  it('refuses an existing destination (exit 3) and leaves it untouched', async () => {
    const source = temp.open();
    const outDir = temp.dir();
    const out = path.join(outDir, 'precious.db');
    fs.writeFileSync(out, 'an older backup, do not touch');
    await assertRejects('destination_exists', 3, backupStore(source.paths.dataDir, out));
    assert.equal(fs.readFileSync(out, 'utf8'), 'an older backup, do not touch');
    assert.deepEqual(fs.readdirSync(outDir), ['precious.db']);
  });

  it('refuses a missing store (exit 5), a non-SQLite state.db (exit 7) and a missing directory', async () => {
    const outDir = temp.dir();
    const empty = temp.dir();
    await assertRejects('source_not_found', 5, backupStore(empty, path.join(outDir, 'a.db')));
    await assertRejects(
      'source_not_found',
      5,
      backupStore(path.join(empty, 'nowhere'), path.join(outDir, 'b.db')),
    );
    const text = temp.dir();
    fs.writeFileSync(storePaths(text).db, 'definitely not sqlite');
    await assertRejects('not_sqlite', 7, backupStore(text, path.join(outDir, 'c.db')));
    const source = temp.open();
    await assertRejects(
      'io_error',
      1,
      backupStore(source.paths.dataDir, path.join(outDir, 'missing-dir', 'd.db')),
    );
    assert.deepEqual(fs.readdirSync(outDir), []);
  });

  it('leaves a live store in the same process holding its locks, so other processes stay out', async () => {
    // POSIX drops every fcntl lock a process holds on a file when it closes any descriptor of
    // that file: backup must not open and close state.db (or state.db.lock) behind the store.
    const source = temp.open();
    appendAudit(source.db, [record(1)]);
    assert.equal(await probeExclusive(source.paths.db), 'busy', 'the probe sees the live store');
    const out = path.join(temp.dir(), 'copy.db');
    await backupStore(source.paths.dataDir, out);
    assert.throws(
      () => openStore(source.paths.dataDir),
      (error: unknown) => error instanceof PortunusError && error.code === 'store_in_use',
    );
    const refused = await processes.run(AUDIT_WRITER_PROCESS, [
      source.paths.dataDir,
      'locked',
      '1',
    ]);
    assert.notEqual(refused.code, 0, 'a second process got the store lock after the backup');
    assert.match(refused.stderr, /store_in_use/);
    // The live connection's SHARED lock on state.db: without it another process could take the
    // file, checkpoint it and delete the WAL the store is still writing.
    assert.equal(await probeExclusive(source.paths.db), 'busy', 'state.db lost its SHARED lock');
    assert.ok(fs.existsSync(source.paths.wal), "the live store's WAL was deleted");
    appendAudit(source.db, [record(2)]);
    assert.equal(source.db.prepare('SELECT count(*) FROM audit').pluck().get(), 2);
    source.close();
    assert.equal(
      await probeExclusive(source.paths.db),
      'exclusive',
      'a closed store holds nothing',
    );
    assert.equal(inspect(out).rows, 1);
  });

  it('finishes while another process commits continuously, with a consistent copy', async () => {
    const source = temp.open(); // holds the lock, like serve
    const writer = processes.node(AUDIT_WRITER_PROCESS, [source.paths.dataDir, 'shared', '0', '5']);
    const acked = (): number[] =>
      writer.stdoutLines
        .filter((line) => line.startsWith('ack '))
        .flatMap((line) => line.slice(4).split(' ').map(Number));
    await writer.waitForStdoutLine(() => acked().length >= 200);
    const ackedBefore = acked();
    const out = path.join(temp.dir(), 'live.db');
    const result = await backupStore(source.paths.dataDir, out);
    assert.equal(result.path, out);
    const copy = inspect(out);
    assert.equal(copy.check, 'ok');
    // A consistent snapshot of one writer: a gapless prefix 1..N of its commits ...
    assert.deepEqual(
      copy.seqs,
      Array.from({ length: copy.rows }, (_, i) => i + 1),
    );
    // ... holding every row acknowledged before the backup started ...
    assert.ok(copy.rows >= Math.max(...ackedBefore), `${copy.rows} < acked before`);
    // ... and nothing the writer does not (eventually) acknowledge as committed.
    await writer.waitForStdoutLine(() => acked().length >= copy.rows);
    const ackedSet = new Set(acked());
    assert.ok(copy.seqs.every((seq) => ackedSet.has(seq)));
    // The writer was not blocked by the backup: it is still committing.
    const afterBackup = acked().length;
    await writer.waitForStdoutLine(() => acked().length > afterBackup);
    writer.kill('SIGKILL');
    await writer.exited();
    assert.deepEqual(fs.readdirSync(path.dirname(out)), ['live.db']);
  });
});
