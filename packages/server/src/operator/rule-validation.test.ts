// Proves the pure rule checks: the reference codes of rule failures, target-host and SNI grammar edge cases, what a valid body becomes in the store's terms, and which hosts are the client itself.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  checkGrantedPush,
  isSelfHost,
  normaliseSniPattern,
  ruleError,
  targetHostProblem,
  validateRuleBody,
} from './rule-validation.js';

describe('ruleError', () => {
  it('answers a catalogued code as itself', () => {
    const error = ruleError('targets_empty', 'none');
    assert.equal(error.code, 'targets_empty');
    assert.equal(error.message, 'none');
    assert.equal(error.httpStatus, 400);
  });

  it('answers the reference codes of target hosts, bursts and PROXY protocol as 400 / exit 2', () => {
    for (const code of [
      'target_invalid_host',
      'invalid_target_host_too_long',
      'invalid_target_host_label_too_long',
      'invalid_target_host_label_hyphen',
      'validation.rate_limit_burst_range',
      'validation.rate_limit_burst_unsupported',
      'validation.proxy_protocol_invalid',
      'validation.proxy_protocol_on_unsupported_rule',
    ] as const) {
      const error = ruleError(code, 'why');
      assert.equal(error.code, code);
      assert.equal(error.httpStatus, 400);
      assert.equal(error.exitCode, 2);
    }
  });
});

describe('targetHostProblem', () => {
  it('accepts IP literals and DNS names', () => {
    for (const host of [
      '10.0.0.1',
      '::1',
      'fe80::1',
      'a',
      'a-b.example',
      'example.com.',
      'A1.B2',
    ]) {
      assert.equal(targetHostProblem(host), undefined, host);
    }
  });

  it('names the reference sub-code of each fault', () => {
    const cases: [string, string][] = [
      ['', 'invalid_target_host'],
      ['1.2.3', 'invalid_target_host'],
      ['256.0.0.1', 'invalid_target_host'],
      ['a..b', 'invalid_target_host'],
      ['a_b.example', 'invalid_target_host'],
      ['[::1]', 'invalid_target_host'],
      [`${'a'.repeat(63)}.`.repeat(4) + 'com', 'invalid_target_host_too_long'],
      [`${'a'.repeat(64)}.example`, 'invalid_target_host_label_too_long'],
      ['-a.example', 'invalid_target_host_label_hyphen'],
      ['a.example-', 'invalid_target_host_label_hyphen'],
    ];
    for (const [host, code] of cases) assert.equal(targetHostProblem(host)?.code, code, host);
  });
});

describe('normaliseSniPattern', () => {
  it('trims and lowercases ASCII, keeping punycode and single-label wildcards', () => {
    assert.equal(normaliseSniPattern('  API.Example.COM '), 'api.example.com');
    assert.equal(normaliseSniPattern('*.svc.example.com'), '*.svc.example.com');
    assert.equal(normaliseSniPattern('xn--bcher-kva.example'), 'xn--bcher-kva.example');
  });

  it('refuses what the grammar excludes', () => {
    for (const pattern of ['', ' ', '*.', '*.com', '*', 'a.*.b', '**.a.b', 'é.example', 'a.-b.c']) {
      assert.throws(
        () => normaliseSniPattern(pattern),
        { code: 'validation.sni_pattern_malformed' },
        pattern,
      );
    }
    assert.throws(() => normaliseSniPattern(`${'a'.repeat(64)}.example`), {
      code: 'validation.sni_pattern_malformed',
    });
  });
});

describe('validateRuleBody', () => {
  it('turns a legacy range body into one target with its port range', () => {
    const push = validateRuleBody({
      client: 'edge',
      listen_port: 30000,
      listen_port_end: 30009,
      target_host: 'backend.example',
      target_port: 40000,
      target_port_end: 40009,
      protocol: 'UDP',
    });
    assert.deepEqual(push, {
      clientName: 'edge',
      shape: 'legacy',
      protocol: 'udp',
      listenPort: 30000,
      listenPortEnd: 30009,
      targets: [
        { host: 'backend.example', port: 40000, portEnd: 40009, priority: 0, proxyProtocol: null },
      ],
      preferIpv6: false,
      healthCheckIntervalSecs: null,
      sniPattern: null,
      rateLimit: null,
      allowedSources: [],
      deniedSources: [],
      ackTimeoutSecs: 2,
    });
    assert.throws(
      () => {
        checkGrantedPush(push, 9);
      },
      { code: 'exceeds_cap' },
    );
    checkGrantedPush(push, 10);
  });

  it('refuses PROXY v1 on UDP and accepts v2 there (a header per datagram)', () => {
    const body = (proxy: string) =>
      validateRuleBody({
        client: 'edge',
        listen_port: 5353,
        protocol: 'udp',
        targets: [{ host: '10.0.0.1', port: 53, proxy_protocol: proxy }],
      });
    assert.throws(
      () => {
        checkGrantedPush(body('v1'), 10);
      },
      { code: 'validation.proxy_protocol_on_unsupported_rule' },
    );
    checkGrantedPush(body('v2'), 10);
  });

  it('defaults target priorities to the row index and keeps caps', () => {
    const push = validateRuleBody({
      client: 'edge',
      listen_port: 443,
      targets: [
        { host: 'a.example', port: 1, proxy_protocol: 'V2' },
        { host: 'b.example', port: 1, priority: 0 },
        { host: 'c.example', port: 1 },
      ],
      health_check_interval_secs: 30,
      sni_pattern: 'A.Example.com',
      prefer_ipv6: true,
      rate_limit: { bandwidth_in_bps: 100, bandwidth_in_burst: 1, concurrent_connections: 2 },
    });
    assert.deepEqual(
      push.targets.map((target) => [target.priority, target.proxyProtocol]),
      [
        [0, 'v2'],
        [0, null],
        [2, null],
      ],
    );
    assert.equal(push.healthCheckIntervalSecs, 30);
    assert.equal(push.sniPattern, 'a.example.com');
    assert.deepEqual(push.rateLimit, {
      bandwidthInBps: 100,
      concurrentConnections: 2,
      bandwidthInBurst: 1,
    });
  });
});

describe('isSelfHost', () => {
  it('knows loopback, unspecified and localhost names, and the addresses it is given', () => {
    const own = ['edge1.example.net', '203.0.113.7'];
    for (const host of [
      '127.0.0.1',
      '127.255.0.9',
      '0.0.0.0',
      '::1',
      '::',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      'localhost',
      'LOCALHOST.',
      'db.localhost',
      'Edge1.Example.NET.',
      '203.0.113.7',
    ]) {
      assert.equal(isSelfHost(host, own), true, host);
    }
    for (const host of [
      '10.0.0.1',
      '128.0.0.1',
      '::2',
      '::ffff:10.0.0.1',
      'localhost.example.com',
      'mylocalhost',
      '127.example.com',
      'edge2.example.net',
    ]) {
      assert.equal(isSelfHost(host, own), false, host);
    }
  });
});
