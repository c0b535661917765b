// Proves the control plane end to end with the real binary over real sockets: first-run onboarding
// with the printed setup token, cookie sessions with CSRF, users/grants/credentials over HTTP, a
// restart that keeps every row (audit included) and prints no setup token any more, the metrics
// listener, durable audit rows for every acknowledged mutation across SIGKILL, the server.toml
// operator_token as `_legacy` (also when added after onboarding, DESIGN.md §8.4), the TLS control
// listener's pinned fingerprint and key-permission refusal, and listener flag/env failures.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, describe, it } from 'node:test';

import { insertClient, openStore } from '@portunus/store';
import type { RunningProcess } from '@portunus/test-support';

import {
  EPHEMERAL_LISTENERS,
  Harness,
  OperatorHttp,
  SLOW_STEP_MS,
  eventNames,
  fileMode,
  listenersOf,
  setupTokenOf,
  type HttpAuth,
} from './harness.js';

const harness = new Harness();
after(() => harness.close());

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const ULID_SHAPE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const ADMIN = {
  user_id: 'admin',
  display_name: 'Admin',
  password: 'correct horse battery staple',
};

type Json = Record<string, unknown>;

function api(server: RunningProcess): OperatorHttp {
  return new OperatorHttp(listenersOf(server).operator_http);
}

async function stop(server: RunningProcess): Promise<void> {
  server.kill('SIGTERM');
  assert.equal(await server.exited(SLOW_STEP_MS), 0, server.stderr());
}

async function genToken(): Promise<string> {
  const result = await harness.run(['gen-token']);
  assert.equal(result.code, 0, result.stderr);
  const token = result.stdout.trim();
  assert.match(token, TOKEN_SHAPE);
  return token;
}

function writeServerToml(dataDir: string, operatorToken: string): void {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dataDir, 'server.toml'), `operator_token = "${operatorToken}"\n`, {
    mode: 0o600,
  });
}

async function onboard(http: OperatorHttp, setupToken: string): Promise<void> {
  const answer = await http.request('POST', '/v1/auth/onboarding', {
    body: {
      user_id: ADMIN.user_id,
      display_name: ADMIN.display_name,
      password: ADMIN.password,
      password_confirm: ADMIN.password,
      setup_token: setupToken,
    },
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
}

/** Logs in and returns the `portunus_session=<secret>` pair for the Cookie header. */
async function login(http: OperatorHttp, userId: string, password: string): Promise<string> {
  const answer = await http.request('POST', '/v1/auth/login', {
    body: { user_id: userId, password },
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const [setCookie] = answer.headers.getSetCookie();
  assert.ok(setCookie, 'login sets a cookie');
  return setCookie.split(';')[0]!;
}

function detailsOf(entry: Json | undefined): Json {
  return (entry?.['details'] ?? {}) as Json;
}

describe('onboarding, identities over HTTP, and a restart', () => {
  const dataDir = harness.newDataDir();
  const clientId = '01J9E2E0000000000000000001';
  let server: RunningProcess;
  let http: OperatorHttp;
  let setupToken: string;
  let adminCookie: { cookie: string };
  let credentialToken: string;
  let usersBefore: Json[];
  let grantsBefore: Json[];
  let auditBefore: Json[];

  it('onboards the first superadmin with the setup token printed at startup', async () => {
    // A client row for the grant below; grants name clients by name or id.
    const store = openStore(dataDir);
    try {
      insertClient(store.db, { clientId, clientName: 'edge-1', now: Date.now() });
    } finally {
      store.close();
    }
    server = await harness.serveWithin(dataDir);
    http = api(server);
    setupToken = setupTokenOf(server) ?? '';
    assert.match(setupToken, TOKEN_SHAPE, server.stderr());
    assert.ok(eventNames(server).includes('operator.onboarding_setup_token_rotated'));
    assert.ok(
      server.events.every((line) => !JSON.stringify(line).includes(setupToken)),
      'the setup token is only in the banner, never in a log line',
    );

    const status = await http.request('GET', '/v1/auth/status');
    assert.deepEqual(status.body, { onboarding_required: true });
    const early = await http.request('GET', '/v1/users/me');
    assert.equal(early.status, 503);
    assert.equal(early.errorCode, 'bootstrap_required');

    const onboarding = {
      user_id: ADMIN.user_id,
      display_name: ADMIN.display_name,
      password: ADMIN.password,
      password_confirm: ADMIN.password,
    };
    const missing = await http.request('POST', '/v1/auth/onboarding', { body: onboarding });
    assert.equal(missing.status, 401);
    assert.equal(missing.errorCode, 'setup_token_required');
    const wrong = await http.request('POST', '/v1/auth/onboarding', {
      body: { ...onboarding, setup_token: 'A'.repeat(43) },
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.errorCode, 'setup_token_invalid');

    const created = await http.request('POST', '/v1/auth/onboarding', {
      body: { ...onboarding, setup_token: setupToken },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body, { user_id: 'admin', display_name: 'Admin', role: 'superadmin' });
    assert.deepEqual(created.headers.getSetCookie(), [], 'onboarding issues no session');

    const again = await http.request('POST', '/v1/auth/onboarding', {
      body: { ...onboarding, setup_token: setupToken },
    });
    assert.equal(again.status, 409);
    assert.equal(again.errorCode, 'already_bootstrapped');
    assert.deepEqual((await http.request('GET', '/v1/auth/status')).body, {
      onboarding_required: false,
    });
  });

  it('logs in with an HttpOnly SameSite=Lax cookie and manages users, grants and credentials', async () => {
    const badLogin = await http.request('POST', '/v1/auth/login', {
      body: { user_id: 'admin', password: 'not the password at all' },
    });
    assert.equal(badLogin.status, 401);
    assert.equal(badLogin.errorCode, 'invalid_login');

    const answer = await http.request('POST', '/v1/auth/login', {
      body: { user_id: ADMIN.user_id, password: ADMIN.password },
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { password_change_required: false });
    const cookies = answer.headers.getSetCookie();
    assert.equal(cookies.length, 1);
    const attributes = cookies[0]!.split(';').map((part) => part.trim());
    assert.match(attributes[0]!, /^portunus_session=[A-Za-z0-9_-]{43}$/);
    for (const expected of ['HttpOnly', 'SameSite=Lax', 'Path=/', 'Max-Age=604800']) {
      assert.ok(attributes.includes(expected), `${expected} in ${cookies[0]}`);
    }
    assert.ok(!attributes.includes('Secure'), 'no Secure flag on a plain-http origin');
    const cookie = attributes[0]!;
    adminCookie = { cookie };

    const alice = {
      user_id: 'alice',
      display_name: 'Alice',
      initial_password: 'alice password 123',
    };
    // A cookie alone is not enough to write: CSRF header and same origin are required.
    const noHeader = await http.request('POST', '/v1/users', {
      body: alice,
      headers: { cookie, origin: http.origin },
    });
    assert.equal(noHeader.status, 403);
    assert.equal(noHeader.errorCode, 'csrf_header_required');
    const foreign = await http.request('POST', '/v1/users', {
      auth: adminCookie,
      body: alice,
      headers: { origin: 'http://evil.example' },
    });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.errorCode, 'csrf_origin_mismatch');

    const user = await http.request('POST', '/v1/users', { auth: adminCookie, body: alice });
    assert.equal(user.status, 201, JSON.stringify(user.body));
    assert.deepEqual(user.body, { user_id: 'alice', display_name: 'Alice', role: 'user' });

    const named = await http.request('POST', '/v1/grants', {
      auth: adminCookie,
      body: {
        user_id: 'alice',
        client: 'edge-1',
        listen_port_start: 20000,
        listen_port_end: 20010,
        protocols: ['tcp', 'udp'],
        note: 'e2e',
      },
    });
    assert.equal(named.status, 201, JSON.stringify(named.body));
    assert.match(String(named.body['grant_id']), ULID_SHAPE);
    assert.equal(named.body['client'], 'edge-1');
    assert.equal(named.body['client_id'], clientId);
    assert.deepEqual(named.body['protocols'], ['tcp', 'udp']);
    const wildcard = await http.request('POST', '/v1/grants', {
      auth: adminCookie,
      body: { user_id: 'alice', client: '*', listen_port_start: 30000, listen_port_end: 30000 },
    });
    assert.equal(wildcard.status, 201, JSON.stringify(wildcard.body));
    assert.equal(wildcard.body['client'], '*');
    assert.deepEqual(wildcard.body['protocols'], ['tcp']);

    const credential = await http.request('POST', '/v1/credentials', {
      auth: adminCookie,
      body: { label: 'automation' },
    });
    assert.equal(credential.status, 201, JSON.stringify(credential.body));
    assert.equal(credential.headers.get('cache-control'), 'no-store');
    assert.equal(credential.body['user_id'], 'admin');
    assert.equal(credential.body['status'], 'active');
    credentialToken = String(credential.body['token']);
    assert.match(credentialToken, TOKEN_SHAPE);
    const credentialId = String(credential.body['credential_id']);
    const listed = await http.request<Json[]>('GET', '/v1/credentials', { auth: adminCookie });
    const row = listed.body.find((item) => item['credential_id'] === credentialId);
    assert.ok(row, 'the new credential is listed');
    assert.ok(!('token' in row), 'the token is shown once, at creation');

    const bearer = { bearer: credentialToken };
    const me = await http.request('GET', '/v1/users/me', { auth: bearer });
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, { user_id: 'admin', role: 'superadmin', display_name: 'Admin' });
    const users = await http.request<Json[]>('GET', '/v1/users', { auth: bearer });
    assert.equal(users.body.find((item) => item['user_id'] === 'alice')?.['grant_count'], 2);

    // Alice's own session: a user, not a superadmin.
    const aliceCookie = { cookie: await login(http, 'alice', alice.initial_password) };
    const denied = await http.request('GET', '/v1/users', { auth: aliceCookie });
    assert.equal(denied.status, 403);
    assert.equal(denied.errorCode, 'role_required');
    const clients = await http.request<Json[]>('GET', '/v1/clients', { auth: aliceCookie });
    assert.deepEqual(
      clients.body.map((item) => item['client_id']),
      [clientId],
    );

    const revoked = await http.request('DELETE', `/v1/credentials/${credentialId}`, {
      auth: bearer,
    });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body['status'], 'revoked');
    const after = await http.request('GET', '/v1/users/me', { auth: bearer });
    assert.equal(after.status, 401);
    assert.equal(after.errorCode, 'credential_invalid');
    const relisted = await http.request<Json[]>('GET', '/v1/credentials', { auth: adminCookie });
    const revokedRow = relisted.body.find((item) => item['credential_id'] === credentialId);
    assert.equal(revokedRow?.['status'], 'revoked');
    assert.notEqual(revokedRow['last_used_at'], null);

    usersBefore = (await http.request<Json[]>('GET', '/v1/users', { auth: adminCookie })).body;
    grantsBefore = (await http.request<Json[]>('GET', '/v1/grants', { auth: adminCookie })).body;
    assert.equal(grantsBefore.length, 2);
  });

  it('audits every mutation and denial without a secret in any row', async () => {
    auditBefore = await http.auditAll(adminCookie);
    const has = (description: string, where: (entry: Json) => boolean): Json => {
      const entry = auditBefore.find(where);
      assert.ok(entry, `${description} in ${JSON.stringify(auditBefore, null, 1)}`);
      return entry;
    };
    has(
      'onboarding',
      (e) =>
        e['action'] === 'operator.onboarding' && e['actor'] === 'admin' && e['outcome'] === 'allow',
    );
    has(
      'wrong setup token',
      (e) => e['actor'] === '_anonymous' && e['reason'] === 'setup_token_invalid',
    );
    has('csrf denial', (e) => e['reason'] === 'csrf_header_required' && e['path'] === '/v1/users');
    has(
      'user creation',
      (e) => e['method'] === 'POST' && e['path'] === '/v1/users' && e['outcome'] === 'allow',
    );
    assert.equal(
      auditBefore.filter((e) => e['action'] === 'operator.grant_added').length,
      2,
      'two grant rows',
    );
    const created = has(
      'credential creation',
      (e) => e['action'] === 'operator.credential_created',
    );
    assert.equal(detailsOf(created)['label'], 'automation');
    has('credential revocation', (e) => e['action'] === 'operator.credential_revoked');
    has(
      'revoked token denial',
      (e) =>
        e['outcome'] === 'deny' &&
        e['reason'] === 'credential_invalid' &&
        e['path'] === '/v1/users/me',
    );
    has('role denial', (e) => e['actor'] === 'alice' && e['reason'] === 'role_required');
    const text = JSON.stringify(auditBefore);
    for (const secret of [setupToken, credentialToken, ADMIN.password, 'alice password 123']) {
      assert.ok(!text.includes(secret), 'no secret in the audit log');
    }
    // Successful reads are not persisted.
    assert.ok(!auditBefore.some((e) => e['method'] === 'GET' && e['outcome'] === 'allow'));
    // Without since/until/cursor: the legacy array root, newest first, never cached.
    const legacy = await http.request<Json[]>('GET', '/v1/audit?limit=1000', { auth: adminCookie });
    assert.equal(legacy.headers.get('cache-control'), 'no-store');
    assert.deepEqual(legacy.body, auditBefore);
  });

  it('names the created user in the audit row of POST /v1/users', () => {
    const row = auditBefore.find(
      (e) => e['method'] === 'POST' && e['path'] === '/v1/users' && e['outcome'] === 'allow',
    );
    const created = auditBefore.find((e) => e['action'] === 'operator.user_added');
    assert.equal((created ?? row)?.['resource_kind'], 'user');
    assert.equal((created ?? row)?.['resource_value'], 'alice');
  });

  it('keeps users, grants, sessions and every audit row across a restart, with no setup token', async () => {
    // A denial is queued, not awaited: SIGTERM right after it must still drain it to disk.
    const lastDenial = await http.request('GET', '/v1/grants', {
      auth: { bearer: 'B'.repeat(43) },
    });
    assert.equal(lastDenial.errorCode, 'credential_invalid');
    await stop(server);
    server = await harness.serveWithin(dataDir);
    http = api(server);
    assert.equal(setupTokenOf(server), undefined, server.stderr());
    assert.doesNotMatch(server.stderr(), /onboarding setup token/i);
    assert.ok(!eventNames(server).includes('operator.onboarding_setup_token_rotated'));

    // The web session survived the restart too.
    const users = await http.request<Json[]>('GET', '/v1/users', { auth: adminCookie });
    assert.equal(users.status, 200, JSON.stringify(users.body));
    assert.deepEqual(users.body, usersBefore);
    const grants = await http.request<Json[]>('GET', '/v1/grants', { auth: adminCookie });
    assert.deepEqual(grants.body, grantsBefore);
    const auditAfter = await http.auditAll(adminCookie);
    assert.deepEqual(auditAfter.slice(auditAfter.length - auditBefore.length), auditBefore);
    const drained = auditAfter.slice(0, auditAfter.length - auditBefore.length);
    assert.deepEqual(
      drained.map((e) => [e['actor'], e['path'], e['outcome'], e['reason']]),
      [['_anonymous', '/v1/grants', 'deny', 'credential_invalid']],
    );
    // The revoked credential stays revoked.
    const revoked = await http.request('GET', '/v1/users/me', {
      auth: { bearer: credentialToken },
    });
    assert.equal(revoked.errorCode, 'credential_invalid');
  });

  it('serves Prometheus text on the metrics listener and 404 on any other path', async () => {
    const unauthenticated = await http.request('GET', '/v1/users/me');
    assert.equal(unauthenticated.status, 401);
    const metricsBase = `http://${listenersOf(server).metrics}`;
    const response = await fetch(`${metricsBase}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /^# TYPE portunus_operator_requests_total counter$/m);
    const allowed = /^portunus_operator_requests_total\{outcome="allow",reason="ok"\} (\d+)$/m.exec(
      text,
    );
    assert.ok(allowed && Number(allowed[1]) >= 3, text);
    assert.match(
      text,
      /^portunus_operator_requests_total\{outcome="deny",reason="(unauthenticated|credential_invalid)"\} 1$/m,
    );
    assert.match(text, /^portunus_audit_buffer_drops_total 0$/m);
    assert.match(text, /^portunus_clients_connected 0$/m);
    for (const processMetric of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.match(text, new RegExp(`^${processMetric} `, 'm'));
    }
    // Same registry behind the superadmin route.
    const viaApi = await fetch(`${http.origin}/v1/metrics`, {
      headers: { cookie: adminCookie.cookie },
    });
    assert.equal(viaApi.status, 200);
    assert.match(await viaApi.text(), /^portunus_clients_connected 0$/m);

    for (const [method, urlPath] of [
      ['GET', '/'],
      ['GET', '/metrics/extra'],
      ['GET', '/v1/users'],
      ['POST', '/metrics'],
    ] as const) {
      const other = await fetch(`${metricsBase}${urlPath}`, { method });
      await other.arrayBuffer();
      assert.equal(other.status, 404, `${method} ${urlPath}`);
    }

    // The operator API answers unknown /v1 paths and malformed bodies with the error envelope.
    const unknownPath = await http.request('GET', '/v1/no-such-route', { auth: adminCookie });
    assert.equal(unknownPath.status, 404);
    assert.equal(unknownPath.errorCode, 'not_found');
    const malformed = await fetch(`${http.origin}/v1/users`, {
      method: 'POST',
      headers: {
        cookie: adminCookie.cookie,
        origin: http.origin,
        'x-portunus-csrf': '1',
        'content-type': 'application/json',
      },
      body: '{"user_id":',
    });
    assert.equal(malformed.status, 400);
    assert.equal(((await malformed.json()) as { error: Json }).error['code'], 'invalid_body');

    const logout = await http.request('POST', '/v1/auth/logout', { auth: adminCookie });
    assert.equal(logout.status, 204);
    assert.match(logout.headers.getSetCookie()[0] ?? '', /^portunus_session=; .*Max-Age=0/);
    const loggedOut = await http.request('GET', '/v1/users/me', { auth: adminCookie });
    assert.equal(loggedOut.errorCode, 'credential_invalid');
    await stop(server);
  });
});

interface Ack {
  kind: 'credential' | 'grant';
  id: string;
  label: string;
}

/**
 * Fires `count` mutations at once (credentials, every fourth one a grant) and records each one
 * the server acknowledged with a 2xx answer; `onAck` runs synchronously on every answer.
 */
async function burst(
  http: OperatorHttp,
  auth: HttpAuth,
  prefix: string,
  count: number,
  onAck: (acks: readonly Ack[]) => void,
): Promise<Ack[]> {
  const acks: Ack[] = [];
  await Promise.allSettled(
    Array.from({ length: count }, async (_, index) => {
      const label = `${prefix}-${index}`;
      if (index % 4 === 3) {
        const answer = await http.request('POST', '/v1/grants', {
          auth,
          body: {
            user_id: '_legacy',
            client: '*',
            listen_port_start: 1000 + index,
            listen_port_end: 1000 + index,
            note: label,
          },
        });
        if (answer.status === 201)
          acks.push({ kind: 'grant', id: String(answer.body['grant_id']), label });
      } else {
        const answer = await http.request('POST', '/v1/credentials', { auth, body: { label } });
        if (answer.status === 201)
          acks.push({ kind: 'credential', id: String(answer.body['credential_id']), label });
      }
      onAck(acks);
    }),
  );
  return acks;
}

async function assertAudited(http: OperatorHttp, auth: HttpAuth, acks: readonly Ack[]) {
  // Pages of 100: walks next_cursor through several pages, and agrees with one big page.
  const audit = await http.auditAll(auth, 100);
  assert.ok(audit.length > 200, `${audit.length} audit rows`);
  assert.deepEqual(await http.auditAll(auth, 1000), audit);
  const byResource = new Map(audit.map((entry) => [String(entry['resource_value']), entry]));
  const missing = acks.filter((ack) => {
    const entry = byResource.get(ack.id);
    if (!entry || entry['outcome'] !== 'allow') return true;
    if (ack.kind === 'credential') {
      return (
        entry['action'] !== 'operator.credential_created' || detailsOf(entry)['label'] !== ack.label
      );
    }
    return entry['action'] !== 'operator.grant_added';
  });
  assert.deepEqual(missing, [], `${missing.length} acknowledged mutations lost their audit row`);
  const credentials = await http.request<Json[]>('GET', '/v1/credentials', { auth });
  const credentialIds = new Set(credentials.body.map((row) => row['credential_id']));
  const grants = await http.request<Json[]>('GET', '/v1/grants', { auth });
  const grantIds = new Set(grants.body.map((row) => row['grant_id']));
  for (const ack of acks) {
    assert.ok((ack.kind === 'credential' ? credentialIds : grantIds).has(ack.id), ack.label);
  }
}

describe('durability of acknowledged mutations', () => {
  it('keeps the audit row of every acknowledged mutation across SIGKILL right after a burst', async () => {
    const token = await genToken();
    const dataDir = harness.newDataDir();
    writeServerToml(dataDir, token);
    const auth = { bearer: token };

    // 1: all 200 answered, SIGKILL the moment the last answer arrives.
    let server = await harness.serveWithin(dataDir);
    let target = server;
    const first = await burst(api(server), auth, 'all', 200, (acks) => {
      if (acks.length === 200) target.kill('SIGKILL');
    });
    assert.equal(first.length, 200);
    assert.equal(await server.exited(SLOW_STEP_MS), 137);

    // 2: SIGKILL in the middle of the next burst, with requests still in flight.
    server = await harness.serveWithin(dataDir);
    target = server;
    const second = await burst(api(server), auth, 'mid', 200, (acks) => {
      if (acks.length === 100) target.kill('SIGKILL');
    });
    assert.equal(await server.exited(SLOW_STEP_MS), 137);
    assert.ok(second.length >= 100, `${second.length} acknowledged`);

    server = await harness.serveWithin(dataDir);
    await assertAudited(api(server), auth, [...first, ...second]);
    await stop(server);
  });
});

describe('server.toml operator_token', () => {
  it('authenticates as the reserved superadmin _legacy and prints no setup token', async () => {
    const token = await genToken();
    const dataDir = harness.newDataDir();
    writeServerToml(dataDir, token);
    const server = await harness.serveWithin(dataDir);
    assert.equal(setupTokenOf(server), undefined, server.stderr());
    const bootstrap = await server.waitForEvent('operator.bootstrap_legacy');
    assert.equal(bootstrap['outcome'], 'ok');
    assert.ok(!server.stderr().includes(token), 'the operator token is never logged');
    const http = api(server);
    const me = await http.request('GET', '/v1/users/me', { auth: { bearer: token } });
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body['user_id'], '_legacy');
    assert.equal(me.body['role'], 'superadmin');
    const wrong = await http.request('GET', '/v1/users/me', { auth: { bearer: `${token}x` } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.errorCode, 'credential_invalid');
    assert.deepEqual((await http.request('GET', '/v1/auth/status')).body, {
      onboarding_required: false,
    });
    await stop(server);

    // Rotating the token in server.toml retires the old one at the next start.
    const rotated = randomBytes(32).toString('base64url');
    writeServerToml(dataDir, rotated);
    const restarted = await harness.serveWithin(dataDir);
    const after = api(restarted);
    const old = await after.request('GET', '/v1/users/me', { auth: { bearer: token } });
    assert.equal(old.errorCode, 'credential_invalid');
    const fresh = await after.request('GET', '/v1/users/me', { auth: { bearer: rotated } });
    assert.equal(fresh.body['user_id'], '_legacy');
    await stop(restarted);
  });

  it('still authenticates as _legacy when added after onboarding (DESIGN.md §8.4)', async () => {
    const dataDir = harness.newDataDir();
    let server = await harness.serveWithin(dataDir);
    await onboard(api(server), setupTokenOf(server) ?? '');
    await stop(server);

    const token = await genToken();
    writeServerToml(dataDir, token);
    server = await harness.serveWithin(dataDir);
    assert.equal(setupTokenOf(server), undefined, server.stderr());
    const http = api(server);
    const me = await http.request('GET', '/v1/users/me', { auth: { bearer: token } });
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body['user_id'], '_legacy');
    assert.equal(me.body['role'], 'superadmin');
    const users = await http.request<Json[]>('GET', '/v1/users', { auth: { bearer: token } });
    assert.deepEqual(users.body.map((user) => [user['user_id'], user['role']]).sort(), [
      ['_legacy', 'superadmin'],
      ['admin', 'superadmin'],
    ]);
    // The onboarded superadmin is untouched.
    await login(http, ADMIN.user_id, ADMIN.password);
    await stop(server);
  });
});

function splitHostPort(hostPort: string): { host: string; port: number } {
  const colon = hostPort.lastIndexOf(':');
  return {
    host: hostPort.slice(0, colon).replace(/^\[|\]$/g, ''),
    port: Number(hostPort.slice(colon + 1)),
  };
}

/** SHA-256 (hex) of the DER certificate the control listener presents. */
function peerFingerprint(hostPort: string): Promise<string> {
  const { host, port } = splitHostPort(hostPort);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    socket.setTimeout(SLOW_STEP_MS, () => {
      socket.destroy(new Error('TLS handshake timed out'));
    });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const certificate = socket.getPeerCertificate();
      socket.destroy();
      resolve(createHash('sha256').update(certificate.raw).digest('hex'));
    });
  });
}

describe('TLS on the control listener', () => {
  it('presents the logged fingerprint, keeps it across restarts, and refuses a readable key (78)', async () => {
    const dataDir = harness.newDataDir();
    let server = await harness.serveWithin(dataDir);
    const listening = await server.waitForEvent('server.listening');
    const fingerprint = String(listening['tls_fingerprint_sha256']);
    assert.match(fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(await peerFingerprint(listenersOf(server).control), fingerprint);
    assert.equal(fileMode(path.join(dataDir, 'server.crt')), 0o644);
    assert.equal(fileMode(path.join(dataDir, 'server.key')), 0o600);
    await stop(server);

    server = await harness.serveWithin(dataDir);
    const again = await server.waitForEvent('server.listening');
    assert.equal(again['tls_fingerprint_sha256'], fingerprint);
    assert.ok(!eventNames(server).includes('tls.cert_generated'));
    assert.equal(await peerFingerprint(listenersOf(server).control), fingerprint);
    await stop(server);

    fs.chmodSync(path.join(dataDir, 'server.key'), 0o644);
    const refused = await harness.run(['--data-dir', dataDir, 'serve', ...EPHEMERAL_LISTENERS]);
    assert.equal(refused.code, 78, refused.stderr);
    const event = refused.events.find((line) => line['event'] === 'startup.tls_key_permissions');
    assert.ok(event, refused.stderr);
    assert.equal(event['path'], path.join(dataDir, 'server.key'));
    assert.match(refused.stderr, /error: tls_key_permissions: .*chmod 600/);
    assert.ok(!eventNames(refused).includes('server.listening'));
  });
});

function listenOnLoopback(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const blocker = net.createServer();
    blocker.once('error', reject);
    blocker.listen({ host: '127.0.0.1', port: 0 }, () => {
      resolve(blocker);
    });
  });
}

describe('listener flags and environment', () => {
  it('rejects a malformed listen address with exit 2 and a busy port with exit 1 (server.listen_failed)', async () => {
    const blocker = await listenOnLoopback();
    const busyPort = (blocker.address() as net.AddressInfo).port;
    try {
      const garbageDir = harness.newDataDir();
      const [garbage, wildMetrics, busyOperator, busyMetrics] = await Promise.all([
        harness.run(
          [
            '--data-dir',
            garbageDir,
            'serve',
            '--control-listen',
            '127.0.0.1:0',
            '--metrics-listen',
            '127.0.0.1:0',
          ],
          { env: { PORTUNUS_OPERATOR_HTTP_LISTEN: 'garbage' } },
        ),
        harness.run([
          '--data-dir',
          harness.newDataDir(),
          'serve',
          ...EPHEMERAL_LISTENERS,
          '--metrics-listen',
          '0.0.0.0:0',
        ]),
        harness.run([
          '--data-dir',
          harness.newDataDir(),
          'serve',
          '--control-listen',
          '127.0.0.1:0',
          '--operator-http-listen',
          `127.0.0.1:${busyPort}`,
          '--metrics-listen',
          '127.0.0.1:0',
        ]),
        harness.run(
          [
            '--data-dir',
            harness.newDataDir(),
            'serve',
            '--control-listen',
            '127.0.0.1:0',
            '--operator-http-listen',
            '127.0.0.1:0',
          ],
          { env: { PORTUNUS_METRICS_LISTEN: `127.0.0.1:${busyPort}` } },
        ),
      ]);

      assert.equal(garbage.code, 2, garbage.stderr);
      assert.match(garbage.stderr, /error: usage_error: PORTUNUS_OPERATOR_HTTP_LISTEN="garbage"/);
      assert.equal(fs.existsSync(path.join(garbageDir, 'state.db')), false);

      assert.equal(wildMetrics.code, 2, wildMetrics.stderr);
      assert.match(
        wildMetrics.stderr,
        /error: usage_error: .*metrics listener must be on loopback/,
      );

      for (const [result, listener] of [
        [busyOperator, 'operator_http'],
        [busyMetrics, 'metrics'],
      ] as const) {
        assert.equal(result.code, 1, result.stderr);
        const failed = result.events.find((line) => line['event'] === 'server.listen_failed');
        assert.ok(failed, result.stderr);
        assert.equal(failed['listener'], listener);
        assert.equal(failed['address'], `127.0.0.1:${busyPort}`);
        assert.match(result.stderr, /error: listen_failed: .*EADDRINUSE/);
        assert.ok(!eventNames(result).includes('server.listening'));
        // It unwound what it had opened: the store was closed on the way out.
        assert.ok(eventNames(result).includes('store.closed'), result.stderr);
      }
    } finally {
      blocker.close();
    }
    // A flag wins over a malformed environment value.
    const server = await harness.serveWithin(harness.newDataDir(), {
      PORTUNUS_OPERATOR_HTTP_LISTEN: 'garbage',
    });
    await stop(server);
  });
});
