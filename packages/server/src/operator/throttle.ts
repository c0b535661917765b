/**
 * Runs a secret check under the failed-attempt throttle (reference §6.5): a locked key is
 * answered 429 `rate_limited` before any verification runs; a failed check counts against the
 * key; a successful one clears it. The policy itself is the store's (login-attempts).
 */
import { PortunusError } from '@portunus/core';
import { clearFailures, lockedForMs, recordFailure, type ThrottleKey } from '@portunus/store';

import type { OperatorContext } from './context.js';

export async function underThrottle<T>(
  ctx: OperatorContext,
  key: ThrottleKey,
  check: () => Promise<T>,
  /** Which failures count as a failed attempt (wrong secret), as opposed to bad input. */
  counts: (error: PortunusError) => boolean,
): Promise<T> {
  const wait = lockedForMs(ctx.db, key, ctx.now());
  if (wait > 0) {
    throw new PortunusError(
      'rate_limited',
      `too many failed attempts; try again in ${Math.ceil(wait / 1000)} s`,
      { retry_after_secs: Math.ceil(wait / 1000) },
    );
  }
  try {
    const result = await check();
    clearFailures(ctx.db, key);
    return result;
  } catch (error) {
    if (error instanceof PortunusError && counts(error)) recordFailure(ctx.db, key, ctx.now());
    throw error;
  }
}
