/**
 * The token bucket behind every cap of reference inventory §5.8: a rate in tokens per second, a
 * burst (the most tokens it holds), the tokens it holds and the time of its last refill, read
 * from an injected monotonic clock so tests drive time by hand. Bandwidth buckets count bytes and
 * may go into debt (a chunk already read is written, then the reader parks until the debt is
 * repaid), which keeps the long-run rate exact with chunks of any size; connection-rate buckets
 * take whole tokens only. A reconfigure keeps the tokens and the last refill (reference §5.8 "no
 * free burst, no stranded pool"). Pure; depends on nothing.
 */

/** Milliseconds from a monotonic source (never steps back with the wall clock). */
export interface MonotonicClock {
  now(): number;
}

export const monotonicClock: MonotonicClock = { now: () => performance.now() };

export class TokenBucket {
  private rateValue: number;
  private burstValue: number;
  private held: number;
  private lastRefill: number;

  /** Starts full, like a fresh rule: its first burst is allowed at once. */
  constructor(
    rate: number,
    burst: number,
    private readonly clock: MonotonicClock,
  ) {
    this.rateValue = rate;
    this.burstValue = burst;
    this.held = burst;
    this.lastRefill = clock.now();
  }

  get rate(): number {
    return this.rateValue;
  }

  get burst(): number {
    return this.burstValue;
  }

  /** Last refill time (clock milliseconds); exposed for the hot-swap tests. */
  get lastRefillAt(): number {
    return this.lastRefill;
  }

  /** Tokens held now (negative while in debt), after refilling up to now. */
  tokens(): number {
    this.refill();
    return this.held;
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = now - this.lastRefill;
    if (elapsed <= 0) return;
    this.lastRefill = now;
    this.held = Math.min(this.burstValue, this.held + (elapsed * this.rateValue) / 1000);
  }

  /** Takes `n` tokens when at least `n` are held; a refusal changes nothing. */
  tryTake(n: number): boolean {
    this.refill();
    if (this.held < n) return false;
    this.held -= n;
    return true;
  }

  /** True when `n` could be taken now, without taking them. */
  canTake(n: number): boolean {
    this.refill();
    return this.held >= n;
  }

  /** Takes `n` tokens unconditionally, going into debt if needed; returns what is left. */
  debit(n: number): number {
    this.refill();
    this.held -= n;
    return this.held;
  }

  /** Milliseconds until the bucket holds at least `target` tokens (0 when it already does). */
  msUntil(target: number): number {
    this.refill();
    if (this.held >= target) return 0;
    return ((target - this.held) * 1000) / this.rateValue;
  }

  /**
   * Hot swap: the tokens earned under the old rate up to now are kept (refill first), then the
   * new rate and burst apply from the same refill time. Tokens above a lowered burst are cut
   * (no stranded pool); a raised burst is not filled (no free burst); a debt stays owed.
   */
  reconfigure(rate: number, burst: number): void {
    this.refill();
    this.rateValue = rate;
    this.burstValue = burst;
    this.held = Math.min(this.held, burst);
  }
}
