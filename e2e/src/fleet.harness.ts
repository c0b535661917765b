/**
 * Plumbing for the fleet end-to-end tests: a server with an operator token and its restart on
 * the same data dir, enrollment through the HTTP API, the real `portunus-client` binary (enroll +
 * daemon), loopback echo targets for TCP and UDP, and a condition wait with a deadline for things
 * only observable by asking again (stats reports, a listener coming back). Tests only; talks to
 * the processes over real sockets.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { CLIENT_BIN, SERVER_BIN, type RunningProcess } from '@portunus/test-support';

import { Harness, OperatorHttp, listenersOf, SLOW_STEP_MS, type CliResult } from './harness.js';

/** Polls `check` until it returns a value other than undefined/false, or fails at the deadline. */
export async function waitUntil<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = SLOW_STEP_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${String(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface FleetServer {
  process: RunningProcess;
  dataDir: string;
  http: OperatorHttp;
  auth: { bearer: string };
  controlPort: number;
}

export class FleetHarness extends Harness {
  /** Starts serve with a server.toml operator token (the `_legacy` superadmin). */
  async fleetServer(
    dataDir = this.newDataDir(),
    token = crypto.randomBytes(32).toString('base64url'),
    controlListen = '127.0.0.1:0',
  ): Promise<FleetServer> {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dataDir, 'server.toml'), `operator_token = "${token}"\n`, {
      mode: 0o600,
    });
    const server = this.processes.node(
      SERVER_BIN,
      [
        '--data-dir',
        dataDir,
        'serve',
        '--control-listen',
        controlListen,
        '--operator-http-listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
      ],
      {},
    );
    await server.waitForEvent('server.listening', { timeoutMs: SLOW_STEP_MS });
    const listeners = listenersOf(server);
    return {
      process: server,
      dataDir,
      http: new OperatorHttp(listeners.operator_http),
      auth: { bearer: token },
      controlPort: Number(listeners.control.split(':').at(-1)),
    };
  }

  /**
   * Stops `server` with SIGTERM, asserts a clean exit, and serves the same data dir, token and
   * control port again, so enrolled clients reconnect to the address in their bundle.
   */
  async restartServer(server: FleetServer): Promise<FleetServer> {
    server.process.kill('SIGTERM');
    assert.equal(await server.process.exited(), 0);
    return this.fleetServer(server.dataDir, server.auth.bearer, `127.0.0.1:${server.controlPort}`);
  }

  /** A one-time enrollment URI for a new client named `name`. */
  async enrollmentUri(server: FleetServer, name: string, ttlSecs?: number): Promise<string> {
    const answer = await server.http.request<{ uri: string }>('POST', '/v1/client-enrollments', {
      auth: server.auth,
      body: { name, ...(ttlSecs !== undefined ? { ttl_secs: ttlSecs } : {}) },
    });
    if (answer.status !== 201)
      throw new Error(`enrollment: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body.uri;
  }

  clientCli(
    args: readonly string[],
    env: Record<string, string | undefined> = {},
  ): Promise<CliResult> {
    return this.processes.run(CLIENT_BIN, args, { env, timeoutMs: SLOW_STEP_MS });
  }

  /** Enrolls into a fresh bundle path and returns it. */
  async enroll(server: FleetServer, name: string): Promise<string> {
    const bundle = path.join(this.dirs.make(), 'client.bundle.json');
    const result = await this.clientCli([
      'enroll',
      await this.enrollmentUri(server, name),
      '--out',
      bundle,
    ]);
    if (result.code !== 0) throw new Error(`enroll exited ${result.code}: ${result.stderr}`);
    return bundle;
  }

  /** Starts the client daemon and waits for its first control.connected. */
  async daemon(bundle: string, extra: readonly string[] = []): Promise<RunningProcess> {
    const client = this.processes.node(CLIENT_BIN, [
      '--bundle',
      bundle,
      '--stats-report-interval-secs',
      '1',
      '--reconnect-max-delay-secs',
      '1',
      ...extra,
    ]);
    await client.waitForEvent('control.connected', { timeoutMs: SLOW_STEP_MS });
    return client;
  }
}

/** Waits until `process` logs `event` again after the first `seen` occurrences. */
export function nextEvent(process: RunningProcess, event: string, seen: number): Promise<unknown> {
  return process.waitForEvent(event, {
    timeoutMs: SLOW_STEP_MS,
    where: () => process.events.filter((line) => line.event === event).length > seen,
  });
}

export function countEvents(process: RunningProcess, event: string): number {
  return process.events.filter((line) => line.event === event).length;
}

export async function tcpEcho(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

export async function udpEcho(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, remote) => {
    socket.send(message, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    close: () =>
      new Promise((resolve) =>
        socket.close(() => {
          resolve();
        }),
      ),
  };
}

/** Sends `payload` through a TCP port and resolves with everything echoed back. */
export function tcpRoundTrip(port: number, payload: Buffer, timeoutMs = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let received = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`tcp round trip on ${port}: ${received}/${payload.length} bytes`));
    }, timeoutMs);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= payload.length) {
        clearTimeout(timer);
        socket.end();
        resolve(Buffer.concat(chunks));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (received < payload.length) reject(new Error(`closed after ${received} bytes`));
    });
    socket.write(payload);
  });
}

/** One UDP request/answer through `port` from a fresh source socket. */
export function udpRoundTrip(port: number, payload: Buffer, timeoutMs = 2_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no UDP answer on ${port}`));
    }, timeoutMs);
    socket.on('message', (message) => {
      clearTimeout(timer);
      socket.close();
      resolve(message);
    });
    socket.send(payload, port, '127.0.0.1');
  });
}

/** Ports named up front (edge listen ports): one definition, in test-support. */
export { freePort, freePortRun } from '@portunus/test-support';
