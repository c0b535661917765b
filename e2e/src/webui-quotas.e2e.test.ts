// The web UI's quota and traffic screens in a real browser (Debian's chromium via playwright-core)
// against the built server and a real enrolled client carrying real traffic: a superadmin sets a
// quota for a user from the user page's dialog (a bad limit is named on its field first) and sees
// it in the quota table with its usage bar, filling as bytes flow through the user's rule; the
// dashboard shows the throughput chart and ranks the rule by bytes; both pages fit a phone.
// Screenshots go to $PORTUNUS_SCREENSHOT_DIR (docs/screenshots/) when set. Waits on conditions
// with deadlines, never on fixed sleeps.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import type { Page } from 'playwright-core';

import { launchBrowser, screenshot, type Browser } from './browser.harness.js';
import {
  FleetHarness,
  freePort,
  tcpEcho,
  tcpRoundTrip,
  waitUntil,
  type FleetServer,
} from './fleet.harness.js';

/** The fields of QuotaView and the traffic answer (@portunus/api, which e2e may not import). */
interface QuotaView {
  client_name: string;
  monthly_bytes: number;
  current_period_bytes_used: number;
  reset_day: number | null;
}
interface TrafficAnswer {
  total_bytes_in: number;
  total_bytes_out: number;
}

const h = new FleetHarness();
let server: FleetServer;
let echo: Awaited<ReturnType<typeof tcpEcho>>;
let browser: Browser;
let page: Page;
let base: string;
let alicePort = 0;
let adminPort = 0;
const ADMIN = { id: 'ops', name: 'Ops Admin', password: 'ops has a long password' };
const ALICE = { id: 'alice', name: 'Alice', password: 'alice has a long password' };
const CLIENT = 'edge-web';
const LIMIT_MIB = 1;
/** What alice's rule moves: 440 KiB echoed, so 880 KiB counted, past 80 % of the limit. */
const ALICE_BYTES = 880 * 1024;

async function ok<T>(
  method: string,
  urlPath: string,
  body?: unknown,
  auth: FleetServer['auth'] | { cookie: string } = server.auth,
): Promise<T> {
  const answer = await server.http.request<T>(method, urlPath, { auth, body });
  assert.ok(
    answer.status < 300,
    `${method} ${urlPath}: ${answer.status} ${JSON.stringify(answer.body)}`,
  );
  return answer.body;
}

/** Echoes `bytes` through a rule; both directions count as traffic. */
async function send(port: number, bytes: number): Promise<void> {
  const payload = crypto.randomBytes(bytes);
  assert.ok((await tcpRoundTrip(port, payload, 20_000)).equals(payload));
}

/** A full-page screenshot with the pointer off the chart, so no hover tooltip is in it. */
async function shoot(tab: Page, name: string): Promise<void> {
  await tab.mouse.move(0, 0);
  await screenshot(tab, name);
}

async function signIn(tab: Page, user = ADMIN, heading = 'Dashboard'): Promise<void> {
  await tab.goto(`${base}/login`);
  await tab.getByLabel('User ID').fill(user.id);
  await tab.getByLabel('Password').fill(user.password);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.getByRole('heading', { name: heading }).waitFor();
}

before(async () => {
  echo = await tcpEcho();
  server = await h.fleetServer();
  base = server.http.origin;
  await h.daemon(await h.enroll(server, CLIENT));
  // A superadmin who signs in through the page, and a user with a grant and a rule of her own.
  for (const [user, role] of [
    [ADMIN, 'superadmin'],
    [ALICE, 'user'],
  ] as const) {
    await ok('POST', '/v1/users', {
      user_id: user.id,
      display_name: user.name,
      role,
      initial_password: user.password,
      password_change_required: false,
    });
  }
  await ok('POST', '/v1/grants', {
    user_id: ALICE.id,
    client: CLIENT,
    listen_port_start: 1024,
    listen_port_end: 65535,
    protocols: ['tcp'],
    note: 'lab',
  });
  const login = await server.http.request('POST', '/v1/auth/login', {
    body: { user_id: ALICE.id, password: ALICE.password },
  });
  const cookie = /portunus_session=[^;]+/.exec(login.headers.get('set-cookie') ?? '')?.[0];
  assert.ok(cookie, `alice signs in: ${login.status}`);
  alicePort = await freePort();
  await ok(
    'POST',
    '/v1/rules',
    { client: CLIENT, listen_port: alicePort, target_host: '127.0.0.1', target_port: echo.port },
    { cookie },
  );
  // The superadmin's own rule, so the dashboard has two to rank.
  adminPort = await freePort();
  await ok('POST', '/v1/rules', {
    client: CLIENT,
    listen_port: adminPort,
    target_host: '127.0.0.1',
    target_port: echo.port,
  });
  // Traffic is sent only once the client has bound both rules.
  await waitUntil(async () => {
    const rules = await ok<{ listen_port: number; state: { kind: string } }[]>('GET', '/v1/rules');
    return [alicePort, adminPort].every((port) =>
      rules.some((rule) => rule.listen_port === port && rule.state.kind === 'active'),
    );
  }, 'both rules to be active on the client');
  browser = await launchBrowser();
  page = await browser.context.newPage();
});

after(async () => {
  await browser.close();
  await h.close();
  await echo.close();
});

describe('quotas and traffic in the browser', { timeout: 240_000 }, () => {
  it('sets a quota from the user page and shows it with its usage', async () => {
    await signIn(page);
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('link', { name: ALICE.id }).click();
    await page.locator('tr[data-grant]').getByText('1024–65535').waitFor();
    await page.getByRole('button', { name: 'Set quota' }).click();
    // The dialog names a bad limit on its field and sends nothing.
    await page.getByLabel('Limit per period').fill('-3');
    await page.getByRole('button', { name: 'Save quota' }).click();
    await page.getByText('Must be a number of bytes, 0 or more').waitFor();
    await page.getByLabel('Limit per period').fill(String(LIMIT_MIB));
    await page.getByLabel('Unit').selectOption('MiB');
    await page.getByLabel('Reset day').fill('1');
    await shoot(page, 'quota-dialog');
    await page.getByRole('button', { name: 'Save quota' }).click();
    const row = page.locator(`tr[data-quota="${CLIENT}"]`);
    await row.getByText(`0 B / ${LIMIT_MIB}.0 MiB (0%)`).waitFor({ timeout: 20_000 });
    await row.getByText('Monthly · Hard (stops traffic)').waitFor();
    const [stored] = await ok<QuotaView[]>('GET', `/v1/users/${ALICE.id}/quotas`);
    assert.equal(stored?.monthly_bytes, LIMIT_MIB * 1024 * 1024);
    assert.equal(stored.reset_day, 1);
  });

  it('fills the usage bar and the charts once traffic flows', async () => {
    // Below the hard stop. The superadmin's rule moves less, so alice's ranks first on the
    // dashboard.
    // Waits for all of it, not the first report: a client may report a transfer in parts, and the
    // dashboard reads quotas once on load, so a partial count would show no near-limit alert.
    await send(alicePort, ALICE_BYTES / 2);
    await send(adminPort, 64 * 1024);
    await waitUntil(async () => {
      const [quota] = await ok<QuotaView[]>('GET', `/v1/users/${ALICE.id}/quotas`);
      return quota && quota.current_period_bytes_used >= ALICE_BYTES;
    }, 'the quota to count all the traffic');
    await waitUntil(async () => {
      const now = Math.floor(Date.now() / 1000);
      const view = await ok<TrafficAnswer>(
        'GET',
        `/v1/users/${ALICE.id}/traffic?from=${now - 3600}&to=${now + 60}`,
      );
      return view.total_bytes_in + view.total_bytes_out >= ALICE_BYTES;
    }, 'the traffic history to hold all the bytes');
    await page.reload();
    const bar = page.locator(`tr[data-quota="${CLIENT}"]`).getByRole('progressbar');
    await waitUntil(
      async () => Number(await bar.getAttribute('aria-valuenow')) > 0,
      'the usage bar to fill',
    );
    await shoot(page, 'user');
    await page.getByRole('tab', { name: 'Traffic' }).click();
    await page
      .getByTestId('traffic-chart')
      .locator('svg .recharts-bar-rectangle')
      .first()
      .waitFor();
    await shoot(page, 'user-traffic');

    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page
      .getByTestId('traffic-chart')
      .locator('svg .recharts-bar-rectangle')
      .first()
      .waitFor();
    // The rule that moved bytes ranks first.
    await page.locator(`tr[data-top-rule]`).first().getByText(`:${alicePort}`).waitFor();
    await page.getByTestId('alerts').waitFor();
    await shoot(page, 'dashboard');
  });

  it('shows a plain user her own dashboard: her traffic, her quota, her rule', async () => {
    const own = await launchBrowser();
    try {
      const tab = await own.context.newPage();
      await signIn(tab, ALICE, `Hello, ${ALICE.name}`);
      await tab.getByTestId('kpi-quotas').getByText('1/0').waitFor();
      await tab.getByText('1 quota(s) past 80%: alice@edge-web').waitFor();
      await tab
        .getByTestId('traffic-chart')
        .locator('svg .recharts-bar-rectangle')
        .first()
        .waitFor();
      // Only her rule, ranked by the bytes its stats report.
      assert.equal(await tab.locator('tr[data-top-rule]').count(), 1);
      await tab.locator('tr[data-top-rule]').getByText('880.0 KiB').waitFor();
      await shoot(tab, 'dashboard-user');
    } finally {
      await own.close();
    }
  });

  it('renders dashboard and user page dark, and at phone width without sideways scrolling', async () => {
    for (const [viewport, suffix] of [
      [{ width: 1280, height: 800 }, 'dark'],
      [{ width: 390, height: 844 }, 'phone-dark'],
    ] as const) {
      const dark = await launchBrowser(viewport, 'dark');
      try {
        const tab = await dark.context.newPage();
        await signIn(tab);
        await tab
          .getByTestId('traffic-chart')
          .locator('svg .recharts-bar-rectangle')
          .first()
          .waitFor();
        const overflow = () =>
          tab.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok((await overflow()) <= 0, `dashboard ${suffix} is wider than the window`);
        await shoot(tab, `dashboard-${suffix}`);
        await tab.goto(`${base}/users/${ALICE.id}`);
        await tab.locator(`tr[data-quota="${CLIENT}"]`).waitFor();
        assert.ok((await overflow()) <= 0, `user page ${suffix} is wider than the window`);
        await shoot(tab, `user-${suffix}`);
      } finally {
        await dark.close();
      }
    }
  });
});
