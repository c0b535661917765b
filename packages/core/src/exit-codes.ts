/**
 * Process exit codes: the one table operators' scripts branch on (DESIGN.md §3). Only this module
 * names the numbers; everything else refers to them by name through the error catalogue. It
 * depends on nothing.
 */
export const EXIT = {
  ok: 0,
  /** Runtime failure: I/O, anything unexpected, client bundle not found. */
  runtime: 1,
  /** Usage or validation error: bad flag, bad RFC3339, invalid config key or value. */
  usage: 2,
  /** Conflict: destination exists, non-empty data dir without --force, port in use. */
  conflict: 3,
  /** Not authenticated or not authorized. */
  auth: 4,
  /** Not found: rule, client, user, grant, source file. */
  notFound: 5,
  /** Edge failure: client not connected, activation failed, ack timeout. */
  edge: 6,
  /** Not a SQLite database, or a corrupt one. */
  notSqlite: 7,
  /** A migration failed or the recorded migrations do not match the shipped ones. */
  migrationFailed: 70,
  /** sysexits EX_TEMPFAIL: another process holds the data dir (seed: store_in_use). */
  storeInUse: 75,
  /** sysexits EX_CONFIG: schema newer than the code, or an unsupported filesystem (seed). */
  config: 78,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
