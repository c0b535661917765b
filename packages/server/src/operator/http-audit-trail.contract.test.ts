// Proves every audit row of the operator API says who, from where and on what: each mutating route and each kind of denial, sent from its own peer address through app.inject's remoteAddress, leaves one row whose actor, details.remote_addr (the socket peer, never X-Forwarded-For) and resource_kind/resource_value are the ones an operator would look for; a failed login names the user id it tried and never the password.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { InjectOptions, LightMyRequestResponse } from 'fastify';

import { insertClient, insertRule, type AuditEntry } from '@portunus/store';

import { ContractHarness, TEST_PASSWORD } from './contract.harness.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const WRONG_PASSWORD = 'not the password at all, clearly';

interface Expect {
  actor: string;
  outcome: 'allow' | 'deny';
  kind: string | null;
  value: string | null;
}

describe('audit rows name actor, remote address and resource', () => {
  const h = new ContractHarness();
  let root = '';
  let alice = '';
  let peer = 0;
  after(() => h.close());

  before(async () => {
    root = await h.addUser('root', 'superadmin');
    alice = await h.addUser('alice', 'user');
    insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-1', now: h.clock });
  });

  /**
   * Sends one request from a fresh loopback peer and returns the single audit row it added,
   * checked against the expectation.
   */
  async function step(
    send: (options: InjectOptions) => Promise<LightMyRequestResponse>,
    options: InjectOptions & { url: string },
    status: number,
    expect: Expect,
  ): Promise<{ row: AuditEntry; response: LightMyRequestResponse }> {
    peer += 1;
    const where = `${options.method ?? 'GET'} ${options.url}`;
    const remoteAddress = `127.0.0.${peer + 1}`;
    const before = h.auditRows().length;
    const response = await send({
      ...options,
      remoteAddress,
      headers: { ...options.headers, 'x-forwarded-for': '203.0.113.9' },
    });
    assert.equal(response.statusCode, status, `${where}: ${response.body}`);
    const rows = h.auditRows().slice(before);
    assert.equal(rows.length, 1, `${where} wrote ${rows.length} rows`);
    const row = rows[0] as AuditEntry;
    assert.equal(row.details['remote_addr'], remoteAddress, where);
    assert.equal(row.actor, expect.actor, where);
    assert.equal(row.outcome, expect.outcome, where);
    assert.equal(row.resourceKind, expect.kind, where);
    assert.equal(row.resourceValue, expect.value, where);
    return { row, response };
  }

  const asRoot = (options: InjectOptions) => h.bearer(root, options);
  const asAlice = (options: InjectOptions) => h.bearer(alice, options);
  const anonymous = (options: InjectOptions) => h.inject(options);
  const allow = (actor: string, kind: string, value: string): Expect => ({
    actor,
    outcome: 'allow',
    kind,
    value,
  });
  const deny = (actor: string, kind: string | null, value: string | null): Expect => ({
    actor,
    outcome: 'deny',
    kind,
    value,
  });
  const json = (response: LightMyRequestResponse): Record<string, unknown> =>
    JSON.parse(response.body) as Record<string, unknown>;

  it('users: create, reset password, change own password, delete, and their denials', async () => {
    await step(
      asRoot,
      {
        method: 'POST',
        url: '/v1/users',
        payload: { user_id: 'bob', display_name: 'Bob', initial_password: TEST_PASSWORD },
      },
      201,
      allow('root', 'user', 'bob'),
    );
    await step(
      asAlice,
      { method: 'POST', url: '/v1/users', payload: { user_id: 'carol', display_name: 'Carol' } },
      403,
      deny('alice', null, null),
    );
    await step(
      asRoot,
      { method: 'POST', url: '/v1/users/bob/password', payload: { temporary_password: true } },
      200,
      allow('root', 'user', 'bob'),
    );
    await step(
      asAlice,
      { method: 'POST', url: '/v1/users/bob/password', payload: { temporary_password: true } },
      403,
      deny('alice', 'user', 'bob'),
    );
    await step(
      asAlice,
      {
        method: 'POST',
        url: '/v1/users/me/password',
        payload: {
          current_password: WRONG_PASSWORD,
          new_password: 'another long enough password',
          new_password_confirm: 'another long enough password',
        },
      },
      401,
      deny('alice', 'user', 'alice'),
    );
    await step(
      asAlice,
      { method: 'DELETE', url: '/v1/users/bob' },
      403,
      deny('alice', 'user', 'bob'),
    );
    await step(
      asRoot,
      { method: 'DELETE', url: '/v1/users/bob' },
      200,
      allow('root', 'user', 'bob'),
    );
    await step(
      asRoot,
      { method: 'DELETE', url: '/v1/users/bob' },
      404,
      deny('root', 'user', 'bob'),
    );
  });

  it('login: a success and a failure name the user; the password is nowhere', async () => {
    await step(
      anonymous,
      {
        method: 'POST',
        url: '/v1/auth/login',
        payload: { user_id: 'alice', password: TEST_PASSWORD },
      },
      200,
      allow('alice', 'user', 'alice'),
    );
    const { row } = await step(
      anonymous,
      {
        method: 'POST',
        url: '/v1/auth/login',
        payload: { user_id: 'mallory', password: WRONG_PASSWORD },
      },
      401,
      deny('_anonymous', 'user', 'mallory'),
    );
    assert.equal(row.reason, 'invalid_login');
    const cookie = await h.login('alice');
    await step(
      (options) =>
        h.session(cookie, { ...options, headers: options.headers as Record<string, string> }),
      { method: 'POST', url: '/v1/auth/logout' },
      204,
      allow('alice', 'user', 'alice'),
    );
    assert.ok(!JSON.stringify(h.auditRows()).includes(WRONG_PASSWORD));
  });

  it('a bad bearer token is denied as _anonymous from its peer, and the token is not kept', async () => {
    const bogus = 'not-a-real-token-0123456789abcdef';
    await step(
      (options) => h.bearer(bogus, options),
      { method: 'DELETE', url: '/v1/rules/99' },
      401,
      deny('_anonymous', 'rule', '99'),
    );
    assert.ok(!JSON.stringify(h.auditRows()).includes(bogus));
  });

  it('credentials: create, revoke, and another user trying to revoke it', async () => {
    const created = await asAlice({
      method: 'POST',
      url: '/v1/credentials',
      payload: { label: 'ci' },
      remoteAddress: '127.0.3.1',
    });
    assert.equal(created.statusCode, 201, created.body);
    const credentialId = json(created)['credential_id'] as string;
    const createRow = h.auditRows().at(-1) as AuditEntry;
    assert.deepEqual(
      [
        createRow.actor,
        createRow.details['remote_addr'],
        createRow.resourceKind,
        createRow.resourceValue,
      ],
      ['alice', '127.0.3.1', 'credential', credentialId],
    );
    await step(
      asRoot,
      { method: 'DELETE', url: '/v1/credentials/01HZZZZZZZZZZZZZZZZZZZZZZZ' },
      404,
      deny('root', 'credential', '01HZZZZZZZZZZZZZZZZZZZZZZZ'),
    );
    await step(
      asAlice,
      { method: 'DELETE', url: `/v1/credentials/${credentialId}` },
      200,
      allow('alice', 'credential', credentialId),
    );
  });

  it('grants: create, revoke, and a user trying to revoke one', async () => {
    const created = await asRoot({
      method: 'POST',
      url: '/v1/grants',
      payload: {
        user_id: 'alice',
        client: 'edge-1',
        listen_port_start: 20000,
        listen_port_end: 20010,
        protocols: ['tcp'],
      },
      remoteAddress: '127.0.1.1',
    });
    assert.equal(created.statusCode, 201, created.body);
    const grantId = json(created)['grant_id'] as string;
    const createRow = h.auditRows().at(-1) as AuditEntry;
    assert.equal(createRow.details['remote_addr'], '127.0.1.1');
    assert.equal(createRow.resourceKind, 'grant');
    assert.equal(createRow.resourceValue, grantId);
    await step(
      asAlice,
      { method: 'DELETE', url: `/v1/grants/${grantId}` },
      403,
      deny('alice', 'grant', grantId),
    );
    await step(
      asRoot,
      { method: 'DELETE', url: `/v1/grants/${grantId}` },
      200,
      allow('root', 'grant', grantId),
    );
  });

  it('rules: removing one, a user removing another owner’s, and a push that is refused', async () => {
    const rule = insertRule(h.store.db, {
      clientId: EDGE,
      ownerUserId: 'root',
      protocol: 'tcp',
      listenPort: 21000,
      targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
      now: h.clock,
    });
    const id = String(rule.ruleId);
    await step(
      asAlice,
      { method: 'DELETE', url: `/v1/rules/${id}` },
      403,
      deny('alice', 'rule', id),
    );
    await step(
      asRoot,
      { method: 'DELETE', url: `/v1/rules/${id}` },
      204,
      allow('root', 'rule', id),
    );
    const { row } = await step(
      asRoot,
      {
        method: 'POST',
        url: '/v1/rules',
        payload: {
          client: 'edge-1',
          listen_port: 21001,
          protocol: 'tcp',
          target_host: '10.0.0.1',
          target_port: 80,
        },
      },
      422,
      deny('root', null, null),
    );
    assert.equal(row.reason, 'client_not_connected');
  });

  it('clients: enroll, re-enroll, address, rename, revoke, delete, and a user trying', async () => {
    const enrolled = await asRoot({
      method: 'POST',
      url: '/v1/client-enrollments',
      payload: { name: 'edge-2' },
      remoteAddress: '127.0.2.1',
    });
    assert.equal(enrolled.statusCode, 201, enrolled.body);
    const clientId = json(enrolled)['client_id'] as string;
    const enrollRow = h.auditRows().at(-1) as AuditEntry;
    assert.deepEqual(
      [enrollRow.details['remote_addr'], enrollRow.resourceKind, enrollRow.resourceValue],
      ['127.0.2.1', 'client', clientId],
    );
    await step(
      asRoot,
      { method: 'POST', url: `/v1/clients/${EDGE}/enrollment`, payload: {} },
      201,
      allow('root', 'client', EDGE),
    );
    await step(
      asRoot,
      { method: 'PUT', url: `/v1/clients/${EDGE}`, payload: { address: '10.1.1.1' } },
      200,
      allow('root', 'client', EDGE),
    );
    await step(
      asRoot,
      { method: 'PATCH', url: `/v1/clients/${EDGE}/name`, payload: { client_name: 'edge-one' } },
      200,
      allow('root', 'client', EDGE),
    );
    await step(
      asAlice,
      { method: 'POST', url: `/v1/clients/${EDGE}/revoke` },
      403,
      deny('alice', 'client', EDGE),
    );
    await step(
      asRoot,
      { method: 'POST', url: `/v1/clients/${EDGE}/revoke` },
      204,
      allow('root', 'client', EDGE),
    );
    await step(
      asRoot,
      { method: 'DELETE', url: `/v1/clients/${EDGE}` },
      204,
      allow('root', 'client', EDGE),
    );
  });

  it('settings: setting the advertised endpoint, and a user trying', async () => {
    const payload = { advertised_endpoint: 'localhost:7443' };
    const url = '/v1/settings/advertised-endpoint';
    await step(
      asAlice,
      { method: 'PUT', url, payload },
      403,
      deny('alice', 'setting', 'advertised_endpoint'),
    );
    await step(
      asRoot,
      { method: 'PUT', url, payload },
      200,
      allow('root', 'setting', 'advertised_endpoint'),
    );
  });
});
