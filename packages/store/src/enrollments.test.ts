// Proves the enrollment-code lifecycle on a real SQLite file: issue (validation, supersede),
// redeem of a new, an existing (rotated, un-revoked), and a deleted-in-between client, and every
// refusal (unknown, used, superseded, expired) leaving the store as it was.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { clientByTokenHash, deleteClient, getClient, revokeClient } from './clients.js';
import { createEnrollment, redeemEnrollment, type NewEnrollment } from './enrollments.js';
import type { Store } from './open.js';
import { tempStores, thrownCode } from './store.harness.js';

const temp = tempStores();

const NOW = Date.UTC(2026, 4, 1, 12, 0, 0);
const CLIENT_ID = '01J9STORE00000000000000001';
const hash = (n: number): string => n.toString(16).padStart(64, '0');

function enrollment(overrides: Partial<NewEnrollment> = {}): NewEnrollment {
  return {
    clientId: CLIENT_ID,
    clientName: 'edge one',
    clientAddress: null,
    advertisedEndpoint: 'edge.example.com:7443',
    codeHash: hash(1),
    now: NOW,
    ttlSecs: 600,
    ...overrides,
  };
}

function enrollmentRows(target: Store): unknown[] {
  return target.db.prepare('SELECT * FROM client_enrollments ORDER BY enrollment_id').all();
}

describe('createEnrollment', () => {
  it('stores the code hash with its expiry and answers what it issued', () => {
    const s = temp.open();
    const issued = createEnrollment(s.db, enrollment({ clientAddress: '203.0.113.7' }));
    assert.deepEqual(issued, {
      clientId: CLIENT_ID,
      clientName: 'edge one',
      issuedAt: NOW,
      expiresAt: NOW + 600_000,
    });
    const row = enrollmentRows(s)[0] as Record<string, unknown>;
    assert.equal(row['code_hash'], hash(1));
    assert.equal(row['client_address'], '203.0.113.7');
    assert.equal(row['advertised_endpoint'], 'edge.example.com:7443');
    assert.equal(row['consumed_at'], null);
    // No client row until the code is redeemed.
    assert.equal(getClient(s.db, CLIENT_ID), undefined);
  });

  it('accepts ttl 1 and 86400 and refuses 0, 86401 and fractions without writing', () => {
    const s = temp.open();
    createEnrollment(s.db, enrollment({ ttlSecs: 1, codeHash: hash(1) }));
    createEnrollment(s.db, enrollment({ ttlSecs: 86_400, codeHash: hash(2) }));
    const before = enrollmentRows(s);
    for (const ttlSecs of [0, -1, 86_401, 1.5, Number.NaN]) {
      assert.equal(
        thrownCode(() => createEnrollment(s.db, enrollment({ ttlSecs, codeHash: hash(3) }))),
        'invalid_enrollment_ttl',
        String(ttlSecs),
      );
    }
    assert.deepEqual(enrollmentRows(s), before);
  });

  it('validates the name and the address before writing', () => {
    const s = temp.open();
    for (const clientName of [
      '',
      '   ',
      'a\u0000b',
      'tab\there',
      'x'.repeat(256),
      'é'.repeat(128),
    ]) {
      assert.equal(
        thrownCode(() => createEnrollment(s.db, enrollment({ clientName }))),
        'invalid_client_name',
        JSON.stringify(clientName),
      );
    }
    for (const clientAddress of ['', 'host:80', '1.2.3.4:80', '[::1]', '::1]:80', 'a b', '1.2.3']) {
      assert.equal(
        thrownCode(() => createEnrollment(s.db, enrollment({ clientAddress }))),
        'invalid_client_address',
        clientAddress,
      );
    }
    assert.deepEqual(enrollmentRows(s), []);
    // Stored verbatim: spaces, case and Unicode survive.
    const issued = createEnrollment(s.db, enrollment({ clientName: '  Édge Ω  ' }));
    assert.equal(issued.clientName, '  Édge Ω  ');
  });

  it('supersedes every unredeemed code of the same client, not of others', () => {
    const s = temp.open();
    createEnrollment(s.db, enrollment({ codeHash: hash(1) }));
    createEnrollment(
      s.db,
      enrollment({ clientId: '01J9STORE00000000000000002', codeHash: hash(9) }),
    );
    createEnrollment(s.db, enrollment({ codeHash: hash(2), now: NOW + 1000 }));
    assert.equal(
      thrownCode(() =>
        redeemEnrollment(s.db, { codeHash: hash(1), tokenHash: hash(100), now: NOW + 2000 }),
      ),
      'enrollment_used',
    );
    assert.equal(
      redeemEnrollment(s.db, { codeHash: hash(9), tokenHash: hash(101), now: NOW + 2000 }).clientId,
      '01J9STORE00000000000000002',
    );
    assert.equal(
      redeemEnrollment(s.db, { codeHash: hash(2), tokenHash: hash(102), now: NOW + 2000 }).clientId,
      CLIENT_ID,
    );
  });
});

describe('redeemEnrollment', () => {
  it('creates a new client with the token hash and consumes the code', () => {
    const s = temp.open();
    createEnrollment(s.db, enrollment({ clientAddress: 'edge-1.example.net' }));
    const redeemed = redeemEnrollment(s.db, {
      codeHash: hash(1),
      tokenHash: hash(50),
      now: NOW + 5,
    });
    assert.deepEqual(redeemed, {
      clientId: CLIENT_ID,
      clientName: 'edge one',
      advertisedEndpoint: 'edge.example.com:7443',
      clientAddress: 'edge-1.example.net',
      existed: false,
    });
    const client = clientByTokenHash(s.db, hash(50));
    assert.equal(client?.clientId, CLIENT_ID);
    assert.equal(client.enrolled, true);
    assert.equal(client.provisionedAt, NOW + 5);
    assert.equal(client.revokedAt, null);
    assert.equal(
      thrownCode(() =>
        redeemEnrollment(s.db, { codeHash: hash(1), tokenHash: hash(51), now: NOW + 6 }),
      ),
      'enrollment_used',
    );
    assert.equal(clientByTokenHash(s.db, hash(51)), undefined);
  });

  it('rotates an existing client: new token, revocation cleared, address kept unless given', () => {
    const s = temp.open();
    createEnrollment(s.db, enrollment({ clientAddress: '198.51.100.1' }));
    redeemEnrollment(s.db, { codeHash: hash(1), tokenHash: hash(60), now: NOW });
    revokeClient(s.db, CLIENT_ID, NOW + 10);
    // A re-enrollment code carries no address: the row keeps its own.
    createEnrollment(
      s.db,
      enrollment({ codeHash: hash(2), now: NOW + 20, clientName: 'old name' }),
    );
    s.db.prepare("UPDATE clients SET client_name = 'renamed' WHERE client_id = ?").run(CLIENT_ID);
    const redeemed = redeemEnrollment(s.db, {
      codeHash: hash(2),
      tokenHash: hash(61),
      now: NOW + 30,
    });
    assert.equal(redeemed.existed, true);
    assert.equal(redeemed.clientName, 'renamed');
    assert.equal(redeemed.clientAddress, '198.51.100.1');
    assert.equal(clientByTokenHash(s.db, hash(60)), undefined);
    const client = clientByTokenHash(s.db, hash(61));
    assert.equal(client?.revokedAt, null);
    assert.equal(client.provisionedAt, NOW);
    const issuedAt = s.db
      .prepare('SELECT token_issued_at FROM clients WHERE client_id = ?')
      .pluck()
      .get(CLIENT_ID);
    assert.equal(issuedAt, NOW + 30);
    // A code with an address overwrites it.
    createEnrollment(
      s.db,
      enrollment({ codeHash: hash(3), now: NOW + 40, clientAddress: 'new.example' }),
    );
    redeemEnrollment(s.db, { codeHash: hash(3), tokenHash: hash(62), now: NOW + 50 });
    assert.equal(getClient(s.db, CLIENT_ID)?.clientAddress, 'new.example');
  });

  it('re-creates a client deleted between issue and redeem under the same id', () => {
    const s = temp.open();
    createEnrollment(s.db, enrollment());
    redeemEnrollment(s.db, { codeHash: hash(1), tokenHash: hash(70), now: NOW });
    createEnrollment(s.db, enrollment({ codeHash: hash(2), now: NOW + 1 }));
    // deleteClient removes the client's codes; simulate a code that outlived its client.
    s.db.prepare('DELETE FROM clients WHERE client_id = ?').run(CLIENT_ID);
    const redeemed = redeemEnrollment(s.db, {
      codeHash: hash(2),
      tokenHash: hash(71),
      now: NOW + 2,
    });
    assert.equal(redeemed.existed, false);
    assert.equal(getClient(s.db, CLIENT_ID)?.clientName, 'edge one');
  });

  it('refuses an unknown code and an expired one, which stays unconsumed', () => {
    const s = temp.open();
    createEnrollment(s.db, enrollment({ ttlSecs: 60 }));
    assert.equal(
      thrownCode(() =>
        redeemEnrollment(s.db, { codeHash: hash(999), tokenHash: hash(80), now: NOW }),
      ),
      'enrollment_invalid',
    );
    const before = enrollmentRows(s);
    assert.equal(
      thrownCode(() =>
        redeemEnrollment(s.db, { codeHash: hash(1), tokenHash: hash(80), now: NOW + 60_000 }),
      ),
      'enrollment_expired',
    );
    assert.deepEqual(enrollmentRows(s), before);
    assert.equal(getClient(s.db, CLIENT_ID), undefined);
    // One millisecond earlier it was still good.
    assert.equal(
      redeemEnrollment(s.db, { codeHash: hash(1), tokenHash: hash(80), now: NOW + 59_999 }).existed,
      false,
    );
  });

  it('a revocation supersedes an outstanding code; delete removes the codes', () => {
    const s = temp.open();
    createEnrollment(s.db, enrollment());
    redeemEnrollment(s.db, { codeHash: hash(1), tokenHash: hash(90), now: NOW });
    createEnrollment(s.db, enrollment({ codeHash: hash(2), now: NOW + 1 }));
    revokeClient(s.db, CLIENT_ID, NOW + 2);
    assert.equal(
      thrownCode(() =>
        redeemEnrollment(s.db, { codeHash: hash(2), tokenHash: hash(91), now: NOW + 3 }),
      ),
      'enrollment_used',
    );
    deleteClient(s.db, CLIENT_ID);
    assert.deepEqual(enrollmentRows(s), []);
  });
});
