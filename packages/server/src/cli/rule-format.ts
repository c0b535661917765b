/**
 * How a rule reads in a `list-rules` row — its state, port range, targets, SNI/PROXY, caps and
 * source lists — from the RuleView @portunus/api defines, and the `rule-stats` lines from
 * RuleStatsSnapshot. `capsText` is also the CAPS column of `owner-cap`. Formatting only: no HTTP,
 * no store.
 */
import {
  RATE_LIMIT_FIELDS,
  type RateLimit,
  type RuleState,
  type RuleStatsSnapshot,
  type RuleView,
} from '@portunus/api';

import { text } from './output.js';

/** `pending`, `active`, `removed` or `failed:<reason>` (reference §1.2 list-rules). */
export function stateText(state: RuleState): string {
  return state.kind === 'failed' ? `failed:${text(state.reason)}` : state.kind;
}

export function portRange(start: number, end: number | undefined): string {
  return end === undefined || end === start ? text(start) : `${text(start)}-${text(end)}`;
}

export function ruleTargetText(rule: RuleView): string {
  if (rule.targets.length > 1) {
    return rule.targets.map((target) => `${target.host}:${text(target.port)}`).join(',');
  }
  return `${rule.target_host}:${portRange(rule.target_port, rule.target_port_end)}`;
}

/** The SNI/PROXY column: the pattern (or -), then the targets' PROXY versions (or -). */
export function sniProxyText(rule: RuleView): string {
  const versions = [...new Set(rule.targets.flatMap((target) => target.proxy_protocol ?? []))];
  return `${rule.sni_pattern ?? '-'}/${versions.length > 0 ? versions.join(',') : '-'}`;
}

/** A rule's caps for the CAPS column: `owner-cap get` labels, `-` when uncapped. */
export function capsText(caps: RateLimit | null | undefined): string {
  if (caps === undefined || caps === null) return '-';
  const parts = RATE_LIMIT_FIELDS.flatMap((spec) => {
    const value = caps[spec.name];
    return value === undefined || value === null ? [] : [`${spec.label}=${text(value)}`];
  });
  return parts.length > 0 ? parts.join(',') : '-';
}

/** Both source lists for the SOURCES column; long lists show their first entries and a count. */
export function sourcesText(rule: RuleView): string {
  const shown = (label: string, entries: readonly string[]): string[] => {
    if (entries.length === 0) return [];
    const head = entries.slice(0, 2).join(',');
    return [`${label}:${head}${entries.length > 2 ? `(+${entries.length - 2})` : ''}`];
  };
  const parts = [...shown('allow', rule.allowed_sources), ...shown('deny', rule.denied_sources)];
  return parts.length > 0 ? parts.join(' ') : '-';
}

export const RULE_COLUMNS = [
  'ID',
  'CLIENT',
  'PORT',
  'TARGET',
  'SNI/PROXY',
  'CAPS',
  'SOURCES',
  'STATE',
];

export function ruleRow(rule: RuleView): string[] {
  return [
    text(rule.id),
    rule.client_name,
    portRange(rule.listen_port, rule.listen_port_end),
    ruleTargetText(rule),
    sniProxyText(rule),
    capsText(rule.rate_limit),
    sourcesText(rule),
    stateText(rule.state),
  ];
}

/** The one `name=value …` line of `rule-stats`; UDP rules add their flow and datagram counters. */
export function statsLine(stats: RuleStatsSnapshot): string {
  const fields: [string, unknown][] = [
    ['rule_id', stats.rule_id],
    ['client', stats.client_name],
    ['protocol', stats.protocol],
    ['bytes_in', stats.bytes_in],
    ['bytes_out', stats.bytes_out],
    ['active', stats.active_connections],
    ['dns_failures', stats.dns_failures],
    ['target_failovers_total', stats.target_failovers_total],
  ];
  if (stats.protocol === 'udp') {
    fields.push(
      ['active_flows', stats.active_flows],
      ['datagrams_in', stats.datagrams_in],
      ['datagrams_out', stats.datagrams_out],
      ['flows_dropped_overflow', stats.flows_dropped_overflow],
    );
  }
  fields.push(['updated_at', stats.updated_at]);
  return fields.map(([name, value]) => `${name}=${text(value)}`).join(' ');
}

export const PORT_STATS_COLUMNS = [
  'LISTEN_PORT',
  'BYTES_IN',
  'BYTES_OUT',
  'ACTIVE',
  'DATAGRAMS_IN',
  'DATAGRAMS_OUT',
];

export function portStatsRows(stats: RuleStatsSnapshot): string[][] {
  return (stats.per_port ?? []).map((port) => [
    text(port.listen_port),
    text(port.bytes_in),
    text(port.bytes_out),
    text(port.active_connections),
    text(port.datagrams_in),
    text(port.datagrams_out),
  ]);
}

export const TARGET_STATS_COLUMNS = [
  'INDEX',
  'TARGET',
  'PRIORITY',
  'HEALTH',
  'FAILURES',
  'BYTES_IN',
  'BYTES_OUT',
  'CONNECTIONS',
];

export function targetStatsRows(stats: RuleStatsSnapshot): string[][] {
  return (stats.per_target ?? []).map((target) => [
    text(target.index),
    `${target.host}:${text(target.port)}`,
    text(target.priority),
    target.health === 0 ? 'healthy' : 'failed',
    text(target.consecutive_failures),
    text(target.bytes_in),
    text(target.bytes_out),
    text(target.connections_accepted),
  ]);
}
