// Component tests of the user page's dialogs and the dashboard in jsdom: real components, real
// i18n and TanStack Query, and a recording fetch. Each invalid input is named on its own field
// and nothing is sent; a valid form sends the body the server expects; a refusal is shown by the
// server's code and message. The pure helpers behind the alert banner and the chart are checked
// directly.
import type { ClientView, GrantView, QuotaView, RuleView } from '@portunus/api';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { MemoryRouter, Route, Routes } from 'react-router';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import '../i18n/index.js';
import { deriveAlerts, quotaLevel, ruleBytesFromMetrics } from './alerts.js';
import { DashboardPage } from './Dashboard.js';
import { withEmptyBuckets } from './traffic.js';
import { UserPage } from './User.js';
import { GrantDialog, QuotaDialog, ResetPasswordDialog } from './UserDialogs.js';
import { UsersPage } from './Users.js';

interface Sent {
  method: string;
  url: string;
  body: unknown;
}
let sent: Sent[] = [];
/** Answers by "METHOD path-prefix"; anything else is a 200 `{}`. */
let answers: Record<string, { status: number; body: unknown }> = {};

beforeEach(() => {
  sent = [];
  answers = {};
  globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = init?.method ?? 'GET';
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined;
    sent.push({ method, url, body });
    const key = Object.keys(answers)
      .filter((prefix) => `${method} ${url}`.startsWith(prefix))
      .sort((a, b) => b.length - a.length)[0];
    const answer = key ? answers[key] : undefined;
    return Promise.resolve(
      new Response(JSON.stringify(answer?.body ?? {}), {
        status: answer?.status ?? 200,
        headers: { 'content-type': 'application/json' },
      }),
    );
  };
});
afterEach(cleanup);

function withQuery(node: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter>{node}</MemoryRouter>
    </QueryClientProvider>,
  );
}

const type = (label: string, value: string) => {
  fireEvent.change(screen.getByLabelText(label), { target: { value } });
};
const writes = () => sent.filter((request) => request.method !== 'GET');

const client = (name: string, connected = true): ClientView => ({
  client_id: `id-${name}`,
  client_name: name,
  provisioned_at: '2026-01-01T00:00:00Z',
  revoked_at: null,
  connected,
  client_address: '127.0.0.1',
  remote_addr: null,
  connected_at: null,
});

const quota = (used: number, limit: number, extra: Partial<QuotaView> = {}): QuotaView => ({
  user_id: 'alice',
  client_id: 'id-edge',
  client_name: 'edge',
  monthly_bytes: limit,
  billing_anchor: 0,
  current_period_started_at: 0,
  current_period_ends_at: 2_000_000_000,
  current_period_bytes_used: used,
  budget_remaining_bytes: limit - used,
  exhausted_at: null,
  exhausted: false,
  created_at: 0,
  updated_at: 0,
  enforcement: 'hard',
  period: 'monthly',
  reset_day: null,
  ...extra,
});

describe('quota dialog', () => {
  const open = (existing?: QuotaView) =>
    withQuery(
      <QuotaDialog
        userId="alice"
        quota={existing}
        clients={[{ client_id: 'id-edge', client_name: 'edge' }]}
        onClose={() => undefined}
      />,
    );

  it('labels every field', () => {
    open();
    for (const label of [
      'Client',
      'Limit per period',
      'Unit',
      'Period',
      'Enforcement',
      'Reset day',
    ])
      expect(screen.getByLabelText(label)).toBeTruthy();
  });

  it('names a missing or negative limit and a bad reset day, sending nothing', () => {
    open();
    fireEvent.click(screen.getByRole('button', { name: 'Save quota' }));
    expect(screen.getByText('Must be a number of bytes, 0 or more')).toBeTruthy();
    type('Limit per period', '-1');
    type('Reset day', '1.5');
    fireEvent.click(screen.getByRole('button', { name: 'Save quota' }));
    expect(screen.getByText('Must be a number of bytes, 0 or more')).toBeTruthy();
    expect(screen.getByText('Must be a day of the month')).toBeTruthy();
    expect(writes()).toEqual([]);
    // Editing a field takes its message away; the other field keeps its own.
    type('Limit per period', '2');
    expect(screen.queryByText('Must be a number of bytes, 0 or more')).toBeNull();
    expect(screen.getByText('Must be a day of the month')).toBeTruthy();
  });

  it('sends limit, period, enforcement and reset day as the PUT body', async () => {
    open();
    type('Limit per period', '5');
    type('Unit', 'GiB');
    type('Enforcement', 'soft');
    type('Reset day', '15');
    fireEvent.click(screen.getByRole('button', { name: 'Save quota' }));
    await waitFor(() => {
      expect(writes()).toEqual([
        {
          method: 'PUT',
          url: '/v1/users/alice/quotas/id-edge',
          body: {
            monthly_bytes: 5 * 1024 ** 3,
            period: 'monthly',
            enforcement: 'soft',
            reset_day: 15,
          },
        },
      ]);
    });
  });

  it('drops the reset day for a one-off allowance and can clear usage when editing', async () => {
    open(quota(10, 3 * 1024 ** 2, { reset_day: 3 }));
    expect(screen.getByLabelText<HTMLInputElement>('Limit per period').value).toBe('3');
    expect(screen.getByLabelText<HTMLSelectElement>('Unit').value).toBe('MiB');
    type('Period', 'never');
    expect(screen.getByLabelText<HTMLInputElement>('Reset day').disabled).toBe(true);
    fireEvent.click(screen.getByLabelText('Also clear this period’s usage'));
    fireEvent.click(screen.getByRole('button', { name: 'Save quota' }));
    await waitFor(() => {
      expect(writes()[0]?.body).toEqual({
        monthly_bytes: 3 * 1024 ** 2,
        period: 'never',
        enforcement: 'hard',
        clear_period_usage: true,
      });
    });
  });

  it('shows a refusal by the server’s code and message', async () => {
    answers['PUT /v1/users/alice/quotas'] = {
      status: 422,
      body: { error: { code: 'quota_target_not_found', message: 'alice has no grant' } },
    };
    open();
    type('Limit per period', '1');
    fireEvent.click(screen.getByRole('button', { name: 'Save quota' }));
    await screen.findByText('quota_target_not_found: alice has no grant');
  });
});

const grantOf = (): GrantView => ({
  grant_id: 'G1',
  user_id: 'alice',
  client: 'edge',
  client_id: 'id-edge',
  listen_port_start: 2000,
  listen_port_end: 2100,
  protocols: ['tcp'],
  note: '',
  created_at: '2026-01-01T00:00:00Z',
});

describe('grant dialog', () => {
  const grant = grantOf();
  const open = (existing?: GrantView) =>
    withQuery(
      <GrantDialog
        userId="alice"
        grant={existing}
        clients={[client('edge')]}
        onClose={() => undefined}
      />,
    );

  it('names a missing client, bad ports, a reversed range and no protocol, sending nothing', () => {
    open();
    type('First port', '70000');
    fireEvent.click(screen.getByRole('button', { name: 'Save grant' }));
    expect(screen.getByText('Choose a client')).toBeTruthy();
    expect(screen.getAllByText('Must be a port 1–65535')).toHaveLength(2);
    type('First port', '3000');
    type('Last port', '2000');
    fireEvent.click(screen.getByLabelText('TCP'));
    fireEvent.click(screen.getByLabelText('UDP'));
    fireEvent.click(screen.getByRole('button', { name: 'Save grant' }));
    expect(screen.getByText('The last port may not be below the first')).toBeTruthy();
    expect(screen.getByText('Choose at least one protocol')).toBeTruthy();
    expect(writes()).toEqual([]);
  });

  it('adds a grant with the body POST /v1/grants takes', async () => {
    open();
    type('Client', '*');
    type('First port', '1024');
    type('Last port', '65535');
    type('Note', ' lab ');
    fireEvent.click(screen.getByRole('button', { name: 'Save grant' }));
    await waitFor(() => {
      expect(writes()).toEqual([
        {
          method: 'POST',
          url: '/v1/grants',
          body: {
            user_id: 'alice',
            client: '*',
            listen_port_start: 1024,
            listen_port_end: 65535,
            protocols: ['tcp', 'udp'],
            note: 'lab',
          },
        },
      ]);
    });
  });

  it('edits by adding the new grant first, then revoking the old one', async () => {
    open(grant);
    type('Last port', '2200');
    fireEvent.click(screen.getByRole('button', { name: 'Save grant' }));
    await waitFor(() => {
      expect(writes().map((request) => `${request.method} ${request.url}`)).toEqual([
        'POST /v1/grants',
        'DELETE /v1/grants/G1',
      ]);
    });
    expect(writes()[0]?.body).toMatchObject({ client: 'id-edge', listen_port_end: 2200 });
  });

  it('keeps the old grant when the new one is refused', async () => {
    answers['POST /v1/grants'] = {
      status: 422,
      body: { error: { code: 'invalid_port_range', message: 'listen ports 1..0' } },
    };
    open(grant);
    fireEvent.click(screen.getByRole('button', { name: 'Save grant' }));
    await screen.findByText('invalid_port_range: listen ports 1..0');
    expect(writes().map((request) => request.method)).toEqual(['POST']);
  });
});

describe('reset password dialog', () => {
  it('refuses a short password on its field, sending nothing', () => {
    withQuery(<ResetPasswordDialog userId="alice" onClose={() => undefined} />);
    type('New password (optional)', 'short');
    fireEvent.click(screen.getByRole('button', { name: 'Reset password' }));
    expect(screen.getByText('Passwords need at least 12 characters')).toBeTruthy();
    expect(writes()).toEqual([]);
  });

  it('asks for a generated password when blank and shows it once', async () => {
    answers['POST /v1/users/alice/password'] = {
      status: 200,
      body: { user_id: 'alice', sessions_revoked: 2, temporary_password: 'generated-secret' },
    };
    withQuery(<ResetPasswordDialog userId="alice" onClose={() => undefined} />);
    fireEvent.click(screen.getByRole('button', { name: 'Reset password' }));
    expect((await screen.findByTestId('temporary-password')).textContent).toBe('generated-secret');
    expect(writes()[0]?.body).toEqual({});
    expect(screen.getByText('Done. 2 web session(s) signed out.')).toBeTruthy();
  });
});

describe('dashboard', () => {
  const rule = (id: number, healthy: boolean): RuleView => ({
    id,
    client_id: 'id-edge',
    client_name: 'edge',
    listen_port: 2000 + id,
    target_host: '10.0.0.1',
    target_port: 80,
    prefer_ipv6: false,
    protocol: 'tcp',
    state: { kind: 'active' },
    created_at: '',
    last_state_change_at: '',
    owner_user_id: 'alice',
    targets: [
      {
        host: '10.0.0.1',
        port: 80,
        priority: 0,
        proxy_protocol: null,
        health: {
          healthy,
          consecutive_failures: 0,
          last_failure_at_unix_ms: null,
          last_success_at_unix_ms: null,
        },
      },
    ],
    allowed_sources: [],
    denied_sources: [],
  });

  it('shows a superadmin the KPIs, the alerts and the rules ranked by bytes', async () => {
    answers['GET /v1/clients'] = { status: 200, body: [client('edge'), client('far', false)] };
    answers['GET /v1/rules'] = { status: 200, body: [rule(1, true), rule(2, false)] };
    answers['GET /v1/clients/id-edge/quotas'] = { status: 200, body: [quota(90, 100)] };
    answers['GET /v1/clients/id-far/quotas'] = { status: 200, body: [] };
    answers['GET /v1/traffic/global'] = {
      status: 200,
      body: { bucket: '1m', samples: [], total_bytes_in: 1024, total_bytes_out: 1024 },
    };
    answers['GET /v1/metrics'] = {
      status: 200,
      body: 'portunus_rule_bytes_in_total{client="edge",rule="2",owner="alice"} 5000\n',
    };
    withQuery(<DashboardPage me={{ user_id: 'root', role: 'superadmin', display_name: 'Root' }} />);
    await screen.findByText('1 client(s) offline: far');
    await screen.findByText('1 target(s) down: #2 10.0.0.1:80');
    await screen.findByText('1 quota(s) past 80%: alice@edge');
    expect((await screen.findByTestId('kpi-clients')).textContent).toContain('1/2');
    await waitFor(() => {
      expect(screen.getByTestId('kpi-today').textContent).toContain('2.0 KiB');
      expect(screen.getByTestId('kpi-quotas').textContent).toContain('1/0');
      expect(
        [...document.querySelectorAll('[data-top-rule]')].map((row) =>
          row.getAttribute('data-top-rule'),
        ),
      ).toEqual(['2', '1']);
    });
  });
});

describe('users and a user’s page', () => {
  it('filters the users table by id or display name', async () => {
    answers['GET /v1/users'] = {
      status: 200,
      body: [
        { user_id: 'alice', display_name: 'Alice', role: 'user', grant_count: 1 },
        { user_id: 'bob', display_name: 'Robert', role: 'user', grant_count: 0 },
      ],
    };
    withQuery(<UsersPage />);
    await screen.findByText('bob');
    type('Filter by ID or name', 'rob');
    expect(screen.queryByText('alice')).toBeNull();
    expect(screen.getByText('bob')).toBeTruthy();
  });

  it('previews the delete cascade from the credentials, quotas, grants and rules it will take', async () => {
    answers['GET /v1/users/alice'] = {
      status: 200,
      body: { user_id: 'alice', display_name: 'Alice', role: 'user', disabled: false },
    };
    answers['GET /v1/grants'] = { status: 200, body: [{ ...grantOf(), grant_id: 'G1' }] };
    answers['GET /v1/users/alice/quotas'] = { status: 200, body: [quota(900, 1000)] };
    answers['GET /v1/credentials'] = { status: 200, body: [{}, {}] };
    answers['GET /v1/rules'] = { status: 200, body: [{}, {}, {}] };
    answers['GET /v1/clients'] = { status: 200, body: [client('edge')] };
    answers['DELETE /v1/users/alice'] = {
      status: 409,
      body: { error: { code: 'last_superadmin', message: 'no' } },
    };
    const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={queryClient}>
        <MemoryRouter initialEntries={['/users/alice']}>
          <Routes>
            <Route path="/users/:userId" element={<UserPage />} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>,
    );
    await screen.findByText('900 B / 1000 B (90%)');
    expect(screen.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('90');
    fireEvent.click(screen.getByRole('button', { name: 'Delete' }));
    expect((await screen.findByTestId('cascade-preview')).textContent).toBe(
      'This removes the user, 2 credential(s), 1 quota(s), 1 grant(s) and 3 rule(s) on the live clients.',
    );
    fireEvent.click(screen.getByRole('button', { name: 'Confirm' }));
    await screen.findByText('last_superadmin: no');
  });
});

describe('dashboard helpers', () => {
  it('counts a quota at its limit as exhausted and 80% as near', () => {
    expect(quotaLevel(quota(100, 100))).toBe('exhausted');
    expect(quotaLevel(quota(80, 100))).toBe('near');
    expect(quotaLevel(quota(79, 100))).toBe('ok');
    expect(quotaLevel(quota(0, 0))).toBe('ok');
    const alerts = deriveAlerts(
      [client('a', false), { ...client('b', false), revoked_at: 'x' }],
      [],
      [],
    );
    expect(alerts.offlineClients).toEqual(['a']);
  });

  it('sums bytes in and out per rule from the metrics text', () => {
    const text = [
      '# HELP portunus_rule_bytes_in_total Bytes from clients to targets.',
      'portunus_rule_bytes_in_total{client="e",rule="7",owner="a"} 10',
      'portunus_rule_bytes_out_total{client="e",rule="7",owner="a"} 5',
      'portunus_rule_bytes_out_total{client="e",rule="8",owner="a"} 1',
      'portunus_rule_active_connections{client="e",rule="7",owner="a"} 99',
    ].join('\n');
    expect([...ruleBytesFromMetrics(text)]).toEqual([
      [7, 15],
      [8, 1],
    ]);
  });

  it('fills idle buckets with zero so the chart does not join busy ones', () => {
    const view = withEmptyBuckets(
      {
        bucket: '1m',
        samples: [{ ts: 120, bytes_in: 1, bytes_out: 2 }],
        total_bytes_in: 1,
        total_bytes_out: 2,
      },
      30,
      200,
    );
    expect(view.samples.map((sample) => [sample.ts, sample.bytes_in])).toEqual([
      [0, 0],
      [60, 0],
      [120, 1],
      [180, 0],
    ]);
  });
});
