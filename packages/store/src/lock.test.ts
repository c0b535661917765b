// Proves the data dir lock is held against other processes, vanishes with its holder's SIGKILL,
// and survives a refused second attempt from inside the holding process.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';

import { AUDIT_WRITER_PROCESS, ProcessGroup } from '@portunus/test-support';

import { acquireStoreLock } from './lock.js';
import { openStore } from './open.js';
import { storePaths } from './paths.js';
import { resetStore } from './reset.js';
import { restoreStore } from './restore.js';
import { assertFails, tempStores } from './store.harness.js';

const processes = new ProcessGroup();
const temp = tempStores({ processes });

function assertInUse(work: () => unknown): void {
  assert.equal(assertFails('store_in_use', 75, work).event, 'startup.store_in_use');
}

/** Runs a child that tries to open the store like `serve`; resolves with its exit code. */
async function childOpen(dataDir: string): Promise<{ code: number; stderr: string }> {
  const result = await processes.run(AUDIT_WRITER_PROCESS, [dataDir, 'locked', '1']);
  return { code: result.code, stderr: result.stderr };
}

describe('lock across processes', () => {
  it('keeps the parent out while a child holds the store, and lets it in at once after SIGKILL', async () => {
    const dir = temp.dir();
    const child = processes.node(AUDIT_WRITER_PROCESS, [dir, 'locked', '0', '1']);
    await child.waitForStdoutLine((line) => line === 'ready');
    assertInUse(() => openStore(dir));
    assertInUse(() => resetStore(dir, { confirm: true }));
    assert.ok(fs.existsSync(storePaths(dir).db), 'a refused reset removed nothing');
    child.kill('SIGKILL');
    assert.equal(await child.exited(), 137);
    // No staleness heuristics and no retry: the kernel dropped the lock with the process.
    const store = openStore(dir);
    try {
      assert.ok((store.db.prepare('SELECT count(*) FROM audit').pluck().get() as number) > 0);
    } finally {
      store.close();
    }
  });

  it('keeps a child out while the parent holds the store', async () => {
    const dir = temp.dir();
    const store = openStore(dir);
    try {
      const result = await childOpen(dir);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /store_in_use/);
    } finally {
      store.close();
    }
    assert.equal((await childOpen(dir)).code, 0, 'the released lock admits the child');
  });

  it('still keeps other processes out after a refused second acquire in the holding process', async () => {
    const dir = temp.dir();
    const store = openStore(dir);
    try {
      assertInUse(() => acquireStoreLock(storePaths(dir).lock));
      assertInUse(() => openStore(dir));
      const other = openStore(temp.dir());
      other.close();
      assertInUse(() => restoreStore(dir, other.paths.db, { force: true }));
      // POSIX drops every fcntl lock a process holds on a file when it closes any descriptor
      // of that file: a refused attempt must not have opened and closed the lock file.
      const result = await childOpen(dir);
      assert.notEqual(result.code, 0, 'a second process got the lock the parent still holds');
      assert.match(result.stderr, /store_in_use/);
    } finally {
      store.close();
    }
  });

  it('creates the lock file 0600 whatever the umask and reports its path', () => {
    const dir = temp.dir();
    const previous = process.umask(0);
    let lock;
    try {
      lock = acquireStoreLock(storePaths(dir).lock);
    } finally {
      process.umask(previous);
    }
    try {
      assert.equal(lock.path, storePaths(dir).lock);
      assert.equal(fs.statSync(lock.path).mode & 0o777, 0o600);
    } finally {
      lock.release();
    }
  });
});
