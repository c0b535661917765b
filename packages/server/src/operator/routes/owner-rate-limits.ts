/**
 * Owner rate-limit routes (reference §2.3, superadmin only): `GET /v1/clients/{id}/owners` and
 * `GET|PUT|DELETE /v1/clients/{id}/owners/{owner}/rate-limit`. The use cases live in
 * services/owner-rate-limits.ts; this module owns the HTTP side: complete JSON schemas for params,
 * query, body and every response (the OpenAPI document is generated from them), status codes and
 * the audit rows. A client id that is unknown or malformed is simply not found.
 */
import type { FastifyInstance } from 'fastify';

import Type from 'typebox';

import {
  ClientOwnerViewSchema,
  NoQuerySchema,
  OwnerRateLimitViewSchema,
  RateLimitSchema,
  type ClientOwnerView,
  type OwnerRateLimitRequest,
  type OwnerRateLimitView,
} from '@portunus/api';
import { EVENTS } from '@portunus/core';

import {
  clientOwners,
  getOwnerRateLimitView,
  removeOwnerRateLimit,
  setOwnerRateLimit,
} from '../../services/owner-rate-limits.js';
import { requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { ADMIN_FAILURES, NO_CONTENT, failures, pathParams } from '../route-schemas.js';

const noQuery = NoQuerySchema;
const clientParams = pathParams({ clientId: 255 });
const envelopeParams = pathParams({ clientId: 255, ownerId: 255 });
const envelopeView = OwnerRateLimitViewSchema;
const ownersView = Type.Array(ClientOwnerViewSchema);
const readErrors = failures(ADMIN_FAILURES, ['client_not_found', 'owner_rate_limit_not_found']);
const writeErrors = failures(ADMIN_FAILURES, [
  'client_not_found',
  'user_not_found',
  'validation.rate_limit_no_caps_provided',
  'validation.rate_limit_cap_zero',
  'validation.rate_limit_cap_out_of_range',
  'validation.rate_limit_burst_without_rate',
  'validation.rate_limit_burst_range',
  'validation.rate_limit_burst_unsupported',
  'rate_limit_unsupported_by_client',
]);

type ClientParams = { Params: { clientId: string } };
type EnvelopeParams = { Params: { clientId: string; ownerId: string } };

const ENVELOPE_PATH = '/v1/clients/:clientId/owners/:ownerId/rate-limit';

export function registerOwnerRateLimitRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get<ClientParams>(
    '/v1/clients/:clientId/owners',
    {
      schema: {
        params: clientParams,
        querystring: noQuery,
        response: { 200: ownersView, ...failures(ADMIN_FAILURES, ['client_not_found']) },
      },
    },
    (request): ClientOwnerView[] => {
      requireSuperadmin(request.identity);
      return clientOwners(ctx, request.params.clientId);
    },
  );

  app.get<EnvelopeParams>(
    ENVELOPE_PATH,
    {
      schema: {
        params: envelopeParams,
        querystring: noQuery,
        response: { 200: envelopeView, ...readErrors },
      },
    },
    (request): OwnerRateLimitView => {
      requireSuperadmin(request.identity);
      return getOwnerRateLimitView(ctx, request.params.clientId, request.params.ownerId);
    },
  );

  app.put<EnvelopeParams & { Body: OwnerRateLimitRequest }>(
    ENVELOPE_PATH,
    {
      schema: {
        params: envelopeParams,
        querystring: noQuery,
        body: RateLimitSchema,
        response: { 200: envelopeView, ...writeErrors },
      },
    },
    (request): OwnerRateLimitView => {
      requireSuperadmin(request.identity);
      const { clientId, ownerId } = request.params;
      request.auditResource = { kind: 'owner_rate_limit', value: `${clientId}/${ownerId}` };
      const view = setOwnerRateLimit(ctx, clientId, ownerId, request.body);
      request.auditAction = {
        action: EVENTS.ownerRateLimitSet,
        resourceKind: 'owner_rate_limit',
        resourceValue: `${view.client_id}/${view.owner_id}`,
        details: {
          client_id: view.client_id,
          owner_id: view.owner_id,
          rate_limit: view.rate_limit,
        },
      };
      return view;
    },
  );

  app.delete<EnvelopeParams>(
    ENVELOPE_PATH,
    {
      schema: {
        params: envelopeParams,
        querystring: noQuery,
        response: { 204: NO_CONTENT, ...failures(ADMIN_FAILURES, ['client_not_found']) },
      },
    },
    (request, reply) => {
      requireSuperadmin(request.identity);
      const { clientId, ownerId } = request.params;
      request.auditResource = { kind: 'owner_rate_limit', value: `${clientId}/${ownerId}` };
      const result = removeOwnerRateLimit(ctx, clientId, ownerId);
      request.auditAction = {
        action: EVENTS.ownerRateLimitRemove,
        resourceKind: 'owner_rate_limit',
        resourceValue: `${result.clientId}/${ownerId}`,
        details: { client_id: result.clientId, owner_id: ownerId, removed: result.removed },
      };
      return reply.status(204).send();
    },
  );
}
