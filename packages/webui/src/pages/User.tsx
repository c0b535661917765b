/**
 * One user's page (reference §8 `/users/:userId`, superadmin): who they are, their grants, a
 * password reset (a generated temporary password is shown once, in a dialog, and never kept),
 * and delete with a preview of what the cascade removes (their grants, credentials and rules,
 * reference DESIGN §8.5). Quotas and the traffic tab attach here once traffic history exists.
 */
import type { DeleteUserResponse, GrantView, RuleView, UserView } from '@portunus/api';
import { useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate, useParams } from 'react-router';

import { api } from '../http.js';
import { CopyButton, ErrorText, Modal } from '../ui.js';

interface ResetAnswer {
  user_id: string;
  sessions_revoked: number;
  temporary_password?: string;
}

export function UserPage() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const { userId = '' } = useParams();
  const id = encodeURIComponent(userId);
  const user = useQuery({
    queryKey: ['user', userId],
    queryFn: () => api<UserView>('GET', `/v1/users/${id}`),
  });
  const grants = useQuery({
    queryKey: ['grants', userId],
    queryFn: () => api<GrantView[]>('GET', `/v1/grants?user_id=${id}`),
  });
  const rules = useQuery({
    queryKey: ['rules', 'owner', userId],
    queryFn: () => api<RuleView[]>('GET', `/v1/rules?owner=${id}`),
  });
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [revealed, setRevealed] = useState<string | null>(null);
  const reset = useMutation({
    mutationFn: () => api<ResetAnswer>('POST', `/v1/users/${id}/password`, {}),
    onSuccess: (answer) => {
      setRevealed(answer.temporary_password ?? '');
    },
  });
  const remove = useMutation({
    mutationFn: () => api<DeleteUserResponse>('DELETE', `/v1/users/${id}`),
    onSuccess: () => void navigate('/users'),
  });
  return (
    <section>
      <div className="page-head">
        <h1>
          {user.data?.display_name ?? userId} <small className="muted">{userId}</small>
        </h1>
        <div className="buttons">
          <button
            type="button"
            onClick={() => {
              reset.mutate();
            }}
          >
            {t('users.resetPassword')}
          </button>
          <button
            type="button"
            className="danger"
            onClick={() => {
              setConfirmDelete(true);
            }}
          >
            {t('common.delete')}
          </button>
        </div>
      </div>
      <ErrorText error={user.error ?? grants.error ?? reset.error} />
      {user.data && (
        <p>
          {t('users.role')}: {user.data.role} · {user.data.disabled ? 'disabled' : 'enabled'}
        </p>
      )}
      <h2>{t('users.grants')}</h2>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th>{t('rules.client')}</th>
              <th>{t('users.ports')}</th>
              <th>{t('rules.protocol')}</th>
            </tr>
          </thead>
          <tbody>
            {(grants.data ?? []).map((grant) => (
              <tr key={grant.grant_id} data-grant={grant.grant_id}>
                <td>{grant.client}</td>
                <td>
                  {grant.listen_port_start}–{grant.listen_port_end}
                </td>
                <td>{grant.protocols.join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {revealed !== null && (
        <Modal
          title={t('users.resetPassword')}
          onClose={() => {
            setRevealed(null);
          }}
        >
          <p>{t('users.temporaryOnce')}</p>
          <pre className="command">{revealed}</pre>
          <div className="buttons">
            <CopyButton text={revealed} />
            <button
              type="button"
              className="primary"
              onClick={() => {
                setRevealed(null);
              }}
            >
              {t('common.close')}
            </button>
          </div>
        </Modal>
      )}
      {confirmDelete && (
        <Modal
          title={`${t('common.delete')}: ${userId}`}
          onClose={() => {
            setConfirmDelete(false);
          }}
        >
          <p data-testid="cascade-preview">
            {t('users.cascade', {
              grants: grants.data?.length ?? 0,
              rules: rules.data?.length ?? 0,
            })}
          </p>
          <ErrorText error={remove.error} />
          <div className="buttons">
            <button
              type="button"
              onClick={() => {
                setConfirmDelete(false);
              }}
            >
              {t('common.cancel')}
            </button>
            <button
              type="button"
              className="danger"
              onClick={() => {
                remove.mutate();
              }}
            >
              {t('common.confirm')}
            </button>
          </div>
        </Modal>
      )}
    </section>
  );
}
