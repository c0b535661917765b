/**
 * The quota use cases the operator routes (and through them the CLI `quota` commands) share
 * (reference §2.3, §5.10; DESIGN.md §8.9): who may read or change which quota, the checks of a
 * request body, the capability gate (§4.4), and the one answer shape, QuotaView. A refused request
 * stores nothing: every check runs before the single write. Replacing a quota keeps its usage
 * unless the request asks to clear it (DESIGN.md §8.9, where the reference resets it).
 *
 * The gate follows the reference — a hard quota needs its client connected and at least
 * FEATURE_MIN_VERSION.quota, else 422 quota_unsupported_by_client — with one deliberate
 * exception: a soft quota is never enforced on the edge (it only marks `exhausted` and alerts),
 * so it is stored for an offline or older client too. Depends on the store, api shapes, core and
 * the quota engine; no HTTP.
 */
import type { Database } from 'better-sqlite3';

import type { QuotaEnforcement, QuotaPeriod, QuotaView } from '@portunus/api';
import { PortunusError } from '@portunus/core';
import {
  deleteQuota,
  getQuota,
  getQuotaOrThrow,
  getUserOrThrow,
  immediate,
  listGrants,
  listQuotas,
  resolveClient,
  writeQuota,
  type Client,
  type Role,
  type TrafficQuota,
} from '@portunus/store';

import {
  MAX_RESET_DAY,
  anchorForResetDay,
  monthlyPeriodAt,
  periodEnd,
} from '../traffic/quota-period.js';
import { thresholdsStillCrossed, type QuotaEngine } from '../traffic/quotas.js';

export interface QuotaActor {
  userId: string;
  role: Role;
}

/** What a quota route needs of the rest of the server. */
export interface QuotaDeps {
  db: Database;
  engine: Pick<QuotaEngine, 'push' | 'pushRemoval'>;
  /** The capability gate of a live client: undefined when it can enforce quotas. */
  quotaGate(clientId: string): 'quota_unsupported_by_client' | undefined;
  now: () => number;
}

const seconds = (ms: number): number => Math.floor(ms / 1000);

export function quotaView(quota: TrafficQuota): QuotaView {
  const end = periodEnd(quota);
  return {
    user_id: quota.userId,
    client_id: quota.clientId,
    client_name: quota.clientName,
    monthly_bytes: quota.monthlyBytes,
    billing_anchor: seconds(quota.billingAnchor),
    current_period_started_at: seconds(quota.currentPeriodStartedAt),
    current_period_ends_at: end === null ? null : seconds(end),
    current_period_bytes_used: quota.currentPeriodBytesUsed,
    budget_remaining_bytes: quota.monthlyBytes - quota.currentPeriodBytesUsed,
    exhausted_at: quota.exhaustedAt === null ? null : seconds(quota.exhaustedAt),
    exhausted: quota.exhaustedAt !== null,
    created_at: seconds(quota.createdAt),
    updated_at: seconds(quota.updatedAt),
    enforcement: quota.enforcement,
    period: quota.period,
    reset_day: quota.resetDay,
  };
}

function requireSuperadmin(actor: QuotaActor): void {
  if (actor.role !== 'superadmin') throw new PortunusError('role_required');
}

/** A user reads their own quotas; a superadmin everyone's (reference §2.3 "Self"). */
function requireSelf(actor: QuotaActor, userId: string): void {
  if (actor.role !== 'superadmin' && actor.userId !== userId) {
    throw new PortunusError('not_owner', "only superadmins read another user's quotas");
  }
}

function bytes(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new PortunusError('invalid_quota_size', undefined, { field: 'monthly_bytes' });
  }
  return value;
}

function enforcementOf(value: unknown): QuotaEnforcement | undefined {
  if (value === undefined) return undefined;
  if (value === 'hard' || value === 'soft') return value;
  throw new PortunusError('invalid_quota_policy', 'enforcement must be hard or soft', {
    field: 'enforcement',
  });
}

function periodOf(value: unknown): QuotaPeriod | undefined {
  if (value === undefined) return undefined;
  if (value === 'monthly' || value === 'never') return value;
  throw new PortunusError('invalid_quota_policy', 'period must be monthly or never', {
    field: 'period',
  });
}

function clearOf(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return value;
  throw new PortunusError('validation_failed', 'clear_period_usage must be a boolean', {
    field: 'clear_period_usage',
  });
}

const PUT_FIELDS = new Set([
  'monthly_bytes',
  'billing_anchor',
  'reset_day',
  'enforcement',
  'period',
  'clear_period_usage',
]);
const PATCH_FIELDS = new Set(['monthly_bytes', 'clear_period_usage', 'enforcement']);

function bodyOf(raw: unknown, fields: ReadonlySet<string>): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PortunusError('validation_failed', 'the body must be a JSON object');
  }
  for (const name of Object.keys(raw)) {
    if (!fields.has(name)) {
      throw new PortunusError('validation_failed', `unexpected field ${name}`, { field: name });
    }
  }
  return raw as Record<string, unknown>;
}

/** The (user, client) a quota route names; the user must exist and the client resolve. */
function target(
  db: Database,
  userId: string,
  clientRef: string,
): { userId: string; client: Client } {
  const user = getUserOrThrow(db, userId);
  return { userId: user.userId, client: resolveClient(db, clientRef) };
}

function hasGrant(db: Database, userId: string, clientId: string): boolean {
  return listGrants(db, userId).some(
    (grant) => grant.clientId === null || grant.clientId === clientId,
  );
}

function exhaustedAtFor(used: number, limit: number, previous: number | null, now: number) {
  return used > 0 && used >= limit ? (previous ?? now) : null;
}

/** PUT: creates or replaces the quota of (user, client). */
export function putQuota(
  deps: QuotaDeps,
  actor: QuotaActor,
  userId: string,
  clientRef: string,
  raw: unknown,
): QuotaView {
  requireSuperadmin(actor);
  const body = bodyOf(raw, PUT_FIELDS);
  const monthlyBytes = bytes(body['monthly_bytes']);
  const enforcementIn = enforcementOf(body['enforcement']);
  const periodIn = periodOf(body['period']);
  const clear = clearOf(body['clear_period_usage']);
  const now = deps.now();
  const anchorRaw = body['billing_anchor'];
  const resetDayRaw = body['reset_day'];
  if (anchorRaw !== undefined) {
    if (typeof anchorRaw !== 'number' || !Number.isSafeInteger(anchorRaw) || anchorRaw < 0) {
      throw new PortunusError('invalid_billing_anchor', undefined, { field: 'billing_anchor' });
    }
    if (anchorRaw * 1000 > now) {
      throw new PortunusError(
        'invalid_billing_anchor',
        'billing_anchor may not lie in the future',
        {
          field: 'billing_anchor',
        },
      );
    }
    if (resetDayRaw !== undefined) {
      throw new PortunusError(
        'invalid_billing_anchor',
        'give billing_anchor or reset_day, not both',
      );
    }
  }
  if (resetDayRaw !== undefined) {
    if (
      typeof resetDayRaw !== 'number' ||
      !Number.isInteger(resetDayRaw) ||
      resetDayRaw < 1 ||
      resetDayRaw > MAX_RESET_DAY
    ) {
      throw new PortunusError('invalid_quota_policy', 'reset_day must be 1..28', {
        field: 'reset_day',
      });
    }
    if (periodIn === 'never') {
      throw new PortunusError('invalid_quota_policy', 'reset_day needs period monthly', {
        field: 'reset_day',
      });
    }
  }
  const { client } = target(deps.db, userId, clientRef);
  if (!hasGrant(deps.db, userId, client.clientId)) {
    throw new PortunusError(
      'quota_target_not_found',
      `${userId} has no grant on client ${client.clientId}`,
      { user_id: userId, client_id: client.clientId },
    );
  }
  const existing = getQuota(deps.db, userId, client.clientId);
  const enforcement = enforcementIn ?? existing?.enforcement ?? 'hard';
  const period = periodIn ?? existing?.period ?? 'monthly';
  if (enforcement === 'hard') {
    const gate = deps.quotaGate(client.clientId);
    if (gate) {
      throw new PortunusError(gate, undefined, { client_id: client.clientId });
    }
  }
  let billingAnchor: number;
  let resetDay: number | null;
  if (typeof resetDayRaw === 'number') {
    billingAnchor = anchorForResetDay(resetDayRaw, now);
    resetDay = resetDayRaw;
  } else if (typeof anchorRaw === 'number') {
    billingAnchor = anchorRaw * 1000;
    resetDay = null;
  } else {
    billingAnchor = existing?.billingAnchor ?? now;
    resetDay = period === 'monthly' ? (existing?.resetDay ?? null) : null;
  }
  const startedAt =
    period === 'never'
      ? existing?.period === 'never'
        ? existing.currentPeriodStartedAt
        : billingAnchor
      : monthlyPeriodAt(billingAnchor, now).start;
  const used = clear ? 0 : (existing?.currentPeriodBytesUsed ?? 0);
  const quota = immediate(deps.db, () =>
    writeQuota(deps.db, {
      userId,
      clientId: client.clientId,
      monthlyBytes,
      billingAnchor,
      currentPeriodStartedAt: startedAt,
      currentPeriodBytesUsed: used,
      exhaustedAt: exhaustedAtFor(
        used,
        monthlyBytes,
        clear ? null : (existing?.exhaustedAt ?? null),
        now,
      ),
      enforcement,
      period,
      resetDay,
      alertsFired: clear
        ? []
        : thresholdsStillCrossed(existing?.alertsFired ?? [], used, monthlyBytes),
      now,
    }),
  );
  deps.engine.push(quota);
  return quotaView(quota);
}

/** PATCH: a new limit first, then the clear; one SET push (reference §2.3). */
export function patchQuota(
  deps: QuotaDeps,
  actor: QuotaActor,
  userId: string,
  clientRef: string,
  raw: unknown,
): QuotaView {
  requireSuperadmin(actor);
  const body = bodyOf(raw, PATCH_FIELDS);
  const limitIn = body['monthly_bytes'] === undefined ? undefined : bytes(body['monthly_bytes']);
  const clear = clearOf(body['clear_period_usage']);
  const enforcementIn = enforcementOf(body['enforcement']);
  const { client } = target(deps.db, userId, clientRef);
  const existing = getQuotaOrThrow(deps.db, userId, client.clientId);
  const enforcement = enforcementIn ?? existing.enforcement;
  if (enforcement === 'hard' && existing.enforcement !== 'hard') {
    const gate = deps.quotaGate(client.clientId);
    if (gate) throw new PortunusError(gate, undefined, { client_id: client.clientId });
  }
  const now = deps.now();
  const monthlyBytes = limitIn ?? existing.monthlyBytes;
  const used = clear ? 0 : existing.currentPeriodBytesUsed;
  const quota = immediate(deps.db, () =>
    writeQuota(deps.db, {
      ...existing,
      monthlyBytes,
      currentPeriodBytesUsed: used,
      exhaustedAt: exhaustedAtFor(used, monthlyBytes, clear ? null : existing.exhaustedAt, now),
      enforcement,
      alertsFired: clear ? [] : thresholdsStillCrossed(existing.alertsFired, used, monthlyBytes),
      now,
    }),
  );
  deps.engine.push(quota);
  return quotaView(quota);
}

/** DELETE: the row goes, and a live client drops the owner's budget (REMOVE). */
export function removeQuota(
  deps: QuotaDeps,
  actor: QuotaActor,
  userId: string,
  clientRef: string,
): TrafficQuota {
  requireSuperadmin(actor);
  const { client } = target(deps.db, userId, clientRef);
  const removed = deleteQuota(deps.db, userId, client.clientId);
  deps.engine.pushRemoval(removed);
  return removed;
}

export function listUserQuotas(db: Database, actor: QuotaActor, userId: string): QuotaView[] {
  requireSelf(actor, userId);
  getUserOrThrow(db, userId);
  return listQuotas(db, { userId }).map(quotaView);
}

export function quotaStatus(
  db: Database,
  actor: QuotaActor,
  userId: string,
  clientRef: string,
): QuotaView {
  requireSelf(actor, userId);
  const { client } = target(db, userId, clientRef);
  return quotaView(getQuotaOrThrow(db, userId, client.clientId));
}

export function listClientQuotas(db: Database, actor: QuotaActor, clientRef: string): QuotaView[] {
  requireSuperadmin(actor);
  const client = resolveClient(db, clientRef);
  return listQuotas(db, { clientId: client.clientId }).map(quotaView);
}
