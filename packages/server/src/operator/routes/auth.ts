/**
 * Public auth routes (reference §2.3): onboarding status, first-superadmin onboarding with the
 * setup token, password login (sets the session cookie) and logout. Everything else is behind
 * the auth layer.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Static } from 'typebox';

import {
  AuthStatusSchema,
  LoginRequestSchema,
  LoginResponseSchema,
  NoQuerySchema,
  OnboardingRequestSchema,
  OnboardingResponseSchema,
  orNoBody,
  Closed,
} from '@portunus/api';

import { PortunusError } from '@portunus/core';
import {
  clearSetupToken,
  getSetupToken,
  getUser,
  hasEnabledSuperadmin,
  immediate,
  insertUser,
  insertWebSession,
  revokeWebSession,
} from '@portunus/store';

import { checkPasswordPolicy, hashPassword, verifyPassword } from '../../identity/passwords.js';
import {
  MAX_SECRET_BYTES,
  generateSecret,
  hashSecret,
  secretsEqual,
} from '../../identity/secrets.js';
import { identityOf } from '../auth.js';
import { SESSION_ABSOLUTE_MS, SESSION_COOKIE, type OperatorContext } from '../context.js';
import { underThrottle } from '../throttle.js';
import { AUTH_FAILURES, NO_CONTENT, REQUEST_FAILURES, failures } from '../route-schemas.js';
import { checkDisplayName, checkNewUserId } from '../validate.js';

type OnboardingBody = Static<typeof OnboardingRequestSchema>;
type LoginBody = Static<typeof LoginRequestSchema>;

const statusSchema = {
  querystring: NoQuerySchema,
  response: { 200: AuthStatusSchema, ...failures(REQUEST_FAILURES) },
};

const onboardingSchema = {
  querystring: NoQuerySchema,
  body: OnboardingRequestSchema,
  response: {
    201: OnboardingResponseSchema,
    ...failures(REQUEST_FAILURES, [
      'already_bootstrapped',
      'invalid_user_id',
      'reserved_user_id',
      'invalid_display_name',
      'setup_token_required',
      'setup_token_invalid',
      'rate_limited',
      'password_too_short',
      'password_too_long',
      'password_mismatch',
    ]),
  },
};

const loginSchema = {
  querystring: NoQuerySchema,
  body: LoginRequestSchema,
  response: {
    200: LoginResponseSchema,
    ...failures(REQUEST_FAILURES, ['invalid_login', 'rate_limited']),
  },
};

const logoutSchema = {
  querystring: NoQuerySchema,
  body: orNoBody(Closed({})),
  response: { 204: NO_CONTENT, ...failures(AUTH_FAILURES) },
};

export function sessionCookie(ctx: OperatorContext, value: string, maxAgeSecs: number): string {
  const secure = ctx.config.operatorHttpPublicOrigin?.startsWith('https://') === true;
  return [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Lax',
    `Max-Age=${maxAgeSecs}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

export function registerAuthRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get('/v1/auth/status', { config: { isPublic: true }, schema: statusSchema }, () => ({
    onboarding_required: !hasEnabledSuperadmin(ctx.db),
  }));

  app.post<{ Body: OnboardingBody }>(
    '/v1/auth/onboarding',
    { config: { isPublic: true }, schema: onboardingSchema },
    async (request, reply) => {
      if (hasEnabledSuperadmin(ctx.db)) throw new PortunusError('already_bootstrapped');
      const body = request.body;
      const token = body.setup_token ?? '';
      const subject =
        token === '' ? '_onboarding_setup_token_missing' : '_onboarding_setup_token_present';
      const userId = checkNewUserId(body.user_id);
      request.auditResource = { kind: 'user', value: userId };
      const displayName = checkDisplayName(body.display_name);
      await underThrottle(
        ctx,
        { subject, remoteAddr: request.ip, action: 'onboarding' },
        () => {
          if (token === '') throw new PortunusError('setup_token_required');
          const stored = getSetupToken(ctx.db);
          const valid =
            stored !== undefined &&
            stored.expiresAt > ctx.now() &&
            Buffer.byteLength(token) <= MAX_SECRET_BYTES &&
            secretsEqual(hashSecret(token), stored.tokenHash);
          if (!valid) throw new PortunusError('setup_token_invalid');
          return Promise.resolve();
        },
        (error) => error.code === 'setup_token_required' || error.code === 'setup_token_invalid',
      );
      checkPasswordPolicy(body.password);
      if (body.password !== body.password_confirm) throw new PortunusError('password_mismatch');
      const passwordHash = await hashPassword(body.password);
      immediate(ctx.db, () => {
        // Checked again inside the transaction: two racing onboardings make one superadmin.
        if (hasEnabledSuperadmin(ctx.db)) throw new PortunusError('already_bootstrapped');
        insertUser(ctx.db, {
          userId,
          role: 'superadmin',
          displayName,
          passwordHash,
          now: ctx.now(),
        });
        clearSetupToken(ctx.db);
      });
      request.auditAction = {
        action: 'operator.onboarding',
        actor: userId,
        resourceKind: 'user',
        resourceValue: userId,
      };
      return reply
        .status(201)
        .send({ user_id: userId, display_name: displayName, role: 'superadmin' });
    },
  );

  app.post<{ Body: LoginBody }>(
    '/v1/auth/login',
    { config: { isPublic: true }, schema: loginSchema },
    async (request, reply) => {
      const { user_id: userId, password } = request.body;
      // A failed login names the user id it tried (never the password), so a guessing run shows.
      request.auditResource = { kind: 'user', value: userId };
      const known = getUser(ctx.db, userId);
      const subject = known ? userId : '_unknown';
      const user = await underThrottle(
        ctx,
        { subject, remoteAddr: request.ip, action: 'login' },
        async () => {
          // The same Argon2 work for unknown users, disabled users and users without a password.
          const ok = await verifyPassword(known?.passwordHash, password);
          if (!ok || !known || known.disabled) throw new PortunusError('invalid_login');
          return known;
        },
        (error) => error.code === 'invalid_login',
      );
      const secret = generateSecret();
      insertWebSession(ctx.db, {
        sessionHash: hashSecret(secret),
        userId: user.userId,
        now: ctx.now(),
        absoluteTtlMs: SESSION_ABSOLUTE_MS,
        remoteAddr: request.ip,
        ...(request.headers['user-agent'] ? { userAgent: request.headers['user-agent'] } : {}),
      });
      request.auditAction = {
        action: 'operator.login',
        actor: user.userId,
        resourceKind: 'user',
        resourceValue: user.userId,
      };
      void reply.header('set-cookie', sessionCookie(ctx, secret, SESSION_ABSOLUTE_MS / 1000));
      return { password_change_required: user.passwordChangeRequired };
    },
  );

  app.post('/v1/auth/logout', { schema: logoutSchema }, async (request, reply: FastifyReply) => {
    const identity = identityOf(request);
    request.auditResource = { kind: 'user', value: identity.userId };
    if (identity.sessionHash === undefined) {
      throw new PortunusError('unauthenticated', 'logout ends a web session; send its cookie');
    }
    revokeWebSession(ctx.db, identity.sessionHash, ctx.now());
    void reply.header('set-cookie', sessionCookie(ctx, '', 0));
    return reply.status(204).send();
  });
}
