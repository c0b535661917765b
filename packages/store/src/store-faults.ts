/**
 * The one place where a failure of the store's file becomes a catalogued error: SQLITE_FULL and
 * ENOSPC are `store_full` (507), SQLITE_IOERR* and EIO (a failed write or fsync) are
 * `store_io_error` (503), any other SQLite code is `store_error`. It also owns the episode of a
 * full disk: `StoreFaults` logs `store.disk_full` once when the first write finds the disk full and
 * `store.disk_space_recovered` once when a write commits again, so a flood of refused requests is
 * one log line, not one per request. Depends on core only; it must not know HTTP or the audit
 * writer (they call it).
 */
import { EVENTS, PortunusError, silentLogger, type Logger } from '@portunus/core';

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for a full disk, from SQLite (SQLITE_FULL) or from a plain fs write (ENOSPC). */
export function isDiskFull(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'SQLITE_FULL' || code === 'ENOSPC';
}

/** True for a failed read, write or fsync of the file (the extended codes are SQLITE_IOERR_*). */
export function isIoError(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'EIO' || (code !== undefined && code.startsWith('SQLITE_IOERR'));
}

/**
 * The catalogued error for a failure raised by the store, or undefined when it is not the store's
 * (not a SQLite or file-system code): the caller keeps its own translation for those. The
 * database's own words stay in the message for the log; errorBody() never sends a 5xx message.
 */
export function translateStoreError(error: unknown): PortunusError | undefined {
  if (error instanceof PortunusError) return error;
  const code = codeOf(error);
  if (code === undefined) return undefined;
  const message = (error as Error).message;
  const fields = { sqlite_code: code };
  if (isDiskFull(error)) return new PortunusError('store_full', message, fields, { cause: error });
  if (isIoError(error))
    return new PortunusError('store_io_error', message, fields, { cause: error });
  if (code.startsWith('SQLITE_'))
    return new PortunusError('store_error', message, fields, { cause: error });
  return undefined;
}

/** Tracks whether the store is in a disk-full episode, and logs its start and end once each. */
export class StoreFaults {
  private full = false;

  constructor(private readonly logger: Logger = silentLogger) {}

  get diskFull(): boolean {
    return this.full;
  }

  /** A write failed: starts a disk-full episode if that is why, logs an I/O error each time. */
  failed(error: unknown): void {
    if (isDiskFull(error) || (error instanceof PortunusError && error.code === 'store_full')) {
      if (this.full) return;
      this.full = true;
      this.logger.error(EVENTS.storeDiskFull, { error });
    } else if (
      isIoError(error) ||
      (error instanceof PortunusError && error.code === 'store_io_error')
    ) {
      this.logger.error(EVENTS.storeIoError, { error });
    }
  }

  /** A write committed: ends a disk-full episode. */
  committed(): void {
    if (!this.full) return;
    this.full = false;
    this.logger.info(EVENTS.storeDiskSpaceRecovered, {});
  }
}
