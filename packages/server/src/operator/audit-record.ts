/**
 * The one place an operator request becomes an audit row: who (the attached identity, else the
 * actor a public route named, else `_anonymous`), from where (`details.remote_addr`, the TCP peer
 * of the request's socket), what (method, path, named action) and on which resource
 * (`resource_kind` / `resource_value`), so an operator can answer "who removed rule 17, from
 * where" from `GET /v1/audit` (reference/portunus-inventory.md §7.1). Routes only say what they
 * act on (`request.auditResource` as soon as they know it, `request.auditAction` on success);
 * none of them spells a record. It depends on fastify's request type and the store's record shape
 * only — never on the writer, the database or a route module.
 */
import type { FastifyRequest } from 'fastify';

import type { AuditRecord } from '@portunus/store';

import { RESERVED_USERS } from './context.js';
import './request-state.js';

/**
 * Path parameters that name the resource of a route, so a denied request (404, 403, a failed
 * validation) still names what it tried to touch even though the handler never reached the
 * point where it sets a named action.
 */
const PARAM_RESOURCES: readonly (readonly [param: string, kind: string])[] = [
  ['ruleId', 'rule'],
  ['credentialId', 'credential'],
  ['grantId', 'grant'],
  ['clientId', 'client'],
  ['userId', 'user'],
];

export interface AuditResource {
  kind: string;
  value: string;
}

/** The resource a request acted on: its named action's, else the route's, else its path's. */
export function auditResourceOf(request: FastifyRequest): AuditResource | undefined {
  const named = request.auditAction;
  if (named?.resourceKind !== undefined && named.resourceValue !== undefined) {
    return { kind: named.resourceKind, value: named.resourceValue };
  }
  if (request.auditResource) return request.auditResource;
  const params = request.params as Record<string, unknown> | undefined;
  if (params && typeof params === 'object') {
    for (const [param, kind] of PARAM_RESOURCES) {
      const value = params[param];
      if (typeof value === 'string' && value !== '') return { kind, value };
    }
  }
  return undefined;
}

/**
 * The peer address of the connection, never a forwarded-for header: the operator listener trusts
 * no proxy (`trustProxy: false` in app.ts), so a header would let any caller write its own alibi.
 */
export function remoteAddrOf(request: FastifyRequest): string | null {
  return request.socket.remoteAddress ?? null;
}

export interface AuditOutcomeInput {
  ts: number;
  status: number;
  /** The catalogued reason of a denial; null on allow. */
  reason: string | null;
}

/** Builds the audit row of one finished operator request. */
export function auditRecordFor(request: FastifyRequest, outcome: AuditOutcomeInput): AuditRecord {
  const identity = request.identity;
  const named = request.auditAction;
  const resource = auditResourceOf(request);
  return {
    ts: outcome.ts,
    actor: identity?.userId ?? named?.actor ?? RESERVED_USERS.anonymous,
    role: identity?.role ?? null,
    outcome: outcome.reason === null ? 'allow' : 'deny',
    method: request.method,
    path: routePath(request),
    reason: outcome.reason,
    action: named?.action ?? null,
    resourceKind: resource?.kind ?? null,
    resourceValue: resource?.value ?? null,
    details: {
      status: outcome.status,
      remote_addr: remoteAddrOf(request),
      ...(identity ? { auth_method: identity.authMethod } : {}),
      ...(named?.details ?? {}),
    },
  };
}

/** Path without the query string: the audit log must not keep tokens that sit in a query. */
export function routePath(request: FastifyRequest): string {
  const url = request.url;
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
