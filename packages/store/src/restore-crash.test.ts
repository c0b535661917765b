// Proves `restore --force` never leaves a data dir without a whole store: a child process restores a backup over a store whose last transactions sit only in its WAL (the server that wrote them was killed), and SIGKILLs itself before each step of the swap; afterwards the data dir boots through the normal path, passes integrity_check and holds exactly the old store (WAL rows included) or exactly the backup.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

import { appendAudit } from './audit.js';
import { backupStore } from './backup.js';
import { openStore } from './open.js';
import type { SwapStep } from './restore.js';
import { tempStores } from './store.harness.js';

const temp = tempStores();
const STORE_MODULE = fileURLToPath(new URL('./index.js', import.meta.url));

/** Runs `script` (an ES module body) in a child Node process; returns its signal. */
function runChild(script: string): NodeJS.Signals | null {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (result.status !== null && result.status !== 0) {
    throw new Error(`child failed (${result.status}): ${result.stderr}`);
  }
  return result.signal;
}

/**
 * A data dir whose store has `committed` audit rows by `actor`, the last `inWal` of them only in
 * the WAL: the writer turns automatic checkpoints off and is killed before it can close.
 */
function crashedStore(actor: string, committed: number, inWal: number): string {
  const dir = temp.dir();
  const signal = runChild(`
    import { openStore, appendAudit } from ${JSON.stringify(STORE_MODULE)};
    const store = openStore(${JSON.stringify(dir)});
    const row = (n) => ({ ts: 1750000000000 + n, actor: ${JSON.stringify(actor)}, outcome: 'allow', path: '/v1/n/' + n });
    appendAudit(store.db, Array.from({ length: ${committed - inWal} }, (_, n) => row(n)));
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    store.db.pragma('wal_autocheckpoint = 0');
    for (let n = ${committed - inWal}; n < ${committed}; n += 1) appendAudit(store.db, [row(n)]);
    process.kill(process.pid, 'SIGKILL');
  `);
  assert.equal(signal, 'SIGKILL');
  return dir;
}

/** Actor → row count of the data dir's store, opened through the normal boot path. */
function rowsByActor(dataDir: string): Record<string, number> {
  const store = openStore(dataDir);
  try {
    assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
    const rows = store.db
      .prepare('SELECT actor, COUNT(*) AS n FROM audit GROUP BY actor')
      .all() as { actor: string; n: number }[];
    return Object.fromEntries(rows.map((row) => [row.actor, row.n]));
  } finally {
    store.close();
  }
}

const STEPS: readonly SwapStep[] = [
  'checkpoint_old',
  'set_old_wal_aside',
  'rename_new',
  'drop_old_wal',
];

describe('restore --force killed in the middle of the swap', () => {
  for (const step of STEPS) {
    it(`killed before ${step}: state.db is one whole store`, async () => {
      const backupSource = temp.dir();
      const seed = openStore(backupSource);
      appendAudit(seed.db, [{ ts: 1, actor: 'backup', outcome: 'allow', path: '/x' }]);
      seed.close();
      const backup = path.join(temp.dir(), 'backup.db');
      await backupStore(backupSource, backup);

      const target = crashedStore('old', 12, 5);
      const signal = runChild(`
        import { restoreStore } from ${JSON.stringify(STORE_MODULE)};
        restoreStore(${JSON.stringify(target)}, ${JSON.stringify(backup)}, {
          force: true,
          onSwapStep: (step) => { if (step === ${JSON.stringify(step)}) process.kill(process.pid, 'SIGKILL'); },
        });
      `);
      assert.equal(signal, 'SIGKILL');
      const expected =
        STEPS.indexOf(step) <= STEPS.indexOf('rename_new') ? { old: 12 } : { backup: 1 };
      assert.deepEqual(rowsByActor(target), expected);
    });
  }

  it('completes with the backup, the old WAL gone and nothing set aside left', async () => {
    const backupSource = temp.dir();
    openStore(backupSource).close();
    const backup = path.join(temp.dir(), 'backup.db');
    await backupStore(backupSource, backup);
    const target = crashedStore('old', 3, 2);
    runChild(`
      import { restoreStore } from ${JSON.stringify(STORE_MODULE)};
      restoreStore(${JSON.stringify(target)}, ${JSON.stringify(backup)}, { force: true });
    `);
    assert.deepEqual(
      fs
        .readdirSync(target)
        .filter((name) => name.startsWith('state.db') && name !== 'state.db.lock'),
      ['state.db'],
    );
    assert.deepEqual(rowsByActor(target), {});
  });
});
