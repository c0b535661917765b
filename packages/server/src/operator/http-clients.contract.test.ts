// Proves the client routes: enrollment codes for new and existing clients (URI shape, advertised
// endpoint tiers, supersede, redeemability), address, rename, revoke (ending the live session)
// and delete, each superadmin-only, each refusal leaving the store untouched, audit rows on
// success, and the grant-filtered client list.
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';

import type { InjectOptions, LightMyRequestResponse } from 'fastify';

import { PortunusError, formatRfc3339 } from '@portunus/core';
import { parseEnrollUri } from '@portunus/proto';
import {
  getClient,
  insertClient,
  insertGrant,
  redeemEnrollment,
  setAdvertisedEndpointOverride,
} from '@portunus/store';

import { hashSecret, ulid } from '../identity/secrets.js';
import {
  ContractHarness,
  errorCode,
  harnessPool,
  type HarnessOptions,
} from './contract.harness.js';
import { NO_FLEET, type Fleet } from './context.js';

const harnesses = harnessPool();
after(() => harnesses.closeAll());

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const PIN = 'ab'.repeat(32);

interface IssuedJson {
  client_id: string;
  client_name: string;
  expires_at: string;
  command: string;
  uri: string;
}

interface Setup {
  h: ContractHarness;
  root: string;
  alice: string;
  disconnects: [string, string][];
  as: (
    token: string,
    options: { method: NonNullable<InjectOptions['method']>; url: string; payload?: unknown },
  ) => Promise<LightMyRequestResponse>;
}

async function setup(options: HarnessOptions = {}): Promise<Setup> {
  const disconnects: [string, string][] = [];
  const fleet: Fleet = {
    ...NO_FLEET,
    disconnect: (clientId, reason) => {
      disconnects.push([clientId, reason]);
    },
  };
  const h = harnesses.fresh({ fleet, ...options });
  const root = await h.addUser('root', 'superadmin');
  const alice = await h.addUser('alice', 'user');
  const as: Setup['as'] = (token, request) =>
    h.bearer(token, {
      method: request.method,
      url: request.url,
      headers: { host: 'localhost:7080' },
      ...(request.payload !== undefined ? { payload: request.payload as object } : {}),
    });
  return { h, root, alice, disconnects, as };
}

/** Everything the client routes can write, to prove a refusal changed nothing. */
function snapshot(h: ContractHarness): unknown {
  return {
    clients: h.store.db.prepare('SELECT * FROM clients ORDER BY client_id').all(),
    enrollments: h.store.db
      .prepare('SELECT * FROM client_enrollments ORDER BY enrollment_id')
      .all(),
  };
}

function codeOf(issued: IssuedJson): string {
  return parseEnrollUri(issued.uri).code;
}

function redeem(h: ContractHarness, code: string, token = `token-${code}`) {
  return redeemEnrollment(h.store.db, {
    codeHash: hashSecret(code),
    tokenHash: hashSecret(token),
    now: h.clock,
  });
}

function redeemError(h: ContractHarness, code: string): string {
  try {
    redeem(h, code);
  } catch (error) {
    assert.ok(error instanceof PortunusError);
    return error.code;
  }
  return 'none';
}

function addClient(h: ContractHarness, clientName: string): string {
  const clientId = ulid(h.clock);
  insertClient(h.store.db, { clientId, clientName, tokenHash: hashSecret(clientId), now: h.clock });
  return clientId;
}

describe('POST /v1/client-enrollments', () => {
  let s: Setup;
  const enroll = (payload: unknown, token?: string): Promise<LightMyRequestResponse> =>
    s.as(token ?? s.root, { method: 'POST', url: '/v1/client-enrollments', payload });
  beforeEach(async () => {
    s = await setup();
  });

  it('mints a client id and a one-time code inside a pinned URI; redeeming creates the client', async () => {
    const response = await enroll({ name: 'Edge One' });
    assert.equal(response.statusCode, 201, response.body);
    const issued = response.json<IssuedJson>();
    assert.match(issued.client_id, ULID);
    assert.equal(issued.client_name, 'Edge One');
    assert.equal(issued.expires_at, formatRfc3339(s.h.clock + 600_000));
    assert.equal(issued.command, `portunus-client enroll '${issued.uri}'`);
    const uri = parseEnrollUri(issued.uri);
    // The Host header's host with the control port: the derived tier.
    assert.equal(uri.endpoint, 'localhost:7443');
    assert.equal(uri.pinSha256, PIN);
    assert.match(uri.code, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(Object.keys(issued).sort(), [
      'client_id',
      'client_name',
      'command',
      'expires_at',
      'uri',
    ]);
    // Only the code's hash is stored, and no client exists until it is redeemed.
    const stored = JSON.stringify(snapshot(s.h));
    assert.ok(!stored.includes(uri.code));
    assert.equal(getClient(s.h.store.db, issued.client_id), undefined);
    const redeemed = redeem(s.h, uri.code);
    assert.deepEqual(redeemed, {
      clientId: issued.client_id,
      clientName: 'Edge One',
      advertisedEndpoint: 'localhost:7443',
      clientAddress: null,
      existed: false,
    });
    assert.equal(redeemError(s.h, uri.code), 'enrollment_used');

    const row = s.h.auditRows().find((entry) => entry.action === 'audit.client_enrollment_created');
    assert.ok(row);
    assert.equal(row.actor, 'root');
    assert.equal(row.outcome, 'allow');
    assert.equal(row.resourceKind, 'client');
    assert.equal(row.resourceValue, issued.client_id);
    assert.ok(!JSON.stringify(row).includes(uri.code));
  });

  it('takes an optional address and ttl_secs 1..86400', async () => {
    const response = await enroll({ name: 'edge', address: '203.0.113.5', ttl_secs: 86_400 });
    assert.equal(response.statusCode, 201, response.body);
    const issued = response.json<IssuedJson>();
    assert.equal(issued.expires_at, formatRfc3339(s.h.clock + 86_400_000));
    assert.equal(redeem(s.h, codeOf(issued)).clientAddress, '203.0.113.5');
    const short = await enroll({ name: 'edge', address: null, ttl_secs: 1 });
    assert.equal(short.statusCode, 201, short.body);
    assert.equal(short.json<IssuedJson>().expires_at, formatRfc3339(s.h.clock + 1000));
  });

  it('refuses bad bodies with their codes and stores nothing', async () => {
    const before = snapshot(s.h);
    const cases: [unknown, number, string][] = [
      [{ name: 'edge', ttl_secs: 0 }, 400, 'invalid_enrollment_ttl'],
      [{ name: 'edge', ttl_secs: 86_401 }, 400, 'invalid_enrollment_ttl'],
      [{ name: 'edge', ttl_secs: 1.5 }, 400, 'invalid_enrollment_ttl'],
      [{ name: '' }, 400, 'invalid_client_name'],
      [{ name: '   ' }, 400, 'invalid_client_name'],
      [{ name: 'a\u0007b' }, 400, 'invalid_client_name'],
      [{ name: 'x'.repeat(256) }, 400, 'invalid_client_name'],
      [{ name: 'edge', address: 'edge.example.com:443' }, 400, 'invalid_client_address'],
      [{ name: 'edge', address: '203.0.113.5:80' }, 400, 'invalid_client_address'],
      [{ name: 'edge', address: '' }, 400, 'invalid_client_address'],
      [{}, 400, 'validation_failed'],
      [{ name: 'edge', extra: 1 }, 400, 'validation_failed'],
      [{ name: 'edge', ttl_secs: '600' }, 400, 'validation_failed'],
    ];
    for (const [payload, status, code] of cases) {
      const response = await enroll(payload);
      assert.equal(response.statusCode, status, `${JSON.stringify(payload)}: ${response.body}`);
      assert.equal(errorCode(response), code, JSON.stringify(payload));
    }
    assert.deepEqual(snapshot(s.h), before);
  });

  it('is superadmin-only: a user gets 403 role_required and a deny audit row', async () => {
    const before = snapshot(s.h);
    const response = await enroll({ name: 'edge' }, s.alice);
    assert.equal(response.statusCode, 403);
    assert.equal(errorCode(response), 'role_required');
    assert.deepEqual(snapshot(s.h), before);
    const deny = s.h.auditRows().find((row) => row.outcome === 'deny');
    assert.equal(deny?.actor, 'alice');
    assert.equal(deny.reason, 'role_required');
  });

  it('uses the override, and fails closed (422, nothing stored) on a bad override or seed', async () => {
    setAdvertisedEndpointOverride(s.h.store.db, 'edge.example.com:9443', s.h.clock);
    const ok = await enroll({ name: 'edge' });
    assert.equal(ok.statusCode, 201, ok.body);
    assert.equal(parseEnrollUri(ok.json<IssuedJson>().uri).endpoint, 'edge.example.com:9443');
    assert.equal(redeem(s.h, codeOf(ok.json())).advertisedEndpoint, 'edge.example.com:9443');

    setAdvertisedEndpointOverride(s.h.store.db, 'uncovered.test:7443', s.h.clock);
    const before = snapshot(s.h);
    const uncovered = await enroll({ name: 'edge' });
    assert.equal(uncovered.statusCode, 422);
    assert.equal(errorCode(uncovered), 'endpoint_not_in_cert_san');
    assert.deepEqual(snapshot(s.h), before);

    const seeded = await setup({ control: { seed: 'https://edge.example.com' } });
    const invalid = await seeded.as(seeded.root, {
      method: 'POST',
      url: '/v1/client-enrollments',
      payload: { name: 'edge' },
    });
    assert.equal(invalid.statusCode, 422);
    assert.equal(errorCode(invalid), 'endpoint_invalid');
    assert.deepEqual(snapshot(seeded.h), { clients: [], enrollments: [] });
  });
});

describe('POST /v1/clients/{client_id}/enrollment', () => {
  let s: Setup;
  let clientId: string;
  const reenroll = (
    id: string,
    payload?: unknown,
    token?: string,
  ): Promise<LightMyRequestResponse> =>
    s.as(token ?? s.root, {
      method: 'POST',
      url: `/v1/clients/${id}/enrollment`,
      ...(payload !== undefined ? { payload } : {}),
    });
  beforeEach(async () => {
    s = await setup();
    const issued = (
      await s.as(s.root, {
        method: 'POST',
        url: '/v1/client-enrollments',
        payload: { name: 'edge' },
      })
    ).json<IssuedJson>();
    clientId = issued.client_id;
    redeem(s.h, codeOf(issued), 'first-token');
  });

  it('issues a code for the existing client; redeeming rotates its token', async () => {
    s.h.clock += 5000;
    const response = await reenroll(clientId, { ttl_secs: 120 });
    assert.equal(response.statusCode, 201, response.body);
    const issued = response.json<IssuedJson>();
    assert.equal(issued.client_id, clientId);
    assert.equal(issued.client_name, 'edge');
    assert.equal(issued.expires_at, formatRfc3339(s.h.clock + 120_000));
    // Nothing rotates until the code is redeemed.
    assert.equal(s.disconnects.length, 0);
    const redeemed = redeem(s.h, codeOf(issued), 'second-token');
    assert.equal(redeemed.existed, true);
    assert.equal(redeemed.clientId, clientId);
    const audit = s.h.auditRows().find((row) => row.action === 'audit.client_reenrollment_created');
    assert.equal(audit?.resourceValue, clientId);
  });

  it('accepts no body at all (default ttl 600 s)', async () => {
    const response = await reenroll(clientId);
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(response.json<IssuedJson>().expires_at, formatRfc3339(s.h.clock + 600_000));
  });

  it('supersedes: a second code makes the first enrollment_used', async () => {
    const first = (await reenroll(clientId, {})).json<IssuedJson>();
    const second = (await reenroll(clientId, {})).json<IssuedJson>();
    assert.notEqual(codeOf(first), codeOf(second));
    assert.equal(redeemError(s.h, codeOf(first)), 'enrollment_used');
    assert.equal(redeem(s.h, codeOf(second)).existed, true);
  });

  it('answers 404 client_not_found for unknown and malformed ids, 400 for a bad ttl, 403 for a user', async () => {
    const before = snapshot(s.h);
    for (const id of ['01J9NOPE000000000000000000', 'not-a-ulid', '%20']) {
      const response = await reenroll(id, {});
      assert.equal(response.statusCode, 404, id);
      assert.equal(errorCode(response), 'client_not_found');
    }
    for (const ttl_secs of [0, 86_401]) {
      const response = await reenroll(clientId, { ttl_secs });
      assert.equal(response.statusCode, 400);
      assert.equal(errorCode(response), 'invalid_enrollment_ttl');
    }
    const denied = await reenroll(clientId, {}, s.alice);
    assert.equal(denied.statusCode, 403);
    assert.equal(errorCode(denied), 'role_required');
    assert.deepEqual(snapshot(s.h), before);
  });
});

describe('PUT /v1/clients/{id} and PATCH /v1/clients/{id}/name', () => {
  let s: Setup;
  let clientId: string;
  beforeEach(async () => {
    s = await setup();
    clientId = addClient(s.h, 'edge');
  });

  it('sets and clears the address and answers the client view', async () => {
    const set = await s.as(s.root, {
      method: 'PUT',
      url: `/v1/clients/${clientId}`,
      payload: { address: 'edge.example.net' },
    });
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual(set.json(), {
      client_id: clientId,
      client_name: 'edge',
      provisioned_at: formatRfc3339(s.h.clock),
      revoked_at: null,
      connected: false,
      client_address: 'edge.example.net',
      remote_addr: null,
      connected_at: null,
    });
    for (const address of [null, '']) {
      const cleared = await s.as(s.root, {
        method: 'PUT',
        url: `/v1/clients/${clientId}`,
        payload: { address },
      });
      assert.equal(cleared.statusCode, 200);
      assert.equal(cleared.json<{ client_address: unknown }>().client_address, null);
    }
    const audit = s.h.auditRows().filter((row) => row.action === 'audit.client_address_updated');
    assert.equal(audit.length, 3);
  });

  it('refuses a bad address, an unknown client and a user without writing', async () => {
    const before = snapshot(s.h);
    const cases: [string, string, unknown, number, string][] = [
      [s.root, clientId, { address: 'edge:80' }, 400, 'invalid_client_address'],
      [s.root, clientId, { address: '[::1]' }, 400, 'invalid_client_address'],
      [s.root, clientId, {}, 400, 'validation_failed'],
      [s.root, 'nope', { address: 'edge' }, 404, 'client_not_found'],
      [s.alice, clientId, { address: 'edge' }, 403, 'role_required'],
    ];
    for (const [token, id, payload, status, code] of cases) {
      const response = await s.as(token, { method: 'PUT', url: `/v1/clients/${id}`, payload });
      assert.equal(response.statusCode, status, JSON.stringify(payload));
      assert.equal(errorCode(response), code);
    }
    assert.deepEqual(snapshot(s.h), before);
  });

  it('renames verbatim; blank names, unknown ids and users are refused without writing', async () => {
    const renamed = await s.as(s.root, {
      method: 'PATCH',
      url: `/v1/clients/${clientId}/name`,
      payload: { client_name: ' Edge Ω ' },
    });
    assert.equal(renamed.statusCode, 200, renamed.body);
    assert.equal(renamed.json<{ client_name: string }>().client_name, ' Edge Ω ');
    const audit = s.h.auditRows().find((row) => row.action === 'audit.client_rename');
    assert.deepEqual(audit?.details['old_name'], 'edge');
    assert.deepEqual(audit.details['new_name'], ' Edge Ω ');

    const before = snapshot(s.h);
    const cases: [string, string, unknown, number, string][] = [
      [s.root, clientId, { client_name: '' }, 400, 'invalid_client_name'],
      [s.root, clientId, { client_name: ' \t ' }, 400, 'invalid_client_name'],
      [s.root, clientId, { name: 'x' }, 400, 'validation_failed'],
      [s.root, 'nope', { client_name: 'x' }, 404, 'client_not_found'],
      [s.alice, clientId, { client_name: 'x' }, 403, 'role_required'],
    ];
    for (const [token, id, payload, status, code] of cases) {
      const response = await s.as(token, {
        method: 'PATCH',
        url: `/v1/clients/${id}/name`,
        payload,
      });
      assert.equal(response.statusCode, status, JSON.stringify(payload));
      assert.equal(errorCode(response), code);
    }
    assert.deepEqual(snapshot(s.h), before);
  });
});

describe('revoke and delete', () => {
  let s: Setup;
  let clientId: string;
  beforeEach(async () => {
    s = await setup();
    clientId = addClient(s.h, 'edge');
  });

  it('revokes (204, idempotent), ends the live session, then deletes (204) and forgets it', async () => {
    const early = await s.as(s.root, { method: 'DELETE', url: `/v1/clients/${clientId}` });
    assert.equal(early.statusCode, 409);
    assert.equal(errorCode(early), 'client_not_revoked');
    assert.ok(getClient(s.h.store.db, clientId));

    const revoke = await s.as(s.root, { method: 'POST', url: `/v1/clients/${clientId}/revoke` });
    assert.equal(revoke.statusCode, 204, revoke.body);
    assert.equal(revoke.body, '');
    assert.deepEqual(s.disconnects, [[clientId, 'revoked']]);
    const revokedAt = getClient(s.h.store.db, clientId)?.revokedAt;
    assert.equal(revokedAt, s.h.clock);
    s.h.clock += 1000;
    const again = await s.as(s.root, { method: 'POST', url: `/v1/clients/${clientId}/revoke` });
    assert.equal(again.statusCode, 204);
    assert.equal(getClient(s.h.store.db, clientId)?.revokedAt, revokedAt);

    const list = await s.as(s.root, { method: 'GET', url: '/v1/clients' });
    assert.equal(list.json<{ revoked_at: string }[]>()[0]?.revoked_at, formatRfc3339(revokedAt));

    const removed = await s.as(s.root, { method: 'DELETE', url: `/v1/clients/${clientId}` });
    assert.equal(removed.statusCode, 204, removed.body);
    assert.equal(getClient(s.h.store.db, clientId), undefined);
    const gone = await s.as(s.root, { method: 'DELETE', url: `/v1/clients/${clientId}` });
    assert.equal(gone.statusCode, 404);
    assert.equal(errorCode(gone), 'client_not_found');

    const actions = s.h
      .auditRows()
      .filter((row) => row.outcome === 'allow')
      .map((row) => row.action);
    assert.deepEqual(
      actions.filter((action) => action?.startsWith('audit.')),
      ['audit.revoke', 'audit.revoke', 'audit.client_deleted'],
    );
  });

  it('refuses users and unknown ids without writing or disconnecting', async () => {
    const before = snapshot(s.h);
    for (const [method, url] of [
      ['POST', `/v1/clients/${clientId}/revoke`],
      ['DELETE', `/v1/clients/${clientId}`],
    ] as const) {
      const denied = await s.as(s.alice, { method, url });
      assert.equal(denied.statusCode, 403, url);
      assert.equal(errorCode(denied), 'role_required');
      const unknown = await s.as(s.root, { method, url: url.replace(clientId, 'x') });
      assert.equal(unknown.statusCode, 404, url);
      assert.equal(errorCode(unknown), 'client_not_found');
    }
    assert.deepEqual(snapshot(s.h), before);
    assert.deepEqual(s.disconnects, []);
  });
});

describe('GET /v1/clients', () => {
  it('shows a superadmin every client and a user only the granted ones', async () => {
    const s = await setup();
    const granted = addClient(s.h, 'granted');
    s.h.clock += 1;
    addClient(s.h, 'other');
    insertGrant(s.h.store.db, {
      grantId: ulid(s.h.clock),
      userId: 'alice',
      clientId: granted,
      listenPortStart: 10000,
      listenPortEnd: 10010,
      protocols: ['tcp'],
      note: '',
      now: s.h.clock,
    });
    const all = await s.as(s.root, { method: 'GET', url: '/v1/clients' });
    assert.deepEqual(
      all.json<{ client_name: string }[]>().map((client) => client.client_name),
      ['granted', 'other'],
    );
    const mine = await s.as(s.alice, { method: 'GET', url: '/v1/clients' });
    assert.deepEqual(
      mine.json<{ client_id: string }[]>().map((client) => client.client_id),
      [granted],
    );
  });
});
