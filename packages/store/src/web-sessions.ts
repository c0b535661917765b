/**
 * Web UI sessions: the BLAKE3 hex of each cookie secret (hashed by the caller) with its user, an
 * idle clock (`last_seen_at`) and an absolute expiry. Validity is decided here from the times the
 * caller passes, so expiry rules live in one place. Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { immediate, prepared } from './statements.js';

export interface WebSession {
  sessionHash: string;
  userId: string;
  createdAt: number;
  lastSeenAt: number;
  absoluteExpiresAt: number;
  revokedAt: number | null;
}

interface SessionRow {
  session_hash: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  absolute_expires_at: number;
  revoked_at: number | null;
}

export function insertWebSession(
  db: Database,
  session: {
    sessionHash: string;
    userId: string;
    now: number;
    absoluteTtlMs: number;
    remoteAddr?: string;
    userAgent?: string;
  },
): void {
  prepared(
    db,
    `INSERT INTO web_sessions (session_hash, user_id, created_at, last_seen_at,
       absolute_expires_at, remote_addr, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    session.sessionHash,
    session.userId,
    session.now,
    session.now,
    session.now + session.absoluteTtlMs,
    session.remoteAddr ?? null,
    session.userAgent?.slice(0, 512) ?? null,
  );
}

/**
 * The live session for this hash, or undefined when unknown, revoked, idle longer than
 * `idleTtlMs` or past its absolute expiry. A live session's idle clock is moved to `now`
 * (written at most once a minute).
 */
export function findLiveWebSession(
  db: Database,
  sessionHash: string,
  now: number,
  idleTtlMs: number,
): WebSession | undefined {
  const row = prepared(db, 'SELECT * FROM web_sessions WHERE session_hash = ?').get(sessionHash) as
    SessionRow | undefined;
  if (!row || row.revoked_at !== null) return undefined;
  if (now >= row.absolute_expires_at || now - row.last_seen_at >= idleTtlMs) return undefined;
  if (now - row.last_seen_at >= 60_000) {
    prepared(db, 'UPDATE web_sessions SET last_seen_at = ? WHERE session_hash = ?').run(
      now,
      sessionHash,
    );
  }
  return {
    sessionHash: row.session_hash,
    userId: row.user_id,
    createdAt: row.created_at,
    lastSeenAt: Math.max(row.last_seen_at, now),
    absoluteExpiresAt: row.absolute_expires_at,
    revokedAt: null,
  };
}

export function revokeWebSession(db: Database, sessionHash: string, now: number): boolean {
  return (
    prepared(
      db,
      'UPDATE web_sessions SET revoked_at = ? WHERE session_hash = ? AND revoked_at IS NULL',
    ).run(now, sessionHash).changes > 0
  );
}

/** Revokes every live session of a user; returns how many. */
export function revokeUserWebSessions(db: Database, userId: string, now: number): number {
  return prepared(
    db,
    'UPDATE web_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL',
  ).run(now, userId).changes;
}

/** Deletes sessions that can never be valid again. */
export function pruneWebSessions(db: Database, now: number): number {
  return immediate(
    db,
    () =>
      prepared(
        db,
        'DELETE FROM web_sessions WHERE absolute_expires_at <= ? OR revoked_at IS NOT NULL',
      ).run(now).changes,
  );
}
