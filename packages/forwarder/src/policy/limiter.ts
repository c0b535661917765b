/**
 * The limiters of reference inventory §5.8: a `Limiter` holds one set of caps (a rule's, or an
 * owner envelope's): two bandwidth pacers (in, out), a connection-rate bucket, a concurrency cap
 * with its live count, and the counters the stats report. `OwnerRegistry` keeps one Limiter per
 * owner id for the life of the process (reference §4.3: owner limiters survive reconnects),
 * dropped only when the owner's last rule is gone and no envelope is set. Reconfiguring keeps
 * every bucket's tokens and last refill (token-bucket.ts) and never touches the live count, so a
 * lowered concurrency cap kills nothing. A `Pacer` parks TCP readers that ran a bucket into debt
 * and wakes them all from one timer per bucket, not one per connection. Depends only on
 * token-bucket.ts and the stats shapes of rule-spec.ts; no sockets.
 */
import type {
  OwnerRateLimitStats,
  RateLimitRejectReason,
  RateLimitSpec,
  RateLimitStats,
} from '../rule-spec.js';
import { monotonicClock, TokenBucket, type MonotonicClock } from './token-bucket.js';

/** The clock and the one timer per pacer; tests pass ones they drive by hand. */
export interface PolicyClock extends MonotonicClock {
  setTimer(callback: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemPolicyClock: PolicyClock = {
  now: () => monotonicClock.now(),
  setTimer: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    // Parked sockets keep the process alive on their own; the timer must not.
    timer.unref();
    return timer;
  },
  clearTimer: (handle) => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** A parked reader is woken through a shared function (no closure per connection). */
export type Wake = (item: object) => void;

/** A cap of 0 or absent is no cap; a burst of 0 or absent is one second of the rate. */
function capOf(value: number | undefined): number | null {
  return value !== undefined && value > 0 ? value : null;
}

function burstOf(rate: number, burst: number | undefined): number {
  return burst !== undefined && burst > 0 ? burst : rate;
}

/** One direction's bandwidth bucket and the readers parked on its debt. */
export class Pacer {
  bucket: TokenBucket | null = null;
  private readonly parked = new Map<object, Wake>();
  private timer: unknown;

  constructor(private readonly clock: PolicyClock) {}

  /** Sets, changes (tokens kept) or removes the cap; parked readers follow at once. */
  configure(rate: number | null, burst: number | undefined): void {
    if (rate === null) {
      this.bucket = null;
      this.wakeAll();
      return;
    }
    const size = burstOf(rate, burst);
    if (this.bucket) this.bucket.reconfigure(rate, size);
    else this.bucket = new TokenBucket(rate, size, this.clock);
    // A new rate moves the time the debt is repaid: arm again for it.
    this.disarm();
    if (this.parked.size > 0) this.arm();
  }

  /** Parks `item` until the bucket is out of debt; `wake(item)` is called then. */
  park(item: object, wake: Wake): void {
    this.parked.set(item, wake);
    this.arm();
  }

  unpark(item: object): void {
    if (this.parked.delete(item) && this.parked.size === 0) this.disarm();
  }

  get parkedCount(): number {
    return this.parked.size;
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    const ms = this.bucket ? this.bucket.msUntil(0) : 0;
    this.timer = this.clock.setTimer(this.onTimer, Math.max(1, Math.ceil(ms)));
  }

  private disarm(): void {
    if (this.timer === undefined) return;
    this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    // Readers that parked after the timer was armed added debt: wait for that too.
    if (this.bucket && this.bucket.tokens() < 0) {
      this.arm();
      return;
    }
    this.wakeAll();
  };

  private wakeAll(): void {
    this.disarm();
    if (this.parked.size === 0) return;
    const parked = [...this.parked];
    this.parked.clear();
    // A woken reader may park again (here or on another bucket): it was removed first.
    for (const [item, wake] of parked) wake(item);
  }
}

const zeroRejects = (): Record<RateLimitRejectReason, number> => ({
  conn_concurrent: 0,
  conn_rate: 0,
  udp_flow_rate: 0,
  owner_concurrent: 0,
  owner_conn_rate: 0,
  owner_udp_flow_rate: 0,
});

/** One set of caps (a rule's or an owner envelope's) and what it counted. */
export class Limiter {
  readonly bandwidthIn: Pacer;
  readonly bandwidthOut: Pacer;
  connRate: TokenBucket | null = null;
  maxConcurrent: number | null = null;
  /** Live connections / flows admitted under this limiter, capped or not. */
  active = 0;
  readonly rejects = zeroRejects();
  throttleMicrosIn = 0;
  throttleMicrosOut = 0;
  datagramsDroppedIn = 0;
  datagramsDroppedOut = 0;
  /** Set once the limiter had any cap: from then on its stats are reported. */
  everCapped = false;
  private spec: RateLimitSpec | null = null;

  constructor(readonly clock: PolicyClock = systemPolicyClock) {
    this.bandwidthIn = new Pacer(clock);
    this.bandwidthOut = new Pacer(clock);
  }

  /** The caps in force (null: none). */
  get caps(): RateLimitSpec | null {
    return this.spec;
  }

  /** True when either direction has a bandwidth cap (connections must use the metered copy). */
  get meters(): boolean {
    return this.bandwidthIn.bucket !== null || this.bandwidthOut.bucket !== null;
  }

  /**
   * Applies new caps in place (hot swap): buckets that stay keep their tokens and last refill,
   * buckets that go release their parked readers, new ones start full; the live count stays.
   */
  configure(spec: RateLimitSpec | null): void {
    const inRate = capOf(spec?.bandwidthInBps);
    const outRate = capOf(spec?.bandwidthOutBps);
    const connRate = capOf(spec?.newConnectionsPerSec);
    const concurrent = capOf(spec?.concurrentConnections);
    this.bandwidthIn.configure(inRate, spec?.bandwidthInBurst);
    this.bandwidthOut.configure(outRate, spec?.bandwidthOutBurst);
    if (connRate === null) {
      this.connRate = null;
    } else {
      // A connection takes one whole token: a burst below 1 would never admit anything.
      const burst = Math.max(1, burstOf(connRate, spec?.newConnectionsBurst));
      if (this.connRate) this.connRate.reconfigure(connRate, burst);
      else this.connRate = new TokenBucket(connRate, burst, this.clock);
    }
    this.maxConcurrent = concurrent;
    const capped = inRate !== null || outRate !== null || connRate !== null || concurrent !== null;
    this.spec = capped ? { ...spec } : null;
    if (capped) this.everCapped = true;
  }

  /** True when the concurrency cap admits no further connection now. */
  concurrencyFull(): boolean {
    return this.maxConcurrent !== null && this.active >= this.maxConcurrent;
  }

  /** True when the connection-rate bucket holds no whole token now. */
  rateEmpty(): boolean {
    return this.connRate !== null && !this.connRate.canTake(1);
  }

  stats(): RateLimitStats {
    return {
      rejects: { ...this.rejects },
      throttle_micros_in: Math.round(this.throttleMicrosIn),
      throttle_micros_out: Math.round(this.throttleMicrosOut),
      active_connections: this.active,
      datagrams_dropped_in: this.datagramsDroppedIn,
      datagrams_dropped_out: this.datagramsDroppedOut,
    };
  }
}

interface OwnerEntry {
  readonly limiter: Limiter;
  /** An envelope was SET (and not REMOVEd) for this owner. */
  envelope: boolean;
  /** Rules of this owner running in the process. */
  readonly rules: Set<string>;
}

/**
 * The per-(client, owner) envelopes of this process, keyed by owner id. A rule attaches to its
 * owner's entry (made on demand, so connections are counted before any envelope arrives and a
 * later concurrency cap sees the true count); an envelope may be set before its owner's first
 * rule. Entries go when neither rules nor an envelope hold them (reference §5.8).
 */
export class OwnerRegistry {
  private readonly owners = new Map<string, OwnerEntry>();

  constructor(private readonly clock: PolicyClock = systemPolicyClock) {}

  private entry(ownerId: string): OwnerEntry {
    let entry = this.owners.get(ownerId);
    if (!entry) {
      entry = { limiter: new Limiter(this.clock), envelope: false, rules: new Set() };
      this.owners.set(ownerId, entry);
    }
    return entry;
  }

  /** The owner's limiter, which `ruleId` now holds. */
  attach(ownerId: string, ruleId: string): Limiter {
    const entry = this.entry(ownerId);
    entry.rules.add(ruleId);
    return entry.limiter;
  }

  detach(ownerId: string, ruleId: string): void {
    const entry = this.owners.get(ownerId);
    if (!entry) return;
    entry.rules.delete(ruleId);
    this.collect(ownerId, entry);
  }

  /** SET: applies the envelope (hot swap when one exists). Returns the owner's limiter. */
  set(ownerId: string, caps: RateLimitSpec | null): Limiter {
    const entry = this.entry(ownerId);
    entry.limiter.configure(caps);
    entry.envelope = true;
    return entry.limiter;
  }

  /** REMOVE: the owner's connections run without an envelope; false when none was set. */
  remove(ownerId: string): boolean {
    const entry = this.owners.get(ownerId);
    if (!entry?.envelope) return false;
    entry.envelope = false;
    entry.limiter.configure(null);
    this.collect(ownerId, entry);
    return true;
  }

  private collect(ownerId: string, entry: OwnerEntry): void {
    // Live connections of a removed rule still hold the limiter object they were admitted
    // with, so dropping the entry strands no count: a later rule of the owner starts afresh.
    if (entry.rules.size === 0 && !entry.envelope) this.owners.delete(ownerId);
  }

  get(ownerId: string): Limiter | undefined {
    return this.owners.get(ownerId)?.limiter;
  }

  hasEnvelope(ownerId: string): boolean {
    return this.owners.get(ownerId)?.envelope === true;
  }

  /** Owner ids held now (by rules or an envelope). */
  ownerIds(): string[] {
    return [...this.owners.keys()];
  }

  /** The rules of an owner running now. */
  rulesOf(ownerId: string): string[] {
    return [...(this.owners.get(ownerId)?.rules ?? [])];
  }

  /** One entry per envelope set now (reference §4.2 OwnerRateLimitStats). */
  stats(): OwnerRateLimitStats[] {
    const out: OwnerRateLimitStats[] = [];
    for (const [ownerId, entry] of this.owners) {
      if (entry.envelope) out.push({ owner_id: ownerId, stats: entry.limiter.stats() });
    }
    return out;
  }
}
