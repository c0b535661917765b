// Proves the wire ↔ data-plane mapping: legacy single-target rules and ranges become RuleSpecs
// (0 = single port), features this client does not implement are refused with the server's
// capability codes, and forwarder stats become cumulative RuleStats with per-port detail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { RuleStats } from '@portunus/forwarder';
import type { WireRule } from '@portunus/proto';

import { ruleFromWire, statsToWire } from './wire.js';

function rule(overrides: Partial<WireRule> = {}): WireRule {
  return {
    rule_id: '7',
    listen_port: 10_000,
    target_host: '10.0.0.1',
    target_port: 80,
    protocol: 'TCP',
    listen_port_end: 0,
    target_port_end: 0,
    targets: [],
    health_check_interval_secs: 0,
    ...overrides,
  };
}

describe('ruleFromWire', () => {
  it('maps a single-port TCP rule', () => {
    assert.deepEqual(ruleFromWire(rule()), {
      ok: true,
      spec: {
        ruleId: '7',
        protocol: 'tcp',
        listenPort: 10_000,
        targetHost: '10.0.0.1',
        targetPort: 80,
      },
    });
  });

  it('maps a UDP range', () => {
    const mapped = ruleFromWire(
      rule({
        protocol: 'UDP',
        listen_port_end: 10_009,
        target_port: 20_000,
        target_port_end: 20_009,
      }),
    );
    assert.ok(mapped.ok);
    assert.deepEqual(mapped.spec, {
      ruleId: '7',
      protocol: 'udp',
      listenPort: 10_000,
      listenPortEnd: 10_009,
      targetHost: '10.0.0.1',
      targetPort: 20_000,
      targetPortEnd: 20_009,
    });
  });

  it('takes a single mirrored target when the legacy fields are empty', () => {
    const mapped = ruleFromWire(
      rule({ target_host: '', target_port: 0, targets: [{ host: 'db', port: 5432, priority: 0 }] }),
    );
    assert.ok(mapped.ok);
    assert.equal(mapped.spec.targetHost, 'db');
    assert.equal(mapped.spec.targetPort, 5432);
  });

  it('refuses what this client does not implement, with the capability codes', () => {
    const two = [
      { host: 'a', port: 1, priority: 0 },
      { host: 'b', port: 2, priority: 1 },
    ];
    const cases: [Partial<WireRule>, string][] = [
      [{ protocol: 'PROTOCOL_UNSPECIFIED' }, 'unsupported_protocol'],
      [{ targets: two }, 'multi_target_unsupported_by_client'],
      [{ sni_pattern: '*.example.com' }, 'sni_unsupported_by_client'],
      [
        { targets: [{ host: 'a', port: 1, priority: 0, proxy_protocol: 'V2' }] },
        'proxy_protocol_unsupported_by_client',
      ],
      [{ rate_limit: { bandwidth_in_bps: 1000 } }, 'rate_limit_unsupported_by_client'],
      [{ target_host: '' }, 'invalid_target_host'],
      [{ listen_port: 0 }, 'range_invalid'],
    ];
    for (const [overrides, reason] of cases) {
      assert.deepEqual(ruleFromWire(rule(overrides)), { ok: false, reason }, reason);
    }
  });

  it('ignores an empty rate limit and an empty sni pattern', () => {
    assert.ok(ruleFromWire(rule({ rate_limit: { bandwidth_in_bps: null }, sni_pattern: '' })).ok);
  });
});

describe('statsToWire', () => {
  it('copies the cumulative counters and the per-port detail', () => {
    const port = {
      listen_port: 10_000,
      target_port: 80,
      bytes_in: 5,
      bytes_out: 7,
      active_connections: 1,
      conn_errors: 0,
      datagrams_in: 2,
      datagrams_out: 3,
      active_flows: 1,
      flows_dropped_overflow: 4,
    };
    const stats: RuleStats = {
      ...port,
      rule_id: '7',
      protocol: 'tcp',
      ports: [port],
    };
    assert.deepEqual(statsToWire(stats), {
      rule_id: '7',
      bytes_in: 5,
      bytes_out: 7,
      active_connections: 1,
      per_port: [
        {
          listen_port: 10_000,
          bytes_in: 5,
          bytes_out: 7,
          active_connections: 1,
          datagrams_in: 2,
          datagrams_out: 3,
        },
      ],
      dns_failures: 0,
      datagrams_in: 2,
      datagrams_out: 3,
      active_flows: 1,
      flows_dropped_overflow: 4,
      target_failovers_total: 0,
    });
  });
});
