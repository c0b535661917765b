// Proves traffic quotas with real processes: a hard quota PUT on a connected client reaches the
// spawned portunus-client, a transfer through its rule stops once the budget is used (the target
// receives at most one chunk past it, the server marks the quota exhausted), new connections are
// refused before reaching the target, and a raised limit (PATCH) lets new connections through. Waits on log events and
// conditions with deadlines, never on fixed sleeps.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { RunningProcess } from '@portunus/test-support';

import {
  FleetHarness,
  countEvents,
  freePort,
  nextEvent,
  waitUntil,
  type FleetServer,
} from './fleet.harness.js';
import {
  CountingSink,
  addRule,
  clientIdOf,
  grantAllPorts,
  legacyQuotaStatus,
  stream,
} from './traffic.harness.js';

/** The fields of QuotaView (@portunus/api, which e2e may not import) this test reads. */
interface QuotaView {
  exhausted: boolean;
  current_period_bytes_used: number;
}

const h = new FleetHarness();
let server: FleetServer;
let client: RunningProcess;
let port: number;
let clientId: string;
const BUDGET = 256 * 1024;
/** libuv reads at most 64 KiB at a time: the per-connection overrun bound (reference §5.10). */
const CHUNK = 64 * 1024;

const sink = new CountingSink();

function quota(): Promise<QuotaView> {
  return legacyQuotaStatus<QuotaView>(server, clientId);
}

before(async () => {
  const sinkPort = await sink.start();
  server = await h.fleetServer();
  client = await h.daemon(await h.enroll(server, 'edge-q'));
  clientId = await clientIdOf(server, 'edge-q');
  port = await freePort();
  await addRule(server, clientId, port, sinkPort);
  // The rule's owner (_legacy) needs a grant on the client to carry a quota there.
  await grantAllPorts(server, '_legacy', clientId);
});

after(async () => {
  await h.close();
  await sink.close();
});

describe('traffic quotas end to end', () => {
  it('stops a transfer at the budget, refuses new connections, and resumes after a raise', async () => {
    const seen = countEvents(client, 'control.traffic_quota_set');
    const put = await server.http.request<QuotaView>(
      'PUT',
      `/v1/users/_legacy/quotas/${clientId}`,
      { auth: server.auth, body: { monthly_bytes: BUDGET } },
    );
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await nextEvent(client, 'control.traffic_quota_set', seen);

    const first = await stream(port, 4 * 1024 * 1024);
    assert.equal(first.echoed, 0, 'the sink never answers a bulk transfer');
    await waitUntil(() => sink.received >= BUDGET, 'the budget to reach the sink');
    assert.ok(sink.received >= BUDGET, `the sink got ${sink.received}`);
    assert.ok(sink.received <= BUDGET + CHUNK, `overrun ${sink.received - BUDGET} > one chunk`);

    const exhausted = await waitUntil(async () => {
      const view = await quota();
      return view.exhausted ? view : undefined;
    }, 'the server to mark the quota exhausted');
    assert.ok(exhausted.current_period_bytes_used >= BUDGET);
    assert.ok(exhausted.current_period_bytes_used <= BUDGET + 2 * CHUNK);

    const before = sink.received;
    const refused = await stream(port, 4);
    assert.equal(refused.echoed, 0, 'a new connection is refused while exhausted');
    assert.equal(sink.received, before, 'nothing reached the target');

    const again = countEvents(client, 'control.traffic_quota_set');
    const raised = await server.http.request<QuotaView>(
      'PATCH',
      `/v1/users/_legacy/quotas/${clientId}`,
      { auth: server.auth, body: { monthly_bytes: 64 * 1024 * 1024 } },
    );
    assert.equal(raised.status, 200, JSON.stringify(raised.body));
    assert.equal(raised.body.exhausted, false);
    await nextEvent(client, 'control.traffic_quota_set', again);
    const resumed = await stream(port, 4);
    assert.equal(resumed.echoed, 4, 'new connections flow again: ping, pong');
  });
});
