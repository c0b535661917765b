/**
 * The SQLite file header check that guards every destructive command against a typo'd path
 * (seed: "refuses any path whose first 16 bytes don't match the SQLite header"). Reads bytes,
 * never opens a connection, so it cannot create or modify the file it inspects. Its `fs` open and
 * close drops every fcntl lock this process holds on that file (POSIX), so it is only for files
 * no live connection of this process may have open; `backup`, which may run inside `serve`, has
 * SQLite check the header instead.
 */
import fs from 'node:fs';

import { PortunusError } from '@portunus/core';

export const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** True when the file starts with the 16-byte SQLite magic. */
export function hasSqliteHeader(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(SQLITE_MAGIC.length);
    const read = fs.readSync(fd, head, 0, head.length, 0);
    return read === head.length && head.equals(SQLITE_MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}

/** Throws `not_sqlite` (exit 7) unless `file` starts with the SQLite magic. */
export function assertSqliteFile(file: string): void {
  if (!hasSqliteHeader(file)) {
    throw new PortunusError(
      'not_sqlite',
      `${file} is not a SQLite database (its first 16 bytes are not the SQLite header); nothing was changed`,
      { path: file },
    );
  }
}

/** `PRAGMA user_version` read from header offset 60; the store mirrors its schema version there. */
export function readHeaderUserVersion(file: string): number {
  const fd = fs.openSync(file, 'r');
  try {
    const field = Buffer.alloc(4);
    return fs.readSync(fd, field, 0, 4, 60) === 4 ? field.readUInt32BE(0) : 0;
  } finally {
    fs.closeSync(fd);
  }
}
