/**
 * The HTTP side of the CLI: commands that act on a running server call its operator API at
 * `--http-endpoint` (default 127.0.0.1:7080) with the bearer token from PORTUNUS_OPERATOR_TOKEN
 * (reference §1.1), else the credential `portunus-server login` stored (credential-file.ts). An error body `{"error":{"code","message"}}` becomes the PortunusError of
 * that code, so the CLI exits with the same catalogued code the server answered with; codes this
 * binary does not know exit 1. `operatorApi` is what commands use: one method per call, each
 * answering its @portunus/api shape, so no command reads a response by string keys.
 */
import type {
  ClientView,
  CreateCredentialRequest,
  CreateGrantRequest,
  CreateUserRequest,
  CreatedCredential,
  CredentialView,
  DeleteUserResponse,
  EnrollmentRequest,
  GrantView,
  IssuedEnrollment,
  DeleteGrantResponse,
  RulePushRequest,
  RulePushResponse,
  RestoreRequest,
  RestoreResult,
  RevisionDiff,
  RuleRevisionList,
  RuleStatsSnapshot,
  RuleView,
  UserView,
} from '@portunus/api';
import { ERROR_CATALOGUE, PortunusError, type ErrorCode } from '@portunus/core';

import { readStoredCredential } from './credential-file.js';

export const DEFAULT_HTTP_ENDPOINT = '127.0.0.1:7080';
/** Per request, as the reference: identity commands 10 s; rule pushes pass their ack budget. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface OperatorClient {
  request<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T>;
}

export function operatorClient(
  endpoint: string,
  env: Readonly<Record<string, string | undefined>>,
): OperatorClient {
  const base = baseUrl(endpoint);
  // The env var wins over the stored credential, so a script's explicit token is never ignored.
  let token = env['PORTUNUS_OPERATOR_TOKEN']?.trim();
  return {
    async request<T>(
      method: string,
      path: string,
      body?: unknown,
      timeoutMs = REQUEST_TIMEOUT_MS,
    ): Promise<T> {
      token ||= readStoredCredential(env)?.token;
      if (!token) throw new PortunusError('operator_token_missing');
      let response: Response;
      try {
        response = await fetch(`${base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw new PortunusError(
          'server_unreachable',
          `cannot reach ${base}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`,
          { endpoint: base },
        );
      }
      const text = await response.text();
      if (!response.ok) throw fromErrorBody(response.status, text);
      return (text === '' ? undefined : JSON.parse(text)) as T;
    },
  };
}

export function baseUrl(endpoint: string): string {
  return /^https?:\/\//.test(endpoint) ? endpoint.replace(/\/$/, '') : `http://${endpoint}`;
}

export function fromErrorBody(status: number, text: string): PortunusError {
  let code = `http_${status}`;
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') code = parsed.error.code;
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // not the error envelope; keep the raw text
  }
  if (Object.hasOwn(ERROR_CATALOGUE, code)) return new PortunusError(code as ErrorCode, message);
  return new PortunusError('internal_error', `${code}: ${message}`, { code, status });
}

/** The operator API calls the CLI makes, typed by @portunus/api. */
export interface OperatorApi {
  listClients(): Promise<ClientView[]>;
  enrollClient(body: EnrollmentRequest): Promise<IssuedEnrollment>;
  pushRule(body: RulePushRequest, timeoutMs: number): Promise<RulePushResponse>;
  editRule(ruleId: string, body: RulePushRequest, timeoutMs: number): Promise<RulePushResponse>;
  listRules(clientName?: string): Promise<RuleView[]>;
  removeRule(ruleId: string): Promise<void>;
  ruleStats(
    ruleId: string,
    rows: { perPort: boolean; perTarget: boolean },
  ): Promise<RuleStatsSnapshot>;
  createUser(body: CreateUserRequest): Promise<UserView>;
  listUsers(): Promise<UserView[]>;
  getUser(userId: string): Promise<UserView>;
  removeUser(userId: string): Promise<DeleteUserResponse>;
  createGrant(body: CreateGrantRequest): Promise<GrantView>;
  listGrants(userId?: string): Promise<GrantView[]>;
  revokeGrant(grantId: string): Promise<DeleteGrantResponse>;
  createCredential(body: CreateCredentialRequest): Promise<CreatedCredential>;
  listCredentials(userId?: string): Promise<CredentialView[]>;
  revokeCredential(credentialId: string): Promise<CredentialView>;
  listRevisions(limit: string, cursor?: string): Promise<RuleRevisionList>;
  revisionDiff(revision: string): Promise<RevisionDiff>;
  restoreRevision(revision: string, body: RestoreRequest): Promise<RestoreResult>;
}

/** `?name=value&…` of the parameters that are set, or the empty string. */
function query(params: Record<string, string | undefined>): string {
  const set = Object.entries(params).filter(
    (entry): entry is [string, string] => entry[1] !== undefined,
  );
  const pairs = set.map(([name, value]) => `${name}=${encodeURIComponent(value)}`);
  return pairs.length > 0 ? `?${pairs.join('&')}` : '';
}

/** A restore waits each step's ack budget; the answer comes when all steps are done. */
const RESTORE_TIMEOUT_MS = 10 * 60_000;

export function operatorApi(
  endpoint: string,
  env: Readonly<Record<string, string | undefined>>,
): OperatorApi {
  const http = operatorClient(endpoint, env);
  const id = encodeURIComponent;
  return {
    listClients: () => http.request('GET', '/v1/clients'),
    enrollClient: (body) => http.request('POST', '/v1/client-enrollments', body),
    pushRule: (body, timeoutMs) => http.request('POST', '/v1/rules', body, timeoutMs),
    editRule: (ruleId, body, timeoutMs) =>
      http.request('PUT', `/v1/rules/${id(ruleId)}`, body, timeoutMs),
    listRules: (clientName) => http.request('GET', `/v1/rules${query({ client: clientName })}`),
    removeRule: (ruleId) => http.request('DELETE', `/v1/rules/${id(ruleId)}`),
    ruleStats: (ruleId, rows) =>
      http.request(
        'GET',
        `/v1/rules/${id(ruleId)}/stats${query({
          per_port: rows.perPort ? 'true' : undefined,
          per_target: rows.perTarget ? 'true' : undefined,
        })}`,
      ),
    createUser: (body) => http.request('POST', '/v1/users', body),
    listUsers: () => http.request('GET', '/v1/users'),
    getUser: (userId) => http.request('GET', `/v1/users/${id(userId)}`),
    removeUser: (userId) => http.request('DELETE', `/v1/users/${id(userId)}`),
    createGrant: (body) => http.request('POST', '/v1/grants', body),
    listGrants: (userId) => http.request('GET', `/v1/grants${query({ user_id: userId })}`),
    revokeGrant: (grantId) => http.request('DELETE', `/v1/grants/${id(grantId)}`),
    createCredential: (body) => http.request('POST', '/v1/credentials', body),
    listCredentials: (userId) =>
      http.request('GET', `/v1/credentials${query({ user_id: userId })}`),
    revokeCredential: (credentialId) =>
      http.request('DELETE', `/v1/credentials/${id(credentialId)}`),
    listRevisions: (limit, cursor) =>
      http.request('GET', `/v1/rule-revisions${query({ limit, cursor })}`),
    revisionDiff: (revision) => http.request('GET', `/v1/rule-revisions/${id(revision)}/diff`),
    restoreRevision: (revision, body) =>
      http.request('POST', `/v1/rule-revisions/${id(revision)}/restore`, body, RESTORE_TIMEOUT_MS),
  };
}
