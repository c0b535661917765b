/**
 * Owner rate-limit routes (reference §2.3, superadmin only): `GET /v1/clients/{id}/owners` and
 * `GET|PUT|DELETE /v1/clients/{id}/owners/{owner}/rate-limit`. The use cases live in
 * services/owner-rate-limits.ts; this module owns the HTTP side: complete JSON schemas for params,
 * query, body and every response (the OpenAPI document is generated from them), status codes and
 * the audit rows. A client id that is unknown or malformed is simply not found.
 */
import type { FastifyInstance } from 'fastify';

import type { ClientOwnerView, OwnerRateLimitRequest, OwnerRateLimitView } from '@portunus/api';
import { EVENTS } from '@portunus/core';

import {
  clientOwners,
  getOwnerRateLimitView,
  removeOwnerRateLimit,
  setOwnerRateLimit,
} from '../../services/owner-rate-limits.js';
import { requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { rateLimitSchema } from './rules.js';

/** The one error body (DESIGN.md §3), for every 4xx and 5xx answer. */
export const errorResponseSchema = {
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

const errors = { '4xx': errorResponseSchema, '5xx': errorResponseSchema } as const;
const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;
const string = { type: 'string', maxLength: 255 } as const;

const clientParams = {
  type: 'object',
  required: ['clientId'],
  additionalProperties: false,
  properties: { clientId: string },
} as const;

const envelopeParams = {
  type: 'object',
  required: ['clientId', 'ownerId'],
  additionalProperties: false,
  properties: { clientId: string, ownerId: string },
} as const;

const capsView = {
  type: 'object',
  additionalProperties: false,
  properties: rateLimitSchema.properties,
} as const;

const envelopeView = {
  type: 'object',
  required: ['client_id', 'client_name', 'owner_id', 'rate_limit', 'updated_at_unix_ms'],
  additionalProperties: false,
  properties: {
    client_id: { type: 'string' },
    client_name: { type: 'string' },
    owner_id: { type: 'string' },
    rate_limit: capsView,
    updated_at_unix_ms: { type: 'integer' },
  },
} as const;

const ownersView = {
  type: 'array',
  items: {
    type: 'object',
    required: ['owner_id', 'has_rate_limit', 'rule_count'],
    additionalProperties: false,
    properties: {
      owner_id: { type: 'string' },
      has_rate_limit: { type: 'boolean' },
      rule_count: { type: 'integer' },
    },
  },
} as const;

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
        response: { 200: ownersView, ...errors },
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
        response: { 200: envelopeView, ...errors },
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
        body: rateLimitSchema,
        response: { 200: envelopeView, ...errors },
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
        response: { 204: { type: 'null' }, ...errors },
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
