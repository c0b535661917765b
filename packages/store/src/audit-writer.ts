/**
 * The bounded, batched audit writer (reference §7.1): records wait in a queue of at most
 * `capacity` entries and are written up to `batchSize` per `BEGIN IMMEDIATE` transaction, at the
 * latest `flushIntervalMs` after the first one arrived; records someone awaits are committed at
 * the end of the current event-loop turn. `write()` resolves only once its batch is committed, so
 * a caller can acknowledge a mutation knowing its audit row is durable (group commit: one fsync
 * serves the whole batch); `offer()` is fire-and-forget for callers that must never wait. A full
 * queue drops the new record and counts it, never blocks. `close()` drains. A batch that fails
 * because of one record (a binding error or a constraint) is retried record by record in one
 * transaction, each in its own savepoint, so only the refused record is dropped (counted, logged,
 * its `write()` rejected) and the rest still commit; a batch that fails because of the store
 * (busy, I/O, a full disk, closed) is kept and retried whole, with exponential backoff
 * (`flushIntervalMs` doubling up to `maxRetryDelayMs`, reset by the next commit) so a full disk is
 * not hammered. On a full disk or an I/O error the callers awaiting the batch are rejected at
 * once with the catalogued error (store_full, store_io_error) instead of waiting for space (a busy
 * database's waiters keep waiting: a lock clears by itself), but their records stay queued and
 * are committed as soon as a retry succeeds: while space is missing a row is lost only when the
 * bounded queue overflows, and that is counted and logged like any drop. Depends on the audit query module
 * and the store's fault translation only.
 */
import { EVENTS, PortunusError, silentLogger, type Logger } from '@portunus/core';
import type { Database } from 'better-sqlite3';

import { appendAudit, type AuditRecord } from './audit.js';
import { translateStoreError } from './store-faults.js';

export interface AuditWriterOptions {
  capacity?: number;
  batchSize?: number;
  flushIntervalMs?: number;
  logger?: Logger;
  /** Cap of the backoff between retries of a batch the store refused (default 5 s). */
  maxRetryDelayMs?: number;
  /** Called once per dropped record (wire it to portunus_audit_buffer_drops_total). */
  onDrop?: () => void;
  /** Told of every store-level failure and every commit (wire it to the store's StoreFaults). */
  faults?: { failed(error: unknown): void; committed(): void };
}

/** A record the database refused, in the place of its seq. */
interface RecordRefused {
  error: unknown;
}

/**
 * Errors that belong to one record, not to the store: a value better-sqlite3 cannot bind or
 * JSON.stringify cannot render (TypeError, RangeError), a CHECK/NOT NULL/type constraint, an
 * oversized value. Anything else (busy, I/O, a closed database) is the store's and keeps the batch.
 */
function isRecordError(error: unknown): boolean {
  if (error instanceof TypeError || error instanceof RangeError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' && (code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_TOOBIG')
  );
}

interface Pending {
  record: AuditRecord;
  settle?: { resolve: (seq: number) => void; reject: (error: unknown) => void };
}

export class AuditWriter {
  readonly capacity: number;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  readonly maxRetryDelayMs: number;
  /** Store-level failures in a row; 0 after a commit. Drives the retry backoff. */
  private failures = 0;
  private readonly faults: NonNullable<AuditWriterOptions['faults']> | undefined;
  private readonly queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;
  private droppedCount = 0;
  private readonly logger: Logger;
  private readonly onDrop: () => void;

  constructor(
    private readonly db: Database,
    options: AuditWriterOptions = {},
  ) {
    this.capacity = options.capacity ?? 1024;
    this.batchSize = options.batchSize ?? 256;
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.logger = options.logger ?? silentLogger;
    this.onDrop = options.onDrop ?? (() => undefined);
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 5000;
    this.faults = options.faults;
  }

  /** Records dropped because the queue was full, the writer closed or the database refused them. */
  get dropped(): number {
    return this.droppedCount;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Queues a record without waiting; false when it was dropped. */
  offer(record: AuditRecord): boolean {
    return this.enqueue({ record });
  }

  /** Queues a record and resolves with its seq once it is committed. */
  write(record: AuditRecord): Promise<number> {
    return new Promise((resolve, reject) => {
      const accepted = this.enqueue({ record, settle: { resolve, reject } });
      if (!accepted) {
        reject(new PortunusError('store_error', 'audit queue is full; the record was dropped'));
      }
    });
  }

  /** Writes everything queued now, in batches; returns how many records were committed. */
  flush(): number {
    this.clearTimer();
    let written = 0;
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.batchSize);
      let results: Array<number | RecordRefused>;
      try {
        results = this.append(batch);
      } catch (error) {
        this.storeFailed(error);
        return written;
      }
      this.failures = 0;
      this.faults?.committed();
      this.queue.splice(0, batch.length);
      batch.forEach((pending, index) => {
        const result = results[index] ?? -1;
        if (typeof result === 'number') {
          pending.settle?.resolve(result);
          written += 1;
        } else {
          this.refuse(pending, result.error);
        }
      });
    }
    if (written > 0) this.logger.debug(EVENTS.auditFlushed, { records: written });
    return written;
  }

  /**
   * Commits one batch: all together, or, when one of its records is refused, one savepoint per
   * record in a single transaction, so the others still commit. Throws on a store-level error.
   */
  private append(batch: readonly Pending[]): Array<number | RecordRefused> {
    const records = batch.map((pending) => pending.record);
    try {
      return appendAudit(this.db, records);
    } catch (error) {
      // better-sqlite3 reports a closed connection as a TypeError too: that is the store's.
      if (!isRecordError(error) || !this.db.open) throw error;
    }
    const each = this.db.transaction((all: readonly AuditRecord[]) =>
      all.map((record): number | RecordRefused => {
        try {
          // Nested in the transaction above, appendAudit runs in a savepoint of its own.
          return appendAudit(this.db, [record])[0] ?? -1;
        } catch (error) {
          if (!isRecordError(error)) throw error;
          return { error };
        }
      }),
    );
    return each.immediate(records);
  }

  /**
   * The store refused a whole batch (busy, I/O, full disk). The records stay queued (the bound
   * still holds) and are retried after a backoff; whoever awaits one is told now, so an HTTP
   * request answers at once instead of hanging until space returns. Once closed, nothing will
   * retry, so the waiters get the error and the records are left to the caller's drop count.
   */
  private storeFailed(error: unknown): void {
    const failure = translateStoreError(error) ?? error;
    this.faults?.failed(error);
    this.failures += 1;
    if (this.closed) {
      this.logger.error(EVENTS.auditFlushFailed, { error, queued: this.queue.length });
      this.failAll(failure);
      return;
    }
    const delayMs = Math.min(
      this.maxRetryDelayMs,
      this.flushIntervalMs * 2 ** Math.min(this.failures - 1, 30),
    );
    this.logger.error(EVENTS.auditFlushFailed, {
      error,
      queued: this.queue.length,
      retry_in_ms: delayMs,
      failures: this.failures,
    });
    // A busy database frees itself within moments: its waiters keep waiting. A full disk or a
    // failing device waits for an operator, so its waiters are answered now.
    if (failure instanceof PortunusError && failure.code !== 'store_error') {
      for (const pending of this.queue) {
        pending.settle?.reject(failure);
        delete pending.settle;
      }
    }
    this.retryTimer(delayMs);
  }

  private retryTimer(delayMs: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => this.flush(), delayMs);
  }

  /** Drops a record the database refused: counted like any drop, logged, its writer told. */
  private refuse(pending: Pending, error: unknown): void {
    this.droppedCount += 1;
    this.onDrop();
    this.logger.error(EVENTS.auditFlushFailed, {
      error,
      refused_record: true,
      dropped_total: this.droppedCount,
    });
    pending.settle?.reject(
      new PortunusError(
        'store_error',
        `the store refused the audit record: ${(error as Error).message}`,
        {},
        { cause: error },
      ),
    );
  }

  /** Stops accepting records and drains the queue. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.flush();
  }

  private enqueue(pending: Pending): boolean {
    if (this.closed || this.queue.length >= this.capacity) {
      this.droppedCount += 1;
      this.onDrop();
      this.logger.warn(EVENTS.auditHandoffOverflow, {
        capacity: this.capacity,
        dropped_total: this.droppedCount,
        closed: this.closed,
      });
      return false;
    }
    this.queue.push(pending);
    if (pending.settle || this.queue.length >= this.batchSize) {
      // Someone waits on this record (or a batch is full): commit at the end of this turn of the
      // event loop, together with everything else queued in it, not after the interval.
      this.scheduleSoon();
    } else {
      this.schedule();
    }
    return true;
  }

  private schedule(): void {
    if (this.timer === undefined && this.immediate === undefined) {
      this.timer = setTimeout(() => this.flush(), this.flushIntervalMs);
    }
  }

  private scheduleSoon(): void {
    if (this.immediate !== undefined) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.immediate = setImmediate(() => this.flush());
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private failAll(error: unknown): void {
    for (const pending of this.queue.splice(0)) pending.settle?.reject(error);
  }
}
