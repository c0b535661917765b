/**
 * One rule's page (reference §8 `/rules/:ruleId`): live counters over the SSE stream
 * `GET /v1/rules/{id}/stats/stream`, falling back to polling `…/stats` every 5 s after repeated
 * reconnect failures, and its targets. The mode in use is shown, so an operator knows whether the
 * numbers are live.
 */
import type { RuleStatsSnapshot, RuleView } from '@portunus/api';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';

import { api } from '../http.js';
import { DataTable } from '../table.js';
import { ErrorText, Kpi, StatusBadge, formatBytes } from '../ui.js';
import { POLL_MS } from './Clients.js';
import { listenText, targetText } from './Rules.js';

/** EventSource errors tolerated before the page switches to polling. */
const MAX_STREAM_FAILURES = 3;

function useRuleStats(ruleId: string) {
  const [mode, setMode] = useState<'streaming' | 'polling'>('streaming');
  const [snapshot, setSnapshot] = useState<RuleStatsSnapshot | null>(null);
  const [failures, setFailures] = useState(0);
  useEffect(() => {
    if (mode !== 'streaming' || typeof EventSource === 'undefined') {
      setMode('polling');
      return;
    }
    const source = new EventSource(`/v1/rules/${ruleId}/stats/stream`);
    let failed = 0;
    source.addEventListener('stats', (event) => {
      failed = 0;
      setSnapshot(JSON.parse((event as MessageEvent<string>).data) as RuleStatsSnapshot);
    });
    source.onerror = () => {
      failed++;
      setFailures(failed);
      if (failed >= MAX_STREAM_FAILURES) {
        source.close();
        setMode('polling');
      }
    };
    return () => {
      source.close();
    };
  }, [ruleId, mode]);
  const polled = useQuery({
    queryKey: ['rule-stats', ruleId],
    queryFn: () => api<RuleStatsSnapshot>('GET', `/v1/rules/${ruleId}/stats`),
    enabled: mode === 'polling',
    refetchInterval: POLL_MS,
    retry: false,
  });
  return { mode, failures, snapshot: mode === 'polling' ? (polled.data ?? null) : snapshot };
}

export function RulePage() {
  const { t } = useTranslation();
  const { ruleId = '' } = useParams();
  const rule = useQuery({
    queryKey: ['rule', ruleId],
    queryFn: () => api<RuleView>('GET', `/v1/rules/${ruleId}`),
  });
  const { mode, failures, snapshot } = useRuleStats(ruleId);
  const counters: [string, string | number][] = snapshot
    ? [
        ['rule.bytesIn', formatBytes(snapshot.bytes_in)],
        ['rule.bytesOut', formatBytes(snapshot.bytes_out)],
        ['rule.active', snapshot.active_connections],
        ['rule.dnsFailures', snapshot.dns_failures],
        ['rule.datagramsIn', snapshot.datagrams_in],
        ['rule.datagramsOut', snapshot.datagrams_out],
        ['rule.failovers', snapshot.target_failovers_total],
      ]
    : [];
  return (
    <section>
      <div className="page-head">
        <h1>{t('rule.title', { id: ruleId })}</h1>
        <span className="muted" data-testid="stats-mode">
          {t(`rule.${mode}`)}
          {failures > 0 ? ` (${failures})` : ''}
        </span>
      </div>
      <ErrorText error={rule.error} />
      {rule.data && (
        <p>
          {rule.data.client_name} · {rule.data.protocol} · :{listenText(rule.data)} →{' '}
          {targetText(rule.data)}{' '}
          <StatusBadge kind={rule.data.state.kind} label={rule.data.state.kind} />
        </p>
      )}
      {snapshot ? (
        <div className="kpis">
          {counters.map(([key, value]) => (
            <Kpi key={key} testId={key} label={t(key)} value={value} />
          ))}
          <Kpi
            label={t('rule.updated')}
            value={new Date(snapshot.updated_at).toLocaleTimeString()}
          />
        </div>
      ) : (
        <p className="muted">{t('rule.noStats')}</p>
      )}
      {rule.data && (
        <>
          <h2>{t('rule.targets')}</h2>
          <DataTable
            columns={[
              t('rules.targetHost'),
              t('rules.targetPort'),
              t('rules.priority'),
              t('rules.proxyProtocol'),
              t('rule.health'),
            ]}
          >
            {rule.data.targets.map((target) => (
              <tr key={`${target.host}:${target.port}`}>
                <td>{target.host}</td>
                <td>{target.port}</td>
                <td>{target.priority}</td>
                <td>{target.proxy_protocol ?? '—'}</td>
                <td>{target.health === null ? '—' : target.health.healthy ? '✓' : '✗'}</td>
              </tr>
            ))}
          </DataTable>
        </>
      )}
    </section>
  );
}
