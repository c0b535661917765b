// Proves the owner rate-limit envelopes on a real store: upsert replaces every cap (a PUT), get
// and list read back exactly what was stored, delete is idempotent, the owners of a client are the
// union of rule owners and envelope owners with their rule counts, the table's CHECKs refuse a
// zero cap, and envelopes go with their client or user (ON DELETE CASCADE).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { deleteClient, insertClient, revokeClient } from './clients.js';
import {
  deleteOwnerRateLimit,
  getOwnerRateLimit,
  getOwnerRateLimitOrThrow,
  listClientOwners,
  listOwnerRateLimits,
  upsertOwnerRateLimit,
} from './owner-rate-limits.js';
import { insertRule } from './rules.js';
import { tempStores, thrownCode } from './store.harness.js';
import { deleteUser, insertUser } from './users.js';

const temp = tempStores();
const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZZ1';
const EDGE2 = '01HZZZZZZZZZZZZZZZZZZZZZZ2';
const T0 = Date.UTC(2026, 4, 1);

function seeded() {
  const store = temp.open();
  const db = store.db;
  for (const userId of ['alice', 'bob', 'carol']) {
    insertUser(db, { userId, role: 'user', displayName: userId, now: T0 });
  }
  insertClient(db, { clientId: EDGE, clientName: 'edge-1', now: T0 });
  insertClient(db, { clientId: EDGE2, clientName: 'edge-2', now: T0 });
  const rule = (clientId: string, owner: string, listenPort: number) =>
    insertRule(db, {
      clientId,
      ownerUserId: owner,
      protocol: 'tcp',
      listenPort,
      targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
      now: T0,
    });
  return { store, db, rule };
}

describe('owner rate limits', () => {
  it('upserts, reads back and replaces every cap on a second PUT', () => {
    const { store, db } = seeded();
    try {
      const first = upsertOwnerRateLimit(db, {
        clientId: EDGE,
        ownerUserId: 'alice',
        rateLimit: { bandwidthInBps: 1000, bandwidthInBurst: 2000, concurrentConnections: 5 },
        now: T0,
      });
      assert.deepEqual(first, {
        clientId: EDGE,
        clientName: 'edge-1',
        ownerUserId: 'alice',
        rateLimit: { bandwidthInBps: 1000, bandwidthInBurst: 2000, concurrentConnections: 5 },
        updatedAt: T0,
      });
      const second = upsertOwnerRateLimit(db, {
        clientId: EDGE,
        ownerUserId: 'alice',
        rateLimit: { newConnectionsPerSec: 7 },
        now: T0 + 1,
      });
      assert.deepEqual(second.rateLimit, { newConnectionsPerSec: 7 });
      assert.equal(second.updatedAt, T0 + 1);
      assert.deepEqual(getOwnerRateLimit(db, EDGE, 'alice'), second);
      assert.equal(getOwnerRateLimit(db, EDGE2, 'alice'), undefined);
      assert.equal(
        thrownCode(() => getOwnerRateLimitOrThrow(db, EDGE, 'bob')),
        'owner_rate_limit_not_found',
      );
    } finally {
      store.close();
    }
  });

  it('deletes idempotently and lists a client’s envelopes by owner', () => {
    const { store, db } = seeded();
    try {
      for (const owner of ['carol', 'alice']) {
        upsertOwnerRateLimit(db, {
          clientId: EDGE,
          ownerUserId: owner,
          rateLimit: { bandwidthOutBps: 10 },
          now: T0,
        });
      }
      upsertOwnerRateLimit(db, {
        clientId: EDGE2,
        ownerUserId: 'bob',
        rateLimit: { bandwidthOutBps: 10 },
        now: T0,
      });
      assert.deepEqual(
        listOwnerRateLimits(db, EDGE).map((envelope) => envelope.ownerUserId),
        ['alice', 'carol'],
      );
      assert.equal(deleteOwnerRateLimit(db, EDGE, 'alice'), true);
      assert.equal(deleteOwnerRateLimit(db, EDGE, 'alice'), false);
      assert.deepEqual(
        listOwnerRateLimits(db, EDGE).map((envelope) => envelope.ownerUserId),
        ['carol'],
      );
    } finally {
      store.close();
    }
  });

  it('lists the owners of a client: rule owners ∪ envelope owners, with rule counts', () => {
    const { store, db, rule } = seeded();
    try {
      rule(EDGE, 'alice', 1001);
      rule(EDGE, 'alice', 1002);
      rule(EDGE, 'bob', 1003);
      rule(EDGE2, 'carol', 1004);
      upsertOwnerRateLimit(db, {
        clientId: EDGE,
        ownerUserId: 'bob',
        rateLimit: { concurrentConnections: 1 },
        now: T0,
      });
      upsertOwnerRateLimit(db, {
        clientId: EDGE,
        ownerUserId: 'carol',
        rateLimit: { concurrentConnections: 1 },
        now: T0,
      });
      assert.deepEqual(listClientOwners(db, EDGE), [
        { ownerUserId: 'alice', hasRateLimit: false, ruleCount: 2 },
        { ownerUserId: 'bob', hasRateLimit: true, ruleCount: 1 },
        { ownerUserId: 'carol', hasRateLimit: true, ruleCount: 0 },
      ]);
      assert.deepEqual(listClientOwners(db, '01HZZZZZZZZZZZZZZZZZZZZZZ9'), []);
    } finally {
      store.close();
    }
  });

  it('refuses a zero cap in the table itself, and the envelope goes with its user or client', () => {
    const { store, db } = seeded();
    try {
      assert.throws(
        () =>
          upsertOwnerRateLimit(db, {
            clientId: EDGE,
            ownerUserId: 'alice',
            rateLimit: { bandwidthInBps: 0 },
            now: T0,
          }),
        /CHECK constraint failed/,
      );
      assert.equal(getOwnerRateLimit(db, EDGE, 'alice'), undefined);
      for (const [clientId, owner] of [
        [EDGE, 'alice'],
        [EDGE2, 'bob'],
      ] as const) {
        upsertOwnerRateLimit(db, {
          clientId,
          ownerUserId: owner,
          rateLimit: { bandwidthInBps: 5 },
          now: T0,
        });
      }
      deleteUser(db, 'alice');
      assert.equal(getOwnerRateLimit(db, EDGE, 'alice'), undefined);
      revokeClient(db, EDGE2, T0);
      deleteClient(db, EDGE2, { actor: 'root', at: T0 });
      assert.equal(getOwnerRateLimit(db, EDGE2, 'bob'), undefined);
    } finally {
      store.close();
    }
  });
});
