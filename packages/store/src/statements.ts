/**
 * Prepared-statement cache: each query module asks for its SQL text and gets the statement
 * prepared once per connection. Preparing costs more than running a small indexed query, and
 * the operator API's auth path runs several per request.
 */
import type { Database, Statement } from 'better-sqlite3';

const cache = new WeakMap<Database, Map<string, Statement>>();

export function prepared(db: Database, sql: string): Statement {
  let statements = cache.get(db);
  if (!statements) {
    statements = new Map();
    cache.set(db, statements);
  }
  let statement = statements.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    statements.set(sql, statement);
  }
  return statement;
}

/** Runs `work` inside one `BEGIN IMMEDIATE` transaction (DESIGN.md §4: every write is one). */
export function immediate<T>(db: Database, work: () => T): T {
  return db.transaction(work).immediate();
}

/** SQLite's unique/primary-key violation, to turn into a catalogued conflict. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * Rows this connection has inserted, updated or deleted since it opened. The store is the only
 * writer of its file (the data dir lock), so an unchanged count means unchanged data: callers use
 * it to reuse an answer rendered earlier.
 */
export function totalChanges(db: Database): number {
  return prepared(db, 'SELECT total_changes()').pluck().get() as number;
}
