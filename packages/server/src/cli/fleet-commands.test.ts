// Proves the HTTP-backed fleet commands in-process against a canned operator API: the request
// each sends (push-rule's body for every LISTEN/TARGET shape, list-rules' filter, rule-stats'
// per_port), the text each prints (list-rules states, rule-stats TCP/UDP lines and the per-port
// table), local shape errors (exit 2, nothing sent) and error bodies mapped to exit codes; and
// edit-rule's PUT with push-rule's flags, and `rules history | diff | restore`.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';

import { hasControlCharacter, silentLogger } from '@portunus/core';

import { parseLegacyTarget, parseListen, parseTargetSpec } from './rule-flags.js';
import { runServerCli } from './program.js';

interface Seen {
  method: string;
  url: string;
  body: unknown;
  authorization: string | undefined;
}

const seen: Seen[] = [];
let answers: Record<string, [number, unknown]> = {};
let endpoint = '';
const server = http.createServer((request, response) => {
  let text = '';
  request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  request.on('end', () => {
    seen.push({
      method: request.method ?? '',
      url: request.url ?? '',
      body: text === '' ? undefined : JSON.parse(text),
      authorization: request.headers.authorization,
    });
    const [status, body] = answers[`${request.method} ${request.url}`] ?? [
      404,
      { error: { code: 'not_found', message: 'no route' } },
    ];
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(body === undefined ? '' : JSON.stringify(body));
  });
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(
  () =>
    new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    ),
);
beforeEach(() => {
  seen.length = 0;
  answers = {};
});

async function cli(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runServerCli([...args, '--http-endpoint', endpoint], {
    env: { PORTUNUS_OPERATOR_TOKEN: 'test-token' },
    logger: silentLogger,
    writeOut: (text) => (out += text),
    writeErr: (text) => (err += text),
  });
  return { code, out, err };
}

describe('argument parsers', () => {
  it('parses listen ports and ranges, legacy targets and --target specs', () => {
    assert.deepEqual(parseListen('18080'), { listenPort: 18080 });
    assert.deepEqual(parseListen('30000-30050'), { listenPort: 30000, listenPortEnd: 30050 });
    for (const bad of ['0', '65536', '20-10', 'x', '1-', '']) {
      assert.throws(() => parseListen(bad), { code: 'invalid_port_range' }, bad);
    }
    assert.deepEqual(parseLegacyTarget('10.0.0.1:80'), {
      target_host: '10.0.0.1',
      target_port: 80,
    });
    assert.deepEqual(parseLegacyTarget('backend:9000-9050'), {
      target_host: 'backend',
      target_port: 9000,
      target_port_end: 9050,
    });
    assert.deepEqual(parseLegacyTarget('[::1]:80'), { target_host: '::1', target_port: 80 });
    assert.deepEqual(parseTargetSpec('a.example:443@2'), {
      host: 'a.example',
      port: 443,
      priority: 2,
    });
    assert.deepEqual(parseTargetSpec('b:1'), { host: 'b', port: 1 });
    assert.throws(() => parseLegacyTarget(':80'), { code: 'invalid_target_host' });
    assert.throws(() => parseLegacyTarget('host:0'), { code: 'target_invalid_port' });
    assert.throws(() => parseTargetSpec('b:1@x'), { code: 'usage_error' });
  });
});

describe('enroll-client --http-endpoint', () => {
  it("asks the running server for the code and prints the offline command's four lines", async () => {
    const issued = {
      client_id: '01JD0000000000000000000001',
      client_name: 'edge-1',
      expires_at: '2026-05-01T00:15:00.000Z',
      command: "portunus-client enroll 'portunus://127.0.0.1:7443/enroll?pin=sha256:ab&code=cd'",
      uri: 'portunus://127.0.0.1:7443/enroll?pin=sha256:ab&code=cd',
    };
    answers['POST /v1/client-enrollments'] = [201, issued];
    const result = await cli(['enroll-client', 'edge-1', '--address', '203.0.113.7']);
    assert.equal(result.code, 0, result.err);
    assert.equal(
      result.out,
      `client_name=edge-1\nexpires_at=${issued.expires_at}\n${issued.command}\nclient_id=${issued.client_id}\n`,
    );
    assert.deepEqual(seen[0]?.body, { name: 'edge-1', address: '203.0.113.7', ttl_secs: 600 });
  });

  it('checks the name before sending anything', async () => {
    const result = await cli(['enroll-client', '']);
    assert.equal(result.code, 2, result.err);
    assert.match(result.err, /^error: invalid_client_name:/m);
    assert.deepEqual(seen, []);
  });
});

describe('push-rule', () => {
  it('sends the legacy shape with defaults and prints the bare rule id', async () => {
    answers['POST /v1/rules'] = [201, { rule_id: 42, status: 'Active' }];
    const result = await cli(['push-rule', 'edge 1', '30000-30002', 'backend:9000-9002']);
    assert.equal(result.code, 0, result.err);
    assert.equal(result.out, '42\n');
    assert.equal(seen[0]?.authorization, 'Bearer test-token');
    assert.deepEqual(seen[0].body, {
      client: 'edge 1',
      listen_port: 30000,
      listen_port_end: 30002,
      target_host: 'backend',
      target_port: 9000,
      target_port_end: 9002,
      protocol: 'tcp',
      ack_timeout_secs: 2,
    });
  });

  it('sends --target specs, udp, the ack budget and prefer_ipv6', async () => {
    answers['POST /v1/rules'] = [201, { rule_id: 7 }];
    const result = await cli([
      'push-rule',
      'edge',
      '18080',
      '--target',
      'a:1@1',
      '--target',
      'b:2',
      '--protocol',
      'udp',
      '--ack-timeout',
      '10',
      '--prefer-ipv6',
    ]);
    assert.equal(result.code, 0, result.err);
    assert.deepEqual(seen[0]?.body, {
      client: 'edge',
      listen_port: 18080,
      targets: [
        { host: 'a', port: 1, priority: 1 },
        { host: 'b', port: 2 },
      ],
      protocol: 'udp',
      ack_timeout_secs: 10,
      prefer_ipv6: true,
    });
  });

  it('sends --sni lower-cased as sni_pattern', async () => {
    answers['POST /v1/rules'] = [201, { rule_id: 8 }];
    const result = await cli(['push-rule', 'edge', '8443', 'a:443', '--sni', '*.Apps.Example.com']);
    assert.equal(result.code, 0, result.err);
    assert.equal((seen.at(-1)?.body as { sni_pattern?: string }).sni_pattern, '*.apps.example.com');
    seen.length = 0;
  });

  it('refuses bad shapes locally with exit 2 and sends nothing', async () => {
    const cases: [string[], string][] = [
      [['push-rule', 'edge', '18080', 'a:1', '--target', 'b:2'], 'rule_shape_conflict'],
      [['push-rule', 'edge', '18080'], 'rule_shape_missing'],
      [['push-rule', 'edge', '99999', 'a:1'], 'invalid_port_range'],
      [['push-rule', 'edge', '18080', 'a:1', '--ack-timeout', '0'], 'usage_error'],
      [['push-rule', 'edge', '18080', 'a:1', '--protocol', 'sctp'], 'usage_error'],
      [['push-rule', 'edge', '18080', '10.0.0.5'], 'target_invalid_port'],
      [['push-rule', 'edge', '18080', 'backend:'], 'target_invalid_port'],
      [['push-rule', 'edge', '18080', '[::1]'], 'target_invalid_port'],
      [['push-rule', 'edge', '18080', '--target', 'backend'], 'target_invalid_port'],
      [
        ['push-rule', 'edge', '18080', 'a:1', '--sni', 'a.example', '--protocol', 'udp'],
        'validation.sni_on_unsupported_rule',
      ],
      [
        ['push-rule', 'edge', '30000-30001', 'a:1-2', '--sni', 'a.example'],
        'validation.sni_on_unsupported_rule',
      ],
      [['push-rule', 'edge', '18080', 'a:1', '--sni', '*.com'], 'validation.sni_pattern_malformed'],
    ];
    for (const [args, code] of cases) {
      const result = await cli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.err}`);
      assert.match(result.err, new RegExp(`^error: ${code}:`, 'm'));
      assert.equal(result.out, '');
    }
    assert.deepEqual(seen, []);
    const missing = await cli(['push-rule', 'edge', '18080', '10.0.0.5']);
    assert.match(
      missing.err,
      /^error: target_invalid_port: target "10\.0\.0\.5" has no port: give host:port, e\.g\. 10\.0\.0\.5:80$/m,
    );
  });

  it('exits with the catalogued code of the answer', async () => {
    answers['POST /v1/rules'] = [
      422,
      { error: { code: 'client_not_connected', message: 'edge is offline' } },
    ];
    const offline = await cli(['push-rule', 'edge', '18080', 'a:1']);
    assert.equal(offline.code, 6);
    assert.match(offline.err, /^error: client_not_connected: edge is offline$/m);
    answers['POST /v1/rules'] = [409, { error: { code: 'port_in_use', message: 'taken' } }];
    assert.equal((await cli(['push-rule', 'edge', '18080', 'a:1'])).code, 3);
  });
});

describe('list-rules, remove-rule, rule-stats', () => {
  it('list-rules prints ID CLIENT PORT TARGET SNI/PROXY CAPS SOURCES STATE and passes --client', async () => {
    const rule = {
      id: 1,
      client_name: 'edge',
      listen_port: 18080,
      target_host: '10.0.0.1',
      target_port: 80,
      protocol: 'tcp',
      state: { kind: 'active' },
      targets: [{ host: '10.0.0.1', port: 80 }],
      allowed_sources: [],
      denied_sources: [],
    };
    answers['GET /v1/rules?client=edge%201'] = [
      200,
      [
        rule,
        {
          ...rule,
          id: 2,
          listen_port: 30000,
          listen_port_end: 30009,
          target_port: 9000,
          target_port_end: 9009,
          state: { kind: 'failed', reason: 'port_in_use' },
          rate_limit: { bandwidth_in_bps: 1000, concurrent_connections: 5 },
        },
        {
          ...rule,
          id: 3,
          state: { kind: 'pending' },
          sni_pattern: '*.example.com',
          allowed_sources: ['10.0.0.0/8', '192.0.2.0/24', '2001:db8::/32'],
          denied_sources: ['10.1.0.0/16'],
          targets: [
            { host: 'a', port: 1, proxy_protocol: 'v2' },
            { host: 'b', port: 2, proxy_protocol: null },
          ],
        },
      ],
    ];
    const result = await cli(['list-rules', '--client', 'edge 1']);
    assert.equal(result.code, 0, result.err);
    assert.deepEqual(
      result.out
        .trimEnd()
        .split('\n')
        .map((line) => line.split(/\s{2,}/)),
      [
        ['ID', 'CLIENT', 'PORT', 'TARGET', 'SNI/PROXY', 'CAPS', 'SOURCES', 'STATE'],
        ['1', 'edge', '18080', '10.0.0.1:80', '-/-', '-', '-', 'active'],
        [
          '2',
          'edge',
          '30000-30009',
          '10.0.0.1:9000-9009',
          '-/-',
          'ingress_bps=1000,concurrent_max=5',
          '-',
          'failed:port_in_use',
        ],
        [
          '3',
          'edge',
          '18080',
          'a:1,b:2',
          '*.example.com/v2',
          '-',
          'allow:10.0.0.0/8,192.0.2.0/24(+1) deny:10.1.0.0/16',
          'pending',
        ],
      ],
    );
    const json = await cli(['list-rules', '--client', 'edge 1', '--format', 'json']);
    assert.equal((JSON.parse(json.out) as unknown[]).length, 3);
  });

  it('prints stored control characters escaped, in text and in still-valid JSON', async () => {
    // A name stored before validation existed, or sent by a hostile server: ESC clears the
    // screen, U+202E reverses what follows.
    const hostile = 'edge\u001b[2J\u202eevil';
    const rule = {
      id: 7,
      client_name: hostile,
      listen_port: 18080,
      target_host: '10.0.0.1',
      target_port: 80,
      protocol: 'tcp',
      state: { kind: 'active' },
      targets: [{ host: '10.0.0.1', port: 80 }],
      allowed_sources: [],
      denied_sources: [],
    };
    answers['GET /v1/rules'] = [200, [rule]];
    const text = await cli(['list-rules']);
    assert.equal(text.code, 0, text.err);
    assert.ok(!hasControlCharacter(text.out.replaceAll('\n', '')), JSON.stringify(text.out));
    assert.match(text.out, /edge\\u001b\[2J\\u202eevil/);
    const json = await cli(['list-rules', '--format', 'json']);
    assert.ok(!hasControlCharacter(json.out.replaceAll('\n', '')));
    assert.equal((JSON.parse(json.out) as { client_name: string }[])[0]?.client_name, hostile);
  });

  it('remove-rule sends DELETE and prints nothing', async () => {
    answers['DELETE /v1/rules/5'] = [204, undefined];
    const result = await cli(['remove-rule', '5']);
    assert.equal(result.code, 0, result.err);
    assert.equal(result.out, '');
    assert.equal(seen[0]?.method, 'DELETE');
    answers['DELETE /v1/rules/6'] = [404, { error: { code: 'rule_not_found', message: 'no' } }];
    assert.equal((await cli(['remove-rule', '6'])).code, 5);
  });

  it('rule-stats prints the TCP line, the UDP additions and the per-port table', async () => {
    const base = {
      rule_id: 9,
      client_name: 'edge',
      protocol: 'tcp',
      bytes_in: 10,
      bytes_out: 20,
      active_connections: 1,
      dns_failures: 0,
      datagrams_in: 0,
      datagrams_out: 0,
      active_flows: 0,
      flows_dropped_overflow: 0,
      target_failovers_total: 0,
      // As the server sends it: RuleStatsSnapshot.updated_at is RFC 3339 text.
      updated_at: '2026-05-01T00:00:00.000Z',
    };
    answers['GET /v1/rules/9/stats'] = [200, base];
    const tcp = await cli(['rule-stats', '9']);
    assert.equal(tcp.code, 0, tcp.err);
    assert.equal(
      tcp.out,
      'rule_id=9 client=edge protocol=tcp bytes_in=10 bytes_out=20 active=1 dns_failures=0 ' +
        'target_failovers_total=0 updated_at=2026-05-01T00:00:00.000Z\n',
    );
    answers['GET /v1/rules/9/stats?per_port=true'] = [
      200,
      {
        ...base,
        protocol: 'udp',
        active_flows: 2,
        datagrams_in: 5,
        datagrams_out: 6,
        per_port: [
          {
            listen_port: 30000,
            bytes_in: 1,
            bytes_out: 2,
            active_connections: 0,
            datagrams_in: 3,
            datagrams_out: 4,
          },
        ],
      },
    ];
    const udp = await cli(['rule-stats', '9', '--per-port']);
    assert.equal(udp.code, 0, udp.err);
    const [line, ...table] = udp.out.trimEnd().split('\n');
    assert.match(
      line ?? '',
      / active=1 dns_failures=0 target_failovers_total=0 active_flows=2 datagrams_in=5 datagrams_out=6 flows_dropped_overflow=0 updated_at=/,
    );
    assert.deepEqual(
      table.map((row) => row.split(/\s{2,}/)),
      [
        ['LISTEN_PORT', 'BYTES_IN', 'BYTES_OUT', 'ACTIVE', 'DATAGRAMS_IN', 'DATAGRAMS_OUT'],
        ['30000', '1', '2', '0', '3', '4'],
      ],
    );
  });

  it('rule-stats --per-target asks for per_target and prints one row per target', async () => {
    const target = {
      priority: 0,
      consecutive_failures: 0,
      last_failure_at_unix_ms: 0,
      last_success_at_unix_ms: 1,
      bytes_in: 7,
      bytes_out: 8,
      connections_accepted: 2,
    };
    answers['GET /v1/rules/9/stats?per_target=true'] = [
      200,
      {
        rule_id: 9,
        client_name: 'edge',
        protocol: 'tcp',
        bytes_in: 7,
        bytes_out: 8,
        active_connections: 0,
        dns_failures: 1,
        target_failovers_total: 1,
        // As the server sends it: RuleStatsSnapshot.updated_at is RFC 3339 text.
        updated_at: '2026-05-01T00:00:00.000Z',
        per_target: [
          { ...target, index: 0, host: 'a.internal', port: 80, health: 1, consecutive_failures: 3 },
          { ...target, index: 1, host: '10.0.0.2', port: 81, priority: 1, health: 0 },
        ],
      },
    ];
    const result = await cli(['rule-stats', '9', '--per-target']);
    assert.equal(result.code, 0, result.err);
    const [line, ...table] = result.out.trimEnd().split('\n');
    assert.match(line ?? '', / dns_failures=1 target_failovers_total=1 /);
    assert.deepEqual(
      table.map((row) => row.split(/\s{2,}/)),
      [
        [
          'INDEX',
          'TARGET',
          'PRIORITY',
          'HEALTH',
          'FAILURES',
          'BYTES_IN',
          'BYTES_OUT',
          'CONNECTIONS',
        ],
        ['0', 'a.internal:80', '0', 'failed', '3', '7', '8', '2'],
        ['1', '10.0.0.2:81', '1', 'healthy', '0', '7', '8', '2'],
      ],
    );
  });
});

describe('edit-rule and the rule flags it shares with push-rule', () => {
  it('sends the full push body with PUT to the rule and prints its id and status', async () => {
    answers['PUT /v1/rules/12'] = [200, { rule_id: 12, status: 'Active' }];
    const result = await cli([
      'edit-rule',
      '12',
      'edge-1',
      '18081',
      '--targets-json',
      '[{"host":"a.example","port":443,"proxy_protocol":"v2"},{"host":"b.example","port":443}]',
      '--health-check-interval-secs',
      '30',
      '--concurrent-connections',
      '9',
      '--bandwidth-in-bps',
      '1000',
      '--bandwidth-in-burst',
      '2000',
      '--prefer-ipv6',
    ]);
    assert.equal(result.code, 0, result.err);
    assert.equal(result.out, 'rule_id=12 status=Active\n');
    assert.equal(seen[0]?.method, 'PUT');
    assert.deepEqual(seen[0].body, {
      client: 'edge-1',
      listen_port: 18081,
      targets: [
        { host: 'a.example', port: 443, proxy_protocol: 'v2' },
        { host: 'b.example', port: 443 },
      ],
      protocol: 'tcp',
      ack_timeout_secs: 2,
      prefer_ipv6: true,
      health_check_interval_secs: 30,
      rate_limit: { bandwidth_in_bps: 1000, concurrent_connections: 9, bandwidth_in_burst: 2000 },
    });
  });

  it('gives push-rule the same flags', async () => {
    answers['POST /v1/rules'] = [201, { rule_id: 5 }];
    const result = await cli([
      'push-rule',
      'edge',
      '18080',
      '--target',
      'a:1',
      '--new-connections-per-sec',
      '5',
    ]);
    assert.equal(result.code, 0, result.err);
    assert.deepEqual((seen[0]?.body as Record<string, unknown>)['rate_limit'], {
      new_connections_per_sec: 5,
    });
  });

  it('sends --allow-source and --deny-source normalised, repeatable, and only when given', async () => {
    answers['POST /v1/rules'] = [201, { rule_id: 6 }];
    const result = await cli([
      'push-rule',
      'edge',
      '18080',
      '--target',
      'a:1',
      '--allow-source',
      '10.0.0.0/8',
      '--allow-source',
      '2001:DB8:0::/32',
      '--deny-source',
      '10.9.9.9',
    ]);
    assert.equal(result.code, 0, result.err);
    const body = seen[0]?.body as Record<string, unknown>;
    assert.deepEqual(body['allowed_sources'], ['10.0.0.0/8', '2001:db8::/32']);
    assert.deepEqual(body['denied_sources'], ['10.9.9.9/32']);
    seen.length = 0;
    await cli(['push-rule', 'edge', '18080', '--target', 'a:1']);
    const plain = seen[0]?.body as Record<string, unknown>;
    assert.equal('allowed_sources' in plain || 'denied_sources' in plain, false);
  });

  it('refuses bad flags locally with exit 2, sending nothing', async () => {
    const cases: [string[], string][] = [
      [['edit-rule', '12', 'edge', '18080'], 'rule_shape_missing'],
      [['edit-rule', '12', 'edge', '18080', 'a:1', '--targets-json', '[]'], 'rule_shape_conflict'],
      [
        ['edit-rule', '12', 'edge', '18080', '--target', 'a:1', '--targets-json', '[]'],
        'rule_shape_conflict',
      ],
      [['edit-rule', '12', 'edge', '18080', '--targets-json', '{"host":1}'], 'usage_error'],
      [['edit-rule', '12', 'edge', '18080', '--targets-json', 'nope'], 'usage_error'],
      [
        ['edit-rule', '12', 'edge', '18080', 'a:1', '--concurrent-connections', '-1'],
        'usage_error',
      ],
      [
        ['edit-rule', '12', 'edge', '18080', 'a:1', '--health-check-interval-secs', 'x'],
        'usage_error',
      ],
      [['edit-rule', '12', 'edge', '0', 'a:1'], 'invalid_port_range'],
      [
        ['push-rule', 'edge', '18080', '--target', 'a:1', '--allow-source', '10.0.0.1/8'],
        'validation.source_cidr_invalid',
      ],
      [
        ['push-rule', 'edge', '18080', '--target', 'a:1', '--deny-source', 'nope'],
        'validation.source_cidr_invalid',
      ],
      [
        [
          'edit-rule',
          '12',
          'edge',
          '18080',
          '--target',
          'a:1',
          ...Array.from({ length: 65 }, (_, i) => ['--deny-source', `10.0.${i}.0/24`]).flat(),
        ],
        'validation.source_list_too_long',
      ],
    ];
    for (const [args, code] of cases) {
      const result = await cli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.err}`);
      assert.match(result.err, new RegExp(`^error: ${code}:`, 'm'));
    }
    assert.deepEqual(seen, []);
  });

  it('exits with the code the server answers (refused edit, self-loop, unknown rule)', async () => {
    const answer = (code: string, status: number): void => {
      answers['PUT /v1/rules/12'] = [status, { error: { code, message: 'no' } }];
    };
    answer('activation_failed', 422);
    assert.equal((await cli(['edit-rule', '12', 'edge', '18080', 'a:1'])).code, 6);
    answer('validation.target_is_self', 400);
    const self = await cli(['edit-rule', '12', 'edge', '18080', '127.0.0.1:18080']);
    assert.equal(self.code, 2);
    assert.match(self.err, /^error: validation\.target_is_self: no$/m);
    answer('rule_not_found', 404);
    assert.equal((await cli(['edit-rule', '12', 'edge', '18080', 'a:1'])).code, 5);
  });
});

describe('rules history | diff | restore', () => {
  it('history prints REVISION AT ACTOR ACTION SUMMARY and the next cursor', async () => {
    answers['GET /v1/rule-revisions?limit=2'] = [
      200,
      {
        revisions: [
          {
            revision: 9,
            at: '2026-12-03T15:00:00.000Z',
            actor: 'root',
            action: 'edit',
            summary: 'edit rule 3 (listen_port)',
          },
          {
            revision: 8,
            at: '2026-12-03T14:00:00.000Z',
            actor: 'alice',
            action: 'push',
            summary: 'push rule 3',
          },
        ],
        next_cursor: 'cjg',
      },
    ];
    const result = await cli(['rules', 'history', '--limit', '2']);
    assert.equal(result.code, 0, result.err);
    assert.deepEqual(
      result.out
        .trimEnd()
        .split('\n')
        .map((line) => line.split(/\s{2,}/)),
      [
        ['REVISION', 'AT', 'ACTOR', 'ACTION', 'SUMMARY'],
        ['9', '2026-12-03T15:00:00.000Z', 'root', 'edit', 'edit rule 3 (listen_port)'],
        ['8', '2026-12-03T14:00:00.000Z', 'alice', 'push', 'push rule 3'],
        ['next_cursor=cjg'],
      ],
    );
    answers['GET /v1/rule-revisions?limit=100&cursor=cjg'] = [200, { revisions: [] }];
    assert.equal((await cli(['rules', 'history', '--cursor', 'cjg'])).code, 0);
  });

  it('diff prints + added, - removed and ~ changed with each field', async () => {
    const rule = {
      rule_id: 3,
      client_name: 'edge-1',
      protocol: 'tcp',
      listen_port: 18080,
      targets: [{ host: '10.0.0.1', port: 80 }],
    };
    answers['GET /v1/rule-revisions/8/diff'] = [
      200,
      {
        revision: 8,
        head: 10,
        added: [{ ...rule, rule_id: 4, listen_port: 18090 }],
        removed: [{ ...rule, rule_id: 2, listen_port_end: 18085 }],
        changed: [
          {
            rule_id: 3,
            fields: ['listen_port'],
            revision: rule,
            now: { ...rule, listen_port: 18081 },
          },
        ],
      },
    ];
    const result = await cli(['rules', 'diff', '8']);
    assert.equal(result.code, 0, result.err);
    assert.equal(
      result.out,
      'revision=8 head=10\n' +
        '+ 4 edge-1 tcp 18090 -> 10.0.0.1:80\n' +
        '- 2 edge-1 tcp 18080-18085 -> 10.0.0.1:80\n' +
        '~ 3 edge-1 tcp 18081 -> 10.0.0.1:80\n' +
        '    listen_port: 18080 -> 18081\n',
    );
    answers['GET /v1/rule-revisions/99/diff'] = [
      404,
      { error: { code: 'revision_not_found', message: 'no rule-set revision 99' } },
    ];
    const missing = await cli(['rules', 'diff', '99']);
    assert.equal(missing.code, 5);
    assert.match(missing.err, /^error: revision_not_found: no rule-set revision 99$/m);
    const bad = await cli(['rules', 'diff', 'latest']);
    assert.equal(bad.code, 2);
  });

  it('restore prints what it applied, and exits with the first failure code', async () => {
    answers['POST /v1/rule-revisions/8/restore'] = [
      200,
      {
        revision: 11,
        restored_to: 8,
        removed: [4],
        pushed: [{ rule_id: 2, status: 'Active' }],
        edited: [{ rule_id: 3, fields: ['listen_port'] }],
        failed: [],
      },
    ];
    const done = await cli(['rules', 'restore', '8', '--ack-timeout', '5']);
    assert.equal(done.code, 0, done.err);
    assert.equal(done.out, 'revision=11 restored_to=8 removed=4 pushed=2 edited=3 failed=0\n');
    assert.deepEqual(seen.at(-1)?.body, { ack_timeout_secs: 5 });
    answers['POST /v1/rule-revisions/8/restore'] = [
      200,
      {
        revision: 12,
        restored_to: 8,
        removed: [],
        pushed: [],
        edited: [{ rule_id: 3, fields: ['targets'] }],
        failed: [
          {
            rule_id: 2,
            action: 'push',
            code: 'client_not_connected',
            message: 'edge-2 is offline',
          },
        ],
      },
    ];
    const partial = await cli(['rules', 'restore', '8']);
    assert.equal(partial.code, 6);
    assert.match(
      partial.out,
      /^failed rule_id=2 action=push code=client_not_connected edge-2 is offline$/m,
    );
    assert.match(partial.err, /^error: client_not_connected: restore incomplete/m);
    answers['POST /v1/rule-revisions/8/restore'] = [
      403,
      { error: { code: 'role_required', message: 'superadmin only' } },
    ];
    assert.equal((await cli(['rules', 'restore', '8'])).code, 4);
  });
});
