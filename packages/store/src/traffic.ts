/**
 * Traffic history in the store: turning one client's StatsReport round into per-rule byte deltas
 * attributed to each rule's owner on that client (`traffic_rule_counters` holds the baselines),
 * the 1-minute samples they are added to, the hourly rollup into 1-hour samples, retention (1m:
 * 7 days, 1h: 90 days) and the history query. A whole round is one `BEGIN IMMEDIATE` transaction,
 * never one per rule. Timestamps are unix ms; the caller's clock decides the minute, never the
 * client's. Depends only on better-sqlite3 and the statement cache; it knows nothing of the wire
 * shape or of HTTP. The per-owner deltas of a round are added to the owners' quotas on that
 * client in the same transaction (quotas.ts), so usage and history never disagree.
 */
import type { Database } from 'better-sqlite3';

import { addQuotaUsage, type QuotaUsageChange } from './quotas.js';
import { immediate, prepared } from './statements.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Reference §3.3: 1-minute samples live 7 days, 1-hour samples 90 days. */
export const TRAFFIC_RETENTION_MS = { '1m': 7 * DAY_MS, '1h': 90 * DAY_MS } as const;
export type TrafficBucket = keyof typeof TRAFFIC_RETENTION_MS;
export const BUCKET_MS: Readonly<Record<TrafficBucket, number>> = {
  '1m': MINUTE_MS,
  '1h': HOUR_MS,
};

/** A rule's cumulative counters as its client reported them. */
export interface RuleCounterReading {
  ruleId: number;
  bytesIn: number;
  bytesOut: number;
}

export interface ByteCounts {
  bytesIn: number;
  bytesOut: number;
}

/** What one round added for one owner on the reporting client. */
export interface OwnerDelta extends ByteCounts {
  userId: string;
}

export interface TrafficRoundResult {
  owners: OwnerDelta[];
  /** Rules whose counters went backwards: the client restarted them and they were re-based. */
  rebased: number[];
  /** Readings of rules the store does not hold for this client (removed meanwhile): ignored. */
  ignored: number;
  /** The quotas this round added usage to (owners without a quota on the client are absent). */
  quotas: QuotaUsageChange[];
}

/** A reported counter as a safe non-negative integer: anything else counts as zero. */
function counter(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return 0;
  return Math.min(Math.floor(value), Number.MAX_SAFE_INTEGER);
}

/**
 * The bytes a reading adds over the stored baseline. Counters only grow while the client runs the
 * rule, so a counter below its baseline means the client restarted it from zero: everything it
 * reports now is new (the bytes before the restart were counted by earlier rounds), and it becomes
 * the new baseline. Saturating: never negative, never above a safe integer. A rule with no
 * baseline yet is new to accounting, so all of its counters are new.
 */
export function counterDelta(
  baseline: ByteCounts | undefined,
  reading: ByteCounts,
): ByteCounts & { rebased: boolean } {
  const current = { bytesIn: counter(reading.bytesIn), bytesOut: counter(reading.bytesOut) };
  if (!baseline) return { ...current, rebased: false };
  if (current.bytesIn < baseline.bytesIn || current.bytesOut < baseline.bytesOut) {
    return { ...current, rebased: true };
  }
  return {
    bytesIn: current.bytesIn - baseline.bytesIn,
    bytesOut: current.bytesOut - baseline.bytesOut,
    rebased: false,
  };
}

interface RuleBaselineRow {
  owner_user_id: string;
  bytes_in: number | null;
  bytes_out: number | null;
}

/**
 * Applies one StatsReport round of `clientId` at `nowMs`: per-rule deltas against the stored
 * baselines, summed per owner into the owner's 1-minute sample, baselines moved forward — one
 * transaction. The owner is read from the stored rule (the truth), and a rule the store no longer
 * holds for this client is skipped, so a report racing a removal can never fail the round.
 * Baselines are written only for rules whose counters changed: an idle rule costs one read.
 */
export function recordTrafficRound(
  db: Database,
  clientId: string,
  nowMs: number,
  readings: readonly RuleCounterReading[],
): TrafficRoundResult {
  const minute = nowMs - (nowMs % MINUTE_MS);
  const readRule = prepared(
    db,
    `SELECT r.owner_user_id, c.bytes_in, c.bytes_out
       FROM rules r LEFT JOIN traffic_rule_counters c ON c.rule_id = r.rule_id
      WHERE r.rule_id = ? AND r.client_id = ?`,
  );
  const writeBaseline = prepared(
    db,
    `INSERT INTO traffic_rule_counters (rule_id, bytes_in, bytes_out, updated_at)
     VALUES (?, ?, ?, ?)
     ON CONFLICT (rule_id) DO UPDATE SET
       bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out, updated_at = excluded.updated_at`,
  );
  const addSample = prepared(
    db,
    `INSERT INTO traffic_samples_1m (user_id, client_id, ts_minute, bytes_in, bytes_out)
     VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (user_id, client_id, ts_minute) DO UPDATE SET
       bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out`,
  );
  return immediate(db, () => {
    const owners = new Map<string, OwnerDelta>();
    const rebased: number[] = [];
    let ignored = 0;
    for (const reading of readings) {
      const row = readRule.get(reading.ruleId, clientId) as RuleBaselineRow | undefined;
      if (!row) {
        ignored += 1;
        continue;
      }
      const baseline =
        row.bytes_in === null || row.bytes_out === null
          ? undefined
          : { bytesIn: row.bytes_in, bytesOut: row.bytes_out };
      const delta = counterDelta(baseline, reading);
      if (delta.rebased) rebased.push(reading.ruleId);
      const unchanged = baseline !== undefined && delta.bytesIn === 0 && delta.bytesOut === 0;
      if (unchanged && !delta.rebased) continue;
      writeBaseline.run(reading.ruleId, counter(reading.bytesIn), counter(reading.bytesOut), nowMs);
      if (delta.bytesIn === 0 && delta.bytesOut === 0) continue;
      const owner = owners.get(row.owner_user_id) ?? {
        userId: row.owner_user_id,
        bytesIn: 0,
        bytesOut: 0,
      };
      owner.bytesIn += delta.bytesIn;
      owner.bytesOut += delta.bytesOut;
      owners.set(row.owner_user_id, owner);
    }
    const quotas: QuotaUsageChange[] = [];
    for (const owner of owners.values()) {
      addSample.run(owner.userId, clientId, minute, owner.bytesIn, owner.bytesOut);
      const change = addQuotaUsage(
        db,
        owner.userId,
        clientId,
        owner.bytesIn + owner.bytesOut,
        nowMs,
      );
      if (change) quotas.push(change);
    }
    return { owners: [...owners.values()], rebased, ignored, quotas };
  });
}

export interface TrafficMaintenanceResult {
  /** Completed hours rolled from 1m into 1h samples this time. */
  hoursRolled: number;
  pruned1m: number;
  pruned1h: number;
}

/** The end (exclusive, unix ms) of the hours already rolled into `traffic_samples_1h`. */
export function trafficRolledUntil(db: Database): number {
  return prepared(db, 'SELECT traffic_last_rolled_up_hour FROM server_settings WHERE id = 1')
    .pluck()
    .get() as number;
}

/**
 * Rolls every completed hour not rolled yet (catch-up bounded to the 1h retention) from 1-minute
 * into 1-hour samples, then drops samples past retention — one transaction — and hands the freed
 * pages back with `incremental_vacuum`. The rollup replaces an hour's row with the sum of its
 * minutes, so running it twice changes nothing.
 */
export function maintainTraffic(db: Database, nowMs: number): TrafficMaintenanceResult {
  const currentHour = nowMs - (nowMs % HOUR_MS);
  const result = immediate(db, () => {
    const floor = currentHour - TRAFFIC_RETENTION_MS['1h'];
    const from = Math.max(trafficRolledUntil(db), floor);
    let hoursRolled = 0;
    if (from < currentHour) {
      hoursRolled = prepared(
        db,
        `INSERT INTO traffic_samples_1h (user_id, client_id, ts_hour, bytes_in, bytes_out)
         SELECT user_id, client_id, ts_minute - ts_minute % ${HOUR_MS}, SUM(bytes_in), SUM(bytes_out)
           FROM traffic_samples_1m
          WHERE ts_minute >= ? AND ts_minute < ?
          GROUP BY user_id, client_id, ts_minute - ts_minute % ${HOUR_MS}
         ON CONFLICT (user_id, client_id, ts_hour) DO UPDATE SET
           bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out`,
      ).run(from, currentHour).changes;
      prepared(
        db,
        'UPDATE server_settings SET traffic_last_rolled_up_hour = ?, updated_at = ? WHERE id = 1',
      ).run(currentHour, nowMs);
    }
    const pruned1m = prepared(db, 'DELETE FROM traffic_samples_1m WHERE ts_minute < ?').run(
      nowMs - TRAFFIC_RETENTION_MS['1m'],
    ).changes;
    const pruned1h = prepared(db, 'DELETE FROM traffic_samples_1h WHERE ts_hour < ?').run(
      nowMs - TRAFFIC_RETENTION_MS['1h'],
    ).changes;
    return { hoursRolled, pruned1m, pruned1h };
  });
  if (result.pruned1m + result.pruned1h > 0) db.exec('PRAGMA incremental_vacuum');
  return result;
}

/** Whose traffic a query sums: one user (optionally on one client), one client, or everyone. */
export type TrafficScope =
  | { kind: 'user'; userId: string; clientId?: string }
  | { kind: 'client'; clientId: string; userId?: string }
  | { kind: 'global' };

export interface TrafficSample {
  /** Bucket start, unix ms. */
  ts: number;
  bytesIn: number;
  bytesOut: number;
}

function scopeFilter(scope: TrafficScope): { sql: string; params: string[] } {
  const clauses: string[] = [];
  const params: string[] = [];
  const userId = scope.kind === 'global' ? undefined : scope.userId;
  const clientId = scope.kind === 'global' ? undefined : scope.clientId;
  if (userId !== undefined) {
    clauses.push('user_id = ?');
    params.push(userId);
  }
  if (clientId !== undefined) {
    clauses.push('client_id = ?');
    params.push(clientId);
  }
  return { sql: clauses.map((clause) => `${clause} AND `).join(''), params };
}

/**
 * Samples of `scope` in buckets of `bucket` whose start lies in [fromMs, toMs), oldest first,
 * summed over the dimensions the scope leaves open; buckets without traffic are absent. Hours
 * not rolled up yet (the current one, or all of them while the server was down) are summed from
 * the 1-minute samples, so an hourly view never lags the minutes.
 */
export function queryTraffic(
  db: Database,
  scope: TrafficScope,
  bucket: TrafficBucket,
  fromMs: number,
  toMs: number,
): TrafficSample[] {
  const filter = scopeFilter(scope);
  type Row = { ts: number; bytes_in: number; bytes_out: number };
  if (bucket === '1m') {
    const rows = prepared(
      db,
      `SELECT ts_minute AS ts, SUM(bytes_in) AS bytes_in, SUM(bytes_out) AS bytes_out
         FROM traffic_samples_1m
        WHERE ${filter.sql}ts_minute >= ? AND ts_minute < ?
        GROUP BY ts_minute ORDER BY ts_minute`,
    ).all(...filter.params, fromMs, toMs) as Row[];
    return rows.map((row) => ({ ts: row.ts, bytesIn: row.bytes_in, bytesOut: row.bytes_out }));
  }
  // Two statements, not one UNION: the rolled hours are then one index seek in hour order
  // (traffic_samples_1h_user for a user, V007) grouped without a temporary b-tree, and the
  // unrolled minutes (the current hour, more after downtime) are summed on their own. The hours
  // all start before `rolledUntil` and the minutes' hours at or after it (a whole hour), so the
  // two lists concatenate in order. One read transaction: both see one snapshot.
  return db.transaction(() => {
    const rolledUntil = trafficRolledUntil(db);
    const rows = prepared(
      db,
      `SELECT ts_hour AS ts, SUM(bytes_in) AS bytes_in, SUM(bytes_out) AS bytes_out
       FROM traffic_samples_1h
      WHERE ${filter.sql}ts_hour >= ? AND ts_hour < ?
      GROUP BY ts_hour ORDER BY ts_hour`,
    ).all(...filter.params, fromMs, Math.min(toMs, rolledUntil)) as Row[];
    if (rolledUntil < toMs) {
      const recent = prepared(
        db,
        `SELECT ts_minute - ts_minute % ${HOUR_MS} AS ts, SUM(bytes_in) AS bytes_in,
              SUM(bytes_out) AS bytes_out
         FROM traffic_samples_1m
        WHERE ${filter.sql}ts_minute >= ? AND ts_minute < ?
        GROUP BY 1 ORDER BY 1`,
      ).all(...filter.params, Math.max(fromMs, rolledUntil), toMs) as Row[];
      rows.push(...recent);
    }
    return rows.map((row) => ({ ts: row.ts, bytesIn: row.bytes_in, bytesOut: row.bytes_out }));
  })();
}
