/**
 * Quota routes (reference §2.3): `PUT|PATCH|DELETE /v1/users/{u}/quotas/{client_id}`
 * (superadmin), `GET /v1/users/{u}/quotas` and `…/{client_id}/status` (the user themself or a
 * superadmin) and `GET /v1/clients/{id}/quotas` (superadmin). They only translate HTTP into the
 * shared use cases of services/quotas.ts, which own the checks, the gate and QuotaView, and name
 * the audit action of each change.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

import Type from 'typebox';

import {
  NoQuerySchema,
  QuotaPatchRequestSchema,
  QuotaPutRequestSchema,
  QuotaViewSchema,
} from '@portunus/api';
import { EVENTS } from '@portunus/core';

import {
  listClientQuotas,
  listUserQuotas,
  patchQuota,
  putQuota,
  quotaStatus,
  removeQuota,
  type QuotaDeps,
} from '../../services/quotas.js';
import { identityOf } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { AUTH_FAILURES, NO_CONTENT, failures, pathParams } from '../route-schemas.js';

interface QuotaParams {
  userId: string;
  clientId: string;
}

const params = pathParams({ userId: 64, clientId: 255 });
const READ_FAILURES = [
  ...AUTH_FAILURES,
  'not_owner',
  'user_not_found',
  'client_not_found',
  'ambiguous_client_name',
] as const;
const WRITE_FAILURES = [
  ...READ_FAILURES,
  'role_required',
  'invalid_quota_size',
  'invalid_quota_policy',
  'invalid_billing_anchor',
  'quota_target_not_found',
  'quota_unsupported_by_client',
] as const;

const putSchema = {
  params,
  querystring: NoQuerySchema,
  body: QuotaPutRequestSchema,
  response: { 200: QuotaViewSchema, ...failures(WRITE_FAILURES) },
};
const patchSchema = {
  params,
  querystring: NoQuerySchema,
  body: QuotaPatchRequestSchema,
  response: { 200: QuotaViewSchema, ...failures(WRITE_FAILURES, ['quota_not_found']) },
};
const deleteSchema = {
  params,
  querystring: NoQuerySchema,
  response: { 204: NO_CONTENT, ...failures(WRITE_FAILURES, ['quota_not_found']) },
};
const statusSchema = {
  params,
  querystring: NoQuerySchema,
  response: { 200: QuotaViewSchema, ...failures(READ_FAILURES, ['quota_not_found']) },
};
const userListSchema = {
  params: pathParams({ userId: 64 }),
  querystring: NoQuerySchema,
  response: { 200: Type.Array(QuotaViewSchema), ...failures(READ_FAILURES) },
};
const clientListSchema = {
  params: pathParams({ clientId: 255 }),
  querystring: NoQuerySchema,
  response: { 200: Type.Array(QuotaViewSchema), ...failures(READ_FAILURES, ['role_required']) },
};

/** Without a quota engine (contract tests of other routes) nothing is pushed. */
const NO_PUSH: QuotaDeps['engine'] = { push: () => false, pushRemoval: () => false };

export function registerQuotaRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  const deps: QuotaDeps = {
    db: ctx.db,
    engine: ctx.quotas ?? NO_PUSH,
    quotaGate: (clientId) => ctx.fleet.quotaGate(clientId),
    now: ctx.now,
  };
  const audit = (
    request: FastifyRequest,
    action: string,
    params: QuotaParams,
    details: Record<string, unknown>,
  ): void => {
    request.auditAction = {
      action,
      resourceKind: 'quota',
      resourceValue: `${params.userId}/${params.clientId}`,
      details,
    };
  };

  app.put<{ Params: QuotaParams }>(
    '/v1/users/:userId/quotas/:clientId',
    { schema: putSchema },
    (request) => {
      const identity = identityOf(request);
      const { userId, clientId } = request.params;
      const view = putQuota(deps, identity, userId, clientId, request.body);
      ctx.logger.info(EVENTS.quotaSet, {
        user_id: view.user_id,
        client_id: view.client_id,
        monthly_bytes: view.monthly_bytes,
        enforcement: view.enforcement,
        period: view.period,
        set_by: identity.userId,
      });
      audit(request, EVENTS.quotaSet, request.params, {
        client_id: view.client_id,
        monthly_bytes: view.monthly_bytes,
        enforcement: view.enforcement,
        period: view.period,
        current_period_bytes_used: view.current_period_bytes_used,
      });
      return view;
    },
  );

  app.patch<{ Params: QuotaParams }>(
    '/v1/users/:userId/quotas/:clientId',
    { schema: patchSchema },
    (request) => {
      const identity = identityOf(request);
      const { userId, clientId } = request.params;
      const view = patchQuota(deps, identity, userId, clientId, request.body);
      ctx.logger.info(EVENTS.quotaUpdated, {
        user_id: view.user_id,
        client_id: view.client_id,
        monthly_bytes: view.monthly_bytes,
        current_period_bytes_used: view.current_period_bytes_used,
        updated_by: identity.userId,
      });
      audit(request, EVENTS.quotaUpdated, request.params, {
        client_id: view.client_id,
        monthly_bytes: view.monthly_bytes,
        current_period_bytes_used: view.current_period_bytes_used,
      });
      return view;
    },
  );

  app.delete<{ Params: QuotaParams }>(
    '/v1/users/:userId/quotas/:clientId',
    { schema: deleteSchema },
    (request, reply) => {
      const identity = identityOf(request);
      const { userId, clientId } = request.params;
      const removed = removeQuota(deps, identity, userId, clientId);
      ctx.logger.info(EVENTS.quotaRemoved, {
        user_id: removed.userId,
        client_id: removed.clientId,
        removed_by: identity.userId,
      });
      audit(request, EVENTS.quotaRemoved, request.params, { client_id: removed.clientId });
      return reply.status(204).send();
    },
  );

  app.get<{ Params: { userId: string } }>(
    '/v1/users/:userId/quotas',
    { schema: userListSchema },
    (request) => listUserQuotas(ctx.db, identityOf(request), request.params.userId),
  );

  app.get<{ Params: QuotaParams }>(
    '/v1/users/:userId/quotas/:clientId/status',
    { schema: statusSchema },
    (request) =>
      quotaStatus(ctx.db, identityOf(request), request.params.userId, request.params.clientId),
  );

  app.get<{ Params: { clientId: string } }>(
    '/v1/clients/:clientId/quotas',
    { schema: clientListSchema },
    (request) => listClientQuotas(ctx.db, identityOf(request), request.params.clientId),
  );
}
