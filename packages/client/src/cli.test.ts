// Proves the built `portunus-client` binary end to end (real process, real TLS on 127.0.0.1):
// a missing bundle exits 1 listing every path tried; an invalid bundle exits 1; `enroll` prints
// the bundle path and maps a refused code to exit 1; the Docker-style self-bootstrap enrolls
// into $PORTUNUS_CLIENT_BUNDLE and connects; SIGTERM stops the daemon with exit 0, also after a
// terminal UNAUTHENTICATED. Waits on JSON log events, never on sleeps.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { formatEnrollUri, grpc } from '@portunus/proto';
import { CLIENT_BIN, ProcessGroup, tempDirs } from '@portunus/test-support';

import { FakeControlServer, makeIdentity, type TestIdentity } from './control.harness.js';

const dirs = tempDirs();
const processes = new ProcessGroup();
let identity: TestIdentity;
let server: FakeControlServer;

before(async () => {
  identity = await makeIdentity();
  server = await new FakeControlServer({
    identity,
    enroll: (code) =>
      code === 'expired'
        ? { code: grpc.status.UNAUTHENTICATED, details: 'enrollment_expired' }
        : {
            version: 1,
            client_name: 'edge',
            client_id: `id-${code}`,
            server_endpoint: server.endpoint,
            server_cert_sha256: identity.sha256,
            token: `token-${code}`,
          },
    authorize: (token) => (token === 'token-revoked' ? 'token_revoked' : undefined),
  }).start();
});

after(async () => {
  await processes.killAll();
  server.close();
  dirs.cleanup();
});

/** An environment with no bundle anywhere: fresh HOME and XDG dirs, no bundle variable. */
function isolatedEnv(): { env: Record<string, string | undefined>; cwd: string } {
  const root = dirs.make();
  const cwd = path.join(root, 'cwd');
  fs.mkdirSync(cwd);
  return {
    cwd,
    env: {
      HOME: path.join(root, 'home'),
      XDG_CONFIG_HOME: path.join(root, 'xdg'),
      PORTUNUS_CLIENT_BUNDLE: undefined,
      PORTUNUS_ENROLL_URI: undefined,
      PORTUNUS_LOG_LEVEL: 'info',
    },
  };
}

describe('portunus-client binary', () => {
  it('exits 1 listing every bundle path it tried', async () => {
    const { env, cwd } = isolatedEnv();
    const result = await processes.run(CLIENT_BIN, [], { env, cwd });
    assert.equal(result.code, 1);
    const expected = [
      path.join(env['XDG_CONFIG_HOME']!, 'portunus', 'client.bundle.json'),
      path.join(env['HOME']!, '.config', 'portunus', 'client.bundle.json'),
      path.join(cwd, 'client.bundle.json'),
    ];
    const failure = result.events.find((e) => e.event === 'client.bundle_search_failed');
    assert.deepEqual(failure?.['attempted'], expected);
    for (const file of expected) assert.ok(result.stderr.includes(file), file);
  });

  it('exits 1 on an invalid bundle', async () => {
    const { env, cwd } = isolatedEnv();
    const file = path.join(cwd, 'b.json');
    fs.writeFileSync(file, JSON.stringify({ version: 2 }));
    const result = await processes.run(CLIENT_BIN, ['--bundle', file], { env, cwd });
    assert.equal(result.code, 1);
    assert.ok(result.events.some((e) => e.event === 'client.bundle_load_failed'));
  });

  it('exits 2 on a bad flag value', async () => {
    const { env, cwd } = isolatedEnv();
    const result = await processes.run(CLIENT_BIN, ['--stats-report-interval-secs', '0'], {
      env,
      cwd,
    });
    assert.equal(result.code, 2);
  });

  it('enrolls into $XDG_CONFIG_HOME and prints the path; a refused code exits 1', async () => {
    const { env, cwd } = isolatedEnv();
    const uri = formatEnrollUri(server.endpoint, identity.sha256, 'cli');
    const ok = await processes.run(CLIENT_BIN, ['enroll', uri], { env, cwd });
    const file = path.join(env['XDG_CONFIG_HOME']!, 'portunus', 'client.bundle.json');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `${file}\n`);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.ok(!ok.stderr.includes('token-cli'), 'the token is never logged');

    const expired = formatEnrollUri(server.endpoint, identity.sha256, 'expired');
    const out = path.join(cwd, 'other.json');
    const refused = await processes.run(CLIENT_BIN, ['enroll', expired, '--out', out], {
      env,
      cwd,
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /rpc: enrollment_expired/);
    assert.ok(refused.events.some((e) => e.event === 'client.enrollment_expired'));
    assert.equal(fs.existsSync(out), false);
  });

  it('self-bootstraps from PORTUNUS_ENROLL_URI, connects, and exits 0 on SIGTERM', async () => {
    const { env, cwd } = isolatedEnv();
    const file = path.join(cwd, 'state', 'client.bundle.json');
    const client = processes.node(CLIENT_BIN, ['--stats-report-interval-ms', '100'], {
      cwd,
      env: {
        ...env,
        PORTUNUS_CLIENT_BUNDLE: file,
        PORTUNUS_ENROLL_URI: formatEnrollUri(server.endpoint, identity.sha256, 'boot'),
      },
    });
    const boot = await client.waitForEvent('client.self_bootstrap');
    assert.equal(boot['path'], file);
    const loaded = await client.waitForEvent('client.bundle_loaded');
    assert.deepEqual(
      [loaded['path'], loaded['client_id'], loaded['server_endpoint']],
      [file, 'id-boot', server.endpoint],
    );
    await client.waitForEvent('control.connected');
    assert.ok(server.sessions.some((s) => s.token === 'token-boot'));
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);

    client.kill('SIGTERM');
    assert.equal(await client.exited(), 0);
    const events = client.events.map((e) => e.event);
    assert.ok(events.indexOf('shutdown.signal') < events.indexOf('client.stopped'));
    assert.ok(!client.stderr().includes('token-boot'), 'the token is never logged');
  });

  it('idles after a terminal UNAUTHENTICATED and exits 0 on SIGINT', async () => {
    const { env, cwd } = isolatedEnv();
    const file = path.join(cwd, 'client.bundle.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        client_name: 'edge',
        client_id: 'revoked',
        server_endpoint: server.endpoint,
        server_cert_sha256: identity.sha256,
        token: 'token-revoked',
      }),
      { mode: 0o600 },
    );
    const client = processes.node(CLIENT_BIN, [], { env, cwd });
    const terminal = await client.waitForEvent('control.terminal');
    assert.equal(terminal['reason'], 'token_revoked');
    client.kill('SIGINT');
    assert.equal(await client.exited(), 0);
    assert.equal(client.events.filter((e) => e.event === 'control.connecting').length, 1);
  });
});
