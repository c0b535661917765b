/**
 * Translation between the control protocol and the data plane: a pushed `Rule` becomes a
 * forwarder `RuleSpec` (or the honest reason this client cannot run it), and forwarder stats
 * become a `RuleStats` wire entry. This client (CLIENT_VERSION 0.1) implements single-target TCP
 * and UDP rules and port ranges; multi-target, SNI, PROXY protocol and rate limits are refused
 * with the server's own capability codes rather than silently ignored. Pure; no sockets.
 */
import type { RuleSpec, RuleStats } from '@portunus/forwarder';
import type { WireRateLimit, WireRule, WireRuleStats } from '@portunus/proto';

export type UnsupportedReason =
  | 'unsupported_protocol'
  | 'multi_target_unsupported_by_client'
  | 'sni_unsupported_by_client'
  | 'proxy_protocol_unsupported_by_client'
  | 'rate_limit_unsupported_by_client'
  | 'range_invalid'
  | 'invalid_target_host';

export type RuleMapping = { ok: true; spec: RuleSpec } | { ok: false; reason: UnsupportedReason };

function hasRateLimit(limit: WireRateLimit | null | undefined): boolean {
  if (limit === null || limit === undefined) return false;
  return Object.values(limit).some((cap) => cap !== null && cap !== undefined && cap !== 0);
}

export function ruleFromWire(rule: WireRule): RuleMapping {
  const fail = (reason: UnsupportedReason): RuleMapping => ({ ok: false, reason });
  if (rule.protocol !== 'TCP' && rule.protocol !== 'UDP') return fail('unsupported_protocol');
  const targets = rule.targets;
  if (targets.length > 1) return fail('multi_target_unsupported_by_client');
  if (rule.sni_pattern !== null && rule.sni_pattern !== undefined && rule.sni_pattern !== '') {
    return fail('sni_unsupported_by_client');
  }
  if (targets.some((t) => t.proxy_protocol === 'V1' || t.proxy_protocol === 'V2')) {
    return fail('proxy_protocol_unsupported_by_client');
  }
  if (hasRateLimit(rule.rate_limit)) return fail('rate_limit_unsupported_by_client');
  // A one-entry `targets` mirrors the legacy fields; prefer the legacy fields when present.
  const [only] = targets;
  const targetHost = rule.target_host !== '' ? rule.target_host : (only?.host ?? '');
  const targetPort = rule.target_port !== 0 ? rule.target_port : (only?.port ?? 0);
  if (targetHost === '') return fail('invalid_target_host');
  // Port 0 would let the kernel pick, which the server could never know: refuse it here.
  if (rule.listen_port === 0 || targetPort === 0) return fail('range_invalid');
  return {
    ok: true,
    spec: {
      ruleId: rule.rule_id,
      protocol: rule.protocol === 'UDP' ? 'udp' : 'tcp',
      listenPort: rule.listen_port,
      targetHost,
      targetPort,
      ...(rule.listen_port_end !== 0 ? { listenPortEnd: rule.listen_port_end } : {}),
      ...(rule.target_port_end !== 0 ? { targetPortEnd: rule.target_port_end } : {}),
    },
  };
}

/** Cumulative stats of one active rule, with per-port detail. */
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
    dns_failures: 0,
    datagrams_in: stats.datagrams_in,
    datagrams_out: stats.datagrams_out,
    active_flows: stats.active_flows,
    flows_dropped_overflow: stats.flows_dropped_overflow,
    target_failovers_total: 0,
  };
}
