/**
 * Grant routes (reference §2.3, §6.2; superadmin only): create a grant — (user, one client or
 * every client `*`, listen-port range, protocol set, note) — list them, and revoke one, which
 * removes the owner's rules no remaining grant covers (DESIGN.md §8.5; the store does the cascade
 * in one transaction). Grants key clients by client_id (DESIGN.md §8.6): the request names a
 * client by id or by a display name exactly one client carries.
 */
import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';

import {
  CreateGrantRequestSchema,
  DeleteGrantResponseSchema,
  GrantViewSchema,
  NoQuerySchema,
  UserIdQuerySchema,
} from '@portunus/api';

import { EVENTS, PortunusError, assertPrintableText, isPortunusError } from '@portunus/core';
import {
  deleteGrant,
  getUserOrThrow,
  immediate,
  insertGrant,
  listGrants,
  provisionPendingClient,
  resolveClient,
  type Client,
} from '@portunus/store';

import { ulid } from '../../identity/secrets.js';
import { authorOf } from '../../services/rules.js';
import { requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { checkPortRange, checkProtocols } from '../validate.js';
import { ADMIN_FAILURES, failures, pathParams } from '../route-schemas.js';
import { grantView } from '../views.js';

const GRANT_EVENTS = {
  added: EVENTS.grantAdded,
  revoked: EVENTS.grantRevoked,
} as const;

/** The `client` value that grants every client. */
const EVERY_CLIENT = '*';

type CreateGrantBody = Static<typeof CreateGrantRequestSchema>;

const createGrantSchema = {
  querystring: NoQuerySchema,
  body: CreateGrantRequestSchema,
  response: {
    201: GrantViewSchema,
    ...failures(ADMIN_FAILURES, [
      'invalid_port_range',
      'empty_protocol_set',
      'invalid_protocol',
      'user_not_found',
      'invalid_client',
      'ambiguous_client_name',
    ]),
  },
};

const listGrantsSchema = {
  querystring: UserIdQuerySchema,
  response: { 200: Type.Array(GrantViewSchema), ...failures(ADMIN_FAILURES) },
};

const grantIdParams = {
  params: pathParams({ grantId: 64 }),
  querystring: NoQuerySchema,
  response: { 200: DeleteGrantResponseSchema, ...failures(ADMIN_FAILURES, ['grant_not_found']) },
};

/**
 * The client a grant names: `*` (null: every client), a client id, or a display name exactly one
 * client carries — including a client enrolled but not yet connected, which is provisioned here
 * so the grant can key it by id. An unknown client is a bad request body here (422
 * invalid_client), not a missing resource; a shared name stays ambiguous_client_name. Runs inside
 * the grant's transaction.
 */
function grantClient(ctx: OperatorContext, reference: string, now: number): Client | null {
  if (reference === EVERY_CLIENT) return null;
  if (reference.trim() === '') {
    throw new PortunusError('invalid_client', 'client must be a client name, a client id or *');
  }
  try {
    return resolveClient(ctx.db, reference);
  } catch (error) {
    if (isPortunusError(error) && error.code === 'client_not_found') {
      const pending = provisionPendingClient(ctx.db, reference, now);
      if (pending) return pending;
      throw new PortunusError(
        'invalid_client',
        `no client named or with id ${JSON.stringify(reference)}`,
        { client: reference },
        { cause: error },
      );
    }
    throw error;
  }
}

export function registerGrantRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.post<{ Body: CreateGrantBody }>(
    '/v1/grants',
    { schema: createGrantSchema },
    (request, reply) => {
      const identity = requireSuperadmin(request.identity);
      const body = request.body;
      checkPortRange(body.listen_port_start, body.listen_port_end);
      const protocols = checkProtocols(body.protocols ?? ['tcp']);
      const user = getUserOrThrow(ctx.db, body.user_id);
      const note = assertPrintableText(body.note ?? '', 'note');
      const now = ctx.now();
      // One transaction: a refused grant leaves no provisioned client behind.
      const grant = immediate(ctx.db, () => {
        const client = grantClient(ctx, body.client, now);
        return insertGrant(ctx.db, {
          grantId: ulid(now),
          userId: user.userId,
          clientId: client?.clientId ?? null,
          listenPortStart: body.listen_port_start,
          listenPortEnd: body.listen_port_end,
          protocols,
          note,
          now,
        });
      });
      ctx.logger.info(GRANT_EVENTS.added, {
        grant_id: grant.grantId,
        user_id: grant.userId,
        client_id: grant.clientId,
        listen_port_start: grant.listenPortStart,
        listen_port_end: grant.listenPortEnd,
        protocols: grant.protocols,
        added_by: identity.userId,
      });
      request.auditAction = {
        action: GRANT_EVENTS.added,
        resourceKind: 'grant',
        resourceValue: grant.grantId,
        details: {
          user_id: grant.userId,
          client_id: grant.clientId,
          listen_port_start: grant.listenPortStart,
          listen_port_end: grant.listenPortEnd,
          protocols: grant.protocols,
        },
      };
      return reply.status(201).send(grantView(grant));
    },
  );

  app.get<{ Querystring: { user_id?: string } }>(
    '/v1/grants',
    { schema: listGrantsSchema },
    (request) => {
      requireSuperadmin(request.identity);
      return listGrants(ctx.db, request.query.user_id).map(grantView);
    },
  );

  app.delete<{ Params: { grantId: string } }>(
    '/v1/grants/:grantId',
    { schema: grantIdParams },
    (request) => {
      const identity = requireSuperadmin(request.identity);
      const { grant, removedRuleIds } = deleteGrant(
        ctx.db,
        request.params.grantId,
        authorOf(ctx, identity),
      );
      // DESIGN.md §8.5: rules the remaining grants no longer cover stop on the live clients too.
      ctx.fleet.remove(removedRuleIds);
      ctx.logger.info(GRANT_EVENTS.revoked, {
        grant_id: grant.grantId,
        user_id: grant.userId,
        client_id: grant.clientId,
        removed_rules: removedRuleIds.length,
        revoked_by: identity.userId,
      });
      request.auditAction = {
        action: GRANT_EVENTS.revoked,
        resourceKind: 'grant',
        resourceValue: grant.grantId,
        details: {
          user_id: grant.userId,
          client_id: grant.clientId,
          removed_rule_ids: removedRuleIds,
        },
      };
      return { grant_id: grant.grantId, removed_rule_ids: removedRuleIds };
    },
  );
}
