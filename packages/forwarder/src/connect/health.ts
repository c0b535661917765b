/**
 * Passive health of one target (reference inventory §5.5, not tunable): 3 consecutive connect
 * failures within 30 s mark it failed, 2 consecutive successes mark it healthy again. Fed by
 * real connections and by the optional active probe alike. Pure state; the clock is the
 * caller's. Depends on nothing.
 */
import type { TargetHealthState } from '../rule-spec.js';

export const FAILURES_TO_FAIL = 3;
export const FAILURE_WINDOW_MS = 30_000;
export const SUCCESSES_TO_RECOVER = 2;

export class TargetHealth {
  state: TargetHealthState = 'healthy';
  consecutiveFailures = 0;
  lastFailureAt = 0;
  lastSuccessAt = 0;
  private consecutiveSuccesses = 0;
  /** Times of the failures since the last success, newest last (at most FAILURES_TO_FAIL). */
  private failureTimes: number[] = [];

  /** Records a failed connect; true when this turned the target failed. */
  recordFailure(now: number): boolean {
    this.consecutiveFailures++;
    this.consecutiveSuccesses = 0;
    this.lastFailureAt = now;
    this.failureTimes.push(now);
    if (this.failureTimes.length > FAILURES_TO_FAIL) this.failureTimes.shift();
    const oldest = this.failureTimes[0] ?? now;
    if (
      this.state === 'healthy' &&
      this.failureTimes.length >= FAILURES_TO_FAIL &&
      now - oldest <= FAILURE_WINDOW_MS
    ) {
      this.state = 'failed';
      return true;
    }
    return false;
  }

  /** Records a successful connect; true when this turned the target healthy. */
  recordSuccess(now: number): boolean {
    this.consecutiveFailures = 0;
    this.failureTimes = [];
    this.lastSuccessAt = now;
    if (this.state === 'healthy') return false;
    this.consecutiveSuccesses++;
    if (this.consecutiveSuccesses < SUCCESSES_TO_RECOVER) return false;
    this.state = 'healthy';
    this.consecutiveSuccesses = 0;
    return true;
  }
}
