// Proves that operator mistakes cannot touch a store they did not name: every path flag given as
// an empty or blank string (an unset shell variable) is refused with exit 2 before anything is
// opened or created, with HOME and XDG_STATE_HOME pointing at a real store that must stay
// byte-for-byte as it was; and that refused restores leave the target data dir exactly as it was.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import Database from 'better-sqlite3';

import { CLIENT_BIN } from '@portunus/test-support';

import { Harness } from './harness.js';

const harness = new Harness();
after(() => harness.close());

/** Names, sizes, modes and content hashes of everything under `root`, for before/after equality. */
function snapshot(root: string): string[] {
  const rows: string[] = [];
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const stat = fs.lstatSync(full);
      const rel = path.relative(root, full);
      if (stat.isDirectory()) {
        rows.push(`${rel}/ ${(stat.mode & 0o7777).toString(8)}`);
        walk(full);
      } else {
        const hash = crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex');
        rows.push(`${rel} ${stat.size} ${(stat.mode & 0o7777).toString(8)} ${hash}`);
      }
    }
  };
  if (fs.existsSync(root)) {
    rows.push(`./ ${(fs.statSync(root).mode & 0o7777).toString(8)}`);
    walk(root);
  }
  return rows;
}

describe('blank path flags', () => {
  let home: string;
  let env: Record<string, string | undefined>;
  let store: string;

  before(async () => {
    home = harness.dirs.make();
    env = {
      HOME: home,
      XDG_STATE_HOME: path.join(home, 'state'),
      XDG_CONFIG_HOME: path.join(home, 'config'),
      STATE_DIRECTORY: undefined,
      PORTUNUS_CLIENT_BUNDLE: undefined,
      PORTUNUS_ENROLL_URI: undefined,
    };
    // A real store at the default location the blank flag used to fall back to.
    const made = await harness.cli(
      ['audit', 'prune', '--before', '1970-01-01T00:00:00Z', '--dry-run'],
      env,
    );
    assert.equal(made.code, 0, made.stderr);
    store = path.join(home, 'state', 'portunus', 'state.db');
    assert.ok(fs.existsSync(store));
  });

  const serverCases: [string, string[]][] = [
    ["--data-dir '' reset --confirm", ['--data-dir', '', 'reset', '--confirm']],
    ["--data-dir '  ' reset --confirm", ['--data-dir', '  ', 'reset', '--confirm']],
    ["--data-dir '' restore --in X --force", ['--data-dir', '', 'restore', '--in', 'X', '--force']],
    ["--data-dir '' serve", ['--data-dir', '', 'serve', '--control-listen', '127.0.0.1:0']],
    ["backup --out ''", ['backup', '--out', '']],
    ["backup --out ' '", ['backup', '--out', ' ']],
    ["restore --in '' --force", ['restore', '--in', '', '--force']],
  ];
  for (const [label, args] of serverCases) {
    it(`portunus-server ${label} exits 2 and leaves the default store untouched`, async () => {
      const before = snapshot(home);
      const result = await harness.cli(args, env);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /usage_error: --(data-dir|out|in) is empty/);
      assert.deepEqual(snapshot(home), before);
    });
  }

  const clientCases: [string, string[]][] = [
    ["--bundle ''", ['--bundle', '']],
    ["enroll URI --out ''", ['enroll', 'portunus://127.0.0.1:1/enroll?code=x', '--out', '']],
  ];
  for (const [label, args] of clientCases) {
    it(`portunus-client ${label} exits 2 and creates nothing`, async () => {
      const before = snapshot(home);
      const result = await harness.processes.run(CLIENT_BIN, args, { env, cwd: home });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /usage_error: --(bundle|out) is empty/);
      assert.deepEqual(snapshot(home), before);
    });
  }
});

describe('refused restores leave the target data dir exactly as it was', () => {
  let backupFile: string;
  let futureFile: string;
  let notSqlite: string;

  before(async () => {
    const source = harness.newDataDir();
    const made = await harness.cli([
      '--data-dir',
      source,
      'audit',
      'prune',
      '--before',
      '1970-01-01T00:00:00Z',
      '--dry-run',
    ]);
    assert.equal(made.code, 0, made.stderr);
    const inputs = harness.dirs.make();
    backupFile = path.join(inputs, 'good.db');
    const backup = await harness.cli(['--data-dir', source, 'backup', '--out', backupFile]);
    assert.equal(backup.code, 0, backup.stderr);
    futureFile = path.join(inputs, 'future.db');
    fs.copyFileSync(backupFile, futureFile);
    const db = new Database(futureFile);
    db.prepare("INSERT INTO schema_migrations VALUES (999, 'from_the_future', ?, 0)").run(
      'a'.repeat(64),
    );
    db.close();
    notSqlite = path.join(inputs, 'notes.txt');
    fs.writeFileSync(notSqlite, 'these are my notes, not a database');
  });

  /** An existing empty data dir, and one holding a real store. */
  async function targets(): Promise<{ empty: string; full: string }> {
    const empty = harness.dirs.make();
    const full = harness.newDataDir();
    const made = await harness.cli(['--data-dir', full, 'restore', '--in', backupFile]);
    assert.equal(made.code, 0, made.stderr);
    return { empty, full };
  }

  const cases: [string, () => string, boolean, number, RegExp][] = [
    ['a file without the SQLite header', () => notSqlite, true, 7, /not_sqlite: .*notes\.txt/],
    ['a too-new schema', () => futureFile, true, 78, /schema_version_too_new: .*future\.db/],
    ['a non-empty data dir without --force', () => backupFile, false, 3, /data_dir_not_empty/],
  ];
  for (const [label, input, force, code, message] of cases) {
    it(`${label}: exit ${code}, names the input, same names, sizes and modes`, async () => {
      const { empty, full } = await targets();
      for (const dir of code === 3 ? [full] : [empty, full]) {
        const before = snapshot(dir);
        const args = ['--data-dir', dir, 'restore', '--in', input(), ...(force ? ['--force'] : [])];
        const result = await harness.cli(args);
        assert.equal(result.code, code, result.stderr);
        assert.match(result.stderr, message);
        assert.doesNotMatch(result.stderr, /restoring/);
        assert.deepEqual(snapshot(dir), before, dir);
      }
    });
  }

  it('a missing data dir stays missing after a refused restore', async () => {
    const dir = harness.newDataDir();
    const result = await harness.cli(['--data-dir', dir, 'restore', '--in', futureFile]);
    assert.equal(result.code, 78, result.stderr);
    assert.deepEqual(fs.readdirSync(path.dirname(dir)), []);
  });

  it('restore --in DIR says the input is a directory (exit 2) and creates nothing', async () => {
    const dir = harness.newDataDir();
    const result = await harness.cli([
      '--data-dir',
      dir,
      'restore',
      '--in',
      path.dirname(backupFile),
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /source_is_directory: .* is a directory; pass the backup file/);
    assert.equal(fs.existsSync(dir), false);
  });

  it(
    'a data dir on tmpfs is refused (78) with nothing created there',
    { skip: !fs.existsSync('/dev/shm') },
    async () => {
      const parent = fs.mkdtempSync('/dev/shm/portunus-e2e-');
      try {
        const dir = path.join(parent, 'data');
        for (const args of [
          ['restore', '--in', backupFile],
          ['serve', '--control-listen', '127.0.0.1:0'],
        ]) {
          const result = await harness.cli(['--data-dir', dir, ...args]);
          assert.equal(result.code, 78, result.stderr);
          assert.match(result.stderr, /unsupported_filesystem: .*tmpfs/);
          assert.deepEqual(fs.readdirSync(parent), []);
        }
      } finally {
        fs.rmSync(parent, { recursive: true, force: true });
      }
    },
  );
});
