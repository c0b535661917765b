/** `GET /v1/metrics` (superadmin): the same Prometheus text as the metrics listener. */
import type { FastifyInstance } from 'fastify';
import { NoQuerySchema } from '@portunus/api';

import { requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { ADMIN_FAILURES, failures, textAnswer } from '../route-schemas.js';

const metricsSchema = {
  querystring: NoQuerySchema,
  response: {
    200: textAnswer('text/plain', 'Prometheus text exposition format'),
    ...failures(ADMIN_FAILURES),
  },
};

export function registerMetricsRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get('/v1/metrics', { schema: metricsSchema }, async (request, reply) => {
    requireSuperadmin(request.identity);
    const text = await ctx.metrics.render();
    return reply.header('content-type', ctx.metrics.contentType).send(text);
  });
}
