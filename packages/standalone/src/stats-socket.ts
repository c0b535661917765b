/**
 * The stats socket: a Unix socket (mode 0600: counters and rule names are for the host's
 * operator only) where any number of readers get the Hello, then one Snapshot line every
 * `refresh_ms` (protocol v1, stats-protocol.ts). A snapshot is built and serialised once per tick
 * for all readers; a reader whose socket buffer is still full is skipped for that tick and
 * dropped once it falls too far behind, so a slow or stopped reader never holds memory without
 * bound or delays the data plane. Readers never write: anything they send is ignored. Depends on
 * node:net and node:fs and the protocol shapes only — it does not know the forwarder.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { EVENTS, PortunusError, type Logger } from '@portunus/core';

import type { Hello, Snapshot } from './stats-protocol.js';

/** A reader with more than this unsent is skipped; see MAX_SKIPPED. */
const MAX_PENDING_BYTES = 256 * 1024;
/** Consecutive skipped ticks after which a reader is disconnected. */
const MAX_SKIPPED = 30;

export interface StatsSocketOptions {
  path: string;
  refreshMs: number;
  hello: () => Hello;
  snapshot: (seq: number) => Snapshot;
  log: Logger;
}

interface Reader {
  socket: net.Socket;
  skipped: number;
}

export class StatsSocketServer {
  private readonly server: net.Server;
  private readonly readers = new Set<Reader>();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;

  constructor(private readonly options: StatsSocketOptions) {
    this.server = net.createServer((socket) => {
      this.accept(socket);
    });
  }

  get readerCount(): number {
    return this.readers.size;
  }

  async start(): Promise<void> {
    const socketPath = this.options.path;
    try {
      fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
      await removeStaleSocket(socketPath);
    } catch (error) {
      throw socketError(socketPath, error);
    }
    // The socket is created by bind() inside listen(), synchronously for a path: with this umask
    // it never exists with wider permissions, not even for a moment.
    const previous = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(socketPath, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      throw socketError(socketPath, error);
    } finally {
      process.umask(previous);
    }
    fs.chmodSync(socketPath, 0o600);
    this.timer = setInterval(() => {
      this.tick();
    }, this.options.refreshMs);
    this.options.log.info(EVENTS.standaloneStatsListening, {
      path: socketPath,
      refresh_ms: this.options.refreshMs,
    });
  }

  /** Sends a fresh Hello to every reader (after a reload changed the rule set). */
  broadcastHello(): void {
    const line = `${JSON.stringify(this.options.hello())}\n`;
    for (const reader of this.readers) reader.socket.write(line);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const reader of this.readers) reader.socket.destroy();
    this.readers.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
    try {
      fs.unlinkSync(this.options.path);
    } catch {
      // Already gone (close() removes it on most platforms).
    }
  }

  private accept(socket: net.Socket): void {
    const reader: Reader = { socket, skipped: 0 };
    this.readers.add(reader);
    socket.on('error', () => undefined);
    socket.on('close', () => this.readers.delete(reader));
    // Readers have nothing to say; discard input so it cannot pile up.
    socket.on('data', () => undefined);
    socket.write(`${JSON.stringify(this.options.hello())}\n`);
    // A first snapshot at once, so `stats --once` need not wait a whole refresh period.
    socket.write(`${JSON.stringify(this.options.snapshot(this.seq))}\n`);
  }

  private tick(): void {
    this.seq += 1;
    if (this.readers.size === 0) return;
    const line = `${JSON.stringify(this.options.snapshot(this.seq))}\n`;
    for (const reader of this.readers) {
      if (reader.socket.writableLength > MAX_PENDING_BYTES) {
        reader.skipped += 1;
        if (reader.skipped >= MAX_SKIPPED) {
          this.options.log.warn(EVENTS.standaloneStatsReaderDropped, {
            pending_bytes: reader.socket.writableLength,
            skipped_ticks: reader.skipped,
          });
          reader.socket.destroy();
          this.readers.delete(reader);
        }
        continue;
      }
      reader.skipped = 0;
      reader.socket.write(line);
    }
  }
}

/**
 * A leftover socket file from a killed daemon is removed. A socket some process still answers on
 * (another standalone with the same socket_path) and any other kind of file are left alone: the
 * start fails rather than steal or delete them.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`${socketPath} exists and is not a socket`);
  const isLive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => {
      resolve(false);
    });
  });
  if (isLive) throw new Error(`${socketPath} is in use by a running process`);
  fs.unlinkSync(socketPath);
}

function socketError(socketPath: string, error: unknown): PortunusError {
  const message = error instanceof Error ? error.message : String(error);
  return new PortunusError(
    'io_error',
    `cannot listen on stats socket ${socketPath}: ${message}`,
    {
      path: socketPath,
    },
    { cause: error },
  );
}
