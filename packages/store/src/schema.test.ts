// Proves the migrated schema equals the checked-in schema.sql snapshot and holds every table
// the seed lists, all STRICT, with explicit ON DELETE on every foreign key.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';

import { openStore } from './open.js';
import { SCHEMA_SNAPSHOT_FILE, renderSchemaSnapshot } from './schema-snapshot.js';
import { tempStores } from './store.harness.js';

const temp = tempStores();

const SEED_TABLES = [
  'users',
  'credentials',
  'grants',
  'rules',
  'rule_targets',
  'audit',
  'rate_limit_owner',
  'traffic_quotas',
  'traffic_samples_1m',
  'traffic_samples_1h',
  'web_sessions',
  'login_attempts',
  'onboarding_setup',
  'client_enrollments',
  'clients',
  'server_settings',
];

describe('schema', () => {
  it('matches schema.sql (run `npm run schema:update -w @portunus/store` after a migration)', () => {
    assert.equal(
      renderSchemaSnapshot(),
      fs.readFileSync(SCHEMA_SNAPSHOT_FILE, 'utf8'),
      'schema.sql is stale: run `npm run build && npm run schema:update -w @portunus/store`',
    );
  });

  it('holds every table of the seed, STRICT, with checked foreign keys', () => {
    const store = openStore(temp.dir());
    try {
      const tables = store.db
        .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table'")
        .all() as { name: string; sql: string }[];
      const byName = new Map(tables.map((table) => [table.name, table.sql]));
      for (const name of SEED_TABLES) {
        const sql = byName.get(name);
        assert.ok(sql, `table ${name} is missing`);
        assert.match(sql, /\)\s*STRICT(,\s*WITHOUT ROWID)?\s*$/, `${name} is not STRICT`);
        const references = sql.match(/REFERENCES [^,]*/g) ?? [];
        for (const reference of references) {
          assert.match(reference, /ON DELETE (CASCADE|SET NULL|RESTRICT)/, `${name}: ${reference}`);
        }
      }
      assert.deepEqual(store.db.pragma('foreign_key_check'), []);
      assert.equal(store.db.pragma('auto_vacuum', { simple: true }), 2);
      assert.equal(store.db.pragma('application_id', { simple: true }), 1347572853);
    } finally {
      store.close();
    }
  });
});
