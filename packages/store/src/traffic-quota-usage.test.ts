// Proves quota usage moves with the traffic round that produced it (issue 12: usage = bytes in +
// out of the owner's rules on that client, one transaction per round, usage survives server
// restarts because it lives in the store): a round adds each owner's bytes to that owner's quota
// on the reporting client only; a round that fails part-way stores neither samples, baselines
// nor usage; and a reopened store carries on from the stored usage and baselines.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { insertClient } from './clients.js';
import { openStore, type Store } from './open.js';
import { getQuotaOrThrow, writeQuota } from './quotas.js';
import { insertRule } from './rules.js';
import { tempStores } from './store.harness.js';
import { recordTrafficRound } from './traffic.js';
import { insertUser } from './users.js';

const temp = tempStores();
const C1 = '01JD0000000000000000000001';
const C2 = '01JD0000000000000000000002';
const T0 = Date.UTC(2026, 4, 1, 12, 0, 0);

/** alice (two rules on C1, one on C2) and bob (one on C1), each with a quota on C1 only. */
function seed(store: Store): { a1: number; a2: number; aOther: number; b: number } {
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
  for (const userId of ['alice', 'bob']) {
    writeQuota(store.db, {
      userId,
      clientId: C1,
      monthlyBytes: 1_000_000,
      billingAnchor: T0,
      currentPeriodStartedAt: T0,
      currentPeriodBytesUsed: 0,
      exhaustedAt: null,
      enforcement: 'hard',
      period: 'monthly',
      resetDay: null,
      alertsFired: [],
      now: T0,
    });
  }
  return {
    a1: rule(C1, 'alice', 20000),
    a2: rule(C1, 'alice', 20001),
    aOther: rule(C2, 'alice', 20002),
    b: rule(C1, 'bob', 20003),
  };
}

const used = (store: Store, userId: string): number =>
  getQuotaOrThrow(store.db, userId, C1).currentPeriodBytesUsed;
const count = (store: Store, table: string): number =>
  store.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;

describe('quota usage in traffic rounds', () => {
  it("adds in + out of the owner's rules on the reporting client to that quota only", () => {
    const store = temp.open();
    const { a1, a2, aOther, b } = seed(store);
    const round = recordTrafficRound(store.db, C1, T0, [
      { ruleId: a1, bytesIn: 100, bytesOut: 10 },
      { ruleId: a2, bytesIn: 200, bytesOut: 20 },
      { ruleId: b, bytesIn: 5, bytesOut: 0 },
    ]);
    assert.equal(used(store, 'alice'), 330);
    assert.equal(used(store, 'bob'), 5);
    assert.deepEqual(
      round.quotas.map((change) => [change.quota.userId, change.usedBefore]).sort(),
      [
        ['alice', 0],
        ['bob', 0],
      ],
    );
    // alice's rule on C2 has no quota there: history grows, no quota does.
    const other = recordTrafficRound(store.db, C2, T0, [
      { ruleId: aOther, bytesIn: 999, bytesOut: 1 },
    ]);
    assert.deepEqual(other.quotas, []);
    assert.equal(used(store, 'alice'), 330);
  });

  it('stores nothing of a round that fails part-way: samples, baselines and usage together', () => {
    const store = temp.open();
    const { a1, b } = seed(store);
    // bob's quota update is the last write of the round; make it fail.
    store.db.exec(`CREATE TEMP TRIGGER fail_bob BEFORE UPDATE ON traffic_quotas
      WHEN NEW.user_id = 'bob' BEGIN SELECT RAISE(ABORT, 'injected'); END`);
    assert.throws(
      () =>
        recordTrafficRound(store.db, C1, T0, [
          { ruleId: a1, bytesIn: 100, bytesOut: 10 },
          { ruleId: b, bytesIn: 5, bytesOut: 0 },
        ]),
      /injected/,
    );
    assert.equal(used(store, 'alice'), 0);
    assert.equal(count(store, 'traffic_samples_1m'), 0);
    assert.equal(count(store, 'traffic_rule_counters'), 0);
    store.db.exec('DROP TRIGGER fail_bob');
    // The next round carries every byte, since no baseline moved.
    recordTrafficRound(store.db, C1, T0 + 5_000, [
      { ruleId: a1, bytesIn: 150, bytesOut: 10 },
      { ruleId: b, bytesIn: 5, bytesOut: 0 },
    ]);
    assert.equal(used(store, 'alice'), 160);
    assert.equal(used(store, 'bob'), 5);
  });

  it('keeps usage and baselines across a reopened store (a server restart)', () => {
    const dir = temp.dir();
    let store = openStore(dir);
    const { a1 } = seed(store);
    recordTrafficRound(store.db, C1, T0, [{ ruleId: a1, bytesIn: 1000, bytesOut: 24 }]);
    store.close();
    store = temp.track(openStore(dir));
    assert.equal(used(store, 'alice'), 1024);
    // The client kept running: only the bytes since the last round are new.
    recordTrafficRound(store.db, C1, T0 + 5_000, [{ ruleId: a1, bytesIn: 1500, bytesOut: 24 }]);
    assert.equal(used(store, 'alice'), 1524);
  });
});
