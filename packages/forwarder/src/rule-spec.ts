/**
 * The one definition of a forwarding rule and of its stats, as the data plane runs and reports
 * them. It mirrors the stored rule (targets[] 1..8 with priority and PROXY protocol, health-check
 * interval, IPv6 preference, owner, SNI pattern and caps), so the client's wire mapping, the
 * server's wire code and its stats view all import these shapes instead of re-spelling field
 * lists. SNI patterns are routed by shared ports (sni/); caps and source lists are enforced by
 * policy/ (reference §5.8 and the source lists of docs/README.md). Pure types and checks; depends
 * on nothing.
 */

export type Protocol = 'tcp' | 'udp';
export type ProxyProtocolVersion = 'v1' | 'v2';

/** At most this many targets per rule (reference inventory §5.5). */
export const MAX_TARGETS = 8;

export interface TargetSpec {
  /** An IP literal (dialled directly) or a hostname (resolved per connection, cached). */
  host: string;
  port: number;
  /** The last port of a target range (single-target range rules only), else null. */
  portEnd: number | null;
  /** Lower is preferred; ties keep the order of `targets`. */
  priority: number;
  /** A PROXY header written before any client byte (TCP v1/v2, UDP v2), or none. */
  proxyProtocol: ProxyProtocolVersion | null;
}

/**
 * Caps of a rule or of an owner envelope (reference §5.8), the one spelling of the field list on
 * the edge. Bandwidth in bytes per second (in = client to upstream, out = upstream to client);
 * a burst absent or 0 is one second of its rate. A cap absent or 0 is no cap.
 */
export interface RateLimitSpec {
  bandwidthInBps?: number;
  bandwidthOutBps?: number;
  newConnectionsPerSec?: number;
  concurrentConnections?: number;
  bandwidthInBurst?: number;
  bandwidthOutBurst?: number;
  newConnectionsBurst?: number;
}

export interface RuleSpec {
  ruleId: string;
  protocol: Protocol;
  /** 0 asks the kernel for a free port (single-port rules only). */
  listenPort: number;
  listenPortEnd: number | null;
  targets: TargetSpec[];
  /** AAAA before A when resolving target names. */
  preferIpv6: boolean;
  /** Seconds between active TCP probes of the targets; null or 0 is passive health only. */
  healthCheckIntervalSecs: number | null;
  ownerId: string | null;
  sniPattern: string | null;
  rateLimit: RateLimitSpec | null;
  /**
   * Source CIDRs in @portunus/api's normal spelling (normaliseCidr), at most MAX_SOURCE_CIDRS
   * each; absent or empty is no restriction. A source passes when the allow list is empty or
   * holds it and the deny list does not.
   */
  allowedSources?: readonly string[];
  deniedSources?: readonly string[];
}

/** A single-target rule with defaults for everything else; what most callers and tests need. */
export function simpleRule(
  fields: Pick<RuleSpec, 'ruleId' | 'protocol' | 'listenPort'> & {
    targetHost: string;
    targetPort: number;
  } & Partial<Omit<RuleSpec, 'ruleId' | 'protocol' | 'listenPort' | 'targets'>> & {
      targetPortEnd?: number | null;
      proxyProtocol?: ProxyProtocolVersion | null;
    },
): RuleSpec {
  const { targetHost, targetPort, targetPortEnd, proxyProtocol, ...rest } = fields;
  return {
    listenPortEnd: null,
    preferIpv6: false,
    healthCheckIntervalSecs: null,
    ownerId: null,
    sniPattern: null,
    rateLimit: null,
    allowedSources: [],
    deniedSources: [],
    ...rest,
    targets: [
      {
        host: targetHost,
        port: targetPort,
        portEnd: targetPortEnd ?? null,
        priority: 0,
        proxyProtocol: proxyProtocol ?? null,
      },
    ],
  };
}

/** The targets in dispatch order: by priority, ties by their position in the rule. */
export function targetsByPriority(targets: readonly TargetSpec[]): TargetSpec[] {
  return targets
    .map((target, index) => ({ target, index }))
    .sort((a, b) => a.target.priority - b.target.priority || a.index - b.index)
    .map(({ target }) => target);
}

/** True when two specs would run identically (a re-push of the same definition is a no-op). */
export function sameRule(a: RuleSpec, b: RuleSpec): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(rule: RuleSpec): unknown {
  return [
    rule.ruleId,
    rule.protocol,
    rule.listenPort,
    rule.listenPortEnd,
    rule.targets.map((t) => [t.host, t.port, t.portEnd, t.priority, t.proxyProtocol]),
    rule.preferIpv6,
    rule.healthCheckIntervalSecs ?? 0,
    rule.ownerId,
    rule.sniPattern,
    rateLimitCanonical(rule.rateLimit),
    rule.allowedSources ?? [],
    rule.deniedSources ?? [],
  ];
}

const RATE_LIMIT_FIELDS = [
  'bandwidthInBps',
  'bandwidthOutBps',
  'newConnectionsPerSec',
  'concurrentConnections',
  'bandwidthInBurst',
  'bandwidthOutBurst',
  'newConnectionsBurst',
] as const satisfies readonly (keyof RateLimitSpec)[];

/** Caps in a fixed order with absent and 0 alike, so `{}` and null compare equal. */
function rateLimitCanonical(caps: RateLimitSpec | null): unknown {
  const values = RATE_LIMIT_FIELDS.map((field) => caps?.[field] || 0);
  return values.some((v) => v !== 0) ? values : null;
}

/** Health of one target as reported: healthy, or failed after repeated connect failures. */
export type TargetHealthState = 'healthy' | 'failed';

/** One target's live state and counters, cumulative since the rule (re)definition. */
export interface TargetStats {
  /** Position in the rule's `targets`. */
  index: number;
  host: string;
  port: number;
  priority: number;
  health: TargetHealthState;
  consecutive_failures: number;
  /** 0 when it never failed / never succeeded. */
  last_failure_at_unix_ms: number;
  last_success_at_unix_ms: number;
  bytes_in: number;
  bytes_out: number;
  connections_accepted: number;
}

export interface PortStats {
  listen_port: number;
  target_port: number;
  bytes_in: number;
  bytes_out: number;
  active_connections: number;
  /** TCP connections torn down by an error on either side once connected (mid-stream). */
  conn_errors: number;
  /** TCP connections dropped because no target could be connected. */
  connect_failures: number;
  datagrams_in: number;
  datagrams_out: number;
  active_flows: number;
  flows_dropped_overflow: number;
}

/** The per-port counters that add up to the rule's totals. */
export type PortCounter = Exclude<keyof PortStats, 'listen_port' | 'target_port'>;

export const PORT_COUNTERS: readonly PortCounter[] = [
  'bytes_in',
  'bytes_out',
  'active_connections',
  'conn_errors',
  'connect_failures',
  'datagrams_in',
  'datagrams_out',
  'active_flows',
  'flows_dropped_overflow',
];

/**
 * Everything the data plane counts for one rule. Counters are cumulative since the rule was first
 * activated in this process: a control-stream reconnect or a replace keeps them; per-target
 * health and counters restart with a new definition (reference §5.5).
 */
export interface RuleStats extends Record<PortCounter, number> {
  rule_id: string;
  protocol: Protocol;
  dns_failures: number;
  /** TCP connections and new UDP flows refused by the rule's source lists. */
  source_denied: number;
  /**
   * The rule's caps at work (rejects include the owner envelope's), or null for a rule that never
   * had caps nor an owner envelope: uncapped rules emit no rate-limit series (reference §7.3).
   */
  rate_limit: RateLimitStats | null;
  /** Healthy↔failed transitions of the rule's targets (reference §5.5). */
  target_failovers_total: number;
  /** Connections a shared SNI port routed to this rule, by how it matched (reference §5.7). */
  sni_route_exact_total: number;
  sni_route_wildcard_total: number;
  sni_route_fallback_total: number;
  ports: PortStats[];
  targets: TargetStats[];
}

/** Why a connection or new flow was refused by a cap (reference §4.2 RateLimitRejectReason). */
export type RateLimitRejectReason =
  | 'conn_concurrent'
  | 'conn_rate'
  | 'udp_flow_rate'
  | 'owner_concurrent'
  | 'owner_conn_rate'
  | 'owner_udp_flow_rate';

export const RATE_LIMIT_REJECT_REASONS: readonly RateLimitRejectReason[] = [
  'conn_concurrent',
  'conn_rate',
  'udp_flow_rate',
  'owner_concurrent',
  'owner_conn_rate',
  'owner_udp_flow_rate',
];

/** What a rule's limiter or an owner envelope counted, cumulative for its life in the process. */
export interface RateLimitStats {
  rejects: Record<RateLimitRejectReason, number>;
  /** Wall time TCP readers spent parked for bandwidth, per direction (reference §4.2). */
  throttle_micros_in: number;
  throttle_micros_out: number;
  /** Live TCP connections and UDP flows counted against the concurrency cap. */
  active_connections: number;
  /** UDP datagrams dropped over a bandwidth cap (in: from clients; out: replies). */
  datagrams_dropped_in: number;
  datagrams_dropped_out: number;
}

/** One owner envelope's stats (reference §4.2 OwnerRateLimitStats). */
export interface OwnerRateLimitStats {
  owner_id: string;
  stats: RateLimitStats;
}
