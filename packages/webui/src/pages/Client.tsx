/**
 * One client's page (reference §8 `/clients/:clientId`): a "not found" state for an unknown id,
 * the status badge and the facts of the client (entry address, observed peer, connected,
 * provisioned and revoked times), the rules on it, and for a superadmin the actions — rename,
 * re-enroll (confirm, then the one-time command with copy button and expiry countdown), revoke,
 * and delete once revoked. Client data comes from the same 5 s poll as the clients table; the
 * dialogs are the table's own (Clients.tsx), not copies.
 */
import type { ClientView, IssuedEnrollment, RuleView } from '@portunus/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate, useParams } from 'react-router';

import { api } from '../http.js';
import { DataTable } from '../table.js';
import { ErrorText, Facts, StatusBadge } from '../ui.js';
import {
  ClientActions,
  CommandDialog,
  POLL_MS,
  RenameDialog,
  clientStatus,
  useClients,
} from './Clients.js';
import { listenText, targetText } from './Rules.js';

const when = (value: string | null) => (value ? new Date(value).toLocaleString() : '—');

export function ClientPage({ isSuperadmin }: { isSuperadmin: boolean }) {
  const { t } = useTranslation();
  const { clientId = '' } = useParams();
  const clients = useClients();
  const client = clients.data?.find((item) => item.client_id === clientId);
  if (clients.isLoading) return <p className="muted">{t('app.loading')}</p>;
  if (!client) {
    return (
      <section>
        <ErrorText error={clients.error} />
        <p data-testid="client-not-found">{t('clientDetail.notFound', { id: clientId })}</p>
        <Link to="/clients">{t('clientDetail.back')}</Link>
      </section>
    );
  }
  return <ClientDetail client={client} isSuperadmin={isSuperadmin} />;
}

function ClientDetail({ client, isSuperadmin }: { client: ClientView; isSuperadmin: boolean }) {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [renaming, setRenaming] = useState(false);
  const [issued, setIssued] = useState<IssuedEnrollment | null>(null);
  const status = clientStatus(client);
  const rules = useQuery({
    queryKey: ['rules', 'client', client.client_name],
    queryFn: () =>
      api<RuleView[]>('GET', `/v1/rules?client=${encodeURIComponent(client.client_name)}`),
    refetchInterval: POLL_MS,
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['clients'] });
  const action = useMutation({
    mutationFn: ({ method, path }: { method: string; path: string }) => api(method, path),
    onSettled: refresh,
  });
  const remove = useMutation({
    mutationFn: () => api('DELETE', `/v1/clients/${client.client_id}`),
    onSuccess: async () => {
      await refresh();
      void navigate('/clients', { replace: true });
    },
  });
  const reenroll = useMutation({
    mutationFn: () =>
      api<IssuedEnrollment>('POST', `/v1/clients/${client.client_id}/enrollment`, {}),
    onSuccess: setIssued,
  });
  const facts: [string, string][] = [
    ['clientDetail.id', client.client_id],
    ['clients.entryAddress', client.client_address ?? '—'],
    ['clients.observedPeer', client.remote_addr ?? '—'],
    ['clientDetail.connectedAt', when(client.connected_at)],
    ['clientDetail.provisionedAt', when(client.provisioned_at)],
    ['clientDetail.revokedAt', when(client.revoked_at)],
  ];
  const list = rules.data ?? [];
  return (
    <section>
      <div className="page-head">
        <h1>
          {client.client_name} <StatusBadge kind={status} label={t(`clients.${status}`)} />
        </h1>
        {isSuperadmin && (
          <div className="buttons">
            <ClientActions
              client={client}
              reenrollLabel={t('clientDetail.reenroll')}
              deleteLabel={t('clientDetail.deletePermanently')}
              onRename={() => {
                setRenaming(true);
              }}
              onReenroll={() => {
                if (window.confirm(t('clientDetail.confirmReenroll', { name: client.client_name })))
                  reenroll.mutate();
              }}
              onRevoke={() => {
                action.mutate({ method: 'POST', path: `/v1/clients/${client.client_id}/revoke` });
              }}
              onDelete={() => {
                remove.mutate();
              }}
            />
          </div>
        )}
      </div>
      <ErrorText error={action.error ?? remove.error ?? reenroll.error} />
      <div className="card">
        <h2>{t('clientDetail.overview')}</h2>
        <Facts items={facts.map(([key, value]) => [t(key), value] as const)} />
      </div>
      <h2>{t('clientDetail.rules', { count: list.length })}</h2>
      <ErrorText error={rules.error} />
      <DataTable
        columns={[
          t('rules.id'),
          isSuperadmin && t('rules.owner'),
          t('rules.listen'),
          t('rules.target'),
          t('rules.protocol'),
          t('rules.state'),
        ]}
        empty={{ when: list.length === 0, isLoading: rules.isLoading, text: t('rules.none') }}
      >
        {list.map((rule) => (
          <tr key={rule.id} data-client-rule={rule.id}>
            <td>
              <Link to={`/rules/${rule.id}`}>{rule.id}</Link>
            </td>
            {isSuperadmin && <td>{rule.owner_user_id}</td>}
            <td>{listenText(rule)}</td>
            <td>{targetText(rule)}</td>
            <td>{rule.protocol}</td>
            <td>
              <StatusBadge kind={rule.state.kind} label={rule.state.kind} />
            </td>
          </tr>
        ))}
      </DataTable>
      {renaming && (
        <RenameDialog
          client={client}
          onClose={() => {
            setRenaming(false);
            void refresh();
            void queryClient.invalidateQueries({ queryKey: ['rules'] });
          }}
        />
      )}
      {issued && (
        <CommandDialog
          issued={issued}
          note={t('clientDetail.reenrollNote')}
          onClose={() => {
            setIssued(null);
          }}
        />
      )}
    </section>
  );
}
