/**
 * What every benchmark's child processes share: on Linux each runs under coreutils `timeout`, so
 * a benchmark that dies without cleaning up cannot leave a load generator or server running
 * longer than its lifetime limit, and stopping one waits a bounded time for it to exit. Only
 * node:fs and timers; the process classes of each benchmark build on it.
 */
import fs from 'node:fs';

const TIMEOUT_BINARIES = ['/usr/bin/timeout', '/bin/timeout'];

/**
 * `command args…` wrapped in `timeout --signal=KILL <lifetime>` when coreutils is there.
 * `foreground`: a signal sent to the wrapper reaches the command once, not a second time through
 * the process group (a node handler runs once; a second SIGTERM would kill it).
 */
export function underTimeout(
  command: string,
  args: readonly string[],
  lifetimeMs: number,
  options: { foreground: boolean },
): [string, string[]] {
  const timeoutBinary = TIMEOUT_BINARIES.find((file) => fs.existsSync(file));
  if (timeoutBinary === undefined) return [command, [...args]];
  return [
    timeoutBinary,
    [
      ...(options.foreground ? ['--foreground'] : []),
      '--signal=KILL',
      `${Math.ceil(lifetimeMs / 1000)}s`,
      command,
      ...args,
    ],
  ];
}

/** True when `promise` settles within `ms`, false at the deadline; the timer never lingers. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      resolve(false);
    }, ms);
  });
  try {
    return await Promise.race([promise.then(() => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
