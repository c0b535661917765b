/**
 * The request checks of `POST /v1/rules` (reference §2.4), run in the reference's order before
 * anything touches the store: shape (legacy target_host/target_port or targets[]), ranges,
 * targets, health-check interval, SNI pattern, rate limit, protocol, and the target host syntax.
 * Returns the push in the store's terms. Pure: no store, no clock.
 */
import net from 'node:net';

import { PortunusError, type ErrorCode } from '@portunus/core';
import type { Protocol, RateLimit, RuleTarget } from '@portunus/store';

export interface RulePushBody {
  client: string;
  listen_port: number;
  listen_port_end?: number;
  target_host?: string;
  target_port?: number;
  target_port_end?: number;
  targets?: { host: string; port: number; priority?: number; proxy_protocol?: 'v1' | 'v2' }[];
  protocol?: string;
  prefer_ipv6?: boolean;
  ack_timeout_secs?: number;
  health_check_interval_secs?: number;
  sni_pattern?: string;
  rate_limit?: Record<string, number>;
}

export interface RulePush {
  clientName: string;
  protocol: Protocol;
  listenPort: number;
  listenPortEnd: number | null;
  targets: RuleTarget[];
  preferIpv6: boolean;
  healthCheckIntervalSecs: number | null;
  sniPattern: string | null;
  rateLimit: RateLimit | null;
  ackTimeoutSecs: number;
}

const MAX_TARGETS = 8;

const RATE_FIELDS: Readonly<Record<string, keyof RateLimit>> = {
  bandwidth_in_bps: 'bandwidthInBps',
  bandwidth_out_bps: 'bandwidthOutBps',
  new_connections_per_sec: 'newConnectionsPerSec',
  concurrent_connections: 'concurrentConnections',
  bandwidth_in_burst: 'bandwidthInBurst',
  bandwidth_out_burst: 'bandwidthOutBurst',
  new_connections_burst: 'newConnectionsBurst',
};
const BURST_OF: Readonly<Record<string, string>> = {
  bandwidth_in_burst: 'bandwidth_in_bps',
  bandwidth_out_burst: 'bandwidth_out_bps',
  new_connections_burst: 'new_connections_per_sec',
};

function fail(code: ErrorCode, message: string): never {
  throw new PortunusError(code, message);
}

const isPort = (port: number): boolean => Number.isInteger(port) && port >= 1 && port <= 65535;

/** An IPv4/IPv6 literal or an RFC-1123 name of at most 253 characters. */
export function isValidTargetHost(host: string): boolean {
  if (net.isIP(host) !== 0) return true;
  if (host.length < 1 || host.length > 253 || /^[\d.]+$/.test(host)) return false;
  return host
    .replace(/\.$/, '')
    .split('.')
    .every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

/** Lowercased SNI pattern, or throws validation.sni_pattern_malformed (reference §2.4). */
export function normaliseSniPattern(pattern: string): string {
  const value = pattern.trim().toLowerCase();
  const wildcard = value.startsWith('*.');
  const labels = (wildcard ? value.slice(2) : value).split('.');
  const ok =
    value.length <= 253 &&
    labels.every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) &&
    (!wildcard || labels.length >= 2);
  if (!ok)
    fail('validation.sni_pattern_malformed', `sni_pattern ${JSON.stringify(pattern)} is not valid`);
  return value;
}

export function validateRulePush(body: RulePushBody): RulePush {
  const legacy = body.target_host !== undefined || body.target_port !== undefined;
  if (legacy && body.targets !== undefined) {
    fail('rule_shape_conflict', 'give either target_host/target_port or targets, not both');
  }
  if (!legacy && body.targets === undefined) {
    fail('rule_shape_missing', 'give target_host and target_port, or targets');
  }
  if (!isPort(body.listen_port))
    fail('range_invalid', `listen_port ${body.listen_port} is not 1..65535`);
  const listenEnd = body.listen_port_end ?? null;
  if (legacy && (listenEnd === null) !== (body.target_port_end === undefined)) {
    fail('range_invalid', 'mismatched_range: listen_port_end and target_port_end go together');
  }
  if (listenEnd !== null && (!isPort(listenEnd) || listenEnd < body.listen_port)) {
    fail('range_invalid', `listen range ${body.listen_port}-${listenEnd} is not valid`);
  }
  let targets: RuleTarget[];
  if (legacy) {
    const port = body.target_port ?? 0;
    if (body.target_host === undefined || body.target_host.trim() === '') {
      fail('rule_shape_missing', 'target_host is required with target_port');
    }
    if (!isPort(port)) fail('target_invalid_port', `target_port ${port} is not 1..65535`);
    const portEnd = body.target_port_end ?? null;
    if (portEnd !== null && listenEnd !== null) {
      if (!isPort(portEnd) || portEnd - port !== listenEnd - body.listen_port) {
        fail(
          'range_invalid',
          'mismatched_range: the target range must match the listen range in size',
        );
      }
    }
    targets = [{ host: body.target_host, port, portEnd, priority: 0, proxyProtocol: null }];
  } else {
    const list = body.targets ?? [];
    if (list.length === 0) fail('targets_empty', 'targets needs at least one entry');
    if (list.length > MAX_TARGETS) fail('targets_too_many', `at most ${MAX_TARGETS} targets`);
    const seen = new Set<string>();
    targets = list.map((target, index) => {
      if (target.host.trim() === '') fail('invalid_target_host', `targets[${index}].host is empty`);
      if (!isPort(target.port)) fail('target_invalid_port', `target_invalid_port:${index}`);
      const key = `${target.host.toLowerCase()}:${target.port}`;
      if (seen.has(key)) fail('targets_duplicate', `targets list ${key} twice`);
      seen.add(key);
      const priority = target.priority ?? index;
      if (!Number.isInteger(priority) || priority < 0 || priority > 99) {
        fail('range_invalid', `targets[${index}].priority must be 0..99`);
      }
      return {
        host: target.host,
        port: target.port,
        portEnd: null,
        priority,
        proxyProtocol: target.proxy_protocol ?? null,
      };
    });
  }
  const interval = body.health_check_interval_secs;
  if (
    interval !== undefined &&
    (legacy || !Number.isInteger(interval) || interval < 1 || interval > 3600)
  ) {
    fail(
      'health_check_interval_out_of_range',
      'health_check_interval_secs is 1..3600, with targets only',
    );
  }
  const protocolText = body.protocol ?? 'tcp';
  let sniPattern: string | null = null;
  if (body.sni_pattern !== undefined) {
    if (protocolText !== 'tcp' || listenEnd !== null) {
      fail('validation.sni_on_unsupported_rule', 'sni_pattern needs a single-port tcp rule');
    }
    sniPattern = normaliseSniPattern(body.sni_pattern);
  }
  const rateLimit =
    body.rate_limit === undefined ? null : validateRateLimit(body.rate_limit, legacy);
  if (protocolText !== 'tcp' && protocolText !== 'udp') {
    fail('invalid_protocol', `protocol ${JSON.stringify(protocolText)} is not tcp or udp`);
  }
  for (const target of targets) {
    if (!isValidTargetHost(target.host)) {
      fail(
        'invalid_target_host',
        `${JSON.stringify(target.host)} is not an IP address or DNS name`,
      );
    }
  }
  return {
    clientName: body.client,
    protocol: protocolText,
    listenPort: body.listen_port,
    listenPortEnd: listenEnd,
    targets,
    preferIpv6: body.prefer_ipv6 ?? false,
    healthCheckIntervalSecs: interval ?? null,
    sniPattern,
    rateLimit,
    ackTimeoutSecs: body.ack_timeout_secs ?? 2,
  };
}

function validateRateLimit(raw: Record<string, number>, legacy: boolean): RateLimit {
  if (legacy) fail('validation.rate_limit_on_legacy_shape', 'rate_limit needs the targets shape');
  const caps: RateLimit = {};
  for (const [name, value] of Object.entries(raw)) {
    const field = RATE_FIELDS[name];
    if (field === undefined) fail('validation_failed', `rate_limit.${name} is not a known cap`);
    if (!Number.isInteger(value) || value <= 0) {
      fail('validation.rate_limit_cap_zero', `rate_limit.${name} must be a positive integer`);
    }
    caps[field] = value;
  }
  for (const [burst, rate] of Object.entries(BURST_OF)) {
    if (raw[burst] !== undefined && raw[rate] === undefined) {
      fail(
        'validation.rate_limit_burst_without_rate',
        `rate_limit.${burst} needs rate_limit.${rate}`,
      );
    }
  }
  return caps;
}
