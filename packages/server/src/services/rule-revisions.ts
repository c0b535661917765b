/**
 * Rule-set revisions as use cases: what differs between revision n and now, and restoring the
 * live rule set to revision n. A restore changes only the difference — removes the rules added
 * since, recreates the removed ones under their old ids, reverts the edited ones in place — and
 * is itself one new revision, each step written with its store change, so history never says
 * more than what happened. Steps that cannot run now (client offline or gone, owner gone or no
 * longer granted, the client refusing) are reported, never queued. No HTTP here.
 */
import type { RestoreResult, RevisionDiff, RuleDefinitionView, StepFailure } from '@portunus/api';
import { PortunusError, isPortunusError } from '@portunus/core';
import {
  addRevisionChange,
  definitionOf,
  deleteRevisionIfEmpty,
  deleteRule,
  diffRuleSets,
  enforcePush,
  getClient,
  getRevisionOrThrow,
  getRule,
  getUser,
  headRevision,
  immediate,
  insertRule,
  openRevision,
  replaceRuleDefinition,
  ruleSetAt,
  setRevisionSummary,
  type Client,
  type Rule,
  type RuleDefinition,
} from '@portunus/store';

import type { Identity, OperatorContext } from '../operator/context.js';
import { checkPortConflict } from './port-conflicts.js';
import { changedFields, definitionView } from './rule-definitions.js';
import { authorOf, checkGate, requireConnected } from './rules.js';

function clientNameOf(ctx: OperatorContext, clientId: string): string | null {
  return getClient(ctx.db, clientId)?.clientName ?? null;
}

/** `GET /v1/rule-revisions/{n}/diff`: rules added, removed and changed since revision n. */
export function revisionDiff(ctx: OperatorContext, revision: number): RevisionDiff {
  const { at, now } = ruleSetAt(ctx.db, revision);
  const diff = diffRuleSets(at, now);
  const view = (definition: RuleDefinition): RuleDefinitionView => ({
    ...definitionView(definition),
    client_name: clientNameOf(ctx, definition.clientId),
  });
  return {
    revision,
    head: headRevision(ctx.db),
    added: diff.added.map(view),
    removed: diff.removed.map(view),
    changed: diff.changed.map(({ from, to }) => ({
      rule_id: from.ruleId,
      fields: changedFields(from, to),
      revision: view(from),
      now: view(to),
    })),
  };
}

export type { RestoreResult, StepFailure };

/**
 * Throws why a definition cannot be applied on its client now: the client or the owner is gone,
 * the owner's grants no longer cover it, the client is offline or too old, or another rule holds
 * its port. Returns the client otherwise.
 */
function applicable(ctx: OperatorContext, definition: RuleDefinition): Client {
  const client = getClient(ctx.db, definition.clientId);
  if (!client) {
    throw new PortunusError('client_not_found', `client ${definition.clientId} no longer exists`);
  }
  const owner = getUser(ctx.db, definition.ownerUserId);
  if (!owner) {
    throw new PortunusError(
      'user_not_found',
      `owner ${definition.ownerUserId} no longer exists; the rule cannot come back`,
    );
  }
  if (owner.role !== 'superadmin') {
    enforcePush(ctx.db, {
      userId: owner.userId,
      clientId: client.clientId,
      protocol: definition.protocol,
      listenPort: definition.listenPort,
      listenPortEnd: definition.listenPortEnd ?? definition.listenPort,
    });
  }
  requireConnected(ctx, client);
  checkGate(ctx, client, definition);
  checkPortConflict(ctx.db, { ...definition, exceptRuleId: definition.ruleId });
  return client;
}

function failure(ruleId: number, action: StepFailure['action'], error: unknown): StepFailure {
  if (!isPortunusError(error)) throw error;
  return { rule_id: ruleId, action, code: error.code, message: error.message };
}

function outcomeFailure(
  ruleId: number,
  action: StepFailure['action'],
  outcome: { kind: string; reason?: string },
): StepFailure {
  if (outcome.kind === 'failed') {
    return {
      rule_id: ruleId,
      action,
      code: 'activation_failed',
      message: `the client refused rule ${ruleId}: ${outcome.reason ?? 'unspecified'}`,
    };
  }
  if (outcome.kind === 'not_connected') {
    return {
      rule_id: ruleId,
      action,
      code: 'client_not_connected',
      message: 'the client disconnected',
    };
  }
  return {
    rule_id: ruleId,
    action,
    code: 'ack_timeout',
    message: `no answer from the client for rule ${ruleId}`,
  };
}

/**
 * `POST /v1/rule-revisions/{n}/restore` (superadmin): makes the rule set equal to revision n,
 * pushing only the difference. Answers what was applied and what failed; a restore with nothing
 * to change records no revision.
 */
export async function restoreRevision(
  ctx: OperatorContext,
  identity: Identity,
  target: number,
  ackTimeoutSecs: number,
): Promise<RestoreResult> {
  getRevisionOrThrow(ctx.db, target);
  const { at, now } = ruleSetAt(ctx.db, target);
  // From now to revision n: `added` are to recreate, `removed` to remove, `changed` to revert.
  const plan = diffRuleSets(now, at);
  const failed: StepFailure[] = [];
  const removed: number[] = [];
  const pushed: RestoreResult['pushed'] = [];
  const edited: RestoreResult['edited'] = [];
  if (plan.added.length + plan.removed.length + plan.changed.length === 0) {
    return { revision: null, restored_to: target, removed, pushed, edited, failed };
  }
  const author = authorOf(ctx, identity);
  const ackMs = ackTimeoutSecs * 1000;
  // 1. Removals first, in one transaction with the revision they open: they free ports.
  const revision = immediate(ctx.db, () => {
    const opened = openRevision(ctx.db, author, 'restore', `restore revision ${target}`);
    for (const definition of plan.removed) {
      const rule = getRule(ctx.db, definition.ruleId);
      if (!rule) continue;
      addRevisionChange(ctx.db, opened, {
        ruleId: rule.ruleId,
        before: definitionOf(rule),
        after: null,
      });
      deleteRule(ctx.db, rule.ruleId);
      removed.push(rule.ruleId);
    }
    return opened;
  });
  ctx.fleet.remove(removed);
  // 2. Reverts of edited rules: stored only once the client runs the old definition again.
  for (const { to: definition } of plan.changed) {
    let current: Rule | undefined;
    try {
      applicable(ctx, definition);
      current = getRule(ctx.db, definition.ruleId);
      if (!current) throw new PortunusError('rule_not_found', `rule ${definition.ruleId} is gone`);
    } catch (error) {
      failed.push(failure(definition.ruleId, 'edit', error));
      continue;
    }
    const outcome = await ctx.fleet.push({ ...current, ...definition }, ackMs, { replace: true });
    if (outcome.kind !== 'activated') {
      failed.push(outcomeFailure(definition.ruleId, 'edit', outcome));
      continue;
    }
    try {
      const rule = immediate(ctx.db, () => {
        const before = getRule(ctx.db, definition.ruleId);
        if (!before) throw new PortunusError('rule_not_found', `rule ${definition.ruleId} is gone`);
        addRevisionChange(ctx.db, revision, {
          ruleId: before.ruleId,
          before: definitionOf(before),
          after: definition,
        });
        return replaceRuleDefinition(ctx.db, definition, { kind: 'active' }, ctx.now());
      });
      edited.push({ rule_id: rule.ruleId, fields: changedFields(current, definition) });
    } catch (error) {
      ctx.fleet.remove([definition.ruleId]);
      failed.push(failure(definition.ruleId, 'edit', error));
    }
  }
  // 3. Recreations under their old ids: stored Pending with the revision, then pushed (as a push).
  for (const definition of plan.added) {
    let rule: Rule;
    try {
      applicable(ctx, definition);
      rule = immediate(ctx.db, () => {
        const stored = insertRule(ctx.db, {
          ...definition,
          state: { kind: 'pending' },
          now: ctx.now(),
        });
        addRevisionChange(ctx.db, revision, {
          ruleId: stored.ruleId,
          before: null,
          after: definition,
        });
        return stored;
      });
    } catch (error) {
      failed.push(failure(definition.ruleId, 'push', error));
      continue;
    }
    const outcome = await ctx.fleet.push(rule, ackMs);
    if (outcome.kind === 'activated') {
      pushed.push({ rule_id: rule.ruleId, status: 'Active' });
      continue;
    }
    if (outcome.kind === 'not_connected') {
      immediate(ctx.db, () => {
        deleteRule(ctx.db, rule.ruleId);
        addRevisionChange(ctx.db, revision, { ruleId: rule.ruleId, before: null, after: null });
      });
    }
    failed.push(outcomeFailure(rule.ruleId, 'push', outcome));
  }
  const steps = [
    removed.length > 0 ? `removed ${removed.join(', ')}` : '',
    edited.length > 0 ? `reverted ${edited.map((step) => step.rule_id).join(', ')}` : '',
    pushed.length > 0 ? `re-created ${pushed.map((step) => step.rule_id).join(', ')}` : '',
    failed.length > 0 ? `failed ${failed.map((step) => step.rule_id).join(', ')}` : '',
  ]
    .filter((part) => part !== '')
    .join('; ');
  const summary = `restore revision ${target}: ${steps}`;
  const kept = immediate(ctx.db, () => {
    if (deleteRevisionIfEmpty(ctx.db, revision)) return false;
    setRevisionSummary(ctx.db, revision, summary);
    return true;
  });
  return {
    revision: kept ? revision : null,
    restored_to: target,
    removed,
    pushed,
    edited,
    failed,
  };
}
