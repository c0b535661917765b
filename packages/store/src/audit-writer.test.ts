// Proves the bounded audit writer: write() settles only after its batch is committed, batches
// never exceed batchSize, a busy database is retried, a full or closed queue drops without
// blocking, close() drains, and one record the schema refuses (or that cannot be bound) is
// dropped and counted without blocking the others.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import Database from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import type { AuditRecord } from './audit.js';
import { AuditWriter } from './audit-writer.js';
import type { Store } from './open.js';
import { recordingLogger, tempStores } from './store.harness.js';

const temp = tempStores();

/** A second connection to the same file: it sees only committed rows. */
function reader(target: Store): Database.Database {
  return temp.track(new Database(target.paths.db, { readonly: true }));
}

const rows = (db: Database.Database): number =>
  db.prepare('SELECT count(*) FROM audit').pluck().get() as number;

const record = (n: number, outcome: 'allow' | 'deny' = 'allow'): AuditRecord => ({
  ts: 1_700_000_000_000 + n,
  actor: 'tester',
  outcome,
  method: 'POST',
  path: `/v1/n/${n}`,
});

/** Records the size of every transaction appendAudit opens on this connection. */
function countTransactions(db: Database.Database): number[] {
  const sizes: number[] = [];
  const original = db.transaction.bind(db);
  db.transaction = ((fn: (batch: readonly AuditRecord[]) => number[]) =>
    original((batch: readonly AuditRecord[]) => {
      sizes.push(batch.length);
      return fn(batch);
    })) as typeof db.transaction;
  return sizes;
}

/** Settles with `promise`, or rejects once `ms` have passed (a deadline, not a sleep). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  let onAbort = (): void => undefined;
  const deadline = new Promise<never>((_, reject) => {
    onAbort = () => {
      reject(new Error(`${what} did not settle within ${ms} ms`));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Yields to the event loop until `check()` holds, failing after `ms`. */
async function waitUntil(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

describe('AuditWriter', () => {
  it('resolves write() only after the row is committed and visible to another connection', async () => {
    const target = temp.open();
    const other = reader(target);
    const writer = new AuditWriter(target.db, { flushIntervalMs: 60_000 });
    try {
      const pending = writer.write(record(1));
      assert.equal(writer.pending, 1);
      assert.equal(rows(other), 0, 'nothing is committed synchronously');
      const seq = await within(pending, 5000, 'write()');
      assert.equal(rows(other), 1);
      assert.equal(
        other.prepare('SELECT path FROM audit WHERE seq = ?').pluck().get(seq),
        '/v1/n/1',
      );
      assert.equal(writer.pending, 0);
    } finally {
      writer.close();
    }
  });

  it('commits the writes of one turn in transactions of at most batchSize, seqs in call order', async () => {
    const target = temp.open();
    const sizes = countTransactions(target.db);
    const writer = new AuditWriter(target.db, { batchSize: 10, flushIntervalMs: 60_000 });
    try {
      const seqs = await within(
        Promise.all(Array.from({ length: 35 }, (_, i) => writer.write(record(i)))),
        5000,
        '35 writes',
      );
      assert.deepEqual(sizes, [10, 10, 10, 5]);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      assert.equal(new Set(seqs).size, 35);
      const paths = target.db.prepare('SELECT path FROM audit ORDER BY seq').pluck().all();
      assert.deepEqual(
        paths,
        Array.from({ length: 35 }, (_, i) => `/v1/n/${i}`),
      );
    } finally {
      writer.close();
    }
  });

  it('holds offered records until the interval or a full batch, and flush() reports the count', async () => {
    const target = temp.open();
    const sizes = countTransactions(target.db);
    const writer = new AuditWriter(target.db, { batchSize: 4, flushIntervalMs: 60_000 });
    try {
      for (let i = 0; i < 3; i += 1) assert.equal(writer.offer(record(i)), true);
      assert.equal(writer.pending, 3);
      assert.equal(writer.flush(), 3);
      assert.equal(writer.flush(), 0);
      assert.deepEqual(sizes, [3]);
      for (let i = 0; i < 4; i += 1) writer.offer(record(10 + i));
      // A full batch does not wait for the 60 s interval.
      await waitUntil(() => writer.pending === 0, 5000, 'the full batch');
      assert.deepEqual(sizes, [3, 4]);
      assert.equal(rows(target.db), 7);
    } finally {
      writer.close();
    }
  });

  it('writes offered records after flushIntervalMs on its own', async () => {
    const target = temp.open();
    const writer = new AuditWriter(target.db, { flushIntervalMs: 20 });
    try {
      writer.offer(record(1));
      writer.offer(record(2));
      assert.equal(rows(target.db), 0);
      await waitUntil(() => rows(target.db) === 2, 5000, 'the interval flush');
    } finally {
      writer.close();
    }
  });

  it('drops and counts past capacity without blocking, rejects the dropped write, drains on close', async () => {
    const target = temp.open();
    let drops = 0;
    const writer = new AuditWriter(target.db, {
      capacity: 3,
      batchSize: 100,
      flushIntervalMs: 60_000,
      onDrop: () => {
        drops += 1;
      },
    });
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => writer.offer(record(i))),
      [true, true, true, false],
    );
    const rejected = writer.write(record(4));
    await assert.rejects(rejected, (error: unknown) => {
      assert.ok(error instanceof PortunusError);
      return true;
    });
    assert.equal(writer.dropped, 2);
    assert.equal(drops, 2);
    assert.equal(writer.pending, 3);
    writer.close();
    assert.equal(writer.pending, 0);
    assert.deepEqual(target.db.prepare('SELECT path FROM audit ORDER BY seq').pluck().all(), [
      '/v1/n/0',
      '/v1/n/1',
      '/v1/n/2',
    ]);
    assert.equal(writer.offer(record(5)), false);
    await assert.rejects(writer.write(record(6)));
    assert.equal(writer.dropped, 4);
    assert.equal(drops, 4);
    writer.close(); // idempotent
    assert.equal(rows(target.db), 3);
  });

  it('keeps a batch that met a busy database and commits it once the database is free', async () => {
    const target = temp.open();
    // The writer's own connection with no busy wait, so the lock conflict surfaces at once.
    const db = temp.track(new Database(target.paths.db, { timeout: 0 }));
    const logger = recordingLogger();
    const writer = new AuditWriter(db, { flushIntervalMs: 5, logger });
    const blocker = temp.track(new Database(target.paths.db));
    blocker.exec('BEGIN IMMEDIATE');
    try {
      const pending = writer.write(record(1));
      await waitUntil(() => logger.events().includes('audit.flush_failed'), 5000, 'a failed flush');
      assert.equal(writer.pending, 1, 'the record is kept, not dropped');
      assert.equal(writer.dropped, 0);
      blocker.exec('COMMIT');
      const seq = await within(pending, 5000, 'the retried write');
      assert.ok(seq > 0);
      assert.equal(rows(target.db), 1);
    } finally {
      if (blocker.inTransaction) blocker.exec('ROLLBACK');
      writer.close();
    }
  });

  it('answers a waiter at once with store_full on a full database, keeps its record and retries with backoff', async () => {
    const target = temp.open();
    const logger = recordingLogger();
    const faults = { failed: 0, committed: 0 };
    const writer = new AuditWriter(target.db, {
      flushIntervalMs: 5,
      maxRetryDelayMs: 40,
      logger,
      faults: {
        failed: () => (faults.failed += 1),
        committed: () => (faults.committed += 1),
      },
    });
    // A real SQLITE_FULL: the file may not grow past the pages it has (as on a full disk).
    const pages = target.db.pragma('page_count', { simple: true }) as number;
    target.db.pragma(`max_page_count = ${pages}`);
    const big: AuditRecord = { ...record(1), details: { pad: 'x'.repeat(64 * 1024) } };
    try {
      await assert.rejects(within(writer.write(big), 2000, 'the refused write'), (error) => {
        assert.ok(error instanceof PortunusError);
        assert.equal(error.code, 'store_full');
        assert.equal(error.httpStatus, 507);
        return true;
      });
      assert.equal(writer.pending, 1, 'the record is kept while space is missing');
      assert.equal(writer.dropped, 0);
      // Retries back off (5, 10, 20, 40, 40 ms …) instead of spinning.
      await waitUntil(
        () => logger.lines.filter((line) => line.event === 'audit.flush_failed').length >= 5,
        5000,
        'five failed flushes',
      );
      const delays = logger.lines
        .filter((line) => line.event === 'audit.flush_failed')
        .map((line) => line.fields['retry_in_ms']);
      assert.deepEqual(delays.slice(0, 5), [5, 10, 20, 40, 40]);
      assert.ok(faults.failed >= 5);
      assert.equal(faults.committed, 0);
      target.db.pragma('max_page_count = 1073741823');
      await waitUntil(() => writer.pending === 0, 5000, 'the retried record');
      assert.equal(rows(reader(target)), 1);
      assert.equal(faults.committed, 1);
    } finally {
      writer.close();
    }
  });

  it('does not let one record the schema refuses block the records queued with it', async () => {
    const target = temp.open();
    const writer = new AuditWriter(target.db, { flushIntervalMs: 5 });
    try {
      const outcome = (promise: Promise<number>): Promise<string> =>
        promise.then(
          () => 'committed',
          () => 'rejected',
        );
      const settled = Promise.all([
        outcome(writer.write(record(1))),
        outcome(writer.write({ ...record(2), actor: '' })), // CHECK (length(actor) >= 1)
        outcome(writer.write(record(3))),
      ]);
      assert.deepEqual(await within(settled, 2000, 'the three writes'), [
        'committed',
        'rejected',
        'committed',
      ]);
      assert.deepEqual(target.db.prepare('SELECT path FROM audit ORDER BY seq').pluck().all(), [
        '/v1/n/1',
        '/v1/n/3',
      ]);
      assert.equal(writer.pending, 0);
      assert.equal(writer.dropped, 1, 'the refused record is counted as a drop');
    } finally {
      writer.close();
    }
  });

  it('drops, counts and logs an offered record that cannot be bound, committing the rest of its batch', () => {
    const target = temp.open();
    const logger = recordingLogger();
    let drops = 0;
    const writer = new AuditWriter(target.db, {
      batchSize: 10,
      flushIntervalMs: 60_000,
      logger,
      onDrop: () => {
        drops += 1;
      },
    });
    try {
      writer.offer(record(1));
      writer.offer({ ...record(2), details: { big: 1n } }); // JSON.stringify: TypeError
      writer.offer({ ...record(3), ts: Number.NaN }); // binds NULL: NOT NULL constraint
      writer.offer(record(4));
      assert.equal(writer.flush(), 2, 'flush() counts the committed records only');
      assert.equal(writer.pending, 0);
      assert.equal(writer.dropped, 2);
      assert.equal(drops, 2);
      assert.equal(logger.events().filter((event) => event === 'audit.flush_failed').length, 2);
      assert.deepEqual(target.db.prepare('SELECT path FROM audit ORDER BY seq').pluck().all(), [
        '/v1/n/1',
        '/v1/n/4',
      ]);
    } finally {
      writer.close();
    }
  });
});
