// Proves `owner-cap list|get|set|delete` against the real operator app listening on loopback
// (a real store, the real fleet with an in-process client stream): each prints the reference
// §1.2 format or JSON, resolves the client by id or display name (none: client_not_found, two:
// ambiguous_client_name), `set` sends the caps and the client receives SET, `delete` is
// idempotent and sends REMOVE, bad or missing cap flags are refused locally with the shared
// check's code and send nothing, and server refusals exit with their catalogued code.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';

import { ERROR_CATALOGUE, silentLogger } from '@portunus/core';
import type { ServerMessage } from '@portunus/proto';
import { getOwnerRateLimit, insertClient, insertRule } from '@portunus/store';

import { ControlFleet } from '../control/fleet.js';
import { ContractHarness } from '../operator/contract.harness.js';
import { runServerCli } from './program.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const TWIN_A = '01HZZZZZZZZZZZZZZZZZZZZZZ2';
const TWIN_B = '01HZZZZZZZZZZZZZZZZZZZZZZ3';

let h: ContractHarness;
let token = '';
let endpoint = '';
const sent: ServerMessage[] = [];
let requests = 0;

async function cli(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runServerCli([...args, '--http-endpoint', endpoint], {
    env: { PORTUNUS_OPERATOR_TOKEN: token },
    logger: silentLogger,
    writeOut: (text) => (out += text),
    writeErr: (text) => (err += text),
  });
  return { code, out, err };
}

const envelopeActions = () =>
  sent.flatMap((message) =>
    'owner_rate_limit_update' in message
      ? [`${message.owner_rate_limit_update.action}:${message.owner_rate_limit_update.owner_id}`]
      : [],
  );

before(async () => {
  h = new ContractHarness();
  const fleet = new ControlFleet({
    db: h.store.db,
    logger: silentLogger,
    metrics: h.metrics,
    now: () => h.clock,
  });
  h.context.fleet = fleet;
  token = await h.addUser('root', 'superadmin');
  await h.addUser('alice', 'user');
  insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-1', now: h.clock });
  insertClient(h.store.db, { clientId: TWIN_A, clientName: 'twin', now: h.clock });
  insertClient(h.store.db, { clientId: TWIN_B, clientName: 'twin', now: h.clock });
  insertRule(h.store.db, {
    clientId: EDGE,
    ownerUserId: 'alice',
    protocol: 'tcp',
    listenPort: 24001,
    targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
    now: h.clock,
  });
  fleet.open(
    { clientId: EDGE, clientName: 'edge-1', remoteAddr: '127.0.0.1:5555' },
    { protocol_version: '1.0.0', client_version: '0.12.0', supported_protocols: ['TCP'] },
    { send: (message) => sent.push(message), end: () => undefined },
  );
  const app = await h.app();
  app.addHook('onRequest', (_request, _reply, done) => {
    requests += 1;
    done();
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  endpoint = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

beforeEach(() => {
  sent.length = 0;
  requests = 0;
});

after(() => h.close());

describe('owner-cap', () => {
  it('set sends the caps by client name, prints the reference line, and the client gets SET', async () => {
    const result = await cli([
      'owner-cap',
      'set',
      'edge-1',
      'alice',
      '--bandwidth-in-bps',
      '1000',
      '--bandwidth-in-burst',
      '5000',
      '--concurrent-connections',
      '4',
    ]);
    assert.equal(result.code, 0, result.err);
    assert.equal(
      result.out,
      `owner-cap set client=edge-1 owner=alice updated_at_unix_ms=${h.clock}\n`,
    );
    assert.deepEqual(getOwnerRateLimit(h.store.db, EDGE, 'alice')?.rateLimit, {
      bandwidthInBps: 1000,
      bandwidthInBurst: 5000,
      concurrentConnections: 4,
    });
    assert.deepEqual(envelopeActions(), ['SET:alice']);
  });

  it('get prints one labelled line per cap (by client id), or the view as JSON', async () => {
    const result = await cli(['owner-cap', 'get', EDGE, 'alice']);
    assert.equal(result.code, 0, result.err);
    assert.equal(
      result.out,
      [
        'ingress_bps=1000',
        'egress_bps=-',
        'new_conn_per_sec=-',
        'concurrent_max=4',
        'ingress_burst=5000',
        'egress_burst=-',
        'new_conn_burst=-',
        '',
      ].join('\n'),
    );
    const json = await cli(['owner-cap', 'get', 'edge-1', 'alice', '--format', 'json']);
    assert.deepEqual(JSON.parse(json.out), {
      client_id: EDGE,
      client_name: 'edge-1',
      owner_id: 'alice',
      rate_limit: { bandwidth_in_bps: 1000, concurrent_connections: 4, bandwidth_in_burst: 5000 },
      updated_at_unix_ms: h.clock,
    });
  });

  it('list prints OWNER RULES CAP STATUS, or {owners:[…]} as JSON', async () => {
    const result = await cli(['owner-cap', 'list', 'edge-1']);
    assert.equal(result.code, 0, result.err);
    assert.deepEqual(
      result.out
        .trimEnd()
        .split('\n')
        .map((line) => line.split(/\s{2,}/)),
      [
        ['OWNER', 'RULES', 'CAP', 'STATUS'],
        ['alice', '1', 'ingress_bps=1000,concurrent_max=4,ingress_burst=5000', 'capped'],
      ],
    );
    const json = await cli(['owner-cap', 'list', EDGE, '--format', 'json']);
    assert.deepEqual(JSON.parse(json.out), {
      owners: [{ owner_id: 'alice', has_rate_limit: true, rule_count: 1 }],
    });
  });

  it('delete prints the reference line, is idempotent, and the client gets REMOVE', async () => {
    for (let i = 0; i < 2; i++) {
      const result = await cli(['owner-cap', 'delete', 'edge-1', 'alice']);
      assert.equal(result.code, 0, result.err);
      assert.equal(result.out, 'owner-cap deleted client=edge-1 owner=alice\n');
    }
    assert.equal(getOwnerRateLimit(h.store.db, EDGE, 'alice'), undefined);
    assert.deepEqual(envelopeActions(), ['REMOVE:alice', 'REMOVE:alice']);
    const gone = await cli(['owner-cap', 'get', 'edge-1', 'alice']);
    assert.equal(gone.code, ERROR_CATALOGUE.owner_rate_limit_not_found.exitCode);
    assert.match(gone.err, /^error: owner_rate_limit_not_found/m);
  });

  it('refuses missing or bad caps locally with the shared check’s code, sending nothing', async () => {
    const cases: [string[], string][] = [
      [[], 'validation.rate_limit_no_caps_provided'],
      [['--bandwidth-in-bps', '0'], 'validation.rate_limit_cap_zero'],
      [['--bandwidth-out-burst', '10'], 'validation.rate_limit_burst_without_rate'],
      [
        ['--new-connections-per-sec', '1000', '--new-connections-burst', '5'],
        'validation.rate_limit_burst_range',
      ],
      [['--concurrent-connections', '4294967296'], 'validation.rate_limit_cap_out_of_range'],
      [['--bandwidth-in-bps', 'lots'], 'usage_error'],
    ];
    for (const [flags, code] of cases) {
      const result = await cli(['owner-cap', 'set', 'edge-1', 'alice', ...flags]);
      assert.equal(
        result.code,
        ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].exitCode,
        `${flags.join(' ')}: ${result.err}`,
      );
      assert.match(result.err, new RegExp(`^error: ${code.replaceAll('.', '\\.')}`, 'm'));
    }
    assert.equal(requests, 0);
    assert.equal(getOwnerRateLimit(h.store.db, EDGE, 'alice'), undefined);
  });

  it('exits with the catalogued code for an unknown or ambiguous client and a server refusal', async () => {
    const unknown = await cli(['owner-cap', 'list', 'nowhere']);
    assert.equal(unknown.code, ERROR_CATALOGUE.client_not_found.exitCode);
    assert.match(unknown.err, /^error: client_not_found/m);
    const twins = await cli(['owner-cap', 'list', 'twin']);
    assert.equal(twins.code, ERROR_CATALOGUE.ambiguous_client_name.exitCode);
    assert.match(twins.err, /^error: ambiguous_client_name/m);
    // By id, a twin is unambiguous; it is offline, so the server refuses the SET.
    const offline = await cli(['owner-cap', 'set', TWIN_A, 'alice', '--bandwidth-in-bps', '5']);
    assert.equal(offline.code, ERROR_CATALOGUE.rate_limit_unsupported_by_client.exitCode);
    assert.match(offline.err, /^error: rate_limit_unsupported_by_client/m);
    assert.equal(getOwnerRateLimit(h.store.db, TWIN_A, 'alice'), undefined);
  });
});
