// Proves the store's fault translation and the disk-full episode: SQLITE_FULL and ENOSPC are
// store_full (507), SQLITE_IOERR_* and EIO are store_io_error (503), other SQLite codes stay
// store_error, foreign errors are not the store's; one store.disk_full per episode, one
// store.disk_space_recovered when it ends, and a commit outside an episode logs nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { PortunusError } from '@portunus/core';

import { StoreFaults, translateStoreError } from './store-faults.js';
import { recordingLogger } from './store.harness.js';

const failure = (code: string): Error => Object.assign(new Error(`failed: ${code}`), { code });

describe('store faults', () => {
  it('translates the store failures to catalogued codes and leaves the rest alone', () => {
    const cases: Array<[string, string, number]> = [
      ['SQLITE_FULL', 'store_full', 507],
      ['ENOSPC', 'store_full', 507],
      ['SQLITE_IOERR_FSYNC', 'store_io_error', 503],
      ['SQLITE_IOERR_WRITE', 'store_io_error', 503],
      ['SQLITE_IOERR', 'store_io_error', 503],
      ['EIO', 'store_io_error', 503],
      ['SQLITE_BUSY', 'store_error', 500],
    ];
    for (const [code, expected, status] of cases) {
      const translated = translateStoreError(failure(code));
      assert.ok(translated instanceof PortunusError, code);
      assert.equal(translated.code, expected, code);
      assert.equal(translated.httpStatus, status, code);
      assert.equal(translated.fields['sqlite_code'], code);
    }
    assert.equal(translateStoreError(failure('ECONNRESET')), undefined);
    assert.equal(translateStoreError(new Error('no code')), undefined);
    const already = new PortunusError('not_found');
    assert.equal(translateStoreError(already), already);
  });

  it('logs one store.disk_full per episode and one store.disk_space_recovered when it ends', () => {
    const logger = recordingLogger();
    const faults = new StoreFaults(logger);
    faults.committed();
    assert.deepEqual(logger.events(), []);
    faults.failed(failure('SQLITE_FULL'));
    faults.failed(translateStoreError(failure('SQLITE_FULL')));
    faults.failed(failure('ENOSPC'));
    assert.equal(faults.diskFull, true);
    faults.failed(failure('SQLITE_BUSY'));
    faults.committed();
    faults.committed();
    assert.equal(faults.diskFull, false);
    faults.failed(failure('SQLITE_FULL'));
    assert.deepEqual(logger.events(), [
      'store.disk_full',
      'store.disk_space_recovered',
      'store.disk_full',
    ]);
  });

  it('logs every I/O error without starting a disk-full episode', () => {
    const logger = recordingLogger();
    const faults = new StoreFaults(logger);
    faults.failed(failure('SQLITE_IOERR_FSYNC'));
    faults.failed(translateStoreError(failure('EIO')));
    assert.equal(faults.diskFull, false);
    faults.committed();
    assert.deepEqual(logger.events(), ['store.io_error', 'store.io_error']);
  });
});
