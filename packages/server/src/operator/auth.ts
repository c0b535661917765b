/**
 * The one auth layer every protected operator route goes through (reference §2.1, in order):
 * bootstrap gate (503 until an enabled superadmin exists) → identify (a `portunus_session`
 * cookie, when present, decides alone; otherwise `Authorization: Bearer`, either an API
 * credential or server.toml's operator_token as `_legacy`) → CSRF for cookie-authenticated
 * mutations → the forced password change gate. Routes never authenticate on their own. Depends on
 * the store's identity modules and the secret hashing.
 */
import type { FastifyRequest } from 'fastify';

import { PortunusError } from '@portunus/core';
import {
  findCredentialByHash,
  findLiveWebSession,
  getUser,
  hasEnabledSuperadmin,
  touchCredential,
  type User,
} from '@portunus/store';

import { MAX_SECRET_BYTES, hashSecret, secretsEqual } from '../identity/secrets.js';
import {
  RESERVED_USERS,
  SESSION_COOKIE,
  SESSION_IDLE_MS,
  type Identity,
  type OperatorContext,
} from './context.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Routes a user with a pending forced password change may still call. */
const ALLOWED_DURING_PASSWORD_CHANGE = new Set(['GET /v1/users/me', 'POST /v1/users/me/password']);

export function isMutating(method: string): boolean {
  return MUTATING.has(method);
}

/**
 * Contexts known to have an enabled superadmin. Once one exists it cannot disappear while the
 * server runs (the last one cannot be removed), so the gate's query runs only until then.
 */
const bootstrapped = new WeakSet<OperatorContext>();

function assertBootstrapped(ctx: OperatorContext): void {
  if (bootstrapped.has(ctx)) return;
  if (hasEnabledSuperadmin(ctx.db)) {
    bootstrapped.add(ctx);
    return;
  }
  throw new PortunusError(
    'bootstrap_required',
    'no superadmin exists yet: finish onboarding with the setup token printed at startup',
  );
}

export function authenticate(ctx: OperatorContext, request: FastifyRequest): Identity {
  assertBootstrapped(ctx);
  const identity = identify(ctx, request);
  if (identity.authMethod === 'cookie') {
    if (isMutating(request.method)) checkCsrf(ctx, request);
    if (
      identity.passwordChangeRequired &&
      !ALLOWED_DURING_PASSWORD_CHANGE.has(`${request.method} ${request.routeOptions.url ?? ''}`)
    ) {
      throw new PortunusError('password_change_required');
    }
  }
  return identity;
}

function identify(ctx: OperatorContext, request: FastifyRequest): Identity {
  const cookie = request.cookies[SESSION_COOKIE];
  if (cookie !== undefined) return fromSessionCookie(ctx, cookie);
  const header = request.headers.authorization;
  if (header === undefined) throw new PortunusError('unauthenticated');
  const match = /^Bearer ([^\s]+)$/i.exec(header.trim());
  const token = match?.[1];
  if (token === undefined || Buffer.byteLength(token) > MAX_SECRET_BYTES) {
    throw new PortunusError('unauthenticated', 'expected Authorization: Bearer <token>');
  }
  const hash = hashSecret(token);
  if (ctx.operatorTokenHash !== undefined && secretsEqual(hash, ctx.operatorTokenHash)) {
    return toIdentity(enabledUser(ctx, RESERVED_USERS.legacy), 'bearer');
  }
  const credential = findCredentialByHash(ctx.db, hash);
  if (credential?.status !== 'active') throw new PortunusError('credential_invalid');
  const user = enabledUser(ctx, credential.userId);
  // last_used_at is kept to the minute: most requests need no write at all.
  const now = ctx.now();
  if (credential.lastUsedAt === null || now - credential.lastUsedAt >= 60_000) {
    touchCredential(ctx.db, credential.credentialId, now);
  }
  return { ...toIdentity(user, 'bearer'), credentialId: credential.credentialId };
}

function fromSessionCookie(ctx: OperatorContext, secret: string): Identity {
  if (Buffer.byteLength(secret) > MAX_SECRET_BYTES) throw new PortunusError('credential_invalid');
  const sessionHash = hashSecret(secret);
  const session = findLiveWebSession(ctx.db, sessionHash, ctx.now(), SESSION_IDLE_MS);
  if (!session) {
    throw new PortunusError(
      'credential_invalid',
      'the session expired or was revoked; log in again',
    );
  }
  return { ...toIdentity(enabledUser(ctx, session.userId), 'cookie'), sessionHash };
}

function enabledUser(ctx: OperatorContext, userId: string): User {
  const user = getUser(ctx.db, userId);
  if (!user) throw new PortunusError('credential_invalid');
  if (user.disabled) throw new PortunusError('user_disabled');
  return user;
}

function toIdentity(user: User, authMethod: Identity['authMethod']): Identity {
  return {
    userId: user.userId,
    role: user.role,
    displayName: user.displayName,
    authMethod,
    passwordChangeRequired: user.passwordChangeRequired,
  };
}

/**
 * Cookie-authenticated writes must come from our own origin, carry the custom header a
 * cross-site form cannot set, and send JSON (reference §2.1 step 3).
 */
function checkCsrf(ctx: OperatorContext, request: FastifyRequest): void {
  const origin = request.headers.origin;
  if (origin === undefined || origin === '') throw new PortunusError('csrf_origin_required');
  const expected = ctx.config.operatorHttpPublicOrigin;
  const sameOrigin =
    expected !== undefined
      ? origin === expected
      : origin.replace(/^https?:\/\//, '') === (request.headers.host ?? '');
  if (!sameOrigin) throw new PortunusError('csrf_origin_mismatch');
  if (request.headers['x-portunus-csrf'] !== '1') throw new PortunusError('csrf_header_required');
  const hasBody =
    Number(request.headers['content-length'] ?? 0) > 0 ||
    request.headers['transfer-encoding'] !== undefined;
  const contentType = request.headers['content-type'] ?? '';
  if (hasBody && !/^application\/json\b/i.test(contentType)) {
    throw new PortunusError('csrf_content_type_required');
  }
}

/** Throws role_required unless the caller is a superadmin. */
export function requireSuperadmin(identity: Identity | undefined): Identity {
  if (identity?.role !== 'superadmin') throw new PortunusError('role_required');
  return identity;
}

/** The identity the auth layer attached; routes marked public have none. */
export function identityOf(request: FastifyRequest): Identity {
  if (!request.identity) throw new PortunusError('unauthenticated');
  return request.identity;
}
