/**
 * The standalone benchmark (`node bench/dist/standalone/run.js [--quick]`): the real
 * `portunus-standalone` binary against the client's data plane (the same Forwarder in a process of
 * its own, bench/src/forwarder/forwarder-process.ts, as `portunus-client` runs it) on the same
 * TCP rule, in the same run, with direct loopback and socat (when installed) as baselines.
 * Two figures per contender: single-stream throughput into a sink (median of rounds) and the
 * connection rate of connect → 64-byte echo → close with 16 in flight (medians of rounds that
 * alternate between contenders). Figures are reported,
 * never asserted; every child is stopped and the work directory removed at the end.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { simpleRule } from '@portunus/forwarder';
import { STANDALONE_BIN } from '@portunus/test-support';

import { Child, freeTcpPort, killChildren, waitForTcp } from '../forwarder/children.js';
import { median, nowMs, printTable } from '../store/report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FORWARDER_PROCESS = path.join(HERE, '..', 'forwarder', 'forwarder-process.js');
const quick = process.argv.includes('--quick');
const STREAM_BYTES = (quick ? 128 : 512) * 1024 * 1024;
const ROUNDS = quick ? 2 : 3;
const CONNECTIONS = quick ? 600 : 1500;
const IN_FLIGHT = 16;

/** A loopback sink counting bytes, and an echo server, both in this process. */
async function targets(): Promise<{
  sinkPort: number;
  echoPort: number;
  sinkBytes: () => number;
  close: () => void;
}> {
  let bytes = 0;
  const sink = net.createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.on('error', () => undefined);
  });
  const echo = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  const listen = (server: net.Server): Promise<number> =>
    new Promise((resolve) => {
      server.listen(0, '127.0.0.1', () => {
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  return {
    sinkPort: await listen(sink),
    echoPort: await listen(echo),
    sinkBytes: () => bytes,
    close: () => {
      sink.close();
      echo.close();
    },
  };
}

/** MB/s of one connection writing STREAM_BYTES until the sink has them all. */
async function throughput(port: number, sinkBytes: () => number): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 7);
  const start = sinkBytes();
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const began = nowMs();
  let sent = 0;
  while (sent < STREAM_BYTES) {
    sent += chunk.length;
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  while (sinkBytes() - start < STREAM_BYTES) await new Promise((resolve) => setImmediate(resolve));
  const seconds = (nowMs() - began) / 1000;
  socket.destroy();
  return STREAM_BYTES / 1e6 / seconds;
}

/** Connections per second: connect, 64 bytes echoed, close; IN_FLIGHT at a time. */
async function connectionRate(port: number): Promise<number> {
  const payload = Buffer.alloc(64, 1);
  let started = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      let got = 0;
      socket.on('connect', () => socket.write(payload));
      socket.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= payload.length) socket.end();
      });
      socket.on('close', () => {
        if (got >= payload.length) resolve();
        else reject(new Error(`connection through ${port} closed early`));
      });
      socket.on('error', reject);
    });
  const worker = async (): Promise<void> => {
    while (started < CONNECTIONS) {
      started++;
      await one();
    }
  };
  const began = nowMs();
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return CONNECTIONS / ((nowMs() - began) / 1000);
}

interface Contender {
  name: string;
  /** Starts it for a target port; resolves with its listen port. */
  start: (targetPort: number, dir: string) => Promise<{ port: number; child?: Child }>;
}

function hasSocat(): boolean {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const contenders: Contender[] = [
  { name: 'direct loopback', start: (targetPort) => Promise.resolve({ port: targetPort }) },
  {
    name: 'portunus-standalone',
    start: async (targetPort, dir) => {
      const port = await freeTcpPort();
      const config = path.join(dir, `standalone-${targetPort}.toml`);
      fs.writeFileSync(
        config,
        `[[rule]]\nname = "bench"\nlisten_port = ${port}\ntarget = "127.0.0.1:${targetPort}"\n`,
      );
      const child = Child.start({
        name: 'standalone',
        command: process.execPath,
        args: [STANDALONE_BIN, '--config', config, '--no-stats', '--log-level', 'warn'],
        dir,
        lifetimeMs: 300_000,
      });
      await waitForTcp(port, child, 10_000);
      return { port, child };
    },
  },
  {
    name: 'client data plane',
    start: async (targetPort, dir) => {
      const rule = simpleRule({
        ruleId: 'bench',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: '127.0.0.1',
        targetPort,
      });
      const child = Child.start({
        name: 'forwarder',
        command: process.execPath,
        args: [FORWARDER_PROCESS, JSON.stringify({ rules: [rule] })],
        dir,
        lifetimeMs: 300_000,
      });
      const port = await child.waitForLine((line) => {
        const parsed = JSON.parse(line) as { ports?: Record<string, number[]> };
        return parsed.ports?.['bench']?.[0];
      }, 10_000);
      return { port, child };
    },
  },
];
if (hasSocat()) {
  contenders.push({
    name: 'socat',
    start: async (targetPort, dir) => {
      const port = await freeTcpPort();
      const child = Child.start({
        name: 'socat',
        command: 'socat',
        args: [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `TCP:127.0.0.1:${targetPort}`],
        dir,
        lifetimeMs: 300_000,
      });
      await waitForTcp(port, child, 10_000);
      return { port, child };
    },
  });
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-bench-standalone-'));
  const t = await targets();
  const rows: string[][] = [];
  const results: { name: string; mbps: number; cps: number }[] = [];
  try {
    // Rounds alternate between contenders so a noisy neighbour on the shared machine hits all
    // of them alike rather than whichever happened to run at that moment.
    const streams = new Map<string, number[]>();
    const rates = new Map<string, number[]>();
    const sinks = [];
    for (const contender of contenders) sinks.push(await contender.start(t.sinkPort, dir));
    for (let i = 0; i < ROUNDS; i++) {
      for (const [index, contender] of contenders.entries()) {
        const list = streams.get(contender.name) ?? [];
        list.push(await throughput(sinks[index]!.port, t.sinkBytes));
        streams.set(contender.name, list);
      }
    }
    for (const sink of sinks) await sink.child?.stop();
    const echoes = [];
    for (const contender of contenders) echoes.push(await contender.start(t.echoPort, dir));
    for (let i = 0; i < ROUNDS; i++) {
      for (const [index, contender] of contenders.entries()) {
        const list = rates.get(contender.name) ?? [];
        list.push(await connectionRate(echoes[index]!.port));
        rates.set(contender.name, list);
      }
    }
    for (const echo of echoes) await echo.child?.stop();
    for (const contender of contenders) {
      results.push({
        name: contender.name,
        mbps: median(streams.get(contender.name) ?? []),
        cps: median(rates.get(contender.name) ?? []),
      });
    }
    const client = results.find((r) => r.name === 'client data plane');
    for (const r of results) {
      rows.push([
        r.name,
        r.mbps.toFixed(0),
        client ? `${(r.mbps / client.mbps).toFixed(2)}x` : '-',
        r.cps.toFixed(0),
        client ? `${(r.cps / client.cps).toFixed(2)}x` : '-',
      ]);
    }
    printTable(
      `standalone vs client data plane: ${STREAM_BYTES / 1024 / 1024} MiB x ${ROUNDS} rounds ` +
        `(median); ${CONNECTIONS} connections x ${ROUNDS} rounds, ${IN_FLIGHT} in flight`,
      ['contender', 'MB/s', 'vs client', 'conn/s', 'vs client'],
      rows,
    );
  } finally {
    killChildren();
    t.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
