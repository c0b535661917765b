/**
 * Helpers for the portunus-standalone end-to-end tests: loopback echo targets (TCP and UDP), a
 * held-open TCP connection, a stats-socket reader that collects NDJSON lines, and a starter that
 * writes portunus.toml into a temp dir and spawns the built binary, waiting for
 * `standalone.started`. Nothing here knows how the standalone works inside. Tests only.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { STANDALONE_BIN, type ProcessGroup, type RunningProcess } from '@portunus/test-support';

/** The echo target of every e2e test: one definition, in fleet.harness.ts. */
export { tcpEcho } from './fleet.harness.js';

export async function udpEcho(): Promise<{ port: number; close: () => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, from) => {
    socket.send(message, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    close: () =>
      new Promise((resolve) => {
        socket.close(() => {
          resolve();
        });
      }),
  };
}

/** Sends one datagram to `port` and resolves with the first answer, within a deadline. */
export function udpAsk(port: number, text: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no UDP answer on ${port}`));
    }, timeoutMs);
    socket.on('message', (message) => {
      clearTimeout(timer);
      socket.close();
      resolve(message.toString());
    });
    socket.send(text, port, '127.0.0.1');
  });
}

/** A connection kept open: `roundTrip` sends and waits for the echo on the same socket. */
export async function heldConnection(port: number): Promise<{
  roundTrip: (text: string) => Promise<string>;
  closed: Promise<void>;
  end: () => void;
}> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const closed = new Promise<void>((resolve) => {
    socket.once('close', () => {
      resolve();
    });
  });
  return {
    closed,
    end: () => socket.end(),
    roundTrip: (text) =>
      new Promise((resolve, reject) => {
        let answer = '';
        const timer = setTimeout(() => {
          reject(new Error(`no echo of ${text} on the held connection`));
        }, 5_000);
        const onData = (chunk: Buffer): void => {
          answer += chunk.toString();
          if (answer.length >= text.length) {
            clearTimeout(timer);
            socket.off('data', onData);
            resolve(answer);
          }
        };
        socket.on('data', onData);
        socket.write(text);
      }),
  };
}

/** Whether a TCP connect to `port` on loopback is refused (nothing listens). */
export function isRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      resolve(error.code === 'ECONNREFUSED');
    });
  });
}

/** Reads a stats socket, keeping every parsed line. */
export async function statsReader(socketPath: string): Promise<{
  lines: Record<string, unknown>[];
  socket: net.Socket;
}> {
  const lines: Record<string, unknown>[] = [];
  const socket = net.connect(socketPath);
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const part of parts) if (part) lines.push(JSON.parse(part) as Record<string, unknown>);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { lines, socket };
}

export interface Standalone {
  process: RunningProcess;
  dir: string;
  configPath: string;
  socketPath: string;
  /** The bound listen port of rule `name` (from rule.activated). */
  port(name: string): number;
}

/** The rule id the standalone derives from a name is not needed: ports come from the log. */
export async function startStandalone(
  group: ProcessGroup,
  dir: string,
  toml: string,
  options: { env?: Record<string, string>; args?: string[] } = {},
): Promise<Standalone> {
  const configPath = path.join(dir, 'portunus.toml');
  const socketPath = path.join(dir, 'stats.sock');
  fs.writeFileSync(configPath, toml);
  const child = group.node(
    STANDALONE_BIN,
    [
      '--config',
      configPath,
      '--log-level',
      'info',
      '--stats-socket',
      socketPath,
      ...(options.args ?? []),
    ],
    { ...(options.env ? { env: options.env } : {}) },
  );
  const started = await child.waitForEvent('standalone.started');
  const rules = started['rules'] as { name: string; ports: number[] }[];
  return {
    process: child,
    dir,
    configPath,
    socketPath,
    port(name) {
      const rule = rules.find((r) => r.name === name);
      if (!rule?.ports[0]) throw new Error(`no rule ${name} in standalone.started`);
      return rule.ports[0];
    },
  };
}
