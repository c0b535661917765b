// Proves the client-identity writes on a real SQLite file: the name and address rules, revoke
// (idempotent, by id and by name, keeping the token hash), rename, address changes, delete only
// after revocation (cascading to rules), the connection record, and lookups by token hash.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  checkClientAddress,
  checkClientName,
  clientByTokenHash,
  deleteClient,
  getClient,
  insertClient,
  recordClientConnected,
  renameClient,
  revokeClient,
  revokeClientsByName,
  setClientAddress,
} from './clients.js';
import type { Store } from './open.js';
import { insertRule } from './rules.js';
import { tempStores, thrownCode } from './store.harness.js';
import { insertUser } from './users.js';

const temp = tempStores();

const NOW = Date.UTC(2026, 4, 1, 12, 0, 0);
const hash = (n: number): string => n.toString(16).padStart(64, '0');
const id = (n: number): string => `01J9CLIENTS00000000000000${n}`;

function seeded(): Store {
  const s = temp.open();
  insertClient(s.db, { clientId: id(1), clientName: 'alpha', tokenHash: hash(1), now: NOW });
  insertClient(s.db, { clientId: id(2), clientName: 'twin', tokenHash: hash(2), now: NOW });
  insertClient(s.db, { clientId: id(3), clientName: 'twin', tokenHash: hash(3), now: NOW });
  return s;
}

describe('client name and address rules', () => {
  it('accepts free-form names verbatim and refuses blank, control characters and > 255 bytes', () => {
    for (const name of ['a', 'Edge 1', '  padded  ', 'Ω東京', 'x'.repeat(255), 'é'.repeat(127)]) {
      assert.equal(checkClientName(name), name);
    }
    for (const name of [
      '',
      ' ',
      '\t',
      'a\nb',
      'a\u007fb',
      'a\u0085b',
      'a\u2028b',
      'a\u202eb',
      'x'.repeat(256),
    ]) {
      assert.equal(
        thrownCode(() => checkClientName(name)),
        'invalid_client_name',
        JSON.stringify(name),
      );
    }
  });

  it('accepts bare IPs and host names and refuses ports, brackets and junk', () => {
    for (const address of ['203.0.113.9', '2001:db8::1', '::1', 'edge.example.com', 'localhost']) {
      assert.equal(checkClientAddress(address), address);
    }
    for (const address of [
      '',
      'edge.example.com:443',
      '203.0.113.9:80',
      '[2001:db8::1]',
      '[::1]:80',
      'http://edge',
      'edge/path',
      ' edge',
      '-edge.example',
      '999.1.1.1',
      'a'.repeat(254),
    ]) {
      assert.equal(
        thrownCode(() => checkClientAddress(address)),
        'invalid_client_address',
        address,
      );
    }
  });
});

describe('revoke', () => {
  it('revokes by id idempotently and keeps the token hash (token_revoked, not not_found)', () => {
    const s = seeded();
    assert.equal(revokeClient(s.db, id(1), NOW + 1).revokedAt, NOW + 1);
    assert.equal(revokeClient(s.db, id(1), NOW + 2).revokedAt, NOW + 1);
    assert.equal(clientByTokenHash(s.db, hash(1))?.revokedAt, NOW + 1);
    assert.equal(
      thrownCode(() => revokeClient(s.db, id(9), NOW)),
      'client_not_found',
    );
  });

  it('revokes every not-yet-revoked client of a name; an unknown name revokes nothing', () => {
    const s = seeded();
    revokeClient(s.db, id(2), NOW + 1);
    const revoked = revokeClientsByName(s.db, 'twin', NOW + 5);
    assert.deepEqual(
      revoked.map((client) => client.clientId),
      [id(3)],
    );
    assert.equal(getClient(s.db, id(2))?.revokedAt, NOW + 1);
    assert.equal(getClient(s.db, id(3))?.revokedAt, NOW + 5);
    assert.deepEqual(revokeClientsByName(s.db, 'twin', NOW + 6), []);
    assert.deepEqual(revokeClientsByName(s.db, 'nobody', NOW + 6), []);
    assert.equal(getClient(s.db, id(1))?.revokedAt, null);
  });
});

describe('rename, address, connection record', () => {
  it('renames verbatim and refuses a bad name or an unknown id without writing', () => {
    const s = seeded();
    assert.equal(renameClient(s.db, id(1), ' Alpha Prime ').clientName, ' Alpha Prime ');
    assert.equal(
      thrownCode(() => renameClient(s.db, id(1), ' ')),
      'invalid_client_name',
    );
    assert.equal(
      thrownCode(() => renameClient(s.db, id(9), 'x')),
      'client_not_found',
    );
    assert.equal(getClient(s.db, id(1))?.clientName, ' Alpha Prime ');
  });

  it('sets and clears the address', () => {
    const s = seeded();
    assert.equal(
      setClientAddress(s.db, id(1), 'edge.example.com').clientAddress,
      'edge.example.com',
    );
    assert.equal(
      thrownCode(() => setClientAddress(s.db, id(1), 'edge:1')),
      'invalid_client_address',
    );
    assert.equal(getClient(s.db, id(1))?.clientAddress, 'edge.example.com');
    assert.equal(setClientAddress(s.db, id(1), null).clientAddress, null);
    assert.equal(
      thrownCode(() => setClientAddress(s.db, id(9), null)),
      'client_not_found',
    );
  });

  it('records the last connection', () => {
    const s = seeded();
    recordClientConnected(s.db, id(1), '198.51.100.4:50000', NOW + 9);
    const client = getClient(s.db, id(1));
    assert.equal(client?.lastConnectedAt, NOW + 9);
    assert.equal(client.lastRemoteAddr, '198.51.100.4:50000');
  });
});

describe('deleteClient', () => {
  it('refuses a client that is not revoked, then deletes it with its rules', () => {
    const s = seeded();
    insertUser(s.db, { userId: 'root', role: 'superadmin', displayName: 'Root', now: NOW });
    const rule = insertRule(s.db, {
      clientId: id(1),
      ownerUserId: 'root',
      protocol: 'tcp',
      listenPort: 18080,
      listenPortEnd: null,
      preferIpv6: false,
      targets: [{ host: '127.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
      state: { kind: 'active' },
      now: NOW,
    });
    assert.equal(
      thrownCode(() => deleteClient(s.db, id(1))),
      'client_not_revoked',
    );
    assert.ok(getClient(s.db, id(1)));
    revokeClient(s.db, id(1), NOW + 1);
    const removed = deleteClient(s.db, id(1));
    assert.equal(removed.client.clientId, id(1));
    assert.deepEqual(removed.removedRuleIds, [rule.ruleId]);
    assert.equal(getClient(s.db, id(1)), undefined);
    assert.equal(clientByTokenHash(s.db, hash(1)), undefined);
    assert.equal(
      thrownCode(() => deleteClient(s.db, id(1))),
      'client_not_found',
    );
  });
});
