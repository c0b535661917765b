/**
 * Temporary directories for tests, on a filesystem the store accepts: when the system temp dir is
 * a tmpfs (which the store refuses by design), they go under the repository's `.test-tmp/`
 * instead. Every directory is removed by `cleanup()`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { REPO_ROOT } from './paths.js';

const TMPFS_MAGIC = 0x01021994;

function baseDir(): string {
  const system = os.tmpdir();
  if (fs.statfsSync(system).type >>> 0 !== TMPFS_MAGIC) return system;
  const local = path.join(REPO_ROOT, '.test-tmp');
  fs.mkdirSync(local, { recursive: true });
  return local;
}

export interface TempDirs {
  /** A new empty directory. */
  make(prefix?: string): string;
  cleanup(): void;
}

export function tempDirs(): TempDirs {
  const made: string[] = [];
  return {
    make(prefix = 'portunus-test-') {
      const dir = fs.mkdtempSync(path.join(baseDir(), prefix));
      made.push(dir);
      return dir;
    },
    cleanup() {
      for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
