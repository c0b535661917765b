/**
 * A stats socket reader: connects to the daemon's Unix socket and hands each NDJSON line to the
 * caller as a Hello or a Snapshot (protocol v1, stats-protocol.ts); unparseable lines are skipped
 * so a newer daemon's extra messages do not break an older reader. Shared by `stats --once` and
 * the TUI. Depends on node:net and core's catalogue.
 */
import net from 'node:net';

import { PortunusError } from '@portunus/core';

import type { Hello, Snapshot } from './stats-protocol.js';

export interface StatsFeed {
  onHello(hello: Hello): void;
  onSnapshot(snapshot: Snapshot): void;
  onClose(reason: string): void;
}

/** Connects and parses NDJSON lines; resolves once connected, rejects if it cannot connect. */
export function connectStats(socketPath: string, feed: StatsFeed): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let connected = false;
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      connected = true;
      resolve(socket);
    });
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        if (line.trim() === '') continue;
        let message: unknown;
        try {
          message = JSON.parse(line);
        } catch {
          continue;
        }
        if (typeof message !== 'object' || message === null) continue;
        if ('v' in message) feed.onHello(message as Hello);
        else if ('seq' in message) feed.onSnapshot(message as Snapshot);
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!connected) {
        reject(
          new PortunusError(
            'standalone_stats_unavailable',
            `cannot connect to ${socketPath}: ${error.code ?? error.message}`,
            { path: socketPath },
          ),
        );
      } else {
        feed.onClose(error.code ?? error.message);
      }
    });
    socket.on('close', () => {
      if (connected) feed.onClose('the daemon closed the stats socket');
    });
  });
}
