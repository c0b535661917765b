/**
 * Rules (reference §8 `/rules`): the table (polled every 5 s; a user sees only their own rules,
 * as the server filters), the push dialog that also edits (PUT keeps the id), removal, and the
 * link to the rule-set revisions (Revisions.tsx) for a superadmin.
 */
import type { ClientView, RulePushResponse, RuleView } from '@portunus/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';

import { api } from '../http.js';
import { DataTable } from '../table.js';
import { ErrorText, Field, FieldProblem, FormDialog, SelectField, StatusBadge } from '../ui.js';
import { POLL_MS, useClients } from './Clients.js';
import {
  CAP_LABELS,
  SOURCE_FIELDS,
  buildPushRequest,
  emptyRuleForm,
  emptyTarget,
  ruleFormOf,
  type RuleForm,
  type RuleFormErrors,
} from './rule-form.js';

export function useRules() {
  return useQuery({
    queryKey: ['rules'],
    queryFn: () => api<RuleView[]>('GET', '/v1/rules'),
    refetchInterval: POLL_MS,
  });
}

export function listenText(rule: RuleView): string {
  return rule.listen_port_end === undefined
    ? String(rule.listen_port)
    : `${rule.listen_port}-${rule.listen_port_end}`;
}

export function targetText(rule: RuleView): string {
  const range = rule.target_port_end === undefined ? '' : `-${rule.target_port_end}`;
  return `${rule.target_host}:${rule.target_port}${range}`;
}

export function RulesPage({ isSuperadmin }: { isSuperadmin: boolean }) {
  const { t } = useTranslation();
  const rules = useRules();
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState<RuleView | 'new' | null>(null);
  const remove = useMutation({
    mutationFn: (id: number) => api('DELETE', `/v1/rules/${id}`),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['rules'] }),
  });
  const list = rules.data ?? [];
  return (
    <section>
      <div className="page-head">
        <h1>{t('rules.title')}</h1>
        <div className="buttons">
          {isSuperadmin && (
            <Link className="button" to="/rules/revisions">
              {t('rules.revisions')}
            </Link>
          )}
          <button
            type="button"
            className="primary"
            onClick={() => {
              setEditing('new');
            }}
          >
            {t('rules.push')}
          </button>
        </div>
      </div>
      <ErrorText error={rules.error ?? remove.error} />
      <DataTable
        columns={[
          t('rules.id'),
          isSuperadmin && t('rules.owner'),
          t('rules.client'),
          t('rules.listen'),
          t('rules.target'),
          t('rules.protocol'),
          t('rules.sni'),
          t('rules.caps'),
          t('rules.state'),
          '',
        ]}
        empty={{ when: list.length === 0, isLoading: rules.isLoading, text: t('rules.none') }}
      >
        {list.map((rule) => (
          <tr key={rule.id} data-rule={rule.id}>
            <td>
              <Link to={`/rules/${rule.id}`}>{rule.id}</Link>
            </td>
            {isSuperadmin && <td>{rule.owner_user_id}</td>}
            <td>{rule.client_name}</td>
            <td>{listenText(rule)}</td>
            <td>
              {targetText(rule)}
              {rule.targets.length > 1 && <span className="pill">MT ×{rule.targets.length}</span>}
            </td>
            <td>{rule.protocol}</td>
            <td>{rule.sni_pattern ?? '—'}</td>
            <td>
              {rule.rate_limit ? '✓' : '—'}
              {rule.allowed_sources.length + rule.denied_sources.length > 0 && (
                <span className="pill" title={t('rules.sources')}>
                  CIDR ×{rule.allowed_sources.length + rule.denied_sources.length}
                </span>
              )}
            </td>
            <td>
              <StatusBadge
                kind={rule.state.kind}
                label={
                  rule.state.reason ? `${rule.state.kind}: ${rule.state.reason}` : rule.state.kind
                }
              />
            </td>
            <td className="actions">
              <button
                type="button"
                onClick={() => {
                  setEditing(rule);
                }}
              >
                {t('common.edit')}
              </button>
              <button
                type="button"
                className="danger"
                onClick={() => {
                  if (window.confirm(t('rules.confirmRemove', { id: rule.id })))
                    remove.mutate(rule.id);
                }}
              >
                {t('common.remove')}
              </button>
            </td>
          </tr>
        ))}
      </DataTable>
      {editing && (
        <RuleDialog
          rule={editing === 'new' ? undefined : editing}
          onClose={() => {
            setEditing(null);
            void queryClient.invalidateQueries({ queryKey: ['rules'] });
          }}
        />
      )}
    </section>
  );
}

/** Push (no `rule`) or edit (PUT /v1/rules/{id}, the id stays) in one form. */
export function RuleDialog({
  rule,
  onClose,
}: {
  rule?: RuleView | undefined;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const clients = useClients();
  const live = (clients.data ?? []).filter((client: ClientView) => client.revoked_at === null);
  const [form, setForm] = useState<RuleForm>(() => (rule ? ruleFormOf(rule) : emptyRuleForm()));
  const [errors, setErrors] = useState<RuleFormErrors>({});
  // Errors describe the form as submitted: any edit clears them until the next submit.
  useEffect(() => {
    setErrors({});
  }, [form]);
  const push = useMutation({
    mutationFn: (body: unknown) =>
      rule
        ? api<RulePushResponse>('PUT', `/v1/rules/${rule.id}`, body)
        : api<RulePushResponse>('POST', '/v1/rules', body),
    onSuccess: onClose,
  });
  const client = form.client || live[0]?.client_name || '';
  const submit = () => {
    const built = buildPushRequest({ ...form, client }, t);
    setErrors(built.errors);
    if (built.request) push.mutate(built.request);
  };
  const setTarget = (index: number, patch: Partial<RuleForm['targets'][number]>) => {
    setForm({
      ...form,
      targets: form.targets.map((target, i) => (i === index ? { ...target, ...patch } : target)),
    });
  };
  return (
    <FormDialog
      title={rule ? t('rules.editTitle', { id: rule.id }) : t('rules.pushTitle')}
      onClose={onClose}
      onSubmit={submit}
      error={push.error}
      isPending={push.isPending}
      submitLabel={rule ? t('rules.saveEdit') : t('rules.submit')}
      className="rule-form"
    >
      <div className="row">
        <SelectField
          label={t('rules.client')}
          value={client}
          onChange={(value) => {
            setForm({ ...form, client: value });
          }}
          options={live.map((item) => ({
            value: item.client_name,
            label: `${item.client_name}${item.connected ? '' : ` (${t('clients.offline')})`}`,
          }))}
        />
        <SelectField
          label={t('rules.protocol')}
          value={form.protocol}
          onChange={(value) => {
            setForm({ ...form, protocol: value === 'udp' ? 'udp' : 'tcp' });
          }}
          options={[
            { value: 'tcp', label: 'TCP' },
            { value: 'udp', label: 'UDP' },
          ]}
        />
      </div>
      {errors['client'] && <p className="field-error">{errors['client']}</p>}
      <div className="row">
        <Field
          label={t('rules.listenPort')}
          inputMode="numeric"
          value={form.listenPort}
          onChange={(e) => {
            setForm({ ...form, listenPort: e.target.value });
          }}
          error={errors['listenPort']}
        />
        <Field
          label={t('rules.listenPortEnd')}
          inputMode="numeric"
          value={form.listenPortEnd}
          onChange={(e) => {
            setForm({ ...form, listenPortEnd: e.target.value });
          }}
          error={errors['listenPortEnd']}
        />
      </div>
      {form.targets.map((target, index) => (
        <fieldset key={index} className="target">
          <legend>
            {t('rules.target')} {index + 1}
          </legend>
          <div className="row">
            <Field
              label={t('rules.targetHost')}
              value={target.host}
              onChange={(e) => {
                setTarget(index, { host: e.target.value });
              }}
              error={errors[`targets.${index}.host`]}
            />
            <Field
              label={t('rules.targetPort')}
              inputMode="numeric"
              value={target.port}
              onChange={(e) => {
                setTarget(index, { port: e.target.value });
              }}
              error={errors[`targets.${index}.port`]}
            />
          </div>
          <div className="row">
            <Field
              label={t('rules.priority')}
              inputMode="numeric"
              value={target.priority}
              onChange={(e) => {
                setTarget(index, { priority: e.target.value });
              }}
            />
            <SelectField
              label={t('rules.proxyProtocol')}
              value={target.proxy}
              onChange={(value) => {
                setTarget(index, { proxy: value === 'v1' || value === 'v2' ? value : '' });
              }}
              options={[
                { value: '', label: t('common.none') },
                { value: 'v1', label: 'v1' },
                { value: 'v2', label: 'v2' },
              ]}
            />
          </div>
          {form.targets.length > 1 && (
            <button
              type="button"
              className="ghost"
              onClick={() => {
                setForm({ ...form, targets: form.targets.filter((_, i) => i !== index) });
              }}
            >
              {t('rules.removeTarget')}
            </button>
          )}
        </fieldset>
      ))}
      <button
        type="button"
        onClick={() => {
          setForm({ ...form, targets: [...form.targets, emptyTarget()] });
        }}
      >
        {t('rules.addTarget')}
      </button>
      <div className="row">
        <Field
          label={t('rules.healthInterval')}
          hint={t('rules.healthHint')}
          inputMode="numeric"
          value={form.healthInterval}
          onChange={(e) => {
            setForm({ ...form, healthInterval: e.target.value });
          }}
        />
        <Field
          label={t('rules.sniPattern')}
          value={form.sniPattern}
          error={errors['sniPattern']}
          onChange={(e) => {
            setForm({ ...form, sniPattern: e.target.value });
          }}
        />
      </div>
      <details>
        <summary>{t('rules.qos')}</summary>
        <div className="row">
          {(Object.entries(CAP_LABELS) as [keyof typeof CAP_LABELS, string][]).map(
            ([key, label]) => (
              <Field
                key={key}
                label={t(label)}
                inputMode="numeric"
                value={form.caps[key]}
                onChange={(e) => {
                  setForm({ ...form, caps: { ...form.caps, [key]: e.target.value } });
                }}
                error={errors[`caps.${key}`]}
              />
            ),
          )}
        </div>
        <FieldProblem text={errors['caps']} />
        <div className="row">
          {SOURCE_FIELDS.map(([key, , label]) => (
            <Field
              key={key}
              label={t(label)}
              hint={t('rules.sourcesHint')}
              value={form[key]}
              onChange={(e) => {
                setForm({ ...form, [key]: e.target.value });
              }}
              error={errors[key]}
            />
          ))}
        </div>
      </details>
    </FormDialog>
  );
}
