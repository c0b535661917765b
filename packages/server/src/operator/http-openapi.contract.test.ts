// Proves the OpenAPI document (docs/operator-api.md): every /v1 route declares its params (when
// its path has any), querystring, body (writes) and response schemas; GET /v1/openapi.json is an
// OpenAPI 3.1 document with unique operationIds and resolvable $refs; /docs renders it from local
// files with X-Frame-Options: DENY; and real answers of real flows — users, grants, credentials,
// clients, rules with targets, SNI, PROXY, caps and source lists, rule stats with SNI, rate-limit
// and source counters, owner rate limits, quotas, traffic, audit, revisions, settings, metrics —
// each validate against the schema the document gives for that route and status, with every
// object closed (additionalProperties false), errors included. Schema refusals name the field.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Ajv, type ValidateFunction } from 'ajv';
import type { LightMyRequestResponse } from 'fastify';

import { silentLogger } from '@portunus/core';
import type { WireRuleStats } from '@portunus/proto';
import { insertClient } from '@portunus/store';

import { ControlFleet } from '../control/fleet.js';
import { TrafficAccounting } from '../traffic/accounting.js';
import { registeredRoutes } from './app.js';
import { ContractHarness, errorCode } from './contract.harness.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';

type Json = Record<string, unknown>;
interface Operation {
  operationId?: string;
  parameters?: { in: string; name: string }[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, { schema: Json }> }>;
}

let h: ContractHarness;
let fleet: ControlFleet;
let root: string;
let alice: string;
let session: ReturnType<ControlFleet['open']>;
let doc: { openapi: string; paths: Record<string, Record<string, Operation>> } & Json;
/** Every route template with its matcher, literal segments first (`/users/me` before `{userId}`). */
let templates: { path: string; pattern: RegExp; params: number }[];
const checked = new Map<string, Set<string>>();

const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
const validators = new Map<string, ValidateFunction>();

/** The schema with every object closed that does not say otherwise: no undocumented field. */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (schema === null || typeof schema !== 'object') return schema;
  const copy: Json = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = closed(value);
  const isObject = copy['type'] === 'object' || copy['properties'] !== undefined;
  if (isObject && copy['additionalProperties'] === undefined && !copy['patternProperties']) {
    copy['additionalProperties'] = false;
  }
  return copy;
}

function templateOf(url: string): string {
  const path = url.split('?')[0] ?? url;
  const found = templates.find((template) => template.pattern.test(path));
  assert.ok(found, `no documented path for ${path}`);
  return found.path;
}

/** Asserts that the answer is documented for its route and status and matches that schema. */
function conforms(method: string, url: string, response: LightMyRequestResponse): void {
  const path = templateOf(url);
  const operation = doc.paths[path]?.[method.toLowerCase()];
  assert.ok(operation, `${method} ${path} is not documented`);
  const status = String(response.statusCode);
  const answer = operation.responses[status];
  assert.ok(
    answer,
    `${method} ${path} answered ${status}, which it does not document: ${response.body}`,
  );
  const key = `${method} ${path} ${status}`;
  const statuses = checked.get(`${method} ${path}`) ?? new Set<string>();
  checked.set(`${method} ${path}`, statuses.add(status));
  if (response.statusCode === 204) {
    assert.equal(response.body, '', key);
    return;
  }
  const content = answer.content ?? {};
  const type = String(response.headers['content-type'] ?? '').split(';')[0] ?? '';
  const documented = content[type];
  assert.ok(
    documented,
    `${key}: content type ${type} is not documented (${Object.keys(content).join(', ')})`,
  );
  if (type !== 'application/json') return;
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv.compile(closed(documented.schema) as Json);
    validators.set(key, validate);
  }
  const body: unknown = JSON.parse(response.body);
  assert.ok(
    validate(body),
    `${key}: ${ajv.errorsText(validate.errors)}\n${response.body.slice(0, 2000)}`,
  );
}

async function call(
  token: string | undefined,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  payload?: unknown,
): Promise<LightMyRequestResponse> {
  const options = {
    method,
    url,
    ...(payload !== undefined ? { payload: payload as Json } : {}),
  };
  const response = token === undefined ? await h.inject(options) : await h.bearer(token, options);
  conforms(method, url, response);
  return response;
}

/** Calls and asserts the status; returns the parsed body. */
async function expect<T = Json>(
  status: number,
  token: string | undefined,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  payload?: unknown,
): Promise<T> {
  const response = await call(token, method, url, payload);
  assert.equal(response.statusCode, status, `${method} ${url}: ${response.body}`);
  return (response.body === '' ? undefined : response.json()) as T;
}

function stats(ruleId: number, extra: Partial<WireRuleStats> = {}): WireRuleStats {
  return {
    rule_id: String(ruleId),
    bytes_in: 1000,
    bytes_out: 2000,
    active_connections: 1,
    per_port: [
      {
        listen_port: 24443,
        bytes_in: 1000,
        bytes_out: 2000,
        active_connections: 1,
        datagrams_in: 0,
        datagrams_out: 0,
      },
    ],
    dns_failures: 0,
    datagrams_in: 0,
    datagrams_out: 0,
    active_flows: 0,
    flows_dropped_overflow: 0,
    target_failovers_total: 2,
    per_target: [
      {
        index: 0,
        host: '10.0.0.1',
        port: 80,
        priority: 0,
        health: 0,
        consecutive_failures: 0,
        last_failure_at_unix_ms: 0,
        last_success_at_unix_ms: h.clock,
        bytes_in: 1000,
        bytes_out: 2000,
        connections_accepted: 3,
      },
    ],
    ...extra,
  };
}

before(async () => {
  h = new ContractHarness();
  fleet = new ControlFleet({
    db: h.store.db,
    logger: silentLogger,
    metrics: h.metrics,
    now: () => h.clock,
    traffic: new TrafficAccounting({ db: h.store.db, logger: silentLogger, now: () => h.clock }),
  });
  h.context.fleet = fleet;
  root = await h.addUser('root', 'superadmin');
  alice = await h.addUser('alice', 'user');
  insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-1', now: h.clock });
  session = fleet.open(
    { clientId: EDGE, clientName: 'edge-1', remoteAddr: '127.0.0.1:5555' },
    { protocol_version: '1.0.0', client_version: '0.13.0', supported_protocols: ['TCP', 'UDP'] },
    {
      send: (message) => {
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
  const response = await h.inject({ method: 'GET', url: '/v1/openapi.json' });
  assert.equal(response.statusCode, 200, response.body);
  doc = response.json();
  templates = Object.keys(doc.paths)
    .map((path) => ({
      path,
      pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
      params: (path.match(/\{/g) ?? []).length,
    }))
    .sort((a, b) => a.params - b.params);
});

after(() => h.close());

describe('the OpenAPI document', () => {
  it('is generated for every /v1 route, each declaring params, query, body and response', async () => {
    const app = await h.app();
    const api = registeredRoutes(app).filter(
      (route) => route.url.startsWith('/v1/') && route.method !== 'HEAD',
    );
    assert.ok(api.length >= 50, `only ${api.length} routes`);
    for (const route of api) {
      const name = `${route.method} ${route.url}`;
      const needs = ['querystring', 'response'];
      if (route.url.includes(':')) needs.push('params');
      if (['POST', 'PUT', 'PATCH'].includes(route.method)) needs.push('body');
      for (const part of needs) {
        assert.ok(route.schemaParts.includes(part as 'body'), `${name} declares no ${part} schema`);
      }
      const path = route.url.replace(/:(\w+)/g, '{$1}');
      const operation = doc.paths[path]?.[route.method.toLowerCase()];
      assert.ok(operation, `${name} is missing from the document`);
      for (const name of route.url.match(/:(\w+)/g) ?? []) {
        assert.ok(
          operation.parameters?.some((p) => p.in === 'path' && p.name === name.slice(1)),
          `${route.url}: path parameter ${name} undocumented`,
        );
      }
      assert.ok(
        Object.keys(operation.responses).some((status) => /^2\d\d$/.test(status)),
        `${name} documents no success answer`,
      );
    }
  });

  it('is OpenAPI 3.1 with unique operationIds and resolvable $refs, and no UI route', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(typeof (doc['info'] as Json)['title'] === 'string');
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      assert.ok(path.startsWith('/v1/'), `${path} is not an API path`);
      for (const [method, operation] of Object.entries(item)) {
        assert.ok(operation.operationId, `${method} ${path} has no operationId`);
        assert.ok(!ids.has(operation.operationId), `operationId ${operation.operationId} twice`);
        ids.add(operation.operationId);
      }
    }
    const resolve = (pointer: string): unknown =>
      pointer
        .slice(2)
        .split('/')
        .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<unknown>((node, part) => (node as Json | undefined)?.[part], doc);
    const walk = (node: unknown): void => {
      if (node === null || typeof node !== 'object') return;
      const ref = (node as Json)['$ref'];
      if (typeof ref === 'string') {
        assert.ok(ref.startsWith('#/') && resolve(ref) !== undefined, `unresolvable $ref ${ref}`);
      }
      for (const value of Object.values(node)) walk(value);
    };
    walk(doc);
  });

  it('files every documented error code under the status the catalogue gives it', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [status, answer] of Object.entries(operation.responses)) {
          if (Number(status) < 400) continue;
          const schema = answer.content?.['application/json']?.schema as
            { properties: { error: { properties: { code: { enum: string[] } } } } } | undefined;
          const codes = schema?.properties.error.properties.code.enum ?? [];
          assert.ok(codes.length > 0, `${method} ${path} ${status} names no code`);
        }
      }
    }
  });

  it('is rendered at /docs from local files, framed by nobody, and the SPA does not take it', async () => {
    const page = await h.inject({ method: 'GET', url: '/docs' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.match(page.body, /swagger-ui-bundle\.js/);
    assert.doesNotMatch(page.body, /https?:\/\//, 'the page loads nothing from elsewhere');
    const script = await h.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' });
    assert.equal(script.statusCode, 200);
    assert.match(String(script.headers['content-type']), /javascript/);
    assert.equal(script.headers['x-frame-options'], 'DENY');
    const spec = await h.inject({ method: 'GET', url: '/docs/json' });
    assert.deepEqual(spec.json(), doc);
  });

  it('is public: no credential needed to read it', async () => {
    const response = await h.inject({ method: 'GET', url: '/v1/openapi.json' });
    assert.equal(response.statusCode, 200);
    conforms('GET', '/v1/openapi.json', response);
  });
});

describe('real answers match their documented schemas', () => {
  let ruleId = 0;
  let sniRule = 0;

  it('auth, the caller, users and passwords', async () => {
    await expect(200, undefined, 'GET', '/v1/auth/status');
    await expect(409, undefined, 'POST', '/v1/auth/onboarding', {
      user_id: 'again',
      display_name: 'Again',
      password: 'correct horse battery staple',
      password_confirm: 'correct horse battery staple',
      setup_token: 'x',
    });
    await expect(401, undefined, 'POST', '/v1/auth/login', { user_id: 'root', password: 'nope' });
    const login = await call(undefined, 'POST', '/v1/auth/login', {
      user_id: 'root',
      password: 'correct horse battery staple',
    });
    assert.equal(login.statusCode, 200);
    const cookie = login.cookies.find((c) => c.name === 'portunus_session')?.value ?? '';
    const logout = await h.session(cookie, { method: 'POST', url: '/v1/auth/logout' });
    assert.equal(logout.statusCode, 204, logout.body);
    conforms('POST', '/v1/auth/logout', logout);
    await expect(401, root, 'POST', '/v1/auth/logout');
    await expect(200, root, 'GET', '/v1/users/me');
    await expect(401, undefined, 'GET', '/v1/users/me');
    await expect(201, root, 'POST', '/v1/users', {
      user_id: 'bob',
      display_name: 'Bob',
      initial_password: 'correct horse battery staple',
    });
    await expect(409, root, 'POST', '/v1/users', {
      user_id: 'bob',
      display_name: 'Bob',
      initial_password: 'correct horse battery staple',
    });
    await expect(422, root, 'POST', '/v1/users', { user_id: 'Bad!', display_name: 'x' });
    await expect(200, root, 'GET', '/v1/users');
    await expect(200, root, 'GET', '/v1/users/bob');
    await expect(404, root, 'GET', '/v1/users/nobody');
    await expect(403, alice, 'GET', '/v1/users');
    const reset = await expect(200, root, 'POST', '/v1/users/bob/password');
    assert.equal(typeof reset['temporary_password'], 'string');
    await expect(204, alice, 'POST', '/v1/users/me/password', {
      current_password: 'correct horse battery staple',
      new_password: 'another long passphrase',
      new_password_confirm: 'another long passphrase',
    });
    await expect(422, alice, 'POST', '/v1/users/me/password', {
      current_password: 'another long passphrase',
      new_password: 'short',
      new_password_confirm: 'short',
    });
  });

  it('grants and credentials', async () => {
    const grant = await expect(201, root, 'POST', '/v1/grants', {
      user_id: 'alice',
      client: 'edge-1',
      listen_port_start: 20000,
      listen_port_end: 29999,
      protocols: ['tcp', 'udp'],
      note: 'contract',
    });
    const bobGrant = await expect(201, root, 'POST', '/v1/grants', {
      user_id: 'bob',
      client: '*',
      listen_port_start: 30000,
      listen_port_end: 30010,
    });
    await expect(422, root, 'POST', '/v1/grants', {
      user_id: 'alice',
      client: 'edge-1',
      listen_port_start: 9,
      listen_port_end: 1,
    });
    await expect(200, root, 'GET', '/v1/grants?user_id=alice');
    await expect(200, root, 'DELETE', `/v1/grants/${String(bobGrant['grant_id'])}`);
    await expect(404, root, 'DELETE', '/v1/grants/none');
    assert.equal(grant['client_id'], EDGE);
    const created = await expect(201, alice, 'POST', '/v1/credentials', { label: 'ci' });
    await expect(201, root, 'POST', '/v1/credentials');
    await expect(200, alice, 'GET', '/v1/credentials');
    await expect(403, alice, 'GET', '/v1/credentials?user_id=root');
    await expect(200, alice, 'DELETE', `/v1/credentials/${String(created['credential_id'])}`);
    await expect(404, alice, 'DELETE', '/v1/credentials/none');
  });

  it('clients, enrollment and settings', async () => {
    await expect(200, root, 'GET', '/v1/clients');
    await expect(200, alice, 'GET', '/v1/clients');
    const issued = await expect(201, root, 'POST', '/v1/client-enrollments', {
      name: 'edge-new',
      address: '192.0.2.7',
    });
    assert.equal(typeof issued['uri'], 'string');
    await expect(201, root, 'POST', `/v1/clients/${EDGE}/enrollment`, { ttl_secs: 600 });
    await expect(400, root, 'POST', '/v1/client-enrollments', { name: 'x', ttl_secs: 0 });
    await expect(200, root, 'PUT', `/v1/clients/${EDGE}`, { address: '192.0.2.1' });
    await expect(200, root, 'PATCH', `/v1/clients/${EDGE}/name`, { client_name: 'edge-1' });
    await expect(404, root, 'PATCH', '/v1/clients/none/name', { client_name: 'z' });
    await expect(200, root, 'GET', '/v1/settings/advertised-endpoint');
    await expect(200, root, 'PUT', '/v1/settings/advertised-endpoint', {
      advertised_endpoint: 'cp.example.com:7443',
    });
    await expect(422, root, 'PUT', '/v1/settings/advertised-endpoint', {
      advertised_endpoint: 'http://cp.example.com',
    });
    await expect(200, root, 'PUT', '/v1/settings/advertised-endpoint', {
      advertised_endpoint: null,
    });
    // A client is deleted once revoked.
    const id = '01HZZZZZZZZZZZZZZZZZZZZZZ2';
    insertClient(h.store.db, { clientId: id, clientName: 'edge-old', now: h.clock });
    await expect(409, root, 'DELETE', `/v1/clients/${id}`);
    await expect(204, root, 'POST', `/v1/clients/${id}/revoke`);
    await expect(204, root, 'DELETE', `/v1/clients/${id}`);
  });

  it('rules with targets, PROXY, health checks, caps and source lists; SNI; stats', async () => {
    const pushed = await expect(201, alice, 'POST', '/v1/rules', {
      client: 'edge-1',
      listen_port: 24001,
      targets: [
        { host: '10.0.0.1', port: 80, priority: 0, proxy_protocol: 'v2' },
        { host: '10.0.0.2', port: 80, priority: 1 },
      ],
      health_check_interval_secs: 10,
      rate_limit: { bandwidth_in_bps: 1_000_000, concurrent_connections: 50 },
      allowed_sources: ['192.0.2.0/24', '2001:db8::/32'],
      denied_sources: ['192.0.2.7'],
    });
    ruleId = Number(pushed['rule_id']);
    const sni = await expect(201, alice, 'POST', '/v1/rules', {
      client: 'edge-1',
      listen_port: 24443,
      targets: [{ host: '10.0.0.3', port: 443 }],
      sni_pattern: '*.example.com',
    });
    sniRule = Number(sni['rule_id']);
    await expect(201, alice, 'POST', '/v1/rules', {
      client: 'edge-1',
      listen_port: 24443,
      targets: [{ host: '10.0.0.4', port: 443 }],
      sni_pattern: 'api.example.com',
    });
    await expect(409, alice, 'POST', '/v1/rules', {
      client: 'edge-1',
      listen_port: 24443,
      targets: [{ host: '10.0.0.5', port: 443 }],
      sni_pattern: 'api.example.com',
    });
    await expect(400, alice, 'POST', '/v1/rules', {
      client: 'edge-1',
      listen_port: 24002,
      target_host: '10.0.0.1',
      target_port: 80,
      allowed_sources: ['10.0.0.0/33'],
    });
    await expect(403, alice, 'POST', '/v1/rules', {
      client: 'edge-1',
      listen_port: 1000,
      target_host: '10.0.0.1',
      target_port: 80,
    });
    await expect(201, alice, 'POST', '/v1/rules', {
      client: 'edge-1',
      protocol: 'udp',
      listen_port: 25000,
      listen_port_end: 25003,
      target_host: '10.0.0.9',
      target_port: 35000,
      target_port_end: 35003,
    });
    await expect(200, alice, 'PUT', `/v1/rules/${ruleId}`, {
      client: 'edge-1',
      listen_port: 24001,
      targets: [{ host: '10.0.0.1', port: 8080, proxy_protocol: 'v1' }],
      rate_limit: { new_connections_per_sec: 100, new_connections_burst: 200 },
      allowed_sources: ['198.51.100.0/24'],
    });
    // The list is rendered by SQLite: the text is checked against the same schema.
    const list = await expect<Json[]>(200, alice, 'GET', '/v1/rules');
    assert.ok(list.length >= 4);
    await expect(200, root, 'GET', '/v1/rules?owner=alice&client=edge-1');
    await expect(403, alice, 'GET', '/v1/rules?owner=root');
    await expect(200, alice, 'GET', `/v1/rules/${ruleId}`);
    await expect(404, alice, 'GET', '/v1/rules/999999');
    await expect(404, alice, 'GET', `/v1/rules/${ruleId}/stats`);
    fleet.report(session, {
      sent_at_unix_ms: h.clock,
      stats: [
        stats(ruleId, {
          rate_limit: {
            reject_total: [
              { reason: 'CONN_RATE', total: 4 },
              { reason: 'OWNER_CONCURRENT', total: 1 },
            ],
            throttle_micros_in: 1_500_000,
            throttle_micros_out: 250_000,
            active_connections: 1,
          },
          source_denied_total: 7,
        }),
        stats(sniRule, {
          sni_route_exact_total: 0,
          sni_route_wildcard_total: 5,
          sni_route_fallback_total: 0,
        }),
      ],
    });
    const capped = await expect(
      200,
      alice,
      'GET',
      `/v1/rules/${ruleId}/stats?per_port=1&per_target=true`,
    );
    assert.equal(capped['source_denied'], 7);
    assert.deepEqual((capped['rate_limit'] as Json)['reject_total'], {
      conn_rate: 4,
      owner_concurrent: 1,
    });
    assert.equal((capped['per_target'] as unknown[]).length, 1);
    const routed = await expect(200, alice, 'GET', `/v1/rules/${sniRule}/stats`);
    assert.equal(routed['sni_route_wildcard_total'], 5);
    await expect(404, alice, 'GET', '/v1/rules/999999/stats/stream');
  });

  it('owner rate limits', async () => {
    const url = `/v1/clients/${EDGE}/owners/alice/rate-limit`;
    await expect(404, root, 'GET', url);
    await expect(200, root, 'PUT', url, {
      bandwidth_out_bps: 5_000_000,
      concurrent_connections: 20,
    });
    await expect(400, root, 'PUT', url, {});
    await expect(200, root, 'GET', url);
    await expect(200, root, 'GET', `/v1/clients/${EDGE}/owners`);
    await expect(404, root, 'GET', '/v1/clients/none/owners');
    await expect(403, alice, 'GET', url);
    await expect(204, root, 'DELETE', url);
  });

  it('quotas (QuotaView), traffic and metrics', async () => {
    const quota = `/v1/users/alice/quotas/${EDGE}`;
    const view = await expect(200, root, 'PUT', quota, {
      monthly_bytes: 1_000_000,
      enforcement: 'soft',
      reset_day: 5,
    });
    assert.equal(view['period'], 'monthly');
    await expect(200, root, 'PUT', `/v1/users/alice/quotas/edge-1`, {
      monthly_bytes: 2_000_000,
      period: 'never',
    });
    await expect(400, root, 'PUT', quota, { monthly_bytes: -1 });
    await expect(400, root, 'PUT', quota, { monthly_bytes: 1, weekly: true });
    await expect(200, root, 'PATCH', quota, { monthly_bytes: 3_000_000, clear_period_usage: true });
    await expect(200, alice, 'GET', '/v1/users/alice/quotas');
    await expect(200, alice, 'GET', `${quota}/status`);
    await expect(403, alice, 'GET', '/v1/users/root/quotas');
    await expect(200, root, 'GET', `/v1/clients/${EDGE}/quotas`);
    await expect(404, root, 'GET', `/v1/users/bob/quotas/${EDGE}/status`);
    await expect(204, root, 'DELETE', quota);
    const to = Math.floor(h.clock / 1000) + 60;
    await expect(200, alice, 'GET', `/v1/users/alice/traffic?from=${to - 3600}&to=${to}`);
    await expect(
      200,
      root,
      'GET',
      `/v1/clients/${EDGE}/traffic?user_id=alice&bucket=1m&from=${to - 600}&to=${to}`,
    );
    await expect(200, root, 'GET', `/v1/traffic/global?from=${to - 60}&to=${to}`);
    await expect(400, root, 'GET', `/v1/traffic/global?from=${to}&to=${to - 60}`);
    await expect(400, root, 'GET', '/v1/traffic/global?since=1');
    await expect(403, alice, 'GET', '/v1/traffic/global');
    const metrics = await call(root, 'GET', '/v1/metrics');
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /portunus_operator_requests_total/);
  });

  it('revisions, audit, and removals', async () => {
    const page = await expect<{ revisions: { revision: number }[] }>(
      200,
      root,
      'GET',
      '/v1/rule-revisions?limit=50',
    );
    const first = page.revisions.at(-1)?.revision ?? 1;
    await expect(200, root, 'GET', `/v1/rule-revisions/${first}/diff`);
    await expect(404, root, 'GET', '/v1/rule-revisions/999999/diff');
    await expect(403, alice, 'GET', '/v1/rule-revisions');
    await expect(200, root, 'POST', `/v1/rule-revisions/${first}/restore`, {
      ack_timeout_secs: 5,
    });
    await expect(404, root, 'POST', '/v1/rule-revisions/999999/restore');
    await expect(200, root, 'GET', '/v1/audit?limit=20');
    const envelope = await expect(200, root, 'GET', '/v1/audit?since=2000-01-01T00:00:00Z');
    assert.ok(Array.isArray(envelope['entries']));
    await expect(422, root, 'GET', '/v1/audit?limit=x');
    await expect(400, root, 'GET', '/v1/audit?since=yesterday');
    const rules = await expect<{ id: number }[]>(200, root, 'GET', '/v1/rules');
    for (const rule of rules) await expect(204, root, 'DELETE', `/v1/rules/${rule.id}`);
    await expect(404, root, 'DELETE', `/v1/rules/${ruleId}`);
    await expect(200, root, 'DELETE', '/v1/users/bob');
    await expect(409, root, 'DELETE', '/v1/users/root');
    await expect(204, root, 'POST', `/v1/clients/${EDGE}/revoke`);
    await expect(204, root, 'DELETE', `/v1/clients/${EDGE}`);
  });
});

describe('schema refusals name the offending field', () => {
  const refusal = async (url: string, method: 'POST' | 'PUT' | 'GET', payload?: unknown) => {
    const response = await call(root, method, url, payload);
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(errorCode(response), 'validation_failed');
    return response.json<{ error: { message: string } }>().error.message;
  };

  it('an unknown field', async () => {
    const message = await refusal('/v1/grants', 'POST', {
      user_id: 'alice',
      client: '*',
      listen_port_start: 1,
      listen_port_end: 2,
      colour: 'red',
    });
    assert.equal(message, 'body/colour: unknown field');
    const nested = await refusal('/v1/rules', 'POST', {
      client: 'edge-1',
      listen_port: 24009,
      targets: [{ host: 'a', port: 1, weight: 3 }],
    });
    assert.equal(nested, 'body/targets/0/weight: unknown field');
    assert.equal(await refusal('/v1/audit?colour=red', 'GET'), 'querystring/colour: unknown field');
  });

  it('a wrong type', async () => {
    const message = await refusal('/v1/rules', 'POST', { client: 'edge-1', listen_port: '80' });
    assert.equal(message, 'body/listen_port: must be integer');
    const array = await refusal('/v1/traffic/global?from=1&from=2', 'GET');
    assert.equal(array, 'querystring/from: must be string');
  });

  it('a missing required field', async () => {
    assert.equal(
      await refusal('/v1/auth/login', 'POST', { password: 'x' }),
      'body/user_id: missing required property',
    );
  });

  it('bad path parameters', async () => {
    assert.equal(
      await refusal(`/v1/users/${'a'.repeat(65)}`, 'GET'),
      'params/userId: must NOT have more than 64 characters',
    );
  });

  it('every documented route was exercised with at least one answer', () => {
    const missing = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .map((method) => `${method.toUpperCase()} ${path}`)
        .filter((name) => !checked.has(name)),
    );
    // The stream's success is an open SSE socket (http-stats-stream.contract.test.ts proves it).
    assert.deepEqual(missing, []);
  });
});
