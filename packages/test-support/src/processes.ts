/**
 * Real child processes for end-to-end tests: spawn a built binary, parse its JSON log lines from
 * stderr as they arrive, wait for an event (or exit) with a deadline instead of sleeping, and kill
 * whatever is still running in `after`. Nothing here knows what the binaries do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export type LogLine = Readonly<Record<string, unknown>> & { event?: string };

export interface SpawnOptions {
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  stdin?: string;
}

export interface RunningProcess {
  readonly child: ChildProcess;
  readonly events: LogLine[];
  readonly stdoutLines: string[];
  stdout(): string;
  stderr(): string;
  waitForEvent(
    event: string,
    options?: { timeoutMs?: number; where?: (line: LogLine) => boolean },
  ): Promise<LogLine>;
  waitForStdoutLine(where: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Settles when the process has exited and its output is read, with no deadline. */
  readonly closed: Promise<number>;
  /** Resolves with the exit code (or 128 + signal number when killed), within a deadline. */
  exited(timeoutMs?: number): Promise<number>;
  kill(signal?: NodeJS.Signals): void;
}

const DEFAULT_TIMEOUT_MS = 20_000;
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export class ProcessGroup {
  private readonly running = new Set<RunningProcess>();

  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): RunningProcess {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (options.stdin !== undefined) child.stdin.end(options.stdin);
    else child.stdin.end();
    const handle = watch(child);
    this.running.add(handle);
    void handle.closed.finally(() => this.running.delete(handle));
    return handle;
  }

  /** Spawns `node <script> args…`. */
  node(script: string, args: readonly string[], options: SpawnOptions = {}): RunningProcess {
    return this.spawn(process.execPath, [script, ...args], options);
  }

  /** Runs to completion and returns the exit code with everything printed. */
  async run(
    script: string,
    args: readonly string[],
    options: SpawnOptions & { timeoutMs?: number } = {},
  ): Promise<{ code: number; stdout: string; stderr: string; events: LogLine[] }> {
    const handle = this.node(script, args, options);
    const code = await handle.exited(options.timeoutMs);
    return { code, stdout: handle.stdout(), stderr: handle.stderr(), events: handle.events };
  }

  async killAll(): Promise<void> {
    const all = [...this.running];
    for (const handle of all) handle.kill('SIGKILL');
    await Promise.all(all.map((handle) => handle.closed));
  }
}

function watch(child: ChildProcess): RunningProcess {
  const events: LogLine[] = [];
  const stdoutLines: string[] = [];
  let stdoutText = '';
  let stderrText = '';
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    stderrText += `${line}\n`;
    if (line.startsWith('{')) {
      try {
        events.push(JSON.parse(line) as LogLine);
      } catch {
        // not a log line
      }
    }
    notify();
  });
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    stdoutText += `${line}\n`;
    stdoutLines.push(line);
    notify();
  });
  const exit = new Promise<number>((resolve) => {
    // 'close' waits for stdio to end, so every line is parsed before the code is reported.
    child.on('close', (code, signal) => {
      notify();
      resolve(code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 0) : 0));
    });
  });
  let exitCode: number | undefined;
  void exit.then((code) => {
    exitCode = code;
    notify();
  });

  function until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}\nstderr:\n${stderrText}`),
        );
      }, timeoutMs);
      const listener = (): void => {
        const found = check();
        if (found !== undefined) {
          clearTimeout(timer);
          listeners.delete(listener);
          resolve(found);
        } else if (exitCode !== undefined) {
          clearTimeout(timer);
          listeners.delete(listener);
          reject(new Error(`process exited (${exitCode}) before ${what}\nstderr:\n${stderrText}`));
        }
      };
      listeners.add(listener);
      listener();
    });
  }

  return {
    child,
    closed: exit,
    events,
    stdoutLines,
    stdout: () => stdoutText,
    stderr: () => stderrText,
    waitForEvent(event, options = {}) {
      const where = options.where ?? (() => true);
      return until(
        () => events.find((line) => line.event === event && where(line)),
        options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        `event ${event}`,
      );
    },
    waitForStdoutLine(where, timeoutMs = DEFAULT_TIMEOUT_MS) {
      return until(() => stdoutLines.find(where), timeoutMs, 'a stdout line');
    },
    async exited(timeoutMs = DEFAULT_TIMEOUT_MS) {
      if (exitCode !== undefined) return exitCode;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`process did not exit within ${timeoutMs} ms\nstderr:\n${stderrText}`));
        }, timeoutMs);
      });
      try {
        return await Promise.race([exit, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    kill(signal = 'SIGTERM') {
      if (exitCode === undefined && child.exitCode === null && child.signalCode === null)
        child.kill(signal);
    },
  };
}
