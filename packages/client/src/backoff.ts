/**
 * Reconnect delays: full-jitter exponential backoff (reference §4.3 item 8),
 * `sleep = uniform(0 ..= min(base · 2^attempt, max))`, with the random source injected so tests
 * can pin it. Pure arithmetic; depends on nothing.
 */
export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** The ceiling for `attempt` (0-based), without jitter. */
export function backoffCeilingMs(attempt: number, policy: BackoffPolicy): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 52);
  return Math.min(policy.initialDelayMs * 2 ** exponent, policy.maxDelayMs);
}

/** A delay drawn uniformly from [0, ceiling]; `random` returns values in [0, 1). */
export function fullJitterDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeilingMs(attempt, policy);
  const draw = Math.min(Math.max(random(), 0), 1);
  // (ceiling + 1) makes the upper bound reachable ("0 ..= ceiling") for whole milliseconds.
  return Math.min(ceiling, Math.floor(draw * (ceiling + 1)));
}
