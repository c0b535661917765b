/**
 * Stats socket protocol v1 (reference §12): the shapes of the Hello and Snapshot lines, and the
 * pure functions that build them from the forwarder's RuleStats and the process's /proc numbers.
 * Shared by the daemon (writer) and `stats` (reader, TUI), so the field names are spelled once.
 * Beyond the reference, a Snapshot rule entry may carry `targets` (health per target, for the
 * TUI's targets panel) and a new Hello is sent to every reader after a SIGHUP reload; readers of
 * the reference format ignore both. Depends on the forwarder's types and node:fs only.
 */
import fs from 'node:fs';

import type { RuleStats, TargetHealthState } from '@portunus/forwarder';

import type { StandaloneRule } from './config.js';

export const PROTOCOL_VERSION = 1;

export interface HelloTarget {
  host: string;
  port: number;
  priority: number;
  proxy_protocol: string | null;
}

export interface HelloRule {
  id: string;
  name: string;
  proto: 'tcp' | 'udp';
  /** `[::]:port` or `[::]:lo-hi`, as bound. */
  listen: string;
  targets: HelloTarget[];
  /** A TCP rule in a process that splices (the fast path; docs/fast-path.md). */
  splice_capable: boolean;
  udp_max_flows: number;
}

export interface Hello {
  v: number;
  daemon_version: string;
  daemon_started_at_ms: number;
  refresh_ms: number;
  rules: HelloRule[];
}

/** Failure counters that this data plane really counts; only they are sent. */
export interface ErrorCounters {
  port_in_use: number;
  upstream_connect_failed: number;
  conn_errors: number;
  dns_failures: number;
  addflow_dropped: number;
}

export interface SnapshotTarget {
  host: string;
  port: number;
  health: TargetHealthState;
  consecutive_failures: number;
}

export interface SnapshotRule {
  id: string;
  in: number;
  out: number;
  conns_active: number;
  conns_total: number;
  datagrams_in: number;
  datagrams_out: number;
  flows_active: number;
  target_failovers_total: number;
  err: ErrorCounters;
  targets?: SnapshotTarget[];
}

export interface ProcessStats {
  fd_open: number;
  fd_limit: number;
  rss_bytes: number;
}

export interface Snapshot {
  t_ms: number;
  uptime_ms: number;
  seq: number;
  process: ProcessStats;
  r: SnapshotRule[];
}

export function helloRule(
  rule: StandaloneRule,
  boundPorts: readonly number[],
  canSplice: boolean,
): HelloRule {
  const low = boundPorts[0] ?? rule.spec.listenPort;
  const high = boundPorts[boundPorts.length - 1] ?? rule.spec.listenPortEnd ?? low;
  return {
    id: rule.spec.ruleId,
    name: rule.name,
    proto: rule.spec.protocol,
    listen: high !== low ? `[::]:${low}-${high}` : `[::]:${low}`,
    targets: rule.spec.targets.map((t) => ({
      host: t.host,
      port: t.port,
      priority: t.priority,
      proxy_protocol: t.proxyProtocol,
    })),
    // Standalone rules carry no bandwidth caps, so every TCP rule is eligible.
    splice_capable: canSplice && rule.spec.protocol === 'tcp',
    udp_max_flows: rule.udpMaxFlows,
  };
}

/** Counters the forwarder does not keep, counted by the daemon around it. */
export interface DaemonCounters {
  connsTotal: number;
  portInUse: number;
}

export function snapshotRule(stats: RuleStats, extra: DaemonCounters): SnapshotRule {
  const entry: SnapshotRule = {
    id: stats.rule_id,
    in: stats.bytes_in,
    out: stats.bytes_out,
    conns_active: stats.active_connections,
    conns_total: extra.connsTotal,
    datagrams_in: stats.datagrams_in,
    datagrams_out: stats.datagrams_out,
    flows_active: stats.active_flows,
    target_failovers_total: stats.target_failovers_total,
    err: {
      port_in_use: extra.portInUse,
      upstream_connect_failed: stats.connect_failures,
      conn_errors: stats.conn_errors,
      dns_failures: stats.dns_failures,
      addflow_dropped: stats.flows_dropped_overflow,
    },
  };
  if (stats.targets.length > 0) {
    entry.targets = stats.targets.map((t) => ({
      host: t.host,
      port: t.port,
      health: t.health,
      consecutive_failures: t.consecutive_failures,
    }));
  }
  return entry;
}

/** Open descriptors, the soft limit and RSS, from /proc (zeros where /proc is absent). */
export function processStats(): ProcessStats {
  let fdOpen = 0;
  let fdLimit = 0;
  try {
    // The directory handle used to list /proc/self/fd is one of the entries.
    fdOpen = Math.max(0, fs.readdirSync('/proc/self/fd').length - 1);
    const limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    fdLimit = match?.[1] === 'unlimited' ? 0 : Number(match?.[1] ?? 0);
  } catch {
    // Not Linux: report zeros rather than guess.
  }
  return { fd_open: fdOpen, fd_limit: fdLimit, rss_bytes: process.memoryUsage.rss() };
}
