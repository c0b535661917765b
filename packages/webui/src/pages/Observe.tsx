/**
 * The superadmin's read-only views (reference §8 `/audit`, `/metrics`): the audit log in live
 * mode (newest 100, refreshed every 5 s) or frozen history pages over the cursor envelope, with
 * outcome and time filters, Older/Newer pages and an NDJSON download of the visible rows; and the
 * raw Prometheus text, refreshed every 5 s, with a line filter and "copy all".
 */
import type { AuditEntry, AuditEnvelope } from '@portunus/api';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { api } from '../http.js';
import { DataTable } from '../table.js';
import { CopyButton, ErrorText, Field, SelectField, StatusBadge } from '../ui.js';
import { POLL_MS } from './Clients.js';
import { CursorPager } from './CursorPager.js';
import { currentCursor, pageNumber, type CursorTrail } from './cursor-pages.js';

const LIVE_LIMIT = 100;

export function toNdjson(entries: readonly AuditEntry[]): string {
  return (
    entries.map((entry) => JSON.stringify(entry)).join('\n') + (entries.length > 0 ? '\n' : '')
  );
}

/** The row's time (reference §7.2 names it `timestamp`). */
export function auditTime(entry: AuditEntry): string {
  return entry.timestamp;
}

/** A `datetime-local` value (the browser's local time) as RFC 3339 UTC; blank stays blank. */
export function localToRfc3339(value: string): string | undefined {
  if (value === '') return undefined;
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
}

/** The `GET /v1/audit` query of one view: live = the legacy array, history = the envelope. */
export function auditQuery(view: {
  mode: 'live' | 'history';
  outcome: string;
  limit: number;
  since?: string | undefined;
  until?: string | undefined;
  cursor?: string | undefined;
}): string {
  const query = new URLSearchParams({ limit: String(view.limit) });
  if (view.outcome) query.set('outcome', view.outcome);
  if (view.mode === 'history') {
    if (view.since) query.set('since', view.since);
    // Any of since/until/cursor selects the envelope; an `until` far ahead hides no row.
    query.set('until', view.until ?? '9999-12-31T23:59:59Z');
    if (view.cursor) query.set('cursor', view.cursor);
  }
  return `/v1/audit?${query.toString()}`;
}

const PAGE_SIZES = [10, 25, 100, 500];

export function AuditPage() {
  const { t } = useTranslation();
  const [mode, setMode] = useState<'live' | 'history'>('live');
  const [outcome, setOutcome] = useState('');
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  const [limit, setLimit] = useState(LIVE_LIMIT);
  const [trail, setTrail] = useState<CursorTrail>([]);
  // Each switch to history freezes a new snapshot: its pages are fetched once and kept.
  const [frozen, setFrozen] = useState(0);
  const cursor = currentCursor(trail);
  const path =
    mode === 'live'
      ? auditQuery({ mode, outcome, limit: LIVE_LIMIT })
      : auditQuery({
          mode,
          outcome,
          limit,
          since: localToRfc3339(since),
          until: localToRfc3339(until),
          cursor,
        });
  const audit = useQuery({
    queryKey: ['audit', mode, frozen, path],
    queryFn: async (): Promise<AuditEnvelope> => {
      if (mode === 'history') return api<AuditEnvelope>('GET', path);
      const entries = await api<AuditEntry[]>('GET', path);
      return { entries, count: entries.length };
    },
    refetchInterval: mode === 'live' ? POLL_MS : false,
    staleTime: mode === 'history' ? Infinity : 0,
  });
  const entries = audit.data?.entries ?? [];
  const resetPages = () => {
    setTrail([]);
  };
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
            aria-pressed={mode === 'live'}
            onClick={() => {
              setMode('live');
              resetPages();
            }}
          >
            {t('audit.live')}
          </button>
          <button
            type="button"
            className={mode === 'history' ? 'primary' : ''}
            aria-pressed={mode === 'history'}
            onClick={() => {
              setMode('history');
              setFrozen(frozen + 1);
              resetPages();
            }}
          >
            {t('audit.history')}
          </button>
          <button type="button" onClick={download} disabled={entries.length === 0}>
            {t('audit.download')}
          </button>
        </div>
      </div>
      <div className="filters">
        <SelectField
          label={t('audit.outcome')}
          value={outcome}
          onChange={(value) => {
            setOutcome(value);
            resetPages();
          }}
          options={[
            { value: '', label: t('audit.all') },
            { value: 'allow', label: 'allow' },
            { value: 'deny', label: 'deny' },
          ]}
        />
        {mode === 'history' && (
          <>
            <Field
              label={t('auditPages.since')}
              type="datetime-local"
              value={since}
              onChange={(e) => {
                setSince(e.target.value);
                resetPages();
              }}
            />
            <Field
              label={t('auditPages.until')}
              type="datetime-local"
              value={until}
              onChange={(e) => {
                setUntil(e.target.value);
                resetPages();
              }}
            />
            <SelectField
              label={t('auditPages.pageSize')}
              value={String(limit)}
              onChange={(value) => {
                setLimit(Number(value));
                resetPages();
              }}
              options={PAGE_SIZES.map((size) => ({ value: String(size), label: String(size) }))}
            />
          </>
        )}
      </div>
      <p className="muted" data-testid="audit-mode">
        {mode === 'live'
          ? t('auditPages.liveNote', { count: LIVE_LIMIT })
          : t('auditPages.historyNote', { page: pageNumber(trail), count: entries.length })}
      </p>
      <ErrorText error={audit.error} />
      <DataTable
        columns={[
          t('audit.time'),
          t('audit.outcome'),
          t('audit.actor'),
          t('audit.role'),
          t('audit.method'),
          t('audit.path'),
          t('audit.reason'),
        ]}
      >
        {entries.map((entry, index) => (
          <tr key={`${auditTime(entry)}-${index}`} data-audit-path={entry.path}>
            <td>{auditTime(entry)}</td>
            <td>
              <StatusBadge
                kind={entry.outcome === 'allow' ? 'active' : 'failed'}
                label={entry.outcome}
              />
            </td>
            <td>{entry.actor}</td>
            <td>{entry.role ?? '—'}</td>
            <td>{entry.method}</td>
            <td className="wrap">{entry.path}</td>
            <td>{entry.reason ?? '—'}</td>
          </tr>
        ))}
      </DataTable>
      {mode === 'history' && (
        <CursorPager trail={trail} next={audit.data?.next_cursor} onChange={setTrail} />
      )}
    </section>
  );
}

/** The exposition lines whose text contains `filter` (case-insensitive); blank keeps all. */
export function filterMetrics(text: string, filter: string): string {
  const needle = filter.trim().toLowerCase();
  if (needle === '') return text;
  return text
    .split('\n')
    .filter((line) => line.toLowerCase().includes(needle))
    .join('\n');
}

export function MetricsPage() {
  const { t } = useTranslation();
  const [filter, setFilter] = useState('');
  const metrics = useQuery({
    queryKey: ['metrics'],
    queryFn: () => api<string>('GET', '/v1/metrics'),
    refetchInterval: POLL_MS,
  });
  const shown = metrics.data === undefined ? '' : filterMetrics(metrics.data, filter);
  return (
    <section>
      <div className="page-head">
        <h1>{t('metrics.title')}</h1>
        <div className="buttons">
          {metrics.dataUpdatedAt > 0 && (
            <span className="muted" data-testid="metrics-updated">
              {t('metricsPage.updatedAt', {
                time: new Date(metrics.dataUpdatedAt).toLocaleTimeString(),
              })}
            </span>
          )}
          {metrics.data && <CopyButton text={metrics.data} />}
        </div>
      </div>
      <div className="filters">
        <Field
          label={t('metricsPage.filter')}
          value={filter}
          placeholder="portunus_rule_bytes"
          onChange={(e) => {
            setFilter(e.target.value);
          }}
        />
      </div>
      <ErrorText error={metrics.error} />
      <pre className="command metrics" data-testid="metrics-text">
        {shown}
      </pre>
    </section>
  );
}
