/**
 * i18next set up with the two bundled languages (English, 简体中文). The chosen language is a
 * preference, not a secret, so it may live in localStorage.
 */
import i18n from 'i18next';
import { initReactI18next } from 'react-i18next';

import { en } from './en.js';
import { zhCN } from './zh-CN.js';

export const LANGUAGES = [
  { code: 'en', label: 'English' },
  { code: 'zh-CN', label: '简体中文' },
] as const;

const LANGUAGE_KEY = 'portunus.language';

export function storedLanguage(): string {
  try {
    return localStorage.getItem(LANGUAGE_KEY) ?? 'en';
  } catch {
    return 'en';
  }
}

export function setLanguage(code: string): void {
  localStorage.setItem(LANGUAGE_KEY, code);
  void i18n.changeLanguage(code);
  document.documentElement.lang = code;
}

void i18n.use(initReactI18next).init({
  resources: { en: { translation: en }, 'zh-CN': { translation: zhCN } },
  lng: storedLanguage(),
  fallbackLng: 'en',
  interpolation: { escapeValue: false },
});

export default i18n;
