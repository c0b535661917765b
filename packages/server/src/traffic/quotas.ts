/**
 * The quota engine of the control plane (reference §5.10, §4.3 step 3; policies: DESIGN.md §8.9).
 * It turns stored quota rows into what the edge enforces — `TrafficQuotaUpdate{SET}` with the
 * remaining budget for a `hard` quota, `REMOVE` for a `soft` one (a soft quota never stops
 * traffic, so the edge holds no budget for it) — and sends them on the events that change a
 * budget: an operator's change (services/quotas.ts), the first crossing of the limit in a traffic
 * round, a period rollover (checked every 60 s; a clock jump catches up in one tick, a rewind never
 * rolls back: quota-period.ts) and the replay after a client's Welcome. It also fires the
 * `quota.threshold` alerts (once per threshold per period, remembered in the row) and keeps the
 * `portunus_traffic_quota_*` metrics. Depends on the store, proto types and core; no HTTP, no
 * sockets: sending goes through the `QuotaSender` the fleet provides.
 */
import type { Database } from 'better-sqlite3';
import { Counter, Gauge, type Registry } from 'prom-client';

import { EVENTS, type Logger } from '@portunus/core';
import type { TrafficQuotaState, TrafficQuotaUpdate } from '@portunus/proto';
import {
  getQuota,
  listQuotas,
  setQuotaAlertsFired,
  writeQuota,
  type TrafficQuota,
  type TrafficRoundResult,
} from '@portunus/store';

import { ulid } from '../identity/secrets.js';
import { periodEnd, rolloverTo } from './quota-period.js';

/** How often due periods are rolled over (reference §5.10). */
export const QUOTA_ROLLOVER_INTERVAL_MS = 60_000;
/** The default `quota.threshold` fractions of server.toml's [alerts]. */
export const DEFAULT_QUOTA_THRESHOLDS: readonly number[] = [0.8, 1.0];

/** Sends one update to a live client able to enforce quotas; false when it was not sent. */
export interface QuotaSender {
  sendQuota(clientId: string, update: TrafficQuotaUpdate): boolean;
}

/** Where `quota.threshold` alerts go (traffic/alerts.ts). */
export interface QuotaAlertSink {
  quotaThreshold(quota: TrafficQuota, threshold: number): void;
}

export interface QuotaMetrics {
  periodResets: Counter<'user' | 'client'>;
  exhausted: Counter<'user' | 'client'>;
}

/**
 * The quota series of reference §7.3. The gauges read the store at scrape time, so they can never
 * disagree with the rows (a removed quota's series disappear with it).
 */
export function registerQuotaMetrics(registry: Registry, db: Database): QuotaMetrics {
  const labelNames = ['user', 'client'] as const;
  const gauges = {
    // The first of the three to render refreshes all three, so one scrape is one snapshot.
    used: new Gauge({
      name: 'portunus_traffic_quota_bytes_used',
      help: 'Bytes used in the current quota period, per (user, client).',
      labelNames,
      registers: [registry],
      collect() {
        gauges.used.reset();
        gauges.limit.reset();
        gauges.exhausted.reset();
        for (const quota of listQuotas(db)) {
          const labels = { user: quota.userId, client: quota.clientName };
          gauges.used.set(labels, quota.currentPeriodBytesUsed);
          gauges.limit.set(labels, quota.monthlyBytes);
          gauges.exhausted.set(labels, quota.exhaustedAt === null ? 0 : 1);
        }
      },
    }),
    limit: new Gauge({
      name: 'portunus_traffic_quota_bytes_limit',
      help: 'Bytes allowed per quota period, per (user, client).',
      labelNames,
      registers: [registry],
    }),
    exhausted: new Gauge({
      name: 'portunus_traffic_quota_exhausted',
      help: '1 when the quota of (user, client) is exhausted in the current period.',
      labelNames,
      registers: [registry],
    }),
  };
  return {
    periodResets: new Counter({
      name: 'portunus_traffic_quota_period_resets_total',
      help: 'Quota periods rolled over, per (user, client).',
      labelNames,
      registers: [registry],
    }),
    exhausted: new Counter({
      name: 'portunus_traffic_quota_exhausted_total',
      help: 'Times a quota was exhausted, per (user, client).',
      labelNames,
      registers: [registry],
    }),
  };
}

/** The state a hard quota's edge enforces (reference §4.2 TrafficQuotaState). */
export function wireQuotaState(quota: TrafficQuota): TrafficQuotaState {
  const end = periodEnd(quota);
  return {
    monthly_bytes: quota.monthlyBytes,
    budget_remaining_bytes: quota.monthlyBytes - quota.currentPeriodBytesUsed,
    period_started_at_unix_sec: Math.floor(quota.currentPeriodStartedAt / 1000),
    period_ends_at_unix_sec: end === null ? 0 : Math.floor(end / 1000),
    exhausted: quota.exhaustedAt !== null,
  };
}

/** SET for a hard quota, REMOVE for a soft one: the edge only ever holds hard budgets. */
export function quotaUpdateOf(quota: TrafficQuota): TrafficQuotaUpdate {
  const base = {
    request_id: ulid(),
    user_id: quota.userId,
    client_name: quota.clientName,
    client_id: quota.clientId,
  };
  return quota.enforcement === 'hard'
    ? { ...base, action: 'SET', state: wireQuotaState(quota) }
    : { ...base, action: 'REMOVE', state: null };
}

export function quotaRemovalOf(quota: Pick<TrafficQuota, 'userId' | 'clientId' | 'clientName'>) {
  return {
    request_id: ulid(),
    user_id: quota.userId,
    client_name: quota.clientName,
    client_id: quota.clientId,
    action: 'REMOVE',
    state: null,
  } satisfies TrafficQuotaUpdate;
}

/** The fired-threshold list a quota keeps after its usage or limit changed. */
export function thresholdsStillCrossed(
  fired: readonly number[],
  used: number,
  limit: number,
): number[] {
  return fired.filter((threshold) => crossed(used, limit, threshold));
}

function crossed(used: number, limit: number, threshold: number): boolean {
  if (limit === 0) return used > 0;
  return used >= Math.ceil(threshold * limit);
}

export interface QuotaTimers {
  setInterval(run: () => void, everyMs: number): { unref?: () => unknown };
  clearInterval(handle: unknown): void;
}

export interface QuotaEngineOptions {
  db: Database;
  logger: Logger;
  metrics: QuotaMetrics;
  now: () => number;
  thresholds?: readonly number[];
  alerts?: QuotaAlertSink;
  timers?: QuotaTimers;
}

export class QuotaEngine {
  private sender: QuotaSender | undefined;
  private handle: unknown;
  private readonly thresholds: readonly number[];
  private readonly timers: QuotaTimers;

  constructor(private readonly options: QuotaEngineOptions) {
    this.thresholds = [...(options.thresholds ?? DEFAULT_QUOTA_THRESHOLDS)].sort((a, b) => a - b);
    this.timers = options.timers ?? {
      setInterval: (run, everyMs) => setInterval(run, everyMs),
      clearInterval: (handle) => {
        clearInterval(handle as NodeJS.Timeout);
      },
    };
  }

  /** The fleet, once it exists (it is built after the engine it reports rounds to). */
  attach(sender: QuotaSender): void {
    this.sender = sender;
  }

  /** Rolls due periods now (catching up on downtime), then every 60 s. */
  start(): void {
    this.rollover();
    const handle = this.timers.setInterval(() => {
      this.rollover();
    }, QUOTA_ROLLOVER_INTERVAL_MS);
    handle.unref?.();
    this.handle = handle;
  }

  stop(): void {
    if (this.handle !== undefined) this.timers.clearInterval(this.handle);
    this.handle = undefined;
  }

  /** Sends a quota's current state to its client (no-op when offline or too old). */
  push(quota: TrafficQuota): boolean {
    const sent = this.sender?.sendQuota(quota.clientId, quotaUpdateOf(quota)) ?? false;
    if (sent) {
      this.options.logger.info(EVENTS.quotaPushed, {
        user_id: quota.userId,
        client_id: quota.clientId,
        enforcement: quota.enforcement,
        budget_remaining_bytes: quota.monthlyBytes - quota.currentPeriodBytesUsed,
      });
    }
    return sent;
  }

  pushRemoval(quota: TrafficQuota): boolean {
    return this.sender?.sendQuota(quota.clientId, quotaRemovalOf(quota)) ?? false;
  }

  /**
   * What a client gets right after its Welcome, before its rules (reference §4.3 step 3): the
   * state of every quota on it, matched by client_id — the reference compares the id with the
   * display name there, so its replay never matches after the id re-key; this one does.
   */
  replayFor(clientId: string): TrafficQuotaUpdate[] {
    return listQuotas(this.options.db, { clientId }).map(quotaUpdateOf);
  }

  /** The quota part of a committed traffic round (TrafficAccounting's `onRound`). */
  onRound(_clientId: string, result: TrafficRoundResult): void {
    for (const change of result.quotas) {
      const quota = change.quota;
      const labels = { user: quota.userId, client: quota.clientName };
      if (change.newlyExhausted) {
        this.options.metrics.exhausted.inc(labels);
        this.options.logger.info(EVENTS.quotaExhausted, {
          user_id: quota.userId,
          client_id: quota.clientId,
          monthly_bytes: quota.monthlyBytes,
          current_period_bytes_used: quota.currentPeriodBytesUsed,
          enforcement: quota.enforcement,
        });
        if (quota.enforcement === 'hard') this.push(quota);
      }
      this.fireThresholds(quota);
    }
  }

  /** Fires each threshold the usage crossed and this period has not fired yet, once. */
  private fireThresholds(quota: TrafficQuota): void {
    const fresh = this.thresholds.filter(
      (threshold) =>
        !quota.alertsFired.includes(threshold) &&
        crossed(quota.currentPeriodBytesUsed, quota.monthlyBytes, threshold),
    );
    if (fresh.length === 0) return;
    try {
      setQuotaAlertsFired(this.options.db, quota.userId, quota.clientId, [
        ...quota.alertsFired,
        ...fresh,
      ]);
    } catch (error) {
      // Not remembered, so the next round fires them again: late, never lost.
      this.options.logger.warn(EVENTS.quotaRolloverFailed, {
        user_id: quota.userId,
        client_id: quota.clientId,
        error: (error as { code?: string }).code ?? String(error),
      });
      return;
    }
    for (const threshold of fresh) this.options.alerts?.quotaThreshold(quota, threshold);
  }

  /** Rolls every due monthly period into the one holding now; returns how many rolled. */
  rollover(): number {
    const now = this.options.now();
    let rolled = 0;
    let quotas: TrafficQuota[];
    try {
      quotas = listQuotas(this.options.db);
    } catch (error) {
      this.options.logger.warn(EVENTS.quotaRolloverFailed, {
        error: (error as { code?: string }).code ?? String(error),
      });
      return 0;
    }
    for (const quota of quotas) {
      const start = rolloverTo(quota, now);
      if (start === undefined) continue;
      let next: TrafficQuota | undefined;
      try {
        next = this.rollOne(quota, start, now);
      } catch (error) {
        this.options.logger.warn(EVENTS.quotaRolloverFailed, {
          user_id: quota.userId,
          client_id: quota.clientId,
          error: (error as { code?: string }).code ?? String(error),
        });
        continue;
      }
      if (!next) continue;
      rolled += 1;
      this.options.metrics.periodResets.inc({ user: next.userId, client: next.clientName });
      this.options.logger.info(EVENTS.quotaPeriodRolled, {
        user_id: next.userId,
        client_id: next.clientId,
        previous_period_started_at: quota.currentPeriodStartedAt,
        previous_period_bytes_used: quota.currentPeriodBytesUsed,
        current_period_started_at: next.currentPeriodStartedAt,
      });
      this.push(next);
    }
    return rolled;
  }

  /** One rollover, re-read inside its transaction so a concurrent PATCH is not overwritten. */
  private rollOne(seen: TrafficQuota, start: number, now: number): TrafficQuota | undefined {
    const db = this.options.db;
    return db
      .transaction(() => {
        const current = getQuota(db, seen.userId, seen.clientId);
        if (!current || rolloverTo(current, now) !== start) return undefined;
        return writeQuota(db, {
          ...current,
          currentPeriodStartedAt: start,
          currentPeriodBytesUsed: 0,
          exhaustedAt: null,
          alertsFired: [],
          now,
        });
      })
      .immediate();
  }
}
