// `portunus-server onboard` against the real built server, twice from a fresh data dir: with
// --password-stdin (a wrong token exits 4 and creates nobody; then onboard, `login`, and a command
// that uses the stored credential; a second onboard exits 3 already_bootstrapped), and at a real
// terminal — the CLI runs in a tmux pane (its own tmux server), the test types the setup token and
// passwords with send-keys and reads the screen with capture-pane: mismatched passwords are
// refused before anything is sent, then `--login` stores the credential right away. Needs tmux
// (.ci/run installs it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { SERVER_BIN, waitFor, type RunningProcess } from '@portunus/test-support';

import { Harness, OperatorHttp, SLOW_STEP_MS, listenersOf, setupTokenOf } from './harness.js';

const h = new Harness();
const TMUX_SERVER = `portunus-onboard-${process.pid}`;
const PASSWORD = 'correct horse battery staple';

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', TMUX_SERVER, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

after(async () => {
  try {
    tmux('kill-server');
  } catch {
    // never started or already gone
  }
  await h.close();
});

async function freshServer(): Promise<{
  server: RunningProcess;
  http: OperatorHttp;
  token: string;
}> {
  const server = await h.serveWithin(h.newDataDir());
  const token = setupTokenOf(server);
  assert.ok(token, server.stderr());
  return { server, http: new OperatorHttp(listenersOf(server).operator_http), token };
}

function credentialEnv(): { env: Record<string, string | undefined>; file: string } {
  const config = path.join(h.dirs.make(), 'config');
  return {
    env: { PORTUNUS_OPERATOR_TOKEN: undefined, XDG_CONFIG_HOME: config },
    file: path.join(config, 'portunus', 'operator-credential.json'),
  };
}

async function onboardingRequired(http: OperatorHttp): Promise<boolean> {
  const status = await http.request<{ onboarding_required: boolean }>('GET', '/v1/auth/status');
  return status.body.onboarding_required;
}

describe('portunus-server onboard', { timeout: 180_000 }, () => {
  it('onboards with --password-stdin, then login and a command use the new superadmin', async () => {
    const { http, token } = await freshServer();
    const { env, file } = credentialEnv();
    const endpoint = ['--http-endpoint', http.hostPort];
    const onboard = (setupToken: string, user: string) =>
      h.run(
        [
          'onboard',
          ...endpoint,
          '--setup-token',
          setupToken,
          '--user',
          user,
          '--display-name',
          'First Admin',
          '--password-stdin',
        ],
        { env, stdin: `${PASSWORD}\n` },
      );

    const wrong = await onboard('A'.repeat(43), 'admin');
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.match(wrong.stderr, /error: setup_token_invalid: .*latest start/);
    assert.equal(await onboardingRequired(http), true, 'a refused onboard creates nobody');

    const done = await onboard(token, 'admin');
    assert.equal(done.code, 0, done.stderr);
    assert.equal(
      done.stdout,
      `onboarded admin (First Admin) as superadmin\n` +
        `next: portunus-server login --http-endpoint ${http.hostPort} --user admin\n`,
    );
    assert.ok(!done.stderr.includes(PASSWORD) && !done.stderr.includes(token), 'no secret logged');
    assert.equal(await onboardingRequired(http), false);
    assert.equal(fs.existsSync(file), false, 'without --login nothing is stored');

    const login = await h.run(['login', ...endpoint, '--user', 'admin', '--password-stdin'], {
      env,
      stdin: `${PASSWORD}\n`,
    });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /^logged in as admin\n/);
    const clients = await h.run(['list-clients', ...endpoint], { env });
    assert.equal(clients.code, 0, clients.stderr);
    assert.match(clients.stdout, /^CLIENT_ID\s+NAME\s+STATE/);

    const again = await onboard(token, 'second');
    assert.equal(again.code, 3, again.stderr);
    assert.match(again.stderr, /error: already_bootstrapped: .*portunus-server login/);
  });

  it('asks at a terminal: hidden prompts, a mismatch refused, then --login stores the credential', async () => {
    const { http, token } = await freshServer();
    const { env, file } = credentialEnv();
    const exitFile = path.join(h.dirs.make(), 'exit-code');
    const command = (user: string) =>
      [
        'env -u PORTUNUS_OPERATOR_TOKEN',
        `XDG_CONFIG_HOME=${env['XDG_CONFIG_HOME'] ?? ''}`,
        process.execPath,
        SERVER_BIN,
        `onboard --http-endpoint ${http.hostPort} --user ${user} --display-name Admin --login`,
        // The pane stays open after the CLI exits, so its last screen can be read.
        `; echo $? > ${exitFile}; exec cat > /dev/null`,
      ].join(' ');
    // Each run gets its own session and the previous one stays open until kill-server: killing the
    // last session ends the tmux server asynchronously, and a new-session racing that exit fails.
    let pane = '';
    let runs = 0;
    const screen = () => tmux('capture-pane', '-p', '-t', pane);
    const waitForScreen = async (what: string, text: string): Promise<string> => {
      let last = '';
      try {
        await waitFor(
          () => {
            last = screen();
            return last.includes(text);
          },
          { what, timeoutMs: SLOW_STEP_MS, intervalMs: 50 },
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}; screen was:\n${last}`, { cause: error });
      }
      return last;
    };
    const exitCode = async (): Promise<number> => {
      await waitFor(() => fs.existsSync(exitFile) && fs.readFileSync(exitFile, 'utf8') !== '', {
        what: 'the CLI to exit',
        timeoutMs: SLOW_STEP_MS,
        intervalMs: 50,
      });
      const code = Number(fs.readFileSync(exitFile, 'utf8').trim());
      fs.rmSync(exitFile);
      return code;
    };
    const type = (text: string) => {
      tmux('send-keys', '-t', pane, '-l', text);
      tmux('send-keys', '-t', pane, 'Enter');
    };
    const session = (user: string) => {
      pane = `onboard-${++runs}`;
      tmux('new-session', '-d', '-s', pane, '-x', '160', '-y', '20', command(user));
    };

    // Mismatched passwords: refused locally, exit 2, and the server still wants onboarding.
    session('admin');
    await waitForScreen('the setup token prompt', 'Setup token:');
    type(token);
    await waitForScreen('the password prompt', 'Password:');
    type(PASSWORD);
    await waitForScreen('the confirmation prompt', 'Confirm password:');
    type(`${PASSWORD} typo`);
    assert.equal(await exitCode(), 2);
    await waitForScreen('the mismatch error', 'error: password_mismatch: the two passwords differ');
    assert.equal(await onboardingRequired(http), true);

    session('admin');
    await waitForScreen('the setup token prompt', 'Setup token:');
    type(token);
    await waitForScreen('the password prompt', 'Password:');
    type(PASSWORD);
    await waitForScreen('the confirmation prompt', 'Confirm password:');
    type(PASSWORD);
    assert.equal(await exitCode(), 0, screen());
    const shown = await waitForScreen('the login lines', 'stored in ');
    assert.ok(shown.includes('onboarded admin (Admin) as superadmin'), shown);
    assert.ok(shown.includes('logged in as admin'), shown);
    assert.ok(!shown.includes(PASSWORD) && !shown.includes(token), 'nothing typed is echoed');

    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const clients = await h.run(['list-clients', '--http-endpoint', http.hostPort], { env });
    assert.equal(clients.code, 0, clients.stderr);
  });
});
