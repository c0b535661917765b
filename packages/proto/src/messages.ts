/**
 * The control-protocol messages as they appear in JavaScript, i.e. as @grpc/proto-loader decodes
 * them with the options in `load.ts` (snake_case keys, enums as names, 64-bit integers as
 * numbers, defaults filled in, the oneof case in `payload`). These types are the one TypeScript
 * view of `proto/portunus.proto`; keep both in step. Fields added after a message first shipped
 * are optional here: the decoder fills them in, but a sender built before them leaves them out.
 * Depends on nothing.
 */
export type WireProtocol = 'PROTOCOL_UNSPECIFIED' | 'TCP' | 'UDP';
export type WireProxyProtocol = 'PROXY_PROTOCOL_VERSION_UNSPECIFIED' | 'V1' | 'V2';
export type RuleAction = 'RULE_ACTION_UNSPECIFIED' | 'PUSH' | 'REMOVE';
export type ActivationOutcome =
  'ACTIVATION_OUTCOME_UNSPECIFIED' | 'ACTIVATED' | 'FAILED' | 'REMOVED';

export interface Hello {
  protocol_version: string;
  client_version: string;
  supported_protocols: WireProtocol[];
}

export interface Welcome {
  server_version: string;
  server_time_unix_ms: number;
  udp_flow_idle_secs: number;
  udp_max_flows_per_rule: number;
  /** Complete when `replay_manifest` is true (newer servers); see portunus.proto. */
  replay_rule_ids: string[];
  replay_manifest: boolean;
}

export interface WireTarget {
  host: string;
  port: number;
  priority: number;
  proxy_protocol?: WireProxyProtocol | null;
}

export interface WireRateLimit {
  bandwidth_in_bps?: number | null;
  bandwidth_out_bps?: number | null;
  new_connections_per_sec?: number | null;
  concurrent_connections?: number | null;
  bandwidth_in_burst?: number | null;
  bandwidth_out_burst?: number | null;
  new_connections_burst?: number | null;
}

export interface WireRule {
  rule_id: string;
  listen_port: number;
  target_host: string;
  target_port: number;
  protocol: WireProtocol;
  /** 0 = a single port. */
  listen_port_end: number;
  target_port_end: number;
  prefer_ipv6?: boolean | null;
  targets: WireTarget[];
  /** 0 = passive health only. */
  health_check_interval_secs: number;
  sni_pattern?: string | null;
  rate_limit?: WireRateLimit | null;
  owner_id?: string | null;
  /** CIDRs; empty = no restriction (beyond the reference). */
  allowed_sources?: string[];
  denied_sources?: string[];
}

export interface RuleUpdate {
  request_id: string;
  action: RuleAction;
  rule: WireRule | null;
}

export interface RuleStatus {
  request_id: string;
  rule_id: string;
  outcome: ActivationOutcome;
  reason: string;
}

export interface PerPortStats {
  listen_port: number;
  bytes_in: number;
  bytes_out: number;
  active_connections: number;
  datagrams_in: number;
  datagrams_out: number;
}

export interface WireRuleStats {
  rule_id: string;
  bytes_in: number;
  bytes_out: number;
  active_connections: number;
  per_port: PerPortStats[];
  dns_failures: number;
  datagrams_in: number;
  datagrams_out: number;
  active_flows: number;
  flows_dropped_overflow: number;
  target_failovers_total: number;
  per_target: PerTargetStats[];
  sni_route_exact_total?: number;
  sni_route_wildcard_total?: number;
  sni_route_fallback_total?: number;
  rate_limit?: WireRateLimitStats | null;
  source_denied_total?: number;
}

export type WireRateLimitRejectReason =
  | 'RATE_LIMIT_REJECT_REASON_UNSPECIFIED'
  | 'CONN_CONCURRENT'
  | 'CONN_RATE'
  | 'UDP_FLOW_RATE'
  | 'OWNER_CONCURRENT'
  | 'OWNER_CONN_RATE'
  | 'OWNER_UDP_FLOW_RATE';

export interface WireRateLimitStats {
  reject_total: { reason: WireRateLimitRejectReason; total: number }[];
  throttle_micros_in: number;
  throttle_micros_out: number;
  active_connections: number;
}

export interface WireOwnerRateLimitStats {
  owner_id: string;
  stats: WireRateLimitStats | null;
}

/** One shared SNI port; bucket bounds are @portunus/api's SNI_PEEK_BUCKETS_SECONDS, then +Inf. */
export interface WireSniListenerStats {
  listen_port: number;
  sni_route_miss_total: number;
  client_hello_parse_failures_total: number;
  client_hello_peek_bucket_counts: number[];
  client_hello_peek_sum_micros: number;
  client_hello_peek_count: number;
}

export type EnvelopeAction = 'ENVELOPE_ACTION_UNSPECIFIED' | 'SET' | 'REMOVE';

export interface OwnerRateLimitUpdate {
  client_name: string;
  owner_id: string;
  rate_limit?: WireRateLimit | null;
  action: EnvelopeAction;
  client_id: string;
}

export interface TrafficQuotaState {
  monthly_bytes: number;
  /** Negative once usage passed the limit. */
  budget_remaining_bytes: number;
  period_started_at_unix_sec: number;
  period_ends_at_unix_sec: number;
  exhausted: boolean;
}

export interface TrafficQuotaUpdate {
  request_id: string;
  user_id: string;
  client_name: string;
  action: EnvelopeAction;
  state?: TrafficQuotaState | null;
  client_id: string;
}

export interface PerTargetStats {
  index: number;
  host: string;
  port: number;
  priority: number;
  /** 0 healthy, 1 failed (reference §4.2). */
  health: number;
  consecutive_failures: number;
  last_failure_at_unix_ms: number;
  last_success_at_unix_ms: number;
  bytes_in: number;
  bytes_out: number;
  connections_accepted: number;
}

export interface StatsReport {
  sent_at_unix_ms: number;
  stats: WireRuleStats[];
  sni_listener_stats?: WireSniListenerStats[];
  owner_rate_limit_stats?: WireOwnerRateLimitStats[];
}

export type ClientMessage =
  | { payload?: 'hello'; hello: Hello }
  | { payload?: 'rule_status'; rule_status: RuleStatus }
  | { payload?: 'stats_report'; stats_report: StatsReport };

export type ServerMessage =
  | { payload?: 'welcome'; welcome: Welcome }
  | { payload?: 'rule_update'; rule_update: RuleUpdate }
  | { payload?: 'owner_rate_limit_update'; owner_rate_limit_update: OwnerRateLimitUpdate }
  | { payload?: 'traffic_quota_update'; traffic_quota_update: TrafficQuotaUpdate };

export interface EnrollClientRequest {
  code: string;
}

/** What enrollment returns; the client writes it to disk as the bundle (version 1). */
export interface CredentialBundle {
  version: number;
  client_name: string;
  server_endpoint: string;
  server_cert_sha256: string;
  token: string;
  client_id: string;
}
