// Proves an operator can answer "who removed rule N, from where" from the audit log alone: a real server (operator_token as _legacy), a rule seeded in its store, DELETE /v1/rules/N over real HTTP from 127.0.0.1, then GET /v1/audit names the actor, the peer address and the rule.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { insertClient, insertRule, openStore } from '@portunus/store';
import type { RunningProcess } from '@portunus/test-support';

import { Harness, OperatorHttp, SLOW_STEP_MS, listenersOf } from './harness.js';

const harness = new Harness();
after(() => harness.close());

async function stop(server: RunningProcess): Promise<void> {
  server.kill('SIGTERM');
  assert.equal(await server.exited(SLOW_STEP_MS), 0, server.stderr());
}

describe('the audit trail over real HTTP', () => {
  it('answers who removed rule N, and from where', async () => {
    const token = randomBytes(32).toString('base64url');
    const dataDir = harness.newDataDir();
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dataDir, 'server.toml'), `operator_token = "${token}"\n`, {
      mode: 0o600,
    });
    // The first start creates the _legacy superadmin that owns the seeded rule.
    await stop(await harness.serveWithin(dataDir));
    const store = openStore(dataDir);
    let ruleId: number;
    try {
      insertClient(store.db, {
        clientId: '01J9E2E0000000000000000009',
        clientName: 'edge-9',
        now: Date.now(),
      });
      ruleId = insertRule(store.db, {
        clientId: '01J9E2E0000000000000000009',
        ownerUserId: '_legacy',
        protocol: 'tcp',
        listenPort: 24000,
        targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
        now: Date.now(),
      }).ruleId;
    } finally {
      store.close();
    }
    const server = await harness.serveWithin(dataDir);
    const http = new OperatorHttp(listenersOf(server).operator_http);
    const auth = { bearer: token };
    const removed = await http.request('DELETE', `/v1/rules/${ruleId}`, { auth });
    assert.equal(removed.status, 204, JSON.stringify(removed.body));

    const audit = await http.auditAll(auth);
    const who = audit.filter(
      (entry) => entry['resource_kind'] === 'rule' && entry['resource_value'] === String(ruleId),
    );
    assert.equal(who.length, 1, JSON.stringify(audit));
    const [row] = who;
    assert.equal(row?.['actor'], '_legacy');
    assert.equal(row['outcome'], 'allow');
    assert.equal(row['method'], 'DELETE');
    assert.equal(row['path'], `/v1/rules/${ruleId}`);
    const details = row['details'] as Record<string, unknown>;
    assert.equal(details['remote_addr'], '127.0.0.1');
    assert.ok(!JSON.stringify(audit).includes(token), 'the bearer token is never audited');
    await stop(server);
  });
});
