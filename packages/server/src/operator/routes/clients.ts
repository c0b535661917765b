/**
 * Client routes (reference §2.3, §4.5, §6.6). `GET /v1/clients`: every client for a superadmin;
 * for a user, only clients a grant of theirs names (a `*` grant sees all); connection state comes
 * from the fleet. The superadmin-only rest: issue an enrollment code for a new client (a ULID
 * minted here; `address` optional, unlike the reference) or for an existing one, set its entry
 * address, rename it, revoke it (ending its live session) and delete it once revoked. The use
 * cases live in services/clients.ts, shared with the offline CLI; a handler passes its request's
 * Host header (the derived endpoint tier) and hands the audit action to the HTTP audit layer.
 * Client ids in paths are looked up as given, so a malformed one is simply not found.
 */
import type { FastifyInstance } from 'fastify';

import Type, { type Static } from 'typebox';

import {
  ClientAddressRequestSchema,
  ClientViewSchema,
  Closed,
  EnrollmentRequestSchema,
  IssuedEnrollmentSchema,
  NoQuerySchema,
  ReenrollmentRequestSchema,
  RenameClientRequestSchema,
  orNoBody,
  type ClientView,
} from '@portunus/api';
import { formatRfc3339 } from '@portunus/core';
import { listClients, listGrants, type Client } from '@portunus/store';

import {
  deleteRevokedClient,
  enrollClient,
  reenrollClient,
  renameClientById,
  revokeClientById,
  setClientEntryAddress,
} from '../../services/clients.js';
import { authorOf } from '../../services/rules.js';
import { identityOf, requireSuperadmin } from '../auth.js';
import type { Fleet, OperatorContext } from '../context.js';
import { auditTo } from '../request-state.js';
import {
  ADMIN_FAILURES,
  AUTH_FAILURES,
  NO_CONTENT,
  failures,
  pathParams,
} from '../route-schemas.js';

export function clientView(client: Client, fleet: Fleet): ClientView {
  const live = fleet.connection(client.clientId);
  return {
    client_id: client.clientId,
    client_name: client.clientName,
    provisioned_at: formatRfc3339(client.provisionedAt),
    revoked_at: client.revokedAt === null ? null : formatRfc3339(client.revokedAt),
    connected: live !== undefined,
    client_address: client.clientAddress,
    remote_addr: live?.remoteAddr ?? null,
    connected_at: live ? formatRfc3339(live.connectedAt) : null,
  };
}

type EnrollmentBody = Static<typeof EnrollmentRequestSchema>;

const clientParams = pathParams({ clientId: undefined });
const ENDPOINT_FAILURES = ['endpoint_invalid', 'endpoint_not_in_cert_san'] as const;

// Lengths are generous here: the catalogued checks (invalid_client_name, …) give the real answer.
const enrollmentSchema = {
  querystring: NoQuerySchema,
  body: EnrollmentRequestSchema,
  response: {
    201: IssuedEnrollmentSchema,
    ...failures(ADMIN_FAILURES, ENDPOINT_FAILURES, [
      'invalid_client_name',
      'invalid_client_address',
      'invalid_enrollment_ttl',
    ]),
  },
};

const reenrollmentSchema = {
  params: clientParams,
  querystring: NoQuerySchema,
  body: orNoBody(ReenrollmentRequestSchema),
  response: {
    201: IssuedEnrollmentSchema,
    ...failures(ADMIN_FAILURES, ENDPOINT_FAILURES, ['invalid_enrollment_ttl', 'client_not_found']),
  },
};

const addressSchema = {
  params: clientParams,
  querystring: NoQuerySchema,
  body: ClientAddressRequestSchema,
  response: {
    200: ClientViewSchema,
    ...failures(ADMIN_FAILURES, ['invalid_client_address', 'client_not_found']),
  },
};

const renameSchema = {
  params: clientParams,
  querystring: NoQuerySchema,
  body: RenameClientRequestSchema,
  response: {
    200: ClientViewSchema,
    ...failures(ADMIN_FAILURES, ['invalid_client_name', 'client_not_found']),
  },
};

const listSchema = {
  querystring: NoQuerySchema,
  response: { 200: Type.Array(ClientViewSchema), ...failures(AUTH_FAILURES) },
};

const revokeSchema = {
  params: clientParams,
  querystring: NoQuerySchema,
  body: orNoBody(Closed({})),
  response: { 204: NO_CONTENT, ...failures(ADMIN_FAILURES, ['client_not_found']) },
};

const deleteSchema = {
  params: clientParams,
  querystring: NoQuerySchema,
  response: {
    204: NO_CONTENT,
    ...failures(ADMIN_FAILURES, ['client_not_found', 'client_not_revoked']),
  },
};

type ClientParams = { Params: { clientId: string } };

export function registerClientRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get('/v1/clients', { schema: listSchema }, (request) => {
    const identity = identityOf(request);
    let clients = listClients(ctx.db);
    if (identity.role !== 'superadmin') {
      const grants = listGrants(ctx.db, identity.userId);
      const seesAll = grants.some((grant) => grant.clientId === null);
      const granted = new Set(grants.map((grant) => grant.clientId));
      if (!seesAll) clients = clients.filter((client) => granted.has(client.clientId));
    }
    return clients.map((client) => clientView(client, ctx.fleet));
  });

  app.post<{ Body: EnrollmentBody }>(
    '/v1/client-enrollments',
    { schema: enrollmentSchema },
    (request, reply) => {
      requireSuperadmin(request.identity);
      const answer = enrollClient(
        ctx,
        { name: request.body.name, address: request.body.address, ttlSecs: request.body.ttl_secs },
        { audit: auditTo(request), hostHeader: request.headers.host },
      );
      return reply.status(201).send(answer);
    },
  );

  app.post<ClientParams & { Body: { ttl_secs?: number } | null }>(
    '/v1/clients/:clientId/enrollment',
    { schema: reenrollmentSchema },
    (request, reply) => {
      requireSuperadmin(request.identity);
      const answer = reenrollClient(ctx, request.params.clientId, request.body?.ttl_secs, {
        audit: auditTo(request),
        hostHeader: request.headers.host,
      });
      return reply.status(201).send(answer);
    },
  );

  app.put<ClientParams & { Body: { address: string | null } }>(
    '/v1/clients/:clientId',
    { schema: addressSchema },
    (request) => {
      requireSuperadmin(request.identity);
      const client = setClientEntryAddress(
        ctx,
        request.params.clientId,
        request.body.address,
        auditTo(request),
      );
      return clientView(client, ctx.fleet);
    },
  );

  app.patch<ClientParams & { Body: { client_name: string } }>(
    '/v1/clients/:clientId/name',
    { schema: renameSchema },
    (request) => {
      requireSuperadmin(request.identity);
      const client = renameClientById(
        ctx,
        request.params.clientId,
        request.body.client_name,
        auditTo(request),
      );
      return clientView(client, ctx.fleet);
    },
  );

  app.post<ClientParams>(
    '/v1/clients/:clientId/revoke',
    { schema: revokeSchema },
    (request, reply) => {
      requireSuperadmin(request.identity);
      revokeClientById(ctx, request.params.clientId, auditTo(request));
      return reply.status(204).send();
    },
  );

  app.delete<ClientParams>('/v1/clients/:clientId', { schema: deleteSchema }, (request, reply) => {
    const identity = requireSuperadmin(request.identity);
    deleteRevokedClient(ctx, request.params.clientId, authorOf(ctx, identity), auditTo(request));
    return reply.status(204).send();
  });
}
