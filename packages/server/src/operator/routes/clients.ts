/**
 * `GET /v1/clients` (reference §2.3): every client for a superadmin; for a user, only clients a
 * grant of theirs names (a `*` grant sees all). Connection state comes from the fleet.
 */
import type { FastifyInstance } from 'fastify';

import { formatRfc3339 } from '@portunus/core';
import { listClients, listGrants, type Client } from '@portunus/store';

import { identityOf } from '../auth.js';
import type { Fleet, OperatorContext } from '../context.js';

export function clientView(client: Client, fleet: Fleet): Record<string, unknown> {
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

export function registerClientRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get('/v1/clients', (request) => {
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
}
