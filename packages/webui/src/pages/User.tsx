/**
 * One user's page (reference §8 `/users/:userId`, superadmin): header actions (reset password,
 * delete with a preview of the cascade), an Access tab with the grants (add, edit, revoke) and
 * the quotas (set, edit, clear usage, remove, usage bar from QuotaView), and a Traffic tab with
 * the chart of the user's own traffic. The cascade preview counts what the DELETE will take from
 * the answers it is made of: the user's credentials, quotas, grants and rules (DESIGN.md §8.5).
 * The dialogs live in UserDialogs.tsx.
 */
import type {
  CredentialView,
  DeleteUserResponse,
  GrantView,
  QuotaView,
  RuleView,
  UserView,
} from '@portunus/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate, useParams } from 'react-router';

import { api } from '../http.js';
import { DataTable, LabelledCells } from '../table.js';
import { ConfirmDialog, ErrorText, StatusBadge, formatBytes } from '../ui.js';
import { QUOTA_POLL_MS, quotaFraction, quotaLevel } from './alerts.js';
import { POLL_MS, useClients } from './Clients.js';
import { TrafficPanel } from './TrafficPanel.js';
import { GrantDialog, QuotaDialog, ResetPasswordDialog, useRefreshUser } from './UserDialogs.js';
import { EVERY_CLIENT } from './user-forms.js';

type Dialog =
  | { kind: 'grant'; grant?: GrantView }
  | { kind: 'revoke'; grant: GrantView }
  | { kind: 'quota'; quota?: QuotaView }
  | { kind: 'removeQuota'; quota: QuotaView }
  | { kind: 'reset' }
  | { kind: 'delete' };

const dateOf = (unixSeconds: number | null) =>
  unixSeconds === null ? '—' : new Date(unixSeconds * 1000).toLocaleDateString();

export function UsageBar({ quota }: { quota: QuotaView }) {
  const { t } = useTranslation();
  const percent = Math.round(quotaFraction(quota) * 100);
  return (
    <div className="usage">
      <div
        className={`usage-bar usage-${quotaLevel(quota)}`}
        role="progressbar"
        aria-label={t('screens.usage')}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.min(percent, 100)}
      >
        <span style={{ width: `${Math.min(percent, 100)}%` }} />
      </div>
      <small>
        {formatBytes(quota.current_period_bytes_used)} / {formatBytes(quota.monthly_bytes)} (
        {percent}%)
      </small>
    </div>
  );
}

export function UserPage() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const { userId = '' } = useParams();
  const id = encodeURIComponent(userId);
  const [tab, setTab] = useState<'access' | 'traffic'>('access');
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const close = () => {
    setDialog(null);
  };
  /** A button's handler that opens one dialog. */
  const show = (next: Dialog) => () => {
    setDialog(next);
  };
  const user = useQuery({
    queryKey: ['user', userId],
    queryFn: () => api<UserView>('GET', `/v1/users/${id}`),
  });
  const grants = useQuery({
    queryKey: ['grants', userId],
    queryFn: () => api<GrantView[]>('GET', `/v1/grants?user_id=${id}`),
    refetchInterval: POLL_MS,
  });
  const quotas = useQuery({
    queryKey: ['quotas', userId],
    queryFn: () => api<QuotaView[]>('GET', `/v1/users/${id}/quotas`),
    refetchInterval: QUOTA_POLL_MS,
  });
  const rules = useQuery({
    queryKey: ['rules', 'owner', userId],
    queryFn: () => api<RuleView[]>('GET', `/v1/rules?owner=${id}`),
  });
  const credentials = useQuery({
    queryKey: ['credentials', userId],
    queryFn: () => api<CredentialView[]>('GET', `/v1/credentials?user_id=${id}`),
  });
  const clients = (useClients().data ?? []).filter((client) => client.revoked_at === null);
  const refresh = useRefreshUser();
  const action = useMutation({
    mutationFn: ({ method, path, body }: { method: string; path: string; body?: unknown }) =>
      api(method, path, body),
    onSuccess: close,
    onSettled: refresh,
  });
  const remove = useMutation({
    mutationFn: () => api<DeleteUserResponse>('DELETE', `/v1/users/${id}`),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ['users'] });
      void navigate('/users');
    },
  });
  const grantList = grants.data ?? [];
  const quotaList = quotas.data ?? [];
  // A quota needs a grant on its client (quota_target_not_found): those are the choices.
  const quotaClients = grantList.some((grant) => grant.client === EVERY_CLIENT)
    ? clients
    : clients.filter((client) => grantList.some((grant) => grant.client_id === client.client_id));
  const grantColumns = [
    t('rules.client'),
    t('users.ports'),
    t('rules.protocol'),
    t('screens.note'),
  ];
  const quotaColumns = [
    t('rules.client'),
    t('screens.usage'),
    t('screens.policy'),
    t('screens.resetsOn'),
  ];
  const quotaPath = (quota: QuotaView) => `/v1/users/${id}/quotas/${quota.client_id}`;

  return (
    <section>
      <div className="page-head">
        <h1>
          {user.data?.display_name ?? userId} <small className="muted">{userId}</small>
        </h1>
        <div className="buttons">
          <button type="button" onClick={show({ kind: 'reset' })}>
            {t('users.resetPassword')}
          </button>
          <button type="button" className="danger" onClick={show({ kind: 'delete' })}>
            {t('common.delete')}
          </button>
        </div>
      </div>
      <ErrorText error={user.error ?? grants.error ?? quotas.error} />
      {user.data && (
        <p>
          {t('users.role')}: {user.data.role} ·{' '}
          {user.data.disabled ? t('screens.disabled') : t('screens.enabled')}
        </p>
      )}
      <div className="tabs" role="tablist">
        {(['access', 'traffic'] as const).map((name) => (
          <button
            key={name}
            type="button"
            role="tab"
            aria-selected={tab === name}
            className={tab === name ? 'tab active' : 'tab'}
            onClick={() => {
              setTab(name);
            }}
          >
            {t(`screens.tab_${name}`)}
          </button>
        ))}
      </div>
      {tab === 'traffic' ? (
        <TrafficPanel path={`/v1/users/${id}/traffic`} title={t('screens.userTraffic')} />
      ) : (
        <>
          <div className="page-head section-head">
            <h2>{t('users.grants')}</h2>
            <button type="button" onClick={show({ kind: 'grant' })}>
              {t('screens.addGrant')}
            </button>
          </div>
          <DataTable
            className="stack"
            columns={[...grantColumns, '']}
            empty={{
              when: grantList.length === 0,
              text: t('screens.noGrants'),
              placement: 'below',
            }}
          >
            {grantList.map((grant) => (
              <tr key={grant.grant_id} data-grant={grant.grant_id}>
                <LabelledCells
                  columns={grantColumns}
                  cells={[
                    grant.client === EVERY_CLIENT ? t('screens.everyClient') : grant.client,
                    `${grant.listen_port_start}–${grant.listen_port_end}`,
                    grant.protocols.join(', '),
                    grant.note,
                  ]}
                />
                <td className="actions">
                  <button type="button" onClick={show({ kind: 'grant', grant })}>
                    {t('common.edit')}
                  </button>
                  <button
                    type="button"
                    className="danger"
                    onClick={show({ kind: 'revoke', grant })}
                  >
                    {t('screens.revoke')}
                  </button>
                </td>
              </tr>
            ))}
          </DataTable>

          <div className="page-head section-head">
            <h2>{t('screens.quotas')}</h2>
            <button
              type="button"
              disabled={quotaClients.length === 0}
              onClick={show({ kind: 'quota' })}
            >
              {t('screens.setQuota')}
            </button>
          </div>
          {quotaList.some((quota) => quota.exhausted) && (
            <p className="alert" role="status">
              {t('screens.exhaustedBanner')}
            </p>
          )}
          <DataTable
            className="stack"
            columns={[...quotaColumns, '']}
            empty={{
              when: quotaList.length === 0,
              text: t('screens.noQuotas'),
              placement: 'below',
            }}
          >
            {quotaList.map((quota) => (
              <tr key={quota.client_id} data-quota={quota.client_name}>
                <LabelledCells
                  columns={quotaColumns}
                  cells={[
                    <>
                      {quota.client_name}{' '}
                      {quota.exhausted && (
                        <StatusBadge kind="failed" label={t('screens.exhausted')} />
                      )}
                    </>,
                    <UsageBar quota={quota} />,
                    `${t(`screens.${quota.period}`)} · ${t(`screens.${quota.enforcement}`)}`,
                    dateOf(quota.current_period_ends_at),
                  ]}
                />
                <td className="actions">
                  <button type="button" onClick={show({ kind: 'quota', quota })}>
                    {t('common.edit')}
                  </button>
                  <button
                    type="button"
                    onClick={() => {
                      action.mutate({
                        method: 'PATCH',
                        path: quotaPath(quota),
                        body: { clear_period_usage: true },
                      });
                    }}
                  >
                    {t('screens.clearUsage')}
                  </button>
                  <button
                    type="button"
                    className="danger"
                    onClick={show({ kind: 'removeQuota', quota })}
                  >
                    {t('common.remove')}
                  </button>
                </td>
              </tr>
            ))}
          </DataTable>
          {dialog === null && <ErrorText error={action.error} />}
        </>
      )}

      {dialog?.kind === 'grant' && (
        <GrantDialog userId={userId} grant={dialog.grant} clients={clients} onClose={close} />
      )}
      {dialog?.kind === 'quota' && (
        <QuotaDialog userId={userId} quota={dialog.quota} clients={quotaClients} onClose={close} />
      )}
      {dialog?.kind === 'reset' && <ResetPasswordDialog userId={userId} onClose={close} />}
      {dialog?.kind === 'revoke' && (
        <ConfirmDialog
          title={t('screens.revokeGrant')}
          text={t('screens.revokeCascade')}
          error={action.error}
          onClose={close}
          onConfirm={() => {
            action.mutate({ method: 'DELETE', path: `/v1/grants/${dialog.grant.grant_id}` });
          }}
        />
      )}
      {dialog?.kind === 'removeQuota' && (
        <ConfirmDialog
          title={t('screens.removeQuota')}
          text={t('screens.removeQuotaText', { client: dialog.quota.client_name })}
          error={action.error}
          onClose={close}
          onConfirm={() => {
            action.mutate({ method: 'DELETE', path: quotaPath(dialog.quota) });
          }}
        />
      )}
      {dialog?.kind === 'delete' && (
        <ConfirmDialog
          title={`${t('common.delete')}: ${userId}`}
          text={
            credentials.data === undefined || rules.data === undefined
              ? t('app.loading')
              : t('screens.cascade', {
                  credentials: credentials.data.length,
                  quotas: quotaList.length,
                  grants: grantList.length,
                  rules: rules.data.length,
                })
          }
          // Named only once every count is in, so a reader never takes "loading" for the preview.
          testId={
            credentials.data === undefined || rules.data === undefined
              ? undefined
              : 'cascade-preview'
          }
          error={remove.error ?? credentials.error}
          onClose={close}
          onConfirm={() => {
            remove.mutate();
          }}
        />
      )}
    </section>
  );
}
