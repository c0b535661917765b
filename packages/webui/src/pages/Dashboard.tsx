/**
 * The dashboard (reference §8 `/`), superadmin and user variants: an alert banner, KPIs (clients
 * connected/total, rules active/total, bytes today, quotas near or at their limit), the
 * throughput chart (global traffic for a superadmin, the user's own otherwise) and the top rules
 * by bytes. Clients and rules poll every 5 s as their pages do (reference §8); quotas every 30 s
 * (they move with the edge's usage reports, not faster); traffic once a minute (traffic.ts).
 * Every figure comes from an API answer; nothing is estimated.
 */
import type { ClientView, Me, QuotaView, RuleStatsSnapshot, RuleView } from '@portunus/api';
import { useQueries, useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';

import { ApiError, api } from '../http.js';
import { DataTable, LabelledCells } from '../table.js';
import { Kpi, StatusBadge, formatBytes } from '../ui.js';
import { AlertsBanner } from './AlertsBanner.js';
import { QUOTA_POLL_MS, deriveAlerts, ruleBytesFromMetrics } from './alerts.js';
import { POLL_MS, useClients } from './Clients.js';
import { listenText, targetText, useRules } from './Rules.js';
import { TrafficPanel } from './TrafficPanel.js';
import { useBytesToday } from './traffic.js';

/** Rows shown under "Top rules": enough to scan, bounded so 1,000 rules paint fast. */
const TOP_RULES = 10;
/** A user's rules whose stats are read one by one (users have no /v1/metrics). */
const USER_STATS_RULES = 25;

/** Every quota the viewer may see: a superadmin's per client, a user's own. */
function useVisibleQuotas(me: Me, clients: readonly ClientView[]): QuotaView[] {
  const isSuperadmin = me.role === 'superadmin';
  const own = useQuery({
    queryKey: ['quotas', me.user_id],
    queryFn: () => api<QuotaView[]>('GET', `/v1/users/${encodeURIComponent(me.user_id)}/quotas`),
    refetchInterval: QUOTA_POLL_MS,
    enabled: !isSuperadmin,
  });
  const perClient = useQueries({
    queries: (isSuperadmin ? clients.filter((client) => client.revoked_at === null) : []).map(
      (client) => ({
        queryKey: ['client-quotas', client.client_id],
        queryFn: () => api<QuotaView[]>('GET', `/v1/clients/${client.client_id}/quotas`),
        refetchInterval: QUOTA_POLL_MS,
      }),
    ),
  });
  return isSuperadmin ? perClient.flatMap((query) => query.data ?? []) : (own.data ?? []);
}

/** Bytes (in + out) per rule id: from /v1/metrics for a superadmin, rule stats for a user. */
function useRuleBytes(isSuperadmin: boolean, rules: readonly RuleView[]): Map<number, number> {
  const metrics = useQuery({
    queryKey: ['metrics-text'],
    queryFn: () => api<string>('GET', '/v1/metrics'),
    refetchInterval: POLL_MS,
    enabled: isSuperadmin,
  });
  const stats = useQueries({
    queries: (isSuperadmin ? [] : rules.slice(0, USER_STATS_RULES)).map((rule) => ({
      queryKey: ['rule-stats', rule.id],
      // 404 until the client's first report: that rule has moved no bytes yet.
      queryFn: () =>
        api<RuleStatsSnapshot>('GET', `/v1/rules/${rule.id}/stats`).catch((error: unknown) => {
          if (error instanceof ApiError && error.status === 404) return null;
          throw error;
        }),
      refetchInterval: POLL_MS,
    })),
  });
  if (isSuperadmin) return ruleBytesFromMetrics(metrics.data ?? '');
  const bytes = new Map<number, number>();
  for (const query of stats) {
    if (query.data) bytes.set(query.data.rule_id, query.data.bytes_in + query.data.bytes_out);
  }
  return bytes;
}

export function DashboardPage({ me }: { me: Me }) {
  const { t } = useTranslation();
  const isSuperadmin = me.role === 'superadmin';
  const clients = useClients().data ?? [];
  const rules = useRules().data ?? [];
  const trafficPath = isSuperadmin
    ? '/v1/traffic/global'
    : `/v1/users/${encodeURIComponent(me.user_id)}/traffic`;
  const today = useBytesToday(trafficPath);
  const quotas = useVisibleQuotas(me, clients);
  const ruleBytes = useRuleBytes(isSuperadmin, rules);

  const live = clients.filter((client) => client.revoked_at === null);
  // A user's clients are the ones their own rules use (the server already filtered the rules).
  const mine = isSuperadmin
    ? live
    : live.filter((client) => rules.some((rule) => rule.client_id === client.client_id));
  const connected = mine.filter((client) => client.connected).length;
  const active = rules.filter((rule) => rule.state.kind === 'active').length;
  const alerts = deriveAlerts(mine, rules, quotas);
  const top = [...rules]
    .sort((a, b) => (ruleBytes.get(b.id) ?? 0) - (ruleBytes.get(a.id) ?? 0) || a.id - b.id)
    .slice(0, TOP_RULES);
  const topColumns = [
    t('screens.rule'),
    t('rules.client'),
    t('screens.route'),
    t('screens.bytes'),
    t('screens.state'),
  ];
  return (
    <section>
      <div className="page-head">
        <h1>
          {isSuperadmin ? t('dashboard.title') : t('dashboard.greeting', { name: me.display_name })}
        </h1>
      </div>
      <AlertsBanner alerts={alerts} />
      <div className="kpis">
        <Kpi
          testId="kpi-clients"
          label={isSuperadmin ? t('dashboard.clients') : t('dashboard.myClients')}
          value={`${connected}/${mine.length}`}
        />
        <Kpi
          testId="kpi-rules"
          label={isSuperadmin ? t('dashboard.rules') : t('dashboard.myRules')}
          value={`${active}/${rules.length}`}
        />
        <Kpi
          testId="kpi-today"
          label={t('screens.bytesToday')}
          value={today.data === undefined ? '–' : formatBytes(today.data)}
        />
        <Kpi
          testId="kpi-quotas"
          label={t('screens.quotasNearAt')}
          value={`${alerts.quotasNear.length}/${alerts.quotasExhausted.length}`}
          note={t('screens.quotasOf', { count: quotas.length })}
        />
      </div>
      <TrafficPanel
        path={trafficPath}
        title={isSuperadmin ? t('screens.throughput') : t('screens.myThroughput')}
      />
      <h2>{t('screens.topRules')}</h2>
      <DataTable
        className="stack"
        testId="top-rules"
        columns={topColumns}
        empty={{ when: rules.length === 0, text: t('dashboard.noRules') }}
      >
        {top.map((rule) => (
          <tr key={rule.id} data-top-rule={rule.id}>
            <LabelledCells
              columns={topColumns}
              cells={[
                <Link to={`/rules/${rule.id}`}>#{rule.id}</Link>,
                rule.client_name,
                `:${listenText(rule)} → ${targetText(rule)}`,
                formatBytes(ruleBytes.get(rule.id) ?? 0),
                <StatusBadge kind={rule.state.kind} label={rule.state.kind} />,
              ]}
            />
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
