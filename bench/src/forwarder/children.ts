/**
 * The child processes of the data-plane benchmark (forwarders, targets, load generators): each
 * runs as its own process group under coreutils `timeout` (when present), so none can outlive
 * the benchmark by more than that limit even if the benchmark is killed, with stdout and stderr
 * in files. Readiness is a line in the stdout file, polled with a deadline. Also owns free-port
 * probing on 127.0.0.1 and CPU time from /proc. Knows nothing of what the children do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { settlesWithin, underTimeout } from '../bounded-process.js';
import { nowMs, sleep } from '../store/report.js';

const POLL_MS = 20;
const live = new Set<Child>();

/** SIGKILLs every child process group still running (the runner's finally and signals call it). */
export function killChildren(): void {
  for (const child of live) child.signal('SIGKILL');
}

export interface ChildSpawn {
  /** A short name for messages and log file names. */
  name: string;
  command: string;
  args: readonly string[];
  /** Where the stdout / stderr files go. */
  dir: string;
  lifetimeMs: number;
  /** Send the group this signal to stop it (haproxy -db stops on SIGUSR1 or SIGTERM). */
  stopSignal?: NodeJS.Signals;
}

let sequence = 0;

export class Child {
  readonly stdoutFile: string;
  readonly stderrFile: string;
  private readonly exit: Promise<void>;
  private exited = false;
  private exitCode: number | null = null;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    files: { stdout: string; stderr: string },
    private readonly stopSignal: NodeJS.Signals,
  ) {
    this.stdoutFile = files.stdout;
    this.stderrFile = files.stderr;
    live.add(this);
    this.exit = new Promise((resolve) => {
      child.once('close', (code) => {
        this.exited = true;
        this.exitCode = code;
        live.delete(this);
        resolve();
      });
    });
  }

  static start(options: ChildSpawn): Child {
    sequence++;
    const base = path.join(options.dir, `${String(sequence).padStart(3, '0')}-${options.name}`);
    const files = { stdout: `${base}.out`, stderr: `${base}.err` };
    const out = fs.openSync(files.stdout, 'w');
    const err = fs.openSync(files.stderr, 'w');
    const [command, args] = underTimeout(options.command, options.args, options.lifetimeMs, {
      foreground: true,
    });
    let child: ChildProcess;
    try {
      child = spawn(command, args, { stdio: ['ignore', out, err], detached: true });
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
    return new Child(options.name, child, files, options.stopSignal ?? 'SIGTERM');
  }

  get running(): boolean {
    return !this.exited;
  }

  /** The pid of the command itself (under the `timeout` wrapper, if any); undefined if gone. */
  commandPid(): number | undefined {
    const wrapper = this.child.pid;
    if (wrapper === undefined || this.exited) return undefined;
    try {
      const children = fs
        .readFileSync(`/proc/${wrapper}/task/${wrapper}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter((pid) => pid !== '');
      const first = children[0];
      return first === undefined ? wrapper : Number(first);
    } catch {
      return wrapper;
    }
  }

  /** Polls stdout until one complete line satisfies `pick`; fails at the deadline or on exit. */
  async waitForLine<T>(pick: (line: string) => T | undefined, timeoutMs: number): Promise<T> {
    const deadline = nowMs() + timeoutMs;
    for (;;) {
      const text = fs.readFileSync(this.stdoutFile, 'utf8');
      const complete = text.slice(0, text.lastIndexOf('\n') + 1);
      for (const line of complete.split('\n')) {
        const value = line === '' ? undefined : pick(line);
        if (value !== undefined) return value;
      }
      if (this.exited) {
        throw new Error(`${this.name} exited (code ${this.exitCode}) first:\n${this.tail()}`);
      }
      if (nowMs() > deadline) {
        throw new Error(`${this.name}: no expected line within ${timeoutMs} ms:\n${this.tail()}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Resolves with the exit code once the process has exited, or undefined at the deadline. */
  async waitForExit(timeoutMs: number): Promise<number | null | undefined> {
    return (await this.exitedWithin(timeoutMs)) ? this.exitCode : undefined;
  }

  stdout(): string {
    return fs.readFileSync(this.stdoutFile, 'utf8');
  }

  tail(chars = 2000): string {
    let text = '';
    for (const file of [this.stdoutFile, this.stderrFile]) {
      try {
        text += fs.readFileSync(file, 'utf8').slice(-chars);
      } catch {
        // A file that is not there has nothing to add.
      }
    }
    return text;
  }

  /** Signals the whole process group (the `timeout` wrapper and the command under it). */
  signal(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined || this.exited) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /** Signals the command alone (for signals the `timeout` wrapper does not pass on). */
  signalCommand(signal: NodeJS.Signals): void {
    const pid = this.commandPid();
    if (pid === undefined) return;
    try {
      process.kill(pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /**
   * The stop signal to the wrapper (which passes it on to the command once), then SIGKILL to the
   * whole group after 3 s; waits at most 5 s in all.
   */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.kill(this.stopSignal);
    if (await this.exitedWithin(3000)) return;
    this.signal('SIGKILL');
    if (!(await this.exitedWithin(2000))) {
      throw new Error(`${this.name} (pid ${this.child.pid ?? '?'}) did not exit`);
    }
  }

  private exitedWithin(ms: number): Promise<boolean> {
    return settlesWithin(this.exit, ms);
  }
}

/** Runs a command to completion (bounded by timeoutMs) and returns its exit code and output. */
export async function runTool(
  options: Omit<ChildSpawn, 'lifetimeMs'>,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = Child.start({ ...options, lifetimeMs: timeoutMs + 5_000 });
  const code = await child.waitForExit(timeoutMs);
  if (code === undefined) {
    await child.stop();
    throw new Error(`${options.name} did not finish within ${timeoutMs} ms:\n${child.tail()}`);
  }
  return {
    code,
    stdout: child.stdout(),
    stderr: fs.readFileSync(child.stderrFile, 'utf8'),
  };
}

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU time (user + system) of a process so far in ms, including its reaped children (socat forks
 * one per connection); NaN where unknown.
 */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime are fields 14-17 (index 11-14 after the state field).
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** VmRSS of a process in bytes; NaN where unknown. */
export function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, close). */
export async function freeTcpPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** A port free a moment ago for both TCP and UDP on 127.0.0.1 (for iperf3's UDP mode). */
export async function freeTcpUdpPort(attempts = 20): Promise<number> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = await freeTcpPort();
    const socket = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('error', () => {
        resolve(false);
      });
      socket.bind({ port, address: '127.0.0.1', exclusive: true }, () => {
        resolve(true);
      });
    });
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => {
          resolve();
        });
      } catch {
        resolve();
      }
    });
    if (ok) return port;
  }
  throw new Error(`no port free for both TCP and UDP in ${attempts} attempts`);
}

/** Waits until a TCP connect to 127.0.0.1:port succeeds (the child is listening). */
export async function waitForTcp(port: number, child: Child, timeoutMs: number): Promise<void> {
  const deadline = nowMs() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => {
        resolve(false);
      });
    });
    if (ok) return;
    if (!child.running) throw new Error(`${child.name} exited first:\n${child.tail()}`);
    if (nowMs() > deadline) {
      throw new Error(`${child.name}: port ${port} not open within ${timeoutMs} ms`);
    }
    await sleep(POLL_MS);
  }
}
