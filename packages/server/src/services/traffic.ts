/**
 * The traffic-history use case the operator routes (and through them the CLI `traffic`
 * commands) share: who may read which history (a user their own, a superadmin everything), the
 * query's parameters (`from`, `to` in unix seconds, `bucket=1m|1h`, auto = 1m up to 24 h), its
 * limits (retention of the bucket, at most 10,000 buckets) and the one answer shape
 * `{bucket, samples:[{ts, bytes_in, bytes_out}], total_bytes_in, total_bytes_out}` (reference
 * §2.3). A refused query reads nothing. Depends on the store and core; no HTTP.
 */
import type { Database } from 'better-sqlite3';

import type { TrafficSampleView, TrafficView } from '@portunus/api';
import { PortunusError } from '@portunus/core';
import {
  BUCKET_MS,
  TRAFFIC_RETENTION_MS,
  getClient,
  getUser,
  queryTraffic,
  type Role,
  type TrafficBucket,
  type TrafficScope,
} from '@portunus/store';

/** The most buckets one answer may span (reference §2.3, `traffic_too_many_rows`). */
export const TRAFFIC_MAX_ROWS = 10_000;
/** Spans up to this long default to 1-minute buckets, longer ones to 1-hour buckets. */
export const TRAFFIC_AUTO_1M_MAX_SECS = 24 * 3600;

export type { TrafficSampleView, TrafficView };

/** The query string of the three traffic routes, as received. */
export interface TrafficQueryInput {
  from?: string | undefined;
  to?: string | undefined;
  bucket?: string | undefined;
  /** A filter: on the user route the client, on the client route the user. */
  client_id?: string | undefined;
  user_id?: string | undefined;
}

/** Whose history the route names. */
export type TrafficTarget =
  { kind: 'user'; userId: string } | { kind: 'client'; clientId: string } | { kind: 'global' };

export interface TrafficReader {
  userId: string;
  role: Role;
}

const UNIX_SECONDS = /^\d{1,12}$/;

function seconds(raw: string | undefined, name: 'from' | 'to'): number {
  if (raw === undefined || !UNIX_SECONDS.test(raw)) {
    throw new PortunusError('invalid_traffic_range', `${name} must be unix seconds`);
  }
  return Number(raw);
}

/** RBAC first (a refused reader learns nothing about the range), then existence. */
function authorize(db: Database, reader: TrafficReader, target: TrafficTarget): void {
  const isSuperadmin = reader.role === 'superadmin';
  if (target.kind === 'user') {
    if (!isSuperadmin && reader.userId !== target.userId) {
      throw new PortunusError('not_owner', "only superadmins read another user's traffic");
    }
    if (!getUser(db, target.userId)) throw new PortunusError('user_not_found');
    return;
  }
  if (!isSuperadmin) throw new PortunusError('role_required');
  if (target.kind === 'client' && !getClient(db, target.clientId)) {
    throw new PortunusError('client_not_found');
  }
}

function scopeOf(target: TrafficTarget, input: TrafficQueryInput): TrafficScope {
  if (target.kind === 'user') {
    return {
      kind: 'user',
      userId: target.userId,
      ...(input.client_id !== undefined ? { clientId: input.client_id } : {}),
    };
  }
  if (target.kind === 'client') {
    return {
      kind: 'client',
      clientId: target.clientId,
      ...(input.user_id !== undefined ? { userId: input.user_id } : {}),
    };
  }
  return { kind: 'global' };
}

export function readTraffic(
  db: Database,
  reader: TrafficReader,
  target: TrafficTarget,
  input: TrafficQueryInput,
  nowMs: number,
): TrafficView {
  authorize(db, reader, target);
  const from = seconds(input.from, 'from');
  const to = seconds(input.to, 'to');
  if (to <= from) throw new PortunusError('invalid_traffic_range', 'to must be after from');
  let bucket: TrafficBucket;
  if (input.bucket === undefined) bucket = to - from <= TRAFFIC_AUTO_1M_MAX_SECS ? '1m' : '1h';
  else if (input.bucket === '1m' || input.bucket === '1h') bucket = input.bucket;
  else throw new PortunusError('invalid_traffic_range', 'bucket must be 1m or 1h');
  const fromMs = from * 1000;
  if (fromMs < nowMs - TRAFFIC_RETENTION_MS[bucket]) {
    throw new PortunusError(
      'traffic_bucket_out_of_retention',
      `from is older than the ${bucket} retention (${TRAFFIC_RETENTION_MS[bucket] / 86_400_000} days)`,
    );
  }
  // Buckets are whole: the first holds `from`, the last starts before `to`.
  const size = BUCKET_MS[bucket];
  const start = fromMs - (fromMs % size);
  const end = Math.ceil((to * 1000) / size) * size;
  const rows = (end - start) / size;
  if (rows > TRAFFIC_MAX_ROWS) {
    throw new PortunusError(
      'traffic_too_many_rows',
      `the range spans ${rows} ${bucket} buckets; at most ${TRAFFIC_MAX_ROWS}`,
    );
  }
  const samples = queryTraffic(db, scopeOf(target, input), bucket, start, end).map((sample) => ({
    ts: sample.ts / 1000,
    bytes_in: sample.bytesIn,
    bytes_out: sample.bytesOut,
  }));
  let totalIn = 0;
  let totalOut = 0;
  for (const sample of samples) {
    totalIn += sample.bytes_in;
    totalOut += sample.bytes_out;
  }
  return { bucket, samples, total_bytes_in: totalIn, total_bytes_out: totalOut };
}
