/**
 * The audit aggregate: appending records (many per `BEGIN IMMEDIATE` transaction), the
 * newest-first list behind the legacy `GET /v1/audit` array, the envelope query with
 * `since`/`until`/opaque cursor (seed: "Audit envelope mode"), and counting/deleting before a
 * cutoff for `audit prune`. Pages are keyset pages over the (ts, seq) index with exactly one upper
 * bound, so a page costs the same at any depth (reference/perf-baselines.md §6). Depends on core
 * and better-sqlite3 only.
 */
import type { Database, Statement } from 'better-sqlite3';

import { PortunusError, formatRfc3339 } from '@portunus/core';

export type AuditOutcome = 'allow' | 'deny';

export interface AuditRecord {
  /** Unix milliseconds. */
  ts: number;
  actor: string;
  outcome: AuditOutcome;
  role?: string | null;
  method?: string;
  path?: string;
  reason?: string | null;
  action?: string | null;
  resourceKind?: string | null;
  resourceValue?: string | null;
  correlationId?: string;
  details?: Readonly<Record<string, unknown>>;
}

export interface AuditEntry extends Required<Omit<AuditRecord, 'details'>> {
  seq: number;
  details: Record<string, unknown>;
}

export interface AuditQuery {
  /** Unix ms, inclusive. */
  since?: number;
  /** Unix ms, inclusive. */
  until?: number;
  /** An opaque cursor from a previous page's `nextCursor`. */
  cursor?: string;
  limit?: number;
  outcome?: AuditOutcome;
}

export interface AuditPage {
  entries: AuditEntry[];
  nextCursor?: string;
}

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 1000;
const MAX_TS = Number.MAX_SAFE_INTEGER;

/** Prepared statements of one connection, built once per database. */
class AuditStatements {
  readonly insert: Statement;
  readonly page: Statement;
  readonly pageByOutcome: Statement;
  readonly countBefore: Statement;
  readonly deleteBefore: Statement;

  constructor(db: Database) {
    this.insert = db.prepare(
      `INSERT INTO audit (ts, actor, role, outcome, method, path, reason, action, resource_kind,
         resource_value, correlation_id, details_json)
       VALUES (@ts, @actor, @role, @outcome, @method, @path, @reason, @action, @resourceKind,
         @resourceValue, @correlationId, @detailsJson)`,
    );
    // One upper bound (the cursor, or `until` folded into it) and one lower bound (`since`):
    // SQLite starts the index walk at the upper bound, whatever the page depth.
    this.page = db.prepare(
      `SELECT ${ROW_COLUMNS} FROM audit
       WHERE (ts, seq) < (@upperTs, @upperSeq) AND ts >= @since
       ORDER BY ts DESC, seq DESC LIMIT @limit`,
    );
    this.page.raw(true);
    this.pageByOutcome = db.prepare(
      `SELECT ${ROW_COLUMNS} FROM audit
       WHERE outcome = @outcome AND (ts, seq) < (@upperTs, @upperSeq) AND ts >= @since
       ORDER BY ts DESC, seq DESC LIMIT @limit`,
    );
    this.pageByOutcome.raw(true);
    this.countBefore = db.prepare('SELECT count(*) FROM audit WHERE ts < ?').pluck();
    this.deleteBefore = db.prepare('DELETE FROM audit WHERE ts < ?');
  }
}

const statementCache = new WeakMap<Database, AuditStatements>();

function statements(db: Database): AuditStatements {
  let cached = statementCache.get(db);
  if (!cached) {
    cached = new AuditStatements(db);
    statementCache.set(db, cached);
  }
  return cached;
}

/** Appends records in one `BEGIN IMMEDIATE` transaction; returns their seqs in order. */
export function appendAudit(db: Database, records: readonly AuditRecord[]): number[] {
  if (records.length === 0) return [];
  const { insert } = statements(db);
  const run = db.transaction((batch: readonly AuditRecord[]) =>
    batch.map((record) => Number(insert.run(toParams(record)).lastInsertRowid)),
  );
  return run.immediate(records);
}

function toParams(record: AuditRecord): Record<string, unknown> {
  return {
    ts: Math.trunc(record.ts),
    actor: record.actor,
    role: record.role ?? null,
    outcome: record.outcome,
    method: record.method ?? '',
    path: record.path ?? '',
    reason: record.reason ?? null,
    action: record.action ?? null,
    resourceKind: record.resourceKind ?? null,
    resourceValue: record.resourceValue ?? null,
    correlationId: record.correlationId ?? '',
    detailsJson: JSON.stringify(record.details ?? {}),
  };
}

/** Validates a query's limit (1..1000, default 100) or throws `invalid_limit`. */
export function auditLimit(limit: number | undefined): number {
  if (limit === undefined) return AUDIT_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_MAX_LIMIT) {
    throw new PortunusError(
      'invalid_limit',
      `limit must be an integer from 1 to ${AUDIT_MAX_LIMIT}`,
      {
        limit,
      },
    );
  }
  return limit;
}

/**
 * One newest-first page. `nextCursor` is set when more rows match; pass it back as `cursor`
 * with the same since/until/outcome to continue.
 */
export function queryAudit(db: Database, query: AuditQuery = {}): AuditPage {
  const limit = auditLimit(query.limit);
  const since = query.since ?? 0;
  const until = query.until ?? MAX_TS - 1;
  if (since > until) {
    throw new PortunusError('invalid_time_range', 'since must not be after until', {
      since,
      until,
    });
  }
  let upper = { ts: until + 1, seq: 0 };
  if (query.cursor !== undefined) {
    const cursor = decodeAuditCursor(query.cursor);
    if (cursor.ts < upper.ts || (cursor.ts === upper.ts && cursor.seq < upper.seq)) upper = cursor;
  }
  const { page, pageByOutcome } = statements(db);
  const params = { upperTs: upper.ts, upperSeq: upper.seq, since, limit: limit + 1 };
  const rows = (
    query.outcome === undefined
      ? page.all(params)
      : pageByOutcome.all({ ...params, outcome: query.outcome })
  ) as unknown[][];
  const entries = rows.slice(0, limit).map(fromRow);
  const last = entries.at(-1);
  return rows.length > limit && last
    ? { entries, nextCursor: encodeAuditCursor(last) }
    : { entries };
}

export function encodeAuditCursor(position: { ts: number; seq: number }): string {
  return Buffer.from(`${position.ts}.${position.seq}`, 'utf8').toString('base64url');
}

export function decodeAuditCursor(cursor: string): { ts: number; seq: number } {
  const invalid = () =>
    new PortunusError(
      'invalid_cursor',
      'cursor is not one this server issued; start again without it',
    );
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) throw invalid();
  const match = /^(\d{1,16})\.(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw invalid();
  const ts = Number(match[1]);
  const seq = Number(match[2]);
  if (!Number.isSafeInteger(ts) || !Number.isSafeInteger(seq)) throw invalid();
  return { ts, seq };
}

/**
 * Page rows are read as arrays in this column order: better-sqlite3 builds row objects
 * property by property, and at 100 rows a page that garbage showed up in the p99.
 */
const ROW_COLUMNS =
  'seq, ts, actor, role, outcome, method, path, reason, action, resource_kind, resource_value, correlation_id, details_json';

function fromRow(row: unknown[]): AuditEntry {
  const details = row[12] as string;
  return {
    seq: row[0] as number,
    ts: row[1] as number,
    actor: row[2] as string,
    role: row[3] as string | null,
    outcome: row[4] as AuditOutcome,
    method: row[5] as string,
    path: row[6] as string,
    reason: row[7] as string | null,
    action: row[8] as string | null,
    resourceKind: row[9] as string | null,
    resourceValue: row[10] as string | null,
    correlationId: row[11] as string,
    details: details === '{}' ? {} : (JSON.parse(details) as Record<string, unknown>),
  };
}

/** The AuditEntry JSON of `GET /v1/audit` (reference §7.2); absent values are omitted. */
export interface AuditEntryJson {
  timestamp: string;
  actor: string;
  role?: string;
  method: string;
  path: string;
  outcome: AuditOutcome;
  reason?: string;
  action?: string;
  resource_kind?: string;
  resource_value?: string;
  details?: Record<string, unknown>;
}

export function auditEntryJson(entry: AuditEntry): AuditEntryJson {
  return {
    timestamp: formatRfc3339(entry.ts),
    actor: entry.actor,
    ...(entry.role !== null ? { role: entry.role } : {}),
    // A named action with no request behind it (an offline command) reads back with an empty
    // method and the action as its path (reference §7.2); request rows keep method and path.
    method: entry.method,
    path: entry.path === '' && entry.action !== null ? entry.action : entry.path,
    outcome: entry.outcome,
    ...(entry.reason !== null ? { reason: entry.reason } : {}),
    ...(entry.action !== null ? { action: entry.action } : {}),
    ...(entry.resourceKind !== null ? { resource_kind: entry.resourceKind } : {}),
    ...(entry.resourceValue !== null ? { resource_value: entry.resourceValue } : {}),
    ...(Object.keys(entry.details).length > 0 ? { details: entry.details } : {}),
  };
}

/** The envelope `{entries, next_cursor?, count}` served when since/until/cursor is given. */
export function auditEnvelopeJson(page: AuditPage): {
  entries: AuditEntryJson[];
  next_cursor?: string;
  count: number;
} {
  const entries = page.entries.map(auditEntryJson);
  return page.nextCursor === undefined
    ? { entries, count: entries.length }
    : { entries, next_cursor: page.nextCursor, count: entries.length };
}

export function countAuditBefore(db: Database, beforeMs: number): number {
  return statements(db).countBefore.get(beforeMs) as number;
}

/** Deletes every record older than the cutoff in one `BEGIN IMMEDIATE` transaction. */
export function deleteAuditBefore(db: Database, beforeMs: number): number {
  const { deleteBefore } = statements(db);
  return db.transaction(() => deleteBefore.run(beforeMs).changes).immediate();
}
