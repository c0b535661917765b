/**
 * Rule-set revision routes, all superadmin-only (like the audit log, a revision spans every
 * owner's rules): `GET /v1/rule-revisions` pages newest first (`limit` 1..1000, `cursor`, as
 * `/v1/audit` does), `GET /v1/rule-revisions/{n}/diff` says what differs between revision n and
 * now, `POST /v1/rule-revisions/{n}/restore` makes the live rule set equal to revision n. The
 * work is in services/rule-revisions.ts; this module owns the HTTP shapes and audit rows.
 */
import type { FastifyInstance } from 'fastify';

import {
  NoQuerySchema,
  RestoreRequestSchema,
  RestoreResultSchema,
  RevisionDiffSchema,
  RevisionListQuerySchema,
  RuleRevisionListSchema,
  orNoBody,
  type RestoreResult,
  type RevisionDiff,
  type RuleRevisionList,
} from '@portunus/api';
import { EVENTS, PortunusError, formatRfc3339 } from '@portunus/core';
import { listRevisions } from '@portunus/store';

import { restoreRevision, revisionDiff } from '../../services/rule-revisions.js';
import { requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { ADMIN_FAILURES, RULE_WRITE_FAILURES, failures, pathParams } from '../route-schemas.js';
import { DEFAULT_ACK_TIMEOUT_SECS } from '../rule-validation.js';

function parseRevision(text: string): number {
  const revision = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(revision) || revision < 1) {
    throw new PortunusError('revision_not_found', `no rule-set revision ${JSON.stringify(text)}`);
  }
  return revision;
}

// No length on the revision: a malformed one is revision_not_found, as parseRevision answers.
const revisionParams = pathParams({ revision: undefined });

const listSchema = {
  querystring: RevisionListQuerySchema,
  response: { 200: RuleRevisionListSchema, ...failures(ADMIN_FAILURES, ['invalid_cursor']) },
};
const diffSchema = {
  params: revisionParams,
  querystring: NoQuerySchema,
  response: { 200: RevisionDiffSchema, ...failures(ADMIN_FAILURES, ['revision_not_found']) },
};
const restoreSchema = {
  params: revisionParams,
  querystring: NoQuerySchema,
  body: orNoBody(RestoreRequestSchema),
  response: {
    200: RestoreResultSchema,
    ...failures(ADMIN_FAILURES, RULE_WRITE_FAILURES, ['revision_not_found', 'user_not_found']),
  },
};

export function registerRuleRevisionRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get<{ Querystring: { limit?: string; cursor?: string } }>(
    '/v1/rule-revisions',
    { schema: listSchema },
    (request, reply): RuleRevisionList => {
      requireSuperadmin(request.identity);
      const { limit, cursor } = request.query;
      const parsed = limit === undefined ? undefined : /^\d{1,7}$/.test(limit) ? Number(limit) : 0;
      const page = listRevisions(ctx.db, {
        ...(parsed !== undefined ? { limit: parsed } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      void reply.header('cache-control', 'no-store');
      return {
        revisions: page.revisions.map((revision) => ({
          revision: revision.revision,
          at: formatRfc3339(revision.at),
          actor: revision.actor,
          action: revision.action,
          summary: revision.summary,
        })),
        ...(page.nextCursor !== undefined ? { next_cursor: page.nextCursor } : {}),
      };
    },
  );

  app.get<{ Params: { revision: string } }>(
    '/v1/rule-revisions/:revision/diff',
    { schema: diffSchema },
    (request): RevisionDiff => {
      requireSuperadmin(request.identity);
      return revisionDiff(ctx, parseRevision(request.params.revision));
    },
  );

  app.post<{ Params: { revision: string }; Body: { ack_timeout_secs?: number } | null }>(
    '/v1/rule-revisions/:revision/restore',
    { schema: restoreSchema },
    async (request): Promise<RestoreResult> => {
      const identity = requireSuperadmin(request.identity);
      const target = parseRevision(request.params.revision);
      request.auditResource = { kind: 'rule_revision', value: String(target) };
      const result = await restoreRevision(
        ctx,
        identity,
        target,
        request.body?.ack_timeout_secs ?? DEFAULT_ACK_TIMEOUT_SECS,
      );
      request.auditAction = {
        action: EVENTS.ruleRevisionRestored,
        resourceKind: 'rule_revision',
        resourceValue: String(target),
        details: {
          revision: result.revision,
          removed: result.removed,
          pushed: result.pushed.map((step) => step.rule_id),
          edited: result.edited.map((step) => step.rule_id),
          failed: result.failed.map((step) => ({ rule_id: step.rule_id, code: step.code })),
        },
      };
      return result;
    },
  );
}
