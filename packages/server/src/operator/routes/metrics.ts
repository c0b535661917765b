/** `GET /v1/metrics` (superadmin): the same Prometheus text as the metrics listener. */
import type { FastifyInstance } from 'fastify';

import { requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';

export function registerMetricsRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get('/v1/metrics', async (request, reply) => {
    requireSuperadmin(request.identity);
    const text = await ctx.metrics.render();
    return reply.header('content-type', ctx.metrics.contentType).send(text);
  });
}
