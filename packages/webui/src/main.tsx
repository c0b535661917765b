/** Entry point: theme and language first (no flash of the wrong theme), then the app. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { App } from './App.js';
import './i18n/index.js';
import './styles.css';
import { applyTheme, storedTheme } from './theme.js';

applyTheme(storedTheme());
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  applyTheme(storedTheme());
});
// Earlier versions kept a bearer token in web storage; a session cookie is the only credential now.
for (const store of [localStorage, sessionStorage]) store.removeItem('portunus.token');

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
