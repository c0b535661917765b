/**
 * What the dashboard's alert banner says, derived only from answers the dashboard already holds
 * (reference §8): offline clients from `GET /v1/clients` (connected = false, not revoked), targets
 * down from `GET /v1/rules` (a target whose passive or active health says unhealthy), and quotas
 * from `GET /v1/users/{id}/quotas` or `GET /v1/clients/{id}/quotas` (QuotaView: `exhausted`, or
 * usage at or past the near-limit fraction). Pure functions, no React and no fetching.
 */
import type { ClientView, QuotaView, RuleView } from '@portunus/api';

/**
 * Usage from which a quota counts as "near its limit": the reference's dashboard alert level and
 * the first default `quota.threshold` alert (reference §8; DESIGN.md §8.9).
 */
export const NEAR_LIMIT_FRACTION = 0.8;

/** Quotas move with the edge's usage reports; every 30 s keeps a bar current without a storm. */
export const QUOTA_POLL_MS = 30_000;

export function quotaFraction(quota: QuotaView): number {
  if (quota.monthly_bytes === 0) return quota.current_period_bytes_used > 0 ? 1 : 0;
  return quota.current_period_bytes_used / quota.monthly_bytes;
}

export function quotaLevel(quota: QuotaView): 'exhausted' | 'near' | 'ok' {
  if (quota.exhausted || (quota.monthly_bytes > 0 && quotaFraction(quota) >= 1)) return 'exhausted';
  return quotaFraction(quota) >= NEAR_LIMIT_FRACTION ? 'near' : 'ok';
}

export interface DashboardAlerts {
  offlineClients: string[];
  targetsDown: { ruleId: number; target: string }[];
  quotasExhausted: QuotaView[];
  quotasNear: QuotaView[];
}

export function deriveAlerts(
  clients: readonly ClientView[],
  rules: readonly RuleView[],
  quotas: readonly QuotaView[],
): DashboardAlerts {
  return {
    offlineClients: clients
      .filter((client) => client.revoked_at === null && !client.connected)
      .map((client) => client.client_name),
    targetsDown: rules
      .filter((rule) => rule.state.kind !== 'removed')
      .flatMap((rule) =>
        rule.targets
          .filter((target) => target.health !== null && !target.health.healthy)
          .map((target) => ({ ruleId: rule.id, target: `${target.host}:${target.port}` })),
      ),
    quotasExhausted: quotas.filter((quota) => quotaLevel(quota) === 'exhausted'),
    quotasNear: quotas.filter((quota) => quotaLevel(quota) === 'near'),
  };
}

export function hasAlerts(alerts: DashboardAlerts): boolean {
  return (
    alerts.offlineClients.length +
      alerts.targetsDown.length +
      alerts.quotasExhausted.length +
      alerts.quotasNear.length >
    0
  );
}

/**
 * Bytes per rule from the Prometheus text of `GET /v1/metrics` (superadmin): the sum of
 * `portunus_rule_bytes_in_total` and `portunus_rule_bytes_out_total` by their `rule` label. One
 * request ranks every rule, where per-rule stats calls would be a thousand.
 */
export function ruleBytesFromMetrics(text: string): Map<number, number> {
  const bytes = new Map<number, number>();
  const line = /^portunus_rule_bytes_(?:in|out)_total\{([^}]*)\}\s+(\S+)/gm;
  for (const match of text.matchAll(line)) {
    const rule = /(?:^|,)rule="(\d+)"/.exec(match[1] ?? '')?.[1];
    const value = Number(match[2]);
    if (rule === undefined || !Number.isFinite(value)) continue;
    const id = Number(rule);
    bytes.set(id, (bytes.get(id) ?? 0) + value);
  }
  return bytes;
}
