// `portunus-server login` / `logout` against the real server: login with --password-stdin stores
// an API credential in a 0600 file that later commands use without PORTUNUS_OPERATOR_TOKEN; the
// env var still wins; a wrong password stores nothing; logout revokes the credential on the server
// (the old token answers 401) and removes the file; logout without a file exits 4.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { SERVER_BIN } from '@portunus/test-support';

import { FleetHarness, type FleetServer } from './fleet.harness.js';
import { SLOW_STEP_MS } from './harness.js';

const h = new FleetHarness();
let server: FleetServer;
let env: Record<string, string | undefined>;
let credentialFile: string;
const PASSWORD = 'bob has a long password';

before(async () => {
  server = await h.fleetServer();
  const created = await server.http.request('POST', '/v1/users', {
    auth: server.auth,
    body: {
      user_id: 'bob',
      display_name: 'Bob',
      role: 'superadmin',
      initial_password: PASSWORD,
      password_change_required: false,
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  credentialFile = path.join(h.dirs.make(), 'config', 'portunus', 'operator-credential.json');
  env = {
    PORTUNUS_OPERATOR_TOKEN: undefined,
    XDG_CONFIG_HOME: path.dirname(path.dirname(credentialFile)),
  };
});

after(() => h.close());

function cli(args: string[], stdin?: string, extraEnv: Record<string, string | undefined> = {}) {
  return h.processes.run(SERVER_BIN, args, {
    env: { ...env, ...extraEnv },
    timeoutMs: SLOW_STEP_MS,
    ...(stdin !== undefined ? { stdin } : {}),
  });
}

describe('login and logout', { timeout: 120_000 }, () => {
  const endpoint = () => ['--http-endpoint', server.http.hostPort];

  it('refuses a wrong password with exit 4 and stores nothing', async () => {
    const result = await cli(
      ['login', ...endpoint(), '--user', 'bob', '--password-stdin'],
      'nope\n',
    );
    assert.equal(result.code, 4, result.stderr);
    assert.match(result.stderr, /invalid_login/);
    assert.equal(fs.existsSync(credentialFile), false);
  });

  it('without a token or a stored credential, commands say to log in', async () => {
    const result = await cli(['list-clients', ...endpoint()]);
    assert.equal(result.code, 4);
    assert.match(result.stderr, /operator_token_missing.*portunus-server login/);
  });

  let token = '';
  it('stores a 0600 credential that later commands use', async () => {
    const result = await cli(
      ['login', ...endpoint(), '--user', 'bob', '--password-stdin'],
      `${PASSWORD}\n`,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^logged in as bob\ncredential_id=[0-9A-Z]{26}\nstored in /);
    assert.equal(fs.statSync(credentialFile).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(credentialFile)).mode & 0o777, 0o700);
    const stored = JSON.parse(fs.readFileSync(credentialFile, 'utf8')) as {
      token: string;
      user_id: string;
    };
    assert.equal(stored.user_id, 'bob');
    token = stored.token;
    assert.ok(
      !result.stdout.includes(token) && !result.stderr.includes(token),
      'token not printed',
    );
    assert.ok(!result.stderr.includes(PASSWORD), 'password not logged');
    const listed = await cli(['list-clients', ...endpoint()]);
    assert.equal(listed.code, 0, listed.stderr);
    const me = await server.http.request<{ user_id: string }>('GET', '/v1/users/me', {
      auth: { bearer: token },
    });
    assert.equal(me.body.user_id, 'bob');
  });

  it('lets PORTUNUS_OPERATOR_TOKEN win over the stored credential', async () => {
    const result = await cli(['list-clients', ...endpoint()], undefined, {
      PORTUNUS_OPERATOR_TOKEN: 'not-a-valid-token',
    });
    assert.equal(result.code, 4);
    assert.match(result.stderr, /credential_invalid/);
  });

  it('logout revokes the credential on the server and removes the file', async () => {
    const result = await cli(['logout']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^logged out; credential [0-9A-Z]{26} revoked/);
    assert.equal(fs.existsSync(credentialFile), false);
    const me = await server.http.request('GET', '/v1/users/me', { auth: { bearer: token } });
    assert.equal(me.status, 401);
    const again = await cli(['logout']);
    assert.equal(again.code, 4);
    assert.match(again.stderr, /not_logged_in/);
  });
});
