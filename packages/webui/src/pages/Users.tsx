/**
 * Users (reference §8 `/users`, superadmin): the table polled every 5 s, a filter on id and
 * display name, and the "New user" dialog. Grants, quotas, password reset and delete live on
 * the user's own page (User.tsx).
 */
import {
  MIN_PASSWORD_CHARS,
  type CreateUserRequest,
  type Role,
  type UserView,
} from '@portunus/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';

import { api } from '../http.js';
import { DataTable } from '../table.js';
import { ErrorText, Field, FormDialog, SelectField } from '../ui.js';
import { POLL_MS } from './Clients.js';

export function UsersPage() {
  const { t } = useTranslation();
  const users = useQuery({
    queryKey: ['users'],
    queryFn: () => api<UserView[]>('GET', '/v1/users'),
    refetchInterval: POLL_MS,
  });
  const [creating, setCreating] = useState(false);
  const [filter, setFilter] = useState('');
  const needle = filter.trim().toLowerCase();
  const shown = (users.data ?? []).filter(
    (user) =>
      needle === '' ||
      user.user_id.toLowerCase().includes(needle) ||
      user.display_name.toLowerCase().includes(needle),
  );
  return (
    <section>
      <div className="page-head">
        <h1>{t('users.title')}</h1>
        <button
          type="button"
          className="primary"
          onClick={() => {
            setCreating(true);
          }}
        >
          {t('users.newUser')}
        </button>
      </div>
      <ErrorText error={users.error} />
      <div className="filter">
        <Field
          label={t('screens.filterUsers')}
          type="search"
          value={filter}
          onChange={(e) => {
            setFilter(e.target.value);
          }}
        />
      </div>
      <DataTable
        columns={[t('users.userId'), t('users.displayName'), t('users.role'), t('users.grants')]}
      >
        {shown.map((user) => (
          <tr key={user.user_id}>
            <td>
              <Link to={`/users/${encodeURIComponent(user.user_id)}`}>{user.user_id}</Link>
            </td>
            <td>{user.display_name}</td>
            <td>{user.role}</td>
            <td>{user.grant_count}</td>
          </tr>
        ))}
      </DataTable>
      {creating && (
        <NewUserDialog
          onClose={() => {
            setCreating(false);
          }}
        />
      )}
    </section>
  );
}

function NewUserDialog({ onClose }: { onClose: () => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const [form, setForm] = useState<CreateUserRequest>({
    user_id: '',
    display_name: '',
    role: 'user',
    initial_password: '',
    password_change_required: true,
  });
  const [errors, setErrors] = useState<Partial<Record<keyof CreateUserRequest, string>>>({});
  const create = useMutation({
    mutationFn: (body: CreateUserRequest) => api<UserView>('POST', '/v1/users', body),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ['users'] });
      onClose();
    },
  });
  const submit = () => {
    const found: typeof errors = {};
    if (!form.user_id.trim()) found.user_id = t('common.required', { field: t('users.userId') });
    if (!form.display_name.trim())
      found.display_name = t('common.required', { field: t('users.displayName') });
    if (Array.from(form.initial_password).length < MIN_PASSWORD_CHARS)
      found.initial_password = t('onboarding.tooShort', { count: MIN_PASSWORD_CHARS });
    setErrors(found);
    if (Object.keys(found).length === 0) create.mutate(form);
  };
  return (
    <FormDialog
      title={t('users.newUser')}
      onClose={onClose}
      onSubmit={submit}
      error={create.error}
      submitLabel={t('common.save')}
    >
      <Field
        label={t('users.userId')}
        value={form.user_id}
        onChange={(e) => {
          setForm({ ...form, user_id: e.target.value });
        }}
        error={errors.user_id}
      />
      <Field
        label={t('users.displayName')}
        value={form.display_name}
        onChange={(e) => {
          setForm({ ...form, display_name: e.target.value });
        }}
        error={errors.display_name}
      />
      <SelectField
        label={t('users.role')}
        value={form.role ?? 'user'}
        onChange={(value) => {
          setForm({ ...form, role: value as Role });
        }}
        options={[
          { value: 'user', label: 'user' },
          { value: 'superadmin', label: 'superadmin' },
        ]}
      />
      <Field
        label={t('users.initialPassword')}
        type="password"
        value={form.initial_password}
        onChange={(e) => {
          setForm({ ...form, initial_password: e.target.value });
        }}
        error={errors.initial_password}
        autoComplete="new-password"
      />
      <label className="toggle">
        <input
          type="checkbox"
          checked={form.password_change_required ?? true}
          onChange={(e) => {
            setForm({ ...form, password_change_required: e.target.checked });
          }}
        />
        {t('users.requireChange')}
      </label>
    </FormDialog>
  );
}
