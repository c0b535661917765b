// Proves data dir resolution at its edges: relative paths, blank values and systemd's colon
// list, and the unresolvable case with its catalogue entry.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import { resolveDataDir } from './data-dir.js';
import { thrownError } from './store.harness.js';

describe('resolveDataDir', () => {
  const all = { STATE_DIRECTORY: '/sd', XDG_STATE_HOME: '/xdg', HOME: '/home/op' };

  it('takes each source only when every higher one is absent or blank', () => {
    assert.deepEqual(resolveDataDir('/flag', all), { path: '/flag', source: 'flag' });
    assert.equal(resolveDataDir(undefined, all).source, 'STATE_DIRECTORY');
    for (const blank of [undefined, '', '   ', '\t']) {
      assert.equal(
        resolveDataDir(undefined, { ...all, STATE_DIRECTORY: blank }).source,
        'XDG_STATE_HOME',
      );
      assert.deepEqual(resolveDataDir(undefined, { HOME: '/home/op', XDG_STATE_HOME: blank }), {
        path: '/home/op/.local/state/portunus',
        source: 'HOME',
      });
    }
  });

  it('refuses a given but blank --data-dir instead of falling back to a default store', () => {
    for (const blank of ['', '   ', '\t', '\n']) {
      const error = thrownError(() => resolveDataDir(blank, all));
      assert.equal(error.code, 'usage_error');
      assert.equal(error.exitCode, 2);
      assert.match(error.message, /--data-dir is empty/);
    }
  });

  it('uses the first entry of a colon-separated STATE_DIRECTORY', () => {
    assert.equal(
      resolveDataDir(undefined, { STATE_DIRECTORY: '/var/lib/portunus:/var/lib/other' }).path,
      '/var/lib/portunus',
    );
    // A blank first entry is no directory at all: fall through rather than pick the second.
    assert.equal(
      resolveDataDir(undefined, { STATE_DIRECTORY: ':/var/lib/other', HOME: '/h' }).source,
      'HOME',
    );
  });

  it('returns absolute paths, resolving a relative flag against the working directory', () => {
    assert.equal(resolveDataDir('data', {}).path, path.resolve('data'));
    assert.equal(resolveDataDir('/a/b/../c', {}).path, '/a/c');
    assert.equal(resolveDataDir(undefined, { XDG_STATE_HOME: '/x/' }).path, '/x/portunus');
  });

  it('fails with data_dir_unresolvable when nothing names a directory', () => {
    for (const env of [{}, { HOME: ' ' }, { STATE_DIRECTORY: '', XDG_STATE_HOME: '', HOME: '' }]) {
      const error = thrownError(() => resolveDataDir(undefined, env));
      assert.equal(error.code, 'data_dir_unresolvable');
      assert.equal(error.event, 'startup.data_dir_unresolvable');
      assert.match(error.message, /--data-dir/);
    }
  });
});
