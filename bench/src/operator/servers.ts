/**
 * Starting the two servers of the operator benchmark as separate processes on loopback ports the
 * system picks: the real `portunus-server serve` from its built binary (the product as shipped:
 * its own process, store, TLS identity, audit writer, metrics and JSON logs), and the bare fastify
 * baseline (bare-server.ts). Both wait for their readiness line with a deadline.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { EVENTS } from '@portunus/core';
import { SERVER_BIN } from '@portunus/test-support';

import type { OperatorBenchConfig } from './config.js';
import type { Target } from './load.js';
import { ServerProcess } from './processes.js';

const BARE_SERVER = fileURLToPath(new URL('./bare-server.js', import.meta.url));
const LOOPBACK_ANY_PORT = '127.0.0.1:0';

export interface RunningServer {
  process: ServerProcess;
  /** The node process itself (not its `timeout` wrapper), for CPU readings. */
  pid: number;
  target: Target;
}

export interface RealServer extends RunningServer {
  metrics: Target;
}

function parseAddress(text: unknown, what: string): Target {
  const match = typeof text === 'string' ? /^(.+):(\d+)$/.exec(text) : null;
  if (!match) throw new Error(`${what}: expected host:port, got ${JSON.stringify(text)}`);
  return { host: match[1]!, port: Number(match[2]) };
}

function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export async function startRealServer(
  dataDir: string,
  workDir: string,
  config: OperatorBenchConfig,
): Promise<RealServer> {
  const server = ServerProcess.start({
    name: 'portunus-server',
    args: [
      SERVER_BIN,
      '--data-dir',
      dataDir,
      'serve',
      '--control-listen',
      LOOPBACK_ANY_PORT,
      '--operator-http-listen',
      LOOPBACK_ANY_PORT,
      '--metrics-listen',
      LOOPBACK_ANY_PORT,
    ],
    stdoutFile: path.join(workDir, 'server.stdout'),
    stderrFile: path.join(workDir, 'server.log'),
    lifetimeMs: config.serverLifetimeMs,
    // The shipped defaults: info-level JSON logs on stderr. No environment overrides of ours.
    env: {
      PORTUNUS_LOG_LEVEL: undefined,
      PORTUNUS_CONTROL_LISTEN: undefined,
      PORTUNUS_OPERATOR_HTTP_LISTEN: undefined,
      PORTUNUS_METRICS_LISTEN: undefined,
      PORTUNUS_ADVERTISED_ENDPOINT: undefined,
    },
  });
  try {
    const listening = await server.waitForLine(
      server.stderrFile,
      (line) => {
        const event = jsonLine(line);
        return event?.['event'] === EVENTS.serverListening ? event : undefined;
      },
      config.startTimeoutMs,
    );
    const listeners = listening['listeners'] as Record<string, unknown> | undefined;
    return {
      process: server,
      pid: Number(listening['pid']),
      target: parseAddress(listeners?.['operator_http'], 'server.listening operator_http'),
      metrics: parseAddress(listeners?.['metrics'], 'server.listening metrics'),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

export async function startBareServer(
  payloadFile: string,
  workDir: string,
  config: OperatorBenchConfig,
): Promise<RunningServer & { fastifyVersion: string }> {
  const server = ServerProcess.start({
    name: 'bare fastify',
    args: [BARE_SERVER, payloadFile],
    stdoutFile: path.join(workDir, 'bare.stdout'),
    stderrFile: path.join(workDir, 'bare.stderr'),
    lifetimeMs: config.serverLifetimeMs,
  });
  try {
    const listening = await server.waitForLine(
      server.stdoutFile,
      (line) => {
        const event = jsonLine(line);
        return event?.['event'] === 'bare.listening' ? event : undefined;
      },
      config.startTimeoutMs,
    );
    return {
      process: server,
      pid: Number(listening['pid']),
      target: parseAddress(listening['address'], 'bare.listening address'),
      fastifyVersion: String(listening['fastify']),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}
