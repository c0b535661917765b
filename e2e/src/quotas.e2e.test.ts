// Proves traffic quotas with real processes: a hard quota PUT on a connected client reaches the
// spawned portunus-client, a transfer through its rule stops once the budget is used (the target
// receives at most one chunk past it, the server marks the quota exhausted), new connections are
// refused before reaching the target, and a raised limit (PATCH) lets new connections through. Waits on log events and
// conditions with deadlines, never on fixed sleeps.
import assert from 'node:assert/strict';
import net from 'node:net';
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

/**
 * The target: counts every byte it receives; a connection whose first 4 bytes are all it sends
 * gets 4 bytes back when it half-closes (so a small probe proves the path is open).
 */
const sink = { received: 0, close: (): Promise<void> => Promise.resolve() };

async function startSink(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const target = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    let mine = 0;
    socket.on('data', (chunk: Buffer) => {
      mine += chunk.length;
      sink.received += chunk.length;
    });
    socket.on('end', () => {
      socket.end(mine === 4 ? 'pong' : '');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  sink.close = () =>
    new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      target.close(() => {
        resolve();
      });
    });
  return (target.address() as net.AddressInfo).port;
}

/** Streams up to `total` bytes through the rule and counts what comes back. */
function stream(total: number): Promise<{ echoed: number }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let echoed = 0;
    let written = 0;
    const block = Buffer.alloc(Math.min(total, 16 * 1024), 1);
    const pump = (): void => {
      while (written < total && socket.writable) {
        written += block.length;
        if (!socket.write(block)) return;
      }
      if (written >= total) socket.end();
    };
    socket.on('connect', pump);
    socket.on('drain', pump);
    socket.on('data', (chunk: Buffer) => {
      echoed += chunk.length;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      resolve({ echoed });
    });
  });
}

async function quota(): Promise<QuotaView> {
  const answer = await server.http.request<QuotaView>(
    'GET',
    `/v1/users/_legacy/quotas/${clientId}/status`,
    { auth: server.auth },
  );
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

before(async () => {
  const sinkPort = await startSink();
  server = await h.fleetServer();
  client = await h.daemon(await h.enroll(server, 'edge-q'));
  const clients = await server.http.request<{ client_id: string; client_name: string }[]>(
    'GET',
    '/v1/clients',
    { auth: server.auth },
  );
  clientId = clients.body.find((entry) => entry.client_name === 'edge-q')!.client_id;
  port = await freePort();
  const rule = await server.http.request('POST', '/v1/rules', {
    auth: server.auth,
    body: { client: clientId, listen_port: port, target_host: '127.0.0.1', target_port: sinkPort },
  });
  assert.equal(rule.status, 201, JSON.stringify(rule.body));
  // The rule's owner (_legacy) needs a grant on the client to carry a quota there.
  const grant = await server.http.request('POST', '/v1/grants', {
    auth: server.auth,
    body: { user_id: '_legacy', client: clientId, listen_port_start: 1, listen_port_end: 65535 },
  });
  assert.equal(grant.status, 201, JSON.stringify(grant.body));
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

    const first = await stream(4 * 1024 * 1024);
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
    const refused = await stream(4);
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
    const resumed = await stream(4);
    assert.equal(resumed.echoed, 4, 'new connections flow again: ping, pong');
  });
});
