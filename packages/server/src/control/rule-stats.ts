/**
 * The latest stats each client reported for its rules (reference §4.2 StatsReport, §2.5
 * RuleStatsSnapshot), kept in memory: `GET /v1/rules/{id}/stats` reads a snapshot, and the
 * Prometheus `portunus_rule_*` series (one per rule, labels client/rule/owner; per-port detail
 * never exported) are rendered from the same table at scrape time. Counters are the client's
 * cumulative values, so a client restart shows up as an ordinary counter reset. The counter and
 * per-target shapes are the data plane's own (`RuleStats`, `TargetStats` from the forwarder,
 * imported as types), so no layer re-spells them; per-target health (0 healthy, 1 failed, as in
 * the reference) also feeds the live `targets[].health` of the rule JSON. SNI route counters
 * (RuleStats 13-15) become `portunus_tls_sni_route_total{result}`. Depends on prom-client and the
 * proto and forwarder types only.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

import type { PortCounter, Protocol, RuleStats, TargetStats } from '@portunus/forwarder';
import type { PerPortStats, WireRuleStats } from '@portunus/proto';

/** One target's live state as the API shows it (reference §2.5 per_target). */
export type TargetStatsSnapshot = Omit<TargetStats, 'health'> & { health: 0 | 1 };

/** The rule-wide counters a client reports, spelled once by the data plane. */
type ReportedCounters = Pick<
  RuleStats,
  | Extract<
      PortCounter,
      | 'bytes_in'
      | 'bytes_out'
      | 'active_connections'
      | 'datagrams_in'
      | 'datagrams_out'
      | 'active_flows'
      | 'flows_dropped_overflow'
    >
  | 'dns_failures'
  | 'target_failovers_total'
  | 'sni_route_exact_total'
  | 'sni_route_wildcard_total'
  | 'sni_route_fallback_total'
>;

export interface RuleStatsSnapshot extends ReportedCounters {
  rule_id: number;
  client_name: string;
  protocol: Protocol;
  updated_at: number;
  per_port: (PerPortStats & { updated_at: number })[];
  per_target: TargetStatsSnapshot[];
}

export interface RuleLabels {
  clientName: string;
  ownerUserId: string;
  protocol: Protocol;
  /** Failover counters are exported for multi-target rules only (reference §7.3). */
  multiTarget?: boolean;
  /** The rule has an sni_pattern (a fallback shows its route counter once it routed one). */
  sni?: boolean;
}

interface Entry {
  labels: RuleLabels;
  snapshot: RuleStatsSnapshot;
  /** False once the rule is removed: its counters stay exported, its gauges go. */
  live: boolean;
}

const LABELS = ['client', 'rule', 'owner'] as const;
type Label = (typeof LABELS)[number];

export type RuleStatsListener = (snapshot: RuleStatsSnapshot) => void;

export class RuleStatsTable {
  private readonly entries = new Map<number, Entry>();
  /** Live subscribers per rule (the SSE stream); each gets every recorded snapshot. */
  private readonly watchers = new Map<number, Set<RuleStatsListener>>();

  /** Calls `listener` with each new snapshot of `ruleId`; the returned function unsubscribes. */
  subscribe(ruleId: number, listener: RuleStatsListener): () => void {
    let set = this.watchers.get(ruleId);
    if (!set) {
      set = new Set();
      this.watchers.set(ruleId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.watchers.delete(ruleId);
    };
  }

  subscriberCount(ruleId: number): number {
    return this.watchers.get(ruleId)?.size ?? 0;
  }

  record(ruleId: number, labels: RuleLabels, stats: WireRuleStats, now: number): void {
    const snapshot: RuleStatsSnapshot = {
      rule_id: ruleId,
      client_name: labels.clientName,
      protocol: labels.protocol,
      bytes_in: stats.bytes_in,
      bytes_out: stats.bytes_out,
      active_connections: stats.active_connections,
      dns_failures: stats.dns_failures,
      datagrams_in: stats.datagrams_in,
      datagrams_out: stats.datagrams_out,
      active_flows: stats.active_flows,
      flows_dropped_overflow: stats.flows_dropped_overflow,
      target_failovers_total: stats.target_failovers_total,
      // Absent from older clients' reports: they route nothing by SNI.
      sni_route_exact_total: stats.sni_route_exact_total ?? 0,
      sni_route_wildcard_total: stats.sni_route_wildcard_total ?? 0,
      sni_route_fallback_total: stats.sni_route_fallback_total ?? 0,
      updated_at: now,
      per_port: stats.per_port.map((port) => ({ ...port, updated_at: now })),
      per_target: stats.per_target.map((target) => ({
        index: target.index,
        host: target.host,
        port: target.port,
        priority: target.priority,
        health: target.health === 1 ? 1 : 0,
        consecutive_failures: target.consecutive_failures,
        last_failure_at_unix_ms: target.last_failure_at_unix_ms,
        last_success_at_unix_ms: target.last_success_at_unix_ms,
        bytes_in: target.bytes_in,
        bytes_out: target.bytes_out,
        connections_accepted: target.connections_accepted,
      })),
    };
    this.entries.set(ruleId, { labels, snapshot, live: true });
    // A copy of the set: a listener may unsubscribe (a lagging stream) while we iterate.
    for (const listener of [...(this.watchers.get(ruleId) ?? [])]) listener(snapshot);
  }

  /** Per-target reports of the live rules that have any. */
  liveTargetHealth(): Map<number, readonly TargetStatsSnapshot[]> {
    const live = new Map<number, readonly TargetStatsSnapshot[]>();
    for (const [ruleId, entry] of this.entries) {
      if (entry.live && entry.snapshot.per_target.length > 0) {
        live.set(ruleId, entry.snapshot.per_target);
      }
    }
    return live;
  }

  get(ruleId: number): RuleStatsSnapshot | undefined {
    return this.entries.get(ruleId)?.snapshot;
  }

  /** The rule is gone: its gauges and DNS counter stop, its byte counters stay (reference §7.3). */
  retire(ruleId: number): void {
    const entry = this.entries.get(ruleId);
    if (entry) entry.live = false;
  }

  /** Registers the `portunus_rule_*` collectors; each scrape renders the table as it is then. */
  register(registry: Registry): void {
    const table = this.entries;
    const series = (
      kind: 'counter' | 'gauge',
      name: string,
      help: string,
      value: (snapshot: RuleStatsSnapshot) => number,
      options: { liveOnly?: boolean; protocol?: 'udp'; multiTargetOnly?: boolean } = {},
    ): void => {
      const collect = function (this: Counter<Label> | Gauge<Label>): void {
        this.reset();
        for (const [ruleId, entry] of table) {
          if (options.liveOnly && !entry.live) continue;
          if (options.protocol && entry.labels.protocol !== options.protocol) continue;
          if (options.multiTargetOnly && entry.labels.multiTarget !== true) continue;
          const labels = {
            client: entry.labels.clientName,
            rule: String(ruleId),
            owner: entry.labels.ownerUserId,
          };
          const amount = value(entry.snapshot);
          if (this instanceof Counter) this.inc(labels, amount);
          else this.set(labels, amount);
        }
      };
      const config = { name, help, labelNames: LABELS, registers: [registry], collect };
      if (kind === 'counter') new Counter(config);
      else new Gauge(config);
    };
    series(
      'counter',
      'portunus_rule_bytes_in_total',
      'Bytes from clients to targets.',
      (s) => s.bytes_in,
    );
    series(
      'counter',
      'portunus_rule_bytes_out_total',
      'Bytes from targets to clients.',
      (s) => s.bytes_out,
    );
    series(
      'gauge',
      'portunus_rule_active_connections',
      'Live proxied TCP connections.',
      (s) => s.active_connections,
      { liveOnly: true },
    );
    series(
      'counter',
      'portunus_rule_dns_failures_total',
      'Target name resolutions that failed.',
      (s) => s.dns_failures,
      { liveOnly: true },
    );
    series(
      'counter',
      'portunus_rule_target_failovers_total',
      'Healthy/failed transitions of the targets of a multi-target rule.',
      (s) => s.target_failovers_total,
      { liveOnly: true, multiTargetOnly: true },
    );
    series(
      'counter',
      'portunus_rule_udp_datagrams_in_total',
      'UDP datagrams from clients to targets.',
      (s) => s.datagrams_in,
      { protocol: 'udp' },
    );
    series(
      'counter',
      'portunus_rule_udp_datagrams_out_total',
      'UDP datagrams from targets to clients.',
      (s) => s.datagrams_out,
      { protocol: 'udp' },
    );
    series('gauge', 'portunus_rule_active_flows', 'Live UDP flows.', (s) => s.active_flows, {
      liveOnly: true,
      protocol: 'udp',
    });
    series(
      'counter',
      'portunus_rule_flows_dropped_overflow_total',
      'New UDP flows dropped at the per-rule flow cap.',
      (s) => s.flows_dropped_overflow,
      { protocol: 'udp' },
    );
    new Counter({
      name: 'portunus_tls_sni_route_total',
      help: 'Connections a shared SNI port routed to the rule, by match (exact|wildcard|fallback).',
      labelNames: [...LABELS, 'result'] as const,
      registers: [registry],
      collect(this: Counter<Label | 'result'>) {
        this.reset();
        for (const [ruleId, entry] of table) {
          const s = entry.snapshot;
          const routed = s.sni_route_exact_total + s.sni_route_wildcard_total;
          if (entry.labels.sni !== true && routed + s.sni_route_fallback_total === 0) continue;
          const labels = {
            client: entry.labels.clientName,
            rule: String(ruleId),
            owner: entry.labels.ownerUserId,
          };
          this.inc({ ...labels, result: 'exact' }, s.sni_route_exact_total);
          this.inc({ ...labels, result: 'wildcard' }, s.sni_route_wildcard_total);
          this.inc({ ...labels, result: 'fallback' }, s.sni_route_fallback_total);
        }
      },
    });
  }
}
