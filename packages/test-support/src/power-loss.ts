/**
 * A real filesystem that can lose power, for the power-loss proof behind `synchronous=FULL`
 * (DESIGN.md §4): an ext4 image on a loop device whose backing file is served by the FUSE daemon
 * `power-loss/cut_disk.py`, which keeps writes in memory until the loop device turns a cache
 * flush or FUA write into fsync. `cut()` drops every pending write and discards all later ones;
 * `restart()` tears the stack down and mounts the backing image directly, as a machine would
 * after the power comes back (e2fsck replays the ext4 journal first). This module owns the
 * mounts, loop devices and the daemon it creates, and nothing else; it must not depend on any
 * product package, so the stack can be checked on its own (see selfCheck()).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { REPO_ROOT } from './paths.js';
import type { LogLine, ProcessGroup, RunningProcess } from './processes.js';

/** Debian's interpreter: python3-fusepy is installed into its dist-packages, not a pyenv one. */
const PYTHON = '/usr/bin/python3';
export const CUT_DISK_SCRIPT = path.join(REPO_ROOT, 'packages/test-support/power-loss/cut_disk.py');
const COMMAND_TIMEOUT_MS = 60_000;
const IMAGE_BYTES = 64 * 1024 * 1024;

function sh(command: string, args: readonly string[]): string {
  return execFileSync(command, args, {
    encoding: 'utf8',
    timeout: COMMAND_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function onPath(command: string): boolean {
  try {
    sh('sh', ['-c', `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the power-loss stack cannot run here, or undefined when it can. Tests skip with this
 * reason; everything else that goes wrong is a failure.
 */
export function powerLossUnsupportedReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mount, losetup, FUSE)';
  if (!fs.existsSync('/dev/fuse')) return '/dev/fuse is missing';
  if (!fs.existsSync('/dev/loop-control')) return 'loop devices are missing (/dev/loop-control)';
  for (const command of ['losetup', 'mkfs.ext4', 'e2fsck', 'mount', 'umount']) {
    if (!onPath(command)) return `${command} is missing (Debian e2fsprogs / mount)`;
  }
  try {
    sh(PYTHON, ['-c', 'import fusepy']);
  } catch {
    return `${PYTHON} cannot import fusepy (Debian python3-fusepy)`;
  }
  return undefined;
}

function mounted(dir: string): boolean {
  const real = fs.existsSync(dir) ? fs.realpathSync(dir) : dir;
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === real);
}

function unmount(dir: string): void {
  if (!mounted(dir)) return;
  try {
    sh('umount', [dir]);
  } catch {
    // Still busy (a process that was just killed may hold it a moment): detach it lazily.
    sh('umount', ['-l', dir]);
  }
}

export interface RestartReport {
  /** e2fsck's exit code: 0 clean, 1 errors corrected (a journal replay counts). */
  fsckCode: number;
  fsckOutput: string;
  /** How many fsyncs reached the backing image before the cut, as the daemon counted them. */
  flushes: number;
  /** Writes that arrived after the cut and were discarded (umount's writeback, for one). */
  writesAfterCut: number;
}

export class PowerLossDisk {
  /** The ext4 filesystem the test writes to; valid before the cut and again after restart(). */
  readonly mountDir: string;
  private readonly image: string;
  private readonly fuseDir: string;
  private daemon: RunningProcess | undefined;
  private readonly loops = new Set<string>();

  private constructor(
    private readonly processes: ProcessGroup,
    readonly root: string,
  ) {
    this.image = path.join(root, 'disk.img');
    this.fuseDir = path.join(root, 'fuse');
    this.mountDir = path.join(root, 'ext4');
  }

  /** Makes a fresh ext4 image under `root` (an empty dir) and mounts it through the FUSE disk. */
  static async create(processes: ProcessGroup, root: string): Promise<PowerLossDisk> {
    const disk = new PowerLossDisk(processes, root);
    try {
      await disk.start();
    } catch (error) {
      await disk.close();
      throw error;
    }
    return disk;
  }

  private async start(): Promise<void> {
    fs.mkdirSync(this.fuseDir);
    fs.mkdirSync(this.mountDir);
    fs.writeFileSync(this.image, '');
    fs.truncateSync(this.image, IMAGE_BYTES);
    // Initialise inode tables and journal now: lazy init would keep writing in the background.
    sh('mkfs.ext4', ['-F', '-q', '-E', 'lazy_itable_init=0,lazy_journal_init=0', this.image]);
    await this.startDaemon();
  }

  private async startDaemon(): Promise<void> {
    this.daemon = this.processes.spawn(PYTHON, [CUT_DISK_SCRIPT, this.image, this.fuseDir]);
    await this.daemon.waitForEvent('cut_disk.ready', { timeoutMs: COMMAND_TIMEOUT_MS });
    this.attach(path.join(this.fuseDir, 'disk.img'));
  }

  private attach(file: string): void {
    const loop = sh('losetup', ['--find', '--show', file]).trim();
    this.loops.add(loop);
    sh('mount', ['-t', 'ext4', loop, this.mountDir]);
  }

  private detachLoops(): void {
    for (const loop of [...this.loops]) {
      try {
        sh('losetup', ['-d', loop]);
      } finally {
        this.loops.delete(loop);
      }
    }
  }

  /**
   * The power cut: from now on nothing more reaches the backing image. Returns how many pages
   * were written but never flushed (and are now gone).
   */
  async cut(): Promise<number> {
    if (!this.daemon) throw new Error('the FUSE disk is not running');
    fs.writeFileSync(path.join(this.fuseDir, 'cut'), '1');
    const event = await this.daemon.waitForEvent('cut_disk.cut', {
      timeoutMs: COMMAND_TIMEOUT_MS,
    });
    return Number(event['dropped_pages']);
  }

  /**
   * After cut() and after the caller has killed every process using mountDir: unmount, detach,
   * stop the daemon, then fsck and mount the backing image directly, as after a reboot. With
   * `armed`, the image is mounted through a fresh FUSE disk instead, ready for another cut.
   */
  async restart(options: { armed?: boolean } = {}): Promise<RestartReport> {
    const stopped = await this.stopStack();
    let fsckCode = 0;
    let fsckOutput: string;
    try {
      fsckOutput = sh('e2fsck', ['-f', '-y', this.image]);
    } catch (error) {
      const failed = error as { status?: number; stdout?: string; stderr?: string };
      fsckCode = failed.status ?? -1;
      fsckOutput = `${failed.stdout ?? ''}${failed.stderr ?? ''}`;
    }
    if (fsckCode <= 1) {
      if (options.armed) await this.startDaemon();
      else this.attach(this.image);
    }
    return {
      fsckCode,
      fsckOutput,
      flushes: Number(stopped?.['flushes'] ?? 0),
      writesAfterCut: Number(stopped?.['dropped_writes'] ?? 0),
    };
  }

  private async stopStack(): Promise<LogLine | undefined> {
    // Whatever umount writes back now goes to the FUSE disk, which discards it after the cut.
    unmount(this.mountDir);
    this.detachLoops();
    const daemon = this.daemon;
    if (!daemon) return undefined;
    unmount(this.fuseDir);
    await daemon.exited(COMMAND_TIMEOUT_MS);
    this.daemon = undefined;
    return daemon.events.find((line) => line.event === 'cut_disk.stopped');
  }

  /** Undoes everything in any state (for after()); safe to call twice. */
  async close(): Promise<void> {
    const problems: unknown[] = [];
    const steps = [
      (): void => {
        unmount(this.mountDir);
      },
      (): void => {
        this.detachLoops();
      },
    ];
    for (const step of steps) {
      try {
        step();
      } catch (error) {
        problems.push(error);
      }
    }
    if (this.daemon) {
      try {
        unmount(this.fuseDir);
      } catch (error) {
        problems.push(error);
      }
      this.daemon.kill('SIGKILL');
      await this.daemon.closed;
      this.daemon = undefined;
      // A killed daemon leaves a dead FUSE mount behind ("transport endpoint not connected").
      try {
        unmount(this.fuseDir);
      } catch (error) {
        problems.push(error);
      }
    }
    if (problems.length > 0) throw new AggregateError(problems, 'power-loss disk cleanup');
  }
}

/**
 * The harness's own teeth: one file written and fsynced, one written and only closed, then the
 * cut. Returns what each holds after the restart; the synced one must be intact and the other
 * must not hold its data, or the cut does not really drop unsynced writes.
 */
export async function selfCheck(
  disk: PowerLossDisk,
): Promise<{ synced: string | undefined; unsynced: string | undefined; droppedPages: number }> {
  const syncedFile = path.join(disk.mountDir, 'synced.txt');
  const unsyncedFile = path.join(disk.mountDir, 'unsynced.txt');
  const fd = fs.openSync(syncedFile, 'w');
  fs.writeSync(fd, 'synced data');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const dir = fs.openSync(disk.mountDir, 'r');
  fs.fsyncSync(dir);
  fs.closeSync(dir);
  fs.writeFileSync(unsyncedFile, 'unsynced data');
  const droppedPages = await disk.cut();
  const report = await disk.restart();
  if (report.fsckCode > 1) throw new Error(`e2fsck failed:\n${report.fsckOutput}`);
  const read = (file: string): string | undefined =>
    fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
  return { synced: read(syncedFile), unsynced: read(unsyncedFile), droppedPages };
}
