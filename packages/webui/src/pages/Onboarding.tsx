/**
 * First-superadmin onboarding (reference §8 `/onboarding`): setup token, user id, display name and
 * the password twice, checked here before the request so each field names its own problem; after
 * success the app goes to /login (onboarding sets no cookie).
 */
import { MIN_PASSWORD_CHARS, type OnboardingRequest, type OnboardingResponse } from '@portunus/api';
import { useState, type SyntheticEvent } from 'react';
import { useTranslation } from 'react-i18next';

import { api } from '../http.js';
import { ErrorText, Field } from '../ui.js';

export type OnboardingErrors = Partial<Record<keyof OnboardingRequest, string>>;

/** Field-by-field checks; the keys are the request's own field names. */
export function validateOnboarding(
  form: OnboardingRequest,
  t: (key: string, options?: Record<string, unknown>) => string,
): OnboardingErrors {
  const errors: OnboardingErrors = {};
  const required = (key: keyof OnboardingRequest, label: string) => {
    if (!form[key]?.trim()) errors[key] = t('common.required', { field: label });
  };
  required('setup_token', t('onboarding.setupToken'));
  required('user_id', t('onboarding.userId'));
  required('display_name', t('onboarding.displayName'));
  if (Array.from(form.password).length < MIN_PASSWORD_CHARS) {
    errors.password = t('onboarding.tooShort', { count: MIN_PASSWORD_CHARS });
  }
  if (form.password_confirm !== form.password) errors.password_confirm = t('onboarding.mismatch');
  return errors;
}

export function OnboardingPage({ onDone }: { onDone: () => void }) {
  const { t } = useTranslation();
  const [form, setForm] = useState<OnboardingRequest>({
    setup_token: '',
    user_id: '',
    display_name: '',
    password: '',
    password_confirm: '',
  });
  const [errors, setErrors] = useState<OnboardingErrors>({});
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (key: keyof OnboardingRequest) => (event: { target: { value: string } }) => {
    setForm({ ...form, [key]: event.target.value });
  };
  const submit = async (event: SyntheticEvent) => {
    event.preventDefault();
    const found = validateOnboarding(form, t);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    setFailure(null);
    try {
      await api<OnboardingResponse>('POST', '/v1/auth/onboarding', form);
      onDone();
    } catch (error) {
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="auth-page">
      <form className="card auth-card" onSubmit={(event) => void submit(event)} noValidate>
        <h1>{t('onboarding.title')}</h1>
        <p className="muted">{t('onboarding.intro')}</p>
        <Field
          label={t('onboarding.setupToken')}
          value={form.setup_token}
          onChange={set('setup_token')}
          error={errors.setup_token}
          autoComplete="off"
        />
        <Field
          label={t('onboarding.userId')}
          value={form.user_id}
          onChange={set('user_id')}
          error={errors.user_id}
          autoComplete="username"
        />
        <Field
          label={t('onboarding.displayName')}
          value={form.display_name}
          onChange={set('display_name')}
          error={errors.display_name}
        />
        <Field
          label={t('onboarding.password')}
          type="password"
          value={form.password}
          onChange={set('password')}
          error={errors.password}
          autoComplete="new-password"
        />
        <Field
          label={t('onboarding.confirmPassword')}
          type="password"
          value={form.password_confirm}
          onChange={set('password_confirm')}
          error={errors.password_confirm}
          autoComplete="new-password"
        />
        <ErrorText error={failure} />
        <button type="submit" className="primary" disabled={busy}>
          {t('onboarding.submit')}
        </button>
      </form>
    </main>
  );
}
