/**
 * Client routes (reference §2.3, §4.5, §6.6). `GET /v1/clients`: every client for a superadmin;
 * for a user, only clients a grant of theirs names (a `*` grant sees all); connection state comes
 * from the fleet. The superadmin-only rest: issue an enrollment code for a new client (a ULID
 * minted here; `address` optional, unlike the reference) or for an existing one, set its entry
 * address, rename it, revoke it (ending its live session) and delete it once revoked. A code is
 * returned once, inside the URI, and stored only as its hash; the advertised endpoint it carries
 * is resolved by the settings tiers with the request's Host header. Client ids in paths are
 * looked up as given, so a malformed one is simply not found. Every input is checked before
 * anything is written.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

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
  type IssuedEnrollment,
} from '@portunus/api';

import { EVENTS, formatRfc3339 } from '@portunus/core';
import { enrollCommand, formatEnrollUri } from '@portunus/proto';
import {
  ENROLLMENT_TTL_DEFAULT_SECS,
  checkClientAddress,
  checkClientName,
  checkEnrollmentTtl,
  createEnrollment,
  deleteClient,
  getAdvertisedEndpointOverride,
  getClientOrThrow,
  listClients,
  listGrants,
  renameClient,
  revokeClient,
  setClientAddress,
  type Client,
} from '@portunus/store';

import { generateSecret, hashSecret, ulid } from '../../identity/secrets.js';
import { authorOf } from '../../services/rules.js';
import { identityOf, requireSuperadmin } from '../auth.js';
import type { Fleet, OperatorContext } from '../context.js';
import {
  ADMIN_FAILURES,
  AUTH_FAILURES,
  NO_CONTENT,
  failures,
  pathParams,
} from '../route-schemas.js';
import { requireAdvertisedEndpoint } from './settings.js';

const CLIENT_EVENTS = {
  enrollmentCreated: EVENTS.clientEnrollmentCreated,
  reenrollmentCreated: EVENTS.clientReenrollmentCreated,
  revoked: EVENTS.clientRevoked,
  renamed: EVENTS.clientRenamed,
  addressUpdated: EVENTS.clientAddressUpdated,
  deleted: EVENTS.clientDeleted,
} as const;

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

/** What a new code answers with; the code itself exists only inside `uri` and `command`. */
type IssuedCode = IssuedEnrollment;

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

  /**
   * Issues a code: checks, then the advertised endpoint (a failure stores nothing), then one
   * transaction that supersedes the client's older codes and stores the new one.
   */
  const issue = (
    request: FastifyRequest,
    target: { clientId: string; clientName: string; clientAddress: string | null },
    ttlSecs: number,
    event: typeof CLIENT_EVENTS.enrollmentCreated | typeof CLIENT_EVENTS.reenrollmentCreated,
  ): IssuedCode => {
    const { endpoint, source } = requireAdvertisedEndpoint(
      ctx.control,
      getAdvertisedEndpointOverride(ctx.db),
      request.headers.host,
    );
    const code = generateSecret();
    const issued = createEnrollment(ctx.db, {
      ...target,
      advertisedEndpoint: endpoint,
      codeHash: hashSecret(code),
      now: ctx.now(),
      ttlSecs,
    });
    const uri = formatEnrollUri(endpoint, ctx.control.fingerprintSha256, code);
    const expiresAt = formatRfc3339(issued.expiresAt);
    ctx.logger.info(event, {
      client_id: issued.clientId,
      client_name: issued.clientName,
      advertised_endpoint: endpoint,
      endpoint_source: source,
      expires_at: expiresAt,
    });
    return {
      client_id: issued.clientId,
      client_name: issued.clientName,
      expires_at: expiresAt,
      command: enrollCommand(uri),
      uri,
    };
  };

  app.post<{ Body: EnrollmentBody }>(
    '/v1/client-enrollments',
    { schema: enrollmentSchema },
    (request, reply) => {
      requireSuperadmin(request.identity);
      const body = request.body;
      const clientName = checkClientName(body.name);
      const address = body.address ?? null;
      const clientAddress = address === null ? null : checkClientAddress(address);
      const ttlSecs = checkEnrollmentTtl(body.ttl_secs ?? ENROLLMENT_TTL_DEFAULT_SECS);
      const answer = issue(
        request,
        { clientId: ulid(ctx.now()), clientName, clientAddress },
        ttlSecs,
        CLIENT_EVENTS.enrollmentCreated,
      );
      request.auditAction = {
        action: CLIENT_EVENTS.enrollmentCreated,
        resourceKind: 'client',
        resourceValue: answer.client_id,
        details: {
          client_name: answer.client_name,
          client_address: clientAddress,
          ttl_secs: ttlSecs,
          expires_at: answer.expires_at,
        },
      };
      return reply.status(201).send(answer);
    },
  );

  app.post<ClientParams & { Body: { ttl_secs?: number } | null }>(
    '/v1/clients/:clientId/enrollment',
    { schema: reenrollmentSchema },
    (request, reply) => {
      requireSuperadmin(request.identity);
      const ttlSecs = checkEnrollmentTtl(request.body?.ttl_secs ?? ENROLLMENT_TTL_DEFAULT_SECS);
      const client = getClientOrThrow(ctx.db, request.params.clientId);
      // The token rotates only when the code is redeemed; the live session keeps running.
      const answer = issue(
        request,
        { clientId: client.clientId, clientName: client.clientName, clientAddress: null },
        ttlSecs,
        CLIENT_EVENTS.reenrollmentCreated,
      );
      request.auditAction = {
        action: CLIENT_EVENTS.reenrollmentCreated,
        resourceKind: 'client',
        resourceValue: client.clientId,
        details: {
          client_name: client.clientName,
          ttl_secs: ttlSecs,
          expires_at: answer.expires_at,
        },
      };
      return reply.status(201).send(answer);
    },
  );

  app.put<ClientParams & { Body: { address: string | null } }>(
    '/v1/clients/:clientId',
    { schema: addressSchema },
    (request) => {
      requireSuperadmin(request.identity);
      const address = request.body.address === '' ? null : request.body.address;
      const client = setClientAddress(ctx.db, request.params.clientId, address);
      ctx.logger.info(CLIENT_EVENTS.addressUpdated, {
        client_id: client.clientId,
        client_address: client.clientAddress,
      });
      request.auditAction = {
        action: CLIENT_EVENTS.addressUpdated,
        resourceKind: 'client',
        resourceValue: client.clientId,
        details: { client_address: client.clientAddress },
      };
      return clientView(client, ctx.fleet);
    },
  );

  app.patch<ClientParams & { Body: { client_name: string } }>(
    '/v1/clients/:clientId/name',
    { schema: renameSchema },
    (request) => {
      requireSuperadmin(request.identity);
      const before = getClientOrThrow(ctx.db, request.params.clientId);
      const client = renameClient(ctx.db, before.clientId, request.body.client_name);
      ctx.logger.info(CLIENT_EVENTS.renamed, {
        client_id: client.clientId,
        old_name: before.clientName,
        new_name: client.clientName,
      });
      request.auditAction = {
        action: CLIENT_EVENTS.renamed,
        resourceKind: 'client',
        resourceValue: client.clientId,
        details: { old_name: before.clientName, new_name: client.clientName },
      };
      return clientView(client, ctx.fleet);
    },
  );

  app.post<ClientParams>(
    '/v1/clients/:clientId/revoke',
    { schema: revokeSchema },
    (request, reply) => {
      requireSuperadmin(request.identity);
      const client = revokeClient(ctx.db, request.params.clientId, ctx.now());
      ctx.fleet.disconnect(client.clientId, 'revoked');
      ctx.logger.info(CLIENT_EVENTS.revoked, {
        client_id: client.clientId,
        client_name: client.clientName,
      });
      request.auditAction = {
        action: CLIENT_EVENTS.revoked,
        resourceKind: 'client',
        resourceValue: client.clientId,
        details: {
          client_name: client.clientName,
          revoked_at: client.revokedAt === null ? null : formatRfc3339(client.revokedAt),
        },
      };
      return reply.status(204).send();
    },
  );

  app.delete<ClientParams>('/v1/clients/:clientId', { schema: deleteSchema }, (request, reply) => {
    const identity = requireSuperadmin(request.identity);
    const { client, removedRuleIds } = deleteClient(
      ctx.db,
      request.params.clientId,
      authorOf(ctx, identity),
    );
    ctx.logger.info(CLIENT_EVENTS.deleted, {
      client_id: client.clientId,
      client_name: client.clientName,
      removed_rules: removedRuleIds.length,
    });
    request.auditAction = {
      action: CLIENT_EVENTS.deleted,
      resourceKind: 'client',
      resourceValue: client.clientId,
      details: { client_name: client.clientName, removed_rule_ids: removedRuleIds },
    };
    return reply.status(204).send();
  });
}
