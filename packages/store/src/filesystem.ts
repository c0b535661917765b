/**
 * The filesystem check that runs before anything opens the store: SQLite's WAL and locking are
 * only safe on a local filesystem, and a tmpfs store silently vanishes on reboot (seed:
 * "Filesystem checks"). Decides by the Linux statfs magic number; unknown filesystems are
 * allowed. The statfs call is injectable so the table is unit-testable. A data dir that does not
 * exist yet is judged by its nearest existing ancestor (a new directory lives on its parent's
 * filesystem), so a refused location is refused before anything is created there.
 */
import fs from 'node:fs';
import path from 'node:path';

import { PortunusError } from '@portunus/core';

/** Linux `f_type` magic numbers of filesystems the store refuses (linux/magic.h). */
export const REFUSED_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x6969, 'nfs'],
  [0x517b, 'smbfs'],
  [0xfe534d42, 'smb2'],
  [0xff534d42, 'cifs'],
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
  [0x65735546, 'fuse'],
  [0x00c36400, 'ceph'],
]);

export type StatfsType = (dir: string) => number;

const realStatfsType: StatfsType = (dir) => fs.statfsSync(dir).type;

/** The directory itself if it exists, else the closest ancestor that does. */
export function nearestExistingAncestor(dir: string): string {
  let current = path.resolve(dir);
  while (!fs.existsSync(current)) {
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return current;
}

/**
 * Returns the filesystem type as hex for the log; throws `unsupported_filesystem` if refused.
 * Safe to call before the data dir exists (see the module comment).
 */
export function checkFilesystem(dir: string, statfsType: StatfsType = realStatfsType): string {
  // f_type is a signed long in some kernels' ABI; normalise to the unsigned magic.
  const magic = statfsType(nearestExistingAncestor(dir)) >>> 0;
  const refused = REFUSED_FILESYSTEMS.get(magic);
  if (refused !== undefined) {
    throw new PortunusError(
      'unsupported_filesystem',
      `data dir ${dir} is on ${refused}, which cannot hold the store safely; ` +
        'move the data dir to a local writable filesystem (ext4, xfs, btrfs, zfs) with --data-dir',
      { path: dir, fs: refused },
    );
  }
  return `0x${magic.toString(16)}`;
}
