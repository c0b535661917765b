/**
 * `npm run bench:scale -- --clients N`: N edge clients on one real `portunus-server serve`. The
 * server runs from its built binary on a temp data dir; N clients are enrolled through the
 * operator API and the real `ClientEnrollment.Enroll` RPC (the client package's `enroll`, pinned
 * TLS); a few load processes (load.ts) hold the N control streams with the client's own daemon
 * loop. Measured: the latency of one `POST /v1/rules` per client with all N connected, the time
 * from SIGTERM of the server until all N streams are welcomed again by a server restarted on the
 * same data dir and control port (the client's full-jitter backoff), and the server's VmRSS with N
 * versus 0 connected. Every child runs under `timeout` (bounded-process.ts) and is killed on exit.
 * Depends on the server (secret hashing), store (fixture), client and core; the server binary is
 * a separate process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { enroll, type Bundle } from '@portunus/client';
import { EVENTS, silentLogger } from '@portunus/core';
import { generateSecret, hashSecret } from '@portunus/server';
import { insertCredential, insertUser, openStore } from '@portunus/store';
import { SERVER_BIN } from '@portunus/test-support';

import { cpuMs, killServers, ServerProcess } from '../operator/processes.js';
import { nowMs, percentile, progress, sleep } from '../store/report.js';
import type { LoadSpec } from './load.js';

const LOAD_SCRIPT = fileURLToPath(new URL('./load.js', import.meta.url));
const LOOPBACK = '127.0.0.1';
/** Pushed rules listen on BASE_PORT + index: below the ephemeral range, one per client. */
const BASE_PORT = 20_000;
const MAX_CLIENTS = 16_000;

interface ScaleConfig {
  clients: number;
  loadProcesses: number;
  enrollConcurrency: number;
  connectTimeoutMs: number;
  reconnectTimeoutMs: number;
  pushAckTimeoutSecs: number;
  /** Every child's hard lifetime (coreutils `timeout`). */
  lifetimeMs: number;
  load: Omit<LoadSpec, 'bundles'>;
}

function parseArgs(argv: readonly string[]): ScaleConfig {
  let clients = 1000;
  let loadProcesses = 4;
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const value = Number(argv[i + 1]);
    if (flag === '--clients') clients = value;
    else if (flag === '--load-processes') loadProcesses = value;
    else throw new Error(`unknown argument ${String(flag)} (use --clients N, --load-processes P)`);
    i += 1;
  }
  if (!Number.isInteger(clients) || clients < 1 || clients > MAX_CLIENTS) {
    throw new Error(`--clients must be an integer in 1..${MAX_CLIENTS}`);
  }
  if (!Number.isInteger(loadProcesses) || loadProcesses < 1 || loadProcesses > 16) {
    throw new Error('--load-processes must be an integer in 1..16');
  }
  return {
    clients,
    loadProcesses: Math.min(loadProcesses, clients),
    enrollConcurrency: 8,
    connectTimeoutMs: 60_000 + clients * 60,
    reconnectTimeoutMs: 120_000,
    pushAckTimeoutSecs: 10,
    lifetimeMs: 900_000,
    // The client's defaults (program.ts) for the backoff; StatsReport every 5 s instead of 30 s
    // so reports flow during the run.
    load: {
      statsReportIntervalMs: 5000,
      reconnectInitialDelayMs: 500,
      reconnectMaxDelayMs: 30_000,
    },
  };
}

function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function jsonLines(file: string): Record<string, unknown>[] {
  const text = fs.readFileSync(file, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .map(jsonLine)
    .filter((line) => line !== undefined);
}

/** VmRSS of `pid` in bytes, from /proc. */
function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** A superadmin with one API credential, written straight into a fresh store (setup only). */
function buildStore(dataDir: string): string {
  const token = generateSecret();
  const store = openStore(dataDir);
  try {
    const now = Date.now();
    store.db.transaction(() => {
      insertUser(store.db, {
        userId: 'scale-admin',
        role: 'superadmin',
        displayName: 'Scale admin',
        now,
      });
      insertCredential(store.db, {
        credentialId: '01JSCALEBENCHCREDENTIAL000',
        userId: 'scale-admin',
        hash: hashSecret(token),
        label: 'bench',
        now,
      });
    })();
  } finally {
    store.close();
  }
  return token;
}

interface Server {
  process: ServerProcess;
  pid: number;
  controlPort: number;
  operator: string;
  metrics: string;
}

/** The server's own view of its memory (prom-client's Node metrics), in bytes. */
async function heapBytes(server: Server): Promise<{ heapUsed: number; external: number }> {
  const text = await (await fetch(`${server.metrics}/metrics`)).text();
  const value = (name: string): number =>
    Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    heapUsed: value('nodejs_heap_size_used_bytes'),
    external: value('nodejs_external_memory_bytes'),
  };
}

async function startServer(
  dataDir: string,
  workDir: string,
  controlPort: number,
  run: number,
  config: ScaleConfig,
): Promise<Server> {
  const server = ServerProcess.start({
    name: 'portunus-server',
    args: [
      SERVER_BIN,
      '--data-dir',
      dataDir,
      'serve',
      '--control-listen',
      `${LOOPBACK}:${controlPort}`,
      '--operator-http-listen',
      `${LOOPBACK}:0`,
      '--metrics-listen',
      `${LOOPBACK}:0`,
    ],
    stdoutFile: path.join(workDir, `server-${run}.stdout`),
    stderrFile: path.join(workDir, `server-${run}.log`),
    lifetimeMs: config.lifetimeMs,
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
      30_000,
    );
    const listeners = listening['listeners'] as Record<string, string>;
    const control = /:(\d+)$/.exec(listeners['control'] ?? '');
    if (!control)
      throw new Error(`server.listening without a control port: ${String(listeners['control'])}`);
    return {
      process: server,
      pid: Number(listening['pid']),
      controlPort: Number(control[1]),
      operator: `http://${listeners['operator_http']}`,
      metrics: `http://${listeners['metrics']}`,
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function api(
  server: Server,
  token: string,
  method: string,
  url: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${server.operator}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    json: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
  };
}

async function pool<T>(
  count: number,
  concurrency: number,
  work: (index: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next;
      next += 1;
      results[index] = await work(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

async function enrollAll(
  server: Server,
  token: string,
  workDir: string,
  config: ScaleConfig,
): Promise<Bundle[]> {
  const dir = path.join(workDir, 'bundles');
  fs.mkdirSync(dir);
  let done = 0;
  return pool(config.clients, config.enrollConcurrency, async (index) => {
    const name = `scale-${String(index).padStart(5, '0')}`;
    const issued = await api(server, token, 'POST', '/v1/client-enrollments', { name });
    if (issued.status !== 201)
      throw new Error(`enrollment ${name}: ${issued.status} ${JSON.stringify(issued.json)}`);
    const result = await enroll({
      uri: String(issued.json['uri']),
      outPath: path.join(dir, `${name}.json`),
      logger: silentLogger,
    });
    done += 1;
    if (done % 500 === 0) progress(`enrolled ${done}/${config.clients}`);
    return result.bundle;
  });
}

class Loads {
  readonly processes: ServerProcess[] = [];
  readonly shares: number[] = [];

  constructor(bundles: readonly Bundle[], workDir: string, config: ScaleConfig) {
    const per = Math.ceil(bundles.length / config.loadProcesses);
    for (let p = 0; p < config.loadProcesses; p += 1) {
      const share = bundles.slice(p * per, (p + 1) * per);
      if (share.length === 0) continue;
      const specFile = path.join(workDir, `load-${p}.json`);
      const spec: LoadSpec = { ...config.load, bundles: share };
      fs.writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
      this.shares.push(share.length);
      this.processes.push(
        ServerProcess.start({
          name: `load-${p}`,
          args: [LOAD_SCRIPT, specFile],
          stdoutFile: path.join(workDir, `load-${p}.stdout`),
          stderrFile: path.join(workDir, `load-${p}.stderr`),
          lifetimeMs: config.lifetimeMs,
        }),
      );
    }
  }

  /** Welcomed sessions lost so far, by gRPC code and details, summed over the processes. */
  losses(): Record<string, number> {
    const sum: Record<string, number> = {};
    for (const load of this.processes) {
      const last = jsonLines(load.stdoutFile).findLast((line) => line['lost'] !== undefined);
      for (const [reason, count] of Object.entries(
        (last?.['lost'] ?? {}) as Record<string, number>,
      ))
        sum[reason] = (sum[reason] ?? 0) + count;
    }
    return sum;
  }

  /** Welcomed sessions, summed over the processes' latest reports. */
  connected(): number {
    let sum = 0;
    for (const load of this.processes) {
      const last = jsonLines(load.stdoutFile).findLast(
        (line) => typeof line['connected'] === 'number',
      );
      sum += Number(last?.['connected'] ?? 0);
    }
    return sum;
  }

  /**
   * Waits until every process reported all of its sessions welcomed at a moment after `sinceMs`
   * (epoch ms); returns the latest of those moments, or undefined at the deadline. A process that
   * lost and regained sessions earlier (a stream dropped under load) does not count as full
   * again before `sinceMs`.
   */
  async allFull(sinceMs: number, timeoutMs: number): Promise<number | undefined> {
    const deadline = nowMs() + timeoutMs;
    let lastLog = nowMs();
    for (;;) {
      const moments = this.processes.map((load) => {
        const full = jsonLines(load.stdoutFile).find(
          (line) => line['event'] === 'scale.load.full' && Number(line['at_ms']) > sinceMs,
        );
        return full === undefined ? undefined : Number(full['at_ms']);
      });
      if (moments.every((at) => at !== undefined)) return Math.max(...moments);
      for (const load of this.processes) {
        if (!load.running) throw new Error(`${load.name} exited:\n${load.tail()}`);
      }
      if (nowMs() > deadline) return undefined;
      if (nowMs() - lastLog > 5000) {
        lastLog = nowMs();
        progress(
          `connected ${this.connected()}/${this.shares.reduce((a, b) => a + b, 0)}; lost so far ${JSON.stringify(this.losses())}`,
        );
      }
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.processes.map((load) => load.stop()));
  }
}

async function main(): Promise<void> {
  let config: ScaleConfig;
  try {
    config = parseArgs(process.argv.slice(2));
  } catch (error) {
    // Exit 2 on a bad argument, as the other benchmarks do (README.md).
    console.error(`bench:scale: ${(error as Error).message}`);
    process.exitCode = 2;
    return;
  }
  const N = config.clients;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-bench-scale-'));
  const dataDir = path.join(workDir, 'data');
  fs.mkdirSync(dataDir);
  let server: Server | undefined;
  let loads: Loads | undefined;
  const killAll = (): void => {
    killServers();
  };
  process.once('SIGINT', () => {
    killAll();
    process.exit(130);
  });
  process.once('SIGTERM', () => {
    killAll();
    process.exit(143);
  });
  try {
    progress(`scale: ${N} clients, ${config.loadProcesses} load processes, work dir ${workDir}`);
    const token = buildStore(dataDir);
    server = await startServer(dataDir, workDir, 0, 1, config);
    const controlPort = server.controlPort;
    const enrollStart = nowMs();
    const bundles = await enrollAll(server, token, workDir, config);
    progress(`enrolled ${N} in ${((nowMs() - enrollStart) / 1000).toFixed(1)} s`);
    const rssIdle = rssBytes(server.pid);
    const heapIdle = await heapBytes(server);

    const connectStart = nowMs();
    const connectCpu = cpuMs(server.pid);
    loads = new Loads(bundles, workDir, config);
    const fullAt = await loads.allFull(0, config.connectTimeoutMs);
    const connected = loads.connected();
    // Server CPU per connect says whether the connect rate is the server's or the machine's.
    const cpuPerConnect = (cpuMs(server.pid) - connectCpu) / Math.max(connected, 1);
    progress(
      (fullAt === undefined
        ? `only ${connected}/${N} connected within ${config.connectTimeoutMs} ms`
        : `all ${N} connected in ${((nowMs() - connectStart) / 1000).toFixed(1)} s`) +
        `, server CPU ${cpuPerConnect.toFixed(1)} ms per connect`,
    );
    const rssConnected = rssBytes(server.pid);
    const heapConnected = await heapBytes(server);
    const kibPer = (a: number, b: number): string =>
      ((b - a) / 1024 / Math.max(connected, 1)).toFixed(1);
    progress(
      `per connected client: JS heap ${kibPer(heapIdle.heapUsed, heapConnected.heapUsed)} KiB, ` +
        `external ${kibPer(heapIdle.external, heapConnected.external)} KiB, ` +
        `RSS ${kibPer(rssIdle, rssConnected)} KiB (no GC forced: garbage included)`,
    );

    const latencies: number[] = [];
    const refusals = new Map<string, number>();
    for (let index = 0; index < N; index += 1) {
      const started = nowMs();
      const pushed = await api(server, token, 'POST', '/v1/rules', {
        client: bundles[index]!.client_name,
        listen_port: BASE_PORT + index,
        target_host: LOOPBACK,
        target_port: 9,
        protocol: 'tcp',
        ack_timeout_secs: config.pushAckTimeoutSecs,
      });
      const elapsed = nowMs() - started;
      if (pushed.status === 201) latencies.push(elapsed);
      else {
        const error = pushed.json['error'] as { code?: unknown } | undefined;
        const code = `${pushed.status} ${String(error?.code)}`;
        refusals.set(code, (refusals.get(code) ?? 0) + 1);
      }
    }
    progress(
      `pushed ${latencies.length}/${N} rules${refusals.size > 0 ? `; refused: ${JSON.stringify([...refusals])}` : ''}`,
    );
    const rssAfterPush = rssBytes(server.pid);

    const restartAt = Date.now();
    await server.process.stop();
    server = await startServer(dataDir, workDir, controlPort, 2, config);
    const refullAt = await loads.allFull(restartAt, config.reconnectTimeoutMs);
    const reconnectS = refullAt === undefined ? Number.NaN : (refullAt - restartAt) / 1000;
    progress(
      refullAt === undefined
        ? `only ${loads.connected()}/${N} reconnected within ${config.reconnectTimeoutMs} ms`
        : `all ${N} reconnected ${reconnectS.toFixed(1)} s after SIGTERM`,
    );

    progress(`welcomed sessions lost during the run: ${JSON.stringify(loads.losses())}`);
    const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
    progress(
      `server VmRSS: ${mb(rssIdle)} MiB with 0 connected, ${mb(rssConnected)} MiB with ${connected}, ${mb(rssAfterPush)} MiB after the pushes`,
    );
    const perClientKib = connected > 0 ? (rssConnected - rssIdle) / 1024 / connected : Number.NaN;
    console.log(
      `scale: clients=${N} connected=${connected} push_p50_ms=${percentile(latencies, 50).toFixed(1)} ` +
        `push_p99_ms=${percentile(latencies, 99).toFixed(1)} reconnect_all_s=${reconnectS.toFixed(1)} ` +
        `server_rss_mb=${mb(rssConnected)} rss_per_client_kib=${perClientKib.toFixed(1)}`,
    );
  } finally {
    await loads?.stop();
    await server?.process.stop();
    killAll();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

await main();
