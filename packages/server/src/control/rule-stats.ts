/**
 * The latest stats each client reported for its rules (reference §4.2 StatsReport, §2.5
 * RuleStatsSnapshot), kept in memory: `GET /v1/rules/{id}/stats` reads a snapshot, and the
 * Prometheus `portunus_rule_*` series (one per rule, labels client/rule/owner; per-port detail
 * never exported) are rendered from the same table at scrape time. Counters are the client's
 * cumulative values, so a client restart shows up as an ordinary counter reset. The counter and
 * per-target shapes are the data plane's own (`RuleStats`, `TargetStats` from the forwarder,
 * imported as types), so no layer re-spells them; per-target health (0 healthy, 1 failed, as in
 * the reference) also feeds the live `targets[].health` of the rule JSON. SNI route counters
 * (RuleStats 13-15) become `portunus_tls_sni_route_total{result}`. Rate-limit counters (per rule,
 * and per owner envelope as `rule=""` rows) and source-list refusals are kept the same way;
 * uncapped rules export no rate-limit series and rules without source lists no refusal series
 * (reference §7.3 cardinality rule). Depends on prom-client and the proto, forwarder and api
 * types only.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

import type { RateLimitStatsView } from '@portunus/api';
import type { PortCounter, Protocol, RuleStats, TargetStats } from '@portunus/forwarder';
import type {
  PerPortStats,
  WireOwnerRateLimitStats,
  WireRateLimitStats,
  WireRuleStats,
} from '@portunus/proto';

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
  /** Connections or new UDP flows the rule's source lists refused. */
  source_denied: number;
  /** Present once the client reported limiter counters for the rule. */
  rate_limit?: RateLimitStatsView;
}

/** The reasons of reference §7.3, as the wire enum names them. */
const REJECT_REASONS = {
  CONN_CONCURRENT: 'conn_concurrent',
  CONN_RATE: 'conn_rate',
  UDP_FLOW_RATE: 'udp_flow_rate',
  OWNER_CONCURRENT: 'owner_concurrent',
  OWNER_CONN_RATE: 'owner_conn_rate',
  OWNER_UDP_FLOW_RATE: 'owner_udp_flow_rate',
} as const;

/** Limiter counters as the API shows them: reasons by their metric label, seconds not µs. */
export function rateLimitStatsView(stats: WireRateLimitStats): RateLimitStatsView {
  const rejects: Record<string, number> = {};
  for (const entry of stats.reject_total) {
    const reason = REJECT_REASONS[entry.reason as keyof typeof REJECT_REASONS] as
      string | undefined;
    if (reason !== undefined) rejects[reason] = (rejects[reason] ?? 0) + entry.total;
  }
  return {
    reject_total: rejects,
    throttle_seconds_in: stats.throttle_micros_in / 1e6,
    throttle_seconds_out: stats.throttle_micros_out / 1e6,
    active_connections: stats.active_connections,
  };
}

interface OwnerEntry {
  clientName: string;
  ownerUserId: string;
  stats: RateLimitStatsView;
}

export interface RuleLabels {
  clientName: string;
  ownerUserId: string;
  protocol: Protocol;
  /** Failover counters are exported for multi-target rules only (reference §7.3). */
  multiTarget?: boolean;
  /** The rule has an sni_pattern (a fallback shows its route counter once it routed one). */
  sni?: boolean;
  /** Rate-limit series are exported for capped rules only (reference §7.3). */
  capped?: boolean;
  /** Source-refusal series are exported for rules with source lists (or refusals counted). */
  restricted?: boolean;
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
  /** Owner envelope counters by client id, then owner id (the latest report of each). */
  private readonly owners = new Map<string, Map<string, OwnerEntry>>();
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
      source_denied: stats.source_denied_total ?? 0,
      ...(stats.rate_limit ? { rate_limit: rateLimitStatsView(stats.rate_limit) } : {}),
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

  /** A client's owner envelope counters of one report round (StatsReport.owner_rate_limit_stats). */
  recordOwners(
    clientId: string,
    clientName: string,
    reports: readonly WireOwnerRateLimitStats[],
  ): void {
    if (reports.length === 0) return;
    let byOwner = this.owners.get(clientId);
    if (!byOwner) {
      byOwner = new Map();
      this.owners.set(clientId, byOwner);
    }
    for (const report of reports) {
      if (!report.stats || report.owner_id === '') continue;
      byOwner.set(report.owner_id, {
        clientName,
        ownerUserId: report.owner_id,
        stats: rateLimitStatsView(report.stats),
      });
    }
  }

  /** The envelope is gone: its aggregate rows stop. */
  retireOwner(clientId: string, ownerUserId: string): void {
    this.owners.get(clientId)?.delete(ownerUserId);
  }

  ownerStats(clientId: string, ownerUserId: string): RateLimitStatsView | undefined {
    return this.owners.get(clientId)?.get(ownerUserId)?.stats;
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
    this.registerPolicySeries(registry);
  }

  /** `portunus_rate_limit_*` (rule rows and owner `rule=""` rows) and the source refusals. */
  private registerPolicySeries(registry: Registry): void {
    const table = this.entries;
    const owners = this.owners;
    const ruleRows = function* (): Generator<[Record<Label, string>, RateLimitStatsView]> {
      for (const [ruleId, entry] of table) {
        const stats = entry.snapshot.rate_limit;
        if (!entry.live || entry.labels.capped !== true || !stats) continue;
        const labels = {
          client: entry.labels.clientName,
          rule: String(ruleId),
          owner: entry.labels.ownerUserId,
        };
        yield [labels, stats];
      }
    };
    const ownerRows = function* (): Generator<[Record<Label, string>, RateLimitStatsView]> {
      for (const byOwner of owners.values()) {
        for (const entry of byOwner.values()) {
          yield [{ client: entry.clientName, rule: '', owner: entry.ownerUserId }, entry.stats];
        }
      }
    };
    new Counter({
      name: 'portunus_rate_limit_reject_total',
      help: 'Connections or new UDP flows refused by a rate limit, by reason (owner rows: rule="").',
      labelNames: [...LABELS, 'reason'],
      registers: [registry],
      collect(this: Counter<Label | 'reason'>) {
        this.reset();
        for (const [labels, stats] of [...ruleRows(), ...ownerRows()]) {
          for (const [reason, total] of Object.entries(stats.reject_total)) {
            this.inc({ ...labels, reason }, total);
          }
        }
      },
    });
    new Counter({
      name: 'portunus_rate_limit_throttle_seconds_total',
      help: 'Time reads were parked by a bandwidth cap, by direction (in: client to target).',
      labelNames: [...LABELS, 'direction'],
      registers: [registry],
      collect(this: Counter<Label | 'direction'>) {
        this.reset();
        for (const [labels, stats] of ruleRows()) {
          this.inc({ ...labels, direction: 'in' }, stats.throttle_seconds_in);
          this.inc({ ...labels, direction: 'out' }, stats.throttle_seconds_out);
        }
      },
    });
    new Gauge({
      name: 'portunus_rate_limit_active_connections',
      help: 'Connections or UDP flows a rate limiter holds (owner rows: rule="").',
      labelNames: LABELS,
      registers: [registry],
      collect(this: Gauge<Label>) {
        this.reset();
        for (const [labels, stats] of [...ruleRows(), ...ownerRows()]) {
          this.set(labels, stats.active_connections);
        }
      },
    });
    new Counter({
      name: 'portunus_rule_source_denied_total',
      help: "Connections or new UDP flows refused by a rule's source allow/deny lists.",
      labelNames: LABELS,
      registers: [registry],
      collect(this: Counter<Label>) {
        this.reset();
        for (const [ruleId, entry] of table) {
          const denied = entry.snapshot.source_denied;
          if (entry.labels.restricted !== true && denied === 0) continue;
          this.inc(
            {
              client: entry.labels.clientName,
              rule: String(ruleId),
              owner: entry.labels.ownerUserId,
            },
            denied,
          );
        }
      },
    });
  }
}
