// Proves the traffic accounting on a real store file: per-rule deltas summed per owner into the
// owner's minute sample, restarts of the client re-based without double counting, a reopened
// store (a server restart) carrying on from the stored baselines, the hourly rollup (idempotent,
// and hours not rolled yet still visible hourly), retention with incremental_vacuum, and a round
// that races a removed rule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { insertClient } from './clients.js';
import { openStore, type Store } from './open.js';
import { deleteRule, insertRule } from './rules.js';
import { tempStores } from './store.harness.js';
import {
  HOUR_MS,
  MINUTE_MS,
  counterDelta,
  maintainTraffic,
  queryTraffic,
  recordTrafficRound,
} from './traffic.js';
import { insertUser } from './users.js';

const temp = tempStores();
const C1 = '01JD0000000000000000000001';
const C2 = '01JD0000000000000000000002';
const T0 = Date.UTC(2026, 4, 1, 12, 0, 0);

function seed(store: Store): { a: number; b: number; c: number } {
  for (const userId of ['alice', 'bob']) {
    insertUser(store.db, { userId, role: 'user', displayName: userId, now: T0 });
  }
  insertClient(store.db, { clientId: C1, clientName: 'edge-1', now: T0 });
  insertClient(store.db, { clientId: C2, clientName: 'edge-2', now: T0 });
  const rule = (clientId: string, ownerUserId: string, listenPort: number): number =>
    insertRule(store.db, {
      clientId,
      ownerUserId,
      protocol: 'tcp',
      listenPort,
      targets: [{ host: '192.0.2.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
      now: T0,
    }).ruleId;
  return { a: rule(C1, 'alice', 20000), b: rule(C1, 'alice', 20001), c: rule(C1, 'bob', 20002) };
}

const sum = (store: Store, sql: string): number => store.db.prepare(sql).pluck().get() as number;

describe('counterDelta', () => {
  it('subtracts the baseline, re-bases a counter that went backwards, saturates bad input', () => {
    assert.deepEqual(counterDelta(undefined, { bytesIn: 5, bytesOut: 7 }), {
      bytesIn: 5,
      bytesOut: 7,
      rebased: false,
    });
    assert.deepEqual(counterDelta({ bytesIn: 5, bytesOut: 7 }, { bytesIn: 9, bytesOut: 7 }), {
      bytesIn: 4,
      bytesOut: 0,
      rebased: false,
    });
    // The client restarted the rule: its counters began again at zero.
    assert.deepEqual(counterDelta({ bytesIn: 500, bytesOut: 700 }, { bytesIn: 3, bytesOut: 900 }), {
      bytesIn: 3,
      bytesOut: 900,
      rebased: true,
    });
    assert.deepEqual(counterDelta(undefined, { bytesIn: -4, bytesOut: Number.NaN }), {
      bytesIn: 0,
      bytesOut: 0,
      rebased: false,
    });
  });
});

describe('recordTrafficRound', () => {
  it('adds each round once per owner and minute, and a client restart neither loses nor doubles', () => {
    const store = temp.open();
    const { a, b, c } = seed(store);
    const r1 = recordTrafficRound(store.db, C1, T0 + 5_000, [
      { ruleId: a, bytesIn: 100, bytesOut: 1000 },
      { ruleId: b, bytesIn: 10, bytesOut: 20 },
      { ruleId: c, bytesIn: 1, bytesOut: 2 },
    ]);
    assert.deepEqual(
      r1.owners.sort((x, y) => x.userId.localeCompare(y.userId)),
      [
        { userId: 'alice', bytesIn: 110, bytesOut: 1020 },
        { userId: 'bob', bytesIn: 1, bytesOut: 2 },
      ],
    );
    // Same minute, counters grew: only the growth is added.
    recordTrafficRound(store.db, C1, T0 + 10_000, [
      { ruleId: a, bytesIn: 150, bytesOut: 1000 },
      { ruleId: b, bytesIn: 10, bytesOut: 20 },
    ]);
    // Next minute: the client restarted, rule a's counters start over.
    const r3 = recordTrafficRound(store.db, C1, T0 + MINUTE_MS + 5_000, [
      { ruleId: a, bytesIn: 7, bytesOut: 3 },
    ]);
    assert.deepEqual(r3.rebased, [a]);
    recordTrafficRound(store.db, C1, T0 + MINUTE_MS + 10_000, [
      { ruleId: a, bytesIn: 17, bytesOut: 3 },
    ]);
    const alice = queryTraffic(store.db, { kind: 'user', userId: 'alice' }, '1m', T0, T0 + HOUR_MS);
    assert.deepEqual(alice, [
      { ts: T0, bytesIn: 160, bytesOut: 1020 },
      { ts: T0 + MINUTE_MS, bytesIn: 17, bytesOut: 3 },
    ]);
    const all = queryTraffic(store.db, { kind: 'global' }, '1m', T0, T0 + HOUR_MS);
    assert.deepEqual(all[0], { ts: T0, bytesIn: 161, bytesOut: 1022 });
    const bobOnClient = queryTraffic(
      store.db,
      { kind: 'client', clientId: C1, userId: 'bob' },
      '1m',
      T0,
      T0 + HOUR_MS,
    );
    assert.deepEqual(bobOnClient, [{ ts: T0, bytesIn: 1, bytesOut: 2 }]);
    assert.deepEqual(
      queryTraffic(store.db, { kind: 'client', clientId: C2 }, '1m', T0, T0 + HOUR_MS),
      [],
    );
  });

  it('carries on from the stored baselines after the store is reopened (a server restart)', () => {
    const dir = temp.dir();
    let store = openStore(dir);
    const { a } = seed(store);
    recordTrafficRound(store.db, C1, T0, [{ ruleId: a, bytesIn: 1000, bytesOut: 2000 }]);
    store.close();
    store = temp.track(openStore(dir));
    // The client kept running: its counters continue from where they were.
    recordTrafficRound(store.db, C1, T0 + 5_000, [{ ruleId: a, bytesIn: 1500, bytesOut: 2000 }]);
    assert.deepEqual(queryTraffic(store.db, { kind: 'global' }, '1m', T0, T0 + MINUTE_MS), [
      { ts: T0, bytesIn: 1500, bytesOut: 2000 },
    ]);
  });

  it('ignores rules of other clients and rules removed meanwhile, and stores nothing for them', () => {
    const store = temp.open();
    const { a, c } = seed(store);
    deleteRule(store.db, c);
    const result = recordTrafficRound(store.db, C2, T0, [
      { ruleId: a, bytesIn: 5, bytesOut: 5 },
      { ruleId: c, bytesIn: 5, bytesOut: 5 },
      { ruleId: 999_999, bytesIn: 5, bytesOut: 5 },
    ]);
    assert.equal(result.ignored, 3);
    assert.equal(sum(store, 'SELECT count(*) FROM traffic_samples_1m'), 0);
    assert.equal(sum(store, 'SELECT count(*) FROM traffic_rule_counters'), 0);
  });

  it('writes nothing for idle rules after their baseline exists', () => {
    const store = temp.open();
    const { a, b } = seed(store);
    recordTrafficRound(store.db, C1, T0, [
      { ruleId: a, bytesIn: 5, bytesOut: 5 },
      { ruleId: b, bytesIn: 0, bytesOut: 0 },
    ]);
    const before = sum(store, 'SELECT total_changes()');
    const result = recordTrafficRound(store.db, C1, T0 + 5_000, [
      { ruleId: a, bytesIn: 5, bytesOut: 5 },
      { ruleId: b, bytesIn: 0, bytesOut: 0 },
    ]);
    assert.deepEqual(result.owners, []);
    assert.equal(sum(store, 'SELECT total_changes()'), before);
  });
});

describe('maintainTraffic', () => {
  it('rolls completed hours into 1h samples once, shows unrolled hours hourly, prunes by age', () => {
    const store = temp.open();
    const { a } = seed(store);
    recordTrafficRound(store.db, C1, T0 + 5 * MINUTE_MS, [{ ruleId: a, bytesIn: 10, bytesOut: 1 }]);
    recordTrafficRound(store.db, C1, T0 + 50 * MINUTE_MS, [
      { ruleId: a, bytesIn: 30, bytesOut: 2 },
    ]);
    const global = { kind: 'global' } as const;
    // Before any rollup the hourly view sums the minutes.
    assert.deepEqual(queryTraffic(store.db, global, '1h', T0, T0 + HOUR_MS), [
      { ts: T0, bytesIn: 30, bytesOut: 2 },
    ]);
    const first = maintainTraffic(store.db, T0 + HOUR_MS + MINUTE_MS);
    assert.equal(first.hoursRolled, 1);
    assert.equal(sum(store, 'SELECT count(*) FROM traffic_samples_1h'), 1);
    const again = maintainTraffic(store.db, T0 + HOUR_MS + 2 * MINUTE_MS);
    assert.equal(again.hoursRolled, 0);
    // Traffic in the next hour is visible hourly before its rollup, beside the rolled hour.
    recordTrafficRound(store.db, C1, T0 + HOUR_MS + 3 * MINUTE_MS, [
      { ruleId: a, bytesIn: 40, bytesOut: 2 },
    ]);
    assert.deepEqual(queryTraffic(store.db, global, '1h', T0, T0 + 2 * HOUR_MS), [
      { ts: T0, bytesIn: 30, bytesOut: 2 },
      { ts: T0 + HOUR_MS, bytesIn: 10, bytesOut: 0 },
    ]);
    // Eight days later the minutes are gone, the hours stay; 91 days later the hours go too.
    const week = maintainTraffic(store.db, T0 + 8 * 24 * HOUR_MS);
    assert.equal(week.pruned1m, 3);
    assert.equal(sum(store, 'SELECT count(*) FROM traffic_samples_1m'), 0);
    assert.deepEqual(queryTraffic(store.db, global, '1h', T0, T0 + 2 * HOUR_MS), [
      { ts: T0, bytesIn: 30, bytesOut: 2 },
      { ts: T0 + HOUR_MS, bytesIn: 10, bytesOut: 0 },
    ]);
    const quarter = maintainTraffic(store.db, T0 + 91 * 24 * HOUR_MS);
    assert.equal(quarter.pruned1h, 2);
    assert.equal(sum(store, 'SELECT count(*) FROM traffic_samples_1h'), 0);
    assert.equal(sum(store, 'PRAGMA freelist_count'), 0);
  });
});
