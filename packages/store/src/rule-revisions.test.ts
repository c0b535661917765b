// Proves the rule-set revision log on a real store: a revision records full definitions, the rule
// set of any kept revision is rebuilt by undoing later ones, diffs name added/removed/changed
// rules, cascades (user removal, grant revocation, client deletion) record what they removed,
// discarding a never-sent push forgets it, pages and cursors work, and the audit prune drops a
// prefix of old revisions without breaking the newer ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Database } from 'better-sqlite3';

import { pruneAudit } from './audit-prune.js';
import { insertClient, revokeClient, deleteClient } from './clients.js';
import { deleteGrant, insertGrant } from './grants.js';
import {
  addRevisionChange,
  currentRuleSet,
  diffRuleSets,
  discardRuleHistory,
  headRevision,
  listRevisions,
  openRevision,
  recordRevision,
  removalChanges,
  ruleSetAt,
} from './rule-revisions.js';
import {
  definitionOf,
  deleteRule,
  getRuleOrThrow,
  insertRule,
  replaceRuleDefinition,
  type RuleDefinition,
} from './rules.js';
import { tempStores, thrownCode } from './store.harness.js';
import { deleteUser, insertUser } from './users.js';

const temp = tempStores();
const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const T0 = Date.UTC(2026, 4, 1);
const author = (at: number, actor = 'root') => ({ actor, at });

/** The rule set of a revision, by id. */
function rulesAt(db: Database, revision: number): RuleDefinition[] {
  return [...ruleSetAt(db, revision).at.values()].sort((a, b) => a.ruleId - b.ruleId);
}

function seeded() {
  const store = temp.open();
  const db = store.db;
  insertUser(db, { userId: 'root', role: 'superadmin', displayName: 'Root', now: T0 });
  insertUser(db, { userId: 'alice', role: 'user', displayName: 'Alice', now: T0 });
  insertClient(db, { clientId: EDGE, clientName: 'edge-1', now: T0 });
  const push = (listenPort: number, owner = 'root', at = T0): RuleDefinition => {
    const rule = insertRule(db, {
      clientId: EDGE,
      ownerUserId: owner,
      protocol: 'tcp',
      listenPort,
      targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
      now: at,
    });
    recordRevision(db, author(at, owner), 'push', `push ${rule.ruleId}`, [
      { ruleId: rule.ruleId, before: null, after: definitionOf(rule) },
    ]);
    return definitionOf(rule);
  };
  return { store, db, push };
}

describe('rule revisions', () => {
  it('rebuilds the rule set of every revision by undoing the later ones', () => {
    const { db, push } = seeded();
    const a = push(18080);
    const b = push(18081);
    const edited: RuleDefinition = {
      ...a,
      listenPort: 18090,
      rateLimit: { concurrentConnections: 5 },
      targets: [{ host: 'b.example', port: 81, portEnd: null, priority: 0, proxyProtocol: 'v1' }],
    };
    replaceRuleDefinition(db, edited, { kind: 'active' }, T0 + 3);
    recordRevision(db, author(T0 + 3), 'edit', 'edit a', [
      { ruleId: a.ruleId, before: a, after: edited },
    ]);
    const removal = removalChanges(db, [b.ruleId]);
    deleteRule(db, b.ruleId);
    recordRevision(db, author(T0 + 4), 'remove', 'remove b', removal);
    assert.equal(headRevision(db), 4);

    assert.deepEqual(rulesAt(db, 1), [a]);
    assert.deepEqual(rulesAt(db, 2), [a, b]);
    assert.deepEqual(rulesAt(db, 3), [edited, b]);
    assert.deepEqual(rulesAt(db, 4), [edited]);
    assert.deepEqual(ruleSetAt(db, 4).now, currentRuleSet(db));

    const { at, now } = ruleSetAt(db, 2);
    const diff = diffRuleSets(at, now);
    assert.deepEqual(diff.added, []);
    assert.deepEqual(diff.removed, [b]);
    assert.deepEqual(diff.changed, [{ from: a, to: edited }]);
  });

  it('refuses an unknown revision with revision_not_found', () => {
    const { db, push } = seeded();
    push(18080);
    for (const revision of [0, 2, 99, Number.NaN]) {
      assert.equal(
        thrownCode(() => ruleSetAt(db, revision)),
        'revision_not_found',
      );
    }
  });

  it('records nothing for a change that changes nothing, and merges repeats of one rule', () => {
    const { db, push } = seeded();
    const a = push(18080);
    assert.equal(recordRevision(db, author(T0 + 1), 'edit', 'nothing', []), undefined);
    const revision = openRevision(db, author(T0 + 2), 'restore', 'twice');
    const b = { ...a, listenPort: 18081 };
    addRevisionChange(db, revision, { ruleId: a.ruleId, before: a, after: b });
    addRevisionChange(db, revision, { ruleId: a.ruleId, before: b, after: a });
    const rows = db.prepare('SELECT count(*) FROM rule_revision_changes WHERE revision = ?');
    assert.equal(rows.pluck().get(revision), 0, 'a change and its undo net out');
  });

  it('records the rules a user removal, a grant revocation and a client deletion take along', () => {
    const { db, push } = seeded();
    insertGrant(db, {
      grantId: 'g1',
      userId: 'alice',
      clientId: EDGE,
      listenPortStart: 20000,
      listenPortEnd: 20010,
      protocols: ['tcp'],
      note: '',
      now: T0,
    });
    const granted = push(20001, 'alice');
    const rootRule = push(18080);
    insertUser(db, { userId: 'bob', role: 'user', displayName: 'Bob', now: T0 });
    const bobs = push(20002, 'bob');

    deleteGrant(db, 'g1', author(T0 + 10));
    deleteUser(db, 'bob', author(T0 + 11));
    revokeClient(db, EDGE, T0 + 12);
    deleteClient(db, EDGE, author(T0 + 13));
    const page = listRevisions(db);
    assert.deepEqual(
      page.revisions.slice(0, 3).map((revision) => [revision.action, revision.summary]),
      [
        ['client_deleted', `delete client edge-1 (${EDGE}): rules ${rootRule.ruleId}`],
        ['user_removed', `remove user bob: rules ${bobs.ruleId}`],
        ['grant_revoked', `revoke grant g1 of alice: rules ${granted.ruleId}`],
      ],
    );
    // Each cascade's revision holds what is needed to recreate what it removed.
    assert.deepEqual(rulesAt(db, 3), [granted, rootRule, bobs]);
    assert.deepEqual(rulesAt(db, 4), [rootRule, bobs]);
    assert.deepEqual(rulesAt(db, 5), [rootRule]);
    assert.deepEqual(rulesAt(db, 6), []);
  });

  it('forgets a push that never reached its client, and the revisions it leaves empty', () => {
    const { db, push } = seeded();
    const kept = push(18080);
    const lost = push(18081);
    discardRuleHistory(db, lost.ruleId, 2);
    deleteRule(db, lost.ruleId);
    assert.deepEqual(
      listRevisions(db).revisions.map((revision) => revision.revision),
      [1],
    );
    assert.deepEqual(rulesAt(db, 1), [kept]);
  });

  it('pages newest first with an opaque cursor, and refuses a forged one', () => {
    const { db, push } = seeded();
    for (let port = 18080; port < 18085; port += 1) push(port);
    const first = listRevisions(db, { limit: 2 });
    assert.deepEqual(
      first.revisions.map((revision) => revision.revision),
      [5, 4],
    );
    assert.ok(first.nextCursor);
    const second = listRevisions(db, { limit: 2, cursor: first.nextCursor });
    assert.deepEqual(
      second.revisions.map((revision) => revision.revision),
      [3, 2],
    );
    const last = listRevisions(db, { limit: 2, cursor: second.nextCursor ?? '' });
    assert.deepEqual(
      last.revisions.map((revision) => revision.revision),
      [1],
    );
    assert.equal(last.nextCursor, undefined);
    assert.equal(
      thrownCode(() => listRevisions(db, { cursor: 'bm9wZQ' })),
      'invalid_cursor',
    );
    assert.equal(
      thrownCode(() => listRevisions(db, { limit: 0 })),
      'invalid_limit',
    );
    assert.equal(
      thrownCode(() => listRevisions(db, { limit: 1001 })),
      'invalid_limit',
    );
  });

  it('is pruned with the audit log: a prefix of old revisions, newer ones still rebuild', () => {
    const { store, db, push } = seeded();
    const a = push(18080, 'root', T0);
    const b = push(18081, 'root', T0 + 60_000);
    // A clock that stepped back: revision 3 is older by time than revision 2.
    const c = push(18082, 'root', T0 - 1000);
    const dry = pruneAudit(store, T0 + 1, { dryRun: true });
    assert.equal(dry.revisions, 3, 'everything up to the newest old revision');
    const kept = pruneAudit(store, T0, { dryRun: false });
    assert.equal(kept.revisions, 3);
    assert.equal(headRevision(db), 0);
    const d = push(18083, 'root', T0 + 120_000);
    assert.equal(pruneAudit(store, T0 + 60_000, { dryRun: false }).revisions, 0);
    assert.deepEqual(rulesAt(db, 4), [a, b, c, d]);
    assert.equal(
      thrownCode(() => ruleSetAt(db, 1)),
      'revision_not_found',
    );
    assert.equal(getRuleOrThrow(db, a.ruleId).listenPort, 18080);
  });
});
