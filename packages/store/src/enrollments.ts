/**
 * Client enrollment codes (reference §4.5): a one-time code, stored only as the BLAKE3 hex the
 * caller computed, bound to a client id minted at creation, with the advertised endpoint resolved
 * then and replayed verbatim at redeem. Issuing a code supersedes every unredeemed code of the
 * same client; redeeming one — for a brand-new, an existing or a deleted-in-between client — is a
 * single BEGIN IMMEDIATE transaction, so two redeems of one code cannot both succeed. This module
 * never sees a code or a token, only their hashes; it depends on core and the clients aggregate.
 */
import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import {
  checkClientAddress,
  checkClientName,
  getClient,
  insertClient,
  supersedeEnrollments,
  type Client,
} from './clients.js';
import { immediate, prepared } from './statements.js';

export const ENROLLMENT_TTL_DEFAULT_SECS = 600;
export const ENROLLMENT_TTL_MAX_SECS = 86_400;

/** Checks an enrollment lifetime: a whole number of seconds, 1..86400, else invalid_enrollment_ttl. */
export function checkEnrollmentTtl(ttlSecs: number): number {
  if (!Number.isInteger(ttlSecs) || ttlSecs < 1 || ttlSecs > ENROLLMENT_TTL_MAX_SECS) {
    throw new PortunusError(
      'invalid_enrollment_ttl',
      `ttl_secs must be a whole number 1..${ENROLLMENT_TTL_MAX_SECS}, not ${String(ttlSecs)}`,
      { ttl_secs: ttlSecs },
    );
  }
  return ttlSecs;
}

export interface NewEnrollment {
  clientId: string;
  clientName: string;
  /** Written to the client row at redeem when set; null keeps the row's address. */
  clientAddress: string | null;
  /** `host:port` the redeemed bundle tells the client to dial; null resolves at redeem. */
  advertisedEndpoint: string | null;
  codeHash: string;
  now: number;
  ttlSecs: number;
}

export interface IssuedEnrollment {
  clientId: string;
  clientName: string;
  issuedAt: number;
  expiresAt: number;
}

/**
 * Stores a new code for `clientId` (name and address validated, ttl 1..86400 s) and supersedes —
 * marks consumed — every code of that client not yet redeemed.
 */
export function createEnrollment(db: Database, enrollment: NewEnrollment): IssuedEnrollment {
  const clientName = checkClientName(enrollment.clientName);
  const clientAddress =
    enrollment.clientAddress === null ? null : checkClientAddress(enrollment.clientAddress);
  const ttlSecs = checkEnrollmentTtl(enrollment.ttlSecs);
  const issuedAt = enrollment.now;
  const expiresAt = issuedAt + ttlSecs * 1000;
  immediate(db, () => {
    supersedeEnrollments(db, enrollment.clientId, issuedAt);
    prepared(
      db,
      `INSERT INTO client_enrollments (client_id, client_name, client_address, advertised_endpoint,
         code_hash, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      enrollment.clientId,
      clientName,
      clientAddress,
      enrollment.advertisedEndpoint,
      enrollment.codeHash,
      issuedAt,
      expiresAt,
    );
  });
  return { clientId: enrollment.clientId, clientName, issuedAt, expiresAt };
}

export interface RedeemedEnrollment {
  clientId: string;
  /** The client's current name (a rename after issue wins over the name on the code). */
  clientName: string;
  advertisedEndpoint: string | null;
  clientAddress: string | null;
  /** True when the client row already existed: its token was rotated and it was un-revoked. */
  existed: boolean;
}

interface EnrollmentRow {
  enrollment_id: number;
  client_id: string;
  client_name: string;
  client_address: string | null;
  advertised_endpoint: string | null;
  expires_at: number;
  consumed_at: number | null;
}

/**
 * Redeems a code in one transaction: unknown → enrollment_invalid, redeemed or superseded →
 * enrollment_used, expired (now ≥ expires_at; left unconsumed) → enrollment_expired. An existing
 * client gets the new token hash, its revocation cleared and the code's address if it carries
 * one; a missing client is created under the code's id. Then the code is consumed.
 */
export function redeemEnrollment(
  db: Database,
  redeem: { codeHash: string; tokenHash: string; now: number },
): RedeemedEnrollment {
  return immediate(db, () => {
    const row = prepared(
      db,
      `SELECT enrollment_id, client_id, client_name, client_address, advertised_endpoint,
         expires_at, consumed_at FROM client_enrollments WHERE code_hash = ?`,
    ).get(redeem.codeHash) as EnrollmentRow | undefined;
    if (!row) throw new PortunusError('enrollment_invalid');
    if (row.consumed_at !== null) {
      throw new PortunusError('enrollment_used', undefined, { client_id: row.client_id });
    }
    if (redeem.now >= row.expires_at) {
      throw new PortunusError('enrollment_expired', undefined, { client_id: row.client_id });
    }
    const existed = getClient(db, row.client_id) !== undefined;
    if (existed) {
      prepared(
        db,
        `UPDATE clients SET token_hash = ?, token_issued_at = ?, revoked_at = NULL,
           client_address = coalesce(?, client_address) WHERE client_id = ?`,
      ).run(redeem.tokenHash, redeem.now, row.client_address, row.client_id);
    } else {
      insertClient(db, {
        clientId: row.client_id,
        clientName: row.client_name,
        clientAddress: row.client_address,
        tokenHash: redeem.tokenHash,
        now: redeem.now,
      });
    }
    prepared(db, 'UPDATE client_enrollments SET consumed_at = ? WHERE enrollment_id = ?').run(
      redeem.now,
      row.enrollment_id,
    );
    const client = getClient(db, row.client_id);
    return {
      clientId: row.client_id,
      clientName: client?.clientName ?? row.client_name,
      advertisedEndpoint: row.advertised_endpoint,
      clientAddress: client?.clientAddress ?? null,
      existed,
    };
  });
}

/**
 * The client an operator names (by id or display name) that holds an unredeemed, unexpired code
 * but has not redeemed it yet, provisioned now as a client row without a token so a grant can key
 * it by client_id before its first connection (README "The fleet"); redeeming the code later finds
 * the row and gives it the token. Undefined when no pending code matches; a name two pending
 * clients share is ambiguous_client_name. Call it inside the caller's write transaction.
 */
export function provisionPendingClient(
  db: Database,
  reference: string,
  now: number,
): Client | undefined {
  const rows = prepared(
    db,
    `SELECT client_id, client_name, client_address FROM client_enrollments
       WHERE consumed_at IS NULL AND expires_at > ? AND (client_id = ? OR client_name = ?)
       ORDER BY enrollment_id DESC`,
  ).all(now, reference, reference) as {
    client_id: string;
    client_name: string;
    client_address: string | null;
  }[];
  const byId = rows.find((row) => row.client_id === reference);
  const ids = new Set(rows.map((row) => row.client_id));
  if (!byId && ids.size > 1) {
    throw new PortunusError(
      'ambiguous_client_name',
      `${ids.size} pending clients are named ${JSON.stringify(reference)} (${[...ids].join(', ')}); use the client id`,
      { client: reference },
    );
  }
  const row = byId ?? rows[0];
  if (!row) return undefined;
  return (
    getClient(db, row.client_id) ??
    insertClient(db, {
      clientId: row.client_id,
      clientName: row.client_name,
      clientAddress: row.client_address,
      now,
    })
  );
}
