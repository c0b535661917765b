/**
 * The traffic-history routes (reference §2.3): `GET /v1/users/{id}/traffic[?client_id=]` (the
 * user themself or a superadmin), `GET /v1/clients/{id}/traffic[?user_id=]` and
 * `GET /v1/traffic/global` (superadmin), each with `from`, `to`, `bucket`. They only translate
 * HTTP into the shared use case in services/traffic.ts, which owns the rules and the shape.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

import {
  ClientTrafficQuerySchema,
  GlobalTrafficQuerySchema,
  TrafficViewSchema,
  UserTrafficQuerySchema,
  type TrafficView,
} from '@portunus/api';
import { PortunusError } from '@portunus/core';

import { readTraffic, type TrafficQueryInput, type TrafficTarget } from '../../services/traffic.js';
import { identityOf } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { AUTH_FAILURES, failures, pathParams } from '../route-schemas.js';

const TRAFFIC_FAILURES = [
  ...AUTH_FAILURES,
  'role_required',
  'not_owner',
  'user_not_found',
  'client_not_found',
  'invalid_traffic_range',
  'traffic_bucket_out_of_retention',
  'traffic_too_many_rows',
] as const;
const response = { 200: TrafficViewSchema, ...failures(TRAFFIC_FAILURES) };

/** A repeated or unknown parameter is refused, never silently narrowed to one value. */
function queryInput(raw: Record<string, unknown>, allowed: readonly string[]): TrafficQueryInput {
  const input: TrafficQueryInput = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!allowed.includes(name) || typeof value !== 'string') {
      throw new PortunusError('validation_failed', `unexpected query parameter ${name}`, {
        field: name,
      });
    }
    input[name as keyof TrafficQueryInput] = value;
  }
  return input;
}

export function registerTrafficRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  const answer = (
    request: FastifyRequest,
    target: TrafficTarget,
    allowed: readonly string[],
  ): TrafficView => {
    const identity = identityOf(request);
    const input = queryInput(request.query as Record<string, unknown>, allowed);
    return readTraffic(ctx.db, identity, target, input, ctx.now());
  };
  app.get<{ Params: { userId: string } }>(
    '/v1/users/:userId/traffic',
    {
      schema: {
        params: pathParams({ userId: undefined }),
        querystring: UserTrafficQuerySchema,
        response,
      },
    },
    (request) => {
      request.auditResource = { kind: 'user', value: request.params.userId };
      return answer(request, { kind: 'user', userId: request.params.userId }, [
        'from',
        'to',
        'bucket',
        'client_id',
      ]);
    },
  );
  app.get<{ Params: { clientId: string } }>(
    '/v1/clients/:clientId/traffic',
    {
      schema: {
        params: pathParams({ clientId: undefined }),
        querystring: ClientTrafficQuerySchema,
        response,
      },
    },
    (request) => {
      request.auditResource = { kind: 'client', value: request.params.clientId };
      return answer(request, { kind: 'client', clientId: request.params.clientId }, [
        'from',
        'to',
        'bucket',
        'user_id',
      ]);
    },
  );
  app.get(
    '/v1/traffic/global',
    { schema: { querystring: GlobalTrafficQuerySchema, response } },
    (request) => answer(request, { kind: 'global' }, ['from', 'to', 'bucket']),
  );
}
