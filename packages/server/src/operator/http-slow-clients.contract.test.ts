// Proves the operator listener holds against slow and many clients on real loopback sockets:
// hundreds of connections that trickle their headers (slowloris) do not stop a real request from
// being answered, and each is closed by the headers timeout; connections over the cap are refused
// at once while the ones under it are still served.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';

import { waitFor } from '@portunus/test-support';

import { harnessPool } from './contract.harness.js';

const harnesses = harnessPool();
const sockets: net.Socket[] = [];
after(async () => {
  for (const socket of sockets) socket.destroy();
  await harnesses.closeAll();
});

/** A listening app with a superadmin; returns its port and a request a real client makes. */
async function listen(
  options: Parameters<typeof harnesses.fresh>[0],
): Promise<{ port: number; request: () => Promise<Response>; connections: () => Promise<number> }> {
  const h = harnesses.fresh(options);
  const token = await h.addUser('root', 'superadmin');
  const app = await h.app();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  const request = (): Promise<Response> =>
    fetch(`http://127.0.0.1:${port}/v1/users`, {
      headers: { authorization: `Bearer ${token}`, connection: 'close' },
    });
  const connections = (): Promise<number> =>
    new Promise((resolve, reject) => {
      app.server.getConnections((error, count) => {
        if (error) reject(error);
        else resolve(count);
      });
    });
  return { port, request, connections };
}

/** Opens a connection that sends the start of a request and then nothing more. */
function stall(port: number): Promise<{ closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let isClosed = false;
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('GET /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      resolve({ closed: () => isClosed });
    });
    // Read whatever the server answers (its 408), or the FIN that ends the socket is never seen.
    socket.resume();
    socket.on('error', () => undefined); // a reset by the server is what some of these expect
    socket.on('close', () => {
      isClosed = true;
    });
    socket.once('error', reject);
    sockets.push(socket);
  });
}

describe('slow and many clients', () => {
  it('answers a real request while 300 clients trickle headers, then cuts them off', async () => {
    const { port, request } = await listen({
      limits: { headersTimeoutMs: 1_500, requestTimeoutMs: 3_000, timeoutCheckIntervalMs: 250 },
    });
    const stalled = await Promise.all(Array.from({ length: 300 }, () => stall(port)));
    const response = await request();
    assert.equal(response.status, 200, await response.clone().text());
    await waitFor(() => stalled.every((s) => s.closed()), {
      timeoutMs: 20_000,
      what: 'every stalled connection closed by the headers timeout',
    });
  });

  it('refuses connections over the cap and still serves the ones under it', async () => {
    const { port, request, connections } = await listen({ limits: { maxConnections: 20 } });
    const held = await Promise.all(Array.from({ length: 19 }, () => stall(port)));
    // The 20th is a real client: under the cap, it is answered.
    const response = await request();
    assert.equal(response.status, 200, await response.clone().text());
    // Fill the cap: the real client's connection is gone, one more stalled one takes its place.
    await waitFor(async () => (await connections()) <= 19, {
      what: "the real client's connection closed",
    });
    held.push(await stall(port));
    // Over the cap: the server closes each new connection at once instead of queueing it.
    const extra = await Promise.all(Array.from({ length: 5 }, () => stall(port)));
    await waitFor(() => extra.every((s) => s.closed()), {
      timeoutMs: 10_000,
      what: 'connections over the cap closed',
    });
    assert.ok(!held.some((s) => s.closed()), 'the held connections stay open');
  });
});
