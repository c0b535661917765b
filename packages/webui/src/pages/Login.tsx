/**
 * Sign-in (reference §8 `/login`): user id and password; when the server answers
 * `password_change_required`, the same page asks for a new password inline before entering the
 * app. "Session expired" is shown when a 401 sent the user here.
 */
import {
  MIN_PASSWORD_CHARS,
  type ChangePasswordRequest,
  type LoginRequest,
  type LoginResponse,
} from '@portunus/api';
import { useState, type SyntheticEvent } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError, api } from '../http.js';
import { ErrorText, Field } from '../ui.js';

export function LoginPage({
  notice,
  onSignedIn,
}: {
  notice?: string | undefined;
  onSignedIn: () => void;
}) {
  const { t } = useTranslation();
  const [form, setForm] = useState<LoginRequest>({ user_id: '', password: '' });
  const [errors, setErrors] = useState<Partial<Record<keyof LoginRequest, string>>>({});
  const [failure, setFailure] = useState<unknown>(null);
  const [mustChange, setMustChange] = useState(false);
  const [busy, setBusy] = useState(false);

  const submit = async (event: SyntheticEvent) => {
    event.preventDefault();
    const found: typeof errors = {};
    if (!form.user_id.trim()) found.user_id = t('common.required', { field: t('login.userId') });
    if (!form.password) found.password = t('common.required', { field: t('login.password') });
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    setFailure(null);
    try {
      const answer = await api<LoginResponse>('POST', '/v1/auth/login', form);
      if (answer.password_change_required) setMustChange(true);
      else onSignedIn();
    } catch (error) {
      setFailure(
        error instanceof ApiError && error.code === 'invalid_login'
          ? new Error(t('login.invalid'))
          : error,
      );
    } finally {
      setBusy(false);
    }
  };

  if (mustChange) return <ChangePassword current={form.password} onDone={onSignedIn} />;
  return (
    <main className="auth-page">
      <form className="card auth-card" onSubmit={(event) => void submit(event)} noValidate>
        <h1>{t('login.title')}</h1>
        {notice && (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        <Field
          label={t('login.userId')}
          value={form.user_id}
          onChange={(e) => {
            setForm({ ...form, user_id: e.target.value });
          }}
          error={errors.user_id}
          autoComplete="username"
        />
        <Field
          label={t('login.password')}
          type="password"
          value={form.password}
          onChange={(e) => {
            setForm({ ...form, password: e.target.value });
          }}
          error={errors.password}
          autoComplete="current-password"
        />
        <ErrorText error={failure} />
        <button type="submit" className="primary" disabled={busy}>
          {t('login.submit')}
        </button>
      </form>
    </main>
  );
}

function ChangePassword({ current, onDone }: { current: string; onDone: () => void }) {
  const { t } = useTranslation();
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [errors, setErrors] = useState<{ new_password?: string; new_password_confirm?: string }>(
    {},
  );
  const [failure, setFailure] = useState<unknown>(null);
  const submit = async (event: SyntheticEvent) => {
    event.preventDefault();
    const found: typeof errors = {};
    if (Array.from(next).length < MIN_PASSWORD_CHARS)
      found.new_password = t('onboarding.tooShort', { count: MIN_PASSWORD_CHARS });
    if (confirm !== next) found.new_password_confirm = t('onboarding.mismatch');
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    const body: ChangePasswordRequest = {
      current_password: current,
      new_password: next,
      new_password_confirm: confirm,
    };
    try {
      await api('POST', '/v1/users/me/password', body);
      onDone();
    } catch (error) {
      setFailure(error);
    }
  };
  return (
    <main className="auth-page">
      <form className="card auth-card" onSubmit={(event) => void submit(event)} noValidate>
        <h1>{t('login.changeTitle')}</h1>
        <p className="muted">{t('login.changeIntro')}</p>
        <Field
          label={t('login.newPassword')}
          type="password"
          value={next}
          onChange={(e) => {
            setNext(e.target.value);
          }}
          error={errors.new_password}
          autoComplete="new-password"
        />
        <Field
          label={t('login.confirmNewPassword')}
          type="password"
          value={confirm}
          onChange={(e) => {
            setConfirm(e.target.value);
          }}
          error={errors.new_password_confirm}
          autoComplete="new-password"
        />
        <ErrorText error={failure} />
        <button type="submit" className="primary">
          {t('login.changeSubmit')}
        </button>
      </form>
    </main>
  );
}
