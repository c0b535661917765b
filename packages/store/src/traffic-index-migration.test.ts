// Proves V007 on a store left at V006 by an older binary: every 1h and 1m sample survives the
// upgrade, the new covering index exists, and the hourly query reads one user's rolled hours
// through it (the plan of the SQL queryTraffic really runs) while summing that user's clients
// per hour and appending the hour not rolled up yet from its minutes, oldest first.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Database } from 'better-sqlite3';

import { loadMigrations } from './migrate.js';
import { openStore } from './open.js';
import { tempStores } from './store.harness.js';
import { HOUR_MS, MINUTE_MS, queryTraffic } from './traffic.js';

const temp = tempStores();
const C1 = '01JD0000000000000000000001';
const C2 = '01JD0000000000000000000002';
const T0 = Date.UTC(2026, 4, 1, 12, 0, 0);

function samples(db: Database): unknown[] {
  return [
    db.prepare('SELECT * FROM traffic_samples_1h ORDER BY user_id, client_id, ts_hour').all(),
    db.prepare('SELECT * FROM traffic_samples_1m ORDER BY user_id, client_id, ts_minute').all(),
  ];
}

/** A data dir whose state.db stops at V006: alice on two clients, bob on one, 3 rolled hours. */
function v6Store(): { dir: string; before: unknown[] } {
  const dir = temp.dir();
  const old = openStore(dir, {
    migrations: loadMigrations().filter((migration) => migration.version <= 6),
  });
  try {
    assert.equal(old.schemaVersion, 6);
    old.db.exec(`
      INSERT INTO users (user_id, role, display_name, created_at, updated_at) VALUES
        ('alice', 'user', 'Alice', ${T0}, ${T0}), ('bob', 'user', 'Bob', ${T0}, ${T0});
      INSERT INTO clients (client_id, client_name, provisioned_at) VALUES
        ('${C1}', 'edge-1', ${T0}), ('${C2}', 'edge-2', ${T0});
      INSERT INTO traffic_samples_1h (user_id, client_id, ts_hour, bytes_in, bytes_out) VALUES
        ('alice', '${C1}', ${T0}, 10, 1), ('alice', '${C2}', ${T0}, 5, 2),
        ('alice', '${C1}', ${T0 + HOUR_MS}, 20, 3), ('alice', '${C2}', ${T0 + 2 * HOUR_MS}, 7, 0),
        ('bob', '${C1}', ${T0 + HOUR_MS}, 1000, 1000);
      INSERT INTO traffic_samples_1m (user_id, client_id, ts_minute, bytes_in, bytes_out) VALUES
        ('alice', '${C1}', ${T0 + 3 * HOUR_MS + MINUTE_MS}, 4, 4),
        ('alice', '${C2}', ${T0 + 3 * HOUR_MS + 9 * MINUTE_MS}, 1, 0),
        ('bob', '${C1}', ${T0 + 3 * HOUR_MS}, 99, 99);
      UPDATE server_settings SET traffic_last_rolled_up_hour = ${T0 + 3 * HOUR_MS} WHERE id = 1;
    `);
    return { dir, before: samples(old.db) };
  } finally {
    old.close();
  }
}

describe('V007 traffic_samples_1h_user', () => {
  it('keeps every sample and adds the covering index', () => {
    const { dir, before } = v6Store();
    const store = temp.track(openStore(dir));
    assert.ok(store.schemaVersion >= 7);
    assert.deepEqual(samples(store.db), before);
    const columns = store.db
      .prepare("SELECT name FROM pragma_index_info('traffic_samples_1h_user') ORDER BY seqno")
      .pluck()
      .all();
    assert.deepEqual(columns, ['user_id', 'ts_hour', 'bytes_in', 'bytes_out']);
  });

  it("reads a user's hours through the index and appends the unrolled hour in order", () => {
    const { dir } = v6Store();
    const store = temp.track(openStore(dir));
    // Spy on this fresh connection's prepares to see the SQL queryTraffic issues.
    const issued: string[] = [];
    const prepare = store.db.prepare.bind(store.db);
    store.db.prepare = (sql: string) => {
      issued.push(sql);
      return prepare(sql);
    };
    const user = { kind: 'user', userId: 'alice' } as const;
    assert.deepEqual(queryTraffic(store.db, user, '1h', T0, T0 + 4 * HOUR_MS), [
      { ts: T0, bytesIn: 15, bytesOut: 3 },
      { ts: T0 + HOUR_MS, bytesIn: 20, bytesOut: 3 },
      { ts: T0 + 2 * HOUR_MS, bytesIn: 7, bytesOut: 0 },
      { ts: T0 + 3 * HOUR_MS, bytesIn: 5, bytesOut: 4 },
    ]);
    // A range that ends before the rolled hours do reads no minutes.
    assert.deepEqual(queryTraffic(store.db, user, '1h', T0 + HOUR_MS, T0 + 2 * HOUR_MS), [
      { ts: T0 + HOUR_MS, bytesIn: 20, bytesOut: 3 },
    ]);
    const hours = issued.filter((sql) => sql.includes('FROM traffic_samples_1h'));
    assert.equal(hours.length, 1);
    const plan = prepare(`EXPLAIN QUERY PLAN ${hours[0]!}`)
      .all('alice', T0, T0 + HOUR_MS)
      .map((row) => (row as { detail: string }).detail);
    assert.deepEqual(plan, [
      'SEARCH traffic_samples_1h USING COVERING INDEX traffic_samples_1h_user (user_id=? AND ts_hour>? AND ts_hour<?)',
    ]);
  });
});
