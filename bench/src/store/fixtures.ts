/**
 * The storage benchmark's inputs: deterministic audit records (the same ones for our store and
 * for raw better-sqlite3), the positional rows the raw side binds, the time layout of the large
 * table, and the raw baseline database (same PRAGMAs as the store, and the audit DDL taken from
 * the store's own V001 migration so the two schemas cannot drift apart). Depends on store and
 * better-sqlite3 only.
 */
import Database, { type Database as SqliteDatabase, type Statement } from 'better-sqlite3';

import { BUSY_TIMEOUT_MS, loadMigrations, type AuditRecord } from '@portunus/store';

const DAY_MS = 86_400_000;
/** A fixed origin so every run builds byte-for-byte the same table. */
export const BASE_TS = Date.UTC(2025, 0, 1);
export const SPAN_MS = 30 * DAY_MS;
/** Rows per shared timestamp in the large table, so cursors must break (ts) ties by seq. */
export const ROWS_PER_TS = 4;

/** mulberry32: a small seeded PRNG; Math.random would make runs incomparable. */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const METHODS = ['POST', 'PUT', 'DELETE', 'PATCH'] as const;
const ACTIONS = ['rule.create', 'rule.delete', 'grant.create', 'client.enroll', 'user.update'];

/** One record shaped like a real mutation's audit row (~200 bytes of text, ~130 of JSON). */
export function makeRecord(next: () => number, ts: number): AuditRecord {
  const user = Math.floor(next() * 40);
  const client = Math.floor(next() * 500);
  const rule = Math.floor(next() * 100_000);
  const deny = next() < 0.1;
  const named = next() < 0.2;
  let correlationId = '';
  for (let i = 0; i < 26; i += 1) correlationId += CROCKFORD[Math.floor(next() * 32)] ?? '0';
  return {
    ts,
    actor: user === 0 ? '_superadmin' : `user-${user}`,
    role: user === 0 ? 'superadmin' : 'user',
    outcome: deny ? 'deny' : 'allow',
    method: METHODS[Math.floor(next() * METHODS.length)] ?? 'POST',
    path: `/v1/clients/${client}/rules/${rule}`,
    reason: deny ? 'grant does not cover the listen port' : null,
    action: named ? (ACTIONS[Math.floor(next() * ACTIONS.length)] ?? null) : null,
    resourceKind: 'rule',
    resourceValue: String(rule),
    correlationId,
    details: {
      rule_id: rule,
      client_name: `edge-${client}.example.net`,
      listen_port: 10_000 + (rule % 50_000),
      protocol: next() < 0.8 ? 'tcp' : 'udp',
      target: `10.${client % 256}.${rule % 256}.7:8080`,
    },
  };
}

/** `count` records with consecutive timestamps starting at `ts`, for the append runs. */
export function makeRecords(seed: number, count: number, ts: number): AuditRecord[] {
  const next = rng(seed);
  return Array.from({ length: count }, (_, index) => makeRecord(next, ts + index));
}

export type RawRow = [
  ts: number,
  actor: string,
  role: string | null,
  outcome: string,
  method: string,
  path: string,
  reason: string | null,
  action: string | null,
  resourceKind: string | null,
  resourceValue: string | null,
  correlationId: string,
  detailsJson: string,
];

/**
 * The positional row raw better-sqlite3 binds for a record, with the store's defaults. Built
 * before the clock starts, so the raw figure is the driver and SQLite alone and the ratio carries
 * all of the store's own per-record work (mapping, JSON.stringify, named binding).
 */
export function rawRow(record: AuditRecord): RawRow {
  return [
    Math.trunc(record.ts),
    record.actor,
    record.role ?? null,
    record.outcome,
    record.method ?? '',
    record.path ?? '',
    record.reason ?? null,
    record.action ?? null,
    record.resourceKind ?? null,
    record.resourceValue ?? null,
    record.correlationId ?? '',
    JSON.stringify(record.details ?? {}),
  ];
}

/** Timestamp of row `index` (0-based) of the large table: ROWS_PER_TS rows per ms value. */
export function tableTs(index: number, rows: number): number {
  const step = Math.floor((SPAN_MS * ROWS_PER_TS) / rows);
  return BASE_TS + Math.floor(index / ROWS_PER_TS) * step;
}

/**
 * The audit table's DDL (table and its indexes) cut out of the shipped V001 migration. Comments
 * are stripped first because they contain semicolons.
 */
export function auditDdl(): string[] {
  const first = loadMigrations()[0];
  if (!first) throw new Error('the store ships no migrations');
  const statements = first.sql
    .replace(/--.*$/gm, '')
    .split(';')
    .map((statement) => statement.trim().replace(/\s+/g, ' '))
    .filter((statement) => /^CREATE (TABLE audit |INDEX \w+ ON audit )/.test(statement));
  if (statements.length < 2 || !statements[0]?.startsWith('CREATE TABLE')) {
    throw new Error('could not find the audit table in V001; update bench/src/store/fixtures.ts');
  }
  return statements;
}

/**
 * A raw database with the store's PRAGMAs (WAL, synchronous=FULL, incremental auto-vacuum set
 * before the first table) and only the audit table, for the append baselines.
 */
export function openRawAuditDb(file: string): SqliteDatabase {
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  db.pragma('auto_vacuum = INCREMENTAL');
  applyStorePragmas(db);
  for (const statement of auditDdl()) db.exec(statement);
  return db;
}

/** The PRAGMAs openStore applies to every connection (packages/store/src/open.ts). */
export function applyStorePragmas(db: SqliteDatabase): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma('temp_store = MEMORY');
}

/** Raw single-statement helpers, prepared once per connection. */
export interface RawInsert {
  insert: Statement<RawRow>;
  begin: Statement;
  commit: Statement;
}

export function rawInsert(db: SqliteDatabase): RawInsert {
  return {
    insert: db.prepare<RawRow>(
      `INSERT INTO audit (ts, actor, role, outcome, method, path, reason, action, resource_kind,
         resource_value, correlation_id, details_json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
  };
}

/** One raw transaction of `rows`, the baseline for appendAudit. */
export function rawAppend(raw: RawInsert, rows: readonly RawRow[]): void {
  raw.begin.run();
  try {
    for (const row of rows) raw.insert.run(...row);
    raw.commit.run();
  } catch (error) {
    raw.begin.database.exec('ROLLBACK');
    throw error;
  }
}
