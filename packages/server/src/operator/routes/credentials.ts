/**
 * Per-user API credentials (DESIGN.md §8.4): any authenticated identity creates bearer tokens for
 * itself, lists them and revokes them; a superadmin does so for anyone. The token is shown once,
 * in the creation answer, and stored only as its BLAKE3 hex: it never reaches a log line, an
 * audit row or a later answer. `last_used_at` is kept by the auth layer (touchCredential).
 */
import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';

import {
  CreateCredentialRequestSchema,
  CreatedCredentialSchema,
  CredentialViewSchema,
  NoQuerySchema,
  UserIdQuerySchema,
  orNoBody,
} from '@portunus/api';

import { EVENTS, PortunusError, assertPrintableText } from '@portunus/core';
import {
  getCredential,
  insertCredential,
  listCredentials,
  revokeCredential,
} from '@portunus/store';

import { generateSecret, hashSecret, ulid } from '../../identity/secrets.js';
import { identityOf } from '../auth.js';
import type { Identity, OperatorContext } from '../context.js';
import { AUTH_FAILURES, failures, pathParams } from '../route-schemas.js';
import { credentialView } from '../views.js';

const CREDENTIAL_EVENTS = {
  created: EVENTS.credentialCreated,
  revoked: EVENTS.credentialRevoked,
} as const;

/** The column's CHECK (length(label) <= 128) counts characters. */
const MAX_LABEL_CHARS = 128;

type CreateCredentialBody = Static<typeof CreateCredentialRequestSchema>;

const createCredentialSchema = {
  querystring: NoQuerySchema,
  // No body at all is a credential for the caller with an empty label.
  body: orNoBody(CreateCredentialRequestSchema),
  response: {
    201: CreatedCredentialSchema,
    ...failures(AUTH_FAILURES, ['role_required', 'invalid_label', 'user_not_found']),
  },
};

const listCredentialsSchema = {
  querystring: UserIdQuerySchema,
  response: {
    200: Type.Array(CredentialViewSchema),
    ...failures(AUTH_FAILURES, ['role_required']),
  },
};

const credentialIdParams = {
  params: pathParams({ credentialId: 64 }),
  querystring: NoQuerySchema,
  response: {
    200: CredentialViewSchema,
    ...failures(AUTH_FAILURES, ['credential_not_found', 'not_owner']),
  },
};

/**
 * The user whose credentials a request acts on: the caller by default; another user only for a
 * superadmin.
 */
function subjectUser(identity: Identity, requested: string | undefined): string {
  if (requested === undefined || requested === identity.userId) return identity.userId;
  if (identity.role !== 'superadmin') {
    throw new PortunusError(
      'role_required',
      "only a superadmin may act on another user's credentials",
    );
  }
  return requested;
}

function checkLabel(label: string): string {
  assertPrintableText(label, 'label');
  // Code points, the unit of the column's CHECK (SQLite's length() of TEXT), not UTF-16 units.
  if (Array.from(label).length > MAX_LABEL_CHARS) {
    throw new PortunusError('invalid_label', `labels are at most ${MAX_LABEL_CHARS} characters`);
  }
  return label;
}

export function registerCredentialRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.post<{ Body: CreateCredentialBody | null | undefined }>(
    '/v1/credentials',
    { schema: createCredentialSchema },
    (request, reply) => {
      const identity = identityOf(request);
      const body = request.body ?? {};
      const userId = subjectUser(identity, body.user_id);
      const label = checkLabel(body.label ?? '');
      const token = generateSecret();
      const now = ctx.now();
      // insertCredential answers user_not_found for a user that does not exist.
      const credential = insertCredential(ctx.db, {
        credentialId: ulid(now),
        userId,
        hash: hashSecret(token),
        label,
        now,
      });
      ctx.logger.info(CREDENTIAL_EVENTS.created, {
        credential_id: credential.credentialId,
        user_id: credential.userId,
        created_by: identity.userId,
      });
      request.auditAction = {
        action: CREDENTIAL_EVENTS.created,
        resourceKind: 'credential',
        resourceValue: credential.credentialId,
        details: { user_id: credential.userId, label: credential.label },
      };
      // The only answer that ever carries the token: no cache may keep it.
      return reply
        .status(201)
        .header('cache-control', 'no-store')
        .send({ ...credentialView(credential), token });
    },
  );

  app.get<{ Querystring: { user_id?: string } }>(
    '/v1/credentials',
    { schema: listCredentialsSchema },
    (request) => {
      const identity = identityOf(request);
      const requested = request.query.user_id;
      const userId = identity.role === 'superadmin' ? requested : subjectUser(identity, requested);
      return listCredentials(ctx.db, userId).map(credentialView);
    },
  );

  app.delete<{ Params: { credentialId: string } }>(
    '/v1/credentials/:credentialId',
    { schema: credentialIdParams },
    (request) => {
      const identity = identityOf(request);
      const { credentialId } = request.params;
      const existing = getCredential(ctx.db, credentialId);
      if (!existing) {
        throw new PortunusError('credential_not_found', `no credential ${credentialId}`, {
          credential_id: credentialId,
        });
      }
      if (identity.role !== 'superadmin' && existing.userId !== identity.userId) {
        throw new PortunusError('not_owner', 'only its owner or a superadmin may revoke it');
      }
      const credential = revokeCredential(ctx.db, credentialId, ctx.now());
      const alreadyRevoked = existing.status === 'revoked';
      ctx.logger.info(CREDENTIAL_EVENTS.revoked, {
        credential_id: credential.credentialId,
        user_id: credential.userId,
        revoked_by: identity.userId,
        already_revoked: alreadyRevoked,
      });
      request.auditAction = {
        action: CREDENTIAL_EVENTS.revoked,
        resourceKind: 'credential',
        resourceValue: credential.credentialId,
        details: { user_id: credential.userId, already_revoked: alreadyRevoked },
      };
      return credentialView(credential);
    },
  );
}
