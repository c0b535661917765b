/**
 * Where a use case's audit action goes. A service calls its AuditSink inside the change's
 * transaction, last, so a refused change records nothing: a route's sink hands the action to
 * the HTTP audit layer (which writes it with the request's row), the offline CLI's sink writes a
 * `_local_cli` row in the same transaction. Depends on the store's audit table only; no HTTP.
 */
import type { Database } from 'better-sqlite3';

import { appendAudit } from '@portunus/store';

import { RESERVED_USERS } from '../operator/context.js';

/** What an accepted change records; structurally the routes' `request.auditAction`. */
export interface AuditedAction {
  action: string;
  resourceKind: string;
  resourceValue: string;
  details: Record<string, unknown>;
}

export type AuditSink = (action: AuditedAction) => void;

/**
 * The offline CLI's sink: a `_local_cli` row written in the change's transaction. An offline
 * command has no peer: it ran on this host, so `remote_addr` is null.
 */
export function localCliAudit(db: Database, now: number): AuditSink {
  return (action) => {
    appendAudit(db, [
      {
        ts: now,
        actor: RESERVED_USERS.localCli,
        outcome: 'allow',
        ...action,
        details: { ...action.details, source: 'cli', remote_addr: null },
      },
    ]);
  };
}
