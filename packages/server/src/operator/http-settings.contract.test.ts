// Proves the advertised-endpoint settings contract: every resolution tier (override, seed, derived, loopback, none), the PUT grammar and SAN errors, clearing, superadmin-only access and the audit rows.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import type { LightMyRequestResponse } from 'fastify';

import { getAdvertisedEndpointOverride, setAdvertisedEndpointOverride } from '@portunus/store';

import {
  errorCode,
  harnessPool,
  type ContractHarness,
  type HarnessOptions,
} from './contract.harness.js';

const URL = '/v1/settings/advertised-endpoint';

const harnesses = harnessPool();
after(() => harnesses.closeAll());

interface Setup {
  h: ContractHarness;
  root: string;
  get: (host?: string) => Promise<Record<string, unknown>>;
  put: (value: unknown, host?: string) => Promise<LightMyRequestResponse>;
}

async function setup(options: HarnessOptions = {}): Promise<Setup> {
  const h = harnesses.fresh(options);
  const root = await h.addUser('root', 'superadmin');
  const get = async (host = 'localhost:7080'): Promise<Record<string, unknown>> => {
    const response = await h.bearer(root, { method: 'GET', url: URL, headers: { host } });
    assert.equal(response.statusCode, 200, response.body);
    return response.json();
  };
  const put = (value: unknown, host = 'localhost:7080'): Promise<LightMyRequestResponse> =>
    h.bearer(root, {
      method: 'PUT',
      url: URL,
      headers: { host },
      payload: { advertised_endpoint: value },
    });
  return { h, root, get, put };
}

describe('GET /v1/settings/advertised-endpoint: the tiers', () => {
  it('derives <Host header host>:<control port> when the certificate covers the host', async () => {
    const { get } = await setup();
    const expected = {
      override: null,
      effective: 'localhost:7443',
      source: 'derived',
      diagnostic: null,
    };
    assert.deepEqual(await get('localhost:7080'), expected);
    assert.deepEqual(await get('edge.example.com'), {
      ...expected,
      effective: 'edge.example.com:7443',
    });
    assert.deepEqual(await get('127.0.0.1:80'), { ...expected, effective: '127.0.0.1:7443' });
  });

  it('falls back to loopback when the Host is uncovered or unusable', async () => {
    const { get } = await setup({ control: { port: 9443 } });
    const uncovered = await get('other.test:7080');
    assert.equal(uncovered['effective'], '127.0.0.1:9443');
    assert.equal(uncovered['source'], 'loopback');
    assert.match(String(uncovered['diagnostic']), /other\.test is not covered/);
    for (const host of ['[::1]:7080', 'user@edge.example.com', 'edge.example.com:http', '1.2.3']) {
      assert.deepEqual(
        await get(host),
        {
          override: null,
          effective: '127.0.0.1:9443',
          source: 'loopback',
          diagnostic: null,
        },
        host,
      );
    }
  });

  it('answers 200 with no effective endpoint when not even loopback is covered', async () => {
    const { get } = await setup({ control: { coversHost: (host) => host === 'only.example.com' } });
    const view = await get('other.test:7080');
    assert.equal(view['override'], null);
    assert.equal(view['effective'], null);
    assert.equal(view['source'], null);
    assert.match(String(view['diagnostic']), /^endpoint_not_in_cert_san: /);
    assert.equal((await get('only.example.com'))['effective'], 'only.example.com:7443');
  });

  it('uses a covered seed before deriving', async () => {
    const { get } = await setup({ control: { seed: 'seed.example.com:8443' } });
    assert.deepEqual(await get('localhost:7080'), {
      override: null,
      effective: 'seed.example.com:8443',
      source: 'seed',
      diagnostic: null,
    });
  });

  it('fails closed on a malformed or uncovered seed instead of deriving', async () => {
    const malformed = await setup({ control: { seed: 'https://seed.example.com:8443' } });
    const bad = await malformed.get('localhost:7080');
    assert.equal(bad['effective'], null);
    assert.equal(bad['source'], null);
    assert.match(String(bad['diagnostic']), /^endpoint_invalid: the seed/);
    const uncovered = await setup({ control: { seed: 'seed.other.test:8443' } });
    const view = await uncovered.get('localhost:7080');
    assert.equal(view['effective'], null);
    assert.equal(view['source'], null);
    assert.match(
      String(view['diagnostic']),
      /^endpoint_not_in_cert_san: the seed host seed\.other\.test/,
    );
  });

  it('puts a stored override before the seed', async () => {
    const { get, put } = await setup({ control: { seed: 'seed.example.com:8443' } });
    assert.equal((await put('edge.example.com:443')).statusCode, 200);
    assert.deepEqual(await get(), {
      override: 'edge.example.com:443',
      effective: 'edge.example.com:443',
      source: 'override',
      diagnostic: null,
    });
    assert.equal((await put(null)).json<{ source: string }>().source, 'seed');
  });

  it('reports a stored override the certificate no longer covers, without falling back', async () => {
    const { h, get } = await setup();
    setAdvertisedEndpointOverride(h.store.db, 'gone.other.test:443', h.clock);
    const uncovered = await get();
    assert.equal(uncovered['override'], 'gone.other.test:443');
    assert.equal(uncovered['effective'], null);
    assert.equal(uncovered['source'], null);
    assert.match(String(uncovered['diagnostic']), /^endpoint_not_in_cert_san: the override host/);
    setAdvertisedEndpointOverride(h.store.db, 'edge.example.com', h.clock);
    const malformed = await get();
    assert.equal(malformed['effective'], null);
    assert.match(String(malformed['diagnostic']), /^endpoint_invalid: the override/);
  });
});

describe('PUT /v1/settings/advertised-endpoint', () => {
  it('stores a covered host:port and answers the new view', async () => {
    const { h, put } = await setup();
    for (const value of [
      'edge.example.com:443',
      '127.0.0.1:9443',
      'EDGE-2.example.com:65535',
      'localhost:1',
    ]) {
      const response = await put(value);
      assert.equal(response.statusCode, 200, value);
      assert.deepEqual(response.json(), {
        override: value,
        effective: value,
        source: 'override',
        diagnostic: null,
      });
      assert.equal(getAdvertisedEndpointOverride(h.store.db), value);
    }
  });

  it('refuses anything but a bare host:port with 422 endpoint_invalid and keeps the override', async () => {
    const { h, put } = await setup();
    assert.equal((await put('edge.example.com:443')).statusCode, 200);
    const invalid = [
      'https://a.example.com:1',
      'a.example.com',
      'a.example.com:',
      ':443',
      'a.example.com:0',
      'a.example.com:08',
      'a.example.com:65536',
      'a.example.com:+1',
      'a.example.com:1/x',
      'a.example.com:1?x=1',
      'a.example.com:1#f',
      'user@a.example.com:1',
      '[::1]:7443',
      '::1:7443',
      '1.2.3:80',
      '999.1.1.1:80',
      'a..example.com:1',
      '-a.example.com:1',
      'a_b.example.com:1',
      'a .example.com:1',
      ' a.example.com:1',
      'a.example.com:1\t',
      `${`${'a'.repeat(63)}.`.repeat(4)}com:1`,
      `${'a'.repeat(64)}.example.com:1`,
      `${'a.'.repeat(130)}example.com:1`,
    ];
    for (const value of invalid) {
      const response = await put(value);
      assert.equal(response.statusCode, 422, value);
      assert.equal(errorCode(response), 'endpoint_invalid', value);
    }
    assert.equal(getAdvertisedEndpointOverride(h.store.db), 'edge.example.com:443');
  });

  it('refuses a well-formed host the certificate does not cover with 422 endpoint_not_in_cert_san', async () => {
    const { h, put } = await setup();
    for (const value of ['other.test:7443', 'a.b.example.com:443', '10.0.0.1:7443']) {
      const response = await put(value);
      assert.equal(response.statusCode, 422, value);
      assert.equal(errorCode(response), 'endpoint_not_in_cert_san', value);
    }
    assert.equal(getAdvertisedEndpointOverride(h.store.db), null);
  });

  it('clears the override with null, "" or blanks', async () => {
    const { h, put } = await setup();
    for (const clear of [null, '', '   ']) {
      assert.equal((await put('edge.example.com:443')).statusCode, 200);
      const response = await put(clear, 'localhost:7080');
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json(), {
        override: null,
        effective: 'localhost:7443',
        source: 'derived',
        diagnostic: null,
      });
      assert.equal(getAdvertisedEndpointOverride(h.store.db), null);
    }
  });

  it('refuses a malformed body with the JSON envelope', async () => {
    const { h, root, put } = await setup();
    assert.equal(errorCode(await put(443)), 'validation_failed');
    const missing = await h.bearer(root, { method: 'PUT', url: URL, payload: {} });
    assert.equal(missing.statusCode, 400);
    assert.equal(errorCode(missing), 'validation_failed');
    const extra = await h.bearer(root, {
      method: 'PUT',
      url: URL,
      payload: { advertised_endpoint: null, other: 1 },
    });
    assert.equal(errorCode(extra), 'validation_failed');
  });

  it('audits every change as operator.settings_updated and every refusal as a denial', async () => {
    const { h, put } = await setup();
    await put('edge.example.com:443');
    await put('nope');
    await put('other.test:1');
    await put(null);
    const rows = h.auditRows().filter((row) => row.path === URL);
    assert.deepEqual(
      rows.map((row) => [
        row.actor,
        row.method,
        row.outcome,
        row.reason,
        row.action,
        row.resourceValue,
      ]),
      [
        ['root', 'PUT', 'allow', null, 'operator.settings_updated', 'advertised_endpoint'],
        ['root', 'PUT', 'deny', 'endpoint_invalid', null, 'advertised_endpoint'],
        ['root', 'PUT', 'deny', 'endpoint_not_in_cert_san', null, 'advertised_endpoint'],
        ['root', 'PUT', 'allow', null, 'operator.settings_updated', 'advertised_endpoint'],
      ],
    );
    assert.equal(rows[0]?.details['advertised_endpoint'], 'edge.example.com:443');
    assert.equal(rows[3]?.details['advertised_endpoint'], null);
    assert.equal(rows[0].resourceKind, 'setting');
  });
});

describe('who may use the settings', () => {
  it('is for superadmins only: users get 403 role_required, no token 401', async () => {
    const { h } = await setup();
    const alice = await h.addUser('alice', 'user');
    const read = await h.bearer(alice, { method: 'GET', url: URL });
    assert.equal(read.statusCode, 403);
    assert.equal(errorCode(read), 'role_required');
    const write = await h.bearer(alice, {
      method: 'PUT',
      url: URL,
      payload: { advertised_endpoint: 'edge.example.com:443' },
    });
    assert.equal(write.statusCode, 403);
    assert.equal(errorCode(write), 'role_required');
    assert.equal(getAdvertisedEndpointOverride(h.store.db), null);
    const anonymous = await h.inject({ method: 'GET', url: URL });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(errorCode(anonymous), 'unauthenticated');
    const denied = h.auditRows().filter((row) => row.outcome === 'deny');
    assert.deepEqual(
      denied.map((row) => [row.actor, row.method, row.reason]),
      [
        ['alice', 'GET', 'role_required'],
        ['alice', 'PUT', 'role_required'],
        ['_anonymous', 'GET', 'unauthenticated'],
      ],
    );
  });
});
