/**
 * Settings (reference §8 `/settings`): theme and language for everyone; the client connect
 * address (advertised endpoint override) for a superadmin, with the server's 422 shown inline.
 */
import type { AdvertisedEndpointView } from '@portunus/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { api } from '../http.js';
import { LANGUAGES, setLanguage } from '../i18n/index.js';
import { setTheme, storedTheme, type ThemeChoice } from '../theme.js';
import { ErrorText, Field, SelectField } from '../ui.js';

export function SettingsPage({ isSuperadmin }: { isSuperadmin: boolean }) {
  const { t, i18n } = useTranslation();
  const [theme, setThemeState] = useState<ThemeChoice>(storedTheme);
  return (
    <section>
      <div className="page-head">
        <h1>{t('settings.title')}</h1>
      </div>
      <div className="card">
        <SelectField
          label={t('settings.theme')}
          value={theme}
          onChange={(value) => {
            const choice = value === 'light' || value === 'dark' ? value : 'system';
            setTheme(choice);
            setThemeState(choice);
          }}
          options={[
            { value: 'light', label: t('settings.light') },
            { value: 'dark', label: t('settings.dark') },
            { value: 'system', label: t('settings.system') },
          ]}
        />
        <SelectField
          label={t('settings.language')}
          value={i18n.language}
          onChange={setLanguage}
          options={LANGUAGES.map((language) => ({ value: language.code, label: language.label }))}
        />
      </div>
      {isSuperadmin && <ConnectAddress />}
    </section>
  );
}

function ConnectAddress() {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const view = useQuery({
    queryKey: ['advertised-endpoint'],
    queryFn: () => api<AdvertisedEndpointView>('GET', '/v1/settings/advertised-endpoint'),
  });
  const [value, setValue] = useState('');
  const save = useMutation({
    mutationFn: (next: string | null) =>
      api<AdvertisedEndpointView>('PUT', '/v1/settings/advertised-endpoint', {
        advertised_endpoint: next,
      }),
    onSuccess: (answer) => {
      queryClient.setQueryData(['advertised-endpoint'], answer);
    },
  });
  return (
    <div className="card">
      <h2>{t('settings.connectAddress')}</h2>
      {view.data && (
        <p>
          {t('settings.effective', {
            value: view.data.effective ?? '—',
            source: view.data.source ?? '—',
          })}
          {view.data.diagnostic && <small className="muted"> {view.data.diagnostic}</small>}
        </p>
      )}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          save.mutate(value.trim());
        }}
      >
        <Field
          label={t('settings.override')}
          value={value}
          onChange={(e) => {
            setValue(e.target.value);
          }}
          placeholder={view.data?.override ?? ''}
        />
        <ErrorText error={save.error ?? view.error} />
        <div className="buttons">
          <button
            type="button"
            onClick={() => {
              save.mutate(null);
            }}
          >
            {t('settings.clear')}
          </button>
          <button type="submit" className="primary">
            {t('common.save')}
          </button>
        </div>
      </form>
    </div>
  );
}
