/**
 * The TypeScript types of the operator API's bodies (reference §2.3–2.5), each derived from its
 * JSON Schema in schemas.ts / schemas-rules.ts with `Static<>`, so a field renamed in a schema
 * fails to compile in the server, the CLI and the web UI at once, and the OpenAPI document can
 * never describe a shape the code does not use. Types only: nothing here emits runtime code.
 */
import type { Static } from 'typebox';

import type * as S from './schemas.js';
import type * as R from './schemas-rules.js';

/** Every error answer: `{"error":{"code","message"}}`. */
export type ErrorBody = Static<typeof S.ErrorBodySchema>;

export type Role = Static<typeof S.RoleSchema>;
export type Protocol = Static<typeof S.ProtocolSchema>;
export type ProxyProtocolVersion = Static<typeof S.ProxyProtocolVersionSchema>;

export type AuthStatus = Static<typeof S.AuthStatusSchema>;
export type OnboardingRequest = Static<typeof S.OnboardingRequestSchema>;
export type OnboardingResponse = Static<typeof S.OnboardingResponseSchema>;
export type LoginRequest = Static<typeof S.LoginRequestSchema>;
export type LoginResponse = Static<typeof S.LoginResponseSchema>;
export type ChangePasswordRequest = Static<typeof S.ChangePasswordRequestSchema>;
export type Me = Static<typeof S.MeSchema>;

export type UserView = Static<typeof S.UserViewSchema>;
/**
 * The schema leaves `initial_password` optional so that its absence answers the catalogued
 * initial_password_required (422) rather than a bare validation_failed; a caller must send it.
 */
export type CreateUserRequest = Static<typeof S.CreateUserRequestSchema> & {
  initial_password: string;
};
export type CreateUserResponse = Static<typeof S.CreateUserResponseSchema>;
export type DeleteUserResponse = Static<typeof S.DeleteUserResponseSchema>;
export type ResetPasswordRequest = Static<typeof S.ResetPasswordRequestSchema>;
export type ResetPasswordResponse = Static<typeof S.ResetPasswordResponseSchema>;

export type GrantView = Static<typeof S.GrantViewSchema>;
export type CreateGrantRequest = Static<typeof S.CreateGrantRequestSchema>;
export type DeleteGrantResponse = Static<typeof S.DeleteGrantResponseSchema>;

export type CredentialView = Static<typeof S.CredentialViewSchema>;
export type CreateCredentialRequest = Static<typeof S.CreateCredentialRequestSchema>;
/** Only the creation answer carries the token; it is never shown again. */
export type CreatedCredential = Static<typeof S.CreatedCredentialSchema>;

export type ClientView = Static<typeof S.ClientViewSchema>;
export type EnrollmentRequest = Static<typeof S.EnrollmentRequestSchema>;
export type ReenrollmentRequest = Static<typeof S.ReenrollmentRequestSchema>;
/** A one-time enrollment code: it exists only inside `uri` and `command`. */
export type IssuedEnrollment = Static<typeof S.IssuedEnrollmentSchema>;
export type ClientAddressRequest = Static<typeof S.ClientAddressRequestSchema>;
export type RenameClientRequest = Static<typeof S.RenameClientRequestSchema>;

export type AdvertisedEndpointView = Static<typeof S.AdvertisedEndpointViewSchema>;
export type AdvertisedEndpointRequest = Static<typeof S.AdvertisedEndpointRequestSchema>;

/** One audit row as `GET /v1/audit` answers it. */
export type AuditEntry = Static<typeof S.AuditEntrySchema>;
export type AuditEnvelope = Static<typeof S.AuditEnvelopeSchema>;

/** Rate-limit caps of a request (reference §5.8); the field list is rule-policy.ts's. */
export type RateLimit = Static<typeof S.RateLimitSchema>;
/** Caps as answers show them: only the caps that are set. */
export type RateLimitView = Static<typeof S.RateLimitViewSchema>;
/** `PUT /v1/clients/{id}/owners/{owner}/rate-limit`: the caps, at least one. */
export type OwnerRateLimitRequest = RateLimit;
/** `GET|PUT /v1/clients/{id}/owners/{owner}/rate-limit` (reference §2.3): present caps only. */
export type OwnerRateLimitView = Static<typeof S.OwnerRateLimitViewSchema>;
/** One entry of `GET /v1/clients/{id}/owners`: owners with rules ∪ owners with envelopes. */
export type ClientOwnerView = Static<typeof S.ClientOwnerViewSchema>;
/** A rule's (or an owner envelope's) limiter counters, cumulative since the client started it. */
export type RateLimitStatsView = Static<typeof S.RateLimitStatsViewSchema>;

export type RuleTargetInput = Static<typeof R.RuleTargetInputSchema>;
/** Body of `POST /v1/rules` and `PUT /v1/rules/{id}` (reference §2.4). */
export type RulePushRequest = Static<typeof R.RulePushRequestSchema>;
export type RuleStateKind = Static<typeof R.RuleStateKindSchema>;
export type RuleState = Static<typeof R.RuleStateSchema>;
export type TargetHealth = Static<typeof R.TargetHealthSchema>;
export type RuleTargetView = Static<typeof R.RuleTargetViewSchema>;
/** Rule JSON of `GET /v1/rules` (reference §2.5). */
export type RuleView = Static<typeof R.RuleViewSchema>;
/** Answer of a push or an edit; ⚠ `owner` here, `owner_user_id` in the list (reference §2.5). */
export type RulePushResponse = Static<typeof R.RulePushResponseSchema>;
/** `GET /v1/rules/{id}/stats` and each `stats` event of the SSE stream. */
export type RuleStatsSnapshot = Static<typeof R.RuleStatsSnapshotSchema>;
export type PerPortStatsView = Static<typeof R.PerPortStatsViewSchema>;
export type PerTargetStatsView = Static<typeof R.PerTargetStatsViewSchema>;

export type RuleRevisionView = Static<typeof R.RuleRevisionViewSchema>;
export type RuleRevisionList = Static<typeof R.RuleRevisionListSchema>;
export type RuleDefinitionView = Static<typeof R.RuleDefinitionViewSchema>;
export type RevisionDiff = Static<typeof R.RevisionDiffSchema>;
export type RestoreRequest = Static<typeof R.RestoreRequestSchema>;
export type StepFailure = Static<typeof R.StepFailureSchema>;
export type RestoreResult = Static<typeof R.RestoreResultSchema>;

/** How a quota acts once used up (DESIGN.md §8.9): `hard` stops the owner's traffic, `soft` alerts. */
export type QuotaEnforcement = Static<typeof R.QuotaEnforcementSchema>;
/** `monthly` renews each billing period; `never` is an allowance spent once. */
export type QuotaPeriod = Static<typeof R.QuotaPeriodSchema>;
/** A traffic quota (reference §2.3 QuotaView; all times unix seconds) with its policy fields. */
export type QuotaView = Static<typeof R.QuotaViewSchema>;
/** `PUT /v1/users/{u}/quotas/{client_id}`: replacing a quota keeps its usage unless cleared. */
export type QuotaPutRequest = Static<typeof R.QuotaPutRequestSchema>;
/** `PATCH /v1/users/{u}/quotas/{client_id}`: the limit is applied first, then the clear. */
export type QuotaPatchRequest = Static<typeof R.QuotaPatchRequestSchema>;

export type TrafficBucket = Static<typeof R.TrafficBucketSchema>;
export type TrafficView = Static<typeof R.TrafficViewSchema>;
export type TrafficSampleView = TrafficView['samples'][number];
