/**
 * Starting the processes every section needs: the iperf3 server and the HTTP target (nginx, or a
 * Node server when nginx is missing), and the sides that sit between the load generator and the
 * target: socat, haproxy (nbthread 1, tcp mode, no splice: "userspace mode") and the Portunus
 * forwarder in its own process. Readiness of programs that print nothing is a LISTEN socket in
 * /proc/net, so no probe connection ever reaches a target (iperf3 would take one for a test).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { simpleRule } from '@portunus/forwarder';

import { nowMs, sleep } from '../store/report.js';
import { Child, freeTcpPort, freeTcpUdpPort } from './children.js';
import type { ForwarderBenchConfig } from './config.js';
import type { Tools } from './tools.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface Context {
  config: ForwarderBenchConfig;
  tools: Tools;
  /** Work directory: configs and child output files. */
  dir: string;
}

/** A started process that listens on `port` (its pid for CPU and memory readings). */
export interface Running {
  child: Child;
  port: number;
}

/** True when /proc/net lists a socket bound to `port` (TCP: in LISTEN state). */
function isBound(port: number, proto: 'tcp' | 'udp'): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of proto === 'tcp' ? ['tcp', 'tcp6'] : ['udp', 'udp6']) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local?.endsWith(`:${hex}`) && (proto === 'udp' || fields[3] === '0A')) return true;
    }
  }
  return false;
}

export async function waitForBound(
  port: number,
  proto: 'tcp' | 'udp',
  child: Child,
  timeoutMs: number,
): Promise<void> {
  const deadline = nowMs() + timeoutMs;
  while (!isBound(port, proto)) {
    if (!child.running) throw new Error(`${child.name} exited first:\n${child.tail()}`);
    if (nowMs() > deadline) throw new Error(`${child.name}: ${proto} port ${port} not bound`);
    await sleep(20);
  }
}

export async function startIperfServer(ctx: Context): Promise<Running> {
  const iperf3 = ctx.tools.iperf3;
  if (iperf3 === undefined) throw new Error('iperf3 is missing');
  const port = await freeTcpUdpPort();
  const child = Child.start({
    name: 'iperf3-server',
    command: iperf3,
    args: ['-s', '-p', String(port), '-B', '127.0.0.1', '--forceflush'],
    dir: ctx.dir,
    lifetimeMs: ctx.config.childLifetimeMs,
  });
  await waitForBound(port, 'tcp', child, ctx.config.startTimeoutMs);
  return { child, port };
}

/** nginx serving 200 "hello\n" with 1 worker, no access log and long keep-alive. */
export async function startNginx(ctx: Context): Promise<Running> {
  const nginx = ctx.tools.nginx;
  if (nginx === undefined) throw new Error('nginx is missing');
  const port = await freeTcpPort();
  const dir = path.join(ctx.dir, 'nginx');
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    [
      'daemon off;',
      'master_process on;',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'worker_rlimit_nofile 16384;',
      'events { worker_connections 8192; }',
      'http {',
      '  access_log off;',
      '  keepalive_requests 1000000;',
      '  keepalive_timeout 60s;',
      `  client_body_temp_path ${dir}/body;`,
      `  proxy_temp_path ${dir}/proxy;`,
      `  fastcgi_temp_path ${dir}/fastcgi;`,
      `  uwsgi_temp_path ${dir}/uwsgi;`,
      `  scgi_temp_path ${dir}/scgi;`,
      '  server {',
      `    listen 127.0.0.1:${port} backlog=4096;`,
      '    location / { default_type text/plain; return 200 "hello\\n"; }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const child = Child.start({
    name: 'nginx',
    command: nginx,
    args: ['-p', dir, '-e', `${dir}/error.log`, '-c', conf],
    dir: ctx.dir,
    lifetimeMs: ctx.config.childLifetimeMs,
    stopSignal: 'SIGTERM',
  });
  await waitForBound(port, 'tcp', child, ctx.config.startTimeoutMs);
  return { child, port };
}

/** The fallback target: a node:http server in its own process. */
export async function startNodeHttpTarget(ctx: Context): Promise<Running> {
  const child = Child.start({
    name: 'http-target',
    command: process.execPath,
    args: [path.join(HERE, 'http-target.js')],
    dir: ctx.dir,
    lifetimeMs: ctx.config.childLifetimeMs,
  });
  const port = await child.waitForLine((line) => {
    const parsed = JSON.parse(line) as { event?: string; port?: number };
    return parsed.event === 'bench.http_ready' ? parsed.port : undefined;
  }, ctx.config.startTimeoutMs);
  return { child, port };
}

/** One socat listener (fork per connection); UDP with `-T 10` so idle children go away. */
export async function startSocat(
  ctx: Context,
  proto: 'tcp' | 'udp',
  listenPort: number,
  targetPort: number,
): Promise<Running> {
  const socat = ctx.tools.socat;
  if (socat === undefined) throw new Error('socat is missing');
  const args =
    proto === 'tcp'
      ? [
          `TCP-LISTEN:${listenPort},bind=127.0.0.1,fork,reuseaddr,backlog=4096`,
          `TCP:127.0.0.1:${targetPort}`,
        ]
      : [
          '-T',
          '10',
          `UDP-LISTEN:${listenPort},bind=127.0.0.1,fork,reuseaddr`,
          `UDP:127.0.0.1:${targetPort}`,
        ];
  const child = Child.start({
    name: `socat-${proto}`,
    command: socat,
    args,
    dir: ctx.dir,
    lifetimeMs: ctx.config.childLifetimeMs,
  });
  await waitForBound(listenPort, proto, child, ctx.config.startTimeoutMs);
  return { child, port: listenPort };
}

/**
 * One haproxy process with a tcp-mode `listen` per target; returns the listen ports in order.
 * Userspace mode with one thread unless `options` ask for `option splice-auto` and more threads
 * (the splice benchmark, bench/src/splice).
 */
export async function startHaproxy(
  ctx: Context,
  name: string,
  targets: readonly number[],
  maxconn = 4000,
  options: { splice?: boolean; nbthread?: number } = {},
): Promise<{ child: Child; ports: number[] }> {
  const haproxy = ctx.tools.haproxy;
  if (haproxy === undefined) throw new Error('haproxy is missing');
  const ports: number[] = [];
  while (ports.length < targets.length) ports.push(await freeTcpPort());
  const conf = path.join(ctx.dir, `haproxy-${name}.cfg`);
  const lines = [
    'global',
    `  nbthread ${options.nbthread ?? 1}`,
    `  maxconn ${maxconn}`,
    'defaults',
    '  mode tcp',
    `  maxconn ${maxconn}`,
    '  timeout connect 5s',
    '  timeout client 5m',
    '  timeout server 5m',
    ...(options.splice === true ? ['  option splice-auto'] : []),
  ];
  targets.forEach((target, index) => {
    lines.push(
      `listen l${index}`,
      `  bind 127.0.0.1:${ports[index]} backlog 4096`,
      `  server s${index} 127.0.0.1:${target}`,
    );
  });
  fs.writeFileSync(conf, `${lines.join('\n')}\n`);
  const child = Child.start({
    name: `haproxy-${name}`,
    command: haproxy,
    args: ['-db', '-f', conf],
    dir: ctx.dir,
    lifetimeMs: ctx.config.childLifetimeMs,
  });
  for (const port of ports) await waitForBound(port, 'tcp', child, ctx.config.startTimeoutMs);
  return { child, ports };
}

export interface ForwarderRule {
  ruleId: string;
  protocol: 'tcp' | 'udp';
  targetPort: number;
  /** Bind on the port that this earlier rule got (a UDP rule beside its TCP twin). */
  listenPortFrom?: string;
}

/** The Portunus forwarder in its own process, with these single-port rules to 127.0.0.1. */
export async function startForwarder(
  ctx: Context,
  name: string,
  rules: readonly ForwarderRule[],
): Promise<{ child: Child; ports: Record<string, number> }> {
  const spec = {
    rules: rules.map((rule) => ({
      ...simpleRule({
        ruleId: rule.ruleId,
        protocol: rule.protocol,
        listenPort: 0,
        targetHost: '127.0.0.1',
        targetPort: rule.targetPort,
      }),
      ...(rule.listenPortFrom === undefined ? {} : { listenPortFrom: rule.listenPortFrom }),
    })),
  };
  const child = Child.start({
    name: `forwarder-${name}`,
    command: process.execPath,
    args: ['--expose-gc', path.join(HERE, 'forwarder-process.js'), JSON.stringify(spec)],
    dir: ctx.dir,
    lifetimeMs: ctx.config.childLifetimeMs,
  });
  const ready = await child.waitForLine((line) => {
    const parsed = JSON.parse(line) as { event?: string; ports?: Record<string, number[]> };
    return parsed.event === 'bench.forwarder_ready' ? parsed.ports : undefined;
  }, ctx.config.startTimeoutMs);
  const ports: Record<string, number> = {};
  for (const [ruleId, bound] of Object.entries(ready)) {
    const first = bound[0];
    if (first === undefined) throw new Error(`rule ${ruleId} bound no port`);
    ports[ruleId] = first;
  }
  return { child, ports };
}

export interface ForwarderStatus {
  seq: number;
  rss: number;
  heap_used: number;
  stats: { rule_id: string; active_connections: number; conn_errors: number }[];
}

/** Asks the forwarder process for a status line (after a GC) and waits for it. */
export async function forwarderStatus(child: Child, timeoutMs: number): Promise<ForwarderStatus> {
  return askStatus<ForwarderStatus>(child, 'bench.forwarder_status', timeoutMs);
}

/**
 * Sends SIGUSR2 to the command (not its group: the `timeout` wrapper would die of it) and waits
 * for the status line it prints, told apart from earlier ones by its `seq`.
 */
export async function askStatus<T extends { seq: number }>(
  child: Child,
  event: string,
  timeoutMs: number,
): Promise<T> {
  const parse = (line: string): (T & { event?: string }) | undefined => {
    const parsed = JSON.parse(line) as T & { event?: string };
    return parsed.event === event ? parsed : undefined;
  };
  let previous = 0;
  for (const line of child.stdout().split('\n')) {
    if (line !== '') previous = Math.max(previous, parse(line)?.seq ?? 0);
  }
  child.signalCommand('SIGUSR2');
  return child.waitForLine((line) => {
    const parsed = parse(line);
    return parsed !== undefined && parsed.seq > previous ? parsed : undefined;
  }, timeoutMs);
}
