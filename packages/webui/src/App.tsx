/**
 * The app shell: routing, the session gate and the sidebar. The gate sends everyone to
 * /onboarding while no superadmin exists, to /login without a session, and back to /login with
 * "Session expired" when any call answers 401 after a session was seen. Superadmin-only pages
 * are neither linked nor routed for a user (the server enforces RBAC either way).
 */
import type { AuthStatus, Me } from '@portunus/api';
import { QueryClient, QueryClientProvider, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import {
  BrowserRouter,
  Navigate,
  NavLink,
  Route,
  Routes,
  useLocation,
  useNavigate,
} from 'react-router';

import { ApiError, api, setUnauthorizedHandler } from './http.js';
import { ClientPage } from './pages/Client.js';
import { ClientsPage } from './pages/Clients.js';
import { DashboardPage } from './pages/Dashboard.js';
import { LoginPage } from './pages/Login.js';
import { AuditPage, MetricsPage } from './pages/Observe.js';
import { OnboardingPage } from './pages/Onboarding.js';
import { RevisionsPage } from './pages/Revisions.js';
import { RulePage } from './pages/Rule.js';
import { RulesPage } from './pages/Rules.js';
import { SettingsPage } from './pages/Settings.js';
import { UserPage } from './pages/User.js';
import { UsersPage } from './pages/Users.js';

export function App() {
  const [queryClient] = useState(
    () =>
      new QueryClient({
        defaultOptions: {
          queries: {
            retry: (count, error) => !(error instanceof ApiError) && count < 2,
            refetchOnWindowFocus: false,
          },
        },
      }),
  );
  return (
    <QueryClientProvider client={queryClient}>
      <BrowserRouter>
        <Gate />
      </BrowserRouter>
    </QueryClientProvider>
  );
}

function Gate() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const location = useLocation();
  const queryClient = useQueryClient();
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const hadSession = useRef(false);
  const status = useQuery({
    queryKey: ['auth-status'],
    queryFn: () => api<AuthStatus>('GET', '/v1/auth/status'),
  });

  useEffect(() => {
    setUnauthorizedHandler(() => {
      if (hadSession.current) setNotice(t('app.sessionExpired'));
      hadSession.current = false;
      queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== 'auth-status' });
      void navigate('/login', { replace: true });
    });
  }, [navigate, queryClient, t]);

  if (status.isLoading) return <p className="muted center">{t('app.loading')}</p>;
  if (status.data?.onboarding_required && location.pathname !== '/onboarding')
    return <Navigate to="/onboarding" replace />;
  const signedIn = () => {
    setNotice(undefined);
    void queryClient.invalidateQueries();
    void navigate('/', { replace: true });
  };
  return (
    <Routes>
      <Route
        path="/onboarding"
        element={
          <OnboardingPage
            onDone={() => {
              void queryClient
                .invalidateQueries({ queryKey: ['auth-status'] })
                .then(() => navigate('/login', { replace: true }));
            }}
          />
        }
      />
      <Route path="/login" element={<LoginPage notice={notice} onSignedIn={signedIn} />} />
      <Route
        path="*"
        element={
          <Shell
            onSession={() => {
              hadSession.current = true;
            }}
          />
        }
      />
    </Routes>
  );
}

function Shell({ onSession }: { onSession: () => void }) {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const me = useQuery({
    queryKey: ['me'],
    queryFn: () => api<Me>('GET', '/v1/users/me'),
    retry: false,
  });
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => {
    if (me.data) onSession();
  }, [me.data, onSession]);
  if (me.error) return <Navigate to="/login" replace />;
  if (!me.data) return <p className="muted center">{t('app.loading')}</p>;
  const isSuperadmin = me.data.role === 'superadmin';
  const signOut = async () => {
    try {
      await api('POST', '/v1/auth/logout');
    } finally {
      queryClient.clear();
      void navigate('/login', { replace: true });
    }
  };
  const links: [string, string, boolean][] = [
    ['/', 'nav.dashboard', true],
    ['/users', 'nav.users', isSuperadmin],
    ['/rules', 'nav.rules', true],
    ['/clients', 'nav.clients', true],
    ['/audit', 'nav.audit', isSuperadmin],
    ['/metrics', 'nav.metrics', isSuperadmin],
    ['/settings', 'nav.settings', true],
  ];
  const admin = (element: React.ReactNode) => (isSuperadmin ? element : <Forbidden />);
  return (
    <div className="shell">
      <nav className={menuOpen ? 'sidebar open' : 'sidebar'} aria-label="main">
        <div className="brand">
          <span>{t('app.name')}</span>
          <button
            type="button"
            className="ghost menu-toggle"
            aria-label="menu"
            onClick={() => {
              setMenuOpen(!menuOpen);
            }}
          >
            ☰
          </button>
        </div>
        <ul>
          {links
            .filter(([, , shown]) => shown)
            .map(([to, key]) => (
              <li key={to}>
                <NavLink
                  to={to}
                  end={to === '/'}
                  onClick={() => {
                    setMenuOpen(false);
                  }}
                >
                  {t(key)}
                </NavLink>
              </li>
            ))}
        </ul>
        <div className="user-menu">
          <span>
            {me.data.display_name} <small className="muted">({me.data.role})</small>
          </span>
          <button type="button" onClick={() => void signOut()}>
            {t('app.signOut')}
          </button>
        </div>
      </nav>
      <main className="content">
        <Routes>
          <Route path="/" element={<DashboardPage me={me.data} />} />
          <Route path="/users" element={admin(<UsersPage />)} />
          <Route path="/users/:userId" element={admin(<UserPage />)} />
          <Route path="/grants/*" element={<Navigate to="/users" replace />} />
          <Route path="/rules" element={<RulesPage isSuperadmin={isSuperadmin} />} />
          <Route path="/rules/:ruleId" element={<RulePage />} />
          <Route path="/rules/revisions" element={admin(<RevisionsPage />)} />
          <Route path="/clients" element={<ClientsPage isSuperadmin={isSuperadmin} />} />
          <Route path="/clients/:clientId" element={<ClientPage isSuperadmin={isSuperadmin} />} />
          <Route path="/audit" element={admin(<AuditPage />)} />
          <Route path="/metrics" element={admin(<MetricsPage />)} />
          <Route path="/settings" element={<SettingsPage isSuperadmin={isSuperadmin} />} />
          <Route path="/forbidden" element={<Forbidden />} />
          <Route path="*" element={<p>{t('common.notFound')}</p>} />
        </Routes>
      </main>
    </div>
  );
}

function Forbidden() {
  const { t } = useTranslation();
  return <p className="error">{t('common.forbidden')}</p>;
}
