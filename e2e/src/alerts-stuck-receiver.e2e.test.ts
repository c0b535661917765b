// Proves with the real binaries that alerts never block the control plane: `serve` with an
// `[alerts]` table naming two webhooks — a loopback receiver that accepts every connection and
// never answers, and one that is down (connection refused) — while a real enrolled client's
// traffic crosses the quota thresholds. With deliveries held and retried, the same server goes
// on answering operator requests (reads and a quota change), goes on absorbing stats rounds
// (rule stats and the quota's usage keep moving) and forwarding, and writes each alert's audit
// row; nothing is ever counted delivered. Waits on log events and conditions with deadlines,
// never on fixed sleeps, and asserts nothing about speed.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { SERVER_BIN } from '@portunus/test-support';

import {
  FleetHarness,
  freePort,
  tcpEcho,
  tcpRoundTrip,
  waitUntil,
  type FleetServer,
} from './fleet.harness.js';
import { EPHEMERAL_LISTENERS, OperatorHttp, SLOW_STEP_MS, listenersOf } from './harness.js';
import {
  addRule,
  clientIdOf,
  grantAllPorts,
  legacyQuotaStatus,
  statsRounds,
} from './traffic.harness.js';

/** The fields of QuotaView (@portunus/api, which e2e may not import) this test reads. */
interface QuotaView {
  current_period_bytes_used: number;
  monthly_bytes: number;
}

const h = new FleetHarness();
let server: FleetServer;
let metricsOrigin: string;
let target: Awaited<ReturnType<typeof tcpEcho>>;
let port: number;
let ruleId: number;
let clientId: string;
const LIMIT = 1024 * 1024;

/** Accepts connections and reads requests, never answering one. */
const held = new Set<net.Socket>();
let accepted = 0;
const stuck = net.createServer((socket) => {
  accepted += 1;
  held.add(socket);
  socket.on('error', () => undefined);
  socket.on('close', () => held.delete(socket));
  socket.resume();
});

function status(): Promise<QuotaView> {
  return legacyQuotaStatus<QuotaView>(server, clientId);
}

async function alertsSent(outcome: string): Promise<number> {
  const response = await fetch(`${metricsOrigin}/metrics`, {
    signal: AbortSignal.timeout(SLOW_STEP_MS),
  });
  let total = 0;
  for (const line of (await response.text()).split('\n')) {
    if (line.startsWith('portunus_alerts_sent_total{') && line.includes(`outcome="${outcome}"`)) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

/** Sends `bytes` through the rule (echoed back, so in + out count twice). */
async function send(bytes: number): Promise<void> {
  const payload = crypto.randomBytes(bytes);
  assert.ok((await tcpRoundTrip(port, payload, SLOW_STEP_MS)).equals(payload));
}

before(async () => {
  await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve));
  const stuckUrl = `http://127.0.0.1:${(stuck.address() as net.AddressInfo).port}/hook`;
  const downUrl = `http://127.0.0.1:${await freePort()}/hook`;
  target = await tcpEcho();
  const dataDir = h.newDataDir();
  const token = crypto.randomBytes(32).toString('base64url');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(
    path.join(dataDir, 'server.toml'),
    [
      `operator_token = "${token}"`,
      '[alerts]',
      `webhook_urls = ["${stuckUrl}", "${downUrl}"]`,
      'secret = "a-webhook-secret-of-enough-bytes"',
      'quota_thresholds = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const process = h.processes.node(SERVER_BIN, [
    '--data-dir',
    dataDir,
    'serve',
    ...EPHEMERAL_LISTENERS,
  ]);
  await process.waitForEvent('server.listening', { timeoutMs: SLOW_STEP_MS });
  const listeners = listenersOf(process);
  metricsOrigin = `http://${listeners.metrics}`;
  server = {
    process,
    dataDir,
    http: new OperatorHttp(listeners.operator_http),
    auth: { bearer: token },
    controlPort: Number(listeners.control.split(':').at(-1)),
  };
  await h.daemon(await h.enroll(server, 'edge-a'));
  clientId = await clientIdOf(server, 'edge-a');
  port = await freePort();
  ruleId = await addRule(server, clientId, port, target.port);
  await grantAllPorts(server, '_legacy', clientId);
  const quota = await server.http.request('PUT', `/v1/users/_legacy/quotas/${clientId}`, {
    auth: server.auth,
    body: { monthly_bytes: LIMIT, enforcement: 'soft' },
  });
  assert.equal(quota.status, 200, JSON.stringify(quota.body));
});

after(async () => {
  await h.close();
  for (const socket of held) socket.destroy();
  await new Promise<void>((resolve) => {
    stuck.close(() => {
      resolve();
    });
  });
  await target.close();
});

describe(
  'alerts to a receiver that never answers and one that is down',
  { timeout: 240_000 },
  () => {
    it('never hold back operator requests, stats rounds or forwarding', async () => {
      // Past 0.1 .. 0.6 of the limit: six threshold alerts, twelve deliveries.
      await send(320 * 1024);
      await waitUntil(
        async () => (await status()).current_period_bytes_used >= 640 * 1024,
        'the usage of the first transfer',
      );
      await waitUntil(() => accepted >= 1, 'a delivery held by the stuck receiver');
      await server.process.waitForEvent('alert.retry', {
        timeoutMs: SLOW_STEP_MS,
        where: (line) => line['problem'] === 'ECONNREFUSED',
      });

      // The control plane while deliveries are held: reads, a write, stats rounds, forwarding.
      const clients = await server.http.request<unknown[]>('GET', '/v1/clients', {
        auth: server.auth,
      });
      assert.equal(clients.status, 200);
      const raised = await server.http.request<QuotaView>(
        'PATCH',
        `/v1/users/_legacy/quotas/${clientId}`,
        { auth: server.auth, body: { monthly_bytes: 2 * LIMIT } },
      );
      assert.equal(raised.status, 200, JSON.stringify(raised.body));
      assert.equal(raised.body.monthly_bytes, 2 * LIMIT);
      const before = (await status()).current_period_bytes_used;
      await send(256 * 1024);
      await waitUntil(
        async () => (await status()).current_period_bytes_used >= before + 512 * 1024,
        'the usage of a transfer while deliveries are held',
      );
      await statsRounds(server, ruleId, 2);
      assert.ok(held.size >= 1, 'the stuck receiver still holds a delivery');
      assert.equal(await alertsSent('delivered'), 0, 'nothing was ever answered');

      const audit = await server.http.auditAll(server.auth);
      const alerts = audit.filter((row) => row['action'] === 'alert.quota.threshold');
      assert.ok(alerts.length >= 6, `${alerts.length} alert audit rows`);
    });
  },
);
