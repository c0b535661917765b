/**
 * Test harness for the store's unit tests (tests only; never imported by product code): temp data
 * dirs and the stores, connections and child processes opened in them, all released by one
 * `after` hook; `withStore` for a store open for one callback; helpers that run a function and
 * check the PortunusError it throws or rejects with; and a logger that records events. It depends
 * only on node:assert, node:test, @portunus/core, @portunus/test-support and the store's own
 * modules.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';

import { PortunusError, type LogFields, type Logger } from '@portunus/core';
import { tempDirs, type ProcessGroup } from '@portunus/test-support';

import { openStore, type Store } from './open.js';

export interface TempStores {
  /** A new empty directory. */
  readonly dir: () => string;
  /** A store opened in a new data dir. */
  readonly open: () => Store;
  /** Hands `resource` (a store, a database connection) to the cleanup; returns it. */
  readonly track: <T extends { close(): unknown }>(resource: T) => T;
}

/**
 * Temp data dirs for one test file; call once at its top level. Its `after` hook kills
 * `processes` (if given), closes every tracked store and connection, newest first (closing twice
 * is harmless), and then removes the directories.
 */
export function tempStores(options: { processes?: ProcessGroup } = {}): TempStores {
  const dirs = tempDirs();
  const tracked: { close(): unknown }[] = [];
  after(async () => {
    await options.processes?.killAll();
    for (const resource of tracked.splice(0).reverse()) resource.close();
    dirs.cleanup();
  });
  const track = <T extends { close(): unknown }>(resource: T): T => {
    tracked.push(resource);
    return resource;
  };
  return {
    dir: () => dirs.make(),
    open: () => track(openStore(dirs.make())),
    track,
  };
}

/** Opens the store in `dataDir`, runs `work` with it and closes it again, returning the result. */
export function withStore<T>(dataDir: string, work: (store: Store) => T): T {
  const store = openStore(dataDir);
  try {
    return work(store);
  } finally {
    store.close();
  }
}

const NOTHING: unique symbol = Symbol('nothing thrown');

function thrown(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    return error;
  }
  return NOTHING;
}

const described = (error: unknown): string =>
  error === NOTHING ? 'nothing thrown' : String(error);

/** The code of the PortunusError `work` throws, or 'none' when it returns; any other error fails. */
export function thrownCode(work: () => unknown): string {
  const error = thrown(work);
  if (error === NOTHING) return 'none';
  assert.ok(error instanceof PortunusError, described(error));
  return error.code;
}

/** The PortunusError `work` throws; fails when it returns or throws anything else. */
export function thrownError(work: () => unknown): PortunusError {
  const error = thrown(work);
  assert.ok(error instanceof PortunusError, `expected a PortunusError, got ${described(error)}`);
  return error;
}

function assertFailure(error: unknown, code: string, exitCode: number): PortunusError {
  assert.ok(error instanceof PortunusError, `expected ${code}, got ${described(error)}`);
  assert.equal(error.code, code, error.message);
  assert.equal(error.exitCode, exitCode);
  return error;
}

/** Asserts `work` throws the PortunusError `code` with `exitCode`, and returns it. */
export function assertFails(code: string, exitCode: number, work: () => unknown): PortunusError {
  return assertFailure(thrown(work), code, exitCode);
}

/** Asserts `work` rejects with the PortunusError `code` with `exitCode`, and returns it. */
export async function assertRejects(
  code: string,
  exitCode: number,
  work: Promise<unknown>,
): Promise<PortunusError> {
  let error: unknown = NOTHING;
  try {
    await work;
  } catch (caught) {
    error = caught;
  }
  return assertFailure(error, code, exitCode);
}

export interface LoggedLine {
  event: string;
  fields: LogFields;
}

export type RecordingLogger = Logger & {
  readonly lines: LoggedLine[];
  /** The events logged so far, in order. */
  events(): string[];
};

/** A Logger that appends every line, whatever its level (children too), to `lines`. */
export function recordingLogger(lines: LoggedLine[] = []): RecordingLogger {
  const record = (event: string, fields: LogFields = {}): void => {
    lines.push({ event, fields });
  };
  const logger: RecordingLogger = {
    lines,
    events: () => lines.map((line) => line.event),
    debug: record,
    info: record,
    warn: record,
    error: record,
    child: () => logger,
  };
  return logger;
}
