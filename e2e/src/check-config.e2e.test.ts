// Proves `portunus-server check-config` with the real binary: `ok` and exit 0 for a valid
// server.toml, exit 2 with one error line naming every bad key and variable for an invalid one,
// and that it starts nothing: it succeeds while serve holds the data dir's lock and leaves a
// data dir that does not exist uncreated.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Harness } from './harness.js';

const FIXTURES = fileURLToPath(new URL('../../packages/server/fixtures/config/', import.meta.url));

const harness = new Harness();
after(() => harness.close());

function dataDirWith(fixture: string): string {
  const dir = harness.newDataDir();
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.copyFileSync(path.join(FIXTURES, fixture), path.join(dir, 'server.toml'));
  return dir;
}

describe('portunus-server check-config', () => {
  it('prints ok for a valid file, even while serve holds the lock', async () => {
    const dir = dataDirWith('valid_minimal.toml');
    const server = await harness.serve(dir);
    const result = await harness.run(['--data-dir', dir, 'check-config']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'ok\n');
    assert.equal(server.child.exitCode, null);
  });

  it('exits 2 naming every problem of the file and the environment at once', async () => {
    const dir = dataDirWith('invalid_many.toml');
    const result = await harness.run(['--data-dir', dir, 'check-config'], {
      env: { PORTUNUS_OPERATOR_HTTP_LISTEN: 'localhost' },
    });
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, '');
    const errors = result.stderr.split('\n').filter((line) => line.startsWith('error: '));
    assert.equal(errors.length, 1, result.stderr);
    assert.match(
      errors[0] ?? '',
      /^error: config_invalid: 5 problems \(.*server\.toml, environment\): /,
    );
    for (const name of [
      'control_listn',
      'udp_flow_idle_secs',
      'udp_max_flows_per_rule',
      'metrics_listen',
      'PORTUNUS_OPERATOR_HTTP_LISTEN',
    ]) {
      assert.ok(errors[0]?.includes(name), `${name} missing from ${errors[0] ?? ''}`);
    }
    assert.deepEqual(fs.readdirSync(dir), ['server.toml']);
  });

  it('does not create a missing data dir', async () => {
    const dir = harness.newDataDir();
    const result = await harness.run(['--data-dir', dir, 'check-config']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'ok\n');
    assert.equal(fs.existsSync(dir), false);
  });
});
