/**
 * A separate process that writes audit rows to a store, for tests and benchmarks that need a
 * real concurrent writer (backup under load, SIGKILL during writes). It prints
 * `ack <seq>` on stdout after each commit returns, so the parent knows exactly which writes
 * were acknowledged.
 *
 *   node audit-writer-process.js <data-dir> locked|shared <count|0=forever> [batch]
 *
 * `locked` opens the store like `serve` (lock + boot sequence); `shared` opens only the database
 * file, as a second connection next to a process that holds the lock.
 */
import Database from 'better-sqlite3';

import { appendAudit, openStore, storePaths, type AuditRecord } from '@portunus/store';

const [dataDir, mode = 'locked', countText = '0', batchText = '1'] = process.argv.slice(2);
if (!dataDir)
  throw new Error('usage: audit-writer-process <data-dir> locked|shared <count> [batch]');
const count = Number(countText);
const batch = Number(batchText);

const store = mode === 'locked' ? openStore(dataDir) : undefined;
const db = store?.db ?? new Database(storePaths(dataDir).db, { timeout: 5000 });
if (!store) {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
}

const record = (n: number): AuditRecord => ({
  ts: Date.now(),
  actor: 'writer',
  outcome: 'allow',
  method: 'POST',
  path: `/v1/test/${n}`,
  details: { n },
});

process.stdout.write('ready\n');
let written = 0;
// A bounded loop unless count is 0; the parent always ends a "forever" writer by a signal.
while (count === 0 || written < count) {
  const records = Array.from({ length: batch }, (_, index) => record(written + index));
  const seqs = appendAudit(db, records);
  process.stdout.write(`ack ${seqs.join(' ')}\n`);
  written += batch;
  // Yield so a signal or a full pipe is handled between commits.
  await new Promise((resolve) => setImmediate(resolve));
}
store?.close();
if (!store) db.close();
