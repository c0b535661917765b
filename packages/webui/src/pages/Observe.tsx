/**
 * The superadmin's read-only views (reference §8 `/audit`, `/metrics`): the audit log in live
 * mode (newest 100, refreshed every 5 s) or frozen history pages over the cursor envelope, with
 * an outcome filter and an NDJSON download of the visible rows; and the raw Prometheus text.
 */
import type { AuditEntry, AuditEnvelope } from '@portunus/api';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { api } from '../http.js';
import { CopyButton, ErrorText, SelectField } from '../ui.js';
import { POLL_MS } from './Clients.js';

const LIVE_LIMIT = 100;

export function toNdjson(entries: readonly AuditEntry[]): string {
  return (
    entries.map((entry) => JSON.stringify(entry)).join('\n') + (entries.length > 0 ? '\n' : '')
  );
}

export function AuditPage() {
  const { t } = useTranslation();
  const [mode, setMode] = useState<'live' | 'history'>('live');
  const [outcome, setOutcome] = useState('');
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const filter = outcome ? `&outcome=${outcome}` : '';
  const audit = useQuery({
    queryKey: ['audit', mode, outcome, cursor],
    queryFn: async (): Promise<AuditEnvelope> => {
      if (mode === 'live') {
        const entries = await api<AuditEntry[]>('GET', `/v1/audit?limit=${LIVE_LIMIT}${filter}`);
        return { entries, count: entries.length };
      }
      // History pages use the envelope; `until` far ahead selects it without hiding rows.
      const page = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '&until=9999-12-31T23:59:59Z';
      return api<AuditEnvelope>('GET', `/v1/audit?limit=${LIVE_LIMIT}${filter}${page}`);
    },
    refetchInterval: mode === 'live' ? POLL_MS : false,
  });
  const entries = audit.data?.entries ?? [];
  const download = () => {
    const blob = new Blob([toNdjson(entries)], { type: 'application/x-ndjson' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `audit-${new Date().toISOString().slice(0, 10)}.ndjson`;
    link.click();
    URL.revokeObjectURL(link.href);
  };
  return (
    <section>
      <div className="page-head">
        <h1>{t('audit.title')}</h1>
        <div className="buttons">
          <button
            type="button"
            className={mode === 'live' ? 'primary' : ''}
            onClick={() => {
              setMode('live');
              setCursor(undefined);
            }}
          >
            {t('audit.live')}
          </button>
          <button
            type="button"
            className={mode === 'history' ? 'primary' : ''}
            onClick={() => {
              setMode('history');
            }}
          >
            {t('audit.history')}
          </button>
          <button type="button" onClick={download}>
            {t('audit.download')}
          </button>
        </div>
      </div>
      <SelectField
        label={t('audit.outcome')}
        value={outcome}
        onChange={(value) => {
          setOutcome(value);
          setCursor(undefined);
        }}
        options={[
          { value: '', label: t('audit.all') },
          { value: 'allow', label: 'allow' },
          { value: 'deny', label: 'deny' },
        ]}
      />
      <ErrorText error={audit.error} />
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th>{t('audit.time')}</th>
              <th>{t('audit.outcome')}</th>
              <th>{t('audit.actor')}</th>
              <th>{t('audit.role')}</th>
              <th>{t('audit.method')}</th>
              <th>{t('audit.path')}</th>
              <th>{t('audit.reason')}</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((entry, index) => (
              <tr key={`${entry.ts}-${index}`} data-audit-path={entry.path}>
                <td>{entry.ts}</td>
                <td>{entry.outcome}</td>
                <td>{entry.actor}</td>
                <td>{entry.role ?? '—'}</td>
                <td>{entry.method}</td>
                <td>{entry.path}</td>
                <td>{entry.reason ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {mode === 'history' && audit.data?.next_cursor && (
        <button
          type="button"
          onClick={() => {
            setCursor(audit.data.next_cursor);
          }}
        >
          {t('audit.older')}
        </button>
      )}
    </section>
  );
}

export function MetricsPage() {
  const { t } = useTranslation();
  const metrics = useQuery({
    queryKey: ['metrics'],
    queryFn: () => api<string>('GET', '/v1/metrics'),
    refetchInterval: POLL_MS,
  });
  return (
    <section>
      <div className="page-head">
        <h1>{t('metrics.title')}</h1>
        {metrics.data && <CopyButton text={metrics.data} />}
      </div>
      <ErrorText error={metrics.error} />
      <pre className="command metrics">{metrics.data}</pre>
    </section>
  );
}
