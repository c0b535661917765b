/**
 * Socket helpers for this package's tests only: deadline-bounded waits, loopback echo servers,
 * consecutive free ports, a logger that records events, a policy clock driven by hand, and
 * `testResources()`, one teardown list per test file for the servers, sockets and Forwarders its
 * tests open. Never imported by product code; it depends only on node:net, node:dgram, node:test,
 * this package's Forwarder and types — never on another package's internals.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { after } from 'node:test';

import type { LogFields, Logger } from '@portunus/core';

import type { PolicyClock } from './policy/limiter.js';
import { Forwarder, type ForwarderOptions } from './rule-runtime.js';

export const V4 = '127.0.0.1';

/** A clock whose time moves only by `advance`, firing the timers that fall due. */
export class FakeClock implements PolicyClock {
  time = 1_000;
  private timers: { at: number; callback: () => void; id: number }[] = [];
  private nextId = 1;

  now(): number {
    return this.time;
  }

  setTimer(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, callback, id });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  get pending(): number {
    return this.timers.length;
  }

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.time = next.at;
      next.callback();
    }
    this.time = end;
  }
}

/** Polls `condition` on every turn of the event loop until it holds or the deadline passes. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  deadlineMs = 5_000,
): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Resolves with the event's first argument, or rejects when the deadline passes. */
export function once<T = unknown>(
  emitter: NodeJS.EventEmitter,
  event: string,
  deadlineMs = 5_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out waiting for ${event}`));
    }, deadlineMs);
    const onEvent = (value: T): void => {
      clearTimeout(timer);
      resolve(value);
    };
    emitter.once(event, onEvent);
  });
}

/** Settles like `promise`, or rejects when the deadline passes first. */
export function withDeadline<T>(promise: Promise<T>, what: string, deadlineMs = 5_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`timed out waiting for ${what}`));
    }, deadlineMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

export interface RecordedLine {
  level: string;
  event: string;
  fields: LogFields;
}

export function recordingLogger(lines: RecordedLine[] = []): Logger & { lines: RecordedLine[] } {
  const emit =
    (level: string) =>
    (event: string, fields: LogFields = {}): void => {
      lines.push({ level, event, fields });
    };
  const logger = {
    lines,
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: () => logger,
  };
  return logger;
}

export async function listenTcp(server: net.Server, port = 0, host = V4): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as net.AddressInfo).port;
}

export function closeTcp(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    for (const socket of tracked.get(server) ?? []) socket.destroy();
  });
}

const tracked = new WeakMap<net.Server, Set<net.Socket>>();

/** A TCP server whose sockets are kept so `closeTcp` can end them; `handler` per connection. */
export function tcpServer(handler: (socket: net.Socket) => void): net.Server {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    handler(socket);
  });
  tracked.set(server, sockets);
  return server;
}

export function tcpEcho(): net.Server {
  return tcpServer((socket) => socket.pipe(socket));
}

export async function udpSocket(port = 0, host = V4): Promise<dgram.Socket> {
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}

export async function udpEcho(port = 0): Promise<dgram.Socket> {
  const socket = await udpSocket(port);
  socket.on('message', (msg, rinfo) => {
    socket.send(msg, rinfo.port, rinfo.address);
  });
  return socket;
}

export function closeUdp(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.close(() => {
      resolve();
    });
  });
}

/** Consecutive free ports (port ranges): one definition, in test-support. */
export { freePortRun } from '@portunus/test-support';

/** A port that was free a moment ago: nothing listens there, so a dial is refused. */
export async function closedPort(): Promise<number> {
  const probe = net.createServer();
  const port = await listenTcp(probe);
  await closeTcp(probe);
  return port;
}

/** Resolves true when a dial to `port` fails (nothing listens), false when it connects. */
export function dialRefused(port: number, host = V4): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = net.connect({ port, host });
    probe.on('error', () => {
      resolve(true);
    });
    probe.on('connect', () => {
      probe.destroy();
      resolve(false);
    });
  });
}

/** Connects, sends `payload`, half-closes, and collects everything until the server ends. */
export async function roundTrip(port: number, payload: Buffer, host = V4): Promise<Buffer> {
  const socket = net.connect({ port, host, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = once(socket, 'end', 10_000);
  socket.end(payload);
  await ended;
  socket.destroy();
  return Buffer.concat(chunks);
}

/** `size` bytes of a repeating pattern that `seed` shifts, so a misplaced chunk shows. */
export function pattern(size: number, seed: number): Buffer {
  const buffer = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buffer[i] = (i * 31 + seed) & 0xff;
  return buffer;
}

/**
 * What one test file opened: each helper registers its own undo, and the file's `after` runs
 * them newest first, so a Forwarder is closed before the targets it dials and a failed test
 * still leaves no listener behind for the next file.
 */
export class TestResources {
  private readonly cleanups: (() => unknown)[] = [];

  /** Runs `cleanup` (awaited) when the file's tests are done. */
  defer(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  async closeAll(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup();
  }

  /** Binds `server` on loopback (port 0 unless given) and closes it, with its sockets, after. */
  async listen(server: net.Server, port = 0): Promise<number> {
    const bound = await listenTcp(server, port);
    this.defer(() => closeTcp(server));
    return bound;
  }

  /**
   * A Forwarder on loopback with a recording logger unless `options` say otherwise, closed after
   * with `close` (no drain unless given: teardown must not wait on pairs a test left open).
   */
  forwarder(
    options: ForwarderOptions = {},
    close: { drainMs?: number } = { drainMs: 0 },
  ): Forwarder {
    const forwarder = new Forwarder({ logger: recordingLogger(), listenHost: V4, ...options });
    this.defer(() => forwarder.close(close));
    return forwarder;
  }

  /** A Forwarder (as `forwarder`) together with the recording logger its lines go to. */
  loggedForwarder(): { forwarder: Forwarder; logger: ReturnType<typeof recordingLogger> } {
    const logger = recordingLogger();
    return { forwarder: this.forwarder({ logger }), logger };
  }

  /** Keeps `socket`'s errors from failing the process and destroys it after. */
  socket<T extends net.Socket>(socket: T): T {
    socket.on('error', () => undefined);
    this.defer(() => socket.destroy());
    return socket;
  }

  /** A bound UDP socket (loopback unless `host` says otherwise), closed after. */
  async udpSocket(port = 0, host = V4): Promise<dgram.Socket> {
    const socket = await udpSocket(port, host);
    this.defer(() => closeUdp(socket));
    return socket;
  }

  /** A UDP echo target on loopback, closed after; resolves with its port. */
  async udpEcho(): Promise<number> {
    const echo = await udpEcho();
    this.defer(() => closeUdp(echo));
    return echo.address().port;
  }

  /** A TCP target that counts what it receives and the connections it got, closed after. */
  async sink(): Promise<{ port: number; received: () => number; connections: () => number }> {
    let received = 0;
    let connections = 0;
    const server = tcpServer((socket) => {
      connections += 1;
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      socket.on('end', () => socket.end());
    });
    const port = await this.listen(server);
    return { port, received: () => received, connections: () => connections };
  }
}

/** The calling test file's resources: call once at module level, so `after` is the file's. */
export function testResources(): TestResources {
  const resources = new TestResources();
  after(() => resources.closeAll());
  return resources;
}
