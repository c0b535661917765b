// Proves that alerts never block the control plane (issue "Alerts": a bounded queue that never
// blocks): with two webhooks, one a real loopback receiver that accepts every connection and never
// answers and one that is down (connection refused), quota.threshold alerts from real stats
// rounds pile up on the dispatcher while, in the same test, the operator API keeps answering
// (reads and a quota PUT through the real app) and later stats rounds keep being accounted; the
// bounded queue drops what does not fit and counts it as portunus_alerts_sent_total{outcome=
// "dropped"}, and every alert still has its audit row. Everything waits on conditions; nothing
// asserts how fast. Real store, real fleet with a recording session stream, real accounting.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';

import type { QuotaView } from '@portunus/api';
import { silentLogger } from '@portunus/core';
import { insertClient } from '@portunus/store';
import { freePort, waitFor } from '@portunus/test-support';

import type { ControlFleet } from '../control/fleet.js';
import { AlertDispatcher, Alerter } from '../traffic/alerts.js';
import { ContractHarness } from './contract.harness.js';
import {
  activeTcpRule,
  grantTcpPorts,
  openEdge,
  quotaFleet,
  quotaStatus,
  wireStats,
} from './traffic.harness.js';

const EDGE = '01HZZZZZZZZZZZZZZZZZZZZZA1';
const USERS = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];
const LIMIT = 1000;
const QUEUE_CAPACITY = 4;

let h: ContractHarness;
let fleet: ControlFleet;
let dispatcher: AlertDispatcher;
let session: ReturnType<ControlFleet['open']>;
let root: string;
const rules = new Map<string, number>();
const reported = new Map<string, number>();

/** Accepts connections and reads requests, never answering one. */
const stuck = net.createServer((socket) => {
  held.add(socket);
  socket.on('error', () => undefined);
  socket.on('close', () => held.delete(socket));
  socket.resume();
});
const held = new Set<net.Socket>();
let accepted = 0;
stuck.on('connection', () => {
  accepted += 1;
});

/** One stats round: each named user's rule moves `bytes` more. */
function round(users: readonly string[], bytes: number): void {
  fleet.report(session, {
    sent_at_unix_ms: h.clock,
    stats: users.map((user) => {
      const total = (reported.get(user) ?? 0) + bytes;
      reported.set(user, total);
      return wireStats(rules.get(user)!, total, 0);
    }),
  });
}

async function used(user: string): Promise<number> {
  return (await quotaStatus(h, root, user, EDGE)).current_period_bytes_used;
}

async function alertsSent(outcome: string): Promise<number> {
  let total = 0;
  for (const line of (await h.metrics.render()).split('\n')) {
    if (line.startsWith('portunus_alerts_sent_total{') && line.includes(`outcome="${outcome}"`)) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

before(async () => {
  await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve));
  const stuckUrl = `http://127.0.0.1:${(stuck.address() as net.AddressInfo).port}/hook`;
  const downUrl = `http://127.0.0.1:${await freePort()}/hook`;
  h = new ContractHarness();
  dispatcher = new AlertDispatcher({
    config: { webhookUrls: [stuckUrl, downUrl], secret: 'a-webhook-secret-of-enough-bytes' },
    logger: silentLogger,
    registry: h.metrics.registry,
    audit: h.audit,
    now: () => h.clock,
    // Far longer than the test: a stuck delivery stays stuck while the control plane is checked.
    delivery: {
      queueCapacity: QUEUE_CAPACITY,
      concurrency: 2,
      timeoutMs: 600_000,
      backoffBaseMs: 10,
      backoffMaxMs: 20,
    },
  });
  const alerter = new Alerter({
    dispatcher,
    config: { clientOfflineGraceSecs: 60, targetDebounceSecs: 30 },
    now: () => h.clock,
  });
  const wired = quotaFleet(h, { engine: { alerts: alerter }, fleet: { observer: alerter } });
  fleet = wired.fleet;
  h.context.fleet = fleet;
  h.context.quotas = wired.engine;
  root = await h.addUser('root', 'superadmin');
  insertClient(h.store.db, { clientId: EDGE, clientName: 'edge-a', now: h.clock });
  session = openEdge(fleet, { clientId: EDGE, clientName: 'edge-a' });
  for (const [index, user] of USERS.entries()) {
    await h.addUser(user, 'user');
    grantTcpPorts(h, {
      grantId: `01HZZZZZZZZZZZZZZZZZZZZGA${index}`,
      userId: user,
      clientId: EDGE,
      start: 20000 + index * 10,
      end: 20009 + index * 10,
    });
    rules.set(user, activeTcpRule(h, EDGE, user, 20000 + index * 10));
  }
});

after(async () => {
  dispatcher.close();
  for (const socket of held) socket.destroy();
  await new Promise<void>((resolve) => {
    stuck.close(() => {
      resolve();
    });
  });
  await h.close();
});

describe('alerts with a receiver that never answers and one that is down', () => {
  it('keep the operator API and stats rounds going, and drop with a count', async () => {
    for (const user of USERS) {
      const response = await h.bearer(root, {
        method: 'PUT',
        url: `/v1/users/${user}/quotas/${EDGE}`,
        payload: { monthly_bytes: LIMIT },
      });
      assert.equal(response.statusCode, 200, response.body);
    }
    // Every user crosses 0.8 and 1.0: 12 alerts, 24 deliveries for a queue of 4 and 2 slots.
    round(USERS, 850);
    round(USERS, 200);
    await waitFor(() => accepted >= 1, { what: 'a delivery held by the stuck receiver' });
    await waitFor(async () => (await alertsSent('dropped')) > 0, { what: 'a counted drop' });

    // The control plane, while deliveries are stuck: reads, a write, and more stats rounds.
    assert.ok(dispatcher.pending > 0, 'deliveries are still pending');
    for (const user of USERS) assert.equal(await used(user), 1050);
    const listed = await h.bearer(root, { method: 'GET', url: `/v1/clients/${EDGE}/quotas` });
    assert.equal(listed.statusCode, 200, listed.body);
    assert.equal(listed.json<QuotaView[]>().length, USERS.length);
    const raised = await h.bearer(root, {
      method: 'PATCH',
      url: `/v1/users/u0/quotas/${EDGE}`,
      payload: { monthly_bytes: 10 * LIMIT },
    });
    assert.equal(raised.statusCode, 200, raised.body);
    assert.equal(raised.json<QuotaView>().exhausted, false);
    for (let i = 0; i < 5; i++) round(USERS, 100);
    for (const user of USERS) assert.equal(await used(user), 1550);
    assert.ok(dispatcher.pending > 0, 'still stuck, and nothing waited for it');

    // Nothing was answered by the stuck receiver; the queue stayed bounded and counted its drops.
    assert.equal(await alertsSent('delivered'), 0);
    assert.ok(
      dispatcher.pending <= QUEUE_CAPACITY + 2,
      `pending ${dispatcher.pending} > queue + slots`,
    );
    const audited = h.auditRows().filter((row) => row.action === 'alert.quota.threshold').length;
    assert.equal(audited, 12, 'every alert has its audit row, delivered or not');
  });
});
