/**
 * The forwarder under test, in a process of its own as the edge client runs it:
 * `node [--expose-gc] forwarder-process.js '<json>'`, where the JSON is
 * `{ "rules": [RuleSpec & { listenPortFrom?: ruleId }], "options"?: ForwarderOptions,
 * "dnsServers"?: ["ip:port"] }` (target names then resolve through those servers only).
 * `listenPortFrom` binds a rule on the port another (earlier) rule got, which is how a UDP rule
 * gets the same port number as its TCP twin (iperf3 needs both). Prints one JSON ready line with
 * the bound ports on stdout; on SIGUSR2 it runs a GC (when exposed) and prints a status line with
 * its memory and rule stats; on SIGTERM it closes every rule and exits. Logs at warn level to
 * stderr. Imports only @portunus/forwarder and @portunus/core, like the edge client's data plane.
 */
import { createLogger } from '@portunus/core';
import {
  Forwarder,
  spliceStats,
  systemDnsBackend,
  type ForwarderOptions,
  type RuleSpec,
} from '@portunus/forwarder';

type BenchRule = RuleSpec & { listenPortFrom?: string };

interface ProcessSpec {
  rules: BenchRule[];
  options?: Omit<ForwarderOptions, 'logger' | 'resolver'>;
  dnsServers?: string[];
}

const raw = process.argv[2];
if (raw === undefined) throw new Error('usage: node forwarder-process.js \'{"rules":[...]}\'');
const spec = JSON.parse(raw) as ProcessSpec;
const forwarder = new Forwarder({
  ...spec.options,
  logger: createLogger({ level: 'warn' }),
  ...(spec.dnsServers
    ? {
        resolver: {
          backend: systemDnsBackend({ servers: spec.dnsServers, hostsPath: '/nonexistent' }),
        },
      }
    : {}),
});
const ports: Record<string, number[]> = {};
for (const rule of spec.rules) {
  const { listenPortFrom, ...ruleSpec } = rule;
  if (listenPortFrom !== undefined) {
    const port = ports[listenPortFrom]?.[0];
    if (port === undefined) throw new Error(`no rule ${listenPortFrom} before ${rule.ruleId}`);
    ruleSpec.listenPort = port;
  }
  const result = await forwarder.activate(ruleSpec);
  ports[rule.ruleId] = result.ports;
}
console.log(JSON.stringify({ event: 'bench.forwarder_ready', pid: process.pid, ports }));

let statusSeq = 0;
const gc = (globalThis as { gc?: () => void }).gc;
process.on('SIGUSR2', () => {
  statusSeq++;
  gc?.();
  const memory = process.memoryUsage();
  const stats = forwarder.stats().map((rule) => ({
    rule_id: rule.rule_id,
    active_connections: rule.active_connections,
    conn_errors: rule.conn_errors,
    bytes_in: rule.bytes_in,
    bytes_out: rule.bytes_out,
    datagrams_in: rule.datagrams_in,
    datagrams_out: rule.datagrams_out,
  }));
  console.log(
    JSON.stringify({
      event: 'bench.forwarder_status',
      seq: statusSeq,
      gc: gc !== undefined,
      rss: memory.rss,
      heap_used: memory.heapUsed,
      external: memory.external,
      array_buffers: memory.arrayBuffers,
      stats,
      sni: forwarder.sniListenerStats(),
      splice: spliceStats() ?? null,
    }),
  );
});
// Once every rule is closed nothing keeps the event loop alive, so the process ends by itself.
process.once('SIGTERM', () => {
  void forwarder.close({ drainMs: 0 });
});
