/**
 * The bounded, batched audit writer (reference §7.1): records wait in a queue of at most
 * `capacity` entries and are written up to `batchSize` per `BEGIN IMMEDIATE` transaction, at the
 * latest `flushIntervalMs` after the first one arrived; records someone awaits are committed at
 * the end of the current event-loop turn. `write()` resolves only once its batch is committed, so a caller can acknowledge a mutation knowing its audit row is durable (group
 * commit: one fsync serves the whole batch); `offer()` is fire-and-forget for callers that must
 * never wait. A full queue drops the new record and counts it, never blocks. `close()` drains.
 * Depends on the audit query module only.
 */
import { EVENTS, PortunusError, silentLogger, type Logger } from '@portunus/core';
import type { Database } from 'better-sqlite3';

import { appendAudit, type AuditRecord } from './audit.js';

export interface AuditWriterOptions {
  capacity?: number;
  batchSize?: number;
  flushIntervalMs?: number;
  logger?: Logger;
  /** Called once per dropped record (wire it to portunus_audit_buffer_drops_total). */
  onDrop?: () => void;
}

interface Pending {
  record: AuditRecord;
  settle?: { resolve: (seq: number) => void; reject: (error: unknown) => void };
}

export class AuditWriter {
  readonly capacity: number;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
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
  }

  /** Records dropped because the queue was full or the writer closed. */
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
      let seqs: number[];
      try {
        seqs = appendAudit(
          this.db,
          batch.map((pending) => pending.record),
        );
      } catch (error) {
        // Keep the records (the queue bound still holds) and try again on the next tick.
        this.logger.error(EVENTS.auditFlushFailed, { error, queued: this.queue.length });
        if (!this.closed) this.schedule();
        else this.failAll(error);
        return written;
      }
      this.queue.splice(0, batch.length);
      batch.forEach((pending, index) => pending.settle?.resolve(seqs[index] ?? -1));
      written += batch.length;
    }
    if (written > 0) this.logger.debug(EVENTS.auditFlushed, { records: written });
    return written;
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
