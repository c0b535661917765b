/**
 * A rule's definition in the operator API's terms: the snake_case view every answer that shows
 * a definition uses (Rule JSON, revision diffs), the names of the fields two definitions differ
 * in, and the one-line summaries revisions carry. Built on the store's `RuleDefinition`, so the
 * field list is spelled here once for the API. No HTTP, no fleet, no store access.
 */
import {
  RATE_LIMIT_FIELDS,
  rateLimitView,
  type RateLimitCaps,
  type RuleDefinitionView,
} from '@portunus/api';
import { RATE_LIMIT_COLUMNS, type RateLimit, type RuleDefinition } from '@portunus/store';

export { rateLimitView };

/**
 * The store may not import @portunus/api (DESIGN.md §2), so it keeps its own column list; these
 * lines fail to compile when the store's caps and the api's field list stop naming the same
 * fields, and rule-definitions.test.ts checks that each column is `rl_` + the API name.
 */
type StoreField = (typeof RATE_LIMIT_COLUMNS)[number][1];
type ApiField = (typeof RATE_LIMIT_FIELDS)[number]['field'];
export const STORE_FIELDS_MATCH_API: [StoreField] extends [ApiField]
  ? [ApiField] extends [StoreField]
    ? true
    : never
  : never = true;
export const STORE_CAPS_MATCH_API: [RateLimit] extends [RateLimitCaps]
  ? [RateLimitCaps] extends [RateLimit]
    ? true
    : never
  : never = true;

/** A definition as the API shows it; absent optional fields are omitted, as in Rule JSON. */
export function definitionView(
  definition: RuleDefinition,
): Omit<RuleDefinitionView, 'client_name'> {
  return {
    rule_id: definition.ruleId,
    client_id: definition.clientId,
    owner_user_id: definition.ownerUserId,
    protocol: definition.protocol,
    listen_port: definition.listenPort,
    ...(definition.listenPortEnd !== null ? { listen_port_end: definition.listenPortEnd } : {}),
    prefer_ipv6: definition.preferIpv6,
    targets: definition.targets.map((target) => ({
      host: target.host,
      port: target.port,
      ...(target.portEnd !== null ? { port_end: target.portEnd } : {}),
      priority: target.priority,
      proxy_protocol: target.proxyProtocol,
    })),
    ...(definition.healthCheckIntervalSecs !== null
      ? { health_check_interval_secs: definition.healthCheckIntervalSecs }
      : {}),
    ...(definition.sniPattern !== null ? { sni_pattern: definition.sniPattern } : {}),
    ...(definition.rateLimit !== null ? { rate_limit: rateLimitView(definition.rateLimit) } : {}),
    allowed_sources: definition.allowedSources,
    denied_sources: definition.deniedSources,
  };
}

/** The API names of the fields `a` and `b` differ in, in view order. */
export function changedFields(a: RuleDefinition, b: RuleDefinition): string[] {
  const left = definitionView(a);
  const right = definitionView(b);
  const names = [...new Set([...Object.keys(left), ...Object.keys(right)])];
  const field = (view: object, name: string): unknown => (view as Record<string, unknown>)[name];
  return names.filter(
    (name) => JSON.stringify(field(left, name)) !== JSON.stringify(field(right, name)),
  );
}

/** `edge-1 tcp 18080 -> 10.0.0.5:80`, for revision summaries and logs. */
export function describeRule(definition: RuleDefinition, clientName: string): string {
  const listen =
    definition.listenPortEnd === null
      ? String(definition.listenPort)
      : `${definition.listenPort}-${definition.listenPortEnd}`;
  const targets = definition.targets
    .map((target) => {
      const host = target.host.includes(':') ? `[${target.host}]` : target.host;
      const port = target.portEnd === null ? target.port : `${target.port}-${target.portEnd}`;
      return `${host}:${port}`;
    })
    .join(',');
  return `${clientName} ${definition.protocol} ${listen} -> ${targets}`;
}
