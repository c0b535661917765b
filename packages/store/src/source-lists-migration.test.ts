// Proves V005 on a store left at V004 by an older binary: existing rules get empty source lists,
// a rule-revision snapshot written before V005 reads back with empty lists, lists round-trip
// through insert, edit, list and the SQLite-rendered Rule JSON, and the table's CHECKs refuse
// text that is not a JSON array or holds more than 64 entries.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { loadMigrations } from './migrate.js';
import { openStore } from './open.js';
import { ruleSetAt } from './rule-revisions.js';
import {
  definitionOf,
  getRuleOrThrow,
  insertRule,
  listRules,
  listRulesJson,
  replaceRuleDefinition,
} from './rules.js';
import { tempStores } from './store.harness.js';

const temp = tempStores();
const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const T0 = Date.UTC(2026, 4, 1);

/** A data dir whose state.db stops at V004, holding one rule and one pre-V005 revision. */
function v4Store(): string {
  const dir = temp.dir();
  const old = openStore(dir, {
    migrations: loadMigrations().filter((migration) => migration.version <= 4),
  });
  try {
    assert.equal(old.schemaVersion, 4);
    old.db.exec(`
      INSERT INTO users (user_id, role, display_name, created_at, updated_at)
        VALUES ('root', 'superadmin', 'Root', ${T0}, ${T0});
      INSERT INTO clients (client_id, client_name, provisioned_at) VALUES ('${EDGE}', 'edge-1', ${T0});
      INSERT INTO rules (rule_id, client_id, owner_user_id, protocol, listen_port, created_at,
          updated_at, last_state_change_at)
        VALUES (1, '${EDGE}', 'root', 'tcp', 18080, ${T0}, ${T0}, ${T0});
      INSERT INTO rule_targets (rule_id, idx, host, port) VALUES (1, 0, '10.0.0.1', 80);
      INSERT INTO rule_revisions (revision, at, actor, action, summary)
        VALUES (1, ${T0}, 'root', 'push', 'push'), (2, ${T0}, 'root', 'remove', 'remove');
    `);
    // The definition JSON a V004 binary wrote: no source lists.
    const before = {
      ruleId: 2,
      clientId: EDGE,
      ownerUserId: 'root',
      protocol: 'tcp',
      listenPort: 18081,
      listenPortEnd: null,
      preferIpv6: false,
      healthCheckIntervalSecs: null,
      sniPattern: null,
      rateLimit: null,
      targets: [{ host: '10.0.0.2', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
    };
    old.db
      .prepare(
        `INSERT INTO rule_revision_changes (revision, rule_id, before_json, after_json)
         VALUES (2, 2, ?, NULL)`,
      )
      .run(JSON.stringify(before));
  } finally {
    old.close();
  }
  return dir;
}

describe('V005 rule source lists', () => {
  it('gives existing rules and old revision snapshots empty lists', () => {
    const store = openStore(v4Store());
    try {
      assert.ok(store.schemaVersion >= 5);
      const rule = getRuleOrThrow(store.db, 1);
      assert.deepEqual(rule.allowedSources, []);
      assert.deepEqual(rule.deniedSources, []);
      const [listed] = JSON.parse(listRulesJson(store.db)) as Record<string, unknown>[];
      assert.deepEqual(listed?.['allowed_sources'], []);
      assert.deepEqual(listed['denied_sources'], []);
      const old = ruleSetAt(store.db, 1).at.get(2);
      assert.ok(old);
      assert.deepEqual(old.allowedSources, []);
      assert.deepEqual(old.deniedSources, []);
    } finally {
      store.close();
    }
  });

  it('round-trips both lists through insert, edit, list and the rendered JSON', () => {
    const store = openStore(v4Store());
    try {
      const rule = insertRule(store.db, {
        clientId: EDGE,
        ownerUserId: 'root',
        protocol: 'tcp',
        listenPort: 18090,
        allowedSources: ['10.0.0.0/8', '2001:db8::/32'],
        deniedSources: ['10.1.0.0/16'],
        targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
        now: T0,
      });
      assert.deepEqual(rule.allowedSources, ['10.0.0.0/8', '2001:db8::/32']);
      assert.deepEqual(rule.deniedSources, ['10.1.0.0/16']);
      const edited = replaceRuleDefinition(
        store.db,
        { ...definitionOf(rule), allowedSources: [], deniedSources: ['192.0.2.1/32'] },
        { kind: 'active' },
        T0 + 1,
      );
      assert.deepEqual(edited.allowedSources, []);
      assert.deepEqual(edited.deniedSources, ['192.0.2.1/32']);
      const listed = listRules(store.db).find((entry) => entry.ruleId === rule.ruleId);
      assert.deepEqual(listed?.deniedSources, ['192.0.2.1/32']);
      const json = (JSON.parse(listRulesJson(store.db)) as Record<string, unknown>[]).find(
        (entry) => entry['id'] === rule.ruleId,
      );
      assert.deepEqual(json?.['denied_sources'], ['192.0.2.1/32']);
      assert.deepEqual(json['allowed_sources'], []);
    } finally {
      store.close();
    }
  });

  it('refuses a list that is not a JSON array or holds more than 64 entries', () => {
    const store = openStore(v4Store());
    try {
      const set = (value: string) =>
        store.db.prepare('UPDATE rules SET allowed_sources = ? WHERE rule_id = 1').run(value);
      for (const bad of [
        'not json',
        '{"a":1}',
        '"10.0.0.0/8"',
        JSON.stringify(new Array(65).fill('10.0.0.0/8')),
      ]) {
        assert.throws(() => set(bad), /CHECK constraint failed/, bad);
      }
      set(JSON.stringify(new Array(64).fill('10.0.0.0/8')));
      assert.equal(getRuleOrThrow(store.db, 1).allowedSources.length, 64);
    } finally {
      store.close();
    }
  });
});
