/**
 * Owner rate-limit envelopes (reference §2.3, §5.8): per (client, owner) caps stored in
 * rate_limit_owner, which bind every rule that owner runs on that client before the rule's own
 * caps. Get, list, upsert and delete by (client_id, owner_user_id), and the owners of a client
 * (owners with rules ∪ owners with envelopes) with their rule counts. The caps use the rules'
 * column list, so an envelope and a rule cap can never be stored differently. Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import { RATE_LIMIT_COLUMNS, type RateLimit } from './rules.js';
import { immediate, prepared } from './statements.js';

export interface OwnerRateLimit {
  clientId: string;
  clientName: string;
  ownerUserId: string;
  rateLimit: RateLimit;
  updatedAt: number;
}

export interface ClientOwner {
  ownerUserId: string;
  hasRateLimit: boolean;
  ruleCount: number;
}

type EnvelopeRow = {
  client_id: string;
  client_name: string;
  owner_user_id: string;
  updated_at: number;
} & Record<(typeof RATE_LIMIT_COLUMNS)[number][0], number | null>;

const SELECT = `SELECT o.*, c.client_name FROM rate_limit_owner o JOIN clients c USING (client_id)`;

function fromRow(row: EnvelopeRow): OwnerRateLimit {
  const rateLimit: RateLimit = {};
  for (const [column, field] of RATE_LIMIT_COLUMNS) {
    const value = row[column];
    if (value !== null) rateLimit[field] = value;
  }
  return {
    clientId: row.client_id,
    clientName: row.client_name,
    ownerUserId: row.owner_user_id,
    rateLimit,
    updatedAt: row.updated_at,
  };
}

export function getOwnerRateLimit(
  db: Database,
  clientId: string,
  ownerUserId: string,
): OwnerRateLimit | undefined {
  const row = prepared(db, `${SELECT} WHERE o.client_id = ? AND o.owner_user_id = ?`).get(
    clientId,
    ownerUserId,
  ) as EnvelopeRow | undefined;
  return row && fromRow(row);
}

export function getOwnerRateLimitOrThrow(
  db: Database,
  clientId: string,
  ownerUserId: string,
): OwnerRateLimit {
  const envelope = getOwnerRateLimit(db, clientId, ownerUserId);
  if (!envelope) {
    throw new PortunusError(
      'owner_rate_limit_not_found',
      `owner ${JSON.stringify(ownerUserId)} has no rate limit on client ${clientId}`,
      { client_id: clientId, owner_id: ownerUserId },
    );
  }
  return envelope;
}

/** Every envelope of a client, by owner (the replay after a Welcome sends them in this order). */
export function listOwnerRateLimits(db: Database, clientId: string): OwnerRateLimit[] {
  return (
    prepared(db, `${SELECT} WHERE o.client_id = ? ORDER BY o.owner_user_id`).all(
      clientId,
    ) as EnvelopeRow[]
  ).map(fromRow);
}

/**
 * Creates or replaces the envelope: every cap not in `rateLimit` is cleared, as a PUT means.
 * The caps must already have passed the API's checks; the table's CHECKs are the last line.
 */
export function upsertOwnerRateLimit(
  db: Database,
  envelope: { clientId: string; ownerUserId: string; rateLimit: RateLimit; now: number },
): OwnerRateLimit {
  return immediate(db, () => {
    const columns = RATE_LIMIT_COLUMNS.map(([column]) => column);
    prepared(
      db,
      `INSERT INTO rate_limit_owner (client_id, owner_user_id, ${columns.join(', ')}, updated_at)
       VALUES (?, ?, ${columns.map(() => '?').join(', ')}, ?)
       ON CONFLICT (client_id, owner_user_id) DO UPDATE SET
         ${columns.map((column) => `${column} = excluded.${column}`).join(', ')},
         updated_at = excluded.updated_at`,
    ).run(
      envelope.clientId,
      envelope.ownerUserId,
      ...RATE_LIMIT_COLUMNS.map(([, field]) => envelope.rateLimit[field] ?? null),
      envelope.now,
    );
    return getOwnerRateLimitOrThrow(db, envelope.clientId, envelope.ownerUserId);
  });
}

/** Deletes the envelope; false when there was none (DELETE is idempotent). */
export function deleteOwnerRateLimit(db: Database, clientId: string, ownerUserId: string): boolean {
  return (
    prepared(db, 'DELETE FROM rate_limit_owner WHERE client_id = ? AND owner_user_id = ?').run(
      clientId,
      ownerUserId,
    ).changes > 0
  );
}

/** Owners with rules on the client ∪ owners with an envelope there, by owner id. */
export function listClientOwners(db: Database, clientId: string): ClientOwner[] {
  const rows = prepared(
    db,
    `SELECT owner_user_id AS ownerUserId,
       EXISTS (SELECT 1 FROM rate_limit_owner o
               WHERE o.client_id = @clientId AND o.owner_user_id = owners.owner_user_id) AS capped,
       (SELECT count(*) FROM rules r
        WHERE r.client_id = @clientId AND r.owner_user_id = owners.owner_user_id) AS ruleCount
     FROM (SELECT owner_user_id FROM rules WHERE client_id = @clientId
           UNION SELECT owner_user_id FROM rate_limit_owner WHERE client_id = @clientId) AS owners
     ORDER BY owner_user_id`,
  ).all({ clientId }) as { ownerUserId: string; capped: number; ruleCount: number }[];
  return rows.map((row) => ({
    ownerUserId: row.ownerUserId,
    hasRateLimit: row.capped === 1,
    ruleCount: row.ruleCount,
  }));
}
