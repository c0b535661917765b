/**
 * The error catalogue: every failure the program can report, each with its stable code, the log
 * event it emits, the process exit code and the HTTP status (DESIGN.md §3). Codes are external
 * contracts (operators' scripts match them): add entries, never rename or reuse one. Every thrown
 * failure is a `PortunusError` built from this table, so a CLI exit, a log line and an HTTP
 * answer can never disagree. Depends only on the exit-code table.
 */
import { EXIT, type ExitCode } from './exit-codes.js';

interface CatalogueEntry {
  readonly event: string;
  readonly exitCode: ExitCode;
  readonly httpStatus: number;
  /** What the code means, for docs and for the default message. */
  readonly summary: string;
}

function entry(
  event: string,
  exitCode: ExitCode,
  httpStatus: number,
  summary: string,
): CatalogueEntry {
  return { event, exitCode, httpStatus, summary };
}

export const ERROR_CATALOGUE = {
  // generic
  internal_error: entry('process.internal_error', EXIT.runtime, 500, 'unexpected internal error'),
  io_error: entry('process.io_error', EXIT.runtime, 500, 'file or socket operation failed'),
  usage_error: entry('cli.usage_error', EXIT.usage, 400, 'invalid command line'),
  not_found: entry('http.not_found', EXIT.notFound, 404, 'no such resource'),
  // configuration and data dir
  config_invalid: entry('config.invalid', EXIT.usage, 400, 'server.toml is invalid'),
  data_dir_unresolvable: entry(
    'startup.data_dir_unresolvable',
    EXIT.runtime,
    500,
    'no data dir: pass --data-dir or set STATE_DIRECTORY, XDG_STATE_HOME or HOME',
  ),
  unsupported_filesystem: entry(
    'startup.unsupported_filesystem',
    EXIT.config,
    500,
    'the data dir is on a filesystem that cannot hold the store safely',
  ),
  // the store
  store_in_use: entry(
    'startup.store_in_use',
    EXIT.storeInUse,
    503,
    'another process holds the data dir',
  ),
  schema_version_too_new: entry(
    'startup.schema_version_too_new',
    EXIT.config,
    500,
    'the database schema is newer than this binary supports',
  ),
  migration_failed: entry(
    'store.migration_failed',
    EXIT.migrationFailed,
    500,
    'a migration failed',
  ),
  migration_checksum_mismatch: entry(
    'store.migration_checksum_mismatch',
    EXIT.migrationFailed,
    500,
    'an applied migration was edited after it ran',
  ),
  migration_missing: entry(
    'store.migration_missing',
    EXIT.migrationFailed,
    500,
    'the database records a migration this binary does not ship',
  ),
  not_sqlite: entry('store.not_sqlite', EXIT.notSqlite, 422, 'the file is not a SQLite database'),
  store_corrupt: entry(
    'store.corrupt',
    EXIT.notSqlite,
    500,
    'the database failed its integrity check',
  ),
  store_error: entry('store.error', EXIT.runtime, 500, 'store_error'),
  // operator commands on the store
  destination_exists: entry(
    'cli.destination_exists',
    EXIT.conflict,
    409,
    'the destination already exists',
  ),
  data_dir_not_empty: entry(
    'cli.data_dir_not_empty',
    EXIT.conflict,
    409,
    'the data dir already holds a state.db',
  ),
  source_not_found: entry(
    'cli.source_not_found',
    EXIT.notFound,
    404,
    'the source file does not exist',
  ),
  // query validation (shared by the CLI and GET /v1/audit)
  invalid_timestamp: entry(
    'validation.invalid_timestamp',
    EXIT.usage,
    400,
    'expected an RFC3339 timestamp such as 2026-05-01T00:00:00Z',
  ),
  invalid_time_range: entry(
    'validation.invalid_time_range',
    EXIT.usage,
    400,
    'since is after until',
  ),
  invalid_cursor: entry('validation.invalid_cursor', EXIT.usage, 400, 'the cursor is not valid'),
  invalid_limit: entry('validation.invalid_limit', EXIT.usage, 422, 'limit must be 1..1000'),
  invalid_outcome: entry(
    'validation.invalid_outcome',
    EXIT.usage,
    422,
    'outcome must be allow or deny',
  ),
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Structured context for the log line; never put secrets here (they are redacted anyway). */
export type ErrorFields = Readonly<Record<string, unknown>>;

export class PortunusError extends Error {
  readonly code: ErrorCode;
  readonly event: string;
  readonly exitCode: ExitCode;
  readonly httpStatus: number;
  readonly fields: ErrorFields;

  constructor(code: ErrorCode, message?: string, fields: ErrorFields = {}, options?: ErrorOptions) {
    const known = ERROR_CATALOGUE[code];
    super(message ?? known.summary, options);
    this.name = 'PortunusError';
    this.code = code;
    this.event = known.event;
    this.exitCode = known.exitCode;
    this.httpStatus = known.httpStatus;
    this.fields = fields;
  }
}

export function isPortunusError(value: unknown): value is PortunusError {
  return value instanceof PortunusError;
}

/** The one HTTP error body shape: `{"error":{"code","message"}}`. 5xx details stay in the log. */
export function errorBody(error: PortunusError): { error: { code: string; message: string } } {
  const message = error.httpStatus >= 500 ? ERROR_CATALOGUE[error.code].summary : error.message;
  return { error: { code: error.code, message } };
}
