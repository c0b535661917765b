// Proves resetStore removes exactly the store's files (state.db, -wal, -shm, .lock) and only
// with confirm, keeps TLS material and server.toml, and refuses a non-SQLite or locked store.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { AUDIT_WRITER_PROCESS, ProcessGroup } from '@portunus/test-support';

import { openStore } from './open.js';
import { storePaths } from './paths.js';
import { resetStore } from './reset.js';
import { assertFails, tempStores } from './store.harness.js';

const processes = new ProcessGroup();
const temp = tempStores({ processes });

const KEPT = {
  'server.crt': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  'server.key': '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n',
  'server.toml': 'operator_token = "x"\n',
};

function withOperatorFiles(dir: string): string {
  for (const [name, text] of Object.entries(KEPT)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

function assertOperatorFilesKept(dir: string): void {
  for (const [name, text] of Object.entries(KEPT)) {
    assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), text, `${name} was touched`);
  }
}

/** A data dir as a SIGKILLed serve leaves it: state.db with -wal, -shm and the lock file. */
async function crashedStore(): Promise<string> {
  const dir = withOperatorFiles(temp.dir());
  const writer = processes.node(AUDIT_WRITER_PROCESS, [dir, 'locked', '0', '1']);
  await writer.waitForStdoutLine((line) => line.startsWith('ack '));
  writer.kill('SIGKILL');
  await writer.exited();
  const paths = storePaths(dir);
  for (const file of [paths.db, paths.wal, paths.shm, paths.lock]) {
    assert.ok(fs.existsSync(file), `fixture lacks ${path.basename(file)}`);
  }
  return dir;
}

const listing = (dir: string): string[] => fs.readdirSync(dir).sort();

describe('resetStore', () => {
  it('dry-runs without confirm: reports state.db and removes nothing', async () => {
    const dir = await crashedStore();
    const before = listing(dir);
    const bytes = fs.readFileSync(storePaths(dir).db);
    assert.deepEqual(resetStore(dir, { confirm: false }), {
      db: storePaths(dir).db,
      removed: [],
      dryRun: true,
    });
    assert.deepEqual(listing(dir), before);
    assert.ok(fs.readFileSync(storePaths(dir).db).equals(bytes));
  });

  it('with confirm removes state.db, -wal, -shm and the lock, and keeps server.crt/key/toml', async () => {
    const dir = await crashedStore();
    const paths = storePaths(dir);
    const result = resetStore(dir, { confirm: true });
    assert.equal(result.dryRun, false);
    assert.equal(result.db, paths.db);
    assert.deepEqual(
      [...result.removed].sort(),
      [paths.db, paths.wal, paths.shm, paths.lock].sort(),
    );
    assert.deepEqual(listing(dir), Object.keys(KEPT).sort());
    assertOperatorFilesKept(dir);
    // The next boot starts empty.
    const store = openStore(dir);
    try {
      assert.equal(store.db.prepare('SELECT count(*) FROM audit').pluck().get(), 0);
    } finally {
      store.close();
    }
  });

  it('refuses a state.db that is not SQLite (exit 7), dry run or not, removing nothing', () => {
    const dir = withOperatorFiles(temp.dir());
    fs.writeFileSync(storePaths(dir).db, 'my thesis, chapter 1');
    fs.writeFileSync(storePaths(dir).wal, 'not yours either');
    const before = listing(dir);
    assertFails('not_sqlite', 7, () => resetStore(dir, { confirm: false }));
    assertFails('not_sqlite', 7, () => resetStore(dir, { confirm: true }));
    assert.deepEqual(listing(dir), before);
    assert.equal(fs.readFileSync(storePaths(dir).db, 'utf8'), 'my thesis, chapter 1');
    assertOperatorFilesKept(dir);
  });

  it('is a no-op without a state.db, creating nothing', () => {
    const dir = withOperatorFiles(temp.dir());
    for (const confirm of [false, true]) {
      const result = resetStore(dir, { confirm });
      assert.deepEqual(result, { removed: [], dryRun: !confirm });
      assert.deepEqual(listing(dir), Object.keys(KEPT).sort());
    }
  });

  it('refuses while the store is open (exit 75) and removes nothing', () => {
    const dir = withOperatorFiles(temp.dir());
    const store = openStore(dir);
    try {
      store.db.prepare("INSERT INTO audit (ts, actor, outcome) VALUES (1, 'a', 'allow')").run();
      const before = listing(dir);
      assertFails('store_in_use', 75, () => resetStore(dir, { confirm: true }));
      assert.deepEqual(listing(dir), before);
      assert.equal(store.db.prepare('SELECT count(*) FROM audit').pluck().get(), 1);
    } finally {
      store.close();
    }
    assertOperatorFilesKept(dir);
  });
});
