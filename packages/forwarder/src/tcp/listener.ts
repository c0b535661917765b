/**
 * TCP forwarding for one listen port (reference inventory §5.1): a dual-stack listener keyed by
 * its port, whose current route (a rule's connector and the port's offset in its range) can be
 * swapped while it keeps accepting — a replaced rule's open connections keep their upstream, new
 * ones use the new route. Per accepted connection: the connector resolves, picks a target and
 * dials (a failed connect is its business and is counted here as `connect_failures`), the
 * target's PROXY header is written before any client byte, then the bidirectional copy with
 * back-pressure and half-close propagation runs until both sides close (its errors are
 * `conn_errors`). Owns every socket it accepts or is handed and tears both down together. Must
 * not depend on anything but node:net, the connect and proxy-protocol stages and @portunus/core
 * — no rule bookkeeping (rule-runtime.ts) and no `stream.pipeline`, which costs ~2.5x the memory
 * per idle connection (bench/README.md, "Forwarder").
 *
 * The copy is `pipe()` reduced to what a socket pair needs ('data' → write, pause on a full
 * destination, resume on 'drain', end on 'end'), with every listener a shared function that
 * finds its pair through a symbol on the socket: no closure is made per connection, which
 * keeps idle connections small and the accept path short. Bulk reads are coalesced: a large
 * chunk corks its destination until the end of the event-loop turn, so the 64 KiB reads of one
 * turn leave in one writev. Figures for both: bench/README.md, "Forwarder".
 *
 * Quotas (reference §5.10): a connection whose owner has a budget (policy/quota.ts) is refused at
 * accept while the budget is used up, and otherwise copies with `onDataMetered`, which debits each
 * chunk before writing it; when the budget runs out the connection half-closes both ways and
 * ends. Connections of owners without a budget keep the plain `onData`: no extra work per chunk.
 */
import net from 'node:net';

import type { Logger } from '@portunus/core';

import type { RuleConnector, TargetState } from '../connect/connector.js';
import { FORWARDER_EVENTS } from '../events.js';
import type { QuotaBudget, QuotaHolder } from '../policy/quota.js';
import { proxyHeader } from '../proxy-protocol/header.js';

/** Builds the listening server; injectable so tests can fail or observe binds. */
export type TcpServerFactory = (
  options: net.ServerOpts,
  onConnection: (socket: net.Socket) => void,
) => net.Server;

export interface TcpOptions {
  /** Listen address; `::` with ipv6Only false accepts IPv4 and IPv6 on one socket. */
  host?: string;
  ipv6Only?: boolean;
  backlog?: number;
  /** Readable and writable highWaterMark of both sockets of a connection. */
  highWaterMark?: number;
  createServer?: TcpServerFactory;
}

/** Where new connections of a listener go: a rule's connector, at this port's range offset. */
export interface TcpRoute {
  readonly connector: RuleConnector;
  readonly offset: number;
  /** The rule owner's quota budget, if the owner has one now (asked once per connection). */
  readonly budget?: () => QuotaBudget | undefined;
}

export interface TcpPortStats {
  listen_port: number;
  target_port: number;
  bytes_in: number;
  bytes_out: number;
  active_connections: number;
  connections_total: number;
  conn_errors: number;
  connect_failures: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
/** The PROXY header must leave within this (reference §5.6). */
export const PROXY_HEADER_TIMEOUT_MS = 10_000;
export const DEFAULT_BACKLOG = 1024;
/**
 * Readable and writable highWaterMark of both sockets. Room for several 64 KiB reads in one
 * writev; Node's 16 KiB default would pause the source after every read while corked. It bounds
 * what waits in user space for a slow receiver (the kernel's own send buffer holds up to 4 MiB).
 */
export const DEFAULT_TCP_HIGH_WATER_MARK = 1024 * 1024;
/** Chunks at least this large (bulk reads; libuv reads up to 64 KiB) are coalesced. */
const COALESCE_MIN_BYTES = 32 * 1024;

const defaultServerFactory: TcpServerFactory = (options, onConnection) =>
  net.createServer(options, onConnection);

/**
 * One proxied connection. Kept to plain fields (no per-connection closures at all) because
 * thousands of idle ones may be alive at once.
 */
interface Pair extends QuotaHolder {
  readonly owner: TcpListener;
  readonly client: net.Socket;
  /** Undefined while the connector is still picking and dialling a target. */
  upstream: net.Socket | undefined;
  target: TargetState | undefined;
  /** PROXY header bytes written upstream: not client bytes, so not counted as bytes_in. */
  headerBytes: number;
  closed: number;
  failed: boolean;
  /** The owner's quota budget this connection is metered against, if any. */
  budget: QuotaBudget | undefined;
}

/** Where a socket's shared listeners find their connection. */
const PAIR = Symbol('portunus.tcp.pair');
type PairedSocket = net.Socket & { [PAIR]: Pair };

function pairOf(socket: net.Socket): Pair {
  return (socket as PairedSocket)[PAIR];
}

/** Only called once both sides exist (the copy listeners are attached after the connect). */
function peerOf(socket: net.Socket): net.Socket {
  const pair = pairOf(socket);
  return pair.client === socket ? pair.upstream! : pair.client;
}

// Set in TcpListener's static block (they reach its private methods).
let onClientError: (this: net.Socket, error: Error) => void;
let onUpstreamError: (this: net.Socket, error: Error) => void;
let onSocketClose: (this: net.Socket) => void;

function onProxyHeaderTimeout(this: net.Socket): void {
  this.destroy(Object.assign(new Error('PROXY header not sent in time'), { code: 'ETIMEDOUT' }));
}
function onProxyHeaderDrain(this: net.Socket): void {
  this.setTimeout(0, onProxyHeaderTimeout);
}

/** Wires the copy both ways and lets client bytes flow; the upstream is connected. */
function startCopy(client: net.Socket, upstream: net.Socket, metered: boolean): void {
  const copy = metered ? onDataMetered : onData;
  client.on('data', copy);
  client.on('drain', onDrain);
  client.on('end', onEnd);
  upstream.on('data', copy);
  upstream.on('drain', onDrain);
  upstream.on('end', onEnd);
  // Attaching 'data' does not resume a socket accepted with pauseOnConnect.
  client.resume();
}

/** Destinations corked during this event-loop turn; one setImmediate uncorks them all. */
let corked: net.Socket[] = [];

function uncorkAll(): void {
  const sockets = corked;
  corked = [];
  // uncork() on a socket ended or destroyed since is a no-op.
  for (const socket of sockets) socket.uncork();
}

// The copy, one direction per source socket (`this` is the socket the event came from). Small
// chunks (requests, replies) are written at once; a bulk chunk corks the destination, and the
// other reads of this turn join it in one writev when uncorkAll runs after the poll phase.
function onData(this: net.Socket, chunk: Buffer): void {
  const peer = peerOf(this);
  if (chunk.length >= COALESCE_MIN_BYTES && peer.writableCorked === 0) {
    peer.cork();
    if (corked.push(peer) === 1) setImmediate(uncorkAll);
  }
  if (!peer.write(chunk)) this.pause();
}
/** The copy of a metered connection: each chunk is paid for before it is written. */
function onDataMetered(this: net.Socket, chunk: Buffer): void {
  // Refused once the budget is used up: the chunk is dropped, the stop is already on its way.
  if (pairOf(this).budget?.debit(chunk.length) === false) return;
  onData.call(this, chunk);
}
/**
 * The owner's budget ran out (QuotaHolder): both directions stop reading and half-close, and each
 * socket ends once its FIN is flushed — bytes already paid for still leave.
 */
function stopForQuota(this: Pair): void {
  for (const socket of [this.client, this.upstream]) {
    if (!socket || socket.destroyed) continue;
    socket.pause();
    socket.once('finish', destroyAfterFin);
    socket.end();
  }
}
function destroyAfterFin(this: net.Socket): void {
  this.destroy();
}
function onDrain(this: net.Socket): void {
  peerOf(this).resume();
}
/** A FIN from one side ends our write side towards the other: the half-close propagation. */
function onEnd(this: net.Socket): void {
  peerOf(this).end();
}

export class TcpListener {
  route: TcpRoute;
  private requestedPort: number;
  private readonly options: Required<Omit<TcpOptions, 'createServer'>> & {
    createServer: TcpServerFactory;
  };
  private readonly log: Logger;
  private server: net.Server | undefined;
  private readonly pairs = new Set<Pair>();
  private drainWaiters: (() => void)[] = [];
  // Bytes of connections already closed; live ones are read from their sockets in stats().
  private closedBytesIn = 0;
  private closedBytesOut = 0;
  private connectionsTotal = 0;
  private connErrors = 0;
  private connectFailures = 0;
  /** Connections refused at accept because the owner's quota was used up. */
  private quotaRefused = 0;

  constructor(listenPort: number, route: TcpRoute, log: Logger, options: TcpOptions = {}) {
    this.requestedPort = listenPort;
    this.route = route;
    this.log = log;
    this.options = {
      host: options.host ?? '::',
      ipv6Only: options.ipv6Only ?? false,
      backlog: options.backlog ?? DEFAULT_BACKLOG,
      highWaterMark: options.highWaterMark ?? DEFAULT_TCP_HIGH_WATER_MARK,
      createServer: options.createServer ?? defaultServerFactory,
    };
  }

  /** The target port of this listen port under the current route's first target. */
  get targetPort(): number {
    return this.route.connector.targets[0]?.portAt(this.route.offset) ?? 0;
  }

  /** The bound port (the requested one, or the kernel's choice for port 0). */
  get listenPort(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : this.requestedPort;
  }

  /** Binds the listener; rejects with the bind error (its `code` says why). */
  async start(): Promise<void> {
    try {
      await this.listen(this.options.host);
    } catch (error) {
      // A host without IPv6 cannot bind `::`; fall back to IPv4 like the reference does.
      const code = (error as { code?: unknown }).code;
      if (this.options.host !== '::' || (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL')) {
        throw error;
      }
      await this.listen('0.0.0.0');
    }
    this.requestedPort = this.listenPort;
  }

  private listen(host: string): Promise<void> {
    // pauseOnConnect: no client byte is read before the upstream is connected, so nothing is
    // buffered (or counted) for a dial that fails. allowHalfOpen: a client FIN only ends our
    // write side towards the upstream, so replies still flow back. noDelay: set at accept.
    const server = this.options.createServer(
      {
        allowHalfOpen: true,
        pauseOnConnect: true,
        noDelay: true,
        highWaterMark: this.options.highWaterMark,
      },
      (s) => {
        this.accept(s);
      },
    );
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        server.close();
        reject(error);
      };
      server.once('error', onError);
      server.listen(
        {
          port: this.requestedPort,
          host,
          ipv6Only: this.options.ipv6Only,
          backlog: this.options.backlog,
        },
        () => {
          server.off('error', onError);
          // After the bind, errors are accept errors: log them, keep the listener.
          server.on('error', (error) => {
            this.log.warn(FORWARDER_EVENTS.acceptError, {
              listen_port: this.requestedPort,
              error,
            });
          });
          this.server = server;
          resolve();
        },
      );
    });
  }

  private accept(client: net.Socket): void {
    this.connectionsTotal++;
    const pair: Pair = {
      owner: this,
      client,
      upstream: undefined,
      target: undefined,
      headerBytes: 0,
      closed: 0,
      failed: false,
      budget: this.route.budget?.(),
      quotaExhausted: stopForQuota,
    };
    (client as PairedSocket)[PAIR] = pair;
    this.pairs.add(pair);
    // The client gets error and close handlers before anything else happens (STYLE.md habit 7).
    client.on('error', onClientError);
    client.on('close', onSocketClose);
    if (pair.budget?.exhausted) {
      // The owner's quota is used up: no upstream is dialled, nothing is copied.
      this.quotaRefused++;
      client.destroy();
      return;
    }
    const route = this.route;
    route.connector.connectTcp(route.offset).then(
      ({ socket, target }) => {
        this.onConnected(pair, socket, target);
      },
      (error: unknown) => {
        this.onConnectFailed(pair, route, error);
      },
    );
  }

  private onConnected(pair: Pair, upstream: net.Socket, target: TargetState): void {
    const client = pair.client;
    if (client.destroyed) {
      // The client gave up while we were connecting: nothing to copy.
      upstream.destroy();
      return;
    }
    pair.upstream = upstream;
    pair.target = target;
    (upstream as PairedSocket)[PAIR] = pair;
    upstream.on('error', onUpstreamError);
    upstream.on('close', onSocketClose);
    const version = target.spec.proxyProtocol;
    if (version !== null) {
      // Before any client byte: the client socket is still paused (pauseOnConnect).
      const header = proxyHeader(
        version,
        {
          sourceAddress: client.remoteAddress ?? '::',
          sourcePort: client.remotePort ?? 0,
          destinationAddress: client.localAddress ?? '::',
          destinationPort: client.localPort ?? 0,
        },
        'tcp',
      );
      pair.headerBytes = header.length;
      if (!upstream.write(header)) {
        upstream.setTimeout(PROXY_HEADER_TIMEOUT_MS, onProxyHeaderTimeout);
        upstream.once('drain', onProxyHeaderDrain);
      }
    }
    const budget = pair.budget;
    if (budget) {
      if (budget.exhausted) {
        // Used up while this connection was dialling.
        this.quotaRefused++;
        client.destroy();
        return;
      }
      budget.attach(pair);
    }
    startCopy(client, upstream, budget !== undefined);
  }

  private onConnectFailed(pair: Pair, route: TcpRoute, error: unknown): void {
    this.connectFailures++;
    const client = pair.client;
    this.log.warn(FORWARDER_EVENTS.connErrorAllTargetsFailed, {
      rule_id: route.connector.ruleId,
      listen_port: this.requestedPort,
      source: `${client.remoteAddress ?? ''}:${client.remotePort ?? ''}`,
      code: (error as { code?: unknown }).code,
    });
    pair.failed = true;
    client.destroy();
  }

  // The shared connection listeners, assigned here because they call private methods; they
  // are plain functions handed to on() unbound, with the socket as `this`.
  static {
    onClientError = function (error) {
      const pair = pairOf(this);
      pair.owner.fail(pair, 'client', error);
    };
    onUpstreamError = function (error) {
      const pair = pairOf(this);
      pair.owner.fail(pair, 'upstream', error);
    };
    onSocketClose = function () {
      const pair = pairOf(this);
      pair.owner.onSideClosed(pair, this);
    };
  }

  private fail(pair: Pair, side: 'client' | 'upstream', error: Error): void {
    // Either side's error ends the whole connection; it is counted once.
    if (!pair.failed) {
      pair.failed = true;
      const connected = pair.upstream !== undefined;
      if (connected) this.connErrors++;
      const fields = {
        listen_port: this.requestedPort,
        target: pair.target
          ? `${pair.target.spec.host}:${pair.target.portAt(this.route.offset)}`
          : '',
        side,
        code: (error as { code?: unknown }).code,
        error,
      };
      // Upstream failures are the operator's concern; client resets are routine.
      if (side === 'upstream') this.log.warn(FORWARDER_EVENTS.connError, fields);
      else this.log.debug(FORWARDER_EVENTS.connError, fields);
    }
    pair.client.destroy();
    pair.upstream?.destroy();
  }

  private onSideClosed(pair: Pair, closing: net.Socket): void {
    pair.closed++;
    const upstream = pair.upstream;
    if (upstream === undefined) {
      // Closed before a target was connected: the pair is done (onConnected drops the dial).
      this.release(pair);
      return;
    }
    const other = closing === pair.client ? upstream : pair.client;
    // A side that closed cleanly did so after both of its directions ended, so the other side
    // has ended reading and had end() called: let it flush. Anything else tears it down.
    if (!(other.readableEnded && other.writableEnded)) other.destroy();
    if (pair.closed < 2) return;
    const bytesIn = upstream.bytesWritten - pair.headerBytes;
    const bytesOut = pair.client.bytesWritten;
    this.closedBytesIn += bytesIn;
    this.closedBytesOut += bytesOut;
    if (pair.target) {
      pair.target.bytesIn += bytesIn;
      pair.target.bytesOut += bytesOut;
    }
    this.release(pair);
  }

  private release(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.budget?.detach(pair);
    if (this.pairs.size === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /**
   * Stops accepting at once; resolves when every in-flight connection has ended. With a drain
   * deadline, connections still open when it passes are destroyed.
   */
  async stop(drainMs?: number): Promise<void> {
    const server = this.server;
    this.server = undefined;
    // close() stops accepting now; its callback would wait for the connections, so not awaited.
    server?.close();
    if (this.pairs.size === 0) return;
    const drained = new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    if (drainMs === undefined) {
      await drained;
      return;
    }
    const timer = setTimeout(() => {
      if (this.pairs.size > 0) {
        this.log.info(FORWARDER_EVENTS.connDrainDeadline, {
          listen_port: this.requestedPort,
          destroyed: this.pairs.size,
        });
      }
      for (const pair of this.pairs) {
        pair.client.destroy();
        pair.upstream?.destroy();
      }
    }, drainMs);
    try {
      await drained;
    } finally {
      clearTimeout(timer);
    }
  }

  get accepting(): boolean {
    return this.server !== undefined;
  }

  /** Connections refused because the owner's quota was used up. */
  get quotaRefusedTotal(): number {
    return this.quotaRefused;
  }

  /**
   * The owner got a budget it did not have: its connections already copying start paying per
   * chunk (and stop at once if the budget is already used up).
   */
  meter(budget: QuotaBudget): void {
    for (const pair of this.pairs) {
      const upstream = pair.upstream;
      if (!upstream || pair.failed || (pair.budget && pair.budget.remaining !== Infinity)) continue;
      pair.budget = budget;
      for (const socket of [pair.client, upstream]) {
        socket.off('data', onData);
        socket.off('data', onDataMetered);
        socket.on('data', onDataMetered);
      }
      if (budget.exhausted) pair.quotaExhausted();
      else budget.attach(pair);
    }
  }

  stats(): TcpPortStats {
    let bytesIn = this.closedBytesIn;
    let bytesOut = this.closedBytesOut;
    for (const pair of this.pairs) {
      if (!pair.upstream) continue;
      bytesIn += pair.upstream.bytesWritten - pair.headerBytes;
      bytesOut += pair.client.bytesWritten;
    }
    return {
      listen_port: this.listenPort,
      target_port: this.targetPort,
      bytes_in: bytesIn,
      bytes_out: bytesOut,
      active_connections: this.pairs.size,
      connections_total: this.connectionsTotal,
      conn_errors: this.connErrors,
      connect_failures: this.connectFailures,
    };
  }

  /** Adds the bytes of this listener's open connections to their targets' entries. */
  addLiveTargetBytes(live: Map<TargetState, { bytesIn: number; bytesOut: number }>): void {
    for (const pair of this.pairs) {
      if (!pair.upstream || !pair.target) continue;
      const entry = live.get(pair.target) ?? { bytesIn: 0, bytesOut: 0 };
      entry.bytesIn += pair.upstream.bytesWritten - pair.headerBytes;
      entry.bytesOut += pair.client.bytesWritten;
      live.set(pair.target, entry);
    }
  }
}
