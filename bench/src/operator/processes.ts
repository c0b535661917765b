/**
 * The server processes of the operator benchmark: the real `portunus-server serve` and the bare
 * fastify baseline, each started as its own process group under coreutils `timeout` (when
 * present), so that neither can outlive the benchmark by more than that limit even if the
 * benchmark itself is killed. Their stdout and stderr go to files, not pipes: the server logs
 * synchronously to stderr on every mutation, and a pipe this process reads only between requests
 * would add its own back-pressure to what is being measured. Readiness is a line in one of those
 * files, polled with a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

import { settlesWithin, underTimeout } from '../bounded-process.js';
import { nowMs, sleep } from '../store/report.js';

const POLL_MS = 25;
const live = new Set<ServerProcess>();

/** SIGKILLs every server process group still running (the runner's signal handler calls this). */
export function killServers(): void {
  for (const server of live) server.signal('SIGKILL');
}

export interface ServerSpawn {
  name: string;
  args: readonly string[];
  stdoutFile: string;
  stderrFile: string;
  lifetimeMs: number;
  env?: Readonly<Record<string, string | undefined>>;
}

export class ServerProcess {
  private readonly exit: Promise<void>;
  private exited = false;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly stdoutFile: string,
    readonly stderrFile: string,
  ) {
    live.add(this);
    this.exit = new Promise((resolve) => {
      child.once('close', () => {
        this.exited = true;
        live.delete(this);
        resolve();
      });
    });
  }

  /** Starts `node <args>` as its own process group, its output going to the two files. */
  static start(options: ServerSpawn): ServerProcess {
    const out = fs.openSync(options.stdoutFile, 'w');
    const err = fs.openSync(options.stderrFile, 'w');
    const [command, args] = underTimeout(process.execPath, options.args, options.lifetimeMs, {
      foreground: true,
    });
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        stdio: ['ignore', out, err],
        detached: true,
        env: { ...process.env, ...options.env },
      });
    } finally {
      // The child holds its own descriptors.
      fs.closeSync(out);
      fs.closeSync(err);
    }
    return new ServerProcess(options.name, child, options.stdoutFile, options.stderrFile);
  }

  get running(): boolean {
    return !this.exited;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Polls `file` until one of its complete lines satisfies `pick` (which returns a value for a
   * matching line), or fails at the deadline or when the process exits first.
   */
  async waitForLine<T>(
    file: string,
    pick: (line: string) => T | undefined,
    timeoutMs: number,
  ): Promise<T> {
    const deadline = nowMs() + timeoutMs;
    for (;;) {
      const text = fs.readFileSync(file, 'utf8');
      const complete = text.slice(0, text.lastIndexOf('\n') + 1);
      for (const line of complete.split('\n')) {
        const value = line === '' ? undefined : pick(line);
        if (value !== undefined) return value;
      }
      if (this.exited) {
        throw new Error(`${this.name} exited before it was ready:\n${this.tail()}`);
      }
      if (nowMs() > deadline) {
        throw new Error(`${this.name} was not ready within ${timeoutMs} ms:\n${this.tail()}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** The last lines of its stderr, for error messages. */
  tail(chars = 3000): string {
    try {
      return fs.readFileSync(this.stderrFile, 'utf8').slice(-chars);
    } catch {
      return '(no stderr)';
    }
  }

  /** Signals the whole process group (the `timeout` wrapper and node under it). */
  signal(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined || this.exited) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /**
   * SIGTERM to the wrapper, which passes it on to node once (the server drains and closes its
   * store), then SIGKILL to the whole group after 5 s; waits at most 8 s in all.
   */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGTERM');
    if (await this.exitedWithin(5000)) return;
    this.signal('SIGKILL');
    if (!(await this.exitedWithin(3000))) {
      throw new Error(`${this.name} (pid ${this.child.pid ?? '?'}) did not exit`);
    }
  }

  private exitedWithin(ms: number): Promise<boolean> {
    return settlesWithin(this.exit, ms);
  }
}

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process has used so far, in ms, from /proc; NaN where unknown. */
export function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime (14) + stime (15)
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}
