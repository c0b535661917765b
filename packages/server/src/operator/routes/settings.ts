/**
 * `GET/PUT /v1/settings/advertised-endpoint` (superadmin, reference §9.4): the control address
 * enrollment URIs tell clients to dial, resolved by the tiers of services/advertised-endpoint.ts
 * with this request's Host header. GET always answers 200 and says why nothing resolved in
 * `diagnostic`. An override must be a bare host:port the certificate covers.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

import {
  AdvertisedEndpointRequestSchema,
  AdvertisedEndpointViewSchema,
  NoQuerySchema,
  type AdvertisedEndpointView,
} from '@portunus/api';
import { EVENTS } from '@portunus/core';
import { getAdvertisedEndpointOverride, setAdvertisedEndpointOverride } from '@portunus/store';

import { checkOverride, resolveTiers } from '../../services/advertised-endpoint.js';
import { requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { ADMIN_FAILURES, failures } from '../route-schemas.js';

const getSchema = {
  querystring: NoQuerySchema,
  response: { 200: AdvertisedEndpointViewSchema, ...failures(ADMIN_FAILURES) },
};
const putSchema = {
  querystring: NoQuerySchema,
  body: AdvertisedEndpointRequestSchema,
  response: {
    200: AdvertisedEndpointViewSchema,
    ...failures(ADMIN_FAILURES, ['endpoint_invalid', 'endpoint_not_in_cert_san']),
  },
};

/** Resolves the advertised endpoint for a request (its Host header feeds the derived tier). */
export function resolveAdvertisedEndpoint(
  ctx: OperatorContext,
  request: FastifyRequest,
): AdvertisedEndpointView {
  const override = getAdvertisedEndpointOverride(ctx.db);
  return { override, ...resolveTiers(ctx.control, override, request.headers.host) };
}

export function registerSettingsRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get('/v1/settings/advertised-endpoint', { schema: getSchema }, (request) => {
    requireSuperadmin(request.identity);
    return resolveAdvertisedEndpoint(ctx, request);
  });

  app.put<{ Body: { advertised_endpoint: string | null } }>(
    '/v1/settings/advertised-endpoint',
    { schema: putSchema },
    (request) => {
      request.auditResource = { kind: 'setting', value: 'advertised_endpoint' };
      requireSuperadmin(request.identity);
      const value = request.body.advertised_endpoint;
      const next = value === null || value.trim() === '' ? null : value;
      if (next !== null) checkOverride(ctx.control, next);
      setAdvertisedEndpointOverride(ctx.db, next, ctx.now());
      request.auditAction = {
        action: EVENTS.settingsUpdated,
        resourceKind: 'setting',
        resourceValue: 'advertised_endpoint',
        details: { advertised_endpoint: next },
      };
      return resolveAdvertisedEndpoint(ctx, request);
    },
  );
}
