/**
 * Traffic through a fleet rule and what the server counted of it, for the quota, traffic history
 * and alert end-to-end tests: the client id behind a name, a rule and an all-ports grant made
 * over the operator API, a target that counts every byte, a bulk stream through a rule, the
 * `_legacy` user's quota status and a wait for more stats reports. Tests only; it reaches the
 * processes over HTTP and loopback sockets and must not import a package's internals (e2e sees
 * the product as an operator does), so the answer shapes below are written out here.
 */
import assert from 'node:assert/strict';
import net from 'node:net';

import { waitUntil, type FleetServer } from './fleet.harness.js';

/** The fields of the traffic answer (@portunus/api, which e2e may not import). */
export interface TrafficAnswer {
  bucket: string;
  samples: { ts: number; bytes_in: number; bytes_out: number }[];
  total_bytes_in: number;
  total_bytes_out: number;
}

/** The id the server gave the enrolled client called `name`. */
export async function clientIdOf(server: FleetServer, name: string): Promise<string> {
  const clients = await server.http.request<{ client_id: string; client_name: string }[]>(
    'GET',
    '/v1/clients',
    { auth: server.auth },
  );
  const entry = clients.body.find((candidate) => candidate.client_name === name);
  assert.ok(entry, `no client named ${name}: ${JSON.stringify(clients.body)}`);
  return entry.client_id;
}

/** Creates a TCP rule on `client` (id or name) from `listenPort` to a loopback target. */
export async function addRule(
  server: FleetServer,
  client: string,
  listenPort: number,
  targetPort: number,
): Promise<number> {
  const rule = await server.http.request<{ rule_id: number }>('POST', '/v1/rules', {
    auth: server.auth,
    body: {
      client,
      listen_port: listenPort,
      target_host: '127.0.0.1',
      target_port: targetPort,
    },
  });
  assert.equal(rule.status, 201, JSON.stringify(rule.body));
  return rule.body.rule_id;
}

/** Grants `userId` every port of the client: a user needs a grant there to carry a quota. */
export async function grantAllPorts(
  server: FleetServer,
  userId: string,
  clientId: string,
): Promise<void> {
  const grant = await server.http.request('POST', '/v1/grants', {
    auth: server.auth,
    body: { user_id: userId, client: clientId, listen_port_start: 1, listen_port_end: 65535 },
  });
  assert.equal(grant.status, 201, JSON.stringify(grant.body));
}

/** The `_legacy` user's quota status on the client, as the test's own view of QuotaView. */
export async function legacyQuotaStatus<T>(server: FleetServer, clientId: string): Promise<T> {
  const answer = await server.http.request<T>(
    'GET',
    `/v1/users/_legacy/quotas/${clientId}/status`,
    { auth: server.auth },
  );
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

/** When the rule's stats last landed on the server; undefined before the first report. */
export async function ruleUpdatedAt(
  server: FleetServer,
  ruleId: number,
): Promise<string | undefined> {
  const answer = await server.http.request<{ updated_at: string }>(
    'GET',
    `/v1/rules/${ruleId}/stats`,
    { auth: server.auth },
  );
  return answer.status === 200 ? answer.body.updated_at : undefined;
}

/** Waits for `rounds` more stats reports of the rule to land on the server. */
export async function statsRounds(
  server: FleetServer,
  ruleId: number,
  rounds: number,
): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const seen = await ruleUpdatedAt(server, ruleId);
    await waitUntil(async () => {
      const now = await ruleUpdatedAt(server, ruleId);
      return now !== undefined && now !== seen ? now : undefined;
    }, 'a later stats report');
  }
}

/**
 * A loopback target that counts every byte it receives; a connection whose first 4 bytes are
 * all it sends gets 'pong' back when it half-closes, so a small probe proves the path is open.
 * `close` is safe before `start`, so an `after` hook may run when `before` failed.
 */
export class CountingSink {
  received = 0;
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | undefined;

  /** Listens on a free loopback port and resolves with it. */
  async start(): Promise<number> {
    const target = net.createServer({ allowHalfOpen: true }, (socket) => {
      this.sockets.add(socket);
      let mine = 0;
      socket.on('data', (chunk: Buffer) => {
        mine += chunk.length;
        this.received += chunk.length;
      });
      socket.on('end', () => {
        socket.end(mine === 4 ? 'pong' : '');
      });
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server = target;
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    return (target.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    const target = this.server;
    if (!target) return Promise.resolve();
    return new Promise((resolve) => {
      for (const socket of this.sockets) socket.destroy();
      target.close(() => {
        resolve();
      });
    });
  }
}

/** Streams up to `total` bytes through the rule on `port` and counts what comes back. */
export function stream(port: number, total: number): Promise<{ echoed: number }> {
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
