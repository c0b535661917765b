// Proves the filesystem check by the Linux statfs magics themselves (not by echoing the module's
// own table): every refused filesystem, signed or unsigned f_type, and that a refusal happens
// before openStore creates the lock or state.db.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import type { PortunusError } from '@portunus/core';

import { checkFilesystem } from './filesystem.js';
import { openStore } from './open.js';
import { restoreStore } from './restore.js';
import { storePaths } from './paths.js';
import { assertFails, tempStores } from './store.harness.js';

const temp = tempStores();

/** linux/magic.h values of the filesystems the seed and DESIGN.md §4 refuse. */
const REFUSED: readonly (readonly [number, RegExp])[] = [
  [0x6969, /nfs/],
  [0x517b, /smb/],
  [0xfe534d42, /smb2/],
  [0xff534d42, /cifs/],
  [0x01021994, /tmpfs/],
  [0x858458f6, /ramfs/],
  [0x65735546, /fuse/],
  [0x00c36400, /ceph/],
];

/** Local filesystems that must be accepted (btrfs's magic is negative as a signed long). */
const ACCEPTED: readonly (readonly [number, string])[] = [
  [0xef53, 'ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x2fc12fc1, 'zfs'],
  [0x794c7630, 'overlayfs'],
];

function refusal(work: () => unknown): PortunusError {
  const error = assertFails('unsupported_filesystem', 78, work);
  assert.equal(error.event, 'startup.unsupported_filesystem');
  return error;
}

describe('checkFilesystem', () => {
  it('refuses NFS, SMB, SMB2, CIFS, tmpfs, ramfs, FUSE and Ceph, naming path and filesystem', () => {
    for (const [magic, name] of REFUSED) {
      const error = refusal(() => checkFilesystem('/srv/portunus', () => magic));
      assert.match(error.message, /\/srv\/portunus/);
      assert.match(error.message, name);
      assert.match(error.message, /move the data dir to a local writable filesystem/);
      assert.equal(error.fields['path'], '/srv/portunus');
      assert.match(String(error.fields['fs']), name);
    }
  });

  it('normalises f_type reported as a negative signed 32-bit value', () => {
    for (const [magic, name] of REFUSED) {
      const signed = magic | 0;
      const error = refusal(() => checkFilesystem('/d', () => signed));
      assert.match(error.message, name, `0x${magic.toString(16)} as ${signed}`);
    }
    assert.ok((0x9123683e | 0) < 0);
    assert.equal(
      checkFilesystem('/d', () => 0x9123683e | 0),
      '0x9123683e',
    );
  });

  it('accepts local filesystems and reports the magic in hex', () => {
    for (const [magic, name] of ACCEPTED) {
      assert.equal(
        checkFilesystem('/d', () => magic),
        `0x${magic.toString(16)}`,
        name,
      );
    }
  });

  it('asks statfs about the data dir itself, or its nearest existing ancestor', () => {
    const asked: string[] = [];
    const ext4 = (dir: string): number => {
      asked.push(dir);
      return 0xef53;
    };
    const existing = temp.dir();
    checkFilesystem(existing, ext4);
    checkFilesystem(path.join(existing, 'a', 'b'), ext4);
    assert.deepEqual(asked, [existing, existing]);
  });

  it('refuses a missing data dir on a refused filesystem without creating it', () => {
    const parent = temp.dir();
    const dir = path.join(parent, 'new', 'data');
    refusal(() => openStore(dir, { statfsType: () => 0x01021994 }));
    assert.deepEqual(fs.readdirSync(parent), []);
  });

  it('refuses in openStore and restoreStore before the lock or state.db exists', () => {
    const tmpfs = (): number => 0x01021994;
    const dir = temp.dir();
    refusal(() => openStore(dir, { statfsType: tmpfs }));
    assert.deepEqual(fs.readdirSync(dir), []);
    const backup = path.join(temp.dir(), 'b.db');
    const source = openStore(temp.dir());
    source.close();
    fs.copyFileSync(source.paths.db, backup);
    const target = temp.dir();
    refusal(() => restoreStore(target, backup, { statfsType: tmpfs }));
    assert.deepEqual(fs.readdirSync(target), []);
    assert.equal(fs.existsSync(storePaths(target).lock), false);
  });
});
