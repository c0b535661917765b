/**
 * The owner rate-limit use cases (reference §2.3, §4.4, §5.8) the operator routes (and through
 * them the CLI) share: the owners of a client, read an envelope, set it (the caps of a rule's
 * rate_limit, checked by @portunus/api's one field list; at least one cap) and remove it. Setting
 * needs the client connected and new enough; the row is stored and OwnerRateLimitUpdate{SET} sent
 * in one transaction, so a refused or unsent request stores nothing. Removal is idempotent and
 * sends REMOVE when the client is live. Depends on the store, the fleet interface and the api
 * checks; no HTTP.
 */
import {
  checkRateLimit,
  rateLimitView,
  type ClientOwnerView,
  type OwnerRateLimitRequest,
  type OwnerRateLimitView,
} from '@portunus/api';
import { EVENTS, PortunusError } from '@portunus/core';
import {
  deleteOwnerRateLimit,
  getClientOrThrow,
  getOwnerRateLimitOrThrow,
  getUserOrThrow,
  immediate,
  listClientOwners,
  upsertOwnerRateLimit,
  type OwnerRateLimit,
} from '@portunus/store';

import type { OperatorContext } from '../operator/context.js';
import { policyError } from '../operator/rule-validation.js';

export function ownerRateLimitView(envelope: OwnerRateLimit): OwnerRateLimitView {
  return {
    client_id: envelope.clientId,
    client_name: envelope.clientName,
    owner_id: envelope.ownerUserId,
    rate_limit: rateLimitView(envelope.rateLimit),
    updated_at_unix_ms: envelope.updatedAt,
  };
}

/** `GET /v1/clients/{id}/owners`: owners with rules ∪ owners with envelopes. */
export function clientOwners(ctx: OperatorContext, clientId: string): ClientOwnerView[] {
  const client = getClientOrThrow(ctx.db, clientId);
  return listClientOwners(ctx.db, client.clientId).map((owner) => ({
    owner_id: owner.ownerUserId,
    has_rate_limit: owner.hasRateLimit,
    rule_count: owner.ruleCount,
  }));
}

export function getOwnerRateLimitView(
  ctx: OperatorContext,
  clientId: string,
  ownerUserId: string,
): OwnerRateLimitView {
  const client = getClientOrThrow(ctx.db, clientId);
  return ownerRateLimitView(getOwnerRateLimitOrThrow(ctx.db, client.clientId, ownerUserId));
}

/**
 * `PUT …/rate-limit`: client → caps (the rule checks, then at least one) → owner → gate → store
 * and send SET together. A PUT replaces the whole envelope: caps it leaves out are cleared.
 */
export function setOwnerRateLimit(
  ctx: OperatorContext,
  clientId: string,
  ownerUserId: string,
  body: OwnerRateLimitRequest,
): OwnerRateLimitView {
  const client = getClientOrThrow(ctx.db, clientId);
  const checked = checkRateLimit(body);
  if ('problem' in checked) throw policyError(checked.problem);
  if (checked.caps === null) {
    throw new PortunusError(
      'validation.rate_limit_no_caps_provided',
      'give at least one cap; DELETE removes the envelope',
    );
  }
  const caps = checked.caps;
  getUserOrThrow(ctx.db, ownerUserId);
  const gate = ctx.fleet.ownerRateLimitGate(client.clientId);
  const refused = (why: string) =>
    new PortunusError(
      'rate_limit_unsupported_by_client',
      `client ${JSON.stringify(client.clientName)} (${client.clientId}) ${why}; owner rate limits need a connected client that supports rate limits`,
      { client_id: client.clientId },
    );
  if (gate) {
    throw refused(ctx.fleet.isConnected(client.clientId) ? 'is too old' : 'is not connected');
  }
  const envelope = immediate(ctx.db, () => {
    const stored = upsertOwnerRateLimit(ctx.db, {
      clientId: client.clientId,
      ownerUserId,
      rateLimit: caps,
      now: ctx.now(),
    });
    // Sent inside the transaction: if the stream is gone by now, the row is rolled back.
    if (!ctx.fleet.sendOwnerRateLimit(client.clientId, ownerUserId, caps)) {
      throw refused('disconnected before the update was sent');
    }
    return stored;
  });
  ctx.logger.info(EVENTS.ownerRateLimitSet, {
    client_id: client.clientId,
    owner_id: ownerUserId,
    rate_limit: rateLimitView(caps),
  });
  return ownerRateLimitView(envelope);
}

/** `DELETE …/rate-limit`: idempotent; REMOVE goes to the client when it is live. */
export function removeOwnerRateLimit(
  ctx: OperatorContext,
  clientId: string,
  ownerUserId: string,
): { clientId: string; removed: boolean; sent: boolean } {
  const client = getClientOrThrow(ctx.db, clientId);
  const removed = deleteOwnerRateLimit(ctx.db, client.clientId, ownerUserId);
  const sent = ctx.fleet.sendOwnerRateLimit(client.clientId, ownerUserId, null);
  ctx.logger.info(EVENTS.ownerRateLimitRemove, {
    client_id: client.clientId,
    owner_id: ownerUserId,
    removed,
    sent,
  });
  return { clientId: client.clientId, removed, sent };
}
