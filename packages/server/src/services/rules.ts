/**
 * The rule use cases the operator routes (and through them the CLI) share: push a new rule, edit
 * a rule in place under the same id, remove one. Push and edit run one request pipeline
 * (reference §2.4: body checks → client → grants → post-grant checks → self-loop → connection →
 * capability gate → conflict) and then wait for the client's answer; every accepted change is
 * stored together with its rule-set revision in one transaction, and a refused one stores
 * nothing. Depends on the store, the fleet interface and the pure validation; no HTTP.
 */
import type { Database } from 'better-sqlite3';

import { EVENTS, PortunusError } from '@portunus/core';
import {
  definitionOf,
  deleteRule,
  discardRuleHistory,
  enforcePush,
  findClientsByName,
  getClient,
  getRuleOrThrow,
  getUser,
  immediate,
  insertPendingRule,
  recordRevision,
  removalChanges,
  replaceRuleDefinition,
  sameDefinition,
  type Client,
  type Rule,
  type RuleDefinition,
  type RevisionAuthor,
} from '@portunus/store';

import type { Identity, OperatorContext } from '../operator/context.js';
import {
  checkGrantedPush,
  checkNotSelf,
  validateRuleBody,
  type RulePush,
  type RulePushBody,
} from '../operator/rule-validation.js';
import { checkPortConflict } from './port-conflicts.js';
import { changedFields, describeRule } from './rule-definitions.js';

export function authorOf(ctx: OperatorContext, identity: Identity): RevisionAuthor {
  return { actor: identity.userId, at: ctx.now() };
}

/** The rule, if the caller may see it: its owner or a superadmin. */
export function ownedRule(ctx: OperatorContext, identity: Identity, ruleId: number): Rule {
  const rule = getRuleOrThrow(ctx.db, ruleId);
  if (identity.role !== 'superadmin' && rule.ownerUserId !== identity.userId) {
    throw new PortunusError('not_owner', `rule ${ruleId} belongs to another user`);
  }
  return rule;
}

/**
 * The client a push names: by display name (reference §2.4), else by client id; a name that
 * several clients share is ambiguous (DESIGN.md §8.6).
 */
function resolvePushClient(db: Database, reference: string): Client {
  const named = findClientsByName(db, reference);
  const [only] = named;
  if (named.length > 1) {
    throw new PortunusError(
      'ambiguous_client_name',
      `${named.length} clients are named ${JSON.stringify(reference)} (${named
        .map((client) => client.clientId)
        .join(', ')}); use the client id`,
      { client: reference },
    );
  }
  const client = only ?? getClient(db, reference);
  if (!client) {
    throw new PortunusError('client_not_found', `no client named ${JSON.stringify(reference)}`, {
      client: reference,
    });
  }
  return client;
}

/** The host of a peer address as the control listener records it (`1.2.3.4:5`, `[::1]:5`). */
function peerHost(peer: string | null | undefined): string | undefined {
  if (!peer) return undefined;
  const bare = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\]/.exec(bare)?.[1];
  if (bracketed !== undefined) return bracketed;
  const colon = bare.lastIndexOf(':');
  return colon > 0 && bare.indexOf(':') === colon ? bare.slice(0, colon) : bare;
}

/** Every address the client is known by: its declared entry address and where it dialled from. */
function ownAddresses(ctx: OperatorContext, client: Client): string[] {
  return [
    client.clientAddress,
    peerHost(client.lastRemoteAddr),
    peerHost(ctx.fleet.connection(client.clientId)?.remoteAddr),
  ].filter((address): address is string => address !== null && address !== undefined);
}

/**
 * The grant check (reference §6.2) for the user who will own the rule; a superadmin's rules need
 * no grant. An edit checks the rule's owner, so a superadmin cannot move a user's rule outside
 * that user's grants (the next grant revocation would not know what to do with it).
 */
function checkGrants(
  db: Database,
  owner: { userId: string; isSuperadmin: boolean },
  client: Client,
  push: RulePush,
): void {
  if (owner.isSuperadmin) return;
  enforcePush(db, {
    userId: owner.userId,
    clientId: client.clientId,
    protocol: push.protocol,
    listenPort: push.listenPort,
    listenPortEnd: push.listenPortEnd ?? push.listenPort,
  });
}

/** Pushes are never queued: the client must be connected now. */
export function requireConnected(ctx: OperatorContext, client: Client): void {
  if (!ctx.fleet.isConnected(client.clientId)) {
    throw new PortunusError(
      'client_not_connected',
      `client ${JSON.stringify(client.clientName)} (${client.clientId}) is not connected; pushes are never queued`,
      { client_id: client.clientId },
    );
  }
}

/** The capability gate a definition fails on its connected client (reference §4.4). */
export function checkGate(ctx: OperatorContext, client: Client, rule: RuleDefinition): void {
  const gate = ctx.fleet.gate({ ...rule, clientId: client.clientId });
  if (gate) {
    throw new PortunusError(gate, `client ${JSON.stringify(client.clientName)}: ${gate}`, {
      client_id: client.clientId,
    });
  }
}

function definitionFrom(
  push: RulePush,
  ids: { ruleId: number; clientId: string; ownerUserId: string },
): RuleDefinition {
  return definitionOf({
    ...ids,
    protocol: push.protocol,
    listenPort: push.listenPort,
    listenPortEnd: push.listenPortEnd,
    preferIpv6: push.preferIpv6,
    healthCheckIntervalSecs: push.healthCheckIntervalSecs,
    sniPattern: push.sniPattern,
    rateLimit: push.rateLimit,
    targets: push.targets,
  });
}

/** Body → client → grants → post-grant checks → self-loop: everything that needs no client. */
function prepare(
  ctx: OperatorContext,
  body: RulePushBody,
  owner: { userId: string; isSuperadmin: boolean },
  editing?: Rule,
): { push: RulePush; client: Client } {
  // 1. The body: shape → ranges → SNI → rate limit → targets → protocol.
  const push = validateRuleBody(body);
  // 2. The client, by display name; an edit cannot move a rule to another client.
  const client = resolvePushClient(ctx.db, push.clientName);
  if (editing && client.clientId !== editing.clientId) {
    throw new PortunusError(
      'validation.rule_update_shape_mismatch',
      `rule ${editing.ruleId} runs on client ${editing.clientName} (${editing.clientId}); an edit cannot move it to ${client.clientName} (${client.clientId}): remove it and push a new one`,
      { rule_id: editing.ruleId },
    );
  }
  // 3. Grants (superadmins bypass them): client → protocol → one grant for the whole range.
  checkGrants(ctx.db, owner, client, push);
  // 4. Legacy target-host syntax, PROXY protocol only on TCP, the range cap.
  checkGrantedPush(push, ctx.config.rangeRuleMaxPorts);
  // 5. No target may be the rule's own listener.
  checkNotSelf(push, ownAddresses(ctx, client));
  return { push, client };
}

/** Answers a push outcome that is not an activation with its catalogued error. */
function outcomeError(
  outcome: { kind: 'failed'; reason: string } | { kind: 'timeout' | 'lost' | 'not_connected' },
  text: { failed: string; timeout: string; notConnected: string },
  fields: Record<string, unknown>,
): PortunusError {
  switch (outcome.kind) {
    case 'failed':
      return new PortunusError('activation_failed', `${text.failed}: ${outcome.reason}`, {
        ...fields,
        reason: outcome.reason,
      });
    case 'timeout':
    case 'lost':
      return new PortunusError('ack_timeout', text.timeout, fields);
    case 'not_connected':
      return new PortunusError('client_not_connected', text.notConnected, fields);
  }
}

/**
 * `POST /v1/rules`: a new rule, stored Pending with its revision, pushed, and answered when the
 * client has answered (201 Active; 422 activation_failed leaves it Failed; 504 leaves it Pending).
 * `onStored` learns the new id before the wait (the audit row of a refusal names it).
 */
export async function pushRule(
  ctx: OperatorContext,
  identity: Identity,
  body: RulePushBody,
  onStored: (ruleId: number) => void = () => undefined,
): Promise<Rule> {
  const { push, client } = prepare(ctx, body, {
    userId: identity.userId,
    isSuperadmin: identity.role === 'superadmin',
  });
  // 6. Pushes are never queued; then the capability gates (§4.4).
  requireConnected(ctx, client);
  const candidate = definitionFrom(push, {
    ruleId: 0,
    clientId: client.clientId,
    ownerUserId: identity.userId,
  });
  checkGate(ctx, client, candidate);
  // 7. The conflict check (§5.9), Pending and the revision, in one transaction.
  let revision: number | undefined;
  const rule = immediate(ctx.db, () => {
    checkPortConflict(ctx.db, candidate);
    const stored = insertPendingRule(ctx.db, {
      clientId: candidate.clientId,
      ownerUserId: candidate.ownerUserId,
      protocol: candidate.protocol,
      listenPort: candidate.listenPort,
      listenPortEnd: candidate.listenPortEnd,
      preferIpv6: candidate.preferIpv6,
      healthCheckIntervalSecs: candidate.healthCheckIntervalSecs,
      sniPattern: candidate.sniPattern,
      rateLimit: candidate.rateLimit,
      targets: candidate.targets,
      now: ctx.now(),
    });
    revision = recordRevision(
      ctx.db,
      authorOf(ctx, identity),
      'push',
      `push rule ${stored.ruleId}: ${describeRule(stored, client.clientName)}`,
      [{ ruleId: stored.ruleId, before: null, after: definitionOf(stored) }],
    );
    return stored;
  });
  onStored(rule.ruleId);
  // 8. Send RuleUpdate{PUSH} and wait for the RuleStatus up to the ack budget.
  const outcome = await ctx.fleet.push(rule, push.ackTimeoutSecs * 1000);
  const fields = { rule_id: rule.ruleId, client_id: client.clientId };
  ctx.logger.info(EVENTS.rulePush, { ...fields, outcome: outcome.kind });
  if (outcome.kind === 'activated') return getRuleOrThrow(ctx.db, rule.ruleId);
  if (outcome.kind === 'not_connected') {
    // The push never left: the rule and its revision go, as if it had been refused up front.
    immediate(ctx.db, () => {
      deleteRule(ctx.db, rule.ruleId);
      if (revision !== undefined) discardRuleHistory(ctx.db, rule.ruleId, revision);
    });
  }
  throw outcomeError(
    outcome,
    {
      failed: `client ${client.clientName} could not activate rule ${rule.ruleId}`,
      timeout: `no answer from client ${client.clientName} within ${push.ackTimeoutSecs} s; rule ${rule.ruleId} stays pending`,
      notConnected: `client ${client.clientName} disconnected before the push was sent; nothing was stored`,
    },
    fields,
  );
}

export interface EditResult {
  rule: Rule;
  /** False: the body matched the stored definition, so nothing was pushed or stored. */
  changed: boolean;
  revision?: number;
}

/**
 * `PUT /v1/rules/{id}`: replaces every field of a rule but its id, client and owner, live. The
 * body is a full push body and runs the push pipeline; the conflict check ignores the rule's own
 * ports. The new definition is pushed as RuleUpdate{PUSH} with the same id and stored (with its
 * revision) only once the client activated it; a refusal, a timeout or a lost stream leave the
 * stored rule exactly as it was. An edit that changes nothing answers at once, without a push.
 */
export async function editRule(
  ctx: OperatorContext,
  identity: Identity,
  ruleId: number,
  body: RulePushBody,
): Promise<EditResult> {
  const current = ownedRule(ctx, identity, ruleId);
  const ownerIsSuperadmin =
    current.ownerUserId === identity.userId
      ? identity.role === 'superadmin'
      : getUser(ctx.db, current.ownerUserId)?.role === 'superadmin';
  const { push, client } = prepare(
    ctx,
    body,
    { userId: current.ownerUserId, isSuperadmin: ownerIsSuperadmin },
    current,
  );
  const next = definitionFrom(push, {
    ruleId,
    clientId: current.clientId,
    ownerUserId: current.ownerUserId,
  });
  if (sameDefinition(next, current)) return { rule: current, changed: false };
  requireConnected(ctx, client);
  checkGate(ctx, client, next);
  checkPortConflict(ctx.db, { ...next, exceptRuleId: ruleId });
  const fields = { rule_id: ruleId, client_id: client.clientId };
  const outcome = await ctx.fleet.push({ ...current, ...next }, push.ackTimeoutSecs * 1000, {
    replace: true,
  });
  ctx.logger.info(EVENTS.rulePush, { ...fields, outcome: outcome.kind, edit: true });
  if (outcome.kind !== 'activated') {
    throw outcomeError(
      outcome,
      {
        failed: `client ${client.clientName} refused the edit of rule ${ruleId}, which keeps its previous definition`,
        timeout: `no answer from client ${client.clientName} within ${push.ackTimeoutSecs} s; rule ${ruleId} keeps its stored definition (send the edit again)`,
        notConnected: `client ${client.clientName} disconnected before the edit was sent; rule ${ruleId} is unchanged`,
      },
      fields,
    );
  }
  try {
    return immediate(ctx.db, () => {
      const before = getRuleOrThrow(ctx.db, ruleId);
      const rule = replaceRuleDefinition(ctx.db, next, { kind: 'active' }, ctx.now());
      const revision = recordRevision(
        ctx.db,
        authorOf(ctx, identity),
        'edit',
        `edit rule ${ruleId} (${changedFields(before, next).join(', ')}): ${describeRule(next, client.clientName)}`,
        [{ ruleId, before: definitionOf(before), after: next }],
      );
      return { rule, changed: true, ...(revision !== undefined ? { revision } : {}) };
    });
  } catch (error) {
    // Removed while the client was activating the edit: the client must not keep running it.
    if (error instanceof PortunusError && error.code === 'rule_not_found') {
      ctx.fleet.remove([ruleId]);
    }
    throw error;
  }
}

/** `DELETE /v1/rules/{id}`: removes the rule and records the revision, then drains it. */
export function removeRule(ctx: OperatorContext, identity: Identity, ruleId: number): Rule {
  const rule = ownedRule(ctx, identity, ruleId);
  immediate(ctx.db, () => {
    const changes = removalChanges(ctx.db, [ruleId]);
    if (!deleteRule(ctx.db, ruleId)) {
      throw new PortunusError('rule_not_found', `no rule ${ruleId}`, { rule_id: ruleId });
    }
    recordRevision(
      ctx.db,
      authorOf(ctx, identity),
      'remove',
      `remove rule ${ruleId}: ${describeRule(rule, rule.clientName)}`,
      changes,
    );
  });
  ctx.fleet.remove([ruleId]);
  return rule;
}
