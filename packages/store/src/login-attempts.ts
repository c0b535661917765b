/**
 * The failed-attempt throttle per (subject, remote address, action) (reference §6.5): failures in
 * a 15-minute window accumulate; from the 5th on, the key is locked for 60 s × 2^(failures − 5),
 * capped at 15 minutes; a failure after an expired lockout or outside the window starts a new
 * burst; success clears the row. The policy lives here so the login, onboarding and password-reset
 * routes cannot disagree. Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { immediate, prepared } from './statements.js';

export type ThrottleAction = 'login' | 'onboarding' | 'password_reset';

export interface ThrottleKey {
  subject: string;
  remoteAddr: string;
  action: ThrottleAction;
}

export const THROTTLE_WINDOW_MS = 15 * 60_000;
export const THROTTLE_FREE_FAILURES = 4;
export const THROTTLE_BASE_LOCK_MS = 60_000;
export const THROTTLE_MAX_LOCK_MS = 15 * 60_000;

interface AttemptRow {
  failures: number;
  first_failed_at: number;
  last_failed_at: number;
  locked_until: number | null;
}

const KEY = 'subject = ? AND remote_addr = ? AND action = ?';

function read(db: Database, key: ThrottleKey): AttemptRow | undefined {
  return prepared(
    db,
    `SELECT failures, first_failed_at, last_failed_at, locked_until FROM login_attempts WHERE ${KEY}`,
  ).get(key.subject, key.remoteAddr, key.action) as AttemptRow | undefined;
}

/** Milliseconds until the key may try again; 0 when it is not locked. */
export function lockedForMs(db: Database, key: ThrottleKey, now: number): number {
  const row = read(db, key);
  if (row?.locked_until == null) return 0;
  return Math.max(0, row.locked_until - now);
}

export function lockDurationMs(failures: number): number {
  if (failures <= THROTTLE_FREE_FAILURES) return 0;
  const doublings = failures - THROTTLE_FREE_FAILURES - 1;
  return Math.min(THROTTLE_MAX_LOCK_MS, THROTTLE_BASE_LOCK_MS * 2 ** Math.min(doublings, 20));
}

/** Records a failure; returns the lockout it caused (0 for none). */
export function recordFailure(db: Database, key: ThrottleKey, now: number): number {
  return immediate(db, () => {
    const row = read(db, key);
    const lockExpired = row?.locked_until != null && row.locked_until <= now;
    const fresh = !row || now - row.first_failed_at >= THROTTLE_WINDOW_MS || lockExpired;
    const failures = fresh ? 1 : row.failures + 1;
    const lockMs = lockDurationMs(failures);
    prepared(
      db,
      `INSERT INTO login_attempts (subject, remote_addr, action, failures, first_failed_at,
         last_failed_at, locked_until) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (subject, remote_addr, action) DO UPDATE SET failures = excluded.failures,
         first_failed_at = excluded.first_failed_at, last_failed_at = excluded.last_failed_at,
         locked_until = excluded.locked_until`,
    ).run(
      key.subject,
      key.remoteAddr,
      key.action,
      failures,
      fresh ? now : row.first_failed_at,
      now,
      lockMs > 0 ? now + lockMs : null,
    );
    return lockMs;
  });
}

export function clearFailures(db: Database, key: ThrottleKey): void {
  prepared(db, `DELETE FROM login_attempts WHERE ${KEY}`).run(
    key.subject,
    key.remoteAddr,
    key.action,
  );
}
