/**
 * Oracles for the hostile-input tests of the operator API (tests only): a snapshot of every store
 * table except the audit log (denials are audited by design, so the audit table is expected to
 * grow on a rejected request), the check that an error answer is the one JSON envelope with a
 * catalogued code whose HTTP status matches, and a path with its `:params` filled in. Depends on
 * the catalogue and the store's database handle only, never on route internals.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import type { Database } from 'better-sqlite3';
import type { LightMyRequestResponse } from 'fastify';

import { ERROR_CATALOGUE, type ErrorCode } from '@portunus/core';

/**
 * What a rejected request may still write, by design: the audit trail of the denial, the failed
 * login counter that throttles guessing, and the "last used" stamps authentication itself sets
 * before the request is refused for its shape.
 */
const AUDIT_TABLES = new Set(['audit', 'login_attempts']);
const BOOKKEEPING_COLUMNS = new Set(['last_used_at', 'last_seen_at']);

/** Store codes a 5xx may carry: documented failures of the store, not bugs. */
export const DOCUMENTED_5XX = new Set<string>([
  'store_error',
  'store_full',
  'store_io_error',
  'store_in_use',
]);

/** A digest per table of every row, so "nothing stored" means byte-for-byte the same rows. */
export function storeSnapshot(db: Database): Record<string, string> {
  const tables = db
    .prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .pluck()
    .all() as string[];
  const snapshot: Record<string, string> = {};
  for (const table of tables) {
    if (AUDIT_TABLES.has(table)) continue;
    // Some tables are WITHOUT ROWID: rows are compared as a sorted set of their JSON forms.
    const columns = (
      db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[]
    )
      .filter((column) => !BOOKKEEPING_COLUMNS.has(column))
      .map((column) => `"${column}"`)
      .join(', ');
    const rows = (db.prepare(`SELECT ${columns} FROM "${table}"`).raw().all() as unknown[][])
      .map((row) =>
        JSON.stringify(row, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v)),
      )
      .sort();
    snapshot[table] = createHash('sha256').update(rows.join('\n')).digest('hex');
  }
  return snapshot;
}

/** Asserts an error answer is `{"error":{"code","message"}}` with a catalogued code. */
export function assertErrorEnvelope(response: LightMyRequestResponse, what: string): ErrorCode {
  assert.match(
    String(response.headers['content-type']),
    /^application\/json/,
    `${what}: error answers are JSON`,
  );
  const body = JSON.parse(response.body) as { error?: { code?: unknown; message?: unknown } };
  assert.ok(body.error, `${what}: no error envelope in ${response.body}`);
  assert.equal(Object.keys(body).length, 1, `${what}: only "error" at the top: ${response.body}`);
  const { code, message } = body.error;
  assert.equal(typeof code, 'string', `${what}: code`);
  assert.equal(typeof message, 'string', `${what}: message`);
  assert.ok(
    Object.hasOwn(ERROR_CATALOGUE, code as string),
    `${what}: ${String(code)} is catalogued`,
  );
  assert.equal(
    ERROR_CATALOGUE[code as ErrorCode].httpStatus,
    response.statusCode,
    `${what}: status of ${String(code)}`,
  );
  return code as ErrorCode;
}

/** The route's path with every `:param` replaced by `value`. */
export function fillPath(url: string, value: string): string {
  return url.replace(/:[A-Za-z]+/g, encodeURIComponent(value));
}
