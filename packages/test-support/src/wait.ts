/**
 * Deadline-bounded waiting for tests: poll a condition until it holds, or fail naming what was
 * awaited. Tests wait on conditions, never on fixed sleeps. Depends on nothing but Node timers.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this long (default 5 s). */
  timeoutMs?: number;
  /** What is awaited, for the error message. */
  what: string;
  /** How often to look again (default 10 ms). */
  intervalMs?: number;
}

export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: WaitOptions,
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5_000);
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what}`);
    await delay(options.intervalMs ?? 10);
  }
}
