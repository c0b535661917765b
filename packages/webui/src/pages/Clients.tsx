/**
 * Clients (reference §8 `/clients`): the fleet table polled every 5 s, revoked ones behind a
 * toggle, row actions (rename, revoke, delete, re-enroll) for a superadmin, and the enroll
 * dialog that shows the one-time command once, with a copy button and an expiry countdown.
 */
import type { ClientView, EnrollmentRequest, IssuedEnrollment } from '@portunus/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';

import { api } from '../http.js';
import { DataTable } from '../table.js';
import { CopyButton, ErrorText, Field, FormDialog, Modal, StatusBadge } from '../ui.js';

export const POLL_MS = 5_000;

export function useClients() {
  return useQuery({
    queryKey: ['clients'],
    queryFn: () => api<ClientView[]>('GET', '/v1/clients'),
    refetchInterval: POLL_MS,
  });
}

export function clientStatus(client: ClientView): 'connected' | 'offline' | 'revoked' {
  if (client.revoked_at !== null) return 'revoked';
  return client.connected ? 'connected' : 'offline';
}

export function ClientsPage({ isSuperadmin }: { isSuperadmin: boolean }) {
  const { t } = useTranslation();
  const clients = useClients();
  const queryClient = useQueryClient();
  const [showRevoked, setShowRevoked] = useState(false);
  const [enrolling, setEnrolling] = useState(false);
  const [issued, setIssued] = useState<IssuedEnrollment | null>(null);
  const [renaming, setRenaming] = useState<ClientView | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['clients'] });
  const action = useMutation({
    mutationFn: ({ method, path }: { method: string; path: string }) => api(method, path),
    onSettled: refresh,
  });
  const reenroll = useMutation({
    mutationFn: (client: ClientView) =>
      api<IssuedEnrollment>('POST', `/v1/clients/${client.client_id}/enrollment`, {}),
    onSuccess: (answer) => {
      setIssued(answer);
    },
  });

  const all = clients.data ?? [];
  const revokedCount = all.filter((client) => client.revoked_at !== null).length;
  const shown = showRevoked ? all : all.filter((client) => client.revoked_at === null);
  return (
    <section>
      <div className="page-head">
        <h1>{t('clients.title')}</h1>
        {isSuperadmin && (
          <button
            type="button"
            className="primary"
            onClick={() => {
              setEnrolling(true);
            }}
          >
            {t('clients.enroll')}
          </button>
        )}
      </div>
      {revokedCount > 0 && (
        <label className="toggle">
          <input
            type="checkbox"
            checked={showRevoked}
            onChange={(e) => {
              setShowRevoked(e.target.checked);
            }}
          />
          {t('clients.showRevoked', { count: revokedCount })}
        </label>
      )}
      <ErrorText error={clients.error ?? action.error ?? reenroll.error} />
      <DataTable
        columns={[
          t('clients.name'),
          t('clients.entryAddress'),
          t('clients.observedPeer'),
          t('clients.connectedSince'),
          t('clients.status'),
          isSuperadmin && t('clients.actions'),
        ]}
        empty={{ when: shown.length === 0, isLoading: clients.isLoading, text: t('clients.none') }}
      >
        {shown.map((client) => {
          const status = clientStatus(client);
          return (
            <tr key={client.client_id} data-client={client.client_name}>
              <td>
                <Link to={`/clients/${client.client_id}`}>{client.client_name}</Link>{' '}
                <small className="muted">{client.client_id.slice(0, 8)}</small>
              </td>
              <td>{client.client_address ?? '—'}</td>
              <td>{client.remote_addr ?? '—'}</td>
              <td>{client.connected_at ? new Date(client.connected_at).toLocaleString() : '—'}</td>
              <td>
                <StatusBadge kind={status} label={t(`clients.${status}`)} />
              </td>
              {isSuperadmin && (
                <td className="actions">
                  <ClientActions
                    client={client}
                    reenrollLabel={t('clients.reenroll')}
                    deleteLabel={t('common.delete')}
                    onRename={() => {
                      setRenaming(client);
                    }}
                    onReenroll={() => {
                      reenroll.mutate(client);
                    }}
                    onRevoke={() => {
                      action.mutate({
                        method: 'POST',
                        path: `/v1/clients/${client.client_id}/revoke`,
                      });
                    }}
                    onDelete={() => {
                      action.mutate({ method: 'DELETE', path: `/v1/clients/${client.client_id}` });
                    }}
                  />
                </td>
              )}
            </tr>
          );
        })}
      </DataTable>
      {enrolling && (
        <EnrollDialog
          onClose={() => {
            setEnrolling(false);
          }}
          onIssued={(answer) => {
            setEnrolling(false);
            setIssued(answer);
            void refresh();
          }}
        />
      )}
      {issued && (
        <CommandDialog
          issued={issued}
          onClose={() => {
            setIssued(null);
          }}
        />
      )}
      {renaming && (
        <RenameDialog
          client={renaming}
          onClose={() => {
            setRenaming(null);
            void refresh();
          }}
        />
      )}
    </section>
  );
}

/**
 * A superadmin's buttons on one client, in the table's row and on the client's own page: rename,
 * re-enroll and revoke while it lives, delete once it is revoked. Revoke and delete ask first,
 * by name; what each does (and where the page goes after) is the caller's.
 */
export function ClientActions({
  client,
  reenrollLabel,
  deleteLabel,
  onRename,
  onReenroll,
  onRevoke,
  onDelete,
}: {
  client: ClientView;
  reenrollLabel: string;
  deleteLabel: string;
  onRename: () => void;
  onReenroll: () => void;
  onRevoke: () => void;
  onDelete: () => void;
}) {
  const { t } = useTranslation();
  const name = client.client_name;
  if (clientStatus(client) === 'revoked')
    return (
      <button
        type="button"
        className="danger"
        onClick={() => {
          if (window.confirm(t('clients.confirmDelete', { name }))) onDelete();
        }}
      >
        {deleteLabel}
      </button>
    );
  return (
    <>
      <button type="button" onClick={onRename}>
        {t('clients.rename')}
      </button>
      <button type="button" onClick={onReenroll}>
        {reenrollLabel}
      </button>
      <button
        type="button"
        className="danger"
        onClick={() => {
          if (window.confirm(t('clients.confirmRevoke', { name }))) onRevoke();
        }}
      >
        {t('clients.revoke')}
      </button>
    </>
  );
}

export function EnrollDialog({
  onClose,
  onIssued,
}: {
  onClose: () => void;
  onIssued: (answer: IssuedEnrollment) => void;
}) {
  const { t } = useTranslation();
  const [form, setForm] = useState({ name: '', address: '' });
  const [errors, setErrors] = useState<{ name?: string }>({});
  const enroll = useMutation({
    mutationFn: (body: EnrollmentRequest) =>
      api<IssuedEnrollment>('POST', '/v1/client-enrollments', body),
    onSuccess: onIssued,
  });
  const submit = () => {
    if (!form.name.trim()) {
      setErrors({ name: t('common.required', { field: t('clients.name') }) });
      return;
    }
    setErrors({});
    enroll.mutate({ name: form.name.trim(), address: form.address.trim() || null });
  };
  return (
    <FormDialog
      title={t('clients.enrollTitle')}
      onClose={onClose}
      onSubmit={submit}
      error={enroll.error}
      isPending={enroll.isPending}
      submitLabel={t('clients.create')}
    >
      <Field
        label={t('clients.name')}
        value={form.name}
        onChange={(e) => {
          setForm({ ...form, name: e.target.value });
        }}
        error={errors.name}
        autoFocus
      />
      <Field
        label={t('clients.entryAddress')}
        value={form.address}
        onChange={(e) => {
          setForm({ ...form, address: e.target.value });
        }}
      />
    </FormDialog>
  );
}

function remaining(expiresAt: string, now: number): number {
  return Math.max(0, Math.floor((Date.parse(expiresAt) - now) / 1000));
}

/** The one-time command: shown once, never stored; closing the dialog forgets it. */
export function CommandDialog({
  issued,
  note,
  onClose,
}: {
  issued: IssuedEnrollment;
  /** Said above the command, e.g. that a re-enrollment keeps the client's id and rules. */
  note?: string;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => {
      setNow(Date.now());
    }, 1000);
    return () => {
      clearInterval(timer);
    };
  }, []);
  const left = remaining(issued.expires_at, now);
  const clock = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  return (
    <Modal title={`${t('clients.enrollTitle')}: ${issued.client_name}`} onClose={onClose}>
      {note && <p className="notice">{note}</p>}
      <p>{t('clients.commandIntro')}</p>
      <pre className="command" data-testid="enroll-command">
        {issued.command}
      </pre>
      <div className="buttons">
        <span className={left === 0 ? 'error' : 'muted'} data-testid="enroll-expiry">
          {left === 0 ? t('clients.expired') : t('clients.expiresIn', { time: clock })}
        </span>
        <CopyButton text={issued.command} />
        <button type="button" className="primary" onClick={onClose}>
          {t('common.close')}
        </button>
      </div>
    </Modal>
  );
}

/** Rename (PATCH …/name): id, token, rules and the live session stay; blank is refused here. */
export function RenameDialog({ client, onClose }: { client: ClientView; onClose: () => void }) {
  const { t } = useTranslation();
  const [name, setName] = useState(client.client_name);
  const [error, setError] = useState<string | undefined>(undefined);
  const rename = useMutation({
    mutationFn: (clientName: string) =>
      api<ClientView>('PATCH', `/v1/clients/${client.client_id}/name`, {
        client_name: clientName,
      }),
    onSuccess: onClose,
  });
  return (
    <FormDialog
      title={`${t('clients.rename')}: ${client.client_name}`}
      onClose={onClose}
      onSubmit={() => {
        if (!name.trim()) {
          setError(t('common.required', { field: t('clients.name') }));
          return;
        }
        setError(undefined);
        rename.mutate(name.trim());
      }}
      error={rename.error}
      isPending={rename.isPending}
      submitLabel={t('common.save')}
    >
      <Field
        label={t('clients.name')}
        value={name}
        error={error}
        onChange={(e) => {
          setName(e.target.value);
        }}
      />
    </FormDialog>
  );
}
