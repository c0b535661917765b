/**
 * What the server may send a client, and in which shape: a stored rule becomes the data plane's
 * one `RuleSpec` (the forwarder's definition, imported as a type only — the server never runs the
 * data plane) and that becomes the wire `Rule` (reference §4.2 — single-target rules keep the
 * legacy fields only, so older clients see the bytes they know); the capability gates refuse a
 * feature the client's Hello does not cover (§4.4). Pure: no store access, no sockets.
 */
import { RATE_LIMIT_FIELDS, type RateLimitCaps } from '@portunus/api';
import type { ErrorCode } from '@portunus/core';
import type { RuleSpec } from '@portunus/forwarder';
import {
  FEATURE_MIN_VERSION,
  versionAtLeast,
  type Hello,
  type WireRateLimit,
  type WireRule,
} from '@portunus/proto';
import type { Rule } from '@portunus/store';

/** What a client said it can do: its protocols (empty Hello list ⇒ TCP) and its version. */
export interface ClientCapabilities {
  protocols: ReadonlySet<'tcp' | 'udp'>;
  clientVersion: string;
}

export function capabilitiesOf(hello: Hello | undefined): ClientCapabilities {
  const protocols = new Set<'tcp' | 'udp'>();
  for (const protocol of hello?.supported_protocols ?? []) {
    if (protocol === 'TCP') protocols.add('tcp');
    if (protocol === 'UDP') protocols.add('udp');
  }
  if (protocols.size === 0) protocols.add('tcp');
  return { protocols, clientVersion: hello?.client_version ?? '' };
}

/** What the gates look at: enough of a rule to judge it before it is stored. */
export type GatedRule = Pick<RuleSpec, 'protocol' | 'targets' | 'sniPattern' | 'rateLimit'> &
  Pick<Rule, 'clientId' | 'allowedSources' | 'deniedSources'>;

/** The gate a rule fails for this client, or undefined when it may be sent (reference §4.4). */
export function capabilityGate(rule: GatedRule, caps: ClientCapabilities): ErrorCode | undefined {
  const version = caps.clientVersion;
  if (!caps.protocols.has(rule.protocol)) return 'unsupported_protocol';
  if (rule.targets.length >= 2 && !versionAtLeast(version, FEATURE_MIN_VERSION.multiTarget, true)) {
    return 'multi_target_unsupported_by_client';
  }
  if (rule.sniPattern !== null && !versionAtLeast(version, FEATURE_MIN_VERSION.sni, true)) {
    return 'sni_unsupported_by_client';
  }
  const proxied = rule.targets.some((target) => target.proxyProtocol !== null);
  if (proxied && !versionAtLeast(version, FEATURE_MIN_VERSION.proxyProtocol)) {
    return 'proxy_protocol_unsupported_by_client';
  }
  if (rule.rateLimit !== null && !versionAtLeast(version, FEATURE_MIN_VERSION.rateLimit)) {
    return 'rate_limit_unsupported_by_client';
  }
  const restricted = rule.allowedSources.length > 0 || rule.deniedSources.length > 0;
  if (restricted && !versionAtLeast(version, FEATURE_MIN_VERSION.sourceLists)) {
    return 'source_lists_unsupported_by_client';
  }
  return undefined;
}

/**
 * Whether the client takes owner envelopes (reference §4.4: connected and at least the rate-limit
 * version; an unknown version is refused, as for rule caps).
 */
export function ownerRateLimitGate(caps: ClientCapabilities): ErrorCode | undefined {
  return versionAtLeast(caps.clientVersion, FEATURE_MIN_VERSION.rateLimit)
    ? undefined
    : 'rate_limit_unsupported_by_client';
}

/** The stored rule as the data plane will run it. */
export function ruleSpecOf(rule: Rule): RuleSpec {
  return {
    ruleId: String(rule.ruleId),
    protocol: rule.protocol,
    listenPort: rule.listenPort,
    listenPortEnd: rule.listenPortEnd,
    targets: rule.targets.map((target) => ({ ...target })),
    preferIpv6: rule.preferIpv6,
    healthCheckIntervalSecs: rule.healthCheckIntervalSecs,
    ownerId: rule.ownerUserId,
    sniPattern: rule.sniPattern,
    rateLimit: rule.rateLimit,
  };
}

/** Caps on the wire (reference §4.2 RateLimit): every field, unset ones null (proto3 optional). */
export function wireRateLimit(caps: RateLimitCaps | null | undefined): WireRateLimit | null {
  if (!caps) return null;
  const wire: WireRateLimit = {};
  for (const spec of RATE_LIMIT_FIELDS) wire[spec.name] = caps[spec.field] ?? null;
  return wire;
}

export function toWireRule(rule: Rule): WireRule {
  const spec = ruleSpecOf(rule);
  const [first] = spec.targets;
  const multi = spec.targets.length > 1 || spec.targets.some((t) => t.proxyProtocol !== null);
  return {
    rule_id: spec.ruleId,
    listen_port: spec.listenPort,
    listen_port_end: spec.listenPortEnd ?? 0,
    target_host: first?.host ?? '',
    target_port: first?.port ?? 0,
    target_port_end: first?.portEnd ?? 0,
    protocol: spec.protocol === 'udp' ? 'UDP' : 'TCP',
    prefer_ipv6: spec.preferIpv6,
    targets: multi
      ? spec.targets.map((target) => ({
          host: target.host,
          port: target.port,
          priority: target.priority,
          proxy_protocol:
            target.proxyProtocol === 'v1' ? 'V1' : target.proxyProtocol === 'v2' ? 'V2' : null,
        }))
      : [],
    health_check_interval_secs: spec.healthCheckIntervalSecs ?? 0,
    sni_pattern: spec.sniPattern,
    rate_limit: wireRateLimit(spec.rateLimit),
    owner_id: spec.ownerId,
    // Straight from the stored rule: the data plane's RuleSpec gains its lists on the edge side.
    allowed_sources: [...rule.allowedSources],
    denied_sources: [...rule.deniedSources],
  };
}
