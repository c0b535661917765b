/**
 * `portunus-standalone stats`: a reader of the stats socket. With `--once` it prints one JSON
 * document (the Hello's rules, names included, each with its latest counters) and exits; without
 * it, it runs the terminal UI (tui.ts) fed by every Snapshot line. Failing to reach the socket
 * is `standalone_stats_unavailable` and a missing terminal `standalone_tui_unavailable` (both exit
 * 2, reference §12). Depends on core's catalogue, the reader and the protocol shapes.
 */
import { PortunusError } from '@portunus/core';

import type { Hello, Snapshot } from './stats-protocol.js';
import { connectStats } from './stats-reader.js';
import { runTui } from './tui.js';

export interface StatsCommandOptions {
  socketPath: string;
  once: boolean;
  writeOut: (text: string) => void;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  /** How long `--once` waits for the Hello and a Snapshot. */
  timeoutMs?: number;
}

/** The `--once` document: the daemon, and each rule of the Hello with its latest counters. */
export function onceDocument(hello: Hello, snapshot: Snapshot): unknown {
  const counters = new Map(snapshot.r.map((entry) => [entry.id, entry]));
  return {
    v: hello.v,
    daemon_version: hello.daemon_version,
    daemon_started_at_ms: hello.daemon_started_at_ms,
    refresh_ms: hello.refresh_ms,
    t_ms: snapshot.t_ms,
    uptime_ms: snapshot.uptime_ms,
    seq: snapshot.seq,
    process: snapshot.process,
    rules: hello.rules.map((rule) => {
      const stats: Record<string, unknown> = { ...counters.get(rule.id) };
      delete stats['id'];
      return { ...rule, stats };
    }),
  };
}

export async function runStatsCommand(options: StatsCommandOptions): Promise<number> {
  if (options.once) return once(options);
  if (!options.stdin.isTTY || !options.stdout.isTTY) {
    throw new PortunusError('standalone_tui_unavailable');
  }
  return runTui({ socketPath: options.socketPath, stdin: options.stdin, stdout: options.stdout });
}

async function once(options: StatsCommandOptions): Promise<number> {
  let hello: Hello | undefined;
  let finish: ((value: unknown) => void) | undefined;
  let fail: ((error: Error) => void) | undefined;
  const done = new Promise<unknown>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const socket = await connectStats(options.socketPath, {
    onHello: (message) => {
      hello = message;
    },
    onSnapshot: (snapshot) => {
      if (hello) finish?.(onceDocument(hello, snapshot));
    },
    onClose: (reason) => {
      fail?.(
        new PortunusError('standalone_stats_unavailable', `${options.socketPath}: ${reason}`, {
          path: options.socketPath,
        }),
      );
    },
  });
  const timeoutMs = options.timeoutMs ?? 10_000;
  const timer = setTimeout(() => {
    fail?.(
      new PortunusError(
        'standalone_stats_unavailable',
        `${options.socketPath}: no Hello and Snapshot within ${timeoutMs} ms`,
        { path: options.socketPath },
      ),
    );
  }, timeoutMs);
  try {
    const document = await done;
    options.writeOut(`${JSON.stringify(document, null, 2)}\n`);
    return 0;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}
