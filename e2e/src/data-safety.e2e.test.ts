// Proves that operator mistakes cannot touch a store they did not name: every path flag given as
// an empty or blank string (an unset shell variable) is refused with exit 2 before anything is
// opened or created, with HOME and XDG_STATE_HOME pointing at a real store that must stay
// byte-for-byte as it was; and that refused restores leave the target data dir exactly as it was.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CLIENT_BIN } from '@portunus/test-support';

import { Harness } from './harness.js';

const harness = new Harness();
after(() => harness.close());

/** Names, sizes, modes and content hashes of everything under `root`, for before/after equality. */
function snapshot(root: string): string[] {
  const rows: string[] = [];
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const stat = fs.lstatSync(full);
      const rel = path.relative(root, full);
      if (stat.isDirectory()) {
        rows.push(`${rel}/ ${(stat.mode & 0o7777).toString(8)}`);
        walk(full);
      } else {
        const hash = crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex');
        rows.push(`${rel} ${stat.size} ${(stat.mode & 0o7777).toString(8)} ${hash}`);
      }
    }
  };
  walk(root);
  return rows;
}

describe('blank path flags', () => {
  let home: string;
  let env: Record<string, string | undefined>;
  let store: string;

  before(async () => {
    home = harness.dirs.make();
    env = {
      HOME: home,
      XDG_STATE_HOME: path.join(home, 'state'),
      XDG_CONFIG_HOME: path.join(home, 'config'),
      STATE_DIRECTORY: undefined,
      PORTUNUS_CLIENT_BUNDLE: undefined,
      PORTUNUS_ENROLL_URI: undefined,
    };
    // A real store at the default location the blank flag used to fall back to.
    const made = await harness.cli(
      ['audit', 'prune', '--before', '1970-01-01T00:00:00Z', '--dry-run'],
      env,
    );
    assert.equal(made.code, 0, made.stderr);
    store = path.join(home, 'state', 'portunus', 'state.db');
    assert.ok(fs.existsSync(store));
  });

  const serverCases: [string, string[]][] = [
    ["--data-dir '' reset --confirm", ['--data-dir', '', 'reset', '--confirm']],
    ["--data-dir '  ' reset --confirm", ['--data-dir', '  ', 'reset', '--confirm']],
    ["--data-dir '' restore --in X --force", ['--data-dir', '', 'restore', '--in', 'X', '--force']],
    ["--data-dir '' serve", ['--data-dir', '', 'serve', '--control-listen', '127.0.0.1:0']],
    ["backup --out ''", ['backup', '--out', '']],
    ["backup --out ' '", ['backup', '--out', ' ']],
    ["restore --in '' --force", ['restore', '--in', '', '--force']],
  ];
  for (const [label, args] of serverCases) {
    it(`portunus-server ${label} exits 2 and leaves the default store untouched`, async () => {
      const before = snapshot(home);
      const result = await harness.cli(args, env);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /usage_error: --(data-dir|out|in) is empty/);
      assert.deepEqual(snapshot(home), before);
    });
  }

  const clientCases: [string, string[]][] = [
    ["--bundle ''", ['--bundle', '']],
    ["enroll URI --out ''", ['enroll', 'portunus://127.0.0.1:1/enroll?code=x', '--out', '']],
  ];
  for (const [label, args] of clientCases) {
    it(`portunus-client ${label} exits 2 and creates nothing`, async () => {
      const before = snapshot(home);
      const result = await harness.processes.run(CLIENT_BIN, args, { env, cwd: home });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /usage_error: --(bundle|out) is empty/);
      assert.deepEqual(snapshot(home), before);
    });
  }
});
