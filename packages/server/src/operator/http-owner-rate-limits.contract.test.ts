// Proves the owner rate-limit routes of reference §2.3 against a real store and the real fleet
// (an in-process fake stream): PUT stores the envelope and sends OwnerRateLimitUpdate{SET}, GET
// reads it back with present caps only, a second PUT replaces every cap, the owners list is rule
// owners ∪ envelope owners with rule counts, DELETE is 204, idempotent and sends REMOVE; every
// bad input answers its catalogued code and a rejected request stores and sends nothing; unknown
// or malformed clients are 404 client_not_found, an old or offline client 422, a plain user 403;
// set and remove write audit rows and log their events.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import type { ServerMessage } from '@portunus/proto';
import { getOwnerRateLimit, insertClient, insertRule, upsertOwnerRateLimit } from '@portunus/store';
import { recordingLogger } from '@portunus/test-support';

import { ControlFleet } from '../control/fleet.js';
import { ContractHarness, errorCode } from './contract.harness.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const OLD = '01HZZZZZZZZZZZZZZZZZZZZZZ2';
const OFFLINE = '01HZZZZZZZZZZZZZZZZZZZZZZ3';
const path = (client: string, owner: string) =>
  `/v1/clients/${encodeURIComponent(client)}/owners/${encodeURIComponent(owner)}/rate-limit`;

const logger = recordingLogger();
let h: ContractHarness;
let fleet: ControlFleet;
let root: string;
let alice: string;
const sent: { clientId: string; message: ServerMessage }[] = [];
let failSends = false;

function connect(clientId: string, clientName: string, clientVersion: string): void {
  fleet.open(
    { clientId, clientName, remoteAddr: '127.0.0.1:5555' },
    { protocol_version: '1.0.0', client_version: clientVersion, supported_protocols: ['TCP'] },
    {
      send: (message) => {
        if (failSends) throw new Error('stream closed');
        sent.push({ clientId, message });
      },
      end: () => undefined,
    },
  );
}

const call = (token: string, method: 'GET' | 'PUT' | 'DELETE', url: string, payload?: object) =>
  h.bearer(token, { method, url, ...(payload !== undefined ? { payload } : {}) });

const envelopeUpdates = () =>
  sent.flatMap((entry) =>
    'owner_rate_limit_update' in entry.message
      ? [{ clientId: entry.clientId, ...entry.message.owner_rate_limit_update }]
      : [],
  );

before(async () => {
  h = new ContractHarness({ logger });
  fleet = new ControlFleet({ db: h.store.db, logger, metrics: h.metrics, now: () => h.clock });
  h.context.fleet = fleet;
  root = await h.addUser('root', 'superadmin');
  alice = await h.addUser('alice', 'user');
  await h.addUser('bob', 'user');
  insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-1', now: h.clock });
  insertClient(h.store.db, { clientId: OLD, clientName: 'edge-old', now: h.clock });
  insertClient(h.store.db, { clientId: OFFLINE, clientName: 'edge-off', now: h.clock });
  connect(EDGE, 'edge-1', '0.12.0');
  connect(OLD, 'edge-old', '0.10.3');
});

beforeEach(() => {
  sent.length = 0;
  failSends = false;
});

after(() => h.close());

describe('PUT/GET /v1/clients/{id}/owners/{owner}/rate-limit', () => {
  it('stores the envelope, sends SET with the caps, and GET reads back the present caps', async () => {
    const put = await call(root, 'PUT', path(EDGE, 'alice'), {
      bandwidth_in_bps: 1_000_000,
      bandwidth_in_burst: 2_000_000,
      concurrent_connections: 10,
    });
    assert.equal(put.statusCode, 200, put.body);
    const view = {
      client_id: EDGE,
      client_name: 'edge-1',
      owner_id: 'alice',
      rate_limit: {
        bandwidth_in_bps: 1_000_000,
        concurrent_connections: 10,
        bandwidth_in_burst: 2_000_000,
      },
      updated_at_unix_ms: h.clock,
    };
    assert.deepEqual(put.json(), view);
    const get = await call(root, 'GET', path(EDGE, 'alice'));
    assert.equal(get.statusCode, 200, get.body);
    assert.deepEqual(get.json(), view);
    assert.deepEqual(envelopeUpdates(), [
      {
        clientId: EDGE,
        client_name: 'edge-1',
        client_id: EDGE,
        owner_id: 'alice',
        action: 'SET',
        rate_limit: {
          bandwidth_in_bps: 1_000_000,
          bandwidth_out_bps: null,
          new_connections_per_sec: null,
          concurrent_connections: 10,
          bandwidth_in_burst: 2_000_000,
          bandwidth_out_burst: null,
          new_connections_burst: null,
        },
      },
    ]);
    const row = h.auditRows().findLast((entry) => entry.action === 'control.owner_rate_limit_set');
    assert.equal(row?.actor, 'root');
    assert.equal(row.outcome, 'allow');
    assert.equal(row.resourceValue, `${EDGE}/alice`);
    assert.ok(
      logger.lines.some(
        (line) =>
          line.event === 'control.owner_rate_limit_set' && line.fields['owner_id'] === 'alice',
      ),
    );
  });

  it('replaces every cap on a second PUT: caps left out are cleared', async () => {
    h.clock += 1000;
    const put = await call(root, 'PUT', path(EDGE, 'alice'), { new_connections_per_sec: 5 });
    assert.equal(put.statusCode, 200, put.body);
    assert.deepEqual(put.json<{ rate_limit: unknown }>().rate_limit, {
      new_connections_per_sec: 5,
    });
    assert.deepEqual(getOwnerRateLimit(h.store.db, EDGE, 'alice')?.rateLimit, {
      newConnectionsPerSec: 5,
    });
    assert.equal(getOwnerRateLimit(h.store.db, EDGE, 'alice')?.updatedAt, h.clock);
  });

  it('answers each bad body with its code, storing and sending nothing', async () => {
    const before = getOwnerRateLimit(h.store.db, EDGE, 'alice');
    const cases: [object, string][] = [
      [{}, 'validation.rate_limit_no_caps_provided'],
      [{ bandwidth_in_bps: null }, 'validation.rate_limit_no_caps_provided'],
      [{ bandwidth_in_bps: 0 }, 'validation.rate_limit_cap_zero'],
      [{ concurrent_connections: 0 }, 'validation.rate_limit_cap_zero'],
      [{ bandwidth_in_burst: 10 }, 'validation.rate_limit_burst_without_rate'],
      [{ bandwidth_out_bps: 100, bandwidth_out_burst: 6001 }, 'validation.rate_limit_burst_range'],
      [
        { new_connections_per_sec: 1000, new_connections_burst: 9 },
        'validation.rate_limit_burst_range',
      ],
      [{ concurrent_connections_burst: 5 }, 'validation.rate_limit_burst_unsupported'],
      [{ concurrent_connections: 2 ** 32 }, 'validation.rate_limit_cap_out_of_range'],
      [{ bandwidth_in_bps: 2 ** 60 }, 'validation.rate_limit_cap_out_of_range'],
      [{ bandwidth_in_bps: -1 }, 'validation_failed'],
      [{ bandwidth_in_bps: 1.5 }, 'validation_failed'],
      [{ bandwidth_in_bps: '100' }, 'validation_failed'],
      [{ bogus: 1 }, 'validation_failed'],
      [[1], 'validation_failed'],
    ];
    for (const [body, code] of cases) {
      const response = await call(root, 'PUT', path(EDGE, 'alice'), body);
      assert.equal(response.statusCode, 400, `${JSON.stringify(body)}: ${response.body}`);
      assert.equal(errorCode(response), code, JSON.stringify(body));
    }
    const fresh = await call(root, 'PUT', path(EDGE, 'bob'), { bandwidth_in_bps: 0 });
    assert.equal(errorCode(fresh), 'validation.rate_limit_cap_zero');
    assert.deepEqual(getOwnerRateLimit(h.store.db, EDGE, 'alice'), before);
    assert.equal(getOwnerRateLimit(h.store.db, EDGE, 'bob'), undefined);
    assert.deepEqual(envelopeUpdates(), []);
  });

  it('refuses an old, an offline or a vanishing client with 422, storing and sending nothing', async () => {
    for (const client of [OLD, OFFLINE]) {
      const response = await call(root, 'PUT', path(client, 'alice'), { bandwidth_in_bps: 10 });
      assert.equal(response.statusCode, 422, response.body);
      assert.equal(errorCode(response), 'rate_limit_unsupported_by_client');
      assert.equal(getOwnerRateLimit(h.store.db, client, 'alice'), undefined);
    }
    failSends = true;
    const lost = await call(root, 'PUT', path(EDGE, 'bob'), { bandwidth_in_bps: 10 });
    assert.equal(lost.statusCode, 422, lost.body);
    assert.equal(errorCode(lost), 'rate_limit_unsupported_by_client');
    assert.equal(getOwnerRateLimit(h.store.db, EDGE, 'bob'), undefined);
    assert.deepEqual(envelopeUpdates(), []);
  });

  it('answers 404 for unknown or malformed clients, a missing envelope and an unknown owner', async () => {
    for (const client of ['01HZZZZZZZZZZZZZZZZZZZZZZ9', 'not-a-ulid', 'edge-1']) {
      for (const method of ['GET', 'PUT', 'DELETE'] as const) {
        const response = await call(
          root,
          method,
          path(client, 'alice'),
          method === 'PUT' ? { bandwidth_in_bps: 10 } : undefined,
        );
        assert.equal(response.statusCode, 404, `${method} ${client}: ${response.body}`);
        assert.equal(errorCode(response), 'client_not_found');
      }
      const owners = await call(root, 'GET', `/v1/clients/${client}/owners`);
      assert.equal(errorCode(owners), 'client_not_found');
    }
    const missing = await call(root, 'GET', path(EDGE, 'bob'));
    assert.equal(missing.statusCode, 404);
    assert.equal(errorCode(missing), 'owner_rate_limit_not_found');
    const nobody = await call(root, 'PUT', path(EDGE, 'nobody'), { bandwidth_in_bps: 10 });
    assert.equal(nobody.statusCode, 404);
    assert.equal(errorCode(nobody), 'user_not_found');
    assert.deepEqual(envelopeUpdates(), []);
  });

  it('is for superadmins only: a user gets 403 role_required and changes nothing', async () => {
    const before = getOwnerRateLimit(h.store.db, EDGE, 'alice');
    for (const [method, url, body] of [
      ['GET', `/v1/clients/${EDGE}/owners`, undefined],
      ['GET', path(EDGE, 'alice'), undefined],
      ['PUT', path(EDGE, 'alice'), { bandwidth_in_bps: 99 }],
      ['DELETE', path(EDGE, 'alice'), undefined],
    ] as const) {
      const response = await call(alice, method, url, body);
      assert.equal(response.statusCode, 403, `${method} ${url}`);
      assert.equal(errorCode(response), 'role_required');
    }
    assert.deepEqual(getOwnerRateLimit(h.store.db, EDGE, 'alice'), before);
    assert.deepEqual(envelopeUpdates(), []);
  });
});

describe('GET /v1/clients/{id}/owners', () => {
  it('lists rule owners ∪ envelope owners with their rule counts', async () => {
    for (const [owner, port] of [
      ['bob', 21001],
      ['bob', 21002],
      ['root', 21003],
    ] as const) {
      insertRule(h.store.db, {
        clientId: EDGE,
        ownerUserId: owner,
        protocol: 'tcp',
        listenPort: port,
        targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
        now: h.clock,
      });
    }
    const response = await call(root, 'GET', `/v1/clients/${EDGE}/owners`);
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), [
      { owner_id: 'alice', has_rate_limit: true, rule_count: 0 },
      { owner_id: 'bob', has_rate_limit: false, rule_count: 2 },
      { owner_id: 'root', has_rate_limit: false, rule_count: 1 },
    ]);
    const empty = await call(root, 'GET', `/v1/clients/${OFFLINE}/owners`);
    assert.deepEqual(empty.json(), []);
  });
});

describe('DELETE /v1/clients/{id}/owners/{owner}/rate-limit', () => {
  it('answers 204, sends REMOVE, and is idempotent', async () => {
    const first = await call(root, 'DELETE', path(EDGE, 'alice'));
    assert.equal(first.statusCode, 204, first.body);
    assert.equal(first.body, '');
    assert.equal(getOwnerRateLimit(h.store.db, EDGE, 'alice'), undefined);
    const again = await call(root, 'DELETE', path(EDGE, 'alice'));
    assert.equal(again.statusCode, 204);
    assert.deepEqual(
      envelopeUpdates().map((update) => [update.clientId, update.owner_id, update.action]),
      [
        [EDGE, 'alice', 'REMOVE'],
        [EDGE, 'alice', 'REMOVE'],
      ],
    );
    const gone = await call(root, 'GET', path(EDGE, 'alice'));
    assert.equal(errorCode(gone), 'owner_rate_limit_not_found');
    const rows = h
      .auditRows()
      .filter((entry) => entry.action === 'control.owner_rate_limit_remove');
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0]?.details['removed'], true);
    assert.deepEqual(rows[1]?.details['removed'], false);
  });

  it('removes an offline client’s envelope without sending anything', async () => {
    upsertOwnerRateLimit(h.store.db, {
      clientId: OFFLINE,
      ownerUserId: 'bob',
      rateLimit: { bandwidthInBps: 5 },
      now: h.clock,
    });
    const response = await call(root, 'DELETE', path(OFFLINE, 'bob'));
    assert.equal(response.statusCode, 204);
    assert.equal(getOwnerRateLimit(h.store.db, OFFLINE, 'bob'), undefined);
    assert.deepEqual(envelopeUpdates(), []);
  });
});
