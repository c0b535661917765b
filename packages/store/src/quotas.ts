/**
 * Traffic quotas in the store (reference §5.10; policies beyond it: DESIGN.md §8.9): one row per
 * (user, client) — no row means unlimited — with the limit, the billing anchor, the current
 * period's start and usage, when it was exhausted, the policy (enforcement, period, reset day) and
 * the alert thresholds fired this period. Usage grows inside the traffic round's transaction
 * (`addQuotaUsage`, called by traffic.ts), so a round's samples and its quota usage commit or fail
 * together. Times are unix ms like the rest of the store. The period arithmetic (when a period
 * ends) is the caller's: this module stores what it is told and knows nothing of calendars, HTTP
 * or the control stream.
 */
import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import { immediate, prepared } from './statements.js';

export type QuotaEnforcement = 'hard' | 'soft';
export type QuotaPeriodKind = 'monthly' | 'never';

export interface TrafficQuota {
  userId: string;
  clientId: string;
  /** The client's current display name. */
  clientName: string;
  monthlyBytes: number;
  billingAnchor: number;
  currentPeriodStartedAt: number;
  currentPeriodBytesUsed: number;
  exhaustedAt: number | null;
  enforcement: QuotaEnforcement;
  period: QuotaPeriodKind;
  resetDay: number | null;
  /** Alert thresholds (fractions of the limit) already fired in this period. */
  alertsFired: number[];
  createdAt: number;
  updatedAt: number;
}

interface QuotaRow {
  user_id: string;
  client_id: string;
  client_name: string;
  monthly_bytes: number;
  billing_anchor: number;
  current_period_started_at: number;
  current_period_bytes_used: number;
  exhausted_at: number | null;
  enforcement: QuotaEnforcement;
  period: QuotaPeriodKind;
  reset_day: number | null;
  alerts_fired: string;
  created_at: number;
  updated_at: number;
}

const COLUMNS = `q.user_id, q.client_id, c.client_name, q.monthly_bytes, q.billing_anchor,
  q.current_period_started_at, q.current_period_bytes_used, q.exhausted_at, q.enforcement,
  q.period, q.reset_day, q.alerts_fired, q.created_at, q.updated_at`;
const SELECT = `SELECT ${COLUMNS} FROM traffic_quotas q JOIN clients c ON c.client_id = q.client_id`;

function fromRow(row: QuotaRow): TrafficQuota {
  return {
    userId: row.user_id,
    clientId: row.client_id,
    clientName: row.client_name,
    monthlyBytes: row.monthly_bytes,
    billingAnchor: row.billing_anchor,
    currentPeriodStartedAt: row.current_period_started_at,
    currentPeriodBytesUsed: row.current_period_bytes_used,
    exhaustedAt: row.exhausted_at,
    enforcement: row.enforcement,
    period: row.period,
    resetDay: row.reset_day,
    alertsFired: JSON.parse(row.alerts_fired) as number[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function getQuota(db: Database, userId: string, clientId: string): TrafficQuota | undefined {
  const row = prepared(db, `${SELECT} WHERE q.user_id = ? AND q.client_id = ?`).get(
    userId,
    clientId,
  ) as QuotaRow | undefined;
  return row ? fromRow(row) : undefined;
}

export function getQuotaOrThrow(db: Database, userId: string, clientId: string): TrafficQuota {
  const quota = getQuota(db, userId, clientId);
  if (!quota) {
    throw new PortunusError('quota_not_found', `no quota for ${userId} on client ${clientId}`, {
      user_id: userId,
      client_id: clientId,
    });
  }
  return quota;
}

/** Quotas of one user, of one client, or all of them; ordered by user, then client name. */
export function listQuotas(
  db: Database,
  filter: { userId?: string; clientId?: string } = {},
): TrafficQuota[] {
  const order = ' ORDER BY q.user_id, c.client_name, q.client_id';
  let rows: QuotaRow[];
  if (filter.userId !== undefined) {
    rows = prepared(db, `${SELECT} WHERE q.user_id = ?${order}`).all(filter.userId) as QuotaRow[];
  } else if (filter.clientId !== undefined) {
    rows = prepared(db, `${SELECT} WHERE q.client_id = ?${order}`).all(
      filter.clientId,
    ) as QuotaRow[];
  } else {
    rows = prepared(db, `${SELECT}${order}`).all() as QuotaRow[];
  }
  return rows.map(fromRow);
}

/** A whole quota row as the caller decided it (PUT, PATCH, rollover). */
export interface QuotaWrite {
  userId: string;
  clientId: string;
  monthlyBytes: number;
  billingAnchor: number;
  currentPeriodStartedAt: number;
  currentPeriodBytesUsed: number;
  exhaustedAt: number | null;
  enforcement: QuotaEnforcement;
  period: QuotaPeriodKind;
  resetDay: number | null;
  alertsFired: readonly number[];
  now: number;
}

/**
 * Inserts or replaces the row of (user, client); `created_at` survives a replacement. Runs in the
 * caller's transaction when there is one (better-sqlite3 nests it as a savepoint).
 */
export function writeQuota(db: Database, write: QuotaWrite): TrafficQuota {
  return immediate(db, () => {
    prepared(
      db,
      `INSERT INTO traffic_quotas (user_id, client_id, monthly_bytes, billing_anchor,
         current_period_started_at, current_period_bytes_used, exhausted_at, enforcement, period,
         reset_day, alerts_fired, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (user_id, client_id) DO UPDATE SET
         monthly_bytes = excluded.monthly_bytes, billing_anchor = excluded.billing_anchor,
         current_period_started_at = excluded.current_period_started_at,
         current_period_bytes_used = excluded.current_period_bytes_used,
         exhausted_at = excluded.exhausted_at, enforcement = excluded.enforcement,
         period = excluded.period, reset_day = excluded.reset_day,
         alerts_fired = excluded.alerts_fired, updated_at = excluded.updated_at`,
    ).run(
      write.userId,
      write.clientId,
      write.monthlyBytes,
      write.billingAnchor,
      write.currentPeriodStartedAt,
      write.currentPeriodBytesUsed,
      write.exhaustedAt,
      write.enforcement,
      write.period,
      write.resetDay,
      JSON.stringify(write.alertsFired),
      write.now,
      write.now,
    );
    return getQuotaOrThrow(db, write.userId, write.clientId);
  });
}

/** Deletes the row; throws quota_not_found when there is none. */
export function deleteQuota(db: Database, userId: string, clientId: string): TrafficQuota {
  return immediate(db, () => {
    const quota = getQuotaOrThrow(db, userId, clientId);
    prepared(db, 'DELETE FROM traffic_quotas WHERE user_id = ? AND client_id = ?').run(
      userId,
      clientId,
    );
    return quota;
  });
}

/** Records alert thresholds fired this period (the caller passes the whole new list). */
export function setQuotaAlertsFired(
  db: Database,
  userId: string,
  clientId: string,
  fired: readonly number[],
): void {
  prepared(
    db,
    'UPDATE traffic_quotas SET alerts_fired = ? WHERE user_id = ? AND client_id = ?',
  ).run(JSON.stringify(fired), userId, clientId);
}

/** What one round did to one quota: its row after the round and its usage before it. */
export interface QuotaUsageChange {
  quota: TrafficQuota;
  usedBefore: number;
  /** True when this round crossed the limit for the first time in the period. */
  newlyExhausted: boolean;
}

const MAX_USAGE = Number.MAX_SAFE_INTEGER;

/**
 * Adds a round's bytes of `userId` on `clientId` to its quota, if it has one; the first crossing
 * of the limit stamps `exhausted_at` (a limit of 0 is exhausted by the first byte). Called inside
 * the round's transaction; a user without a quota costs one indexed lookup and writes nothing.
 */
export function addQuotaUsage(
  db: Database,
  userId: string,
  clientId: string,
  bytes: number,
  nowMs: number,
): QuotaUsageChange | undefined {
  if (bytes <= 0) return undefined;
  // SET expressions read the row as it was before the update, so both CASEs see the old usage.
  const before = prepared(
    db,
    `UPDATE traffic_quotas SET
       current_period_bytes_used = min(current_period_bytes_used + @bytes, ${MAX_USAGE}),
       exhausted_at = CASE
         WHEN exhausted_at IS NULL AND current_period_bytes_used + @bytes >= monthly_bytes THEN @now
         ELSE exhausted_at END,
       updated_at = @now
     WHERE user_id = @user AND client_id = @client
     RETURNING current_period_bytes_used - @bytes AS used_before,
       exhausted_at = @now AND current_period_bytes_used - @bytes < monthly_bytes AS newly`,
  ).get({ bytes, now: nowMs, user: userId, client: clientId }) as
    { used_before: number; newly: number } | undefined;
  if (!before) return undefined;
  return {
    quota: getQuotaOrThrow(db, userId, clientId),
    usedBefore: Math.max(0, before.used_before),
    newlyExhausted: before.newly === 1,
  };
}
