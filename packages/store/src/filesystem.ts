/**
 * The filesystem check that runs before anything opens the store: SQLite's WAL and locking are
 * only safe on a local filesystem, and a tmpfs store silently vanishes on reboot (seed:
 * "Filesystem checks"). Decides by the Linux statfs magic number; unknown filesystems are
 * allowed. The statfs call is injectable so the table is unit-testable.
 */
import fs from 'node:fs';

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

/** Returns the filesystem type as hex for the log; throws `unsupported_filesystem` if refused. */
export function checkFilesystem(dir: string, statfsType: StatfsType = realStatfsType): string {
  // f_type is a signed long in some kernels' ABI; normalise to the unsigned magic.
  const magic = statfsType(dir) >>> 0;
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
