/**
 * The client use cases (reference §1.2, §2.3, §4.5, §6.6) that the operator routes and the
 * offline CLI commands (`enroll-client`, `revoke`, `rename-client`) both perform: issue an
 * enrollment code for a new client or an existing one, rename, revoke, set the entry address and
 * delete a revoked client. Every input is checked before anything is written; the change, its
 * audit action and (for a code) the superseding of older codes are one transaction, so a refused
 * request stores nothing. The audit row goes where the caller says (services/audit-sink.ts). A
 * code is returned once, inside the URI, and stored only as its hash. Depends on the store,
 * proto's URI format and the identity secrets; no HTTP framework and no route module.
 */
import type { Database } from 'better-sqlite3';

import type { IssuedEnrollment } from '@portunus/api';
import { EVENTS, formatRfc3339, type Logger } from '@portunus/core';
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
  immediate,
  renameClient,
  revokeClient,
  revokeClientsByName,
  setClientAddress,
  type Client,
  type RevisionAuthor,
} from '@portunus/store';

import { generateSecret, hashSecret, ulid } from '../identity/secrets.js';
import type { ControlEndpoint, Fleet } from '../operator/context.js';
import { requireAdvertisedEndpoint } from './advertised-endpoint.js';
import type { AuditSink, AuditedAction } from './audit-sink.js';

export interface ClientDeps {
  db: Database;
  logger: Logger;
  now: () => number;
  /** The live sessions; the offline CLI has none (serve is not running while it holds the lock). */
  fleet?: Pick<Fleet, 'disconnect'>;
}

export interface EnrollmentDeps extends ClientDeps {
  control: ControlEndpoint;
}

export interface EnrollmentInput {
  name: string;
  address?: string | null;
  ttlSecs?: number;
}

export interface IssueVia {
  audit: AuditSink;
  /** The request's Host header, for the derived endpoint tier; none offline. */
  hostHeader?: string;
}

/**
 * Issues a code: the advertised endpoint first (a failure stores nothing), then one transaction
 * that supersedes the client's older codes, stores the new one and records the audit action.
 */
function issue(
  deps: EnrollmentDeps,
  target: { clientId: string; clientName: string; clientAddress: string | null },
  ttlSecs: number,
  event: typeof EVENTS.clientEnrollmentCreated | typeof EVENTS.clientReenrollmentCreated,
  details: Record<string, unknown>,
  via: IssueVia,
): IssuedEnrollment {
  const { db, control } = deps;
  const { endpoint, source } = requireAdvertisedEndpoint(
    control,
    getAdvertisedEndpointOverride(db),
    via.hostHeader,
  );
  const code = generateSecret();
  const now = deps.now();
  const issued = immediate(db, () => {
    const created = createEnrollment(db, {
      ...target,
      advertisedEndpoint: endpoint,
      codeHash: hashSecret(code),
      now,
      ttlSecs,
    });
    via.audit({
      action: event,
      resourceKind: 'client',
      resourceValue: created.clientId,
      details: {
        client_name: created.clientName,
        ...details,
        ttl_secs: ttlSecs,
        expires_at: formatRfc3339(created.expiresAt),
      },
    });
    return created;
  });
  const uri = formatEnrollUri(endpoint, control.fingerprintSha256, code);
  const expiresAt = formatRfc3339(issued.expiresAt);
  deps.logger.info(event, {
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
}

/** A code for a new client (a ULID minted here); the address is optional, unlike the reference. */
export function enrollClient(
  deps: EnrollmentDeps,
  input: EnrollmentInput,
  via: IssueVia,
): IssuedEnrollment {
  const clientName = checkClientName(input.name);
  const address = input.address ?? null;
  const clientAddress = address === null ? null : checkClientAddress(address);
  const ttlSecs = checkEnrollmentTtl(input.ttlSecs ?? ENROLLMENT_TTL_DEFAULT_SECS);
  return issue(
    deps,
    { clientId: ulid(deps.now()), clientName, clientAddress },
    ttlSecs,
    EVENTS.clientEnrollmentCreated,
    { client_address: clientAddress },
    via,
  );
}

/** A new code for an existing client; its token rotates only when the code is redeemed. */
export function reenrollClient(
  deps: EnrollmentDeps,
  clientId: string,
  ttlSecs: number | undefined,
  via: IssueVia,
): IssuedEnrollment {
  const ttl = checkEnrollmentTtl(ttlSecs ?? ENROLLMENT_TTL_DEFAULT_SECS);
  const client = getClientOrThrow(deps.db, clientId);
  return issue(
    deps,
    { clientId: client.clientId, clientName: client.clientName, clientAddress: null },
    ttl,
    EVENTS.clientReenrollmentCreated,
    {},
    via,
  );
}

export function renameClientById(
  deps: ClientDeps,
  clientId: string,
  newName: string,
  audit: AuditSink,
): Client {
  const clientName = checkClientName(newName);
  const { before, after } = immediate(deps.db, () => {
    const old = getClientOrThrow(deps.db, clientId);
    const renamed = renameClient(deps.db, old.clientId, clientName);
    audit({
      action: EVENTS.clientRenamed,
      resourceKind: 'client',
      resourceValue: renamed.clientId,
      details: { old_name: old.clientName, new_name: renamed.clientName },
    });
    return { before: old, after: renamed };
  });
  deps.logger.info(EVENTS.clientRenamed, {
    client_id: after.clientId,
    old_name: before.clientName,
    new_name: after.clientName,
  });
  return after;
}

function revokedAction(client: Client): AuditedAction {
  return {
    action: EVENTS.clientRevoked,
    resourceKind: 'client',
    resourceValue: client.clientId,
    details: {
      client_name: client.clientName,
      revoked_at: client.revokedAt === null ? null : formatRfc3339(client.revokedAt),
    },
  };
}

function revoked(deps: ClientDeps, clients: readonly Client[]): void {
  for (const client of clients) {
    deps.fleet?.disconnect(client.clientId, 'revoked');
    deps.logger.info(EVENTS.clientRevoked, {
      client_id: client.clientId,
      client_name: client.clientName,
    });
  }
}

/** Revokes one client and ends its live session. */
export function revokeClientById(deps: ClientDeps, clientId: string, audit: AuditSink): Client {
  const client = immediate(deps.db, () => {
    const done = revokeClient(deps.db, clientId, deps.now());
    audit(revokedAction(done));
    return done;
  });
  revoked(deps, [client]);
  return client;
}

/** Revokes every client with this display name (reference §1.2 `revoke`); none is not an error. */
export function revokeClientsNamed(deps: ClientDeps, name: string, audit: AuditSink): Client[] {
  const clients = immediate(deps.db, () => {
    const done = revokeClientsByName(deps.db, name, deps.now());
    for (const client of done) audit(revokedAction(client));
    return done;
  });
  revoked(deps, clients);
  return clients;
}

/** Sets or clears (`null` or empty) the client's public entry address. */
export function setClientEntryAddress(
  deps: ClientDeps,
  clientId: string,
  address: string | null,
  audit: AuditSink,
): Client {
  const client = immediate(deps.db, () => {
    const updated = setClientAddress(deps.db, clientId, address === '' ? null : address);
    audit({
      action: EVENTS.clientAddressUpdated,
      resourceKind: 'client',
      resourceValue: updated.clientId,
      details: { client_address: updated.clientAddress },
    });
    return updated;
  });
  deps.logger.info(EVENTS.clientAddressUpdated, {
    client_id: client.clientId,
    client_address: client.clientAddress,
  });
  return client;
}

/** Deletes a revoked client and the rules it ran, as one rule-set revision. */
export function deleteRevokedClient(
  deps: ClientDeps,
  clientId: string,
  author: RevisionAuthor,
  audit: AuditSink,
): Client {
  const { client, removedRuleIds } = immediate(deps.db, () => {
    const deleted = deleteClient(deps.db, clientId, author);
    audit({
      action: EVENTS.clientDeleted,
      resourceKind: 'client',
      resourceValue: deleted.client.clientId,
      details: { client_name: deleted.client.clientName, removed_rule_ids: deleted.removedRuleIds },
    });
    return deleted;
  });
  deps.logger.info(EVENTS.clientDeleted, {
    client_id: client.clientId,
    client_name: client.clientName,
    removed_rules: removedRuleIds.length,
  });
  return client;
}
