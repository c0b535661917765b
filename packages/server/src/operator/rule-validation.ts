/**
 * The request checks of `POST /v1/rules` (reference §2.4), in the reference's order, before
 * anything touches the store: `validateRuleBody` runs shape → ranges → SNI → rate limit → targets
 * → protocol; after the route has resolved the client and checked the grants,
 * `checkGrantedPush` runs the legacy target-host syntax, PROXY-on-UDP and the range cap, and
 * `checkNotSelf` refuses targets that are the rule's own listener. Push and edit run the same
 * checks. Every failure is built by `ruleError` from the core catalogue. Pure: no store, no clock.
 */
import net from 'node:net';

import { normaliseSniPattern as normaliseApiSniPattern } from '@portunus/api';
import { PortunusError, type ErrorCode } from '@portunus/core';
import {
  isValidPort,
  parseProxyProtocol as parseProxySetting,
  proxyProtocolFitsProtocol,
  targetHostProblem,
  targetKey,
} from '@portunus/forwarder';
import type { Protocol, RateLimit, RuleTarget } from '@portunus/store';

// The host, port and PROXY checks are shared with the standalone's config (forwarder/rule-checks).
export { targetHostProblem };

export type RuleErrorCode = ErrorCode;

/** The one constructor of every rule-validation failure. */
export function ruleError(code: RuleErrorCode, message: string): PortunusError {
  return new PortunusError(code, message);
}

function fail(code: RuleErrorCode, message: string): never {
  throw ruleError(code, message);
}

export interface TargetBody {
  host: string;
  port: number;
  priority?: number | null;
  proxy_protocol?: string | null;
}

export interface RateLimitBody {
  bandwidth_in_bps?: number | null;
  bandwidth_out_bps?: number | null;
  new_connections_per_sec?: number | null;
  concurrent_connections?: number | null;
  bandwidth_in_burst?: number | null;
  bandwidth_out_burst?: number | null;
  new_connections_burst?: number | null;
  /** Reserved: concurrency is a hard ceiling, never a bucket; any value is refused. */
  concurrent_connections_burst?: number | null;
}

/** The `POST /v1/rules` body (reference §2.4); `null` means absent, as in the reference. */
export interface RulePushBody {
  client: string;
  listen_port: number;
  listen_port_end?: number | null;
  target_host?: string | null;
  target_port?: number | null;
  target_port_end?: number | null;
  targets?: TargetBody[] | null;
  protocol?: string | null;
  prefer_ipv6?: boolean | null;
  ack_timeout_secs?: number | null;
  health_check_interval_secs?: number | null;
  sni_pattern?: string | null;
  rate_limit?: RateLimitBody | null;
}

/** A push in the store's terms, once the body passed every request check. */
export interface RulePush {
  clientName: string;
  /** Legacy `target_host`/`target_port`, or the `targets[]` list. */
  shape: 'legacy' | 'targets';
  protocol: Protocol;
  listenPort: number;
  /** Null for a single port (also when listen_port_end equals listen_port). */
  listenPortEnd: number | null;
  targets: RuleTarget[];
  preferIpv6: boolean;
  healthCheckIntervalSecs: number | null;
  sniPattern: string | null;
  rateLimit: RateLimit | null;
  ackTimeoutSecs: number;
}

export const MAX_TARGETS = 8;
export const DEFAULT_ACK_TIMEOUT_SECS = 2;

const present = <T>(value: T | null | undefined): value is T =>
  value !== undefined && value !== null;
const isPort = (port: number): boolean => isValidPort(port);

/** Shape → ranges → SNI → rate limit → targets → protocol (reference §2.4 order). */
export function validateRuleBody(body: RulePushBody): RulePush {
  const shape = checkShape(body);
  const { listenPortEnd, targetPortEnd } = checkRanges(body);
  const sniPattern = checkSni(body, listenPortEnd);
  const rateLimit = checkRateLimit(body.rate_limit, shape);
  const targets =
    shape === 'legacy' ? legacyTarget(body, listenPortEnd, targetPortEnd) : targetList(body);
  const protocol = checkProtocol(body.protocol);
  return {
    clientName: body.client,
    shape,
    protocol,
    listenPort: body.listen_port,
    listenPortEnd,
    targets,
    preferIpv6: body.prefer_ipv6 ?? false,
    healthCheckIntervalSecs: shape === 'targets' ? (body.health_check_interval_secs ?? null) : null,
    sniPattern,
    rateLimit,
    ackTimeoutSecs: body.ack_timeout_secs ?? DEFAULT_ACK_TIMEOUT_SECS,
  };
}

/**
 * The checks that follow the grant check (reference §2.4): the legacy target host's syntax, PROXY
 * v1 only on TCP (v2 on UDP is beyond the reference: a header in front of each datagram, README
 * "PROXY protocol"), and the range cap (`range_rule_max_ports`).
 */
export function checkGrantedPush(push: RulePush, rangeRuleMaxPorts: number): void {
  if (push.shape === 'legacy') {
    for (const target of push.targets) {
      const problem = targetHostProblem(target.host);
      if (problem) fail(problem.code, problem.message);
    }
  }
  if (
    push.targets.some((target) => !proxyProtocolFitsProtocol(push.protocol, target.proxyProtocol))
  ) {
    fail(
      'validation.proxy_protocol_on_unsupported_rule',
      'proxy_protocol v1 is only valid on tcp rules; udp targets take v2',
    );
  }
  const size = (push.listenPortEnd ?? push.listenPort) - push.listenPort + 1;
  if (size > rangeRuleMaxPorts) {
    fail(
      'exceeds_cap',
      `exceeds_cap: the listen range has ${size} ports; this server allows at most ${rangeRuleMaxPorts}`,
    );
  }
}

function checkShape(body: RulePushBody): RulePush['shape'] {
  const legacy = present(body.target_host) || present(body.target_port);
  const list = present(body.targets);
  if (legacy && list) {
    fail('rule_shape_conflict', 'give either target_host/target_port or targets[], not both');
  }
  if (!legacy && !list) fail('rule_shape_missing', 'give target_host/target_port or targets[]');
  return legacy ? 'legacy' : 'targets';
}

function checkRanges(body: RulePushBody): {
  listenPortEnd: number | null;
  targetPortEnd: number | null;
} {
  const end = body.listen_port_end ?? null;
  const targetEnd = body.target_port_end ?? null;
  if ((end === null) !== (targetEnd === null)) {
    fail(
      'range_invalid',
      'mismatched_range: listen_port_end and target_port_end must be present together',
    );
  }
  if (!isPort(body.listen_port)) {
    fail('range_invalid', `range_out_of_bounds: listen_port ${body.listen_port} is not 1..65535`);
  }
  if (end !== null) {
    if (!isPort(end)) {
      fail('range_invalid', `range_out_of_bounds: listen_port_end ${end} is not 1..65535`);
    }
    if (end < body.listen_port) {
      fail('range_invalid', `range_inverted: listen ${body.listen_port}-${end}`);
    }
  }
  if (targetEnd !== null && !isPort(targetEnd)) {
    fail('range_invalid', `range_out_of_bounds: target_port_end ${targetEnd} is not 1..65535`);
  }
  return { listenPortEnd: end === body.listen_port ? null : end, targetPortEnd: targetEnd };
}

function checkSni(body: RulePushBody, listenPortEnd: number | null): string | null {
  if (!present(body.sni_pattern)) return null;
  const protocol = body.protocol ?? 'tcp';
  if (protocol.toLowerCase() !== 'tcp') {
    fail(
      'validation.sni_on_unsupported_rule',
      `sni_pattern is only valid on tcp single-port rules; got protocol ${JSON.stringify(protocol)}`,
    );
  }
  if (listenPortEnd !== null) {
    fail(
      'validation.sni_on_unsupported_rule',
      `sni_pattern is only valid on single-port rules, not ranges (listen ${body.listen_port}-${listenPortEnd})`,
    );
  }
  return normaliseSniPattern(body.sni_pattern);
}

/**
 * The lowercased SNI selector (reference §2.4), by @portunus/api's one grammar (shared with the
 * web UI and the forwarder); a malformed one is `validation.sni_pattern_malformed`.
 */
export function normaliseSniPattern(raw: string): string {
  const normal = normaliseApiSniPattern(raw);
  if (typeof normal === 'string') return normal;
  return fail(
    'validation.sni_pattern_malformed',
    `sni_pattern ${JSON.stringify(raw)}: ${normal.error}`,
  );
}

const RATE_CAPS = [
  ['bandwidth_in_bps', 'bandwidthInBps'],
  ['bandwidth_out_bps', 'bandwidthOutBps'],
  ['new_connections_per_sec', 'newConnectionsPerSec'],
  ['concurrent_connections', 'concurrentConnections'],
] as const satisfies readonly (readonly [keyof RateLimitBody, keyof RateLimit])[];

const RATE_BURSTS = [
  ['bandwidth_in_burst', 'bandwidthInBurst', 'bandwidth_in_bps'],
  ['bandwidth_out_burst', 'bandwidthOutBurst', 'bandwidth_out_bps'],
  ['new_connections_burst', 'newConnectionsBurst', 'new_connections_per_sec'],
] as const satisfies readonly (readonly [
  keyof RateLimitBody,
  keyof RateLimit,
  keyof RateLimitBody,
])[];

/**
 * Per-rule caps (reference §5.8): the reserved concurrent burst is refused, caps are positive, a
 * burst needs its rate and stays within [max(1, rate/100), rate*60]; only the targets shape may
 * carry them. An empty object means no caps.
 */
function checkRateLimit(
  body: RateLimitBody | null | undefined,
  shape: RulePush['shape'],
): RateLimit | null {
  if (!present(body)) return null;
  if (present(body.concurrent_connections_burst)) {
    fail(
      'validation.rate_limit_burst_unsupported',
      'concurrent_connections_burst is reserved: concurrent caps are a hard ceiling and cannot burst',
    );
  }
  const caps: RateLimit = {};
  for (const [name, field] of RATE_CAPS) {
    const value = body[name];
    if (!present(value)) continue;
    if (value === 0) fail('validation.rate_limit_cap_zero', `rate_limit.${name} must be > 0`);
    caps[field] = value;
  }
  for (const [name, field, rateName] of RATE_BURSTS) {
    const burst = body[name];
    if (!present(burst)) continue;
    const rate = body[rateName];
    if (!present(rate)) {
      fail('validation.rate_limit_burst_without_rate', `rate_limit.${name} needs ${rateName}`);
    }
    const low = Math.max(1, Math.floor(rate / 100));
    const high = rate * 60;
    if (burst < low || burst > high) {
      fail(
        'validation.rate_limit_burst_range',
        `rate_limit.${name} ${burst} is outside [${low}, ${high}] (rate/100 .. rate*60 for ${rateName} ${rate})`,
      );
    }
    caps[field] = burst;
  }
  if (shape === 'legacy') {
    fail(
      'validation.rate_limit_on_legacy_shape',
      'rate_limit needs the targets[] shape; the legacy target_host/target_port shape cannot carry it',
    );
  }
  return Object.keys(caps).length > 0 ? caps : null;
}

function legacyTarget(
  body: RulePushBody,
  listenPortEnd: number | null,
  targetPortEnd: number | null,
): RuleTarget[] {
  if (present(body.health_check_interval_secs)) {
    fail(
      'health_check_interval_out_of_range',
      'health_check_interval_secs needs the targets[] shape',
    );
  }
  const host = body.target_host;
  const port = body.target_port;
  if (!present(host) || !present(port)) {
    fail('rule_shape_missing', 'the legacy shape needs both target_host and target_port');
  }
  if (!isPort(port)) {
    fail('range_invalid', `range_out_of_bounds: target_port ${port} is not 1..65535`);
  }
  if (targetPortEnd !== null && targetPortEnd < port) {
    fail('range_invalid', `range_inverted: target ${port}-${targetPortEnd}`);
  }
  const listenSize = (listenPortEnd ?? body.listen_port) - body.listen_port + 1;
  const targetSize = (targetPortEnd ?? port) - port + 1;
  if (listenSize !== targetSize) {
    fail(
      'range_invalid',
      `mismatched_range: listen has ${listenSize} ports, target has ${targetSize}`,
    );
  }
  return [
    {
      host,
      port,
      portEnd: targetPortEnd === null || targetPortEnd === port ? null : targetPortEnd,
      priority: 0,
      proxyProtocol: null,
    },
  ];
}

/**
 * The targets[] list (reference §5.5): interval 1..3600, at least one target, PROXY protocol
 * v1|v2 (case-insensitive, blank = none), at most eight, each with a non-empty parseable host
 * and a port 1..65535, no host:port twice (hosts compared case-insensitively).
 */
function targetList(body: RulePushBody): RuleTarget[] {
  const interval = body.health_check_interval_secs;
  if (present(interval) && (!Number.isInteger(interval) || interval < 1 || interval > 3600)) {
    fail(
      'health_check_interval_out_of_range',
      `health_check_interval_secs ${interval} is not 1..3600`,
    );
  }
  const list = body.targets ?? [];
  if (list.length === 0) fail('targets_empty', 'targets[] needs at least one target');
  const proxies = list.map((target, index) => parseProxyProtocol(target.proxy_protocol, index));
  if (list.length > MAX_TARGETS) {
    fail('targets_too_many', `at most ${MAX_TARGETS} targets per rule, got ${list.length}`);
  }
  const seen = new Map<string, number>();
  return list.map((target, index) => {
    if (target.host === '') fail('target_invalid_host', `targets[${index}].host is empty`);
    if (!isPort(target.port)) {
      fail(
        'target_invalid_port',
        `target_invalid_port:${index}: port ${target.port} is not 1..65535`,
      );
    }
    const problem = targetHostProblem(target.host);
    if (problem) fail('target_invalid_host', `targets[${index}]: ${problem.message}`);
    const key = targetKey(target.host, target.port);
    const first = seen.get(key);
    if (first !== undefined) {
      fail('targets_duplicate', `targets[${first}] and targets[${index}] are both ${key}`);
    }
    seen.set(key, index);
    return {
      host: target.host,
      port: target.port,
      portEnd: null,
      priority: target.priority ?? index,
      proxyProtocol: proxies[index] ?? null,
    };
  });
}

function parseProxyProtocol(raw: string | null | undefined, index: number): 'v1' | 'v2' | null {
  const value = parseProxySetting(raw);
  if (value !== 'invalid') return value;
  return fail(
    'validation.proxy_protocol_invalid',
    `targets[${index}].proxy_protocol must be v1 or v2, got ${JSON.stringify(raw)}`,
  );
}

function checkProtocol(raw: string | null | undefined): Protocol {
  const protocol = (raw ?? 'tcp').toLowerCase();
  if (protocol === 'tcp' || protocol === 'udp') return protocol;
  return fail('invalid_protocol', `protocol ${JSON.stringify(raw)} is not tcp or udp`);
}

/**
 * Whether `host` names the client itself as seen from the client: a loopback or unspecified
 * address (127.0.0.0/8, ::1, 0.0.0.0, ::, their IPv4-mapped forms), `localhost` and names under
 * it (RFC 6761), or one of the client's own known addresses. Names are compared without case
 * and without a trailing dot.
 */
export function isSelfHost(host: string, ownAddresses: readonly string[]): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const own = (value: string): string => value.toLowerCase().replace(/\.$/, '');
  if (ownAddresses.some((address) => own(address) === name)) return true;
  if (net.isIP(name) === 0) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(name)?.[1];
  const ip = mapped ?? name;
  if (net.isIPv4(ip)) return ip.startsWith('127.') || ip === '0.0.0.0';
  const list = new net.BlockList();
  list.addAddress('::1', 'ipv6');
  list.addAddress('::', 'ipv6');
  return list.check(ip, 'ipv6');
}

/**
 * Refuses a rule that would forward to its own listener (a loop that eats the client's sockets
 * and file descriptors until the edge falls over): a target on the client itself whose port, or
 * port range, meets the rule's listen range. Runs for pushes and edits, once the client is known.
 */
export function checkNotSelf(push: RulePush, ownAddresses: readonly string[]): void {
  const low = push.listenPort;
  const high = push.listenPortEnd ?? push.listenPort;
  push.targets.forEach((target, index) => {
    const end = target.portEnd ?? target.port;
    if (target.port <= high && end >= low && isSelfHost(target.host, ownAddresses)) {
      const ports = end === target.port ? String(target.port) : `${target.port}-${end}`;
      fail(
        'validation.target_is_self',
        `target ${index} (${target.host}:${ports}) is this rule's own listen address on its client: it would forward to itself`,
      );
    }
  });
}
