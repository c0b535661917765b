// GET /v1/rules/{id}/stats/stream over a real loopback socket (SSE needs a live connection, which
// inject() cannot hold open): the current snapshot first, one `stats` event per report, keep-alive
// comments, owner-only access answered as JSON errors, and a subscriber that stops reading
// dropped instead of buffered without bound. Stats come from the real RuleStatsTable.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { insertClient, insertRule } from '@portunus/store';
import { recordingLogger, waitFor, type RecordedLine } from '@portunus/test-support';

import { RuleStatsTable } from '../control/rule-stats.js';
import { ContractHarness } from './contract.harness.js';
import { wireStats } from './traffic.harness.js';
import { NO_FLEET } from './context.js';

const table = new RuleStatsTable();
const lines: RecordedLine[] = [];
const h = new ContractHarness({
  logger: recordingLogger(lines),
  fleet: {
    ...NO_FLEET,
    ruleStats: (ruleId) => table.get(ruleId),
    subscribeRuleStats: (ruleId, listener) => table.subscribe(ruleId, listener),
  },
});
h.context.statsStreamKeepAliveMs = 100;
let base = '';
let alice = '';
let bob = '';
let ruleId = 0;
const LABELS = { clientName: 'edge-1', protocol: 'tcp', ownerUserId: 'alice' } as const;

function report(bytes: number) {
  return wireStats(ruleId, bytes, bytes * 2, { active_connections: 1 });
}

before(async () => {
  await h.addUser('root', 'superadmin'); // without one, every route answers bootstrap_required
  alice = await h.addUser('alice', 'user');
  bob = await h.addUser('bob', 'user');
  insertClient(h.store.db, { clientId: 'c'.repeat(26), clientName: 'edge-1', now: h.clock });
  ruleId = insertRule(h.store.db, {
    clientId: 'c'.repeat(26),
    ownerUserId: 'alice',
    protocol: 'tcp',
    listenPort: 20001,
    targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
    now: h.clock,
  }).ruleId;
  const app = await h.app();
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

after(() => h.close());

interface Stream {
  response: http.IncomingMessage;
  text: () => string;
  request: http.ClientRequest;
  /** Resolves when the answer is complete (listened for from the start: a short one ends fast). */
  ended: Promise<void>;
}

function open(token: string, id = String(ruleId)): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      `${base}/v1/rules/${id}/stats/stream`,
      { headers: { authorization: `Bearer ${token}` } },
      (response) => {
        let text = '';
        const ended = new Promise<void>((done) => response.on('end', done));
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        resolve({ response, request, ended, text: () => text });
      },
    );
    request.on('error', reject);
  });
}

function statsEvents(text: string): { bytes_in: number; updated_at: string }[] {
  return [...text.matchAll(/event: stats\ndata: (.*)\n\n/g)].map(
    (match) => JSON.parse(match[1] ?? '{}') as { bytes_in: number; updated_at: string },
  );
}

describe('rule stats stream (SSE)', () => {
  it('sends the current snapshot, then one stats event per report, and keep-alives', async () => {
    table.record(ruleId, LABELS, report(100), h.clock);
    const stream = await open(alice);
    try {
      assert.equal(stream.response.statusCode, 200);
      assert.match(String(stream.response.headers['content-type']), /^text\/event-stream/);
      assert.equal(stream.response.headers['cache-control'], 'no-store');
      await waitFor(() => statsEvents(stream.text()).length === 1, { what: 'current snapshot' });
      assert.equal(statsEvents(stream.text())[0]?.bytes_in, 100);
      assert.match(statsEvents(stream.text())[0]?.updated_at ?? '', /^\d{4}-\d\d-\d\dT/);
      table.record(ruleId, LABELS, report(250), h.clock + 1000);
      await waitFor(() => statsEvents(stream.text()).length === 2, { what: 'a live snapshot' });
      assert.equal(statsEvents(stream.text())[1]?.bytes_in, 250);
      await waitFor(() => stream.text().includes(': keepalive\n\n'), { what: 'a keep-alive' });
    } finally {
      stream.request.destroy();
    }
    await waitFor(() => table.subscriberCount(ruleId) === 0, { what: 'unsubscribe on close' });
  });

  it('answers another user with not_owner and an unknown rule with rule_not_found, as JSON', async () => {
    const denied = await open(bob);
    assert.equal(denied.response.statusCode, 403);
    await denied.ended;
    assert.equal(
      (JSON.parse(denied.text()) as { error: { code: string } }).error.code,
      'not_owner',
    );
    const missing = await open(alice, '999999');
    assert.equal(missing.response.statusCode, 404);
    await missing.ended;
    assert.match(missing.text(), /rule_not_found/);
    const unauthenticated = await open('');
    assert.equal(unauthenticated.response.statusCode, 401);
    unauthenticated.request.destroy();
  });

  it('drops a subscriber that stops reading instead of buffering for it', async () => {
    const stream = await open(alice);
    stream.response.pause();
    await waitFor(() => table.subscriberCount(ruleId) === 1, { what: 'subscribed' });
    // Far more than the socket buffers can hold while nobody reads.
    for (let i = 0; i < 200_000 && table.subscriberCount(ruleId) > 0; i++) {
      table.record(ruleId, LABELS, report(i), h.clock + i);
    }
    await waitFor(() => table.subscriberCount(ruleId) === 0, {
      what: 'the lagging subscriber dropped',
      timeoutMs: 10_000,
    });
    assert.ok(lines.some((line) => line.event === 'stats_stream.lagged'));
    stream.request.destroy();
  });
});
