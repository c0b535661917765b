/**
 * The JSON bodies of the operator API (reference §2.3–2.5), one interface per shape. The server's
 * views are typed with these, the CLI reads answers through them, and the web UI renders them, so
 * a renamed field fails to compile everywhere at once instead of drifting in six spellings.
 * Types only: nothing here may import a runtime module.
 */
import type { RateLimitName } from './rule-policy.js';

/** Every error answer: `{"error":{"code","message"}}`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export type Role = 'superadmin' | 'user';
export type Protocol = 'tcp' | 'udp';
export type ProxyProtocolVersion = 'v1' | 'v2';

export interface AuthStatus {
  onboarding_required: boolean;
}

export interface OnboardingRequest {
  user_id: string;
  display_name: string;
  password: string;
  password_confirm: string;
  setup_token?: string;
}

export interface OnboardingResponse {
  user_id: string;
  display_name: string;
  role: Role;
}

export interface LoginRequest {
  user_id: string;
  password: string;
}

export interface LoginResponse {
  password_change_required: boolean;
}

export interface ChangePasswordRequest {
  current_password: string;
  new_password: string;
  new_password_confirm: string;
}

export interface Me {
  user_id: string;
  role: Role;
  display_name: string;
  password_change_required?: boolean;
}

export interface UserView {
  user_id: string;
  display_name: string;
  role: Role;
  disabled: boolean;
  password_change_required: boolean;
  created_at: string;
  grant_count: number;
}

export interface CreateUserRequest {
  user_id: string;
  display_name: string;
  role?: Role;
  initial_password: string;
  password_change_required?: boolean;
}

export interface DeleteUserResponse {
  user_id: string;
  removed_credential_ids: string[];
  revoked_grant_ids: string[];
  removed_rule_ids: number[];
}

export interface GrantView {
  grant_id: string;
  user_id: string;
  client: string;
  client_id: string | null;
  listen_port_start: number;
  listen_port_end: number;
  protocols: Protocol[];
  note: string;
  created_at: string;
}

export interface CredentialView {
  credential_id: string;
  user_id: string;
  label: string;
  status: string;
  issued_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface CreateCredentialRequest {
  label?: string;
  user_id?: string;
}

/** Only the creation answer carries the token; it is never shown again. */
export interface CreatedCredential extends CredentialView {
  token: string;
}

export interface ClientView {
  client_id: string;
  client_name: string;
  provisioned_at: string;
  revoked_at: string | null;
  connected: boolean;
  client_address: string | null;
  remote_addr: string | null;
  connected_at: string | null;
}

export interface EnrollmentRequest {
  name: string;
  address?: string | null;
  ttl_secs?: number;
}

/** A one-time enrollment code: it exists only inside `uri` and `command`. */
export interface IssuedEnrollment {
  client_id: string;
  client_name: string;
  expires_at: string;
  command: string;
  uri: string;
}

export interface RenameClientRequest {
  client_name: string;
}

export interface RuleTargetInput {
  host: string;
  port: number;
  priority?: number | null;
  proxy_protocol?: ProxyProtocolVersion | null;
}

/** Rate-limit caps (reference §5.8); the field list is rule-policy.ts's RATE_LIMIT_FIELDS. */
export type RateLimit = { [K in RateLimitName]?: number | null };

/** `PUT /v1/clients/{id}/owners/{owner}/rate-limit`: the caps, at least one. */
export type OwnerRateLimitRequest = RateLimit & { concurrent_connections_burst?: number | null };

/** `GET|PUT /v1/clients/{id}/owners/{owner}/rate-limit` (reference §2.3): present caps only. */
export interface OwnerRateLimitView {
  client_id: string;
  client_name: string;
  owner_id: string;
  rate_limit: { [K in RateLimitName]?: number };
  updated_at_unix_ms: number;
}

/** One entry of `GET /v1/clients/{id}/owners`: owners with rules ∪ owners with envelopes. */
export interface ClientOwnerView {
  owner_id: string;
  has_rate_limit: boolean;
  rule_count: number;
}

/** Body of `POST /v1/rules` and `PUT /v1/rules/{id}` (reference §2.4). */
export interface RulePushRequest {
  client: string;
  listen_port: number;
  listen_port_end?: number | null;
  target_host?: string | null;
  target_port?: number | null;
  target_port_end?: number | null;
  targets?: RuleTargetInput[] | null;
  protocol?: Protocol | null;
  prefer_ipv6?: boolean | null;
  ack_timeout_secs?: number | null;
  health_check_interval_secs?: number | null;
  sni_pattern?: string | null;
  rate_limit?: RateLimit | null;
  /** Source CIDRs (beyond the reference); empty or absent = no restriction. */
  allowed_sources?: string[] | null;
  denied_sources?: string[] | null;
}

export type RuleStateKind = 'pending' | 'active' | 'failed' | 'removed';

export interface RuleState {
  kind: RuleStateKind;
  reason?: string;
}

export interface TargetHealth {
  healthy: boolean;
  consecutive_failures: number;
  last_failure_at_unix_ms: number | null;
  last_success_at_unix_ms: number | null;
}

export interface RuleTargetView {
  host: string;
  port: number;
  priority: number;
  proxy_protocol: ProxyProtocolVersion | null;
  health: TargetHealth | null;
}

/** Rule JSON of `GET /v1/rules` (reference §2.5). */
export interface RuleView {
  id: number;
  client_id: string;
  client_name: string;
  listen_port: number;
  listen_port_end?: number;
  target_host: string;
  target_port: number;
  target_port_end?: number;
  prefer_ipv6: boolean;
  protocol: Protocol;
  state: RuleState;
  created_at: string;
  last_state_change_at: string;
  owner_user_id: string;
  targets: RuleTargetView[];
  health_check_interval_secs?: number;
  sni_pattern?: string;
  rate_limit?: RateLimit;
  /** Always present, in the normal spelling; [] = no restriction. */
  allowed_sources: string[];
  denied_sources: string[];
}

/** Answer of a push or an edit; ⚠ `owner` here, `owner_user_id` in the list (reference §2.5). */
export interface RulePushResponse {
  rule_id: number;
  status: string;
  target_host: string;
  prefer_ipv6: boolean;
  protocol: Protocol;
  owner: string;
  sni_pattern?: string;
  rate_limit?: RateLimit;
}

/** `GET /v1/rules/{id}/stats` and each `stats` event of the SSE stream. */
export interface RuleStatsSnapshot {
  rule_id: number;
  client_name: string;
  protocol?: Protocol;
  bytes_in: number;
  bytes_out: number;
  active_connections: number;
  dns_failures: number;
  datagrams_in: number;
  datagrams_out: number;
  active_flows: number;
  flows_dropped_overflow: number;
  target_failovers_total: number;
  /** Connections a shared SNI port routed to the rule, by how it matched (reference §5.7). */
  sni_route_exact_total?: number;
  sni_route_wildcard_total?: number;
  sni_route_fallback_total?: number;
  /** Connections or new UDP flows refused by the rule's source lists. */
  source_denied: number;
  /** Present for rules with caps (reference §4.2 RateLimitStats). */
  rate_limit?: RateLimitStatsView;
  updated_at: string;
}

/** A rule's (or an owner envelope's) limiter counters, cumulative since the client started it. */
export interface RateLimitStatsView {
  /** Refusals by reason: conn_concurrent, conn_rate, udp_flow_rate, owner_* (reference §7.3). */
  reject_total: Record<string, number>;
  throttle_seconds_in: number;
  throttle_seconds_out: number;
  active_connections: number;
}

export interface AuditEntry {
  id?: number;
  ts: string;
  actor: string;
  role: string | null;
  method: string;
  path: string;
  outcome: string;
  reason: string | null;
  [extra: string]: unknown;
}

export interface AuditEnvelope {
  entries: AuditEntry[];
  next_cursor?: string;
  count: number;
}

export interface AdvertisedEndpointView {
  override: string | null;
  effective: string | null;
  source: 'override' | 'seed' | 'derived' | 'loopback' | null;
  diagnostic: string | null;
}

export interface RuleRevisionView {
  revision: number;
  at: string;
  actor: string;
  action: string;
  summary: string;
}

export interface RuleRevisionList {
  revisions: RuleRevisionView[];
  next_cursor?: string;
}

/** How a quota acts once used up (DESIGN.md §8.9): `hard` stops the owner's traffic, `soft` alerts. */
export type QuotaEnforcement = 'hard' | 'soft';
/** `monthly` renews each billing period; `never` is an allowance spent once. */
export type QuotaPeriod = 'monthly' | 'never';

/**
 * A traffic quota (reference §2.3 QuotaView; all times unix seconds), plus the policy fields of
 * DESIGN.md §8.9. `current_period_ends_at` is null for a `never` allowance.
 */
export interface QuotaView {
  user_id: string;
  client_id: string;
  client_name: string;
  monthly_bytes: number;
  billing_anchor: number;
  current_period_started_at: number;
  current_period_ends_at: number | null;
  current_period_bytes_used: number;
  /** Negative once usage went past the limit. */
  budget_remaining_bytes: number;
  exhausted_at: number | null;
  exhausted: boolean;
  created_at: number;
  updated_at: number;
  enforcement: QuotaEnforcement;
  period: QuotaPeriod;
  reset_day: number | null;
}

/** `PUT /v1/users/{u}/quotas/{client_id}`: replacing a quota keeps its usage unless cleared. */
export interface QuotaPutRequest {
  monthly_bytes: number;
  /** Unix seconds; default now. Not together with `reset_day`. */
  billing_anchor?: number;
  reset_day?: number;
  enforcement?: QuotaEnforcement;
  period?: QuotaPeriod;
  clear_period_usage?: boolean;
}

/** `PATCH /v1/users/{u}/quotas/{client_id}`: the limit is applied first, then the clear. */
export interface QuotaPatchRequest {
  monthly_bytes?: number;
  clear_period_usage?: boolean;
  enforcement?: QuotaEnforcement;
}

// added by services-cli
// Shapes the CLI reads that had no name yet: the stats rows behind `?per_port` / `?per_target`,
// and the rule-set revision diff and restore answers (services/rule-revisions.ts).

/** One listen port of a range rule in `GET /v1/rules/{id}/stats?per_port=true`. */
export interface RulePortStatsView {
  listen_port: number;
  bytes_in: number;
  bytes_out: number;
  active_connections: number;
  datagrams_in: number;
  datagrams_out: number;
  updated_at: string;
}

/** One target in `GET /v1/rules/{id}/stats?per_target=true` (reference §2.5). */
export interface RuleTargetStatsView {
  index: number;
  host: string;
  port: number;
  priority: number;
  /** 0 healthy, 1 failed. */
  health: 0 | 1;
  consecutive_failures: number;
  last_failure_at_unix_ms: number;
  last_success_at_unix_ms: number;
  bytes_in: number;
  bytes_out: number;
  connections_accepted: number;
}

/** `GET /v1/rules/{id}/stats`: the totals, plus the rows the query asked for. */
export interface RuleStatsView extends RuleStatsSnapshot {
  per_port?: RulePortStatsView[];
  per_target?: RuleTargetStatsView[];
}

/** A rule's definition as a revision holds it (no state, no health). */
export interface RuleDefinitionView {
  rule_id: number;
  client_id: string;
  client_name: string | null;
  owner_user_id: string;
  protocol: Protocol;
  listen_port: number;
  listen_port_end?: number;
  prefer_ipv6: boolean;
  targets: {
    host: string;
    port: number;
    port_end?: number;
    priority: number;
    proxy_protocol: ProxyProtocolVersion | null;
  }[];
  health_check_interval_secs?: number;
  sni_pattern?: string;
  rate_limit?: RateLimit;
  allowed_sources: string[];
  denied_sources: string[];
}

/** `GET /v1/rule-revisions/{n}/diff`. */
export interface RuleRevisionDiff {
  revision: number;
  head: number;
  added: RuleDefinitionView[];
  removed: RuleDefinitionView[];
  changed: {
    rule_id: number;
    /** The API names of the fields that differ, in view order. */
    fields: (keyof RuleDefinitionView)[];
    revision: RuleDefinitionView;
    now: RuleDefinitionView;
  }[];
}

/** `POST /v1/rule-revisions/{n}/restore` body. */
export interface RuleRestoreRequest {
  ack_timeout_secs?: number;
}

/** `POST /v1/rule-revisions/{n}/restore`: the new revision (null when nothing changed) and every step. */
export interface RuleRestoreResult {
  revision: number | null;
  restored_to: number;
  removed: number[];
  pushed: { rule_id: number; status: string }[];
  edited: { rule_id: number; fields: string[] }[];
  failed: { rule_id: number; action: 'remove' | 'push' | 'edit'; code: string; message: string }[];
}

/** `POST /v1/grants` body. */
export interface CreateGrantRequest {
  user_id: string;
  /** A client display name, a client id, or `*` for every client. */
  client: string;
  listen_port_start: number;
  listen_port_end: number;
  protocols?: Protocol[];
  note?: string;
}

/** `DELETE /v1/grants/{id}`: the owner's rules this grant alone covered are removed. */
export interface RevokeGrantResponse {
  grant_id: string;
  removed_rule_ids: number[];
}
