// Proves TLS SNI routing through the real product: a spawned server and an enrolled
// portunus-client; two SNI rules (an exact name and a wildcard) and a fallback pushed on one port
// through the operator API, a duplicate pattern and a second fallback refused with their 409s;
// real TLS clients with three server names reach the upstream whose certificate they see (plus
// one without SNI, which reaches the fallback); then the rule stats JSON and the Prometheus
// portunus_tls_* series show the routes, the peeks and the listener counters. Every process and
// socket is closed in `after`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  selfSignedCertificate,
  tlsAsk,
  tlsEchoServer,
  type RunningProcess,
} from '@portunus/test-support';

import {
  FleetHarness,
  countEvents,
  freePort,
  waitUntil,
  type FleetServer,
} from './fleet.harness.js';
import { listenersOf } from './harness.js';

const h = new FleetHarness();
let server: FleetServer;
let client: RunningProcess;
const closers: (() => Promise<void>)[] = [];

before(async () => {
  server = await h.fleetServer();
  const bundle = await h.enroll(server, 'edge-sni');
  client = await h.daemon(bundle);
});

after(async () => {
  await h.close();
  for (const close of closers.reverse()) await close();
});

async function upstream(name: string): Promise<number> {
  const tls = await tlsEchoServer(await selfSignedCertificate(name));
  closers.push(tls.close);
  return tls.port;
}

async function push(body: Record<string, unknown>) {
  return server.http.request<{ rule_id: number; error?: { code: string } }>('POST', '/v1/rules', {
    auth: server.auth,
    body: { client: 'edge-sni', target_host: '127.0.0.1', ...body },
  });
}

async function metrics(): Promise<string> {
  const response = await fetch(`http://${listenersOf(server.process).metrics}/metrics`);
  return response.text();
}

describe('SNI routing through the real product', () => {
  it('routes three server names to three upstreams on one port and reports it', async () => {
    const api = await upstream('api.sni.test');
    const apps = await upstream('apps.sni.test');
    const other = await upstream('fallback.sni.test');
    const port = await freePort();
    const exact = await push({ listen_port: port, target_port: api, sni_pattern: 'API.sni.test' });
    assert.equal(exact.status, 201, JSON.stringify(exact.body));
    const wildcard = await push({
      listen_port: port,
      target_port: apps,
      sni_pattern: '*.apps.sni.test',
    });
    assert.equal(wildcard.status, 201, JSON.stringify(wildcard.body));
    const fallback = await push({ listen_port: port, target_port: other });
    assert.equal(fallback.status, 201, JSON.stringify(fallback.body));
    const duplicate = await push({
      listen_port: port,
      target_port: other,
      sni_pattern: 'api.sni.test',
    });
    assert.equal(duplicate.status, 409);
    assert.equal(duplicate.body.error?.code, 'conflict.sni_route_duplicate');
    const second = await push({ listen_port: port, target_port: api });
    assert.equal(second.status, 409);
    assert.equal(second.body.error?.code, 'conflict.sni_fallback_duplicate');

    assert.equal((await tlsAsk(port, 'api.sni.test', 'one')).commonName, 'api.sni.test');
    assert.equal((await tlsAsk(port, 'x.apps.sni.test', 'two')).commonName, 'apps.sni.test');
    assert.equal(
      (await tlsAsk(port, 'www.elsewhere.test', 'three')).commonName,
      'fallback.sni.test',
    );
    assert.equal((await tlsAsk(port, undefined, 'four')).commonName, 'fallback.sni.test');
    assert.equal(countEvents(client, 'tls.sni_group.member_added'), 3);

    const ruleId = exact.body.rule_id;
    const routed = await waitUntil(async () => {
      const answer = await server.http.request<Record<string, number>>(
        'GET',
        `/v1/rules/${ruleId}/stats`,
        { auth: server.auth },
      );
      // A report taken while the connection was still dialling counts the route, not its bytes.
      return answer.status === 200 &&
        answer.body['sni_route_exact_total'] === 1 &&
        (answer.body['bytes_in'] ?? 0) > 0
        ? answer.body
        : undefined;
    }, 'the exact route and its bytes counted in the rule stats');
    assert.equal(routed['sni_route_exact_total'], 1);

    const text = await waitUntil(async () => {
      const body = await metrics();
      return body.includes(
        `portunus_tls_client_hello_peek_duration_seconds_count{client="edge-sni",port="${port}"} 4`,
      )
        ? body
        : undefined;
    }, 'the listener counters in metrics');
    const rule = (id: number) => `client="edge-sni",rule="${id}",owner="_legacy"`;
    const has = (line: string) => {
      assert.ok(text.includes(line), `missing ${line}\n${text}`);
    };
    has(`portunus_tls_sni_route_total{${rule(ruleId)},result="exact"} 1`);
    has(`portunus_tls_sni_route_total{${rule(wildcard.body.rule_id)},result="wildcard"} 1`);
    has(`portunus_tls_sni_route_total{${rule(fallback.body.rule_id)},result="fallback"} 2`);
    has(`portunus_tls_sni_listener_miss_total{client="edge-sni",port="${port}"} 0`);
    has(`portunus_tls_sni_listener_parse_failures_total{client="edge-sni",port="${port}"} 0`);
    has(
      `portunus_tls_client_hello_peek_duration_seconds_bucket{client="edge-sni",port="${port}",le="+Inf"} 4`,
    );
    has('portunus_tls_sni_routes_active 2');
  });
});
