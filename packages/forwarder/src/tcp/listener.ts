/**
 * TCP forwarding for one listen port (reference inventory §5.1): a dual-stack listener keyed by
 * its port that sends each accepted connection to a route — a rule's connector at the port's
 * offset in its range, its connection tally and its RuleGate. A plain port has one route,
 * swappable while it keeps accepting (a replaced rule's open connections keep their upstream, new
 * ones use the new route); a shared SNI port (reference §5.7) hands each connection to its
 * SniDispatch, which peeks the ClientHello and picks the route. Either way the connection then
 * runs the one function `forward`: rule chosen → the route's RuleGate admits it (source lists,
 * owner envelope, rule caps; policy/admission.ts) or refuses it with an RST → dial (a failed
 * connect is the connector's business, counted as `connect_failures`) → the target's PROXY header
 * before any client byte → the peeked bytes, if any → the bidirectional copy with back-pressure
 * and half-close propagation until both sides close (its errors are `conn_errors`), metered when
 * a bandwidth cap applies. Owns every socket it accepts or is handed and tears both down together.
 * Must not depend on anything but node:net, the connect, proxy-protocol, policy and sni stages and
 * @portunus/core — no rule bookkeeping (rule-runtime.ts) and no `stream.pipeline`, which costs
 * ~2.5x the memory per idle connection (bench/README.md, "Forwarder").
 *
 * The copy is `pipe()` reduced to what a socket pair needs ('data' → write, pause on a full
 * destination, resume on 'drain', end on 'end'), with every listener a shared function that
 * finds its pair through a symbol on the socket: no closure is made per connection, which
 * keeps idle connections small and the accept path short. Bulk reads are coalesced: a large
 * chunk corks its destination until the end of the event-loop turn, so the 64 KiB reads of one
 * turn leave in one writev. Figures for both: bench/README.md, "Forwarder".
 *
 * A connection under a bandwidth cap (its rule's or its owner's) copies through the metered
 * variant instead: each chunk is written, debited from the buckets in its way, and when one is
 * in debt the source is paused and parked on that bucket, whose one timer resumes it once the
 * debt is repaid — the read side parks, nothing is ever closed for bandwidth. Every connection
 * keeps a reference to its rule's gate and to the owner limiter it was admitted under, so a
 * live cap change reaches it: `refreshMetering()` moves open connections between the plain and
 * the metered listeners in both directions, and the buckets themselves change rate in place.
 * Uncapped connections never run a line of the metered code.
 *
 * Quotas (reference §5.10) ride on the metered copy: a connection whose owner has a quota budget
 * (policy/quota.ts, found through its gate at admission) is refused with an RST while the budget
 * is used up, and otherwise pays each chunk before it is written; when the budget runs out the
 * connection half-closes both ways and ends (`stopForQuota`). An owner's first budget moves its
 * open connections onto the metered copy (`ConnectionTally.meterQuota`). Owners without a budget
 * stay on the plain copy.
 *
 * The fast path (docs/fast-path.md): a connection with no bandwidth cap on its rule or owner is,
 * once its PROXY header and peeked bytes have left, handed to the splice addon (splice.ts), which
 * moves its bytes in the kernel until both sides close and reports one completion; stats read its
 * counters. Quotas hold there too: such a pair may read up to SPLICE_GRANT_BYTES (never more than
 * the budget has left) and then reports what it read, which is debited like a chunk of the JS
 * copy, before it gets the next allowance; a used-up budget stops it like the JS copy. A bandwidth
 * cap that arrives while a pair is spliced releases it: the addon flushes its pipes and hands the
 * descriptors back, and the pair goes on in the metered copy. If the addon cannot be loaded or the
 * kernel refuses splice, the same connection falls back to the JavaScript copy above.
 *
 * Native accept (docs/fast-path.md, "Native accept"): a plain port whose rule has no gate at all
 * (`nativeTarget`) hands its listening socket to the addon, which accepts, dials the one target
 * and splices with no JavaScript per connection; the tally reads the acceptor's counters. Every
 * live change re-checks (`reviewAccept`): when a gate appears, the addon gives the listening
 * descriptor back and a new net.Server listens on that same socket, so the port stays bound
 * throughout; pairs the addon already holds keep going and count into the tally until they end.
 */
import fs from 'node:fs';
import net from 'node:net';

import type { Logger } from '@portunus/core';

import type { RuleConnector, TargetState } from '../connect/connector.js';
import { FORWARDER_EVENTS } from '../events.js';
import type { RuleGate } from '../policy/admission.js';
import type { QuotaBudget, QuotaHolder } from '../policy/quota.js';
import type { Limiter, Pacer } from '../policy/limiter.js';
import { proxyHeader } from '../proxy-protocol/header.js';
import { SniDispatch } from '../sni/dispatch.js';
import {
  type AcceptCounts,
  type AcceptOwner,
  SpliceEngine,
  type SplicedPair,
  type SpliceResult,
  socketFd,
} from './splice.js';

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

/**
 * Where a connection goes once its rule is chosen: a rule's connector at this port's range
 * offset, the tally its connections are counted in, and the rule's gate that admits them. The
 * tally outlives a replace (the Forwarder hands it to the new route), so a rule's counters stay
 * cumulative.
 */
export interface TcpRoute {
  readonly connector: RuleConnector;
  readonly offset: number;
  readonly tally: ConnectionTally;
  readonly gate: RuleGate;
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
/**
 * The most a metered spliced pair reads before it reports and asks again (docs/fast-path.md,
 * "Quotas"). Each pair is lent at most its share of what the budget has left (lendTo).
 */
export const SPLICE_GRANT_BYTES = 256 * 1024;
/**
 * How far one read of a metered spliced pair may run past its allowance (the addon's kOverrun in
 * packages/forwarder/native/splice.cc, the JavaScript copy's one chunk). Every loan reserves it
 * too, so the owner's spliced pairs together run past the budget by at most this much.
 */
const SPLICE_OVERRUN_BYTES = 64 * 1024;

/**
 * Lends a metered spliced pair its next allowance (QuotaBudget.lend), reserving the one read it
 * may take past it too. When what is left is reserved by the owner's other pairs it gets none
 * for now, and the grant follows once one reports.
 */
function lendTo(pair: Pair, budget: QuotaBudget): number {
  const allowance = budget.lend(SPLICE_GRANT_BYTES, SPLICE_OVERRUN_BYTES, () => {
    if (pair.spliced === undefined || pair.budget !== budget || pair.lent !== 0) return;
    const next = lendTo(pair, budget);
    if (next > 0) splice.grant(pair.spliced, next);
  });
  pair.lent = allowance > 0 ? allowance + SPLICE_OVERRUN_BYTES : 0;
  return allowance;
}

/** A spliced pair's loan is back with its budget (it reported, ended or left splicing). */
function giveBackAllowance(pair: Pair): void {
  if (pair.lent === 0) return;
  const lent = pair.lent;
  pair.lent = 0;
  pair.budget?.giveBack(lent);
}

const defaultServerFactory: TcpServerFactory = (options, onConnection) =>
  net.createServer(options, onConnection);

/**
 * One proxied connection. Kept to plain fields (no per-connection closures at all) because
 * thousands of idle ones may be alive at once.
 */
interface Pair extends QuotaHolder {
  readonly owner: TcpListener;
  readonly route: TcpRoute;
  /** Replaced only when a refused splice hands the descriptors back (a fresh net.Socket). */
  client: net.Socket;
  /** Undefined while the connector is still picking and dialling a target. */
  upstream: net.Socket | undefined;
  target: TargetState | undefined;
  /** Client bytes read before the route was chosen (the peeked ClientHello), sent first. */
  head: Buffer | undefined;
  /** PROXY header bytes written upstream: not client bytes, so not counted as bytes_in. */
  headerBytes: number;
  closed: number;
  failed: boolean;
  /** The rule's gate and the owner limiter this connection was admitted under (for release). */
  readonly gate: RuleGate;
  readonly ownerLimiter: Limiter | undefined;
  /** True while the metered listeners are attached instead of the plain ones. */
  metered: boolean;
  /** Clock time a direction's reader parked on a bucket, or -1 while it is not parked. */
  parkedIn: number;
  parkedOut: number;
  /** The owner's quota budget this connection pays into, if the owner has one. */
  budget: QuotaBudget | undefined;
  /** Set while the splice addon moves this connection's bytes (its sockets are destroyed). */
  spliced: SplicedPair | undefined;
  /** Bytes each way moved by sockets the pair no longer holds (before a hand-over). */
  baseIn: number;
  baseOut: number;
  /** Of the bytes the addon read for this pair, how many the quota has charged or excluded. */
  quotaPaid: number;
  /** What this spliced pair's loan reserves in its budget (allowance + overrun), until it reports. */
  lent: number;
}

/** Client bytes written to the upstream so far (bytes_in), whichever path moves them. */
function bytesInOf(pair: Pair): number {
  if (pair.spliced) return pair.baseIn + pair.spliced.counters[0]!;
  return pair.upstream ? pair.baseIn + pair.upstream.bytesWritten - pair.headerBytes : 0;
}
function bytesOutOf(pair: Pair): number {
  if (pair.spliced) return pair.baseOut + pair.spliced.counters[1]!;
  return pair.upstream ? pair.baseOut + pair.client.bytesWritten : 0;
}

const splice = new SpliceEngine<Pair>();
/** Gates whose rule already logged proxy.splice_selected in this process. */
const spliceAnnounced = new WeakSet<RuleGate>();
let fallbackReported = false;

/**
 * Whether this process moves uncapped TCP connections with splice (Linux, the addon loaded,
 * PORTUNUS_DISABLE_SPLICE unset): the standalone stats socket's `splice_capable`.
 */
export function spliceAvailable(): boolean {
  return splice.availability() === undefined;
}

/** The splice addon's counters, or undefined when it is not loaded (bench/README.md profile). */
export function spliceStats(): ReturnType<typeof splice.stats> {
  return splice.stats();
}

/**
 * A listening socket the addon accepts on for one route (native accept), and what it has left
 * to tell the route's tally: its counters are read live until its last pair ends after it was
 * retired, then folded into the tally's closed counts.
 */
class NativeAccept implements AcceptOwner {
  id = -1;
  /** Connect-error codes (and `accept:` pause codes) already logged (one warning per class). */
  readonly logged = new Set<string>();

  constructor(
    readonly listener: TcpListener,
    /** The port's current route and its target (an edit that keeps `key` updates them). */
    public route: TcpRoute,
    public target: TargetState,
    /** What was handed to the addon: a change of it means a new acceptor. */
    readonly key: string,
  ) {}

  counts(): AcceptCounts {
    return splice.acceptCounts(this.id);
  }

  connectFailed(code: string): void {
    this.route.tally.connectFailures++;
    this.route.connector.reportTcpFailure(this.target, code);
    if (this.logged.has(code)) return;
    this.logged.add(code);
    this.listener.logNativeConnectFailure(this.route, code);
  }

  /** Counted by the addon (acceptStats); logged here as the JavaScript copy logs its own. */
  connError(code: string, side: 'client' | 'upstream'): void {
    this.listener.logConnError(this.route, this.target, side, code, { accept: 'native' });
  }

  acceptPaused(code: string, pausedMs: number): void {
    this.listener.logNativeAcceptPaused(this, code, pausedMs);
  }

  handBack(fds: [number, number], bytesIn: number, bytesOut: number): void {
    this.listener.adoptHandedBack(this, fds, bytesIn, bytesOut);
  }

  idle(): void {
    this.route.tally.retireNative(this);
  }
}

/**
 * The connections of one route (a rule on one port) and their counters. A plain listener has
 * one; a shared SNI port has one per member rule, so a member can be drained and counted alone.
 */
export class ConnectionTally {
  readonly pairs = new Set<Pair>();
  /** Native acceptors whose connections count here (live, or retired with pairs left). */
  readonly natives = new Set<NativeAccept>();
  private drainWaiters: (() => void)[] = [];
  // Bytes of connections already closed; live ones are read from their sockets in stats().
  closedBytesIn = 0;
  closedBytesOut = 0;
  connectionsTotal = 0;
  connErrors = 0;
  connectFailures = 0;

  get active(): number {
    let active = this.pairs.size;
    for (const native of this.natives) active += native.counts().active;
    return active;
  }

  /** False when the pair was already released. */
  release(pair: Pair): boolean {
    if (!this.pairs.delete(pair)) return false;
    this.wakeIfDrained();
    return true;
  }

  /** A retired acceptor's last pair ended: its counts become closed counts. */
  retireNative(native: NativeAccept): void {
    if (!this.natives.delete(native)) return;
    const counts = native.counts();
    this.closedBytesIn += counts.bytesIn;
    this.closedBytesOut += counts.bytesOut;
    this.connectionsTotal += counts.accepted;
    this.connErrors += counts.connErrors;
    native.target.bytesIn += counts.bytesIn;
    native.target.bytesOut += counts.bytesOut;
    native.target.connectionsAccepted += counts.accepted - counts.connectErrors;
    this.wakeIfDrained();
  }

  private wakeIfDrained(): void {
    if (this.drainWaiters.length === 0 || this.active > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * After a cap change of the rule or its owner: open connections move to the metered copy when
   * a bandwidth cap now applies to them, and back to the plain one when none does.
   */
  refreshMetering(): void {
    for (const pair of this.pairs) {
      if (pair.spliced) {
        // Back to JavaScript, where the metered copy runs (onSpliceDone, 'released').
        if (wantsMeter(pair)) splice.release(pair.spliced);
        continue;
      }
      if (pair.upstream !== undefined && !pair.failed) setMetering(pair, wantsMeter(pair));
    }
  }

  /**
   * The owner of this route's rule got a quota budget it did not have: its open connections start
   * paying per chunk on the metered copy (and stop at once if the budget is already used up).
   */
  meterQuota(budget: QuotaBudget): void {
    for (const pair of this.pairs) {
      if (pair.upstream === undefined || pair.failed) continue;
      if (pair.budget !== undefined && pair.budget.remaining !== Infinity) continue;
      pair.budget = budget;
      if (pair.spliced) {
        // Its allowance becomes zero: its next read asks first (spliceNeed), and pays for what
        // it read from now on, including bytes that pass before the grant reaches the addon.
        const counters = pair.spliced.counters;
        pair.quotaPaid = counters[0]! + counters[1]!;
        if (budget.exhausted) pair.quotaExhausted();
        else {
          budget.attach(pair);
          splice.grant(pair.spliced, 0);
        }
        continue;
      }
      setMetering(pair, true);
      if (budget.exhausted) pair.quotaExhausted();
      else budget.attach(pair);
    }
  }

  /**
   * Resolves when every open connection has ended. With a drain deadline, connections still
   * open when it passes are destroyed (and `onDeadline` learns how many).
   */
  async drain(drainMs?: number, onDeadline?: (destroyed: number) => void): Promise<void> {
    if (this.active === 0) return;
    const drained = new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    if (drainMs === undefined) {
      await drained;
      return;
    }
    const timer = setTimeout(() => {
      const active = this.active;
      if (active > 0) onDeadline?.(active);
      for (const native of this.natives) splice.acceptClose(native.id);
      for (const pair of this.pairs) {
        if (pair.spliced) {
          splice.close(pair.spliced);
          continue;
        }
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

  stats(listenPort: number, targetPort: number): TcpPortStats {
    let bytesIn = this.closedBytesIn;
    let bytesOut = this.closedBytesOut;
    let active = this.pairs.size;
    let total = this.connectionsTotal;
    let connErrors = this.connErrors;
    for (const pair of this.pairs) {
      bytesIn += bytesInOf(pair);
      bytesOut += bytesOutOf(pair);
    }
    for (const native of this.natives) {
      const counts = native.counts();
      bytesIn += counts.bytesIn;
      bytesOut += counts.bytesOut;
      active += counts.active;
      total += counts.accepted;
      connErrors += counts.connErrors;
    }
    return {
      listen_port: listenPort,
      target_port: targetPort,
      bytes_in: bytesIn,
      bytes_out: bytesOut,
      active_connections: active,
      connections_total: total,
      conn_errors: connErrors,
      connect_failures: this.connectFailures,
    };
  }

  /** Adds the bytes of the open connections to their targets' entries. */
  addLiveTargetBytes(live: Map<TargetState, { bytesIn: number; bytesOut: number }>): void {
    for (const pair of this.pairs) {
      if (!pair.upstream || !pair.target) continue;
      const entry = live.get(pair.target) ?? { bytesIn: 0, bytesOut: 0 };
      entry.bytesIn += bytesInOf(pair);
      entry.bytesOut += bytesOutOf(pair);
      live.set(pair.target, entry);
    }
    for (const native of this.natives) {
      const counts = native.counts();
      const entry = live.get(native.target) ?? { bytesIn: 0, bytesOut: 0 };
      entry.bytesIn += counts.bytesIn;
      entry.bytesOut += counts.bytesOut;
      live.set(native.target, entry);
    }
  }
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
let trySplice: (pair: Pair) => void;
/** A listener's logger for the process-wide pipe-size event (set by the first hand-over). */
let splicePipeLog: Logger | undefined;
const EMPTY = Buffer.alloc(0);
let onClientError: (this: net.Socket, error: Error) => void;
let onUpstreamError: (this: net.Socket, error: Error) => void;
let onSocketClose: (this: net.Socket) => void;

function ignoreError(): void {
  // A refused socket is being reset; whatever it reports now changes nothing.
}

function onProxyHeaderTimeout(this: net.Socket): void {
  this.destroy(Object.assign(new Error('PROXY header not sent in time'), { code: 'ETIMEDOUT' }));
}
function onProxyHeaderDrain(this: net.Socket): void {
  this.setTimeout(0, onProxyHeaderTimeout);
}

/** Wires the copy both ways and lets client bytes flow; the upstream is connected. */
function startCopy(pair: Pair, client: net.Socket, upstream: net.Socket): void {
  if (wantsMeter(pair)) {
    pair.metered = true;
    client.on('data', onMeteredData);
    client.on('drain', onMeteredDrain);
    client.on('end', onEnd);
    upstream.on('data', onMeteredData);
    upstream.on('drain', onMeteredDrain);
    upstream.on('end', onEnd);
    client.resume();
    return;
  }
  client.on('data', onData);
  client.on('drain', onDrain);
  client.on('end', onEnd);
  upstream.on('data', onData);
  upstream.on('drain', onDrain);
  upstream.on('end', onEnd);
  // Attaching 'data' does not resume a socket accepted with pauseOnConnect (or paused by a peek).
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
function onDrain(this: net.Socket): void {
  peerOf(this).resume();
}
/** A FIN from one side ends our write side towards the other: the half-close propagation. */
function onEnd(this: net.Socket): void {
  peerOf(this).end();
}

// The metered copy (module comment). `inbound` is client → upstream (bandwidth_in).

function wantsMeter(pair: Pair): boolean {
  return (
    pair.gate.limiter.meters ||
    pair.ownerLimiter?.meters === true ||
    (pair.budget !== undefined && pair.budget.remaining !== Infinity)
  );
}

/**
 * A metered spliced pair spent its allowance: what it read is paid (a charge that uses the budget
 * up stops every holder, this pair too), then it may read up to what is left, at most a grant.
 */
function spliceNeed(pair: Pair, readTotal: number): void {
  const spliced = pair.spliced;
  if (spliced === undefined) return;
  const used = Math.max(0, readTotal - pair.quotaPaid);
  pair.quotaPaid = Math.max(pair.quotaPaid, readTotal);
  giveBackAllowance(pair);
  const budget = pair.budget;
  // A budget lifted by REMOVE (or none at all) leaves the pair unmetered.
  if (budget === undefined || budget.remaining === Infinity) {
    splice.grant(spliced, -1);
    return;
  }
  // What it read has moved already: charged even when another holder used the budget up.
  budget.charge(used);
  if (budget.exhausted) {
    splice.stop(spliced);
    return;
  }
  const allowance = lendTo(pair, budget);
  // None free now: the grant follows when another pair reports (lendTo).
  if (allowance > 0) splice.grant(spliced, allowance);
}

/**
 * The owner's quota ran out (QuotaHolder, `this` is the pair): both directions stop reading and
 * half-close, and each socket ends once its FIN is flushed — bytes already paid for still leave.
 * A spliced pair does the same in the addon (its pipes are flushed first).
 */
function stopForQuota(this: Pair): void {
  if (this.spliced) {
    splice.stop(this.spliced);
    return;
  }
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

function pacerOf(limiter: Limiter, inbound: boolean): Pacer {
  return inbound ? limiter.bandwidthIn : limiter.bandwidthOut;
}

/** The first bucket in this direction's way that is in debt, or undefined. */
function pacerInDebt(pair: Pair, inbound: boolean): Pacer | undefined {
  const rule = pacerOf(pair.gate.limiter, inbound);
  if (rule.bucket !== null && rule.bucket.tokens() < 0) return rule;
  const owner = pair.ownerLimiter && pacerOf(pair.ownerLimiter, inbound);
  if (owner?.bucket != null && owner.bucket.tokens() < 0) return owner;
  return undefined;
}

function onMeteredData(this: net.Socket, chunk: Buffer): void {
  const pair = pairOf(this);
  // Paid for before it is written; refused once the quota is used up (the stop is on its way).
  if (pair.budget?.debit(chunk.length) === false) return;
  const inbound = this === pair.client;
  const peer = inbound ? pair.upstream! : pair.client;
  // The owner's bucket and the rule's are both charged; either in debt parks the reader.
  pacerOf(pair.gate.limiter, inbound).bucket?.debit(chunk.length);
  if (pair.ownerLimiter) pacerOf(pair.ownerLimiter, inbound).bucket?.debit(chunk.length);
  const written = peer.write(chunk);
  const debt = pacerInDebt(pair, inbound);
  if (debt !== undefined) park(pair, this, inbound, debt);
  else if (!written) this.pause();
}

function park(pair: Pair, source: net.Socket, inbound: boolean, pacer: Pacer): void {
  const now = pair.gate.clock.now();
  if (inbound) {
    if (pair.parkedIn < 0) pair.parkedIn = now;
  } else if (pair.parkedOut < 0) pair.parkedOut = now;
  source.pause();
  pacer.park(source, wakeMetered);
}

/** Ends a direction's parked time and adds it to the rule's and the owner's throttle time. */
function unparkTime(pair: Pair, inbound: boolean): void {
  const since = inbound ? pair.parkedIn : pair.parkedOut;
  if (since < 0) return;
  const micros = (pair.gate.clock.now() - since) * 1000;
  const rule = pair.gate.limiter;
  const owner = pair.ownerLimiter;
  if (inbound) {
    pair.parkedIn = -1;
    rule.throttleMicrosIn += micros;
    if (owner) owner.throttleMicrosIn += micros;
  } else {
    pair.parkedOut = -1;
    rule.throttleMicrosOut += micros;
    if (owner) owner.throttleMicrosOut += micros;
  }
}

/** A pacer's timer found its bucket out of debt: resume unless another bucket or the peer holds. */
function wakeMetered(item: object): void {
  const source = item as net.Socket;
  const pair = pairOf(source);
  if (!pair.metered || source.destroyed) return;
  const inbound = source === pair.client;
  const debt = pacerInDebt(pair, inbound);
  if (debt !== undefined) {
    debt.park(source, wakeMetered);
    return;
  }
  unparkTime(pair, inbound);
  const peer = inbound ? pair.upstream! : pair.client;
  // A full destination resumes the source on its 'drain' instead.
  if (!peer.writableNeedDrain) source.resume();
}

function onMeteredDrain(this: net.Socket): void {
  const pair = pairOf(this);
  const source = peerOf(this);
  const parked = source === pair.client ? pair.parkedIn : pair.parkedOut;
  if (parked < 0) source.resume();
}

/** Takes both directions off every bucket they may be parked on, ending their parked time. */
function unparkAll(pair: Pair): void {
  for (const inbound of [true, false]) {
    const source = inbound ? pair.client : pair.upstream;
    if (!source) continue;
    pacerOf(pair.gate.limiter, inbound).unpark(source);
    if (pair.ownerLimiter) pacerOf(pair.ownerLimiter, inbound).unpark(source);
    unparkTime(pair, inbound);
  }
}

/** Moves a connected pair between the plain and the metered listeners (a live cap change). */
function setMetering(pair: Pair, metered: boolean): void {
  const upstream = pair.upstream;
  if (pair.metered === metered || upstream === undefined) return;
  const sockets = [pair.client, upstream];
  if (metered) {
    for (const socket of sockets) {
      socket.off('data', onData);
      socket.off('drain', onDrain);
      socket.on('data', onMeteredData);
      socket.on('drain', onMeteredDrain);
    }
    pair.metered = true;
    return;
  }
  pair.metered = false;
  unparkAll(pair);
  for (const socket of sockets) {
    socket.off('data', onMeteredData);
    socket.off('drain', onMeteredDrain);
    socket.on('data', onData);
    socket.on('drain', onDrain);
  }
  // A reader that was parked goes on unless its destination is full (its 'drain' resumes it).
  if (!upstream.writableNeedDrain) pair.client.resume();
  if (!pair.client.writableNeedDrain) upstream.resume();
}

/** A connection's record, for an admitted client (its upstream is dialled next). */
function newPair(
  owner: TcpListener,
  route: TcpRoute,
  client: net.Socket,
  head: Buffer | undefined,
  budget: QuotaBudget | undefined,
): Pair {
  const pair: Pair = {
    owner,
    route,
    client,
    upstream: undefined,
    target: undefined,
    head,
    headerBytes: 0,
    closed: 0,
    failed: false,
    gate: route.gate,
    ownerLimiter: route.gate.owner,
    metered: false,
    parkedIn: -1,
    parkedOut: -1,
    budget,
    quotaExhausted: stopForQuota,
    spliced: undefined,
    baseIn: 0,
    baseOut: 0,
    quotaPaid: 0,
    lent: 0,
  };
  (client as PairedSocket)[PAIR] = pair;
  return pair;
}

export class TcpListener {
  /** The route of a plain port; undefined on a shared SNI port. */
  route: TcpRoute | undefined;
  /** The ClientHello dispatch of a shared SNI port; undefined on a plain port. */
  readonly sni: SniDispatch | undefined;
  private requestedPort: number;
  private readonly options: Required<Omit<TcpOptions, 'createServer'>> & {
    createServer: TcpServerFactory;
  };
  private readonly log: Logger;
  private server: net.Server | undefined;
  /** Set while the addon accepts on this port's socket instead of `server` (native accept). */
  private native: NativeAccept | undefined;
  /** `forward` bound once, handed to the SNI dispatch. */
  private readonly forwardChosen = (client: net.Socket, route: TcpRoute, head: Buffer): void => {
    this.forward(client, route, head);
  };

  constructor(
    listenPort: number,
    router: TcpRoute | SniDispatch,
    log: Logger,
    options: TcpOptions = {},
  ) {
    this.requestedPort = listenPort;
    if (router instanceof SniDispatch) this.sni = router;
    else this.route = router;
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
    const route = this.route;
    return route ? (route.connector.targets[0]?.portAt(route.offset) ?? 0) : 0;
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
    this.sni?.bound(this.requestedPort);
    this.reviewAccept();
  }

  private createServer(): net.Server {
    // pauseOnConnect: no client byte is read before the upstream is connected (or, on an SNI
    // port, before the peek reads the hello), so nothing is buffered or counted for a dial that
    // fails. allowHalfOpen: a client FIN only ends our write side towards the upstream, so
    // replies still flow back. noDelay: set at accept.
    return this.options.createServer(
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
  }

  private logAcceptErrors(server: net.Server): void {
    // After the bind, errors are accept errors: log them, keep the listener.
    server.on('error', (error) => {
      this.log.warn(
        this.sni ? FORWARDER_EVENTS.sniListenerAcceptError : FORWARDER_EVENTS.acceptError,
        { listen_port: this.requestedPort, error },
      );
    });
  }

  /**
   * Where the addon may accept this port's connections itself, or undefined while anything
   * must see each connection in JavaScript: an SNI port, source lists, caps on the rule or its
   * owner, an owner's quota budget, more than one target, a PROXY header, a target given by name,
   * splice unavailable, or a test's own server factory (it observes accepts).
   */
  private nativeTarget():
    { route: TcpRoute; target: TargetState; key: string; connectTimeoutMs: number } | undefined {
    const route = this.route;
    if (route === undefined || this.options.createServer !== defaultServerFactory) return undefined;
    if (this.server === undefined && this.native === undefined) return undefined;
    const gate = route.gate;
    if (!gate.admitsAll) return undefined;
    const budget = gate.quotaBudget?.();
    if (budget !== undefined && budget.remaining !== Infinity) return undefined;
    const targets = route.connector.targets;
    const target = targets[0];
    if (targets.length !== 1 || target === undefined) return undefined;
    if (target.spec.proxyProtocol !== null || net.isIP(target.spec.host) === 0) return undefined;
    const connectTimeoutMs = route.connector.nativeDialTimeoutMs;
    if (connectTimeoutMs === undefined || splice.availability() !== undefined) return undefined;
    const key = `${target.spec.host}|${target.portAt(route.offset)}|${connectTimeoutMs}`;
    return { route, target, key, connectTimeoutMs };
  }

  /**
   * Moves accepting between the addon and JavaScript after a change of the rule, its owner or
   * its quota (and at start). Either way the listening socket stays bound: it is only ever
   * duplicated or handed back, never closed in between.
   */
  reviewAccept(): void {
    const next = this.nativeTarget();
    const current = this.native;
    if (
      current !== undefined &&
      next?.key === current.key &&
      next.route.tally === current.route.tally
    ) {
      // An edit that changes nothing the addon uses: it keeps accepting.
      current.route = next.route;
      current.target = next.target;
      return;
    }
    // Gated now: the open pairs come back for the gate. A new target: they keep their upstream,
    // as a replaced rule's open connections do.
    if (current !== undefined) this.acceptInJavaScript(current, next === undefined);
    if (next !== undefined) this.acceptNatively(next);
  }

  private acceptNatively(next: {
    route: TcpRoute;
    target: TargetState;
    key: string;
    connectTimeoutMs: number;
  }): void {
    const { route, target } = next;
    const server = this.server;
    const fd = (server as { _handle?: { fd?: number } | null } | undefined)?._handle?.fd;
    if (server === undefined || typeof fd !== 'number' || fd < 0) return;
    const native = new NativeAccept(this, route, target, next.key);
    const id = splice.acceptOn(
      fd,
      {
        host: target.spec.host,
        port: target.portAt(route.offset),
        connectTimeoutMs: next.connectTimeoutMs,
      },
      native,
    );
    if (id === undefined) return;
    native.id = id;
    this.native = native;
    route.tally.natives.add(native);
    // libuv closes only its own descriptor; the addon's duplicate keeps the socket listening.
    this.server = undefined;
    server.close();
    this.log.info(FORWARDER_EVENTS.spliceSelected, {
      rule_id: route.connector.ruleId,
      listen_port: this.requestedPort,
      accept: 'native',
    });
  }

  /**
   * The addon stops accepting and a new server listens on the very same socket; with `handBack`
   * the pairs the addon holds come back too (adoptHandedBack), so a new gate's caps and quota
   * reach them.
   */
  private acceptInJavaScript(native: NativeAccept, handBack: boolean): void {
    this.native = undefined;
    const fd = splice.acceptOff(native.id);
    // After the accepts stopped, so no pair accepted later stays behind in the addon.
    if (handBack) splice.acceptRelease(native.id);
    if (fd < 0) return;
    const server = this.createServer();
    this.logAcceptErrors(server);
    // Synchronous for a handle: the socket is listening again before this returns.
    server.listen({ fd });
    this.server = server;
  }

  /**
   * A natively accepted pair handed back after a gate arrived: it becomes a pair of the tally
   * (counted in its gate, paying the owner's budget if one exists now) and goes on in the
   * JavaScript copy, metered if a cap or quota says so.
   */
  adoptHandedBack(
    native: NativeAccept,
    fds: [number, number],
    bytesIn: number,
    bytesOut: number,
  ): void {
    const route = native.route;
    const gate = route.gate;
    const budget = gate.quotaBudget?.();
    const client = new net.Socket({
      fd: fds[0],
      allowHalfOpen: true,
      readable: true,
      writable: true,
    });
    const pair = newPair(this, route, client, undefined, budget);
    pair.target = native.target;
    pair.baseIn = bytesIn;
    pair.baseOut = bytesOut;
    // The gate counts it as admitted, so its release balances (no cap refuses an open one).
    gate.limiter.active++;
    if (pair.ownerLimiter !== undefined) pair.ownerLimiter.active++;
    route.tally.pairs.add(pair);
    // The addon no longer counts it: from here the tally does.
    route.tally.connectionsTotal++;
    native.target.connectionsAccepted++;
    if (budget?.exhausted === true) {
      this.resumeInJavaScript(pair, fds, client);
      pair.quotaExhausted();
      return;
    }
    budget?.attach(pair);
    // Spliced again (a JS hand-over, metered if a quota applies) unless a bandwidth cap now does.
    this.resumeInJavaScript(pair, fds, client, { spliceAgain: true });
  }

  /**
   * `rule.conn_error` of a connection that failed after its dial, whichever path moved it.
   * Upstream failures are the operator's concern (warn); client resets are routine (debug).
   */
  logConnError(
    route: TcpRoute,
    target: TargetState | undefined,
    side: 'client' | 'upstream',
    code: string,
    extra: Record<string, unknown> = {},
  ): void {
    const fields = {
      rule_id: route.connector.ruleId,
      listen_port: this.requestedPort,
      target: target ? `${target.spec.host}:${target.portAt(route.offset)}` : '',
      side,
      code,
      ...extra,
    };
    if (side === 'upstream') this.log.warn(FORWARDER_EVENTS.connError, fields);
    else this.log.debug(FORWARDER_EVENTS.connError, fields);
  }

  /**
   * Native accepts paused for want of descriptors: warned once per errno per acceptor, then at
   * debug (a process out of descriptors pauses ten times a second per worker).
   */
  logNativeAcceptPaused(native: NativeAccept, code: string, pausedMs: number): void {
    const fields = {
      rule_id: native.route.connector.ruleId,
      listen_port: this.requestedPort,
      code,
      paused_ms: pausedMs,
      accept: 'native',
    };
    const first = !native.logged.has(`accept:${code}`);
    native.logged.add(`accept:${code}`);
    if (first) this.log.warn(FORWARDER_EVENTS.acceptError, fields);
    else this.log.debug(FORWARDER_EVENTS.acceptError, fields);
  }

  /**
   * The first failed dial of each errno per acceptor (`cause`), as the JS path's event; the
   * connector logs every dial failure at debug (target.dial_failed) with its code.
   */
  logNativeConnectFailure(route: TcpRoute, cause: string): void {
    this.log.warn(FORWARDER_EVENTS.connErrorAllTargetsFailed, {
      rule_id: route.connector.ruleId,
      listen_port: this.requestedPort,
      source: '',
      code: 'all_targets_failed',
      cause,
      accept: 'native',
    });
  }

  private listen(host: string): Promise<void> {
    const server = this.createServer();
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
          this.logAcceptErrors(server);
          this.server = server;
          resolve();
        },
      );
    });
  }

  private accept(client: net.Socket): void {
    const route = this.route;
    if (route !== undefined) this.forward(client, route, undefined);
    else this.sni!.admit(client, this.forwardChosen);
  }

  /**
   * The one per-connection path once a rule is chosen, for plain and SNI ports alike: the rule's
   * gate admits the connection (a refusal is an RST before any upstream dial), it is counted on
   * its route, dialled through the route's connector, then (onConnected) PROXY header → `head` →
   * copy. The client socket is paused and has no listeners yet.
   */
  private forward(client: net.Socket, route: TcpRoute, head: Buffer | undefined): void {
    const gate = route.gate;
    const budget = gate.quotaBudget?.();
    if (budget?.exhausted === true || !gate.admit(client.remoteAddress, false)) {
      client.on('error', ignoreError);
      client.resetAndDestroy();
      return;
    }
    const tally = route.tally;
    tally.connectionsTotal++;
    const pair = newPair(this, route, client, head, budget);
    tally.pairs.add(pair);
    // The client gets error and close handlers before anything else happens (STYLE.md habit 7).
    client.on('error', onClientError);
    client.on('close', onSocketClose);
    route.connector.connectTcp(route.offset).then(
      ({ socket, target }) => {
        this.onConnected(pair, socket, target);
      },
      (error: unknown) => {
        this.onConnectFailed(pair, error);
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
    const head = pair.head;
    const budget = pair.budget;
    if (budget !== undefined) {
      // Used up while dialling, or by the peeked ClientHello: nothing is copied.
      if (budget.exhausted || (head !== undefined && !budget.debit(head.length))) {
        client.destroy();
        return;
      }
      budget.attach(pair);
    }
    if (head !== undefined) {
      // The peeked ClientHello, replayed as the first client bytes (after the PROXY header).
      pair.head = undefined;
      upstream.write(head);
    }
    if (this.spliceable(pair)) trySplice(pair);
    else startCopy(pair, client, upstream);
  }

  /**
   * Whether this connection may take the fast path: the addon works in this process, and no
   * bandwidth cap applies (caps, source lists and SNI have decided already, at admission).
   */
  private spliceable(pair: Pair): boolean {
    if (pair.gate.limiter.meters || pair.ownerLimiter?.meters === true) return false;
    const unavailable = splice.availability();
    if (unavailable === undefined) return true;
    if (!fallbackReported && unavailable.reason !== 'disabled') {
      fallbackReported = true;
      this.log.warn(FORWARDER_EVENTS.spliceUnsupportedFallback, { ...unavailable });
    }
    return false;
  }

  private onConnectFailed(pair: Pair, error: unknown): void {
    pair.route.tally.connectFailures++;
    const client = pair.client;
    this.log.warn(FORWARDER_EVENTS.connErrorAllTargetsFailed, {
      rule_id: pair.route.connector.ruleId,
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
    splice.install({
      need: spliceNeed,
      done: (pair, result) => {
        pair.owner.onSpliceDone(pair, result);
      },
      pipeSizeFailed: (code) => {
        splicePipeLog?.warn(FORWARDER_EVENTS.splicePipeSizeFailed, { code });
      },
    });
    trySplice = (pair) => {
      pair.owner.trySplice(pair);
    };
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
      if (connected) pair.route.tally.connErrors++;
      const code = (error as { code?: unknown }).code;
      this.logConnError(pair.route, pair.target, side, typeof code === 'string' ? code : '', {
        error,
      });
    }
    pair.client.destroy();
    pair.upstream?.destroy();
  }

  private onSideClosed(pair: Pair, closing: net.Socket): void {
    pair.closed++;
    const tally = pair.route.tally;
    const upstream = pair.upstream;
    if (upstream === undefined) {
      // Closed before a target was connected: the pair is done (onConnected drops the dial).
      this.release(pair);
      return;
    }
    const other = closing === pair.client ? upstream : pair.client;
    // A side that closed cleanly did so after both of its directions ended, so the other side
    // has ended reading and had end() called: let it flush. A side whose FIN we sent before its
    // reading ended (a quota stop) is still flushing bytes already paid for: its own 'finish'
    // ends it. Anything else tears it down.
    const flushing = other.writableEnded && (other.readableEnded || !other.writableFinished);
    if (!flushing) other.destroy();
    if (pair.closed < 2) return;
    const bytesIn = bytesInOf(pair);
    const bytesOut = bytesOutOf(pair);
    tally.closedBytesIn += bytesIn;
    tally.closedBytesOut += bytesOut;
    if (pair.target) {
      pair.target.bytesIn += bytesIn;
      pair.target.bytesOut += bytesOut;
    }
    this.release(pair);
  }

  /**
   * Hands a connected pair to the addon once nothing of it waits in user space: bytes a socket
   * already read go to the other side first, and queued writes (the PROXY header, the peeked
   * hello) must have reached the kernel, so the addon's first byte follows them in order.
   */
  private trySplice(pair: Pair): void {
    const client = pair.client;
    const upstream = pair.upstream!;
    if (pair.failed || client.destroyed || upstream.destroyed) return;
    if (!this.spliceable(pair)) {
      startCopy(pair, client, upstream);
      return;
    }
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      if (from.readableLength === 0) continue;
      const chunk = from.read() as Buffer | null;
      if (chunk === null) continue;
      pair.budget?.debit(chunk.length);
      to.write(chunk);
    }
    const pending =
      upstream.writableLength > 0 ? upstream : client.writableLength > 0 ? client : undefined;
    if (pending !== undefined || socketFd(client) < 0 || socketFd(upstream) < 0) {
      // The empty write's callback runs once every earlier write has left.
      if (pending !== undefined) {
        pending.write(EMPTY, () => {
          trySplice(pair);
        });
      } else startCopy(pair, client, upstream);
      return;
    }
    const budget = pair.budget;
    const metered = budget !== undefined && budget.remaining !== Infinity;
    const allowance = metered ? lendTo(pair, budget) : -1;
    // What these sockets wrote joins the base (after a hand-back it holds what moved before).
    const writtenIn = upstream.bytesWritten - pair.headerBytes;
    const writtenOut = client.bytesWritten;
    // The sockets are destroyed inside handOver; that end is not the connection's.
    for (const socket of [client, upstream]) {
      socket.removeAllListeners();
      socket.setTimeout(0);
      socket.on('error', ignoreError);
    }
    const spliced = splice.handOver(client, upstream, allowance, pair);
    if (spliced === undefined) {
      giveBackAllowance(pair);
      client.on('error', onClientError);
      client.on('close', onSocketClose);
      upstream.on('error', onUpstreamError);
      upstream.on('close', onSocketClose);
      startCopy(pair, client, upstream);
      return;
    }
    pair.baseIn += writtenIn;
    pair.baseOut += writtenOut;
    pair.headerBytes = 0;
    pair.quotaPaid = 0;
    pair.spliced = spliced;
    splicePipeLog ??= this.log;
    if (!spliceAnnounced.has(pair.gate)) {
      spliceAnnounced.add(pair.gate);
      this.log.info(FORWARDER_EVENTS.spliceSelected, {
        rule_id: pair.route.connector.ruleId,
        listen_port: this.requestedPort,
      });
    }
  }

  /** The addon's one completion of a spliced pair: counts, errors and release, as onSideClosed. */
  private onSpliceDone(pair: Pair, result: SpliceResult): void {
    pair.spliced = undefined;
    giveBackAllowance(pair);
    const unpaid = result.readTotal - pair.quotaPaid;
    if (unpaid > 0) pair.budget?.charge(unpaid);
    const bytesIn = pair.baseIn + result.bytesIn;
    const bytesOut = pair.baseOut + result.bytesOut;
    if (result.fds !== undefined) {
      pair.baseIn = bytesIn;
      pair.baseOut = bytesOut;
      if (result.reason === 'unsupported') this.spliceRefused();
      this.resumeInJavaScript(pair, result.fds);
      return;
    }
    const tally = pair.route.tally;
    tally.closedBytesIn += bytesIn;
    tally.closedBytesOut += bytesOut;
    if (pair.target) {
      pair.target.bytesIn += bytesIn;
      pair.target.bytesOut += bytesOut;
    }
    if (result.reason === 'error') {
      tally.connErrors++;
      this.logConnError(pair.route, pair.target, result.side, result.code ?? '');
    }
    this.release(pair);
  }

  /** The kernel refused splice before a byte moved: later connections skip the addon. */
  private spliceRefused(): void {
    splice.markUnsupported();
    if (!fallbackReported) {
      fallbackReported = true;
      this.log.warn(FORWARDER_EVENTS.spliceUnsupportedFallback, { reason: 'einval' });
    }
  }

  /**
   * A pair's descriptors came back from the addon (splice refused, or released for a new cap):
   * wrapped in fresh sockets, it goes on in the JavaScript copy, metered if a cap or quota says so.
   */
  private resumeInJavaScript(
    pair: Pair,
    fds: [number, number],
    wrapped?: net.Socket,
    { spliceAgain = false } = {},
  ): void {
    const options = { allowHalfOpen: true, readable: true, writable: true };
    const client = wrapped ?? new net.Socket({ fd: fds[0], ...options });
    const upstream = new net.Socket({ fd: fds[1], ...options });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    pair.headerBytes = 0;
    pair.client = client;
    pair.upstream = upstream;
    (client as PairedSocket)[PAIR] = pair;
    (upstream as PairedSocket)[PAIR] = pair;
    client.on('error', onClientError);
    client.on('close', onSocketClose);
    upstream.on('error', onUpstreamError);
    upstream.on('close', onSocketClose);
    if (spliceAgain) this.trySplice(pair);
    else startCopy(pair, client, upstream);
  }

  /** Ends a pair's accounting once: its tally, its parked time and its gate's counts. */
  private release(pair: Pair): void {
    if (!pair.route.tally.release(pair)) return;
    pair.budget?.detach(pair);
    if (pair.metered) unparkAll(pair);
    pair.gate.release(pair.ownerLimiter);
  }

  /**
   * Stops accepting at once (connections still peeking their ClientHello are dropped). A plain
   * port then resolves when every in-flight connection has ended; with a drain deadline,
   * connections still open when it passes are destroyed. A shared SNI port's connections belong
   * to its member rules, whose owner drains them.
   */
  async stop(drainMs?: number): Promise<void> {
    const server = this.server;
    this.server = undefined;
    // close() stops accepting now; its callback would wait for the connections, so not awaited.
    server?.close();
    const native = this.native;
    if (native !== undefined) {
      // Accepts stop now; the addon's pairs finish within the drain below.
      this.native = undefined;
      const fd = splice.acceptOff(native.id);
      if (fd >= 0) fs.closeSync(fd);
    }
    if (this.sni) {
      this.sni.stopped();
      return;
    }
    await this.route?.tally.drain(drainMs, (destroyed) => {
      this.log.info(FORWARDER_EVENTS.connDrainDeadline, {
        listen_port: this.requestedPort,
        destroyed,
      });
    });
  }

  /**
   * After a cap change of the rule or its owner: open connections move to the metered copy when
   * a bandwidth cap now applies to them, and back to the plain one when none does.
   */
  refreshMetering(): void {
    this.route?.tally.refreshMetering();
    this.reviewAccept();
  }

  get accepting(): boolean {
    return this.server !== undefined || this.native !== undefined;
  }

  /** The counters of a plain port's route (an SNI port counts per member route). */
  stats(): TcpPortStats {
    const tally = this.route?.tally ?? new ConnectionTally();
    return tally.stats(this.listenPort, this.targetPort);
  }

  /** Adds the bytes of this plain port's open connections to their targets' entries. */
  addLiveTargetBytes(live: Map<TargetState, { bytesIn: number; bytesOut: number }>): void {
    this.route?.tally.addLiveTargetBytes(live);
  }
}
