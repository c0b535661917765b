/**
 * User routes (reference §2.3): the caller's own profile and password, and the superadmin's user
 * management — create, list, get, remove (cascading to credentials, grants and rules), and the
 * admin password reset that revokes the user's web sessions.
 */
import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';

import {
  ChangePasswordRequestSchema,
  CreateUserRequestSchema,
  CreateUserResponseSchema,
  DeleteUserResponseSchema,
  MeSchema,
  NoQuerySchema,
  ResetPasswordRequestSchema,
  ResetPasswordResponseSchema,
  UserViewSchema,
  orNoBody,
  type Me,
} from '@portunus/api';

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
import {
  ADMIN_FAILURES,
  AUTH_FAILURES,
  NO_CONTENT,
  failures,
  pathParams,
} from '../route-schemas.js';
import { userView } from '../views.js';

type CreateUserBody = Static<typeof CreateUserRequestSchema>;
type ChangePasswordBody = Static<typeof ChangePasswordRequestSchema>;
type ResetPasswordBody = Static<typeof ResetPasswordRequestSchema>;

const userIdParams = pathParams({ userId: 64 });
const PASSWORD_FAILURES = ['password_too_short', 'password_too_long'] as const;

export function registerUserRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get(
    '/v1/users/me',
    {
      schema: {
        querystring: NoQuerySchema,
        response: { 200: MeSchema, ...failures(AUTH_FAILURES) },
      },
    },
    (request): Me => {
      const identity = identityOf(request);
      return { user_id: identity.userId, role: identity.role, display_name: identity.displayName };
    },
  );

  app.post<{ Body: ChangePasswordBody }>(
    '/v1/users/me/password',
    {
      schema: {
        querystring: NoQuerySchema,
        body: ChangePasswordRequestSchema,
        response: {
          204: NO_CONTENT,
          ...failures(AUTH_FAILURES, PASSWORD_FAILURES, [
            'invalid_login',
            'rate_limited',
            'password_mismatch',
            'user_not_found',
          ]),
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
        querystring: NoQuerySchema,
        body: CreateUserRequestSchema,
        response: {
          201: CreateUserResponseSchema,
          ...failures(ADMIN_FAILURES, PASSWORD_FAILURES, [
            'invalid_user_id',
            'reserved_user_id',
            'invalid_display_name',
            'invalid_role',
            'initial_password_required',
            'user_already_exists',
          ]),
        },
      },
    },
    async (request, reply) => {
      requireSuperadmin(request.identity);
      const body = request.body;
      const userId = checkNewUserId(body.user_id);
      request.auditResource = { kind: 'user', value: userId };
      const displayName = checkDisplayName(body.display_name);
      // The schema leaves the value to this check (the body is untrusted whatever its type says).
      const role: string = body.role ?? 'user';
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

  app.get(
    '/v1/users',
    {
      schema: {
        querystring: NoQuerySchema,
        response: { 200: Type.Array(UserViewSchema), ...failures(ADMIN_FAILURES) },
      },
    },
    (request) => {
      requireSuperadmin(request.identity);
      return listUsers(ctx.db).map((user) => userView(user, user.grantCount));
    },
  );

  app.get<{ Params: { userId: string } }>(
    '/v1/users/:userId',
    {
      schema: {
        params: userIdParams,
        querystring: NoQuerySchema,
        response: { 200: UserViewSchema, ...failures(ADMIN_FAILURES, ['user_not_found']) },
      },
    },
    (request) => {
      requireSuperadmin(request.identity);
      const user = getUserOrThrow(ctx.db, request.params.userId);
      return userView(user, countGrants(ctx.db, user.userId));
    },
  );

  app.delete<{ Params: { userId: string } }>(
    '/v1/users/:userId',
    {
      schema: {
        params: userIdParams,
        querystring: NoQuerySchema,
        response: {
          200: DeleteUserResponseSchema,
          ...failures(ADMIN_FAILURES, ['user_not_found', 'cannot_remove_self', 'last_superadmin']),
        },
      },
    },
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

  app.post<{ Params: { userId: string }; Body: ResetPasswordBody | null }>(
    '/v1/users/:userId/password',
    {
      schema: {
        params: userIdParams,
        querystring: NoQuerySchema,
        body: orNoBody(ResetPasswordRequestSchema),
        response: {
          200: ResetPasswordResponseSchema,
          ...failures(ADMIN_FAILURES, PASSWORD_FAILURES, ['user_not_found', 'rate_limited']),
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
