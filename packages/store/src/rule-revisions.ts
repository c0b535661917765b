/**
 * Rule-set revisions: one numbered row per accepted change to the rules, with who, when, what
 * kind of change and a one-line summary, and per changed rule its full definition before and
 * after. Callers record a revision inside the transaction that changes the rules, so the log and
 * the rules table can never disagree; the rule set of revision n is then the current set with
 * every later revision undone (`ruleSetAt`). Pruning drops old revisions only, which later ones
 * never need. Depends on core and the rules aggregate only; knows nothing of HTTP or the fleet.
 */
import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import { definitionOf, getRule, listRules, type RuleDefinition } from './rules.js';
import { immediate, prepared } from './statements.js';

export type RevisionAction =
  'push' | 'edit' | 'remove' | 'restore' | 'user_removed' | 'grant_revoked' | 'client_deleted';

/** Who made a change and when (epoch ms); recorded as given, the actor outlives its user. */
export interface RevisionAuthor {
  actor: string;
  at: number;
}

export interface RuleChange {
  ruleId: number;
  /** Null: the change added the rule. */
  before: RuleDefinition | null;
  /** Null: the change removed the rule. */
  after: RuleDefinition | null;
}

export interface RuleRevision {
  revision: number;
  at: number;
  actor: string;
  action: RevisionAction;
  summary: string;
}

export const REVISIONS_DEFAULT_LIMIT = 100;
export const REVISIONS_MAX_LIMIT = 1000;

const toJson = (definition: RuleDefinition | null): string | null =>
  definition === null ? null : JSON.stringify(definitionOf(definition));

/** Opens a revision; its changes follow with `addRevisionChange`. Call inside a transaction. */
export function openRevision(
  db: Database,
  author: RevisionAuthor,
  action: RevisionAction,
  summary: string,
): number {
  const info = prepared(
    db,
    'INSERT INTO rule_revisions (at, actor, action, summary) VALUES (?, ?, ?, ?)',
  ).run(author.at, author.actor, action, summary);
  return Number(info.lastInsertRowid);
}

/**
 * Adds one rule's change to a revision. A second change of the same rule in the same revision
 * keeps the first `before` and the latest `after`; one that nets out to nothing is dropped.
 */
export function addRevisionChange(db: Database, revision: number, change: RuleChange): void {
  const existing = prepared(
    db,
    'SELECT before_json FROM rule_revision_changes WHERE revision = ? AND rule_id = ?',
  ).get(revision, change.ruleId) as { before_json: string | null } | undefined;
  const before = existing ? existing.before_json : toJson(change.before);
  const after = toJson(change.after);
  prepared(db, 'DELETE FROM rule_revision_changes WHERE revision = ? AND rule_id = ?').run(
    revision,
    change.ruleId,
  );
  if (before === after || (before === null && after === null)) return;
  prepared(
    db,
    `INSERT INTO rule_revision_changes (revision, rule_id, before_json, after_json)
     VALUES (?, ?, ?, ?)`,
  ).run(revision, change.ruleId, before, after);
}

/**
 * Records a whole revision at once; nothing when `changes` is empty (a change that changes
 * nothing is no revision). Returns the revision number, or undefined.
 */
export function recordRevision(
  db: Database,
  author: RevisionAuthor,
  action: RevisionAction,
  summary: string,
  changes: readonly RuleChange[],
): number | undefined {
  if (changes.length === 0) return undefined;
  return immediate(db, () => {
    const revision = openRevision(db, author, action, summary);
    for (const change of changes) addRevisionChange(db, revision, change);
    return revision;
  });
}

/** The definitions of rules about to be removed, as removal changes (before the DELETE). */
export function removalChanges(db: Database, ruleIds: readonly number[]): RuleChange[] {
  const changes: RuleChange[] = [];
  for (const ruleId of ruleIds) {
    const rule = getRule(db, ruleId);
    if (rule) changes.push({ ruleId, before: definitionOf(rule), after: null });
  }
  return changes;
}

export function setRevisionSummary(db: Database, revision: number, summary: string): void {
  prepared(db, 'UPDATE rule_revisions SET summary = ? WHERE revision = ?').run(summary, revision);
}

/** Drops a revision that ended up with no change (a restore whose every step failed). */
export function deleteRevisionIfEmpty(db: Database, revision: number): boolean {
  return (
    prepared(
      db,
      `DELETE FROM rule_revisions WHERE revision = ?
       AND NOT EXISTS (SELECT 1 FROM rule_revision_changes WHERE revision = ?)`,
    ).run(revision, revision).changes > 0
  );
}

/**
 * Forgets a rule that never reached its client (the push could not be sent): its changes from
 * `fromRevision` on, and revisions left empty by that. The rule then never existed in history.
 */
export function discardRuleHistory(db: Database, ruleId: number, fromRevision: number): void {
  immediate(db, () => {
    const revisions = prepared(
      db,
      'SELECT revision FROM rule_revision_changes WHERE rule_id = ? AND revision >= ?',
    )
      .pluck()
      .all(ruleId, fromRevision) as number[];
    prepared(db, 'DELETE FROM rule_revision_changes WHERE rule_id = ? AND revision >= ?').run(
      ruleId,
      fromRevision,
    );
    for (const revision of revisions) deleteRevisionIfEmpty(db, revision);
  });
}

interface RevisionRow {
  revision: number;
  at: number;
  actor: string;
  action: RevisionAction;
  summary: string;
}

export function getRevision(db: Database, revision: number): RuleRevision | undefined {
  return prepared(
    db,
    'SELECT revision, at, actor, action, summary FROM rule_revisions WHERE revision = ?',
  ).get(revision) as RevisionRow | undefined;
}

export function getRevisionOrThrow(db: Database, revision: number): RuleRevision {
  const found = Number.isSafeInteger(revision) ? getRevision(db, revision) : undefined;
  if (!found) {
    throw new PortunusError(
      'revision_not_found',
      `no rule-set revision ${revision} (never recorded, or pruned with the audit log)`,
      { revision },
    );
  }
  return found;
}

/** The newest revision number, or 0 before the first change. */
export function headRevision(db: Database): number {
  return (prepared(db, 'SELECT coalesce(max(revision), 0) FROM rule_revisions').pluck().get() ??
    0) as number;
}

/** Revision numbers travel as an opaque cursor, like the audit log's. */
function encodeCursor(revision: number): string {
  return Buffer.from(`r${revision}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): number {
  const match = /^[A-Za-z0-9_-]{1,32}$/.test(cursor)
    ? /^r(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
    : null;
  if (!match) {
    throw new PortunusError(
      'invalid_cursor',
      'cursor is not one this server issued; start again without it',
    );
  }
  return Number(match[1]);
}

/** One newest-first page; `nextCursor` is set when older revisions remain. */
export function listRevisions(
  db: Database,
  query: { limit?: number; cursor?: string } = {},
): { revisions: RuleRevision[]; nextCursor?: string } {
  const limit = query.limit ?? REVISIONS_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > REVISIONS_MAX_LIMIT) {
    throw new PortunusError(
      'invalid_limit',
      `limit must be an integer from 1 to ${REVISIONS_MAX_LIMIT}`,
      { limit },
    );
  }
  const below = query.cursor === undefined ? Number.MAX_SAFE_INTEGER : decodeCursor(query.cursor);
  const rows = prepared(
    db,
    `SELECT revision, at, actor, action, summary FROM rule_revisions
     WHERE revision < ? ORDER BY revision DESC LIMIT ?`,
  ).all(below, limit + 1) as RevisionRow[];
  const revisions = rows.slice(0, limit);
  const last = revisions.at(-1);
  return rows.length > limit && last
    ? { revisions, nextCursor: encodeCursor(last.revision) }
    : { revisions };
}

export type RuleSet = Map<number, RuleDefinition>;

/** Every stored rule's definition, by id. */
export function currentRuleSet(db: Database): RuleSet {
  return new Map(listRules(db).map((rule) => [rule.ruleId, definitionOf(rule)]));
}

/**
 * The rule set right after revision `revision`: the current set with every later revision undone,
 * newest first. Read in one transaction, so a change landing meanwhile cannot tear it.
 */
export function ruleSetAt(db: Database, revision: number): { at: RuleSet; now: RuleSet } {
  return db.transaction(() => {
    getRevisionOrThrow(db, revision);
    const now = currentRuleSet(db);
    const at = new Map(now);
    const undo = prepared(
      db,
      `SELECT rule_id, before_json FROM rule_revision_changes
       WHERE revision > ? ORDER BY revision DESC`,
    ).all(revision) as { rule_id: number; before_json: string | null }[];
    for (const change of undo) {
      if (change.before_json === null) at.delete(change.rule_id);
      else at.set(change.rule_id, definitionOf(JSON.parse(change.before_json) as RuleDefinition));
    }
    return { at, now };
  })();
}

export interface RuleSetDiff {
  /** In `to`, not in `from`. */
  added: RuleDefinition[];
  /** In `from`, not in `to`. */
  removed: RuleDefinition[];
  changed: { from: RuleDefinition; to: RuleDefinition }[];
}

/** What changes turn rule set `from` into `to`, each list by rule id. */
export function diffRuleSets(from: RuleSet, to: RuleSet): RuleSetDiff {
  const diff: RuleSetDiff = { added: [], removed: [], changed: [] };
  const ids = [...new Set([...from.keys(), ...to.keys()])].sort((a, b) => a - b);
  for (const id of ids) {
    const before = from.get(id);
    const after = to.get(id);
    if (!before && after) diff.added.push(after);
    else if (before && !after) diff.removed.push(before);
    else if (before && after && toJson(before) !== toJson(after)) {
      diff.changed.push({ from: before, to: after });
    }
  }
  return diff;
}

/**
 * Revisions up to the newest one older than the cutoff: a prefix by number, so a clock that
 * stepped back can never leave a kept revision without the later ones its rule set is built from.
 */
const PRUNE_PREFIX = `revision <= (SELECT coalesce(max(revision), 0) FROM rule_revisions WHERE at < ?)`;

/** Revisions the audit prune at `beforeMs` would delete. */
export function countRevisionsBefore(db: Database, beforeMs: number): number {
  return prepared(db, `SELECT count(*) FROM rule_revisions WHERE ${PRUNE_PREFIX}`)
    .pluck()
    .get(beforeMs) as number;
}

/** Deletes revisions older than `beforeMs` with their changes; newer revisions stay complete. */
export function deleteRevisionsBefore(db: Database, beforeMs: number): number {
  return immediate(
    db,
    () => prepared(db, `DELETE FROM rule_revisions WHERE ${PRUNE_PREFIX}`).run(beforeMs).changes,
  );
}
