/**
 * The first-run setup token (a singleton row holding its BLAKE3 hex and expiry). A new token
 * replaces the old one; redeeming it deletes it. Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { prepared } from './statements.js';

export interface SetupToken {
  tokenHash: string;
  issuedAt: number;
  expiresAt: number;
}

export function replaceSetupToken(db: Database, token: SetupToken): void {
  prepared(
    db,
    `INSERT INTO onboarding_setup (id, token_hash, issued_at, expires_at) VALUES (1, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash,
       issued_at = excluded.issued_at, expires_at = excluded.expires_at`,
  ).run(token.tokenHash, token.issuedAt, token.expiresAt);
}

export function getSetupToken(db: Database): SetupToken | undefined {
  const row = prepared(
    db,
    'SELECT token_hash, issued_at, expires_at FROM onboarding_setup WHERE id = 1',
  ).get() as { token_hash: string; issued_at: number; expires_at: number } | undefined;
  return row
    ? { tokenHash: row.token_hash, issuedAt: row.issued_at, expiresAt: row.expires_at }
    : undefined;
}

export function clearSetupToken(db: Database): void {
  prepared(db, 'DELETE FROM onboarding_setup WHERE id = 1').run();
}
