/**
 * Every request and response body of the operator API (reference §2.3–2.5) as a JSON-Schema
 * value, built with TypeBox. These values are the one definition: the server hands them to its
 * routes (fastify validates requests and serialises answers with them, and the OpenAPI document
 * of docs/operator-api.md is generated from them), and shapes.ts derives the TypeScript types
 * the server, the CLI and the web UI use. Browser-safe: TypeBox and rule-policy.ts only, no
 * workspace package (the web UI bundles this file).
 *
 * Request schemas are deliberately lax where a catalogued check answers better than a schema
 * could: a wrong protocol is `invalid_protocol` (422), a fractional port `invalid_port_range`, so
 * such fields are typed as plain strings or numbers here and their allowed values are named in
 * `description`. Response schemas are complete: fastify's serialiser drops any property a
 * response schema does not name.
 */
import Type, { type TSchema, type TProperties, type Static } from 'typebox';

import { RATE_LIMIT_FIELDS, RESERVED_RATE_LIMIT_FIELD, type RateLimitName } from './rule-policy.js';

/** `T` or JSON null. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
/** An object that refuses (request) or never carries (response) an unnamed property. */
export const Closed = <P extends TProperties>(properties: P, description?: string) =>
  Type.Object(properties, {
    additionalProperties: false,
    ...(description !== undefined ? { description } : {}),
  });
const Str = (description?: string) => Type.String(description !== undefined ? { description } : {});
const Int = (description?: string) =>
  Type.Integer(description !== undefined ? { description } : {});
/** RFC 3339 UTC text, as formatRfc3339 writes it. */
const Time = Type.String({ format: 'date-time' });
/** A string typed as `T` in TypeScript but checked by a catalogued rule, not by the schema. */
const Checked = <T extends string>(maxLength: number, description: string) =>
  Type.Unsafe<T>({ type: 'string', maxLength, description });

// ---------------------------------------------------------------------------------------------
// Common

export const ErrorBodySchema = Closed(
  {
    error: Closed({
      code: Str('a code of the error catalogue (docs/operator-api.md)'),
      message: Str(),
    }),
  },
  'Every error answer: the code is stable, the message is for people.',
);

export const RoleSchema = Type.Union([Type.Literal('superadmin'), Type.Literal('user')]);
export const ProtocolSchema = Type.Union([Type.Literal('tcp'), Type.Literal('udp')]);
export const ProxyProtocolVersionSchema = Type.Union([Type.Literal('v1'), Type.Literal('v2')]);

/** No query parameters at all: an unknown one is `validation_failed`. */
export const NoQuerySchema = Closed({});
/** A body that may be absent (or JSON null) altogether. */
export const orNoBody = <T extends TSchema>(schema: T) => Nullable(schema);

// ---------------------------------------------------------------------------------------------
// Auth and the caller

export const AuthStatusSchema = Closed({ onboarding_required: Type.Boolean() });

export const OnboardingRequestSchema = Closed({
  user_id: Str(),
  display_name: Str(),
  password: Str(),
  password_confirm: Str(),
  setup_token: Type.Optional(Str('printed by `portunus-server serve` on first start')),
});

export const OnboardingResponseSchema = Closed({
  user_id: Str(),
  display_name: Str(),
  role: RoleSchema,
});

export const LoginRequestSchema = Closed({
  user_id: Type.String({ maxLength: 256 }),
  password: Str(),
});

export const LoginResponseSchema = Closed({ password_change_required: Type.Boolean() });

export const ChangePasswordRequestSchema = Closed({
  current_password: Str(),
  new_password: Str(),
  new_password_confirm: Str(),
});

export const MeSchema = Closed({
  user_id: Str(),
  role: RoleSchema,
  display_name: Str(),
  password_change_required: Type.Optional(Type.Boolean()),
});

// ---------------------------------------------------------------------------------------------
// Users, grants, credentials

export const UserViewSchema = Closed({
  user_id: Str(),
  display_name: Str(),
  role: RoleSchema,
  disabled: Type.Boolean(),
  password_change_required: Type.Boolean(),
  created_at: Time,
  grant_count: Int(),
});

export const CreateUserRequestSchema = Closed({
  user_id: Str(),
  display_name: Str(),
  // Typed as a role, checked by the handler: another value answers invalid_role (422).
  role: Type.Optional(Checked<Static<typeof RoleSchema>>(64, 'user (default) or superadmin')),
  initial_password: Type.Optional(Str('required; its absence answers initial_password_required')),
  password_change_required: Type.Optional(Type.Boolean()),
});

export const CreateUserResponseSchema = OnboardingResponseSchema;

export const DeleteUserResponseSchema = Closed({
  user_id: Str(),
  removed_credential_ids: Type.Array(Str()),
  revoked_grant_ids: Type.Array(Str()),
  removed_rule_ids: Type.Array(Int()),
});

export const ResetPasswordRequestSchema = Closed({
  new_password: Type.Optional(Str('absent: a generated password the user must change')),
  temporary_password: Type.Optional(Type.Boolean()),
});

export const ResetPasswordResponseSchema = Closed({
  user_id: Str(),
  sessions_revoked: Int(),
  temporary_password: Type.Optional(Str('only when the server generated the password')),
});

export const GrantViewSchema = Closed({
  grant_id: Str(),
  user_id: Str(),
  client: Str('the client name, or * for every client'),
  client_id: Nullable(Str()),
  listen_port_start: Int(),
  listen_port_end: Int(),
  protocols: Type.Array(ProtocolSchema),
  note: Str(),
  created_at: Time,
});

export const CreateGrantRequestSchema = Closed({
  user_id: Type.String({ maxLength: 64 }),
  client: Type.String({ maxLength: 255, description: 'a client id, a client name, or *' }),
  // Numbers, not integers: checkPortRange answers a fractional port with invalid_port_range.
  listen_port_start: Type.Number({ description: '1..65535' }),
  listen_port_end: Type.Number({ description: '1..65535, not below the start' }),
  protocols: Type.Optional(
    Type.Array(Checked<Static<typeof ProtocolSchema>>(16, 'tcp or udp'), {
      maxItems: 8,
      description: 'default [tcp]',
    }),
  ),
  // The column's CHECK (length(note) <= 256) counts characters, as ajv's maxLength does.
  note: Type.Optional(Type.String({ maxLength: 256 })),
});

export const DeleteGrantResponseSchema = Closed({
  grant_id: Str(),
  removed_rule_ids: Type.Array(Int()),
});

export const UserIdQuerySchema = Closed({ user_id: Type.Optional(Type.String({ maxLength: 64 })) });

export const CredentialViewSchema = Closed({
  credential_id: Str(),
  user_id: Str(),
  label: Str(),
  status: Str('active or revoked'),
  issued_at: Time,
  revoked_at: Nullable(Time),
  last_used_at: Nullable(Time),
});

export const CreateCredentialRequestSchema = Closed({
  label: Type.Optional(Str('at most 128 characters')),
  user_id: Type.Optional(Type.String({ maxLength: 64, description: 'superadmin only' })),
});

export const CreatedCredentialSchema = Closed(
  { ...CredentialViewSchema.properties, token: Str('shown once, never again') },
  'Only the creation answer carries the token.',
);

// ---------------------------------------------------------------------------------------------
// Clients and enrollment

export const ClientViewSchema = Closed({
  client_id: Str(),
  client_name: Str(),
  provisioned_at: Time,
  revoked_at: Nullable(Time),
  connected: Type.Boolean(),
  client_address: Nullable(Str()),
  remote_addr: Nullable(Str()),
  connected_at: Nullable(Time),
});

export const EnrollmentRequestSchema = Closed({
  name: Type.String({ maxLength: 1024 }),
  address: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
  // A number, not an integer: 1.5 answers invalid_enrollment_ttl like 0 does.
  ttl_secs: Type.Optional(Type.Number({ description: 'seconds the code stays valid' })),
});

export const ReenrollmentRequestSchema = Closed({ ttl_secs: Type.Optional(Type.Number()) });

export const IssuedEnrollmentSchema = Closed(
  {
    client_id: Str(),
    client_name: Str(),
    expires_at: Time,
    command: Str('the one-time `portunus-client enroll …` command'),
    uri: Str('portunus://… carrying the one-time code'),
  },
  'A one-time enrollment code: it exists only inside uri and command.',
);

export const ClientAddressRequestSchema = Closed({
  address: Nullable(Type.String({ maxLength: 1024, description: 'empty or null clears it' })),
});

export const RenameClientRequestSchema = Closed({
  client_name: Type.String({ maxLength: 1024 }),
});

// ---------------------------------------------------------------------------------------------
// Settings

export const AdvertisedEndpointViewSchema = Closed({
  override: Nullable(Str()),
  effective: Nullable(Str()),
  source: Nullable(
    Type.Union([
      Type.Literal('override'),
      Type.Literal('seed'),
      Type.Literal('derived'),
      Type.Literal('loopback'),
    ]),
  ),
  diagnostic: Nullable(Str()),
});

export const AdvertisedEndpointRequestSchema = Closed({
  advertised_endpoint: Nullable(
    Type.String({ maxLength: 1024, description: 'a bare host:port; null or empty clears it' }),
  ),
});

// ---------------------------------------------------------------------------------------------
// Audit

export const AuditEntrySchema = Closed({
  timestamp: Time,
  actor: Str(),
  role: Type.Optional(Str()),
  method: Str(),
  path: Str(),
  outcome: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  reason: Type.Optional(Str('the error code of a denial')),
  action: Type.Optional(Str()),
  resource_kind: Type.Optional(Str()),
  resource_value: Type.Optional(Str()),
  details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

export const AuditEnvelopeSchema = Closed({
  entries: Type.Array(AuditEntrySchema),
  next_cursor: Type.Optional(Str()),
  count: Int(),
});

export const AuditQuerySchema = Closed({
  limit: Type.Optional(Str('1..1000, default 100')),
  outcome: Type.Optional(Str('allow or deny')),
  since: Type.Optional(Str('RFC 3339')),
  until: Type.Optional(Str('RFC 3339')),
  cursor: Type.Optional(Str()),
});

// ---------------------------------------------------------------------------------------------
// Rate limits (reference §5.8), driven by rule-policy.ts's field list

const capNames = [...RATE_LIMIT_FIELDS.map((spec) => spec.name), RESERVED_RATE_LIMIT_FIELD];

/** Caps in a request: integers or null; ranges, zero and bursts answer checkRateLimit's codes. */
export const RateLimitSchema = Type.Unsafe<
  { [K in RateLimitName]?: number | null } & { concurrent_connections_burst?: number | null }
>({
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    capNames.map((name) => [name, { type: ['integer', 'null'], minimum: 0 }]),
  ),
});

/** Caps in an answer: only the caps that are set. */
export const RateLimitViewSchema = Type.Unsafe<{ [K in RateLimitName]?: number }>({
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    RATE_LIMIT_FIELDS.map((spec) => [spec.name, { type: 'integer', minimum: 0 }]),
  ),
});

export const OwnerRateLimitViewSchema = Closed({
  client_id: Str(),
  client_name: Str(),
  owner_id: Str(),
  rate_limit: RateLimitViewSchema,
  updated_at_unix_ms: Int(),
});

export const ClientOwnerViewSchema = Closed({
  owner_id: Str(),
  has_rate_limit: Type.Boolean(),
  rule_count: Int(),
});

export const RateLimitStatsViewSchema = Closed({
  reject_total: Type.Record(Type.String(), Type.Number(), {
    description: 'refusals by reason: conn_concurrent, conn_rate, udp_flow_rate, owner_*',
  }),
  throttle_seconds_in: Type.Number(),
  throttle_seconds_out: Type.Number(),
  active_connections: Int(),
});
