// Proves the store-held TLS identity: serve's record is an idempotent upsert; restore reinstalls
// the backup's pair as server.crt/server.key (key 0600, marker written, no pending files left),
// replaces a pair this program generated, never touches an operator's pair, and refuses a row
// whose key does not belong to its certificate before anything in the data dir changes.
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { backupStore } from './backup.js';
import { openStore } from './open.js';
import { restoreStore } from './restore.js';
import { assertFails, tempStores } from './store.harness.js';
import { getTlsIdentity, recordTlsIdentity, type StoredTlsIdentity } from './tls-identity.js';

const temp = tempStores();
const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/tls');

function fixture(name: 'test' | 'other'): StoredTlsIdentity {
  const certPem = fs.readFileSync(path.join(FIXTURES, `${name}.crt`), 'utf8');
  const keyPem = fs.readFileSync(path.join(FIXTURES, `${name}.key`), 'utf8');
  const raw = new X509Certificate(certPem).raw;
  return { certPem, keyPem, fingerprintSha256: createHash('sha256').update(raw).digest('hex') };
}

async function backupHolding(identity: StoredTlsIdentity | undefined): Promise<string> {
  const store = openStore(temp.dir());
  try {
    if (identity !== undefined) recordTlsIdentity(store.db, identity, 1);
  } finally {
    store.close();
  }
  const out = path.join(temp.dir(), 'b.db');
  await backupStore(store.paths.dataDir, out);
  return out;
}

describe('server TLS identity in the store', () => {
  it('records once, replaces on a new certificate, and reads back', () => {
    const store = openStore(temp.dir());
    try {
      assert.equal(getTlsIdentity(store.db), undefined);
      assert.equal(recordTlsIdentity(store.db, fixture('test'), 1), true);
      assert.equal(recordTlsIdentity(store.db, fixture('test'), 2), false);
      assert.equal(recordTlsIdentity(store.db, fixture('other'), 3), true);
      assert.deepEqual(getTlsIdentity(store.db), fixture('other'));
    } finally {
      store.close();
    }
  });

  it('restore writes the pair into a fresh data dir', async () => {
    const backup = await backupHolding(fixture('test'));
    const target = path.join(temp.dir(), 'data');
    assert.equal(restoreStore(target, backup).tls, 'restored');
    assert.equal(fs.readFileSync(path.join(target, 'server.key'), 'utf8'), fixture('test').keyPem);
    assert.equal(fs.readFileSync(path.join(target, 'server.crt'), 'utf8'), fixture('test').certPem);
    assert.equal(fs.statSync(path.join(target, 'server.key')).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(target).sort(), [
      '.portunus-autocert',
      'server.crt',
      'server.key',
      'state.db',
      'state.db.lock',
    ]);
  });

  it('restore replaces a generated pair but keeps an operator pair byte for byte', async () => {
    const backup = await backupHolding(fixture('test'));
    const generated = temp.dir();
    fs.writeFileSync(path.join(generated, '.portunus-autocert'), '');
    fs.writeFileSync(path.join(generated, 'server.crt'), fixture('other').certPem);
    fs.writeFileSync(path.join(generated, 'server.key'), fixture('other').keyPem, { mode: 0o600 });
    assert.equal(restoreStore(generated, backup).tls, 'restored');
    assert.equal(
      fs.readFileSync(path.join(generated, 'server.key'), 'utf8'),
      fixture('test').keyPem,
    );

    const operator = temp.dir();
    fs.writeFileSync(path.join(operator, 'server.crt'), fixture('other').certPem);
    fs.writeFileSync(path.join(operator, 'server.key'), fixture('other').keyPem, { mode: 0o600 });
    assert.equal(restoreStore(operator, backup).tls, 'kept_operator');
    assert.equal(
      fs.readFileSync(path.join(operator, 'server.key'), 'utf8'),
      fixture('other').keyPem,
    );
    assert.equal(fs.existsSync(path.join(operator, '.portunus-autocert')), false);
  });

  it('a backup without the row restores the store and leaves TLS to serve', async () => {
    const target = temp.dir();
    assert.equal(restoreStore(target, await backupHolding(undefined)).tls, 'none');
    assert.equal(fs.existsSync(path.join(target, 'server.crt')), false);
  });

  it('refuses a row whose key does not match its certificate, changing nothing', async () => {
    const mismatched = { ...fixture('test'), keyPem: fixture('other').keyPem };
    const backup = await backupHolding(mismatched);
    const target = temp.dir();
    assertFails('store_corrupt', 7, () => restoreStore(target, backup));
    assert.deepEqual(fs.readdirSync(target), []);
  });
});
