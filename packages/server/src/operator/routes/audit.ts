/**
 * `GET /v1/audit` (superadmin, reference §7.2): without since/until/cursor, the legacy
 * newest-first JSON array; with any of them, the envelope `{entries, next_cursor?, count}` for
 * cursor pagination. Both read the durable table; `Cache-Control: no-store`.
 */
import type { FastifyInstance } from 'fastify';

import Type, { type Static } from 'typebox';

import { AuditEntrySchema, AuditEnvelopeSchema, AuditQuerySchema } from '@portunus/api';
import { PortunusError, parseRfc3339 } from '@portunus/core';
import { auditEntryJson, auditEnvelopeJson, queryAudit, type AuditQuery } from '@portunus/store';

import { requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { ADMIN_FAILURES, failures } from '../route-schemas.js';

type AuditQueryString = Static<typeof AuditQuerySchema>;

const auditSchema = {
  querystring: AuditQuerySchema,
  response: {
    200: Type.Union([Type.Array(AuditEntrySchema), AuditEnvelopeSchema], {
      description: 'the array without since/until/cursor, the envelope with any of them',
    }),
    ...failures(ADMIN_FAILURES, [
      'invalid_limit',
      'invalid_outcome',
      'invalid_timestamp',
      'invalid_time_range',
      'invalid_cursor',
    ]),
  },
};

export function registerAuditRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get<{ Querystring: AuditQueryString }>(
    '/v1/audit',
    { schema: auditSchema },
    (request, reply) => {
      requireSuperadmin(request.identity);
      const raw = request.query;
      const query: AuditQuery = {};
      if (raw.limit !== undefined) {
        const limit = /^\d{1,7}$/.test(raw.limit) ? Number(raw.limit) : Number.NaN;
        if (!Number.isInteger(limit)) throw new PortunusError('invalid_limit');
        query.limit = limit;
      }
      if (raw.outcome !== undefined) {
        if (raw.outcome !== 'allow' && raw.outcome !== 'deny')
          throw new PortunusError('invalid_outcome');
        query.outcome = raw.outcome;
      }
      if (raw.since !== undefined) query.since = parseRfc3339(raw.since, 'since');
      if (raw.until !== undefined) query.until = parseRfc3339(raw.until, 'until');
      if (raw.cursor !== undefined) query.cursor = raw.cursor;
      const envelope =
        raw.since !== undefined || raw.until !== undefined || raw.cursor !== undefined;
      // Records still queued in the writer belong in the answer.
      ctx.audit.flush();
      const page = queryAudit(ctx.db, query);
      void reply.header('cache-control', 'no-store');
      return envelope ? auditEnvelopeJson(page) : page.entries.map(auditEntryJson);
    },
  );
}
