/**
 * The rule half of the operator API's schemas (reference §2.4–2.5): the push body with targets,
 * SNI, PROXY, caps and source lists, the Rule JSON, rule stats, rule-set revisions, and the
 * usage answers (quotas, DESIGN.md §8.9, and traffic history). Same rules as schemas.ts, whose
 * helpers it uses; browser-safe, no workspace package.
 */
import Type, { type Static } from 'typebox';

import {
  Closed,
  Nullable,
  ProtocolSchema,
  ProxyProtocolVersionSchema,
  RateLimitSchema,
  RateLimitStatsViewSchema,
  RateLimitViewSchema,
} from './schemas.js';

const Maybe = <T extends Parameters<typeof Nullable>[0]>(schema: T) =>
  Type.Optional(Nullable(schema));
const Port = Type.Integer({ description: '1..65535' });
const Time = Type.String({ format: 'date-time' });

// ---------------------------------------------------------------------------------------------
// Rule push and Rule JSON

export const RuleTargetInputSchema = Closed({
  host: Type.String({ maxLength: 1024 }),
  port: Port,
  // rule_targets.priority is 0..99 in the store.
  priority: Maybe(Type.Integer({ minimum: 0, maximum: 99 })),
  proxy_protocol: Maybe(
    Type.Unsafe<Static<typeof ProxyProtocolVersionSchema>>({
      type: 'string',
      maxLength: 16,
      description: 'v1 or v2 (else validation.proxy_protocol_invalid)',
    }),
  ),
});

/**
 * A source list; the bound here only stops absurd bodies early, the real one (64) answers
 * validation.source_list_too_long, and each entry's grammar validation.source_cidr_invalid.
 */
const SourceListInput = Type.Array(Type.String({ maxLength: 128 }), {
  maxItems: 1024,
  description: 'IPv4/IPv6 CIDRs or addresses; empty or absent: no restriction',
});

export const RulePushRequestSchema = Closed({
  client: Type.String({ minLength: 1, maxLength: 255, description: 'client name or id' }),
  listen_port: Port,
  listen_port_end: Maybe(Port),
  target_host: Maybe(Type.String({ maxLength: 1024 })),
  target_port: Maybe(Port),
  target_port_end: Maybe(Port),
  targets: Maybe(Type.Array(RuleTargetInputSchema, { maxItems: 64 })),
  protocol: Maybe(
    Type.Unsafe<Static<typeof ProtocolSchema>>({
      type: 'string',
      maxLength: 16,
      description: 'tcp (default) or udp (else invalid_protocol)',
    }),
  ),
  prefer_ipv6: Maybe(Type.Boolean()),
  ack_timeout_secs: Maybe(Type.Integer({ minimum: 1, maximum: 60 })),
  health_check_interval_secs: Maybe(Type.Integer()),
  sni_pattern: Maybe(Type.String({ maxLength: 1024 })),
  rate_limit: Maybe(RateLimitSchema),
  allowed_sources: Maybe(SourceListInput),
  denied_sources: Maybe(SourceListInput),
});

export const RuleStateKindSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('active'),
  Type.Literal('failed'),
  Type.Literal('removed'),
]);

export const RuleStateSchema = Closed({
  kind: RuleStateKindSchema,
  reason: Type.Optional(Type.String()),
});

export const TargetHealthSchema = Closed({
  healthy: Type.Boolean(),
  consecutive_failures: Type.Integer(),
  last_failure_at_unix_ms: Nullable(Type.Integer()),
  last_success_at_unix_ms: Nullable(Type.Integer()),
});

export const RuleTargetViewSchema = Closed({
  host: Type.String(),
  port: Type.Integer(),
  priority: Type.Integer(),
  proxy_protocol: Nullable(ProxyProtocolVersionSchema),
  health: Nullable(TargetHealthSchema),
});

const SourceList = Type.Array(Type.String(), { description: '[] = no restriction' });

/** Rule JSON of `GET /v1/rules` (reference §2.5); absent optional fields are omitted. */
export const RuleViewSchema = Closed({
  id: Type.Integer(),
  client_id: Type.String(),
  client_name: Type.String(),
  listen_port: Type.Integer(),
  listen_port_end: Type.Optional(Type.Integer()),
  target_host: Type.String(),
  target_port: Type.Integer(),
  target_port_end: Type.Optional(Type.Integer()),
  prefer_ipv6: Type.Boolean(),
  protocol: ProtocolSchema,
  state: RuleStateSchema,
  created_at: Time,
  last_state_change_at: Time,
  owner_user_id: Type.String(),
  targets: Type.Array(RuleTargetViewSchema),
  health_check_interval_secs: Type.Optional(Type.Integer()),
  sni_pattern: Type.Optional(Type.String()),
  rate_limit: Type.Optional(RateLimitViewSchema),
  allowed_sources: SourceList,
  denied_sources: SourceList,
});

/** Answer of a push or an edit; ⚠ `owner` here, `owner_user_id` in the list (reference §2.5). */
export const RulePushResponseSchema = Closed({
  rule_id: Type.Integer(),
  status: Type.String({ description: 'Pending, Active, Removed or Failed:<reason>' }),
  target_host: Type.String(),
  prefer_ipv6: Type.Boolean(),
  protocol: ProtocolSchema,
  owner: Type.String(),
  sni_pattern: Type.Optional(Type.String()),
  rate_limit: Type.Optional(RateLimitViewSchema),
});

export const RuleListQuerySchema = Closed({
  client: Type.Optional(Type.String({ description: 'client name' })),
  owner: Type.Optional(Type.String({ description: 'owner user id (superadmin only)' })),
});

// ---------------------------------------------------------------------------------------------
// Rule stats

export const PerPortStatsViewSchema = Closed({
  listen_port: Type.Integer(),
  bytes_in: Type.Integer(),
  bytes_out: Type.Integer(),
  active_connections: Type.Integer(),
  datagrams_in: Type.Integer(),
  datagrams_out: Type.Integer(),
  updated_at: Time,
});

export const PerTargetStatsViewSchema = Closed({
  index: Type.Integer({ description: "position in the rule's targets" }),
  host: Type.String(),
  port: Type.Integer(),
  priority: Type.Integer(),
  health: Type.Union([Type.Literal(0), Type.Literal(1)], { description: '0 healthy, 1 failed' }),
  consecutive_failures: Type.Integer(),
  last_failure_at_unix_ms: Type.Integer({ description: '0: never' }),
  last_success_at_unix_ms: Type.Integer({ description: '0: never' }),
  bytes_in: Type.Integer(),
  bytes_out: Type.Integer(),
  connections_accepted: Type.Integer(),
});

/** `GET /v1/rules/{id}/stats` and each `stats` event of the SSE stream. */
export const RuleStatsSnapshotSchema = Closed({
  rule_id: Type.Integer(),
  client_name: Type.String(),
  protocol: Type.Optional(ProtocolSchema),
  bytes_in: Type.Integer(),
  bytes_out: Type.Integer(),
  active_connections: Type.Integer(),
  dns_failures: Type.Integer(),
  datagrams_in: Type.Integer(),
  datagrams_out: Type.Integer(),
  active_flows: Type.Integer(),
  flows_dropped_overflow: Type.Integer(),
  target_failovers_total: Type.Integer(),
  /** Connections a shared SNI port routed to the rule, by how it matched (reference §5.7). */
  sni_route_exact_total: Type.Optional(Type.Integer()),
  sni_route_wildcard_total: Type.Optional(Type.Integer()),
  sni_route_fallback_total: Type.Optional(Type.Integer()),
  source_denied: Type.Integer({
    description: "connections or new UDP flows refused by the rule's source lists",
  }),
  rate_limit: Type.Optional(RateLimitStatsViewSchema),
  updated_at: Time,
  per_port: Type.Optional(Type.Array(PerPortStatsViewSchema, { description: 'with ?per_port=1' })),
  per_target: Type.Optional(
    Type.Array(PerTargetStatsViewSchema, { description: 'with ?per_target=1' }),
  ),
});

const Flag = Type.Optional(Type.String({ description: 'true, 1 or yes' }));
export const RuleStatsQuerySchema = Closed({ per_port: Flag, per_target: Flag });

// ---------------------------------------------------------------------------------------------
// Rule-set revisions

export const RuleRevisionViewSchema = Closed({
  revision: Type.Integer(),
  at: Time,
  actor: Type.String(),
  action: Type.String(),
  summary: Type.String(),
});

export const RuleRevisionListSchema = Closed({
  revisions: Type.Array(RuleRevisionViewSchema),
  next_cursor: Type.Optional(Type.String()),
});

export const RevisionListQuerySchema = Closed({
  limit: Type.Optional(Type.String({ description: '1..1000' })),
  cursor: Type.Optional(Type.String()),
});

/** A rule as a revision stores it: its definition, without live state. */
export const RuleDefinitionViewSchema = Closed({
  rule_id: Type.Integer(),
  client_id: Type.String(),
  client_name: Nullable(Type.String({ description: 'null once the client is gone' })),
  owner_user_id: Type.String(),
  protocol: ProtocolSchema,
  listen_port: Type.Integer(),
  listen_port_end: Type.Optional(Type.Integer()),
  prefer_ipv6: Type.Boolean(),
  targets: Type.Array(
    Closed({
      host: Type.String(),
      port: Type.Integer(),
      port_end: Type.Optional(Type.Integer()),
      priority: Type.Integer(),
      proxy_protocol: Nullable(ProxyProtocolVersionSchema),
    }),
  ),
  health_check_interval_secs: Type.Optional(Type.Integer()),
  sni_pattern: Type.Optional(Type.String()),
  rate_limit: Type.Optional(RateLimitViewSchema),
  allowed_sources: SourceList,
  denied_sources: SourceList,
});

export const RevisionDiffSchema = Closed({
  revision: Type.Integer(),
  head: Type.Integer({ description: 'the newest revision, 0 when none' }),
  added: Type.Array(RuleDefinitionViewSchema, { description: 'rules added since revision n' }),
  removed: Type.Array(RuleDefinitionViewSchema),
  changed: Type.Array(
    Closed({
      rule_id: Type.Integer(),
      fields: Type.Array(Type.String()),
      revision: RuleDefinitionViewSchema,
      now: RuleDefinitionViewSchema,
    }),
  ),
});

export const RestoreRequestSchema = Closed({
  ack_timeout_secs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60 })),
});

export const StepFailureSchema = Closed({
  rule_id: Type.Integer(),
  action: Type.Union([Type.Literal('remove'), Type.Literal('push'), Type.Literal('edit')]),
  code: Type.String(),
  message: Type.String(),
});

export const RestoreResultSchema = Closed({
  revision: Nullable(Type.Integer({ description: 'the new revision; null when nothing changed' })),
  restored_to: Type.Integer(),
  removed: Type.Array(Type.Integer()),
  pushed: Type.Array(Closed({ rule_id: Type.Integer(), status: Type.Literal('Active') })),
  edited: Type.Array(Closed({ rule_id: Type.Integer(), fields: Type.Array(Type.String()) })),
  failed: Type.Array(StepFailureSchema),
});

// ---------------------------------------------------------------------------------------------
// Quotas (DESIGN.md §8.9) and traffic history

export const QuotaEnforcementSchema = Type.Union([Type.Literal('hard'), Type.Literal('soft')], {
  description: 'hard stops the owner’s traffic once used up, soft only alerts',
});
export const QuotaPeriodSchema = Type.Union([Type.Literal('monthly'), Type.Literal('never')], {
  description: 'monthly renews each billing period; never is an allowance spent once',
});

const Seconds = Type.Integer({ description: 'unix seconds' });

export const QuotaViewSchema = Closed({
  user_id: Type.String(),
  client_id: Type.String(),
  client_name: Type.String(),
  monthly_bytes: Type.Integer(),
  billing_anchor: Seconds,
  current_period_started_at: Seconds,
  current_period_ends_at: Nullable(Seconds),
  current_period_bytes_used: Type.Integer(),
  budget_remaining_bytes: Type.Integer({ description: 'negative once usage went past the limit' }),
  exhausted_at: Nullable(Seconds),
  exhausted: Type.Boolean(),
  created_at: Seconds,
  updated_at: Seconds,
  enforcement: QuotaEnforcementSchema,
  period: QuotaPeriodSchema,
  reset_day: Nullable(Type.Integer({ minimum: 1, maximum: 28 })),
});

// The quota service checks each field itself with its catalogued code (invalid_quota_size,
// invalid_billing_anchor, invalid_quota_policy), so the schema names the fields and refuses
// unknown ones, and the types are documentation.
const Quota = {
  monthly_bytes: Type.Unsafe<number>({ description: 'integer ≥ 0 (else invalid_quota_size)' }),
  enforcement: Type.Unsafe<Static<typeof QuotaEnforcementSchema>>({
    description: 'hard or soft (else invalid_quota_policy)',
  }),
  clear_period_usage: Type.Unsafe<boolean>({ description: 'boolean: zero the period usage' }),
};

export const QuotaPutRequestSchema = Closed({
  monthly_bytes: Type.Optional(Quota.monthly_bytes),
  billing_anchor: Type.Optional(
    Type.Unsafe<number>({ description: 'unix seconds, not in the future; not with reset_day' }),
  ),
  reset_day: Type.Optional(Type.Unsafe<number>({ description: '1..28, period monthly only' })),
  enforcement: Type.Optional(Quota.enforcement),
  period: Type.Optional(
    Type.Unsafe<Static<typeof QuotaPeriodSchema>>({
      description: 'monthly or never (else invalid_quota_policy)',
    }),
  ),
  clear_period_usage: Type.Optional(Quota.clear_period_usage),
});

export const QuotaPatchRequestSchema = Closed({
  monthly_bytes: Type.Optional(Quota.monthly_bytes),
  clear_period_usage: Type.Optional(Quota.clear_period_usage),
  enforcement: Type.Optional(Quota.enforcement),
});

export const TrafficBucketSchema = Type.Union([Type.Literal('1m'), Type.Literal('1h')]);

export const TrafficViewSchema = Closed({
  bucket: TrafficBucketSchema,
  samples: Type.Array(
    Closed({
      ts: Type.Integer({ description: 'bucket start, unix seconds' }),
      bytes_in: Type.Integer(),
      bytes_out: Type.Integer(),
    }),
  ),
  total_bytes_in: Type.Integer(),
  total_bytes_out: Type.Integer(),
});

const TrafficRange = {
  from: Type.Optional(Type.String({ description: 'unix seconds' })),
  to: Type.Optional(Type.String({ description: 'unix seconds' })),
  bucket: Type.Optional(Type.String({ description: '1m, 1h or auto' })),
};
export const GlobalTrafficQuerySchema = Closed(TrafficRange);
export const UserTrafficQuerySchema = Closed({
  ...TrafficRange,
  client_id: Type.Optional(Type.String()),
});
export const ClientTrafficQuerySchema = Closed({
  ...TrafficRange,
  user_id: Type.Optional(Type.String()),
});
