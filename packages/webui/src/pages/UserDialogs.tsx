/**
 * The user page's dialogs: add or edit a grant, set or edit a quota, reset a password. Each
 * checks its fields with user-forms.ts before anything is sent, names a problem on its own field,
 * and shows a refusal by the server's code and message. Editing a grant has no route of its own
 * (reference §2.3 has POST and DELETE only): the new grant is created first and the old one
 * revoked after, so rules the new one still covers survive the revoke's cascade.
 */
import type { ClientView, GrantView, QuotaView } from '@portunus/api';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type ChangeEvent } from 'react';
import { useTranslation } from 'react-i18next';

import { api } from '../http.js';
import { CopyButton, Field, FieldProblem, FormDialog, Modal, SelectField } from '../ui.js';
import {
  BYTE_UNITS,
  EVERY_CLIENT,
  checkGrant,
  checkQuota,
  checkReset,
  grantFormOf,
  grantRequest,
  quotaFormOf,
  quotaRequest,
  resetRequest,
  type ByteUnit,
  type Problem,
} from './user-forms.js';

/** The keys of a form whose values are text, so an <input> can hold them as they are. */
type TextKeys<F> = { [K in keyof F]: F[K] extends string ? K : never }[keyof F] & string;

/** A field's problem goes as soon as the field is edited; the next submit checks again. */
function useForm<F, P extends Partial<Record<string, Problem>>>(initial: () => F) {
  const text = useProblemText();
  const [form, setForm] = useState(initial);
  const [problems, setProblems] = useState<P>({} as P);
  const change = (next: F, field: keyof P & string) => {
    setForm(next);
    setProblems(
      (old) => Object.fromEntries(Object.entries(old).filter(([key]) => key !== field)) as P,
    );
  };
  /** A text field's value, edit handler and problem, for a field whose problem has its name. */
  const input = (key: TextKeys<F> & keyof P) => ({
    value: form[key] as string,
    onChange: (event: ChangeEvent<HTMLInputElement>) => {
      change({ ...form, [key]: event.target.value }, key);
    },
    error: text(problems[key]),
  });
  return { form, setForm, problems, setProblems, change, text, input };
}

function useProblemText() {
  const { t } = useTranslation();
  return (problem: Problem | undefined) => (problem ? t(problem.key, problem.values) : undefined);
}

/** Refreshes every answer a change on this user's page can move. */
export function useRefreshUser() {
  const queryClient = useQueryClient();
  return () => {
    for (const key of ['grants', 'quotas', 'user', 'rules', 'users'])
      void queryClient.invalidateQueries({ queryKey: [key] });
  };
}

export function GrantDialog({
  userId,
  grant,
  clients,
  onClose,
}: {
  userId: string;
  grant?: GrantView | undefined;
  clients: readonly ClientView[];
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const refresh = useRefreshUser();
  const { form, setForm, problems, setProblems, change, text, input } = useForm<
    ReturnType<typeof grantFormOf>,
    ReturnType<typeof checkGrant>
  >(() => grantFormOf(grant));
  const save = useMutation({
    mutationFn: async () => {
      await api<GrantView>('POST', '/v1/grants', grantRequest(userId, form));
      if (grant) await api('DELETE', `/v1/grants/${grant.grant_id}`);
    },
    onSuccess: () => {
      refresh();
      onClose();
    },
    onError: refresh,
  });
  const submit = () => {
    const found = checkGrant(form);
    setProblems(found);
    if (Object.keys(found).length === 0) save.mutate();
  };
  const options = [
    { value: '', label: t('screens.pickClient') },
    { value: EVERY_CLIENT, label: t('screens.everyClient') },
    ...clients
      .filter((client) => client.revoked_at === null)
      .map((client) => ({ value: client.client_id, label: client.client_name })),
  ];
  return (
    <FormDialog
      title={grant ? t('screens.editGrant') : t('screens.addGrant')}
      onClose={onClose}
      onSubmit={submit}
      error={save.error}
      isPending={save.isPending}
      submitLabel={t('screens.saveGrant')}
    >
      <SelectField
        label={t('rules.client')}
        value={form.client}
        onChange={(client) => {
          change({ ...form, client }, 'client');
        }}
        options={options}
      />
      <FieldProblem text={text(problems.client)} />
      <div className="row">
        <Field label={t('screens.portStart')} inputMode="numeric" {...input('start')} />
        <Field label={t('screens.portEnd')} inputMode="numeric" {...input('end')} />
      </div>
      <fieldset className="plain">
        <legend>{t('rules.protocol')}</legend>
        {(['tcp', 'udp'] as const).map((protocol) => (
          <label key={protocol} className="toggle">
            <input
              type="checkbox"
              checked={form[protocol]}
              onChange={(e) => {
                change({ ...form, [protocol]: e.target.checked }, 'protocols');
              }}
            />
            {protocol.toUpperCase()}
          </label>
        ))}
        <FieldProblem text={text(problems.protocols)} />
      </fieldset>
      <Field
        label={t('screens.note')}
        value={form.note}
        onChange={(e) => {
          setForm({ ...form, note: e.target.value });
        }}
      />
      {grant && <p className="hint">{t('screens.editGrantHint')}</p>}
    </FormDialog>
  );
}

export function QuotaDialog({
  userId,
  quota,
  clients,
  onClose,
}: {
  userId: string;
  quota?: QuotaView | undefined;
  /** The clients this user holds a grant on: a quota needs one (quota_target_not_found). */
  clients: readonly { client_id: string; client_name: string }[];
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const refresh = useRefreshUser();
  const { form, setForm, problems, setProblems, change, text, input } = useForm<
    ReturnType<typeof quotaFormOf>,
    ReturnType<typeof checkQuota>
  >(() => quotaFormOf(quota, clients.length === 1 ? clients[0]?.client_id : ''));
  const save = useMutation({
    mutationFn: () =>
      api<QuotaView>(
        'PUT',
        `/v1/users/${encodeURIComponent(userId)}/quotas/${encodeURIComponent(form.clientId)}`,
        quotaRequest(form),
      ),
    onSuccess: () => {
      refresh();
      onClose();
    },
  });
  const submit = () => {
    const found = checkQuota(form);
    setProblems(found);
    if (Object.keys(found).length === 0) save.mutate();
  };
  return (
    <FormDialog
      title={quota ? t('screens.editQuota') : t('screens.setQuota')}
      onClose={onClose}
      onSubmit={submit}
      error={save.error}
      isPending={save.isPending}
      submitLabel={t('screens.saveQuota')}
    >
      {quota ? (
        <p>
          {t('rules.client')}: <strong>{quota.client_name}</strong>
        </p>
      ) : (
        <>
          <SelectField
            label={t('rules.client')}
            value={form.clientId}
            onChange={(clientId) => {
              change({ ...form, clientId }, 'clientId');
            }}
            options={[
              { value: '', label: t('screens.pickClient') },
              ...clients.map((client) => ({
                value: client.client_id,
                label: client.client_name,
              })),
            ]}
          />
          <FieldProblem text={text(problems.clientId)} />
        </>
      )}
      <div className="row">
        <Field label={t('screens.limit')} inputMode="decimal" {...input('amount')} />
        <SelectField
          label={t('screens.unit')}
          value={form.unit}
          onChange={(unit) => {
            change({ ...form, unit: unit as ByteUnit }, 'amount');
          }}
          options={Object.keys(BYTE_UNITS).map((unit) => ({ value: unit, label: unit }))}
        />
      </div>
      <div className="row">
        <SelectField
          label={t('screens.period')}
          value={form.period}
          onChange={(period) => {
            setForm({ ...form, period: period as typeof form.period });
          }}
          options={[
            { value: 'monthly', label: t('screens.monthly') },
            { value: 'never', label: t('screens.never') },
          ]}
        />
        <SelectField
          label={t('screens.enforcement')}
          value={form.enforcement}
          onChange={(enforcement) => {
            setForm({ ...form, enforcement: enforcement as typeof form.enforcement });
          }}
          options={[
            { value: 'hard', label: t('screens.hard') },
            { value: 'soft', label: t('screens.soft') },
          ]}
        />
      </div>
      <Field
        label={t('screens.resetDay')}
        inputMode="numeric"
        value={form.period === 'monthly' ? form.resetDay : ''}
        disabled={form.period !== 'monthly'}
        hint={t('screens.resetDayHint')}
        onChange={(e) => {
          change({ ...form, resetDay: e.target.value }, 'resetDay');
        }}
        error={text(problems.resetDay)}
      />
      {quota && (
        <label className="toggle">
          <input
            type="checkbox"
            checked={form.clearUsage}
            onChange={(e) => {
              setForm({ ...form, clearUsage: e.target.checked });
            }}
          />
          {t('screens.clearUsageToo')}
        </label>
      )}
    </FormDialog>
  );
}

interface ResetAnswer {
  user_id: string;
  sessions_revoked: number;
  temporary_password?: string;
}

export function ResetPasswordDialog({ userId, onClose }: { userId: string; onClose: () => void }) {
  const { t } = useTranslation();
  const { form, setForm, setProblems, input } = useForm<
    { password: string; temporary: boolean },
    ReturnType<typeof checkReset>
  >(() => ({ password: '', temporary: true }));
  const [answer, setAnswer] = useState<ResetAnswer | null>(null);
  const reset = useMutation({
    mutationFn: () =>
      api<ResetAnswer>(
        'POST',
        `/v1/users/${encodeURIComponent(userId)}/password`,
        resetRequest(form),
      ),
    onSuccess: (result) => {
      // The password typed here is not kept once the server has it.
      setForm({ password: '', temporary: form.temporary });
      setAnswer(result);
    },
  });
  const submit = () => {
    const found = checkReset(form);
    setProblems(found);
    if (Object.keys(found).length === 0) reset.mutate();
  };
  if (answer)
    return (
      <Modal title={t('users.resetPassword')} onClose={onClose}>
        <p>{t('screens.sessionsRevoked', { count: answer.sessions_revoked })}</p>
        {answer.temporary_password !== undefined && (
          <>
            <p>{t('users.temporaryOnce')}</p>
            <pre className="command" data-testid="temporary-password">
              {answer.temporary_password}
            </pre>
          </>
        )}
        <div className="buttons">
          {answer.temporary_password !== undefined && (
            <CopyButton text={answer.temporary_password} />
          )}
          <button type="button" className="primary" onClick={onClose}>
            {t('common.close')}
          </button>
        </div>
      </Modal>
    );
  return (
    <FormDialog
      title={t('users.resetPassword')}
      onClose={onClose}
      onSubmit={submit}
      error={reset.error}
      isPending={reset.isPending}
      submitLabel={t('screens.resetSubmit')}
    >
      <Field
        label={t('screens.newPasswordOptional')}
        type="password"
        autoComplete="new-password"
        {...input('password')}
        hint={t('screens.generatedHint')}
      />
      <label className="toggle">
        <input
          type="checkbox"
          checked={form.password === '' || form.temporary}
          disabled={form.password === ''}
          onChange={(e) => {
            setForm({ ...form, temporary: e.target.checked });
          }}
        />
        {t('users.requireChange')}
      </label>
    </FormDialog>
  );
}
