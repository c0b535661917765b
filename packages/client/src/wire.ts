/**
 * Translation between the control protocol and the data plane: a pushed `Rule` becomes the
 * forwarder's one `RuleSpec` (or the honest reason this client cannot run it), and the
 * forwarder's `RuleStats` become a `RuleStats` wire entry with per-port and per-target detail.
 * This client (CLIENT_VERSION) runs single- and multi-target TCP and UDP rules, port ranges, DNS
 * targets, health checks, PROXY protocol (TCP v1/v2, UDP v2), SNI routing on shared TCP ports
 * (the listener counters of those ports go out as SniListenerStats), rate limits and source
 * lists. The wire's RateLimit is mapped to the forwarder's RateLimitSpec here and only here
 * (rules and owner envelopes alike), and rate-limit stats back. Pure; no sockets.
 */
import { normaliseCidr, normaliseSniPattern } from '@portunus/api';
import {
  MAX_TARGETS,
  RATE_LIMIT_REJECT_REASONS,
  type OwnerRateLimitStats,
  type RateLimitSpec,
  type RateLimitStats,
  type RuleSpec,
  type RuleStats,
  type SniListenerStats,
  type TargetSpec,
} from '@portunus/forwarder';
import type {
  WireOwnerRateLimitStats,
  WireProxyProtocol,
  WireRateLimit,
  WireRateLimitRejectReason,
  WireRateLimitStats,
  WireRule,
  WireRuleStats,
  WireSniListenerStats,
} from '@portunus/proto';

export type UnsupportedReason =
  | 'unsupported_protocol'
  | 'multi_target_unsupported_by_client'
  | 'validation.sni_pattern_malformed'
  | 'proxy_protocol_unsupported_by_client'
  | 'range_invalid'
  | 'invalid_target_host'
  | 'source_list_invalid';

export type RuleMapping = { ok: true; spec: RuleSpec } | { ok: false; reason: UnsupportedReason };

/** The wire's caps (absent and 0 alike: no cap) as the forwarder's, or null for none at all. */
export function rateLimitFromWire(limit: WireRateLimit | null | undefined): RateLimitSpec | null {
  if (limit === null || limit === undefined) return null;
  const spec: RateLimitSpec = {};
  const set = (field: keyof RateLimitSpec, value: number | null | undefined): void => {
    if (value !== null && value !== undefined && value > 0) spec[field] = value;
  };
  set('bandwidthInBps', limit.bandwidth_in_bps);
  set('bandwidthOutBps', limit.bandwidth_out_bps);
  set('newConnectionsPerSec', limit.new_connections_per_sec);
  set('concurrentConnections', limit.concurrent_connections);
  set('bandwidthInBurst', limit.bandwidth_in_burst);
  set('bandwidthOutBurst', limit.bandwidth_out_burst);
  set('newConnectionsBurst', limit.new_connections_burst);
  return Object.keys(spec).length > 0 ? spec : null;
}

/** A wire CIDR list in the normal spelling, or undefined when an entry is not a CIDR. */
function sourcesFromWire(list: readonly string[] | undefined): string[] | undefined {
  const out: string[] = [];
  for (const text of list ?? []) {
    const normal = normaliseCidr(text);
    if (typeof normal !== 'string') return undefined;
    out.push(normal);
  }
  return out;
}

function proxyFromWire(value: WireProxyProtocol | null | undefined): 'v1' | 'v2' | null {
  return value === 'V1' ? 'v1' : value === 'V2' ? 'v2' : null;
}

export function ruleFromWire(rule: WireRule): RuleMapping {
  const fail = (reason: UnsupportedReason): RuleMapping => ({ ok: false, reason });
  if (rule.protocol !== 'TCP' && rule.protocol !== 'UDP') return fail('unsupported_protocol');
  // The server sends patterns normalised; one that is not is refused, never guessed at.
  let sniPattern: string | null = null;
  if (rule.sni_pattern !== null && rule.sni_pattern !== undefined && rule.sni_pattern !== '') {
    const normal = normaliseSniPattern(rule.sni_pattern);
    if (typeof normal !== 'string') return fail('validation.sni_pattern_malformed');
    sniPattern = normal;
  }
  if (rule.targets.length > MAX_TARGETS) return fail('multi_target_unsupported_by_client');
  const protocol = rule.protocol === 'UDP' ? 'udp' : 'tcp';
  const portEnd = rule.target_port_end !== 0 ? rule.target_port_end : null;
  // A single-target rule leaves `targets` empty and uses the legacy fields (reference §4.2).
  const targets: TargetSpec[] =
    rule.targets.length > 0
      ? rule.targets.map((target, index) => ({
          host: target.host,
          port: target.port,
          portEnd: index === 0 && rule.targets.length === 1 ? portEnd : null,
          priority: target.priority,
          proxyProtocol: proxyFromWire(target.proxy_protocol),
        }))
      : [
          {
            host: rule.target_host,
            port: rule.target_port,
            portEnd,
            priority: 0,
            proxyProtocol: null,
          },
        ];
  if (targets.some((t) => t.host === '')) return fail('invalid_target_host');
  // Port 0 would let the kernel pick, which the server could never know: refuse it here.
  if (rule.listen_port === 0 || targets.some((t) => t.port === 0)) return fail('range_invalid');
  // PROXY v1 is a stream preamble; on UDP only v2 exists (README, "PROXY protocol").
  if (protocol === 'udp' && targets.some((t) => t.proxyProtocol === 'v1')) {
    return fail('proxy_protocol_unsupported_by_client');
  }
  const allowedSources = sourcesFromWire(rule.allowed_sources);
  const deniedSources = sourcesFromWire(rule.denied_sources);
  // The count limit is the forwarder's check (MAX_SOURCE_CIDRS), reported with the same reason.
  if (allowedSources === undefined || deniedSources === undefined) {
    return fail('source_list_invalid');
  }
  return {
    ok: true,
    spec: {
      ruleId: rule.rule_id,
      protocol,
      listenPort: rule.listen_port,
      listenPortEnd: rule.listen_port_end !== 0 ? rule.listen_port_end : null,
      targets,
      preferIpv6: rule.prefer_ipv6 === true,
      healthCheckIntervalSecs:
        rule.health_check_interval_secs > 0 ? rule.health_check_interval_secs : null,
      ownerId: rule.owner_id ?? null,
      sniPattern,
      rateLimit: rateLimitFromWire(rule.rate_limit),
      allowedSources,
      deniedSources,
    },
  };
}

function rateLimitStatsToWire(stats: RateLimitStats): WireRateLimitStats {
  return {
    reject_total: RATE_LIMIT_REJECT_REASONS.filter((reason) => stats.rejects[reason] > 0).map(
      (reason) => ({
        // The wire enum is the reason in capitals (reference §4.2 RateLimitRejectReason).
        reason: reason.toUpperCase() as WireRateLimitRejectReason,
        total: stats.rejects[reason],
      }),
    ),
    throttle_micros_in: stats.throttle_micros_in,
    throttle_micros_out: stats.throttle_micros_out,
    active_connections: stats.active_connections,
  };
}

/** The owner envelopes' stats of a StatsReport (reference §4.2 OwnerRateLimitStats). */
export function ownerStatsToWire(stats: readonly OwnerRateLimitStats[]): WireOwnerRateLimitStats[] {
  return stats.map((entry) => ({
    owner_id: entry.owner_id,
    stats: rateLimitStatsToWire(entry.stats),
  }));
}

/** Cumulative stats of one active rule, with per-port and (multi-target) per-target detail. */
export function statsToWire(stats: RuleStats): WireRuleStats {
  return {
    rule_id: stats.rule_id,
    bytes_in: stats.bytes_in,
    bytes_out: stats.bytes_out,
    active_connections: stats.active_connections,
    per_port: stats.ports.map((port) => ({
      listen_port: port.listen_port,
      bytes_in: port.bytes_in,
      bytes_out: port.bytes_out,
      active_connections: port.active_connections,
      datagrams_in: port.datagrams_in,
      datagrams_out: port.datagrams_out,
    })),
    dns_failures: stats.dns_failures,
    datagrams_in: stats.datagrams_in,
    datagrams_out: stats.datagrams_out,
    active_flows: stats.active_flows,
    flows_dropped_overflow: stats.flows_dropped_overflow,
    target_failovers_total: stats.target_failovers_total,
    sni_route_exact_total: stats.sni_route_exact_total,
    sni_route_wildcard_total: stats.sni_route_wildcard_total,
    sni_route_fallback_total: stats.sni_route_fallback_total,
    // Uncapped rules carry no rate-limit block, so their reports stay as small as before.
    ...(stats.rate_limit !== null ? { rate_limit: rateLimitStatsToWire(stats.rate_limit) } : {}),
    source_denied_total: stats.source_denied,
    // Only multi-target rules: one target has no alternative, so its health says nothing the
    // counters do not, and every report (and the server's rule list) stays as small as before.
    per_target: (stats.targets.length > 1 ? stats.targets : []).map((target) => ({
      index: target.index,
      host: target.host,
      port: target.port,
      priority: target.priority,
      health: target.health === 'healthy' ? 0 : 1,
      consecutive_failures: target.consecutive_failures,
      last_failure_at_unix_ms: target.last_failure_at_unix_ms,
      last_success_at_unix_ms: target.last_success_at_unix_ms,
      bytes_in: target.bytes_in,
      bytes_out: target.bytes_out,
      connections_accepted: target.connections_accepted,
    })),
  };
}

/** The listener counters of one shared SNI port (reference §4.2 SniListenerStats). */
export function sniListenerStatsToWire(stats: SniListenerStats): WireSniListenerStats {
  return {
    listen_port: stats.listen_port,
    sni_route_miss_total: stats.sni_route_miss_total,
    client_hello_parse_failures_total: stats.client_hello_parse_failures_total,
    client_hello_peek_bucket_counts: [...stats.client_hello_peek_bucket_counts],
    client_hello_peek_sum_micros: stats.client_hello_peek_sum_micros,
    client_hello_peek_count: stats.client_hello_peek_count,
  };
}
