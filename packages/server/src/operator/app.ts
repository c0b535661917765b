/**
 * The operator HTTP application (fastify): the factory that builds it from an OperatorContext, so
 * contract tests use `app.inject()` against a temp store and only e2e tests open sockets (STYLE.md
 * §10). It owns the cross-cutting parts — the auth hook in front of every non-public `/v1` route,
 * the single error body, the JSON 404 for unknown `/v1/*` paths, and the audit + metrics hook that
 * records every denial and awaits a durable row for every successful mutation before the response
 * leaves, the OpenAPI document and its reader (openapi.ts, generated from the routes' schemas),
 * and the web UI for every other GET (webui.ts). Routes live in routes/ and only add handlers
 * with their schemas.
 */
import cookie from '@fastify/cookie';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  type InjectOptions,
} from 'fastify';

import { PortunusError, errorBody, isPortunusError } from '@portunus/core';
import { translateStoreError } from '@portunus/store';

import { auditRecordFor, routePath } from './audit-record.js';
import { authenticate, isMutating } from './auth.js';
import type { OperatorContext } from './context.js';
import { registerOpenApiGenerator, registerOpenApiRoutes } from './openapi.js';
import './request-state.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerAuthRoutes } from './routes/auth.js';
import { registerClientRoutes } from './routes/clients.js';
import { registerCredentialRoutes } from './routes/credentials.js';
import { registerGrantRoutes } from './routes/grants.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerQuotaRoutes } from './routes/quotas.js';
import { registerRuleRevisionRoutes } from './routes/rule-revisions.js';
import { registerOwnerRateLimitRoutes } from './routes/owner-rate-limits.js';
import { registerRuleRoutes } from './routes/rules.js';
import { registerRuleStatsStreamRoute } from './routes/rule-stats-stream.js';
import { registerSettingsRoutes } from './routes/settings.js';
import { registerTrafficRoutes } from './routes/traffic.js';
import { registerUserRoutes } from './routes/users.js';
import { loadWebUi } from './webui.js';

export const OPERATOR_EVENTS = {
  allow: 'operator.allow',
  deny: 'operator.deny',
  requestFailed: 'operator.request_failed',
  auditDeferred: 'operator.audit_deferred',
} as const;

/**
 * Socket-level limits of the operator listener. The reference (docs/reference) has no server.toml
 * keys for these, so they are constants here; tests inject short ones. They exist so that slow or
 * numerous clients (slowloris headers, trickled bodies, idle keep-alives) are cut off and cannot
 * starve the API for everyone else.
 */
export interface OperatorHttpLimits {
  /** Largest accepted request body; larger is 413 payload_too_large. */
  bodyLimitBytes: number;
  /** Time a client may take to send the complete request headers. */
  headersTimeoutMs: number;
  /** Time a client may take to send the complete request (headers and body). */
  requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic at all for this long is destroyed. */
  idleSocketTimeoutMs: number;
  /** How often node checks headers/request timeouts; bounds how late a cut-off can be. */
  timeoutCheckIntervalMs: number;
  /** Open connections beyond this are dropped at accept (node `server.maxConnections`). */
  maxConnections: number;
}

export const DEFAULT_OPERATOR_HTTP_LIMITS: OperatorHttpLimits = {
  bodyLimitBytes: 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleSocketTimeoutMs: 30_000,
  timeoutCheckIntervalMs: 1_000,
  maxConnections: 1024,
};

/** One method + path the app serves; the hostile-input contract test walks all of them. */
export interface RegisteredRoute {
  /** As inject() spells it, so tests can replay every route. */
  method: NonNullable<InjectOptions['method']>;
  url: string;
  hasBodySchema: boolean;
  /** Which parts the route declares a schema for (the OpenAPI contract test needs all). */
  schemaParts: ('params' | 'querystring' | 'body' | 'response')[];
}

const ROUTES = new WeakMap<FastifyInstance, readonly RegisteredRoute[]>();

/** Every route `buildOperatorApp` registered, in registration order. */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return ROUTES.get(app) ?? [];
}

export async function buildOperatorApp(
  ctx: OperatorContext,
  overrides: Partial<OperatorHttpLimits> = {},
): Promise<FastifyInstance> {
  const limits = { ...DEFAULT_OPERATOR_HTTP_LIMITS, ...overrides };
  const app = Fastify({
    logger: false,
    // Behind nothing by default; the operator sets a public origin when proxying.
    trustProxy: false,
    bodyLimit: limits.bodyLimitBytes,
    connectionTimeout: limits.idleSocketTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Handed to http.createServer: only there can headersTimeout and the check interval be set.
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
    },
    return503OnClosing: true,
    // Wrong types and unknown fields are errors, not silently coerced or dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  app.server.maxConnections = limits.maxConnections;
  // Response schemas document every answer (openapi.ts) but do not shape it: fast-json-stringify
  // would drop a property a schema forgot and reorder keys (required ones first), silently
  // changing answers byte for byte. The contract test http-openapi.contract.test.ts validates
  // real answers against the documented schemas instead.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  const routes: RegisteredRoute[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      routes.push({
        method: method as RegisteredRoute['method'], // fastify registers only methods inject() knows
        url: route.url,
        hasBodySchema: route.schema?.body !== undefined,
        schemaParts: (['params', 'querystring', 'body', 'response'] as const).filter(
          (part) => route.schema?.[part] !== undefined,
        ),
      });
    }
  });
  // The API speaks JSON only: fastify's default text/plain parser would turn a text body into a
  // string that then fails validation as 400, where the contract is 415 for any other type.
  app.removeContentTypeParser('text/plain');
  await app.register(cookie);
  await registerOpenApiGenerator(app);

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

  const webUi = loadWebUi(ctx.webUiDir);
  app.setNotFoundHandler((request, reply) => {
    // Outside the API every GET belongs to the SPA (its router knows the page); unknown /v1/*
    // paths and other methods stay the JSON 404 below.
    const urlPath = request.url.split('?')[0] ?? '/';
    if ((request.method === 'GET' || request.method === 'HEAD') && !urlPath.startsWith('/v1/')) {
      return webUi.send(urlPath, reply);
    }
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
  registerOwnerRateLimitRoutes(app, ctx);
  registerRuleStatsStreamRoute(app, ctx);
  registerRuleRevisionRoutes(app, ctx);
  registerSettingsRoutes(app, ctx);
  registerAuditRoutes(app, ctx);
  registerMetricsRoutes(app, ctx);
  registerTrafficRoutes(app, ctx);
  registerQuotaRoutes(app, ctx);
  await registerOpenApiRoutes(app);
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
    return new PortunusError('validation_failed', validationMessage(error));
  }
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.statusCode === 413) {
    return new PortunusError('payload_too_large');
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
 * The message of a schema refusal (validation_failed) names the offending field as a path from
 * the request part — `body/foo: unknown field`, `body/port: must be integer`,
 * `body/user_id: missing required property`, `params/userId: must NOT have more than 64
 * characters` — so the caller can fix the request without reading the schema
 * (docs/operator-api.md).
 */
function validationMessage(error: FastifyError): string {
  const context = error.validationContext ?? 'request';
  const first = error.validation?.[0];
  if (!first) return `${context}: ${error.message}`;
  const at = `${context}${first.instancePath}`;
  const params = first.params;
  if (typeof params['additionalProperty'] === 'string') {
    return `${at}/${params['additionalProperty']}: unknown field`;
  }
  if (typeof params['missingProperty'] === 'string') {
    return `${at}/${params['missingProperty']}: missing required property`;
  }
  return `${at}: ${first.message ?? 'is invalid'}`;
}

/**
 * One metric per request, and the audit rows: every denial (queued, never awaited: a flood of
 * denials must not slow the server) and every successful mutation (awaited: the caller normally
 * learns of success only once the row is durable; when the store fails between the change and its
 * row, the success still stands and the row waits in the writer's queue, see below).
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
    return;
  }
  try {
    await ctx.audit.write(record);
  } catch (error) {
    // The change itself is already committed (and a rule may already run on its edge), so the
    // caller must hear that it succeeded: answering 507 would invite a retry into a 409. The row
    // stays in the writer's queue when the store refused the whole batch (full disk, I/O error)
    // and commits as soon as the store recovers; a row the store refused on its own is dropped
    // and counted. Either way the operator sees it in the log.
    const failure = translateStoreError(error) ?? error;
    ctx.logger.error(OPERATOR_EVENTS.auditDeferred, {
      actor: record.actor,
      method: record.method,
      path: record.path,
      code: failure instanceof PortunusError ? failure.code : 'internal_error',
      queued: ctx.audit.pending,
    });
  }
}
