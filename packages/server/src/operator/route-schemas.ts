/**
 * The pieces every operator route's `schema` option is built from: the error answers of a route
 * from the one catalogue (`failures`), so the documented status of each code is the
 * catalogue's, and the failure sets every authenticated route shares. The bodies themselves are
 * @portunus/api's schemas; the OpenAPI document (openapi.ts) is generated from what the routes
 * declare. Depends on core's catalogue and TypeBox only: no route, store or fastify import.
 */
import Type, { type TSchema } from 'typebox';

import { ERROR_CATALOGUE, type ErrorCode } from '@portunus/core';

/**
 * Failures any request can meet before its handler runs or while the store answers: a body that
 * is not JSON or not of the declared shape, a body too large, another content type, a store
 * that is full, failing or corrupt, and an unexpected fault.
 */
export const REQUEST_FAILURES = [
  'validation_failed',
  'invalid_body',
  'unsupported_media_type',
  'payload_too_large',
  'internal_error',
  'store_error',
  'store_io_error',
  'store_full',
] as const satisfies readonly ErrorCode[];

/** What the auth layer (auth.ts) answers in front of every non-public route. */
export const AUTH_FAILURES = [
  ...REQUEST_FAILURES,
  'unauthenticated',
  'credential_invalid',
  'user_disabled',
  'bootstrap_required',
  'password_change_required',
  'csrf_origin_required',
  'csrf_origin_mismatch',
  'csrf_header_required',
  'csrf_content_type_required',
] as const satisfies readonly ErrorCode[];

/** A superadmin-only route adds role_required. */
export const ADMIN_FAILURES = [...AUTH_FAILURES, 'role_required'] as const;

/** The error body of one HTTP status: `code` is one of the listed codes. */
function errorAnswer(status: number, codes: readonly string[]): TSchema {
  return Type.Object(
    {
      error: Type.Object(
        { code: Type.String({ enum: [...codes] }), message: Type.String() },
        { additionalProperties: false },
      ),
    },
    { additionalProperties: false, description: `HTTP ${status}: ${codes.join(', ')}` },
  );
}

/**
 * The response schemas of a route's error answers, one per HTTP status, each naming the codes
 * that answer with it. The status comes from the catalogue, never from the route.
 */
export function failures(...groups: readonly (readonly ErrorCode[])[]): Record<number, TSchema> {
  const byStatus = new Map<number, string[]>();
  for (const code of new Set(groups.flat())) {
    const status = ERROR_CATALOGUE[code].httpStatus;
    const list = byStatus.get(status) ?? [];
    list.push(code);
    byStatus.set(status, list);
  }
  return Object.fromEntries(
    [...byStatus]
      .sort(([a], [b]) => a - b)
      .map(([status, codes]) => [status, errorAnswer(status, codes)]),
  );
}

/** A 204 answer: no body at all. */
export const NO_CONTENT = Type.Null({ description: 'no content' });

/**
 * Path parameters, all strings. A length only where the route had one: elsewhere a malformed id
 * is simply not found (the handlers' own answer), not a validation failure.
 */
export function pathParams<const K extends string>(lengths: Record<K, number | undefined>) {
  return Type.Object(
    Object.fromEntries(
      Object.entries<number | undefined>(lengths).map(([name, maxLength]) => [
        name,
        Type.String(maxLength !== undefined ? { maxLength } : {}),
      ]),
    ) as { [P in K]: ReturnType<typeof Type.String> },
    { additionalProperties: false },
  );
}

/**
 * What a rule push or edit can answer beyond the auth layer: the field checks of
 * rule-validation.ts and rule-policy.ts, the grant checks, port and SNI conflicts, the client's
 * capabilities and its activation answer (services/rules.ts).
 */
export const RULE_WRITE_FAILURES = [
  'invalid_protocol',
  'rule_shape_conflict',
  'rule_shape_missing',
  'range_invalid',
  'targets_empty',
  'targets_too_many',
  'targets_duplicate',
  'target_invalid_port',
  'target_invalid_host',
  'invalid_target_host',
  'invalid_target_host_too_long',
  'invalid_target_host_label_too_long',
  'invalid_target_host_label_hyphen',
  'health_check_interval_out_of_range',
  'exceeds_cap',
  'validation.sni_on_unsupported_rule',
  'validation.sni_pattern_malformed',
  'validation.rate_limit_cap_zero',
  'validation.rate_limit_cap_out_of_range',
  'validation.rate_limit_burst_without_rate',
  'validation.rate_limit_burst_range',
  'validation.rate_limit_burst_unsupported',
  'validation.rate_limit_on_legacy_shape',
  'validation.rate_limit_no_caps_provided',
  'validation.proxy_protocol_invalid',
  'validation.proxy_protocol_on_unsupported_rule',
  'validation.source_cidr_invalid',
  'validation.source_list_too_long',
  'validation.target_is_self',
  'validation.rule_update_shape_mismatch',
  'client_not_granted',
  'protocol_not_granted',
  'port_outside_grant',
  'not_owner',
  'client_not_found',
  'ambiguous_client_name',
  'port_in_use',
  'conflict.sni_route_duplicate',
  'conflict.sni_fallback_duplicate',
  'conflict.legacy_to_sni_unsupported',
  'client_not_connected',
  'activation_failed',
  'unsupported_protocol',
  'multi_target_unsupported_by_client',
  'sni_unsupported_by_client',
  'proxy_protocol_unsupported_by_client',
  'rate_limit_unsupported_by_client',
  'source_lists_unsupported_by_client',
  'quota_unsupported_by_client',
  'permission_denied',
  'bind_failed',
  'source_list_invalid',
  'ack_timeout',
] as const satisfies readonly ErrorCode[];

/** A 200 answer that is not JSON (Prometheus text, an event stream), by its media type. */
export function textAnswer(mediaType: string, description: string) {
  return { description, content: { [mediaType]: { schema: Type.String() } } };
}
