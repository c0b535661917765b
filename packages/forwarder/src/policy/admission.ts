/**
 * Admission of one TCP connection or new UDP flow, the step between "rule chosen" and "dial"
 * (reference inventory §5.8; source lists per docs/README.md): the rule's source lists first,
 * then the owner envelope (concurrency, then rate), then the rule's own caps. Nothing is taken
 * until every check passed, so a refusal changes no bucket and no count. A `RuleGate` lives as
 * long as its rule id in the Forwarder: a replace reconfigures it in place, so open connections
 * keep the limiter object they were admitted with and see new caps at once. Refusals are
 * counted by reason and logged at debug level, at most once a second per gate with the number
 * held back, so a flood cannot flood the log. Also the per-datagram UDP bandwidth check. Depends
 * on @portunus/api's SourcePolicy, core's Logger and the limiters; no sockets.
 */
import { SourcePolicy } from '@portunus/api';
import type { Logger } from '@portunus/core';

import { FORWARDER_EVENTS } from '../events.js';
import type { RateLimitRejectReason, RuleSpec, RateLimitStats } from '../rule-spec.js';
import { Limiter, type PolicyClock, systemPolicyClock } from './limiter.js';
import type { QuotaBudget } from './quota.js';

/** At most one refusal event per gate and kind in this many milliseconds. */
export const REFUSAL_LOG_INTERVAL_MS = 1_000;

const NO_SOURCES = new SourcePolicy([], []);

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

/** A debug event held back to one per interval, with the count it stood for. */
class ThrottledEvent {
  private lastAt = -Infinity;
  private held = 0;

  constructor(
    private readonly event: string,
    private readonly clock: PolicyClock,
  ) {}

  emit(log: Logger, fields: () => Record<string, unknown>): void {
    const now = this.clock.now();
    if (now - this.lastAt < REFUSAL_LOG_INTERVAL_MS) {
      this.held++;
      return;
    }
    log.debug(this.event, { ...fields(), suppressed: this.held });
    this.lastAt = now;
    this.held = 0;
  }
}

export class RuleGate {
  /** The rule's own caps; the object lives as long as the gate. */
  readonly limiter: Limiter;
  /** The owner envelope of the rule's owner (a Limiter that may hold no caps), or none. */
  owner: Limiter | undefined;
  /** The owner's traffic quota budget now, if it has one (policy/quota.ts; set by the rule). */
  quotaBudget: (() => QuotaBudget | undefined) | undefined;
  sourceDenied = 0;
  private sources = NO_SOURCES;
  private allowed: readonly string[] = [];
  private denied: readonly string[] = [];
  private readonly rejectLog: ThrottledEvent;
  private readonly deniedLog: ThrottledEvent;

  constructor(
    readonly ruleId: string,
    private readonly log: Logger,
    readonly clock: PolicyClock = systemPolicyClock,
  ) {
    this.limiter = new Limiter(clock);
    this.rejectLog = new ThrottledEvent(FORWARDER_EVENTS.rateLimitReject, clock);
    this.deniedLog = new ThrottledEvent(FORWARDER_EVENTS.sourceDenied, clock);
  }

  /**
   * Takes a definition's caps and source lists (a replace: tokens kept, counts kept) and the
   * owner's limiter. Throws on an unparsable CIDR before changing anything.
   */
  configure(spec: RuleSpec, owner: Limiter | undefined): void {
    const allowed = spec.allowedSources ?? [];
    const denied = spec.deniedSources ?? [];
    if (!sameList(allowed, this.allowed) || !sameList(denied, this.denied)) {
      this.sources =
        allowed.length + denied.length > 0 ? new SourcePolicy(allowed, denied) : NO_SOURCES;
      this.allowed = [...allowed];
      this.denied = [...denied];
    }
    this.limiter.configure(spec.rateLimit);
    this.owner = owner;
  }

  /**
   * True when this gate refuses nothing and counts nothing a connection must be admitted for: no
   * source lists, no caps on the rule or its owner (native accept, docs/fast-path.md).
   */
  get admitsAll(): boolean {
    return this.sources === NO_SOURCES && this.limiter.caps === null && this.owner?.caps == null;
  }

  /** True when a connection of this rule must go through the metered copy. */
  get meters(): boolean {
    return this.limiter.meters || this.owner?.meters === true;
  }

  /**
   * Admits or refuses a TCP connection (`udp` false) or a new UDP flow from `address`. On
   * admission the rate tokens are taken and the live counts raised; the caller must call
   * `release(owner)` with the `owner` read right after, once the connection or flow is gone.
   */
  admit(address: string | undefined, udp: boolean): boolean {
    const sources = this.sources;
    if (sources !== NO_SOURCES && !sources.admits(address)) {
      this.sourceDenied++;
      this.deniedLog.emit(this.log, () => ({
        rule_id: this.ruleId,
        source: address,
        protocol: udp ? 'udp' : 'tcp',
      }));
      return false;
    }
    const owner = this.owner;
    const rule = this.limiter;
    // The owner envelope binds before the rule cap (reference §5.8).
    if (owner !== undefined) {
      if (owner.concurrencyFull()) return this.refuse('owner_concurrent', owner, address);
      if (owner.rateEmpty()) {
        return this.refuse(udp ? 'owner_udp_flow_rate' : 'owner_conn_rate', owner, address);
      }
    }
    if (rule.concurrencyFull()) return this.refuse('conn_concurrent', undefined, address);
    if (rule.rateEmpty()) {
      return this.refuse(udp ? 'udp_flow_rate' : 'conn_rate', undefined, address);
    }
    if (owner !== undefined) {
      owner.connRate?.tryTake(1);
      owner.active++;
    }
    rule.connRate?.tryTake(1);
    rule.active++;
    return true;
  }

  private refuse(
    reason: RateLimitRejectReason,
    owner: Limiter | undefined,
    address: string | undefined,
  ): false {
    this.limiter.rejects[reason]++;
    if (owner) owner.rejects[reason]++;
    this.rejectLog.emit(this.log, () => ({ rule_id: this.ruleId, reason, source: address }));
    return false;
  }

  /** Gives back what `admit` counted; `owner` is the limiter that was admitted against. */
  release(owner: Limiter | undefined): void {
    this.limiter.active--;
    if (owner !== undefined) owner.active--;
  }

  /**
   * The UDP bandwidth check of one datagram of `bytes` (inbound: from the client): passes and
   * debits while every bucket in its way holds tokens, else drops it and counts the drop. A
   * bucket may end in debt by up to one datagram, which keeps the long-run rate exact.
   */
  passDatagram(owner: Limiter | undefined, inbound: boolean, bytes: number): boolean {
    const ruleBucket = (inbound ? this.limiter.bandwidthIn : this.limiter.bandwidthOut).bucket;
    const ownerBucket =
      owner === undefined ? null : (inbound ? owner.bandwidthIn : owner.bandwidthOut).bucket;
    if (
      (ruleBucket !== null && ruleBucket.tokens() <= 0) ||
      (ownerBucket !== null && ownerBucket.tokens() <= 0)
    ) {
      if (inbound) this.limiter.datagramsDroppedIn++;
      else this.limiter.datagramsDroppedOut++;
      if (owner !== undefined) {
        if (inbound) owner.datagramsDroppedIn++;
        else owner.datagramsDroppedOut++;
      }
      return false;
    }
    ruleBucket?.debit(bytes);
    ownerBucket?.debit(bytes);
    return true;
  }

  /** The rule's rate-limit stats, or null while neither the rule nor its owner ever had caps. */
  stats(): RateLimitStats | null {
    const everCapped = this.limiter.everCapped || this.owner?.everCapped === true;
    return everCapped ? this.limiter.stats() : null;
  }
}
