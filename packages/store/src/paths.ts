/**
 * Names of the files the store owns inside a data dir (seed: "Path layout"). One table so that
 * reset, restore and the lock agree on what "the store's files" are; TLS material and
 * server.toml are deliberately absent: nothing in this package may delete them.
 */
import path from 'node:path';

export const STATE_DB = 'state.db';

export interface StorePaths {
  dataDir: string;
  db: string;
  wal: string;
  shm: string;
  lock: string;
}

export function storePaths(dataDir: string): StorePaths {
  const db = path.join(dataDir, STATE_DB);
  return { dataDir, db, wal: `${db}-wal`, shm: `${db}-shm`, lock: `${db}.lock` };
}

/** A database file and the WAL sidecars SQLite keeps next to it. */
export function withSidecars(dbFile: string): string[] {
  return [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`];
}
