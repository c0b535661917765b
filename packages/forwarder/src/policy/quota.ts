/**
 * Traffic quota budgets on the edge (reference §5.10 "client side"): one budget per owner — the
 * bytes the server says the owner may still move on this client — debited before bytes are
 * written, by every TCP path per chunk and by UDP per datagram. A debit is granted while anything
 * remains, so one connection overruns by at most the chunk it was granted (reference: "≤ one chunk
 * per connection"). The debit that uses the budget up stops every connection holding it: they
 * half-close and end (their own business: `QuotaHolder`), and new connections of the owner are
 * refused until a SET with budget arrives (usage cleared, limit raised, period rolled). REMOVE
 * lifts the budget: holders keep running unmetered. The registry lives as long as the process
 * (it survives control-stream reconnects) and is fed by the client's TrafficQuotaUpdate handling.
 * Owners without a budget cost nothing: callers ask once per connection, never per chunk. Depends
 * on nothing.
 */

/** Something that moves an owner's bytes and must stop when the budget is used up. */
export interface QuotaHolder {
  quotaExhausted(): void;
}

export class QuotaBudget {
  private value: number;
  private readonly holders = new Set<QuotaHolder>();
  /** False once REMOVE lifted it: debits always pass and nothing is stopped any more. */
  private metered = true;
  /** Allowances lent to spliced pairs and not yet reported back (lend / giveBack). */
  private lent = 0;
  /** Holders that were lent nothing because everything left was lent out: asked again on a giveBack. */
  private readonly waiting = new Set<() => void>();

  constructor(
    readonly ownerId: string,
    remaining: number,
  ) {
    this.value = remaining;
  }

  /** Bytes left; zero or below means exhausted. Infinity once lifted. */
  get remaining(): number {
    return this.metered ? this.value : Infinity;
  }

  get exhausted(): boolean {
    return this.metered && this.value <= 0;
  }

  /** Connections and flows currently holding this budget. */
  get holderCount(): number {
    return this.holders.size;
  }

  /**
   * Takes `bytes` before they are written. Refused (nothing taken) once the budget is used up;
   * granted while anything remains, even when `bytes` is more than what remains — the overrun is
   * that one chunk. The grant that uses the budget up stops every holder (after the caller's
   * write, on the next microtask, so the granted chunk still leaves).
   */
  debit(bytes: number): boolean {
    if (!this.metered) return true;
    if (this.value <= 0) return false;
    this.value -= bytes;
    if (this.value <= 0) {
      queueMicrotask(() => {
        this.stopHolders();
      });
    }
    return true;
  }

  /**
   * Records bytes that have already moved (a spliced pair reports what it read after the fact):
   * always taken, even past zero, so the budget never forgets traffic that left. The charge that
   * uses the budget up stops every holder, as a debit does.
   */
  charge(bytes: number): void {
    if (!this.metered || bytes <= 0) return;
    const wasLeft = this.value > 0;
    this.value -= bytes;
    if (wasLeft && this.value <= 0) {
      queueMicrotask(() => {
        this.stopHolders();
      });
    }
  }

  /**
   * Lends a spliced pair an allowance it may read before it reports (docs/fast-path.md, "Quotas"):
   * its share of what is left and not lent to others, at most `most`. A pair may read `slack`
   * bytes past its allowance (one read), so each loan reserves allowance + slack: together the
   * owner's pairs can never read more than the budget holds, plus one `slack` for the one loan
   * made while nothing else was lent (so the last bytes of a budget can still be used). 0 when
   * what is left is reserved by others; `onFree` then runs on the next giveBack to ask again.
   * The caller gives back allowance + slack.
   */
  lend(most: number, slack: number, onFree: () => void): number {
    if (this.value <= 0) return 0;
    const free = this.value - this.lent;
    if (this.lent > 0 && free <= slack) {
      this.waiting.add(onFree);
      return 0;
    }
    const share = Math.floor(free / Math.max(1, this.holders.size)) - slack;
    const allowance = Math.max(1, Math.min(most, share));
    this.lent += allowance + slack;
    return allowance;
  }

  /**
   * A loan came back (allowance + slack; what was read of it is charged apart): waiting pairs ask
   * again.
   */
  giveBack(reserved: number): void {
    this.lent = Math.max(0, this.lent - reserved);
    if (this.waiting.size === 0) return;
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const askAgain of waiting) askAgain();
  }

  /** Gives back bytes that were debited but not sent (a UDP datagram that failed to leave). */
  refund(bytes: number): void {
    if (this.metered) this.value += bytes;
  }

  attach(holder: QuotaHolder): void {
    if (this.metered) this.holders.add(holder);
  }

  detach(holder: QuotaHolder): void {
    this.holders.delete(holder);
  }

  /** A new budget from the server (SET): zero or less stops the holders at once. */
  set(remaining: number): void {
    this.metered = true;
    this.value = remaining;
    if (remaining <= 0) this.stopHolders();
    else this.giveBack(0);
  }

  /** REMOVE: the owner is unlimited again; holders keep running without being stopped. */
  lift(): void {
    this.metered = false;
    this.holders.clear();
  }

  private stopHolders(): void {
    if (!this.exhausted) return;
    const holders = [...this.holders];
    this.holders.clear();
    for (const holder of holders) holder.quotaExhausted();
  }
}

/** Called when an owner gets a budget it did not have, so running connections can be metered. */
export type BudgetCreatedListener = (budget: QuotaBudget) => void;

export class QuotaRegistry {
  private readonly budgets = new Map<string, QuotaBudget>();
  private readonly listeners = new Set<BudgetCreatedListener>();

  /** The owner's budget, or undefined when the owner is unlimited on this client. */
  budgetOf(ownerId: string | null | undefined): QuotaBudget | undefined {
    return ownerId ? this.budgets.get(ownerId) : undefined;
  }

  /**
   * SET: the owner's remaining bytes. An existing budget object is updated in place, so every
   * connection holding it sees the new value at once.
   */
  set(ownerId: string, remaining: number): QuotaBudget {
    const existing = this.budgets.get(ownerId);
    if (existing) {
      existing.set(remaining);
      return existing;
    }
    const budget = new QuotaBudget(ownerId, remaining);
    this.budgets.set(ownerId, budget);
    for (const listener of this.listeners) listener(budget);
    return budget;
  }

  /** REMOVE: drops the owner's budget; returns whether there was one. */
  remove(ownerId: string): boolean {
    const budget = this.budgets.get(ownerId);
    if (!budget) return false;
    this.budgets.delete(ownerId);
    budget.lift();
    return true;
  }

  onBudgetCreated(listener: BudgetCreatedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Owners with a budget and what remains of each (diagnostics). */
  snapshot(): { ownerId: string; remaining: number; exhausted: boolean }[] {
    return [...this.budgets.values()].map((budget) => ({
      ownerId: budget.ownerId,
      remaining: budget.remaining,
      exhausted: budget.exhausted,
    }));
  }
}
