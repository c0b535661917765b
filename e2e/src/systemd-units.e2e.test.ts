// Proves the systemd units in packaging/systemd/ are clean: `systemd-analyze verify` prints
// nothing for either (any warning — an unknown key, a typo, a bad value — fails the test), and
// the directives the README's "Installing with systemd" promises are there. verify refuses an
// ExecStart binary that does not exist, so it checks copies whose /usr/local/bin paths point at
// the repository's own executable bin files. Skipped, with the reason, where systemd-analyze is
// not installed (.ci/run installs it).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { REPO_ROOT, tempDirs } from '@portunus/test-support';

const UNITS = path.join(REPO_ROOT, 'packaging', 'systemd');
const ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((file) =>
  fs.existsSync(file),
);
const ROLES = ['server', 'client', 'standalone'] as const;

const dirs = tempDirs();
after(() => {
  dirs.cleanup();
});

function unitText(role: (typeof ROLES)[number]): string {
  return fs.readFileSync(path.join(UNITS, `portunus-${role}.service`), 'utf8');
}

/** `Key=value` lines of a unit, comments dropped; a key may repeat. */
function directives(text: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (!match?.[1]) continue;
    map.set(match[1], [...(map.get(match[1]) ?? []), match[2] ?? '']);
  }
  return map;
}

function run(file: string, args: readonly string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

describe('packaging/systemd units', () => {
  it(
    'pass systemd-analyze verify with no output',
    { skip: ANALYZE ? false : 'systemd-analyze is not installed (Debian package systemd)' },
    async () => {
      const dir = dirs.make('portunus-units-');
      const copies = ROLES.map((role) => {
        const bin = path.join(REPO_ROOT, 'packages', role, 'bin', `portunus-${role}.js`);
        const copy = path.join(dir, `portunus-${role}.service`);
        fs.writeFileSync(copy, unitText(role).replaceAll(`/usr/local/bin/portunus-${role}`, bin));
        return copy;
      });
      const result = await run(ANALYZE!, ['verify', '--man=no', ...copies]);
      assert.equal(result.output, '', result.output);
      assert.equal(result.code, 0);
    },
  );

  it('carry the sandbox and lifecycle directives the README documents', () => {
    for (const role of ROLES) {
      const unit = directives(unitText(role));
      const one = (key: string): string | undefined => unit.get(key)?.at(-1);
      assert.deepEqual(unit.get('ExecStart'), [
        role === 'server'
          ? '/usr/local/bin/portunus-server serve'
          : `/usr/local/bin/portunus-${role}`,
      ]);
      for (const key of [
        'NoNewPrivileges',
        'ProtectHome',
        'PrivateTmp',
        'PrivateDevices',
        'ProtectKernelTunables',
        'ProtectKernelModules',
        'ProtectKernelLogs',
        'LockPersonality',
      ]) {
        assert.equal(one(key), 'yes', `${role}: ${key}`);
      }
      assert.equal(one('ProtectSystem'), 'strict', role);
      assert.equal(one('RestrictAddressFamilies'), 'AF_INET AF_INET6 AF_UNIX', role);
      assert.equal(one('Restart'), 'on-failure', role);
      assert.equal(one('KillSignal'), 'SIGTERM', role);
      // Above the 30 s default drain budget of both binaries (README "server.toml", client flags).
      assert.ok(Number(one('TimeoutStopSec')) > 30, `${role}: TimeoutStopSec`);
      // V8's JIT needs writable and executable pages.
      assert.equal(unit.has('MemoryDenyWriteExecute'), false, role);
      assert.ok(one('User'), `${role}: User`);
    }
    const server = directives(unitText('server'));
    assert.deepEqual(server.get('StateDirectory'), ['portunus']);
    assert.deepEqual(server.get('CapabilityBoundingSet'), ['']);
    const client = directives(unitText('client'));
    assert.deepEqual(client.get('ConfigurationDirectory'), ['portunus']);
    assert.deepEqual(client.get('CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(client.get('Environment'), [
      'PORTUNUS_CLIENT_BUNDLE=/etc/portunus/client.bundle.json',
    ]);
    const standalone = directives(unitText('standalone'));
    assert.deepEqual(standalone.get('ConfigurationDirectory'), ['portunus']);
    assert.deepEqual(standalone.get('Environment'), [
      'PORTUNUS_STANDALONE_CONFIG=/etc/portunus/portunus.toml',
    ]);
    // The default stats socket_path is /run/portunus/standalone.sock.
    assert.deepEqual(standalone.get('RuntimeDirectory'), ['portunus']);
    assert.deepEqual(standalone.get('ExecReload'), ['/bin/kill -HUP $MAINPID']);
    assert.deepEqual(standalone.get('ExecStartPre'), [
      '/usr/local/bin/portunus-standalone --check',
    ]);
  });
});
