// Proves the wire ↔ data-plane mapping: legacy single-target rules and ranges, and multi-target
// rules with priorities, PROXY versions, IPv6 preference, health interval and owner, become the
// forwarder's RuleSpec (SNI patterns normalised); features this client does not implement are
// refused with the server's capability codes; rate limits (all seven caps, 0 as absent) and
// source lists (normalised, bad CIDRs refused) map onto the RuleSpec; forwarder stats become
// cumulative RuleStats with per-port and per-target detail, SNI route counters, the rate-limit
// block and the owner envelopes' stats, and SNI listener counters their own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { simpleRule, type RuleStats } from '@portunus/forwarder';
import type { WireRule } from '@portunus/proto';

import {
  ownerStatsToWire,
  rateLimitFromWire,
  ruleFromWire,
  sniListenerStatsToWire,
  statsToWire,
} from './wire.js';

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
      spec: simpleRule({
        ruleId: '7',
        protocol: 'tcp',
        listenPort: 10_000,
        targetHost: '10.0.0.1',
        targetPort: 80,
      }),
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
    assert.deepEqual(
      mapped.spec,
      simpleRule({
        ruleId: '7',
        protocol: 'udp',
        listenPort: 10_000,
        listenPortEnd: 10_009,
        targetHost: '10.0.0.1',
        targetPort: 20_000,
        targetPortEnd: 20_009,
      }),
    );
  });

  it('takes a single mirrored target when the legacy fields are empty', () => {
    const mapped = ruleFromWire(
      rule({ target_host: '', target_port: 0, targets: [{ host: 'db', port: 5432, priority: 0 }] }),
    );
    assert.ok(mapped.ok);
    assert.deepEqual(
      mapped.spec.targets.map((t) => `${t.host}:${t.port}`),
      ['db:5432'],
    );
  });

  it('maps a multi-target rule with priorities, PROXY versions and the rule-wide fields', () => {
    const mapped = ruleFromWire(
      rule({
        targets: [
          { host: 'a.example', port: 1, priority: 5, proxy_protocol: 'V1' },
          { host: '10.0.0.2', port: 2, priority: 1, proxy_protocol: 'V2' },
          { host: '10.0.0.3', port: 3, priority: 9, proxy_protocol: null },
        ],
        prefer_ipv6: true,
        health_check_interval_secs: 7,
        owner_id: 'alice',
      }),
    );
    assert.ok(mapped.ok);
    assert.deepEqual(mapped.spec.targets, [
      { host: 'a.example', port: 1, portEnd: null, priority: 5, proxyProtocol: 'v1' },
      { host: '10.0.0.2', port: 2, portEnd: null, priority: 1, proxyProtocol: 'v2' },
      { host: '10.0.0.3', port: 3, portEnd: null, priority: 9, proxyProtocol: null },
    ]);
    assert.equal(mapped.spec.preferIpv6, true);
    assert.equal(mapped.spec.healthCheckIntervalSecs, 7);
    assert.equal(mapped.spec.ownerId, 'alice');
  });

  it('refuses what this client does not implement, with the capability codes', () => {
    const nine = Array.from({ length: 9 }, (_, i) => ({ host: 'a', port: i + 1, priority: i }));
    const cases: [Partial<WireRule>, string][] = [
      [{ protocol: 'PROTOCOL_UNSPECIFIED' }, 'unsupported_protocol'],
      [{ targets: nine }, 'multi_target_unsupported_by_client'],
      [{ sni_pattern: '*.com' }, 'validation.sni_pattern_malformed'],
      [
        {
          protocol: 'UDP',
          targets: [{ host: 'a', port: 1, priority: 0, proxy_protocol: 'V1' }],
        },
        'proxy_protocol_unsupported_by_client',
      ],
      [{ target_host: '' }, 'invalid_target_host'],
      [{ listen_port: 0 }, 'range_invalid'],
    ];
    for (const [overrides, reason] of cases) {
      assert.deepEqual(ruleFromWire(rule(overrides)), { ok: false, reason }, reason);
    }
  });

  it('accepts PROXY v2 on UDP', () => {
    const mapped = ruleFromWire(
      rule({
        protocol: 'UDP',
        targets: [{ host: 'a', port: 1, priority: 0, proxy_protocol: 'V2' }],
      }),
    );
    assert.ok(mapped.ok);
    assert.deepEqual(
      mapped.spec.targets.map((t) => t.proxyProtocol),
      ['v2'],
    );
  });

  it('carries an SNI pattern in its normal spelling', () => {
    const mapped = ruleFromWire(rule({ sni_pattern: ' *.Example.COM ' }));
    assert.ok(mapped.ok);
    assert.equal(mapped.spec.sniPattern, '*.example.com');
    const plain = ruleFromWire(rule({}));
    assert.ok(plain.ok);
    assert.equal(plain.spec.sniPattern, null);
  });

  it('ignores an empty rate limit and an empty sni pattern', () => {
    const mapped = ruleFromWire(rule({ rate_limit: { bandwidth_in_bps: null }, sni_pattern: '' }));
    assert.ok(mapped.ok);
    assert.equal(mapped.spec.rateLimit, null);
  });

  it('activates rate-limited rules, mapping every cap and dropping zeros', () => {
    const mapped = ruleFromWire(
      rule({
        owner_id: 'u1',
        rate_limit: {
          bandwidth_in_bps: 1000,
          bandwidth_out_bps: 2000,
          new_connections_per_sec: 5,
          concurrent_connections: 3,
          bandwidth_in_burst: 500,
          bandwidth_out_burst: 0,
          new_connections_burst: 10,
        },
      }),
    );
    assert.ok(mapped.ok);
    assert.equal(mapped.spec.ownerId, 'u1');
    assert.deepEqual(mapped.spec.rateLimit, {
      bandwidthInBps: 1000,
      bandwidthOutBps: 2000,
      newConnectionsPerSec: 5,
      concurrentConnections: 3,
      bandwidthInBurst: 500,
      newConnectionsBurst: 10,
    });
    assert.equal(rateLimitFromWire(null), null);
    assert.equal(rateLimitFromWire({ concurrent_connections: 0 }), null);
  });

  it('normalises source lists and refuses an entry that is not a CIDR', () => {
    const mapped = ruleFromWire(
      rule({ allowed_sources: ['10.0.0.0/8', '2001:DB8::/32'], denied_sources: ['10.0.0.7'] }),
    );
    assert.ok(mapped.ok);
    assert.deepEqual(mapped.spec.allowedSources, ['10.0.0.0/8', '2001:db8::/32']);
    assert.deepEqual(mapped.spec.deniedSources, ['10.0.0.7/32']);
    for (const bad of [{ allowed_sources: ['10.0.0.1/8'] }, { denied_sources: ['nope'] }]) {
      assert.deepEqual(ruleFromWire(rule(bad)), { ok: false, reason: 'source_list_invalid' });
    }
  });
});

describe('rate-limit stats to the wire', () => {
  const limited = {
    rejects: {
      conn_concurrent: 2,
      conn_rate: 0,
      udp_flow_rate: 0,
      owner_concurrent: 0,
      owner_conn_rate: 7,
      owner_udp_flow_rate: 0,
    },
    throttle_micros_in: 1500,
    throttle_micros_out: 30,
    active_connections: 4,
    datagrams_dropped_in: 9,
    datagrams_dropped_out: 0,
  };

  it('carries the reject reasons that happened, throttle time, live count and source denials', () => {
    const base = simpleRule({
      ruleId: '9',
      protocol: 'tcp',
      listenPort: 1,
      targetHost: 'h',
      targetPort: 2,
    });
    const stats: RuleStats = {
      rule_id: base.ruleId,
      protocol: 'tcp',
      bytes_in: 0,
      bytes_out: 0,
      active_connections: 4,
      conn_errors: 0,
      connect_failures: 0,
      datagrams_in: 0,
      datagrams_out: 0,
      active_flows: 0,
      flows_dropped_overflow: 0,
      dns_failures: 0,
      source_denied: 11,
      rate_limit: limited,
      target_failovers_total: 0,
      sni_route_exact_total: 0,
      sni_route_wildcard_total: 0,
      sni_route_fallback_total: 0,
      ports: [],
      targets: [],
    };
    const wire = statsToWire(stats);
    assert.equal(wire.source_denied_total, 11);
    assert.deepEqual(wire.rate_limit, {
      reject_total: [
        { reason: 'CONN_CONCURRENT', total: 2 },
        { reason: 'OWNER_CONN_RATE', total: 7 },
      ],
      throttle_micros_in: 1500,
      throttle_micros_out: 30,
      active_connections: 4,
    });
    assert.equal('rate_limit' in statsToWire({ ...stats, rate_limit: null }), false);
  });

  it('reports each owner envelope', () => {
    assert.deepEqual(ownerStatsToWire([{ owner_id: 'u1', stats: limited }]), [
      {
        owner_id: 'u1',
        stats: {
          reject_total: [
            { reason: 'CONN_CONCURRENT', total: 2 },
            { reason: 'OWNER_CONN_RATE', total: 7 },
          ],
          throttle_micros_in: 1500,
          throttle_micros_out: 30,
          active_connections: 4,
        },
      },
    ]);
  });
});

describe('statsToWire', () => {
  it('copies the cumulative counters, the per-port and the per-target detail', () => {
    const port = {
      listen_port: 10_000,
      target_port: 80,
      bytes_in: 5,
      bytes_out: 7,
      active_connections: 1,
      conn_errors: 0,
      connect_failures: 0,
      datagrams_in: 2,
      datagrams_out: 3,
      active_flows: 1,
      flows_dropped_overflow: 4,
    };
    const stats: RuleStats = {
      ...port,
      rule_id: '7',
      protocol: 'tcp',
      dns_failures: 6,
      source_denied: 0,
      rate_limit: null,
      target_failovers_total: 2,
      sni_route_exact_total: 8,
      sni_route_wildcard_total: 9,
      sni_route_fallback_total: 10,
      ports: [port],
      targets: [
        {
          index: 0,
          host: 'a.example',
          port: 80,
          priority: 0,
          health: 'failed',
          consecutive_failures: 3,
          last_failure_at_unix_ms: 1000,
          last_success_at_unix_ms: 500,
          bytes_in: 1,
          bytes_out: 2,
          connections_accepted: 4,
        },
        {
          index: 1,
          host: '10.0.0.9',
          port: 81,
          priority: 1,
          health: 'healthy',
          consecutive_failures: 0,
          last_failure_at_unix_ms: 0,
          last_success_at_unix_ms: 0,
          bytes_in: 0,
          bytes_out: 0,
          connections_accepted: 0,
        },
      ],
    };
    const single = statsToWire({ ...stats, targets: stats.targets.slice(0, 1) });
    assert.deepEqual(single.per_target, [], 'a single-target rule reports no per-target detail');
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
      dns_failures: 6,
      datagrams_in: 2,
      datagrams_out: 3,
      active_flows: 1,
      flows_dropped_overflow: 4,
      target_failovers_total: 2,
      sni_route_exact_total: 8,
      sni_route_wildcard_total: 9,
      sni_route_fallback_total: 10,
      source_denied_total: 0,
      per_target: [
        {
          index: 0,
          host: 'a.example',
          port: 80,
          priority: 0,
          health: 1,
          consecutive_failures: 3,
          last_failure_at_unix_ms: 1000,
          last_success_at_unix_ms: 500,
          bytes_in: 1,
          bytes_out: 2,
          connections_accepted: 4,
        },
        {
          index: 1,
          host: '10.0.0.9',
          port: 81,
          priority: 1,
          health: 0,
          consecutive_failures: 0,
          last_failure_at_unix_ms: 0,
          last_success_at_unix_ms: 0,
          bytes_in: 0,
          bytes_out: 0,
          connections_accepted: 0,
        },
      ],
    });
  });
});

describe('sniListenerStatsToWire', () => {
  it('copies the listener counters and the histogram, leaving the edge-only ones out', () => {
    const buckets = Array.from({ length: 16 }, (_, i) => i);
    assert.deepEqual(
      sniListenerStatsToWire({
        listen_port: 8443,
        sni_route_miss_total: 3,
        client_hello_parse_failures_total: 4,
        peek_capacity_drops_total: 5,
        client_hello_peek_bucket_counts: buckets,
        client_hello_peek_sum_micros: 1234,
        client_hello_peek_count: 120,
        peeks_in_flight: 2,
      }),
      {
        listen_port: 8443,
        sni_route_miss_total: 3,
        client_hello_parse_failures_total: 4,
        client_hello_peek_bucket_counts: buckets,
        client_hello_peek_sum_micros: 1234,
        client_hello_peek_count: 120,
      },
    );
  });
});
