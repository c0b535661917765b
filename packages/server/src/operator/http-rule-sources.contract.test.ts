// Proves source lists on the rule routes (beyond the reference): POST and PUT normalise each CIDR
// (IPv4 and IPv6) and show both lists in the push answer's rule, the Rule JSON and the list; a bad
// entry answers 400 validation.source_cidr_invalid naming it and why, duplicates after
// normalisation too, more than 64 entries 400 validation.source_list_too_long, a non-string entry
// 400 validation_failed; and a refused POST or PUT stores nothing and sends nothing. A rule cap
// beyond its wire type answers validation.rate_limit_cap_out_of_range.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import type { ServerMessage } from '@portunus/proto';
import { getRuleOrThrow, insertClient, listRules } from '@portunus/store';

import { ControlFleet } from '../control/fleet.js';
import { ContractHarness, errorCode } from './contract.harness.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';

let h: ContractHarness;
let fleet: ControlFleet;
let root: string;
const sent: ServerMessage[] = [];
let session: ReturnType<ControlFleet['open']>;

const body = (extra: Record<string, unknown> = {}) => ({
  client: 'edge-1',
  listen_port: 23001,
  targets: [{ host: '10.0.0.1', port: 80 }],
  ...extra,
});

const call = (method: 'POST' | 'PUT' | 'GET', url: string, payload?: object) =>
  h.bearer(root, { method, url, ...(payload !== undefined ? { payload } : {}) });

before(async () => {
  h = new ContractHarness();
  fleet = new ControlFleet({
    db: h.store.db,
    logger: h.context.logger,
    metrics: h.metrics,
    now: () => h.clock,
  });
  h.context.fleet = fleet;
  root = await h.addUser('root', 'superadmin');
  insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-1', now: h.clock });
  session = fleet.open(
    { clientId: EDGE, clientName: 'edge-1', remoteAddr: '127.0.0.1:5555' },
    { protocol_version: '1.0.0', client_version: '0.12.0', supported_protocols: ['TCP', 'UDP'] },
    {
      send: (message) => {
        sent.push(message);
        if (!('rule_update' in message) || !message.rule_update.rule) return;
        const { request_id: requestId, rule } = message.rule_update;
        queueMicrotask(() => {
          fleet.status(session, {
            request_id: requestId,
            rule_id: rule.rule_id,
            outcome: 'ACTIVATED',
            reason: '',
          });
        });
      },
      end: () => undefined,
    },
  );
});

beforeEach(() => {
  sent.length = 0;
});

after(() => h.close());

const BAD: [Record<string, unknown>, string, RegExp][] = [
  [{ allowed_sources: ['10.0.0.0/33'] }, 'validation.source_cidr_invalid', /allowed_sources\[0\]/],
  [
    { denied_sources: ['10.0.0.0/8', '10.0.0.1/8'] },
    'validation.source_cidr_invalid',
    /denied_sources\[1\] "10\.0\.0\.1\/8": host bits/,
  ],
  [{ allowed_sources: ['example.com/24'] }, 'validation.source_cidr_invalid', /not an IPv4/],
  [{ allowed_sources: ['fe80::1%eth0'] }, 'validation.source_cidr_invalid', /allowed_sources\[0\]/],
  [{ allowed_sources: [' 10.0.0.0/8'] }, 'validation.source_cidr_invalid', /allowed_sources\[0\]/],
  [
    { allowed_sources: ['2001:db8::/32', '2001:DB8:0::/32'] },
    'validation.source_cidr_invalid',
    /allowed_sources\[1\].*same network as allowed_sources\[0\]/,
  ],
  [
    { denied_sources: Array.from({ length: 65 }, (_, i) => `10.0.${i}.0/24`) },
    'validation.source_list_too_long',
    /65 entries; at most 64/,
  ],
  [{ allowed_sources: [42] }, 'validation_failed', /allowed_sources/],
  [{ allowed_sources: '10.0.0.0/8' }, 'validation_failed', /allowed_sources/],
  [
    { rate_limit: { new_connections_per_sec: 2 ** 32 } },
    'validation.rate_limit_cap_out_of_range',
    /rate_limit\.new_connections_per_sec 4294967296/,
  ],
];

describe('source lists on POST /v1/rules', () => {
  it('stores both lists normalised and shows them in the Rule JSON and the list', async () => {
    const response = await call(
      'POST',
      '/v1/rules',
      body({
        allowed_sources: ['10.0.0.0/8', '2001:DB8:0:0::/32', '192.0.2.7'],
        denied_sources: ['::ffff:10.1.0.0/112'],
      }),
    );
    assert.equal(response.statusCode, 201, response.body);
    const ruleId = response.json<{ rule_id: number }>().rule_id;
    const wire = sent.flatMap((m) => ('rule_update' in m ? [m.rule_update.rule] : []))[0];
    assert.ok(wire);
    assert.deepEqual(wire.allowed_sources, ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7/32']);
    assert.deepEqual(wire.denied_sources, ['::ffff:a01:0/112']);
    const one = (await call('GET', `/v1/rules/${ruleId}`)).json<Record<string, unknown>>();
    assert.deepEqual(one['allowed_sources'], ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7/32']);
    assert.deepEqual(one['denied_sources'], ['::ffff:a01:0/112']);
    const listed = (await call('GET', '/v1/rules')).json<Record<string, unknown>[]>();
    const fromList = listed.find((rule) => rule['id'] === ruleId);
    assert.ok(fromList);
    assert.deepEqual(fromList['allowed_sources'], one['allowed_sources']);
    assert.deepEqual(fromList['denied_sources'], one['denied_sources']);
  });

  it('answers every bad list with its code and the entry, storing and sending nothing', async () => {
    const before = listRules(h.store.db).length;
    for (const [extra, code, message] of BAD) {
      const response = await call('POST', '/v1/rules', body({ listen_port: 23002, ...extra }));
      assert.equal(response.statusCode, 400, `${JSON.stringify(extra)}: ${response.body}`);
      assert.equal(errorCode(response), code, JSON.stringify(extra));
      assert.match(response.json<{ error: { message: string } }>().error.message, message);
    }
    assert.equal(listRules(h.store.db).length, before);
    assert.deepEqual(sent, []);
  });
});

describe('source lists on PUT /v1/rules/{id}', () => {
  it('refuses a bad list and leaves the rule as it was, sending nothing', async () => {
    const created = await call(
      'POST',
      '/v1/rules',
      body({ listen_port: 23010, allowed_sources: ['10.0.0.0/8'] }),
    );
    assert.equal(created.statusCode, 201, created.body);
    const ruleId = created.json<{ rule_id: number }>().rule_id;
    const before = getRuleOrThrow(h.store.db, ruleId);
    sent.length = 0;
    for (const [extra, code] of BAD) {
      const response = await call(
        'PUT',
        `/v1/rules/${ruleId}`,
        body({ listen_port: 23010, ...extra }),
      );
      assert.equal(response.statusCode, 400, `${JSON.stringify(extra)}: ${response.body}`);
      assert.equal(errorCode(response), code, JSON.stringify(extra));
    }
    assert.deepEqual(getRuleOrThrow(h.store.db, ruleId), before);
    assert.deepEqual(sent, []);
  });

  it('answers an unchanged list without a push (normalised spellings are the same list)', async () => {
    const created = await call(
      'POST',
      '/v1/rules',
      body({ listen_port: 23020, denied_sources: ['2001:db8::/32'] }),
    );
    const ruleId = created.json<{ rule_id: number }>().rule_id;
    sent.length = 0;
    const same = await call(
      'PUT',
      `/v1/rules/${ruleId}`,
      body({ listen_port: 23020, denied_sources: ['2001:DB8::0/32'] }),
    );
    assert.equal(same.statusCode, 200, same.body);
    assert.deepEqual(sent, []);
  });
});
