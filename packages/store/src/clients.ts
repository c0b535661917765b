/**
 * The clients aggregate: edge hosts keyed by a stable ULID `client_id`, with a free-form display
 * name that may repeat (DESIGN.md §8.6), an optional operator-declared entry address, and the
 * BLAKE3 hex of the client's bearer token once enrolled. Name lookups that the CLI and grants need
 * fail loudly when a name is ambiguous. Also owns the name and address rules, revocation (which
 * keeps the token hash, so a revoked token is told apart from an unknown one), rename, delete
 * (revoked clients only) and the last-connection record. Depends on core only; enrollment codes
 * live in enrollments.ts.
 */
import net from 'node:net';

import type { Database } from 'better-sqlite3';

import { PortunusError, hasControlCharacter, isHostName } from '@portunus/core';

import { recordRevision, removalChanges, type RevisionAuthor } from './rule-revisions.js';
import { immediate, prepared } from './statements.js';

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

/** The longest client display name, in UTF-8 bytes (reference §6.6; the column's CHECK). */
export const MAX_CLIENT_NAME_BYTES = 255;
/** The longest client entry address (a DNS name's limit; the column's CHECK). */
export const MAX_CLIENT_ADDRESS_CHARS = 253;

/**
 * A client display name as the operator typed it (reference §6.6): not blank, no control
 * characters, at most 255 UTF-8 bytes; case, inner spaces, Unicode and duplicates are allowed.
 * Returned verbatim (never trimmed), or invalid_client_name.
 */
export function checkClientName(name: string): string {
  const problem =
    name.trim() === ''
      ? 'it is blank'
      : hasControlCharacter(name) // C0, DEL, C1, U+2028/2029, bidi controls: core/cli-text.ts
        ? 'it contains a control character'
        : Buffer.byteLength(name, 'utf8') > MAX_CLIENT_NAME_BYTES
          ? `it is longer than ${MAX_CLIENT_NAME_BYTES} bytes`
          : undefined;
  if (problem !== undefined) {
    throw new PortunusError(
      'invalid_client_name',
      `client name ${JSON.stringify(name)} is not valid: ${problem}`,
    );
  }
  return name;
}

/**
 * A client's public entry address (reference §6.6): a bare IPv4 or IPv6 address or an RFC-1123
 * host name, without a port, brackets or whitespace. Returns it, or invalid_client_address.
 */
export function checkClientAddress(address: string): string {
  const isBare =
    address.length > 0 &&
    address.length <= MAX_CLIENT_ADDRESS_CHARS &&
    (net.isIP(address) !== 0 || isHostName(address));
  if (!isBare) {
    throw new PortunusError(
      'invalid_client_address',
      `client address ${JSON.stringify(address)} is not a bare IP address or host name (no port)`,
    );
  }
  return address;
}

export function getClientOrThrow(db: Database, clientId: string): Client {
  const client = getClient(db, clientId);
  if (!client) {
    throw new PortunusError('client_not_found', `no client ${JSON.stringify(clientId)}`, {
      client_id: clientId,
    });
  }
  return client;
}

/**
 * The client holding a control-stream token, revoked or not: a revoked client keeps its token
 * hash so its token answers token_revoked rather than token_not_found.
 */
export function clientByTokenHash(db: Database, tokenHash: string): Client | undefined {
  const row = prepared(db, `${SELECT} WHERE token_hash = ?`).get(tokenHash) as
    ClientRow | undefined;
  return row ? fromRow(row) : undefined;
}

/**
 * Marks a client revoked (idempotent: an earlier revocation time is kept) and supersedes its
 * unredeemed enrollment codes, so a code issued before the revocation cannot bring it back. The
 * token hash stays. Ending the live session is the caller's part.
 */
export function revokeClient(db: Database, clientId: string, now: number): Client {
  return immediate(db, () => {
    getClientOrThrow(db, clientId);
    prepared(db, 'UPDATE clients SET revoked_at = coalesce(revoked_at, ?) WHERE client_id = ?').run(
      now,
      clientId,
    );
    supersedeEnrollments(db, clientId, now);
    return getClientOrThrow(db, clientId);
  });
}

/**
 * Revokes every not-yet-revoked client carrying `clientName` (the offline `revoke NAME`, reference
 * §1.2). Returns the clients it revoked now; none is not an error (idempotent).
 */
export function revokeClientsByName(db: Database, clientName: string, now: number): Client[] {
  return immediate(db, () =>
    findClientsByName(db, clientName)
      .filter((client) => client.revokedAt === null)
      .map((client) => revokeClient(db, client.clientId, now)),
  );
}

/** Renames a client; its id, token, rules, grants and live session are untouched. */
export function renameClient(db: Database, clientId: string, clientName: string): Client {
  const name = checkClientName(clientName);
  return immediate(db, () => {
    getClientOrThrow(db, clientId);
    prepared(db, 'UPDATE clients SET client_name = ? WHERE client_id = ?').run(name, clientId);
    return getClientOrThrow(db, clientId);
  });
}

/** Sets (or, with null, clears) the operator-declared entry address. */
export function setClientAddress(db: Database, clientId: string, address: string | null): Client {
  const checked = address === null ? null : checkClientAddress(address);
  return immediate(db, () => {
    getClientOrThrow(db, clientId);
    prepared(db, 'UPDATE clients SET client_address = ? WHERE client_id = ?').run(
      checked,
      clientId,
    );
    return getClientOrThrow(db, clientId);
  });
}

/**
 * Deletes a revoked client with everything keyed by it (rules, grants, quotas, samples cascade;
 * its enrollment rows go too). A client that is not revoked is refused with client_not_revoked.
 * Returns the client as it was and the ids of the rules that went with it.
 */
export function deleteClient(
  db: Database,
  clientId: string,
  author?: RevisionAuthor,
): { client: Client; removedRuleIds: number[] } {
  return immediate(db, () => {
    const client = getClientOrThrow(db, clientId);
    if (client.revokedAt === null) {
      throw new PortunusError(
        'client_not_revoked',
        `client ${clientId} is not revoked; revoke it before deleting it`,
        { client_id: clientId },
      );
    }
    const removedRuleIds = prepared(
      db,
      'SELECT rule_id FROM rules WHERE client_id = ? ORDER BY rule_id',
    )
      .pluck()
      .all(clientId) as number[];
    if (author) {
      recordRevision(
        db,
        author,
        'client_deleted',
        `delete client ${client.clientName} (${clientId}): rules ${removedRuleIds.join(', ')}`,
        removalChanges(db, removedRuleIds),
      );
    }
    prepared(db, 'DELETE FROM client_enrollments WHERE client_id = ?').run(clientId);
    prepared(db, 'DELETE FROM clients WHERE client_id = ?').run(clientId);
    return { client, removedRuleIds };
  });
}

/** Records an accepted control stream: when, and from which address. */
export function recordClientConnected(
  db: Database,
  clientId: string,
  remoteAddr: string,
  now: number,
): void {
  immediate(db, () => {
    prepared(
      db,
      'UPDATE clients SET last_connected_at = ?, last_remote_addr = ? WHERE client_id = ?',
    ).run(now, remoteAddr, clientId);
  });
}

/** Marks every unredeemed code of a client consumed (a newer code or a revocation wins). */
export function supersedeEnrollments(db: Database, clientId: string, now: number): number {
  return prepared(
    db,
    'UPDATE client_enrollments SET consumed_at = ? WHERE client_id = ? AND consumed_at IS NULL',
  ).run(now, clientId).changes;
}
