/**
 * The concurrent writer of section 4: test-support's audit-writer-process in `shared` mode, a
 * separate process and connection committing one record per transaction until it is signalled.
 * Its `ack` lines go to a file rather than a pipe: backupStore blocks this event loop for the
 * whole copy, and a pipe nobody reads would fill and stall the writer, hiding exactly the
 * concurrency being measured. On Linux it runs under coreutils `timeout`, so even if this
 * benchmark dies without cleaning up, the writer cannot outlive it by more than that limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

import { AUDIT_WRITER_PROCESS } from '@portunus/test-support';

import { settlesWithin, underTimeout } from '../bounded-process.js';
import { nowMs, sleep } from './report.js';

const live = new Set<ChildProcess>();

/**
 * Signals the writer's whole process group (the `timeout` wrapper and node under it): it was
 * started detached, as its own group, so that a SIGKILL cannot leave the node child orphaned.
 */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** SIGKILLs every writer still running (the runner's signal handler calls this). */
export function killWriters(): void {
  for (const child of live) signalGroup(child, 'SIGKILL');
}

export class WriterProcess {
  private stderr = '';
  private readonly exit: Promise<void>;
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly ackFile: string,
  ) {
    live.add(child);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    this.exit = new Promise((resolve) => {
      child.once('close', () => {
        this.exited = true;
        live.delete(child);
        resolve();
      });
    });
  }

  /** Starts the writer and waits (bounded) until it has acknowledged `minAcks` commits. */
  static async start(
    dataDir: string,
    ackFile: string,
    lifetimeLimitMs: number,
    minAcks = 20,
  ): Promise<WriterProcess> {
    const out = fs.openSync(ackFile, 'w');
    const args = [AUDIT_WRITER_PROCESS, dataDir, 'shared', '0', '1'];
    const [command, wrapped] = underTimeout(process.execPath, args, lifetimeLimitMs, {
      foreground: false,
    });
    let child: ChildProcess;
    try {
      child = spawn(command, wrapped, { stdio: ['ignore', out, 'pipe'], detached: true });
    } finally {
      fs.closeSync(out); // the child holds its own descriptor
    }
    const writer = new WriterProcess(child, ackFile);
    const deadline = nowMs() + 15_000;
    while (writer.acks() < minAcks) {
      if (writer.exited || nowMs() > deadline) {
        await writer.stop();
        throw new Error(`the audit writer did not start:\n${writer.stderr}`);
      }
      await sleep(50);
    }
    return writer;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Commits acknowledged so far (one `ack <seq>` line each). */
  acks(): number {
    const text = fs.readFileSync(this.ackFile, 'utf8');
    let count = 0;
    for (let at = text.indexOf('ack '); at !== -1; at = text.indexOf('ack ', at + 4)) count += 1;
    return count;
  }

  /** SIGTERM, then SIGKILL if it has not exited within 3 s; waits at most 6 s in all. */
  async stop(): Promise<void> {
    if (this.exited) return;
    signalGroup(this.child, 'SIGTERM');
    if (await this.exitedWithin(3000)) return;
    signalGroup(this.child, 'SIGKILL');
    if (!(await this.exitedWithin(3000))) {
      throw new Error(`the audit writer (pid ${this.child.pid ?? '?'}) did not exit`);
    }
  }

  private exitedWithin(ms: number): Promise<boolean> {
    return settlesWithin(this.exit, ms);
  }
}
