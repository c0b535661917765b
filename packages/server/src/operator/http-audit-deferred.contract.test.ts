// Proves that a change the store committed is answered as a success even when its audit row then fails: the row's insert is refused by a trigger on the real SQLite file (the change itself is not), and the caller still gets 201, the user exists, one operator.audit_deferred error is logged naming the request, and once the store accepts rows again later mutations are audited as before.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { getUser } from '@portunus/store';
import { recordingLogger } from '@portunus/test-support';

import { OPERATOR_EVENTS } from './app.js';
import { ContractHarness, TEST_PASSWORD } from './contract.harness.js';

describe('a committed change whose audit row fails', () => {
  const logger = recordingLogger();
  const h = new ContractHarness({ logger });
  let root = '';
  before(async () => {
    root = await h.addUser('root', 'superadmin');
  });
  after(() => h.close());

  it('still answers success, keeps the change and logs operator.audit_deferred', async () => {
    h.store.db.exec(
      "CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON main.audit BEGIN SELECT RAISE(ABORT, 'audit refused by test'); END",
    );
    const response = await h.bearer(root, {
      method: 'POST',
      url: '/v1/users',
      payload: { user_id: 'carol', display_name: 'Carol', initial_password: TEST_PASSWORD },
    });
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(getUser(h.store.db, 'carol')?.userId, 'carol');
    const deferred = await logger.waitFor(OPERATOR_EVENTS.auditDeferred);
    assert.equal(deferred['path'], '/v1/users');
    assert.equal(deferred['actor'], 'root');
    assert.equal(logger.count(OPERATOR_EVENTS.auditDeferred), 1);
  });

  it('audits the next change once the store accepts rows again', async () => {
    h.store.db.exec('DROP TRIGGER temp.refuse_audit');
    const response = await h.bearer(root, {
      method: 'POST',
      url: '/v1/users',
      payload: { user_id: 'dave', display_name: 'Dave', initial_password: TEST_PASSWORD },
    });
    assert.equal(response.statusCode, 201, response.body);
    const rows = h.auditRows().filter((row) => row.resourceValue === 'dave');
    assert.equal(rows.length, 1);
    assert.equal(logger.count(OPERATOR_EVENTS.auditDeferred), 1);
  });
});
