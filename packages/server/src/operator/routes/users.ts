/**
 * User routes (reference §2.3): the caller's own profile and password, and the superadmin's user
 * management — create, list, get, remove (cascading to credentials, grants and rules), and the
 * admin password reset that revokes the user's web sessions.
 */
import type { FastifyInstance } from 'fastify';

import { EVENTS, PortunusError } from '@portunus/core';
import {
  countGrants,
  deleteUser,
  getUserOrThrow,
  insertUser,
  listUsers,
  setPassword,
  type Role,
} from '@portunus/store';

import { checkPasswordPolicy, hashPassword, verifyPassword } from '../../identity/passwords.js';
import { resetPassword } from '../../services/passwords.js';
import { authorOf } from '../../services/rules.js';
import { identityOf, requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { underThrottle } from '../throttle.js';
import { checkDisplayName, checkNewUserId } from '../validate.js';
import { userView } from '../views.js';

interface CreateUserBody {
  user_id: string;
  display_name: string;
  role?: string;
  initial_password?: string;
  password_change_required?: boolean;
}

interface ChangePasswordBody {
  current_password: string;
  new_password: string;
  new_password_confirm: string;
}

interface ResetPasswordBody {
  new_password?: string;
  temporary_password?: boolean;
}

const userIdParams = {
  type: 'object',
  required: ['userId'],
  properties: { userId: { type: 'string', maxLength: 64 } },
} as const;

export function registerUserRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get('/v1/users/me', (request) => {
    const identity = identityOf(request);
    return { user_id: identity.userId, role: identity.role, display_name: identity.displayName };
  });

  app.post<{ Body: ChangePasswordBody }>(
    '/v1/users/me/password',
    {
      schema: {
        body: {
          type: 'object',
          required: ['current_password', 'new_password', 'new_password_confirm'],
          additionalProperties: false,
          properties: {
            current_password: { type: 'string' },
            new_password: { type: 'string' },
            new_password_confirm: { type: 'string' },
          },
        },
      },
    },
    async (request, reply) => {
      const identity = identityOf(request);
      request.auditResource = { kind: 'user', value: identity.userId };
      const body = request.body;
      const user = getUserOrThrow(ctx.db, identity.userId);
      await underThrottle(
        ctx,
        // Its own subject: a user's wrong guesses must not lock the admin reset of that user.
        { subject: `${identity.userId}/self`, remoteAddr: request.ip, action: 'password_reset' },
        async () => {
          if (!(await verifyPassword(user.passwordHash, body.current_password))) {
            throw new PortunusError('invalid_login', 'the current password is wrong');
          }
        },
        (error) => error.code === 'invalid_login',
      );
      checkPasswordPolicy(body.new_password);
      if (body.new_password !== body.new_password_confirm)
        throw new PortunusError('password_mismatch');
      setPassword(ctx.db, identity.userId, await hashPassword(body.new_password), false, ctx.now());
      request.auditAction = {
        action: 'operator.password_change',
        resourceKind: 'user',
        resourceValue: identity.userId,
      };
      return reply.status(204).send();
    },
  );

  app.post<{ Body: CreateUserBody }>(
    '/v1/users',
    {
      schema: {
        body: {
          type: 'object',
          required: ['user_id', 'display_name'],
          additionalProperties: false,
          properties: {
            user_id: { type: 'string' },
            display_name: { type: 'string' },
            role: { type: 'string' },
            initial_password: { type: 'string' },
            password_change_required: { type: 'boolean' },
          },
        },
      },
    },
    async (request, reply) => {
      requireSuperadmin(request.identity);
      const body = request.body;
      const userId = checkNewUserId(body.user_id);
      request.auditResource = { kind: 'user', value: userId };
      const displayName = checkDisplayName(body.display_name);
      const role = body.role ?? 'user';
      if (role !== 'user' && role !== 'superadmin') throw new PortunusError('invalid_role');
      if (body.initial_password === undefined || body.initial_password === '') {
        throw new PortunusError('initial_password_required');
      }
      checkPasswordPolicy(body.initial_password);
      const passwordHash = await hashPassword(body.initial_password);
      const user = insertUser(ctx.db, {
        userId,
        role: role satisfies Role,
        displayName,
        passwordHash,
        passwordChangeRequired: body.password_change_required ?? false,
        now: ctx.now(),
      });
      ctx.logger.info(EVENTS.userAdded, { user_id: userId, role });
      request.auditAction = {
        action: EVENTS.userAdded,
        resourceKind: 'user',
        resourceValue: userId,
        details: { role, password_change_required: body.password_change_required ?? false },
      };
      return reply
        .status(201)
        .send({ user_id: user.userId, display_name: user.displayName, role: user.role });
    },
  );

  app.get('/v1/users', (request) => {
    requireSuperadmin(request.identity);
    return listUsers(ctx.db).map((user) => userView(user, user.grantCount));
  });

  app.get<{ Params: { userId: string } }>(
    '/v1/users/:userId',
    { schema: { params: userIdParams } },
    (request) => {
      requireSuperadmin(request.identity);
      const user = getUserOrThrow(ctx.db, request.params.userId);
      return userView(user, countGrants(ctx.db, user.userId));
    },
  );

  app.delete<{ Params: { userId: string } }>(
    '/v1/users/:userId',
    { schema: { params: userIdParams } },
    (request) => {
      const identity = requireSuperadmin(request.identity);
      const { userId } = request.params;
      if (userId === identity.userId) {
        throw new PortunusError('cannot_remove_self', 'you cannot remove yourself');
      }
      const removal = deleteUser(ctx.db, userId, authorOf(ctx, identity));
      // DESIGN.md §8.5: the user's rules also stop on the live clients.
      ctx.fleet.remove(removal.removedRuleIds);
      ctx.logger.info(EVENTS.userRemoved, {
        user_id: userId,
        removed_rules: removal.removedRuleIds.length,
      });
      request.auditAction = {
        action: EVENTS.userRemoved,
        resourceKind: 'user',
        resourceValue: userId,
        details: {
          removed_credential_ids: removal.removedCredentialIds,
          revoked_grant_ids: removal.revokedGrantIds,
          removed_rule_ids: removal.removedRuleIds,
        },
      };
      return {
        user_id: userId,
        removed_credential_ids: removal.removedCredentialIds,
        revoked_grant_ids: removal.revokedGrantIds,
        removed_rule_ids: removal.removedRuleIds,
      };
    },
  );

  app.post<{ Params: { userId: string }; Body: ResetPasswordBody | undefined }>(
    '/v1/users/:userId/password',
    {
      schema: {
        params: userIdParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            new_password: { type: 'string' },
            temporary_password: { type: 'boolean' },
          },
        },
      },
    },
    async (request) => {
      const identity = requireSuperadmin(request.identity);
      const { userId } = request.params;
      const body = request.body ?? {};
      const result = await underThrottle(
        ctx,
        { subject: userId, remoteAddr: request.ip, action: 'password_reset' },
        () =>
          resetPassword(
            ctx,
            userId,
            {
              ...(body.new_password !== undefined ? { newPassword: body.new_password } : {}),
              ...(body.temporary_password !== undefined
                ? { temporary: body.temporary_password }
                : {}),
            },
            (action) => {
              request.auditAction = {
                ...action,
                details: { ...action.details, source: 'http', reset_by: identity.userId },
              };
            },
          ),
        (error) => error.code === 'user_not_found',
      );
      return {
        user_id: userId,
        sessions_revoked: result.sessionsRevoked,
        ...(result.generated !== undefined ? { temporary_password: result.generated } : {}),
      };
    },
  );
}
