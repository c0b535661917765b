/**
 * The operator HTTP application (fastify): the factory that builds it from an OperatorContext, so
 * contract tests use `app.inject()` against a temp store and only e2e tests open sockets (STYLE.md
 * §10). It owns the cross-cutting parts — the auth hook in front of every non-public `/v1` route,
 * the single error body, the JSON 404 for unknown `/v1/*` paths, and the audit + metrics hook that
 * records every denial and awaits a durable row for every successful mutation before the response
 * leaves. Routes live in routes/ and only add handlers.
 */
import cookie from '@fastify/cookie';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';

import { PortunusError, errorBody, isPortunusError } from '@portunus/core';
import { translateStoreError } from '@portunus/store';

import { auditRecordFor, routePath } from './audit-record.js';
import { authenticate, isMutating } from './auth.js';
import type { OperatorContext } from './context.js';
import './request-state.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerAuthRoutes } from './routes/auth.js';
import { registerClientRoutes } from './routes/clients.js';
import { registerCredentialRoutes } from './routes/credentials.js';
import { registerGrantRoutes } from './routes/grants.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerRuleRoutes } from './routes/rules.js';
import { registerSettingsRoutes } from './routes/settings.js';
import { registerUserRoutes } from './routes/users.js';

export const OPERATOR_EVENTS = {
  allow: 'operator.allow',
  deny: 'operator.deny',
  requestFailed: 'operator.request_failed',
} as const;

export async function buildOperatorApp(ctx: OperatorContext): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    // Behind nothing by default; the operator sets a public origin when proxying.
    trustProxy: false,
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // Wrong types and unknown fields are errors, not silently coerced or dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  await app.register(cookie);

  app.addHook('onRequest', (request, _reply, done) => {
    const isProtected =
      request.url.startsWith('/v1/') &&
      !request.is404 &&
      request.routeOptions.config.isPublic !== true;
    try {
      if (isProtected) request.identity = authenticate(ctx, request);
      done();
    } catch (error) {
      done(error as Error);
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (!request.url.startsWith('/v1/')) return payload;
    await recordOutcome(ctx, request, reply.statusCode);
    return payload;
  });

  app.setErrorHandler((error: FastifyError | PortunusError, request, reply) => {
    const failure = toPortunusError(error);
    request.errorCode = failure.code;
    ctx.storeFaults?.failed(failure);
    if (failure.httpStatus >= 500) {
      ctx.logger.error(OPERATOR_EVENTS.requestFailed, {
        method: request.method,
        path: routePath(request),
        code: failure.code,
        error,
      });
    }
    return reply.status(failure.httpStatus).send(errorBody(failure));
  });

  app.setNotFoundHandler((request, reply) => {
    const failure = new PortunusError(
      'not_found',
      `no route ${request.method} ${routePath(request)}`,
    );
    request.errorCode = failure.code;
    return reply.status(404).send(errorBody(failure));
  });

  registerAuthRoutes(app, ctx);
  registerUserRoutes(app, ctx);
  registerGrantRoutes(app, ctx);
  registerCredentialRoutes(app, ctx);
  registerClientRoutes(app, ctx);
  registerRuleRoutes(app, ctx);
  registerSettingsRoutes(app, ctx);
  registerAuditRoutes(app, ctx);
  registerMetricsRoutes(app, ctx);
  return app;
}

function toPortunusError(error: FastifyError | PortunusError): PortunusError {
  if (isPortunusError(error)) return error;
  const code = error.code;
  if (
    code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
    code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
    error instanceof SyntaxError
  ) {
    return new PortunusError(
      'invalid_body',
      `the request body is not valid JSON: ${error.message}`,
    );
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || error.statusCode === 415) {
    return new PortunusError('unsupported_media_type');
  }
  if (error.validation !== undefined) {
    return new PortunusError(
      'validation_failed',
      `${error.validationContext ?? 'request'}${error.message.replace(/^(body|querystring|params)/, '')}`,
    );
  }
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new PortunusError('validation_failed', 'the request body is larger than 1 MiB');
  }
  if (typeof error.statusCode === 'number' && error.statusCode < 500) {
    return new PortunusError('validation_failed', error.message);
  }
  // The database's own words (paths, SQL) stay in the log; the caller learns only the code.
  const fromStore = translateStoreError(error);
  if (fromStore) return fromStore;
  return new PortunusError('internal_error', error.message, {}, { cause: error });
}

/**
 * One metric per request, and the audit rows: every denial (queued, never awaited: a flood of
 * denials must not slow the server) and every successful mutation (awaited: the caller learns of
 * success only once the row is durable).
 */
async function recordOutcome(
  ctx: OperatorContext,
  request: FastifyRequest,
  status: number,
): Promise<void> {
  const denied = status >= 400;
  const reason = denied ? (request.errorCode ?? `http_${status}`) : 'ok';
  const isPublic = request.routeOptions.config.isPublic === true;
  if (!isPublic || request.auditAction || denied) {
    ctx.metrics.operatorRequests.inc({ outcome: denied ? 'deny' : 'allow', reason });
  }
  if (!denied && !isMutating(request.method) && !request.auditAction) return;
  const identity = request.identity;
  const record = auditRecordFor(request, {
    ts: ctx.now(),
    status,
    reason: denied ? reason : null,
  });
  const event = denied ? OPERATOR_EVENTS.deny : OPERATOR_EVENTS.allow;
  ctx.logger[denied ? 'warn' : 'info'](event, {
    actor: record.actor,
    role: record.role,
    method: record.method,
    path: record.path,
    outcome: record.outcome,
    ...(denied ? { reason } : {}),
    ...(identity ? { auth_method: identity.authMethod } : {}),
  });
  if (denied) {
    ctx.audit.offer(record);
  } else {
    await ctx.audit.write(record);
  }
}
