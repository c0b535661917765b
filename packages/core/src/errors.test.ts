// Proves the error catalogue is one consistent table: every entry has a dotted event, a known
// exit code and a valid HTTP status, codes and events are unique, and errors carry them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EXIT } from './exit-codes.js';
import {
  ERROR_CATALOGUE,
  PortunusError,
  errorBody,
  isPortunusError,
  type ErrorCode,
} from './errors.js';

const exitCodes = new Set<number>(Object.values(EXIT));

describe('error catalogue', () => {
  const entries = Object.entries(ERROR_CATALOGUE);

  it('gives every code a snake_case name, a dotted event, a known exit code and an HTTP status', () => {
    for (const [code, entry] of entries) {
      assert.match(code, /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/, code);
      assert.match(entry.event, /^[a-z_]+\.[a-z0-9_.]+$/, `${code} event ${entry.event}`);
      assert.ok(exitCodes.has(entry.exitCode), `${code} exit ${entry.exitCode}`);
      assert.ok(entry.exitCode !== 0, `${code} must not exit 0`);
      assert.ok(
        entry.httpStatus >= 400 && entry.httpStatus <= 599,
        `${code} http ${entry.httpStatus}`,
      );
      assert.ok(entry.summary.length > 0, `${code} summary`);
    }
  });

  it('never shares an event between two codes', () => {
    const events = entries.map(([, entry]) => entry.event);
    assert.equal(new Set(events).size, events.length);
  });

  it('keeps the seed-fixed exit codes', () => {
    assert.equal(ERROR_CATALOGUE.store_in_use.exitCode, 75);
    assert.equal(ERROR_CATALOGUE.store_in_use.event, 'startup.store_in_use');
    assert.equal(ERROR_CATALOGUE.schema_version_too_new.exitCode, 78);
    assert.equal(ERROR_CATALOGUE.schema_version_too_new.event, 'startup.schema_version_too_new');
    assert.equal(ERROR_CATALOGUE.unsupported_filesystem.exitCode, 78);
    assert.equal(ERROR_CATALOGUE.unsupported_filesystem.event, 'startup.unsupported_filesystem');
    assert.equal(ERROR_CATALOGUE.migration_failed.exitCode, 70);
    assert.equal(ERROR_CATALOGUE.not_sqlite.exitCode, 7);
    assert.equal(ERROR_CATALOGUE.destination_exists.exitCode, 3);
    assert.equal(ERROR_CATALOGUE.invalid_timestamp.exitCode, 2);
  });

  it('builds errors that carry their catalogue entry', () => {
    for (const code of Object.keys(ERROR_CATALOGUE) as ErrorCode[]) {
      const error = new PortunusError(code, undefined, { path: '/x' });
      assert.ok(isPortunusError(error));
      assert.equal(error.code, code);
      assert.equal(error.event, ERROR_CATALOGUE[code].event);
      assert.equal(error.exitCode, ERROR_CATALOGUE[code].exitCode);
      assert.equal(error.httpStatus, ERROR_CATALOGUE[code].httpStatus);
      assert.equal(error.message, ERROR_CATALOGUE[code].summary);
      assert.deepEqual(error.fields, { path: '/x' });
    }
    assert.equal(isPortunusError(new Error('plain')), false);
  });

  it('renders one error body and hides 5xx details', () => {
    const client = new PortunusError('invalid_cursor', 'cursor abc is bad');
    assert.deepEqual(errorBody(client), {
      error: { code: 'invalid_cursor', message: 'cursor abc is bad' },
    });
    const server = new PortunusError('store_error', 'SQLITE_IOERR at /secret/path');
    assert.deepEqual(errorBody(server), { error: { code: 'store_error', message: 'store_error' } });
  });
});
