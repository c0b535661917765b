// Proves every identity command of `portunus-server` with the real binary: the HTTP-backed
// user-*, grant-* and token-* commands against a running server (bearer from server.toml's
// operator_token), the exit codes mapped from the server's error codes (DESIGN.md §3), and the
// offline onboarding-token and reset-password commands, which take the data dir's lock.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createServer } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { insertClient, openStore } from '@portunus/store';
import type { RunningProcess } from '@portunus/test-support';

import {
  Harness,
  OperatorHttp,
  SLOW_STEP_MS,
  listenersOf,
  setupTokenOf,
  type CliResult,
  type HttpAuth,
} from './harness.js';

const harness = new Harness();
after(() => harness.close());

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const ULID_SHAPE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const CLIENT_ID = '01J9E2E0000000000000000002';

type Json = Record<string, unknown>;

interface RunOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
}

/** Runs `portunus-server args…` to completion. */
function portunus(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return harness.run(args, options);
}

/** Runs the tasks at most `width` at a time: a burst of processes only slows a busy machine. */
async function inBatches<T>(tasks: readonly (() => Promise<T>)[], width = 4): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const index = next;
      next += 1;
      results[index] = await tasks[index]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, tasks.length) }, worker));
  return results;
}

function parseJson(result: CliResult): Json {
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Json;
}

function parseJsonArray(result: CliResult): Json[] {
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Json[];
}

/** Asserts the exit code and the one `error: <code>:` line. */
function assertFails(result: CliResult, exitCode: number, errorCode: string): void {
  assert.equal(result.code, exitCode, `${errorCode}: ${result.stderr}`);
  assert.match(result.stderr, new RegExp(`^error: ${errorCode.replace('.', '\\.')}(:|$)`, 'm'));
  assert.equal(result.stdout, '');
}

function lines(text: string): string[] {
  return text.trimEnd().split('\n');
}

async function stop(server: RunningProcess): Promise<void> {
  server.kill('SIGTERM');
  assert.equal(await server.exited(SLOW_STEP_MS), 0, server.stderr());
}

async function login(
  http: OperatorHttp,
  userId: string,
  password: string,
): Promise<{ cookie: string; passwordChangeRequired: unknown }> {
  const answer = await http.request('POST', '/v1/auth/login', {
    body: { user_id: userId, password },
  });
  assert.equal(answer.status, 200, `${userId}: ${JSON.stringify(answer.body)}`);
  return {
    cookie: answer.headers.getSetCookie()[0]!.split(';')[0]!,
    passwordChangeRequired: answer.body['password_change_required'],
  };
}

describe('identity commands against a running server', () => {
  let operatorToken: string;
  let endpoint: string;
  let http: OperatorHttp;
  let aliceSession: string;

  /** An HTTP-backed command with the operator token unless `env` says otherwise. */
  const online = (args: readonly string[], options: RunOptions = {}): Promise<CliResult> =>
    portunus([...args, '--http-endpoint', endpoint], {
      ...options,
      env: { PORTUNUS_OPERATOR_TOKEN: operatorToken, ...options.env },
    });

  before(async () => {
    const generated = await harness.run(['gen-token']);
    assert.equal(generated.code, 0, generated.stderr);
    operatorToken = generated.stdout.trim();
    const dataDir = harness.newDataDir();
    const store = openStore(dataDir);
    try {
      insertClient(store.db, { clientId: CLIENT_ID, clientName: 'edge-1', now: Date.now() });
    } finally {
      store.close();
    }
    fs.writeFileSync(path.join(dataDir, 'server.toml'), `operator_token = "${operatorToken}"\n`, {
      mode: 0o600,
    });
    const server = await harness.serveWithin(dataDir);
    endpoint = listenersOf(server).operator_http;
    http = new OperatorHttp(endpoint);
  });

  it('gen-token prints a fresh 43-character URL-safe token each time', async () => {
    // The before hook made the operator token with gen-token as well.
    const result = await harness.run(['gen-token']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^[A-Za-z0-9_-]{43}\n$/);
    assert.equal(result.stderr, '');
    assert.match(operatorToken, TOKEN_SHAPE);
    assert.notEqual(result.stdout.trim(), operatorToken);
  });

  it('user-add, user-list, user-get and user-remove in json and text', async () => {
    const [alice, bob] = await Promise.all([
      online(['user-add', 'alice', '--display-name', 'Alice Liddell', '--password-stdin'], {
        stdin: 'alice password 1\nnot part of the password\n',
      }),
      online(
        [
          'user-add',
          'bob',
          '--display-name',
          'Bob',
          '--role',
          'superadmin',
          '--password-stdin',
          '--password-change-required',
          '--format',
          'text',
        ],
        { stdin: 'bob password 123\n' },
      ),
    ]);
    assert.deepEqual(parseJson(alice), {
      user_id: 'alice',
      display_name: 'Alice Liddell',
      role: 'user',
    });
    // Only the first stdin line is the password.
    aliceSession = (await login(http, 'alice', 'alice password 1')).cookie;
    assert.equal(bob.code, 0, bob.stderr);
    assert.deepEqual(
      lines(bob.stdout).map((line) => line.split(/\s{2,}/)),
      [
        ['USER_ID', 'DISPLAY_NAME', 'ROLE'],
        ['bob', 'Bob', 'superadmin'],
      ],
    );
    assert.equal((await login(http, 'bob', 'bob password 123')).passwordChangeRequired, true);

    const [listJson, listText, getJson, getText] = await Promise.all([
      online(['user-list']),
      online(['user-list', '--format', 'text']),
      online(['user-get', 'alice']),
      // Reserved ids can be read.
      online(['user-get', '_legacy', '--format', 'text']),
    ]);
    const users = parseJsonArray(listJson);
    assert.deepEqual(users.map((user) => user['user_id']).sort(), ['_legacy', 'alice', 'bob']);
    const listed = users.find((user) => user['user_id'] === 'alice');
    assert.equal(listed?.['display_name'], 'Alice Liddell');
    assert.equal(listed['role'], 'user');
    assert.equal(listed['disabled'], false);
    assert.equal(listed['grant_count'], 0);
    assert.match(String(listed['created_at']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    assert.equal(listText.code, 0, listText.stderr);
    const table = lines(listText.stdout).map((line) => line.split(/\s{2,}/));
    assert.deepEqual(table[0], [
      'USER_ID',
      'DISPLAY_NAME',
      'ROLE',
      'DISABLED',
      'GRANT_COUNT',
      'CREATED_AT',
    ]);
    const aliceRow = table.find((row) => row[0] === 'alice');
    assert.deepEqual(aliceRow?.slice(0, 5), ['alice', 'Alice Liddell', 'user', 'false', '0']);
    assert.equal(table.length, 4);
    assert.deepEqual(parseJson(getJson), listed);
    assert.equal(getText.code, 0, getText.stderr);
    const legacy = lines(getText.stdout).map((line) => line.split(/\s{2,}/));
    assert.equal(legacy.length, 2);
    assert.deepEqual(legacy[1]?.slice(0, 5), [
      '_legacy',
      'operator token',
      'superadmin',
      'false',
      '0',
    ]);

    assert.deepEqual(parseJson(await online(['user-remove', 'bob'])), {
      user_id: 'bob',
      removed_credential_ids: [],
      revoked_grant_ids: [],
      removed_rule_ids: [],
    });
    const gone = await http.request('GET', '/v1/users/bob', { auth: { bearer: operatorToken } });
    assert.equal(gone.errorCode, 'user_not_found');
  });

  it('grant-add, grant-list and grant-revoke', async () => {
    const [namedResult, wildcard] = await Promise.all([
      online([
        'grant-add',
        '--user-id',
        'alice',
        '--client',
        'edge-1',
        '--listen-port-start',
        '20000',
        '--listen-port-end',
        '20010',
        '--protocols',
        'tcp,udp',
        '--note',
        'e2e grant',
      ]),
      online([
        'grant-add',
        '--user-id',
        'alice',
        '--client',
        '*',
        '--listen-port-start',
        '30000',
        '--listen-port-end',
        '30000',
        '--format',
        'text',
      ]),
    ]);
    const named = parseJson(namedResult);
    assert.match(String(named['grant_id']), ULID_SHAPE);
    assert.equal(named['user_id'], 'alice');
    assert.equal(named['client'], 'edge-1');
    assert.equal(named['client_id'], CLIENT_ID);
    assert.equal(named['listen_port_start'], 20000);
    assert.equal(named['listen_port_end'], 20010);
    assert.deepEqual(named['protocols'], ['tcp', 'udp']);
    assert.equal(named['note'], 'e2e grant');
    assert.equal(wildcard.code, 0, wildcard.stderr);
    const wildcardTable = lines(wildcard.stdout).map((line) => line.split(/\s{2,}/));
    assert.deepEqual(wildcardTable[0], [
      'GRANT_ID',
      'USER_ID',
      'CLIENT',
      'LISTEN_PORT_START',
      'LISTEN_PORT_END',
      'PROTOCOLS',
      'NOTE',
    ]);
    const wildcardId = wildcardTable[1]?.[0] ?? '';
    assert.match(wildcardId, ULID_SHAPE);
    assert.deepEqual(wildcardTable[1]?.slice(1), ['alice', '*', '30000', '30000', 'tcp']);

    const [mine, allText] = await Promise.all([
      online(['grant-list', '--user-id', 'alice']),
      online(['grant-list', '--format', 'text']),
    ]);
    assert.deepEqual(
      parseJsonArray(mine)
        .map((grant) => grant['grant_id'])
        .sort(),
      [named['grant_id'], wildcardId].sort(),
    );
    assert.equal(allText.code, 0, allText.stderr);
    const allTable = lines(allText.stdout).map((line) => line.split(/\s{2,}/));
    assert.equal(allTable.length, 3);
    assert.ok(
      allTable.some(
        (row) => row[0] === named['grant_id'] && row[2] === 'edge-1' && row[5] === 'tcp,udp',
      ),
      allText.stdout,
    );
    const aliceUser = await http.request('GET', '/v1/users/alice', {
      auth: { bearer: operatorToken },
    });
    assert.equal(aliceUser.body['grant_count'], 2);

    assert.deepEqual(parseJson(await online(['grant-revoke', wildcardId])), {
      grant_id: wildcardId,
      removed_rule_ids: [],
    });
    const left = await http.request<Json[]>('GET', '/v1/grants?user_id=alice', {
      auth: { bearer: operatorToken },
    });
    assert.deepEqual(
      left.body.map((grant) => grant['grant_id']),
      [named['grant_id']],
    );
    assertFails(await online(['grant-revoke', wildcardId]), 5, 'grant_not_found');
  });

  it('token-create prints the token once; token-list and token-revoke; a revoked token fails', async () => {
    const [created, forAliceResult] = await Promise.all([
      online(['token-create', '--label', 'ci']),
      online(['token-create', '--user-id', 'alice', '--label', 'alice-ci', '--format', 'json']),
    ]);
    assert.equal(created.code, 0, created.stderr);
    const match = /^credential_id=(\S+) user_id=_legacy token=(\S+)\n$/.exec(created.stdout);
    assert.ok(match, created.stdout);
    const [, credentialId = '', token = ''] = match;
    assert.match(credentialId, ULID_SHAPE);
    assert.match(token, TOKEN_SHAPE);

    const withToken = await http.request('GET', '/v1/users/me', { auth: { bearer: token } });
    assert.equal(withToken.body['user_id'], '_legacy');

    const forAlice = parseJson(forAliceResult);
    assert.equal(forAlice['user_id'], 'alice');
    assert.equal(forAlice['label'], 'alice-ci');
    const aliceToken = String(forAlice['token']);
    assert.match(aliceToken, TOKEN_SHAPE);

    const [listText, listJson, aliceDenied] = await Promise.all([
      online(['token-list']),
      online(['token-list', '--user-id', '_legacy', '--format', 'json']),
      online(['user-list'], { env: { PORTUNUS_OPERATOR_TOKEN: aliceToken } }),
    ]);
    assert.equal(listText.code, 0, listText.stderr);
    const table = lines(listText.stdout).map((line) => line.split(/\s{2,}/));
    assert.deepEqual(table[0], [
      'CREDENTIAL_ID',
      'USER_ID',
      'LABEL',
      'STATUS',
      'ISSUED_AT',
      'LAST_USED_AT',
      'REVOKED_AT',
    ]);
    const row = table.find((cells) => cells[0] === credentialId);
    assert.deepEqual(row?.slice(1, 4), ['_legacy', 'ci', 'active']);
    assert.notEqual(row[5], '-', 'last_used_at is set once the token was used');
    assert.equal(row[6], '-');
    assert.ok(!listText.stdout.includes(token) && !listText.stdout.includes(aliceToken));
    const mine = parseJsonArray(listJson);
    assert.deepEqual(
      mine.map((credential) => credential['credential_id']),
      [credentialId],
    );
    assert.ok(!('token' in mine[0]!));
    // A user's own token is not a superadmin's.
    assertFails(aliceDenied, 4, 'role_required');

    const revoked = await online(['token-revoke', credentialId]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const revokedRow = lines(revoked.stdout)[1]?.split(/\s{2,}/);
    assert.deepEqual(revokedRow?.slice(0, 4), [credentialId, '_legacy', 'ci', 'revoked']);
    assert.notEqual(revokedRow[6], '-');
    assertFails(
      await online(['user-list'], { env: { PORTUNUS_OPERATOR_TOKEN: token } }),
      4,
      'credential_invalid',
    );

    // Removing alice takes her credential and grant with her.
    const removal = await online(['user-remove', 'alice', '--format', 'text']);
    assert.equal(removal.code, 0, removal.stderr);
    const removed = lines(removal.stdout)[1]?.split(/\s{2,}/);
    assert.equal(removed?.[0], 'alice');
    assert.equal(removed[1], String(forAlice['credential_id']));
    assert.match(removed[2] ?? '', ULID_SHAPE);
    const aliceGone = await http.request('GET', '/v1/users/me', { auth: { bearer: aliceToken } });
    assert.equal(aliceGone.errorCode, 'credential_invalid');
    const sessionGone = await http.request('GET', '/v1/users/me', {
      auth: { cookie: aliceSession },
    });
    assert.equal(sessionGone.errorCode, 'credential_invalid');
  });

  it('maps server and local errors to their catalogued exit codes', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const closedPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) =>
      closed.close(() => {
        resolve();
      }),
    );
    const carol = await http.request('POST', '/v1/users', {
      auth: { bearer: operatorToken },
      body: { user_id: 'carol', display_name: 'Carol', initial_password: 'carol password 1' },
    });
    assert.equal(carol.status, 201, JSON.stringify(carol.body));

    const cases: [string, () => Promise<CliResult>, number, string][] = [
      [
        'missing token',
        () => online(['user-list'], { env: { PORTUNUS_OPERATOR_TOKEN: undefined } }),
        4,
        'operator_token_missing',
      ],
      [
        'wrong token',
        () => online(['user-list'], { env: { PORTUNUS_OPERATOR_TOKEN: 'W'.repeat(43) } }),
        4,
        'credential_invalid',
      ],
      [
        'duplicate user',
        () =>
          online(['user-add', 'carol', '--display-name', 'Carol', '--password-stdin'], {
            stdin: 'carol password 2\n',
          }),
        3,
        'user_already_exists',
      ],
      ['unknown user', () => online(['user-get', 'nobody']), 5, 'user_not_found'],
      ['remove self', () => online(['user-remove', '_legacy']), 3, 'cannot_remove_self'],
      [
        'invalid user id',
        () =>
          online(['user-add', 'Not-Valid', '--display-name', 'X', '--password-stdin'], {
            stdin: 'some password 1\n',
          }),
        2,
        'invalid_user_id',
      ],
      [
        'no password',
        () => online(['user-add', 'dave', '--display-name', 'Dave']),
        2,
        'initial_password_required',
      ],
      [
        'unknown client',
        () =>
          online([
            'grant-add',
            '--user-id',
            'carol',
            '--client',
            'no-such-client',
            '--listen-port-start',
            '1',
            '--listen-port-end',
            '2',
          ]),
        2,
        'invalid_client',
      ],
      [
        'port 0 (checked locally)',
        () =>
          online([
            'grant-add',
            '--user-id',
            'carol',
            '--client',
            '*',
            '--listen-port-start',
            '0',
            '--listen-port-end',
            '8',
          ]),
        2,
        'invalid_port_range',
      ],
      [
        'unreachable server',
        () =>
          portunus(['user-list', '--http-endpoint', `127.0.0.1:${closedPort}`], {
            env: { PORTUNUS_OPERATOR_TOKEN: operatorToken },
          }),
        1,
        'server_unreachable',
      ],
    ];
    const results = await inBatches(cases.map(([, run]) => run));
    cases.forEach(([name, , exitCode, errorCode], index) => {
      const result = results[index]!;
      assert.equal(result.code, exitCode, `${name}: ${result.stderr}`);
      assert.match(
        result.stderr,
        new RegExp(`^error: ${errorCode}(:|$)`, 'm'),
        `${name}: ${result.stderr}`,
      );
    });
    // Nothing was half-done: carol has no grant and dave does not exist.
    const users = await http.request<Json[]>('GET', '/v1/users', {
      auth: { bearer: operatorToken },
    });
    assert.deepEqual(users.body.map((user) => [user['user_id'], user['grant_count']]).sort(), [
      ['_legacy', 0],
      ['carol', 0],
    ]);
  });
});

/** A stand-in operator endpoint: the first path segment picks the status and error code. */
async function fakeOperatorEndpoint(): Promise<{ base: string; close: () => Promise<void> }> {
  const server = createServer((request, response) => {
    const [, selector = ''] = (request.url ?? '').split('/');
    if (selector === 'html') {
      response.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad gateway</h1>');
      return;
    }
    response
      .writeHead(403, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: { code: selector, message: 'from a stand-in server' } }));
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

describe('answers the CLI does not know', () => {
  const runAgainst = (base: string, selector: string): Promise<CliResult> =>
    portunus(['user-list', '--http-endpoint', `${base}/${selector}`], {
      env: { PORTUNUS_OPERATOR_TOKEN: 'T'.repeat(43) },
    });

  it('exits 1 for an error code outside the catalogue and for a body that is not the envelope', async () => {
    const fake = await fakeOperatorEndpoint();
    try {
      const [unknown, html] = await Promise.all([
        runAgainst(fake.base, 'frobnicated'),
        runAgainst(fake.base, 'html'),
      ]);
      assertFails(unknown, 1, 'internal_error');
      assert.match(unknown.stderr, /frobnicated: from a stand-in server/);
      assertFails(html, 1, 'internal_error');
      assert.match(html.stderr, /http_502/);
    } finally {
      await fake.close();
    }
  });

  it('exits 1, never 0, when the error code is an Object.prototype key', async () => {
    const fake = await fakeOperatorEndpoint();
    try {
      // Also toString, __proto__, hasOwnProperty, …
      assertFails(await runAgainst(fake.base, 'constructor'), 1, 'internal_error');
    } finally {
      await fake.close();
    }
  });
});

describe('offline identity commands', () => {
  const dataDir = harness.newDataDir();
  const offline = (args: readonly string[], options: RunOptions = {}): Promise<CliResult> =>
    portunus(['--data-dir', dataDir, ...args], options);

  it('onboarding-token rotates the setup token, refuses while serve runs (75) and once a superadmin exists (3)', async () => {
    const first = await offline(['onboarding-token']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^setup_token=[A-Za-z0-9_-]{43}\n$/);
    const second = await offline(['onboarding-token']);
    assert.equal(second.code, 0, second.stderr);
    assert.notEqual(second.stdout, first.stdout);
    const cliToken = second.stdout.trim().slice('setup_token='.length);

    const server = await harness.serveWithin(dataDir);
    assertFails(await offline(['onboarding-token']), 75, 'store_in_use');
    const http = new OperatorHttp(listenersOf(server).operator_http);
    const onboarding = {
      user_id: 'admin',
      display_name: 'Admin',
      password: 'admin password 1',
      password_confirm: 'admin password 1',
    };
    // serve issued its own token at start, replacing the one the command printed.
    const stale = await http.request('POST', '/v1/auth/onboarding', {
      body: { ...onboarding, setup_token: cliToken },
    });
    assert.equal(stale.errorCode, 'setup_token_invalid');
    const created = await http.request('POST', '/v1/auth/onboarding', {
      body: { ...onboarding, setup_token: setupTokenOf(server) },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await stop(server);

    assertFails(await offline(['onboarding-token']), 3, 'already_bootstrapped');
  });

  it('reset-password sets or generates a password offline, revokes sessions and audits without the password', async () => {
    let server = await harness.serveWithin(dataDir);
    let http = new OperatorHttp(listenersOf(server).operator_http);
    const admin = await login(http, 'admin', 'admin password 1');
    const created = await http.request('POST', '/v1/users', {
      auth: { cookie: admin.cookie },
      body: { user_id: 'carol', display_name: 'Carol', initial_password: 'carol password 1' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const carolSession = await login(http, 'carol', 'carol password 1');

    assertFails(
      await offline(['reset-password', 'carol', '--password-stdin'], {
        stdin: 'carol password 2\n',
      }),
      75,
      'store_in_use',
    );
    await stop(server);

    // One at a time: each takes the data dir's lock.
    const carol = await offline(['reset-password', 'carol', '--password-stdin'], {
      stdin: 'carol password 2\n',
    });
    const temporary = await offline(['reset-password', 'admin', '--temporary']);
    const unknown = await offline(['reset-password', 'nobody', '--password-stdin'], {
      stdin: 'whatever password\n',
    });
    // These fail before they open the store.
    const [short, both] = await Promise.all([
      offline(['reset-password', 'carol', '--password-stdin'], { stdin: 'too short\n' }),
      offline(['reset-password', 'carol', '--password-stdin', '--temporary']),
    ]);
    assert.equal(carol.code, 0, carol.stderr);
    assert.equal(carol.stdout, 'password_reset=ok user_id=carol sessions_revoked=1\n');
    assert.equal(temporary.code, 0, temporary.stderr);
    const match =
      /^password_reset=ok user_id=admin sessions_revoked=1 temporary_password=([A-Za-z0-9_-]{43})\n$/.exec(
        temporary.stdout,
      );
    assert.ok(match, temporary.stdout);
    const temporaryPassword = match[1]!;
    assertFails(unknown, 5, 'user_not_found');
    assertFails(short, 2, 'password_too_short');
    assertFails(both, 2, 'usage_error');
    for (const result of [carol, temporary]) {
      assert.ok(!result.stderr.includes('carol password 2'));
      assert.ok(!result.stderr.includes(temporaryPassword));
    }

    server = await harness.serveWithin(dataDir);
    http = new OperatorHttp(listenersOf(server).operator_http);
    // carol: the old session and the old password are gone, the new password works.
    const oldSession = await http.request('GET', '/v1/users/me', {
      auth: { cookie: carolSession.cookie },
    });
    assert.equal(oldSession.status, 401);
    assert.equal(oldSession.errorCode, 'credential_invalid');
    const oldPassword = await http.request('POST', '/v1/auth/login', {
      body: { user_id: 'carol', password: 'carol password 1' },
    });
    assert.equal(oldPassword.errorCode, 'invalid_login');
    assert.equal((await login(http, 'carol', 'carol password 2')).passwordChangeRequired, false);

    // admin: the temporary password logs in, but only to change it.
    const forced = await login(http, 'admin', temporaryPassword);
    assert.equal(forced.passwordChangeRequired, true);
    const auth: HttpAuth = { cookie: forced.cookie };
    const blocked = await http.request('GET', '/v1/users', { auth });
    assert.equal(blocked.status, 403);
    assert.equal(blocked.errorCode, 'password_change_required');
    const me = await http.request('GET', '/v1/users/me', { auth });
    assert.equal(me.status, 200);
    assert.equal(me.body['user_id'], 'admin');
    const changed = await http.request('POST', '/v1/users/me/password', {
      auth,
      body: {
        current_password: temporaryPassword,
        new_password: 'admin password 2',
        new_password_confirm: 'admin password 2',
      },
    });
    assert.equal(changed.status, 204, JSON.stringify(changed.body));
    assert.equal((await http.request('GET', '/v1/users', { auth })).status, 200);

    const audit = await http.auditAll(auth);
    const resets = audit.filter((entry) => entry['action'] === 'operator.password_reset');
    assert.deepEqual(
      resets.map((entry) => [
        entry['actor'],
        entry['method'],
        entry['path'],
        entry['resource_kind'],
        entry['resource_value'],
      ]),
      [
        ['_local_cli', '', 'operator.password_reset', 'user', 'admin'],
        ['_local_cli', '', 'operator.password_reset', 'user', 'carol'],
      ],
    );
    const byUser = new Map(resets.map((entry) => [entry['resource_value'], entry['details']]));
    assert.deepEqual(byUser.get('carol'), {
      sessions_revoked: 1,
      temporary_password_generated: false,
      password_change_required: false,
      source: 'cli',
      remote_addr: null,
    });
    assert.deepEqual(byUser.get('admin'), {
      sessions_revoked: 1,
      temporary_password_generated: true,
      password_change_required: true,
      source: 'cli',
      remote_addr: null,
    });
    const text = JSON.stringify(audit);
    for (const secret of [
      'carol password 1',
      'carol password 2',
      temporaryPassword,
      'admin password 2',
    ]) {
      assert.ok(!text.includes(secret), 'no password in the audit log');
    }
    await stop(server);
  });
});
