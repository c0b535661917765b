/**
 * The clients aggregate: edge hosts keyed by a stable ULID `client_id`, with a free-form display
 * name that may repeat (DESIGN.md §8.6), an optional operator-declared entry address, and the
 * BLAKE3 hex of the client's bearer token once enrolled. Name lookups that the CLI and grants need
 * fail loudly when a name is ambiguous. Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import { prepared } from './statements.js';

export interface Client {
  clientId: string;
  clientName: string;
  clientAddress: string | null;
  provisionedAt: number;
  revokedAt: number | null;
  lastConnectedAt: number | null;
  lastRemoteAddr: string | null;
  enrolled: boolean;
}

interface ClientRow {
  client_id: string;
  client_name: string;
  client_address: string | null;
  provisioned_at: number;
  revoked_at: number | null;
  last_connected_at: number | null;
  last_remote_addr: string | null;
  enrolled: number;
}

const SELECT = `SELECT client_id, client_name, client_address, provisioned_at, revoked_at,
  last_connected_at, last_remote_addr, token_hash IS NOT NULL AS enrolled FROM clients`;

function fromRow(row: ClientRow): Client {
  return {
    clientId: row.client_id,
    clientName: row.client_name,
    clientAddress: row.client_address,
    provisionedAt: row.provisioned_at,
    revokedAt: row.revoked_at,
    lastConnectedAt: row.last_connected_at,
    lastRemoteAddr: row.last_remote_addr,
    enrolled: row.enrolled === 1,
  };
}

export function insertClient(
  db: Database,
  client: {
    clientId: string;
    clientName: string;
    clientAddress?: string | null;
    tokenHash?: string | null;
    now: number;
  },
): Client {
  prepared(
    db,
    `INSERT INTO clients (client_id, client_name, client_address, token_hash, token_issued_at,
       provisioned_at) VALUES (?, ?, ?, ?, ?, ?)`,
  ).run(
    client.clientId,
    client.clientName,
    client.clientAddress ?? null,
    client.tokenHash ?? null,
    client.tokenHash ? client.now : null,
    client.now,
  );
  return getClient(db, client.clientId)!;
}

export function getClient(db: Database, clientId: string): Client | undefined {
  const row = prepared(db, `${SELECT} WHERE client_id = ?`).get(clientId) as ClientRow | undefined;
  return row ? fromRow(row) : undefined;
}

export function listClients(db: Database): Client[] {
  return (prepared(db, `${SELECT} ORDER BY client_name, client_id`).all() as ClientRow[]).map(
    fromRow,
  );
}

export function findClientsByName(db: Database, clientName: string): Client[] {
  return (
    prepared(db, `${SELECT} WHERE client_name = ? ORDER BY client_id`).all(
      clientName,
    ) as ClientRow[]
  ).map(fromRow);
}

/**
 * The one client an operator means by `reference`: a client id, or a display name that exactly
 * one client carries. Unknown → client_not_found; shared name → ambiguous_client_name.
 */
export function resolveClient(db: Database, reference: string): Client {
  const byId = getClient(db, reference);
  if (byId) return byId;
  const byName = findClientsByName(db, reference);
  const [only] = byName;
  if (byName.length === 1 && only) return only;
  if (byName.length > 1) {
    throw new PortunusError(
      'ambiguous_client_name',
      `${byName.length} clients are named ${JSON.stringify(reference)} (${byName
        .map((client) => client.clientId)
        .join(', ')}); use the client id`,
      { client: reference },
    );
  }
  throw new PortunusError('client_not_found', `no client ${JSON.stringify(reference)}`, {
    client: reference,
  });
}
