/**
 * The JavaScript side of the fast path (docs/fast-path.md): loads the splice addon built from
 * packages/forwarder/native at install time, says whether this process can splice at all, and
 * moves one connected socket pair into it. `handOver` takes the descriptors out of libuv without
 * two owners at once: the addon duplicates both, the net.Sockets are destroyed (libuv closes its
 * descriptors synchronously inside destroy()), and only then is the pair armed on the addon's
 * epoll. A pair can also be released: the addon flushes its pipes and hands the descriptors back
 * (the same road a refused splice takes), wrapped by the caller in fresh sockets. The addon's
 * events come back here in batches and go to the one `SpliceHandlers` the
 * TCP listener installs. Owns the addon handle and the id → pair map; must not depend on rules,
 * gates or budgets (listener.ts decides eligibility and pays quotas).
 *
 * Native accept (docs/fast-path.md, "Native accept"): `acceptOn` gives the addon a listening
 * socket, whose connections it then accepts, dials and splices by itself; `acceptOff` takes the
 * listener back (still bound) for JavaScript to accept on again. Its counters are read on demand.
 */
import { createRequire } from 'node:module';
import type net from 'node:net';
import os from 'node:os';

interface NativeSplice {
  init(onEvents: (flat: number[]) => void, threads: number): void;
  adopt(
    clientFd: number,
    upstreamFd: number,
    counters: Float64Array,
    allowance: number,
    forceEinval: boolean,
  ): number;
  run(id: number): void;
  grant(id: number, bytes: number): void;
  stop(id: number): void;
  close(id: number): void;
  release(id: number): void;
  ref(): void;
  unref(): void;
  stats(): SpliceStats;
  acceptOn(listenFd: number, host: string, port: number, connectTimeoutMs: number): number;
  acceptOff(id: number): number;
  acceptStats(id: number, out: Float64Array): void;
  acceptClose(id: number): void;
  acceptRelease(id: number): void;
}

/**
 * What a native acceptor tells its owner (listener.ts): a failed dial, a connected pair that
 * ended in an error, accepts paused for want of descriptors, a pair handed back after
 * `acceptRelease` (its descriptors, now the owner's, and the bytes it moved), its last pair gone.
 */
export interface AcceptOwner {
  connectFailed(code: string): void;
  connError(code: string, side: 'client' | 'upstream'): void;
  acceptPaused(code: string, pausedMs: number): void;
  handBack(fds: [number, number], bytesIn: number, bytesOut: number): void;
  idle(): void;
}

/** The counters of a native acceptor since it started. */
export interface AcceptCounts {
  accepted: number;
  active: number;
  bytesIn: number;
  bytesOut: number;
  connectErrors: number;
  connErrors: number;
  /** Times a worker stopped polling the listener for a while (out of descriptors). */
  acceptPauses: number;
}

/** Counters of the addon since the process started (bench/README.md's profile uses them). */
export interface SpliceStats {
  pairs: number;
  pipes_created: number;
  pipes_reused: number;
  pipe_size_failed: number;
  splices: number;
  wakeups: number;
}

export type SpliceEndReason = 'eof' | 'error' | 'quota' | 'closed' | 'unsupported' | 'released';
const REASONS: readonly SpliceEndReason[] = [
  'eof',
  'error',
  'quota',
  'closed',
  'unsupported',
  'released',
];

export interface SpliceResult {
  bytesIn: number;
  bytesOut: number;
  /** Bytes the pair read from both sockets in all (quotas charge from this). */
  readTotal: number;
  reason: SpliceEndReason;
  /** The errno name of an 'error' end, e.g. ECONNRESET; undefined otherwise. */
  code: string | undefined;
  /** Which socket failed: the client (0) or the upstream (1). */
  side: 'client' | 'upstream';
  /**
   * On 'unsupported' (nothing moved) and 'released' (pipes flushed): the descriptors, now the
   * caller's, to copy in JavaScript.
   */
  fds: [number, number] | undefined;
}

/** A pair inside the addon: its id and the counters the addon writes into. */
export interface SplicedPair {
  readonly id: number;
  /**
   * [bytes_in, bytes_out] written to the destinations (the addon stores them), then the control
   * slot the addon reads before every read: CONTROL_RELEASE or CONTROL_STOP.
   */
  readonly counters: Float64Array;
}

export interface SpliceHandlers<P> {
  /** A metered pair spent its allowance, having read `readTotal` bytes in all so far. */
  need(pair: P, readTotal: number): void;
  done(pair: P, result: SpliceResult): void;
  /** F_SETPIPE_SZ was refused once (errno name); the pipes keep the kernel default. */
  pipeSizeFailed(code: string): void;
}

/** Why this process copies in JavaScript, or undefined while it can splice. */
export type SpliceUnavailable =
  | { reason: 'disabled' }
  | { reason: 'platform' }
  | { reason: 'addon_missing'; error: string }
  | { reason: 'einval' };

const EVENT_SIZE = 8;
const CONTROL_RELEASE = 1;
const CONTROL_STOP = 2;
const KIND_NEED = 1;
const KIND_DONE = 2;
const KIND_PIPE_SIZE_FAILED = 3;
const KIND_CONNECT_FAILED = 4;
const KIND_IDLE = 5;
const KIND_HAND_BACK = 6;
const KIND_ACCEPT_PAUSED = 7;
const KIND_CONN_ERROR = 8;

const errnoNames = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, value]) => [value, name]),
);

function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/**
 * Test seams, for the fallback tests only: `forceEinval` makes the addon answer the next
 * hand-overs as a kernel that refuses splice would; `loadError` makes loading the addon fail.
 */
export const spliceTestHooks: { forceEinval: boolean; loadError: string | undefined } = {
  forceEinval: false,
  loadError: undefined,
};

/** The worker threads: one per core up to two (the main thread needs a core too). */
function threadCount(): number {
  const asked = Number(process.env['PORTUNUS_SPLICE_THREADS']);
  if (Number.isInteger(asked) && asked > 0) return asked;
  return Math.min(2, os.availableParallelism());
}

type Handle = net.Socket & { _handle?: { fd?: number } | null };

/** The descriptor libuv holds for a connected socket, or -1. */
export function socketFd(socket: net.Socket): number {
  const fd = (socket as Handle)._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

export class SpliceEngine<P> {
  private native: NativeSplice | undefined;
  private unavailable: SpliceUnavailable | undefined;
  private readonly pairs = new Map<number, P>();
  private handlers: SpliceHandlers<P> | undefined;
  /** Native acceptors whose idle event has not come yet (they keep the process alive). */
  private readonly acceptors = new Map<number, AcceptOwner>();
  private readonly countsOut = new Float64Array(7);
  /** Pairs and acceptors that keep the addon's completions referenced. */
  private holds = 0;

  constructor(private readonly load: () => NativeSplice = loadAddon) {}

  install(handlers: SpliceHandlers<P>): void {
    this.handlers = handlers;
  }

  /**
   * Undefined when connections may be spliced now; otherwise why not. Loads the addon on first
   * use, so a process that never sees an eligible connection never loads it.
   */
  availability(): SpliceUnavailable | undefined {
    if (process.env['PORTUNUS_DISABLE_SPLICE'] !== undefined) return { reason: 'disabled' };
    if (this.unavailable !== undefined || this.native !== undefined) return this.unavailable;
    if (process.platform !== 'linux') {
      this.unavailable = { reason: 'platform' };
      return this.unavailable;
    }
    try {
      if (spliceTestHooks.loadError !== undefined) throw new Error(spliceTestHooks.loadError);
      const native = this.load();
      native.init((flat) => {
        this.onEvents(flat);
      }, threadCount());
      this.native = native;
    } catch (error) {
      this.unavailable = { reason: 'addon_missing', error: (error as Error).message };
    }
    return this.unavailable;
  }

  /** After a refused splice: every later connection copies in JavaScript. */
  markUnsupported(): void {
    this.unavailable = { reason: 'einval' };
  }

  get active(): number {
    return this.pairs.size;
  }

  stats(): SpliceStats | undefined {
    return this.native?.stats();
  }

  /**
   * Moves a connected pair into the addon; both sockets are destroyed here, and `owner` is what
   * the handlers get back. The caller has made sure nothing waits in the sockets' user-space
   * buffers. `allowance` is the bytes a metered pair may read before it asks again, -1 for an
   * unmetered one. Undefined (sockets untouched) when a descriptor cannot be had.
   */
  handOver(
    client: net.Socket,
    upstream: net.Socket,
    allowance: number,
    owner: P,
  ): SplicedPair | undefined {
    const native = this.native!;
    const clientFd = socketFd(client);
    const upstreamFd = socketFd(upstream);
    if (clientFd < 0 || upstreamFd < 0) return undefined;
    const counters = new Float64Array(3);
    let id: number;
    try {
      id = native.adopt(clientFd, upstreamFd, counters, allowance, spliceTestHooks.forceEinval);
    } catch {
      return undefined;
    }
    // destroy() closes libuv's descriptors before it returns; the duplicates are the only ones.
    client.destroy();
    upstream.destroy();
    this.hold(1);
    this.pairs.set(id, owner);
    native.run(id);
    return { id, counters };
  }

  /** Sets a pair's allowance (not added: the overshoot was reported); -1 ends metering. */
  grant(pair: SplicedPair, bytes: number): void {
    this.native?.grant(pair.id, bytes);
  }

  /** Quota used up: the pipes are flushed, then both directions half-close and the pair ends. */
  stop(pair: SplicedPair): void {
    // Seen by the worker's next read even while it is busy; the command wakes an idle pair.
    pair.counters[2] = CONTROL_STOP;
    this.native?.stop(pair.id);
  }

  /** The pipes are flushed and the descriptors come back with a 'released' end. */
  release(pair: SplicedPair): void {
    pair.counters[2] = CONTROL_RELEASE;
    this.native?.release(pair.id);
  }

  /** Drain deadline or teardown: both sockets are closed at once. */
  close(pair: SplicedPair): void {
    this.native?.close(pair.id);
  }

  /**
   * Hands a listening socket to the addon, which accepts, dials host:port (an IP literal, within
   * the connect timeout) and splices on its own from now on. The caller closes its own handle of the listener; the
   * socket stays bound through the addon's duplicate. Undefined when the addon refuses it.
   */
  acceptOn(
    listenFd: number,
    target: { host: string; port: number; connectTimeoutMs: number },
    owner: AcceptOwner,
  ): number | undefined {
    const native = this.native;
    // A forced EINVAL is about pairs JavaScript hands over: the fallback tests need that road.
    if (native === undefined || spliceTestHooks.forceEinval) return undefined;
    let id: number;
    try {
      id = native.acceptOn(listenFd, target.host, target.port, target.connectTimeoutMs);
    } catch {
      return undefined;
    }
    this.acceptors.set(id, owner);
    this.hold(1);
    return id;
  }

  /** Stops the acceptor's accepts; returns the listening descriptor, now the caller's. */
  acceptOff(id: number): number {
    return this.native?.acceptOff(id) ?? -1;
  }

  acceptCounts(id: number): AcceptCounts {
    const out = this.countsOut;
    out.fill(0);
    this.native?.acceptStats(id, out);
    return {
      accepted: out[0]!,
      active: out[1]!,
      bytesIn: out[2]!,
      bytesOut: out[3]!,
      connectErrors: out[4]!,
      connErrors: out[5]!,
      acceptPauses: out[6]!,
    };
  }

  /** A gate arrived: every connected pair of the acceptor comes back (AcceptOwner.handBack). */
  acceptRelease(id: number): void {
    this.native?.acceptRelease(id);
  }

  /** Drain deadline: every pair of the acceptor is closed at once. */
  acceptClose(id: number): void {
    this.native?.acceptClose(id);
  }

  private hold(delta: number): void {
    const before = this.holds;
    this.holds += delta;
    if (before === 0 && this.holds > 0) this.native?.ref();
    else if (before > 0 && this.holds === 0) this.native?.unref();
  }

  private onEvents(flat: number[]): void {
    const handlers = this.handlers;
    for (let i = 0; i + EVENT_SIZE <= flat.length; i += EVENT_SIZE) {
      const kind = flat[i]!;
      const id = flat[i + 1]!;
      if (kind === KIND_CONNECT_FAILED) {
        this.acceptors.get(id)?.connectFailed(errnoName(flat[i + 6]!));
        continue;
      }
      if (kind === KIND_CONN_ERROR) {
        const side = flat[i + 7] === 1 ? 'upstream' : 'client';
        this.acceptors.get(id)?.connError(errnoName(flat[i + 6]!), side);
        continue;
      }
      if (kind === KIND_ACCEPT_PAUSED) {
        this.acceptors.get(id)?.acceptPaused(errnoName(flat[i + 6]!), flat[i + 7]!);
        continue;
      }
      if (kind === KIND_HAND_BACK) {
        const fds: [number, number] = [flat[i + 6]!, flat[i + 7]!];
        this.acceptors.get(id)?.handBack(fds, flat[i + 2]!, flat[i + 3]!);
        continue;
      }
      if (kind === KIND_IDLE) {
        const acceptor = this.acceptors.get(id);
        if (acceptor === undefined) continue;
        this.acceptors.delete(id);
        this.hold(-1);
        acceptor.idle();
        continue;
      }
      if (kind === KIND_PIPE_SIZE_FAILED) {
        handlers?.pipeSizeFailed(errnoName(flat[i + 6]!));
        continue;
      }
      const pair = this.pairs.get(id);
      if (pair === undefined) continue;
      if (kind === KIND_NEED) {
        handlers?.need(pair, flat[i + 4]!);
        continue;
      }
      if (kind !== KIND_DONE) continue;
      this.pairs.delete(id);
      this.hold(-1);
      const reason = REASONS[flat[i + 5]!] ?? 'error';
      const errno = flat[i + 6]!;
      // Descriptors handed back ride in the errno and side slots.
      const handBack = reason === 'unsupported' || reason === 'released';
      handlers?.done(pair, {
        bytesIn: flat[i + 2]!,
        bytesOut: flat[i + 3]!,
        readTotal: flat[i + 4]!,
        reason,
        code: reason === 'error' ? errnoName(errno) : undefined,
        side: !handBack && flat[i + 7] === 1 ? 'upstream' : 'client',
        fds: handBack ? [errno, flat[i + 7]!] : undefined,
      });
    }
  }
}

function loadAddon(): NativeSplice {
  const require = createRequire(import.meta.url);
  // dist/tcp/splice.js → packages/forwarder/native/build/Release
  return require('../../native/build/Release/portunus_splice.node') as NativeSplice;
}
