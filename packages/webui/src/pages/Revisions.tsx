/**
 * Rule-set revisions (superadmin; every change to any owner's rules is one revision): the list,
 * newest first with Older/Newer pages, and for a chosen revision the rendered diff — what a
 * restore would remove, recreate or revert, field by field, "now" against "after restore" — and
 * the restore itself, whose answer (steps applied and steps that failed with their codes) is
 * shown as the server gave it. Diff rows come from revision-diff.ts; this file only renders.
 */
import type { RestoreResult, RuleRevisionList } from '@portunus/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Fragment, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';

import { api } from '../http.js';
import { DataTable } from '../table.js';
import { ErrorText, StatusBadge } from '../ui.js';
import { CursorPager } from './CursorPager.js';
import { currentCursor, type CursorTrail } from './cursor-pages.js';
import { diffEntries, type DiffEntry, type RevisionDiff } from './revision-diff.js';

const PAGE_SIZE = 20;

export function RevisionsPage() {
  const { t } = useTranslation();
  const [trail, setTrail] = useState<CursorTrail>([]);
  const [chosen, setChosen] = useState<number | null>(null);
  const cursor = currentCursor(trail);
  const list = useQuery({
    queryKey: ['revisions', cursor],
    queryFn: () =>
      api<RuleRevisionList>(
        'GET',
        `/v1/rule-revisions?limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      ),
  });
  const entries = list.data?.revisions ?? [];
  return (
    <section>
      <div className="page-head">
        <h1>{t('revisions.title')}</h1>
        <Link to="/rules">{t('revisions.back')}</Link>
      </div>
      <ErrorText error={list.error} />
      <DataTable
        columns={[
          '#',
          t('revisions.at'),
          t('revisions.actor'),
          t('revisions.action'),
          t('revisions.summary'),
          '',
        ]}
        empty={{ when: entries.length === 0, isLoading: list.isLoading, text: t('revisions.none') }}
      >
        {entries.map((entry) => (
          <tr
            key={entry.revision}
            data-revision={entry.revision}
            className={entry.revision === chosen ? 'selected' : undefined}
          >
            <td>{entry.revision}</td>
            <td>{new Date(entry.at).toLocaleString()}</td>
            <td>{entry.actor}</td>
            <td>{entry.action}</td>
            <td className="wrap">{entry.summary}</td>
            <td>
              <button
                type="button"
                onClick={() => {
                  setChosen(entry.revision);
                }}
              >
                {t('revisions.showDiff')}
              </button>
            </td>
          </tr>
        ))}
      </DataTable>
      <CursorPager trail={trail} next={list.data?.next_cursor} onChange={setTrail} />
      {chosen !== null && (
        <DiffPanel
          key={chosen}
          revision={chosen}
          onRestored={() => {
            setTrail([]);
          }}
        />
      )}
    </section>
  );
}

function DiffPanel({ revision, onRestored }: { revision: number; onRestored: () => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const diff = useQuery({
    queryKey: ['revision-diff', revision],
    queryFn: () => api<RevisionDiff>('GET', `/v1/rule-revisions/${revision}/diff`),
  });
  const restore = useMutation({
    mutationFn: () => api<RestoreResult>('POST', `/v1/rule-revisions/${revision}/restore`, {}),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ['revisions'] });
      void queryClient.invalidateQueries({ queryKey: ['revision-diff'] });
      void queryClient.invalidateQueries({ queryKey: ['rules'] });
      onRestored();
    },
  });
  const entries = diff.data ? diffEntries(diff.data) : [];
  return (
    <div className="card" data-testid="revision-diff">
      <div className="page-head">
        <h2>{t('revisions.diffTitle', { revision, head: diff.data?.head ?? '…' })}</h2>
        <button
          type="button"
          className="primary"
          disabled={restore.isPending || entries.length === 0}
          onClick={() => {
            if (window.confirm(t('revisions.confirmRestore', { revision }))) restore.mutate();
          }}
        >
          {t('revisions.restore', { revision })}
        </button>
      </div>
      <ErrorText error={diff.error ?? restore.error} />
      {diff.data && entries.length === 0 && <p className="muted">{t('revisions.same')}</p>}
      {entries.map((entry) => (
        <DiffBlock key={`${entry.change}-${entry.ruleId}`} entry={entry} />
      ))}
      {restore.data && <RestoreReport answer={restore.data} />}
    </div>
  );
}

export function DiffBlock({ entry }: { entry: DiffEntry }) {
  const { t } = useTranslation();
  const kind = { remove: 'failed', recreate: 'active', revert: 'pending' }[entry.change];
  return (
    <div className="diff" data-diff-rule={entry.ruleId}>
      <h3>
        <StatusBadge kind={kind} label={t(`revisions.change.${entry.change}`)} /> {entry.title}
      </h3>
      <DataTable columns={[t('revisions.field'), t('revisions.now'), t('revisions.afterRestore')]}>
        {entry.rows.map((row) => {
          // A side is marked only where it holds a value: "—" is nothing removed or added.
          const removed = row.differs && row.now !== '—';
          const inserted = row.differs && row.restored !== '—';
          return (
            <tr key={row.field} className={row.differs ? 'differs' : undefined}>
              <td>
                {row.field.split('_').map((part, index) => (
                  // Long API names break after an underscore at phone width, not mid-word.
                  <Fragment key={index}>
                    {index > 0 && (
                      <>
                        _<wbr />
                      </>
                    )}
                    {part}
                  </Fragment>
                ))}
              </td>
              <td className={removed ? 'del' : undefined}>
                {removed && <span aria-hidden="true">− </span>}
                {row.now}
              </td>
              <td className={inserted ? 'ins' : undefined}>
                {inserted && <span aria-hidden="true">+ </span>}
                {row.restored}
              </td>
            </tr>
          );
        })}
      </DataTable>
    </div>
  );
}

function RestoreReport({ answer }: { answer: RestoreResult }) {
  const { t } = useTranslation();
  return (
    <div className={answer.failed.length > 0 ? 'alert' : 'notice'} role="status">
      <p>
        {answer.revision === null
          ? t('revisions.restoredNothing')
          : t('revisions.restored', {
              revision: answer.restored_to,
              created: answer.revision,
              removed: answer.removed.length,
              pushed: answer.pushed.length,
              edited: answer.edited.length,
            })}
      </p>
      {answer.failed.length > 0 && (
        <ul>
          {answer.failed.map((step) => (
            <li key={`${step.action}-${step.rule_id}`}>
              #{step.rule_id} {step.action}: {step.code} — {step.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
