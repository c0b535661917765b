/**
 * The SNI benchmark (`npm run bench:sni`, `node bench/dist/sni/run.js [--quick]`): what TLS SNI
 * routing costs against a plain TCP rule on the same machine, in the same run. One forwarder
 * process (bench/src/forwarder/forwarder-process.ts, as the edge client runs the data plane)
 * holds a plain rule and an SNI port (an exact route, a wildcard and a fallback) to the same TLS
 * echo upstream (its own process); the load generator here opens TLS connections with a server
 * name at a fixed concurrency, sends one byte and waits for the echo. Figures per path:
 * connections per second and time to first byte (TCP connect → echoed byte, so the handshake
 * through the forwarder and the ClientHello peek are inside it) at p50 and p99. Rounds
 * alternate plain and SNI so drift on a shared machine hits both; the report is the median
 * round, as ratios SNI / plain. Timings are printed, never asserted; every child is stopped on
 * exit, failure and Ctrl-C.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

import {
  SNI_PEEK_BUCKETS_SECONDS,
  simpleRule,
  type RuleSpec,
  type SniListenerStats,
} from '@portunus/forwarder';

import { Child, killChildren } from '../forwarder/children.js';
import { askStatus } from '../forwarder/sides.js';
import { formatInt, nowMs, percentile, printTable, progress } from '../store/report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FORWARDER = path.join(HERE, '..', 'forwarder', 'forwarder-process.js');
const UPSTREAM = path.join(HERE, 'upstream.js');

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 5;
const CONNECTIONS = quick ? 300 : 800;
const CONCURRENCY = 16;
/** Sequential connections per round of the latency table (concurrency 1: no queueing). */
const SEQUENTIAL = quick ? 100 : 300;
const LIFETIME_MS = 15 * 60_000;
const START_MS = 20_000;

interface Round {
  connPerSec: number;
  p50: number;
  p99: number;
}

/** One TLS connection: connect, handshake with `servername`, one byte out, its echo back. */
function oneConnection(port: number, servername: string): Promise<number> {
  const started = nowMs();
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    socket.once('secureConnect', () => socket.write('x'));
    socket.once('data', () => {
      const ttfb = nowMs() - started;
      socket.destroy();
      resolve(ttfb);
    });
    socket.once('error', reject);
  });
}

async function round(
  port: number,
  servername: string,
  connections = CONNECTIONS,
  concurrency = CONCURRENCY,
): Promise<Round> {
  const ttfb: number[] = [];
  let next = 0;
  const started = nowMs();
  const worker = async (): Promise<void> => {
    while (next < connections) {
      next++;
      ttfb.push(await oneConnection(port, servername));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (nowMs() - started) / 1000;
  return {
    connPerSec: ttfb.length / seconds,
    p50: percentile(ttfb, 50),
    p99: percentile(ttfb, 99),
  };
}

/** The bucket index holding quantile `q` of a per-bucket histogram. */
function bucketOf(counts: readonly number[], q: number): number {
  const total = counts.reduce((a, b) => a + b, 0);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i] ?? 0;
    if (seen >= q * total) return i;
  }
  return counts.length - 1;
}

function median(values: readonly number[]): number {
  return percentile(values, 50);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-bench-sni-'));
  try {
    const upstream = Child.start({
      name: 'tls-upstream',
      command: process.execPath,
      args: [UPSTREAM, 'upstream.bench'],
      dir,
      lifetimeMs: LIFETIME_MS,
    });
    const upstreamPort = await upstream.waitForLine((line) => {
      const parsed = JSON.parse(line) as { event?: string; port?: number };
      return parsed.event === 'bench.sni_upstream_ready' ? parsed.port : undefined;
    }, START_MS);
    const rule = (ruleId: string, sniPattern: string | null): RuleSpec =>
      simpleRule({
        ruleId,
        protocol: 'tcp',
        listenPort: 0,
        targetHost: '127.0.0.1',
        targetPort: upstreamPort,
        sniPattern,
      });
    const rules = [
      rule('plain', null),
      rule('exact', 'app.bench.test'),
      { ...rule('wildcard', '*.svc.bench.test'), listenPortFrom: 'exact' },
      { ...rule('fallback', null), listenPortFrom: 'exact' },
    ];
    const forwarder = Child.start({
      name: 'forwarder',
      command: process.execPath,
      args: [FORWARDER, JSON.stringify({ rules })],
      dir,
      lifetimeMs: LIFETIME_MS,
    });
    const ports = await forwarder.waitForLine((line) => {
      const parsed = JSON.parse(line) as { event?: string; ports?: Record<string, number[]> };
      return parsed.event === 'bench.forwarder_ready' ? parsed.ports : undefined;
    }, START_MS);
    const plainPort = ports['plain']?.[0];
    const sniPort = ports['exact']?.[0];
    if (plainPort === undefined || sniPort === undefined) throw new Error('no ports bound');
    const paths = [
      { name: 'direct (no forwarder)', port: upstreamPort, servername: 'app.bench.test' },
      { name: 'plain TCP rule', port: plainPort, servername: 'app.bench.test' },
      { name: 'SNI exact', port: sniPort, servername: 'app.bench.test' },
      { name: 'SNI wildcard', port: sniPort, servername: 'x.svc.bench.test' },
    ];
    const results = new Map<string, Round[]>(paths.map((p) => [p.name, []]));
    const sequential = new Map<string, Round[]>(paths.map((p) => [p.name, []]));
    // Warm-up: JIT and session caches of both sides, not measured.
    for (const p of paths) await round(p.port, p.servername);
    for (let r = 0; r < ROUNDS; r++) {
      for (const p of r % 2 === 0 ? paths : [...paths].reverse()) {
        progress(`round ${r + 1}/${ROUNDS}: ${p.name}`);
        results.get(p.name)!.push(await round(p.port, p.servername));
        sequential.get(p.name)!.push(await round(p.port, p.servername, SEQUENTIAL, 1));
      }
    }
    const summary = (name: string, table = results) => {
      const rounds = table.get(name)!;
      return {
        connPerSec: median(rounds.map((x) => x.connPerSec)),
        p50: median(rounds.map((x) => x.p50)),
        p99: median(rounds.map((x) => x.p99)),
      };
    };
    const base = summary('plain TCP rule');
    const ratio = (value: number, of: number) => (of > 0 ? (value / of).toFixed(2) : '-');
    printTable(
      `TLS through the forwarder: ${CONNECTIONS} connections per round at concurrency ${CONCURRENCY}, median of ${ROUNDS} rounds (node ${process.version}, ${os.cpus().length} cores${quick ? ', quick' : ''})`,
      ['path', 'conn/s', 'ttfb p50 ms', 'ttfb p99 ms', 'conn/s ratio', 'p50 ratio', 'p99 ratio'],
      paths.map((p) => {
        const s = summary(p.name);
        return [
          p.name,
          formatInt(s.connPerSec),
          s.p50.toFixed(2),
          s.p99.toFixed(2),
          ratio(s.connPerSec, base.connPerSec),
          ratio(s.p50, base.p50),
          ratio(s.p99, base.p99),
        ];
      }),
    );
    const seqBase = summary('plain TCP rule', sequential);
    printTable(
      `One connection at a time: ${SEQUENTIAL} per round, median of ${ROUNDS} rounds`,
      ['path', 'ttfb p50 ms', 'ttfb p99 ms', 'p50 ratio', 'p99 ratio', 'p50 - plain ms'],
      paths.map((p) => {
        const s = summary(p.name, sequential);
        return [
          p.name,
          s.p50.toFixed(2),
          s.p99.toFixed(2),
          ratio(s.p50, seqBase.p50),
          ratio(s.p99, seqBase.p99),
          (s.p50 - seqBase.p50).toFixed(2),
        ];
      }),
    );
    // The forwarder's own peek histogram: accept → hello read and routed, the SNI path's extra.
    const status = await askStatus<{ seq: number; sni: SniListenerStats[] }>(
      forwarder,
      'bench.forwarder_status',
      START_MS,
    );
    const [listener] = status.sni;
    if (listener) {
      const mean = listener.client_hello_peek_sum_micros / listener.client_hello_peek_count;
      const bounds = [...SNI_PEEK_BUCKETS_SECONDS.map((b) => `${b * 1000} ms`), '+Inf'];
      const median = bucketOf(listener.client_hello_peek_bucket_counts, 0.5);
      const p99 = bucketOf(listener.client_hello_peek_bucket_counts, 0.99);
      console.log(
        `\nClientHello peek inside the forwarder (${formatInt(listener.client_hello_peek_count)} peeks): mean ${(mean / 1000).toFixed(3)} ms, median <= ${bounds[median]}, p99 <= ${bounds[p99]}; misses ${listener.sni_route_miss_total}, parse failures ${listener.client_hello_parse_failures_total}`,
      );
    }
    await forwarder.stop();
    await upstream.stop();
  } finally {
    killChildren();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killChildren();
    process.exit(130);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  killChildren();
  process.exitCode = 1;
});
