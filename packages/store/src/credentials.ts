/**
 * API bearer credentials: stored only as the BLAKE3 hex of the token (hashed by the caller), with
 * a label, a status and the last time each was used. Lookup is by the unique hash index: the
 * tokens carry 256 bits of entropy, so an index probe on their hash reveals nothing a timing
 * attacker could use. Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import { isUniqueViolation, prepared } from './statements.js';

export interface Credential {
  credentialId: string;
  userId: string;
  label: string;
  status: 'active' | 'revoked';
  issuedAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

interface CredentialRow {
  credential_id: string;
  user_id: string;
  label: string;
  status: 'active' | 'revoked';
  issued_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

function fromRow(row: CredentialRow): Credential {
  return {
    credentialId: row.credential_id,
    userId: row.user_id,
    label: row.label,
    status: row.status,
    issuedAt: row.issued_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

const COLUMNS = 'credential_id, user_id, label, status, issued_at, revoked_at, last_used_at';

export function insertCredential(
  db: Database,
  credential: { credentialId: string; userId: string; hash: string; label: string; now: number },
): Credential {
  try {
    prepared(
      db,
      `INSERT INTO credentials (credential_id, user_id, hash, label, issued_at)
       VALUES (?, ?, ?, ?, ?)`,
    ).run(
      credential.credentialId,
      credential.userId,
      credential.hash,
      credential.label,
      credential.now,
    );
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new PortunusError('store_error', 'credential id or hash collision; retry');
    }
    if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      throw new PortunusError('user_not_found', `no user ${credential.userId}`, {
        user_id: credential.userId,
      });
    }
    throw error;
  }
  return getCredential(db, credential.credentialId)!;
}

export function getCredential(db: Database, credentialId: string): Credential | undefined {
  const row = prepared(db, `SELECT ${COLUMNS} FROM credentials WHERE credential_id = ?`).get(
    credentialId,
  ) as CredentialRow | undefined;
  return row ? fromRow(row) : undefined;
}

/** The credential with this token hash, whatever its status. */
export function findCredentialByHash(db: Database, hash: string): Credential | undefined {
  const row = prepared(db, `SELECT ${COLUMNS} FROM credentials WHERE hash = ?`).get(hash) as
    CredentialRow | undefined;
  return row ? fromRow(row) : undefined;
}

export function listCredentials(db: Database, userId?: string): Credential[] {
  const rows = (
    userId === undefined
      ? prepared(db, `SELECT ${COLUMNS} FROM credentials ORDER BY issued_at, credential_id`).all()
      : prepared(
          db,
          `SELECT ${COLUMNS} FROM credentials WHERE user_id = ? ORDER BY issued_at, credential_id`,
        ).all(userId)
  ) as CredentialRow[];
  return rows.map(fromRow);
}

/** Marks a credential revoked (idempotent); throws credential_not_found for an unknown id. */
export function revokeCredential(db: Database, credentialId: string, now: number): Credential {
  prepared(
    db,
    `UPDATE credentials SET status = 'revoked', revoked_at = ?
     WHERE credential_id = ? AND status = 'active'`,
  ).run(now, credentialId);
  const credential = getCredential(db, credentialId);
  if (!credential) {
    throw new PortunusError('credential_not_found', `no credential ${credentialId}`, {
      credential_id: credentialId,
    });
  }
  return credential;
}

/**
 * Records use. Writes at most once a minute per credential, so a busy automation client does
 * not turn every read into a write transaction.
 */
export function touchCredential(db: Database, credentialId: string, now: number): void {
  prepared(
    db,
    `UPDATE credentials SET last_used_at = ?
     WHERE credential_id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`,
  ).run(now, credentialId, now - 60_000);
}
