/**
 * The grants aggregate: what a user may push — (client or every client, listen-port range,
 * protocol set) — and the push check over it (reference §6.2: some grant names the client →
 * some of those allows the protocol → one single grant covers the whole listen range). Revoking a
 * grant removes the owner's rules that no remaining grant covers, in the same transaction.
 * Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import { recordRevision, removalChanges, type RevisionAuthor } from './rule-revisions.js';
import { immediate, prepared } from './statements.js';

export type Protocol = 'tcp' | 'udp';

export const PROTOCOL_BITS: Readonly<Record<Protocol, number>> = { tcp: 1, udp: 2 };

export interface Grant {
  grantId: string;
  userId: string;
  /** null means every client ('*'). */
  clientId: string | null;
  /** The client's current display name, '*' for every client. */
  clientName: string;
  listenPortStart: number;
  listenPortEnd: number;
  protocols: Protocol[];
  note: string;
  createdAt: number;
}

interface GrantRow {
  grant_id: string;
  user_id: string;
  client_id: string | null;
  client_name: string | null;
  listen_port_start: number;
  listen_port_end: number;
  protocols: number;
  note: string;
  created_at: number;
}

const SELECT = `SELECT g.*, c.client_name FROM grants g LEFT JOIN clients c USING (client_id)`;

export function protocolsFromBits(bits: number): Protocol[] {
  return (Object.keys(PROTOCOL_BITS) as Protocol[]).filter(
    (protocol) => (bits & PROTOCOL_BITS[protocol]) !== 0,
  );
}

export function protocolBits(protocols: readonly Protocol[]): number {
  return protocols.reduce((bits, protocol) => bits | PROTOCOL_BITS[protocol], 0);
}

function fromRow(row: GrantRow): Grant {
  return {
    grantId: row.grant_id,
    userId: row.user_id,
    clientId: row.client_id,
    clientName: row.client_id === null ? '*' : (row.client_name ?? row.client_id),
    listenPortStart: row.listen_port_start,
    listenPortEnd: row.listen_port_end,
    protocols: protocolsFromBits(row.protocols),
    note: row.note,
    createdAt: row.created_at,
  };
}

export interface NewGrant {
  grantId: string;
  userId: string;
  clientId: string | null;
  listenPortStart: number;
  listenPortEnd: number;
  protocols: readonly Protocol[];
  note: string;
  now: number;
}

export function insertGrant(db: Database, grant: NewGrant): Grant {
  try {
    prepared(
      db,
      `INSERT INTO grants (grant_id, user_id, client_id, listen_port_start, listen_port_end,
         protocols, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      grant.grantId,
      grant.userId,
      grant.clientId,
      grant.listenPortStart,
      grant.listenPortEnd,
      protocolBits(grant.protocols),
      grant.note,
      grant.now,
    );
  } catch (error) {
    if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      // SQLite does not say which key failed; the user is the likelier one to be missing.
      const userExists = prepared(db, 'SELECT 1 FROM users WHERE user_id = ?').get(grant.userId);
      throw userExists
        ? new PortunusError('client_not_found', `no client ${String(grant.clientId)}`)
        : new PortunusError('user_not_found', `no user ${grant.userId}`, { user_id: grant.userId });
    }
    throw error;
  }
  return getGrant(db, grant.grantId)!;
}

export function getGrant(db: Database, grantId: string): Grant | undefined {
  const row = prepared(db, `${SELECT} WHERE g.grant_id = ?`).get(grantId) as GrantRow | undefined;
  return row ? fromRow(row) : undefined;
}

export function listGrants(db: Database, userId?: string): Grant[] {
  const rows = (
    userId === undefined
      ? prepared(db, `${SELECT} ORDER BY g.created_at, g.grant_id`).all()
      : prepared(db, `${SELECT} WHERE g.user_id = ? ORDER BY g.created_at, g.grant_id`).all(userId)
  ) as GrantRow[];
  return rows.map(fromRow);
}

/** The ids of `userId`'s rules that no grant of theirs covers. */
function uncoveredRuleIds(db: Database, userId: string): number[] {
  return prepared(
    db,
    `SELECT r.rule_id FROM rules r WHERE r.owner_user_id = ? AND NOT EXISTS (
       SELECT 1 FROM grants g WHERE g.user_id = r.owner_user_id
         AND (g.client_id IS NULL OR g.client_id = r.client_id)
         AND (g.protocols & (CASE r.protocol WHEN 'tcp' THEN 1 ELSE 2 END)) <> 0
         AND g.listen_port_start <= r.listen_port
         AND g.listen_port_end >= coalesce(r.listen_port_end, r.listen_port))
     ORDER BY r.rule_id`,
  )
    .pluck()
    .all(userId) as number[];
}

/**
 * Revokes a grant and removes the owner's rules it alone covered (superadmins' rules never needed
 * a grant and stay). Returns the removed rule ids.
 */
export function deleteGrant(
  db: Database,
  grantId: string,
  author?: RevisionAuthor,
): { grant: Grant; removedRuleIds: number[] } {
  return immediate(db, () => {
    const grant = getGrant(db, grantId);
    if (!grant) {
      throw new PortunusError('grant_not_found', `no grant ${grantId}`, { grant_id: grantId });
    }
    prepared(db, 'DELETE FROM grants WHERE grant_id = ?').run(grantId);
    const role = prepared(db, 'SELECT role FROM users WHERE user_id = ?').pluck().get(grant.userId);
    const removedRuleIds = role === 'superadmin' ? [] : uncoveredRuleIds(db, grant.userId);
    if (author) {
      recordRevision(
        db,
        author,
        'grant_revoked',
        `revoke grant ${grantId} of ${grant.userId}: rules ${removedRuleIds.join(', ')}`,
        removalChanges(db, removedRuleIds),
      );
    }
    const remove = prepared(db, 'DELETE FROM rules WHERE rule_id = ?');
    for (const ruleId of removedRuleIds) remove.run(ruleId);
    return { grant, removedRuleIds };
  });
}

/**
 * The push check for a user (superadmins bypass it): throws client_not_granted,
 * protocol_not_granted or port_outside_grant, in that order.
 */
export function enforcePush(
  db: Database,
  push: {
    userId: string;
    clientId: string;
    protocol: Protocol;
    listenPort: number;
    listenPortEnd: number;
  },
): Grant {
  const forClient = listGrants(db, push.userId).filter(
    (grant) => grant.clientId === null || grant.clientId === push.clientId,
  );
  if (forClient.length === 0) {
    throw new PortunusError('client_not_granted', `no grant of ${push.userId} covers this client`, {
      user_id: push.userId,
      client_id: push.clientId,
    });
  }
  const forProtocol = forClient.filter((grant) => grant.protocols.includes(push.protocol));
  if (forProtocol.length === 0) {
    throw new PortunusError(
      'protocol_not_granted',
      `no grant of ${push.userId} for this client allows ${push.protocol}`,
      { user_id: push.userId, protocol: push.protocol },
    );
  }
  const covering = forProtocol.find(
    (grant) =>
      grant.listenPortStart <= push.listenPort && grant.listenPortEnd >= push.listenPortEnd,
  );
  if (!covering) {
    const range =
      push.listenPort === push.listenPortEnd
        ? String(push.listenPort)
        : `${push.listenPort}-${push.listenPortEnd}`;
    throw new PortunusError(
      'port_outside_grant',
      `no single grant of ${push.userId} covers listen port ${range}`,
      { user_id: push.userId, listen_port: push.listenPort, listen_port_end: push.listenPortEnd },
    );
  }
  return covering;
}
