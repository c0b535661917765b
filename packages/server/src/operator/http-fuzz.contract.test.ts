// Proves, by property-based fuzzing with fixed seeds, that no body, query or header shape sent to any registered operator route yields a 5xx other than a documented store code, an unhandled rejection, or a stored change when the request is rejected. PORTUNUS_FUZZ_RUNS raises the run count (bench/src/fuzz).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import fc from 'fast-check';
import type { InjectOptions } from 'fastify';

import { registeredRoutes, type RegisteredRoute } from './app.js';
import { ContractHarness } from './contract.harness.js';
import { DOCUMENTED_5XX, assertErrorEnvelope, fillPath, storeSnapshot } from './hostile.harness.js';

const RUNS = Number(process.env.PORTUNUS_FUZZ_RUNS ?? 100);
const SEED = Number(process.env.PORTUNUS_FUZZ_SEED ?? 20261203);

const h = new ContractHarness({ limits: { bodyLimitBytes: 64 * 1024 } });
let root = '';
let routes: readonly RegisteredRoute[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
before(async () => {
  process.on('unhandledRejection', onUnhandled);
  root = await h.addUser('root', 'superadmin');
  await h.addUser('alice', 'user');
  routes = registeredRoutes(await h.app()).filter((r) => r.method !== 'HEAD');
});
after(async () => {
  process.off('unhandledRejection', onUnhandled);
  await h.close();
});

const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '../../etc/passwd',
    '%00',
    '\u202e',
    '💥',
    '*',
    'root',
    '_system',
  ),
  fc.string({ minLength: 5000, maxLength: 20000 }),
);
const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    hostileString,
    fc.integer(),
    fc.double(),
    fc.constantFrom(null, true, false, 0, -1, 65536, Number.MAX_SAFE_INTEGER, 1e308),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
})).value;
/** Objects with plausible field names, so validation goes deeper than "must be object". */
const FIELDS = [
  'user_id',
  'password',
  'role',
  'display_name',
  'client',
  'client_id',
  'name',
  'listen_port',
  'listen_port_end',
  'target_host',
  'target_port',
  'protocol',
  'protocols',
  'targets',
  'label',
  'new_password',
  'current_password',
  'advertised_endpoint',
  'setup_token',
  'ttl_secs',
  'address',
  'listen_port_start',
  'note',
  'sni_pattern',
  'rate_limit',
  'temporary_password',
  'extra',
];
const hostileBody = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), hostileValue, { maxKeys: 6 }),
  hostileValue,
);
const authHeader = fc.oneof(
  fc.constant('root'),
  fc.constant('alice'),
  fc.constant(undefined),
  fc.constantFrom('Bearer ', 'Bearer x', 'Basic cm9vdDpyb290', 'bearer  ', 'Bearer \u00ff'),
  hostileString.map((s) => `Bearer ${s}`),
);

interface Case {
  route: number;
  param: string;
  body: unknown;
  rawBody: string | undefined;
  contentType: string | undefined;
  query: Record<string, string>;
  auth: string | undefined;
}

const oneCase: fc.Arbitrary<Case> = fc.record({
  route: fc.nat(),
  param: fc.oneof(
    hostileString.filter((s) => s.length < 300),
    fc.constantFrom('root', 'alice', '1'),
  ),
  body: hostileBody,
  rawBody: fc.option(fc.oneof(fc.string(), fc.constantFrom('{', '{"a":}', '[1,', '\u0000')), {
    nil: undefined,
  }),
  contentType: fc.option(
    fc.constantFrom(
      'application/json',
      'application/json; charset=latin1',
      'text/plain',
      'a/b',
      '',
    ),
    { nil: undefined },
  ),
  query: fc.dictionary(
    fc.constantFrom('limit', 'since', 'until', 'cursor', 'outcome', 'user_id', 'x'),
    hostileString.filter((s) => s.length < 300),
    { maxKeys: 3 },
  ),
  auth: authHeader,
});

async function send(c: Case): Promise<void> {
  const route = routes[c.route % routes.length]!;
  const tokens: Record<string, string> = { root, alice: tokenAlice };
  const headers: Record<string, string> = {};
  if (c.auth !== undefined)
    headers.authorization = tokens[c.auth] ? `Bearer ${tokens[c.auth]}` : c.auth;
  const hasBody = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(route.method);
  const options: InjectOptions = {
    method: route.method,
    url: fillPath(route.url, c.param),
    query: c.query,
    headers,
  };
  if (hasBody) {
    options.payload = c.rawBody ?? JSON.stringify(c.body);
    headers['content-type'] = c.contentType ?? 'application/json';
  }
  const before = storeSnapshot(h.store.db);
  const response = await h.inject(options);
  const what = `${route.method} ${route.url} → ${response.statusCode} ${response.body.slice(0, 200)}`;
  if (response.statusCode >= 400) {
    const code = assertErrorEnvelope(response, what);
    if (response.statusCode >= 500)
      assert.ok(DOCUMENTED_5XX.has(code), `undocumented 5xx: ${what}`);
    assert.deepEqual(storeSnapshot(h.store.db), before, `rejected but stored: ${what}`);
  }
}

let tokenAlice = '';

describe('operator API under fuzzed input', () => {
  before(async () => {
    tokenAlice = await h.addUser('bob', 'user');
  });

  it('every route: no undocumented 5xx, envelope on every error, nothing stored when rejected', async () => {
    await fc.assert(fc.asyncProperty(oneCase, send), {
      numRuns: RUNS * 2,
      seed: SEED,
    });
    assert.deepEqual(unhandled, []);
  });

  it('each route gets its own share of cases', async () => {
    for (let index = 0; index < routes.length; index += 1) {
      await fc.assert(
        fc.asyncProperty(oneCase, (c) => send({ ...c, route: index })),
        { numRuns: Math.max(4, Math.floor(RUNS / 20)), seed: SEED + index },
      );
    }
    assert.deepEqual(unhandled, []);
  });
});
