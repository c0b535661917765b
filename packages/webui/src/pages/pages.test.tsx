// Component tests of the rules-revisions, client and audit screens in jsdom: the revision diff is
// rendered field by field with what a restore changes marked; Older/Newer paging walks the
// envelope's cursors and back; the rename form names a blank name on its field and sends nothing;
// the metrics filter and the audit query builder. fetch is a recorder answering by URL.
import type { AuditEntry, AuditEnvelope, ClientView } from '@portunus/api';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import '../i18n/index.js';
import { RenameDialog } from './Clients.js';
import { currentCursor, newer, older, pageNumber } from './cursor-pages.js';
import { AuditPage, auditQuery, auditTime, filterMetrics, localToRfc3339 } from './Observe.js';
import { DiffBlock } from './Revisions.js';
import { diffEntries, type RevisionDiff, type RevisionRule } from './revision-diff.js';

interface Sent {
  method: string;
  url: string;
  body: string | undefined;
}
let sent: Sent[] = [];
let answer: (url: string) => unknown = () => ({});

beforeEach(() => {
  sent = [];
  globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    sent.push({
      method: init?.method ?? 'GET',
      url,
      body: typeof init?.body === 'string' ? init.body : undefined,
    });
    return Promise.resolve(
      new Response(JSON.stringify(answer(url)), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      }),
    );
  };
});
afterEach(cleanup);

function withQueries(children: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return <QueryClientProvider client={client}>{children}</QueryClientProvider>;
}

const rule = (patch: Partial<RevisionRule> = {}): RevisionRule => ({
  rule_id: 7,
  client_id: '01HZZZZZZZZZZZZZZZZZZZZZZ1',
  client_name: 'edge-1',
  owner_user_id: 'root',
  protocol: 'tcp',
  listen_port: 18080,
  prefer_ipv6: false,
  targets: [{ host: '127.0.0.1', port: 9000, priority: 0, proxy_protocol: null }],
  allowed_sources: [],
  denied_sources: [],
  ...patch,
});

const diff: RevisionDiff = {
  revision: 3,
  head: 5,
  added: [rule({ rule_id: 9, listen_port: 19000 })],
  removed: [rule({ rule_id: 2, sni_pattern: 'a.example.com' })],
  changed: [
    {
      rule_id: 7,
      fields: ['targets', 'rate_limit'],
      revision: rule(),
      now: rule({
        targets: [{ host: '127.0.0.1', port: 9001, priority: 0, proxy_protocol: 'v2' }],
        rate_limit: { bandwidth_in_bps: 1000 },
      }),
    },
  ],
};

describe('the revision diff', () => {
  it('orders entries by rule id and says what a restore does to each', () => {
    const entries = diffEntries(diff);
    expect(entries.map((entry) => [entry.ruleId, entry.change])).toEqual([
      [2, 'recreate'],
      [7, 'revert'],
      [9, 'remove'],
    ]);
  });

  it('marks exactly the fields that differ on an edited rule, keeping the others as context', () => {
    const edited = diffEntries(diff).find((entry) => entry.change === 'revert');
    const differing = edited?.rows.filter((row) => row.differs).map((row) => row.field);
    expect(differing).toEqual(['targets', 'rate_limit']);
    const targets = edited?.rows.find((row) => row.field === 'targets');
    expect(targets?.now).toBe('127.0.0.1:9001 (p0 PROXY v2)');
    expect(targets?.restored).toBe('127.0.0.1:9000 (p0)');
    expect(edited?.rows.find((row) => row.field === 'rate_limit')).toMatchObject({
      now: 'bandwidth_in_bps=1000',
      restored: '—',
    });
    expect(edited?.rows.find((row) => row.field === 'listen_port')?.differs).toBe(false);
  });

  it('renders the diff as a table with removed and inserted cells', () => {
    const edited = diffEntries(diff).find((entry) => entry.change === 'revert');
    if (!edited) throw new Error('no edited entry');
    render(<DiffBlock entry={edited} />);
    expect(screen.getByText('edited since — restore reverts it')).toBeTruthy();
    const row = screen.getByText('targets').closest('tr');
    if (!row) throw new Error('no targets row');
    expect(row.className).toBe('differs');
    expect(within(row).getByText(/9001/).closest('td')?.className).toBe('del');
    expect(within(row).getByText(/9000/).closest('td')?.className).toBe('ins');
    const same = screen.getByText('listen_port').closest('tr');
    expect(same?.className).toBe('');
  });

  it('shows an added rule (restore removes it) with its set fields only', () => {
    const added = diffEntries(diff).find((entry) => entry.change === 'remove');
    expect(added?.title).toBe('#9 edge-1 tcp :19000');
    expect(added?.rows.every((row) => row.restored === '—')).toBe(true);
    expect(added?.rows.map((row) => row.field)).not.toContain('sni_pattern');
  });
});

describe('Older/Newer paging over cursors', () => {
  it('walks older along next_cursor and back newer to the first page', () => {
    let trail = older(older([], 'c1'), 'c2');
    expect(currentCursor(trail)).toBe('c2');
    expect(pageNumber(trail)).toBe(3);
    trail = newer(trail);
    expect(currentCursor(trail)).toBe('c1');
    trail = newer(newer(trail));
    expect(currentCursor(trail)).toBeUndefined();
    expect(pageNumber(trail)).toBe(1);
  });

  it('builds the live array query and the history envelope query', () => {
    expect(auditQuery({ mode: 'live', outcome: 'deny', limit: 100 })).toBe(
      '/v1/audit?limit=100&outcome=deny',
    );
    expect(
      auditQuery({
        mode: 'history',
        outcome: '',
        limit: 10,
        since: '2026-01-01T00:00:00.000Z',
        cursor: 'MTI',
      }),
    ).toBe(
      '/v1/audit?limit=10&since=2026-01-01T00%3A00%3A00.000Z&until=9999-12-31T23%3A59%3A59Z&cursor=MTI',
    );
    expect(localToRfc3339('')).toBeUndefined();
    expect(localToRfc3339('not a time')).toBeUndefined();
    expect(localToRfc3339('2026-03-04T05:06')).toMatch(/^2026-03-0\dT\d\d:06:00\.000Z$/);
  });

  it('pages the audit history Older then Newer, fetching with the cursor it was given', async () => {
    const pages: Record<string, AuditEnvelope> = {
      first: {
        entries: [row('/v1/rules/2'), row('/v1/rules/1')],
        next_cursor: 'c-older',
        count: 2,
      },
      second: { entries: [row('/v1/clients')], count: 1 },
    };
    answer = (url) =>
      url.includes('cursor=c-older')
        ? pages['second']
        : url.includes('until=')
          ? pages['first']
          : [row('/v1/live')];
    render(withQueries(<AuditPage />));
    await screen.findByText('/v1/live');
    fireEvent.click(screen.getByRole('button', { name: 'History' }));
    await screen.findByText('/v1/rules/2');
    expect(screen.getByRole('button', { name: 'Newer' })).toHaveProperty('disabled', true);
    fireEvent.click(screen.getByRole('button', { name: 'Older' }));
    await screen.findByText('/v1/clients');
    expect(screen.queryByText('/v1/rules/2')).toBeNull();
    expect(screen.getByRole('button', { name: 'Older' })).toHaveProperty('disabled', true);
    expect(screen.getByText('Page 2')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Newer' }));
    await screen.findByText('/v1/rules/2');
    // The first history page was kept (frozen), not fetched again.
    expect(sent.filter((request) => request.url.includes('until=')).length).toBe(2);
    expect(sent.at(-1)?.url).toContain('cursor=c-older');
  });

  it('reads the time the server writes (`timestamp`)', () => {
    expect(auditTime({ ...row('/x'), timestamp: '2026-05-05T00:00:00Z' })).toBe(
      '2026-05-05T00:00:00Z',
    );
  });
});

function row(path: string): AuditEntry {
  return {
    timestamp: '2026-01-01T00:00:00Z',
    actor: 'root',
    role: 'superadmin',
    method: 'POST',
    path,
    outcome: 'allow',
  };
}

describe('the rename form', () => {
  const client: ClientView = {
    client_id: '01HZZZZZZZZZZZZZZZZZZZZZZ1',
    client_name: 'edge-1',
    provisioned_at: '2026-01-01T00:00:00Z',
    revoked_at: null,
    connected: true,
    client_address: null,
    remote_addr: null,
    connected_at: null,
  };

  it('names a blank name on its field and sends nothing', () => {
    render(withQueries(<RenameDialog client={client} onClose={() => undefined} />));
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: '   ' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(screen.getByText('Name is required')).toBeTruthy();
    expect(sent).toEqual([]);
  });

  it('sends PATCH …/name with the new name', async () => {
    let closed = false;
    render(withQueries(<RenameDialog client={client} onClose={() => (closed = true)} />));
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'edge-renamed' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => {
      expect(closed).toBe(true);
    });
    expect(sent).toEqual([
      {
        method: 'PATCH',
        url: `/v1/clients/${client.client_id}/name`,
        body: JSON.stringify({ client_name: 'edge-renamed' }),
      },
    ]);
  });
});

describe('the metrics filter', () => {
  it('keeps the lines that contain the filter, case-insensitively', () => {
    const text = '# HELP portunus_clients_connected x\nportunus_clients_connected 1\nother 2';
    expect(filterMetrics(text, 'CLIENTS')).toBe(
      '# HELP portunus_clients_connected x\nportunus_clients_connected 1',
    );
    expect(filterMetrics(text, '  ')).toBe(text);
  });
});
