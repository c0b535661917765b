// Proves the stats socket on a real Unix socket: mode 0600, Hello then Snapshots to several
// readers, a reader that stops reading is dropped without holding up the others, a live socket
// of another process is not stolen, and a stale one is replaced.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { EVENTS, type LogEvent, type Logger } from '@portunus/core';
import { waitFor } from '@portunus/test-support';

import type { Hello, Snapshot } from './stats-protocol.js';
import { StatsSocketServer } from './stats-socket.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pt-stats-'));
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function recorder(): { logger: Logger; events: LogEvent[] } {
  const events: LogEvent[] = [];
  const record = (event: LogEvent): void => {
    events.push(event);
  };
  const logger: Logger = {
    debug: record,
    info: record,
    warn: record,
    error: record,
    child: () => logger,
  };
  return { logger, events };
}

const hello: Hello = {
  v: 1,
  daemon_version: 'test',
  daemon_started_at_ms: 1,
  refresh_ms: 5,
  rules: [],
};
// Large snapshots fill a stopped reader's socket buffers within a few ticks.
const padding = 'x'.repeat(64 * 1024);
const snapshot = (seq: number): Snapshot =>
  ({
    t_ms: Date.now(),
    uptime_ms: 0,
    seq,
    process: { fd_open: 1, fd_limit: 1, rss_bytes: 1 },
    r: [],
    padding,
  }) as Snapshot;

function reader(socketPath: string): { lines: string[]; socket: net.Socket } {
  const lines: string[] = [];
  const socket = net.connect(socketPath);
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
  });
  socket.on('error', () => undefined);
  return { lines, socket };
}

describe('StatsSocketServer', () => {
  it('serves many readers and drops one that stops reading, without delaying the rest', async () => {
    const socketPath = path.join(dir, 'a.sock');
    const { logger, events } = recorder();
    const server = new StatsSocketServer({
      path: socketPath,
      refreshMs: 5,
      hello: () => hello,
      snapshot,
      log: logger,
    });
    await server.start();
    try {
      assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
      const stuck = net.connect(socketPath);
      stuck.on('error', () => undefined);
      stuck.pause();
      const live = reader(socketPath);
      const stuckClosed = new Promise<void>((resolve) => {
        stuck.once('close', () => {
          resolve();
        });
      });
      await waitFor(() => events.includes(EVENTS.standaloneStatsReaderDropped), {
        what: 'the stopped reader to be dropped',
        timeoutMs: 10_000,
      });
      stuck.resume(); // let its close arrive
      await stuckClosed;
      const before = live.lines.length;
      await waitFor(() => live.lines.length > before + 5, {
        what: 'the live reader to keep receiving',
      });
      assert.equal((JSON.parse(live.lines[0]!) as Hello).v, 1);
      const seqs = live.lines.slice(1).map((line) => (JSON.parse(line) as Snapshot).seq);
      assert.ok(
        seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!),
        'snapshots in order',
      );
      live.socket.destroy();
    } finally {
      await server.stop();
    }
    assert.equal(fs.existsSync(socketPath), false);
  });

  it('refuses a socket another process answers on, and replaces a stale one', async () => {
    const socketPath = path.join(dir, 'b.sock');
    const other = net.createServer();
    await new Promise<void>((resolve) => other.listen(socketPath, resolve));
    const { logger } = recorder();
    const options = { path: socketPath, refreshMs: 50, hello: () => hello, snapshot, log: logger };
    await assert.rejects(new StatsSocketServer(options).start(), /in use by a running process/);
    // A socket file nobody listens on any more, as a killed daemon leaves it: bound elsewhere,
    // moved into place, then its listener closed (close() unlinks only the original path).
    await new Promise<void>((resolve) =>
      other.close(() => {
        resolve();
      }),
    );
    const stale = net.createServer();
    await new Promise<void>((resolve) => stale.listen(path.join(dir, 'c.sock'), resolve));
    fs.renameSync(path.join(dir, 'c.sock'), socketPath);
    await new Promise<void>((resolve) =>
      stale.close(() => {
        resolve();
      }),
    );
    assert.ok(fs.existsSync(socketPath), 'a dead socket file is left behind');
    const server = new StatsSocketServer(options);
    await server.start();
    const fresh = reader(socketPath);
    await waitFor(() => fresh.lines.length >= 2, { what: 'hello and a snapshot' });
    fresh.socket.destroy();
    await server.stop();
  });
});
