// The web UI in a real browser (Debian's chromium via playwright-core) against the built server
// and a real enrolled client: onboard with the printed setup token, sign in, enroll a client from
// the dialog and watch it turn connected, push a rule from the dialog, see its live bytes move
// after traffic, edit it, see the edit as a revision diff and restore the pushed version, run a
// client's page (its rules, re-enroll, rename, revoke, delete), read the audit rows in live and
// history mode with Older/Newer pages, read the metrics, sign out; a plain user sees only their
// own rules and no admin pages; no secret ever sits in the DOM, the URL or web storage; a revoked
// session returns to login with "Session expired". Prints the time from spawning the built server
// to the first rule pushed through the UI.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CLIENT_BIN, SERVER_BIN, type RunningProcess } from '@portunus/test-support';
import type { Page } from 'playwright-core';

import { launchBrowser, readableStorage, screenshot, type Browser } from './browser.harness.js';
import { FleetHarness, freePort, tcpEcho, tcpRoundTrip } from './fleet.harness.js';
import { EPHEMERAL_LISTENERS, SLOW_STEP_MS, listenersOf } from './harness.js';

const h = new FleetHarness();
let server: RunningProcess;
let base: string;
let setupToken: string;
let browser: Browser;
let page: Page;
let client: RunningProcess | undefined;
let echo: Awaited<ReturnType<typeof tcpEcho>>;
let echo2: Awaited<ReturnType<typeof tcpEcho>>;
let startedAt: number;
const ADMIN = { id: 'root-admin', name: 'Root Admin', password: 'a long admin password 1' };
const USER = { id: 'alice', name: 'Alice', password: 'alice has a long password' };
/** Every secret the run handles; none may show up in the DOM, a URL or storage. */
const secrets: string[] = [];
const visitedUrls: string[] = [];
let enrollCode = '';
let edgeClientId = '';
/** The admin's rule, for the dark and phone screenshots after the main flow. */
let ruleIdOfRun = 0;

/** The sidebar's link of a page (page bodies may hold links with the same words). */
const navLink = (tab: Page, name: string) =>
  tab.getByRole('navigation', { name: 'main' }).getByRole('link', { name, exact: true });

/** Accepts the next window.confirm() the page raises. */
const acceptNextConfirm = (tab: Page) => {
  tab.once('dialog', (dialog) => void dialog.accept());
};

/** The one-time code inside an enrollment command. */
function codeOf(command: string): string {
  const uri = /portunus:\/\/[^\s'"]+/.exec(command)?.[0] ?? '';
  return new URL(uri.replace('portunus://', 'http://')).searchParams.get('code') ?? '';
}

before(async () => {
  echo = await tcpEcho();
  echo2 = await tcpEcho();
  startedAt = performance.now();
  const dataDir = h.newDataDir();
  server = h.processes.node(SERVER_BIN, ['--data-dir', dataDir, 'serve', ...EPHEMERAL_LISTENERS]);
  await server.waitForEvent('server.listening', { timeoutMs: SLOW_STEP_MS });
  base = `http://${listenersOf(server).operator_http}`;
  const match = /setup token: (\S+)/.exec(server.stderr());
  assert.ok(match?.[1], 'serve prints the setup token');
  setupToken = match[1];
  secrets.push(setupToken, ADMIN.password, USER.password);
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) visitedUrls.push(frame.url());
  });
});

after(async () => {
  await browser.close();
  await h.close();
  await echo.close();
  await echo2.close();
});

/** The live page holds none of the run's secrets: not in the DOM, its URL or its storage. */
async function assertNoSecretsExposed(where: string): Promise<void> {
  const html = await page.content();
  const storage = await readableStorage(page);
  for (const secret of secrets) {
    assert.ok(!html.includes(secret), `${where}: a secret is in the DOM`);
    assert.ok(!storage.includes(secret), `${where}: a secret is in web storage or document.cookie`);
    for (const url of visitedUrls) assert.ok(!url.includes(secret), `${where}: a secret in ${url}`);
  }
}

async function sessionCookie(): Promise<string> {
  const cookies = await browser.context.cookies(base);
  return cookies.find((cookie) => cookie.name === 'portunus_session')?.value ?? '';
}

/** A cookie-authenticated API call from the browser's own session, as the SPA makes it. */
async function apiAsPage<T>(method: string, urlPath: string, body?: unknown): Promise<T> {
  const answer = await browser.context.request.fetch(`${base}${urlPath}`, {
    method,
    headers: { origin: base, 'x-portunus-csrf': '1', 'content-type': 'application/json' },
    ...(body !== undefined ? { data: JSON.stringify(body) } : {}),
  });
  const text = await answer.text();
  assert.ok(answer.ok(), `${method} ${urlPath}: ${answer.status()} ${text}`);
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

describe('an operator’s first session in the browser', { timeout: 240_000 }, () => {
  it('goes to onboarding, creates the superadmin, and lands on /login', async () => {
    await page.goto(`${base}/`);
    await page.waitForURL(/\/onboarding$/);
    await screenshot(page, 'onboarding');
    // A mismatch is caught on the field itself, before any request.
    await page.getByLabel('Setup token').fill(setupToken);
    await page.getByLabel('User ID').fill(ADMIN.id);
    await page.getByLabel('Display name').fill(ADMIN.name);
    await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
    await page.getByLabel('Confirm password').fill('something else entirely');
    await page.getByRole('button', { name: 'Create superadmin' }).click();
    await page.getByText('Passwords do not match').waitFor();
    await page.getByLabel('Confirm password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Create superadmin' }).click();
    await page.waitForURL(/\/login$/);
    // The URL changes before React swaps the page: the filled-in form (which holds what was
    // typed, as any form does) must be gone before the DOM is searched for secrets.
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await assertNoSecretsExposed('after onboarding');
  });

  it('refuses a wrong password, then signs in to the dashboard', async () => {
    await page.getByLabel('User ID').fill(ADMIN.id);
    await page.getByLabel('Password').fill('not the password at all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Wrong user ID or password').waitFor();
    await screenshot(page, 'login');
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await screenshot(page, 'dashboard');
    const cookie = await sessionCookie();
    assert.ok(cookie.length > 20, 'a session cookie is set');
    secrets.push(cookie);
    const readable = await page.evaluate(() => document.cookie);
    assert.ok(!readable.includes(cookie), 'the session cookie is HttpOnly');
    await assertNoSecretsExposed('dashboard');
  });

  it('enrolls a client from the dialog and shows it connected', async () => {
    await page.getByRole('link', { name: 'Clients' }).click();
    await page.getByRole('button', { name: 'Enroll client' }).click();
    await page.getByLabel('Name').fill('edge-web');
    await page.getByLabel('Entry address').fill('127.0.0.1');
    await page.getByRole('button', { name: 'Create command' }).click();
    const command = await page.getByTestId('enroll-command').innerText();
    assert.match(await page.getByTestId('enroll-expiry').innerText(), /Expires in \d+:\d\d/);
    await page.getByRole('button', { name: 'Copy' }).waitFor();
    await screenshot(page, 'enroll-dialog');
    const uri = /portunus:\/\/[^\s'"]+/.exec(command)?.[0];
    assert.ok(uri, `the command carries the URI: ${command}`);
    enrollCode = new URL(uri.replace('portunus://', 'http://')).searchParams.get('code') ?? '';
    assert.ok(enrollCode.length > 10);
    await page.getByRole('button', { name: 'Close' }).click();
    // Closed, the one-time code is gone from the page.
    assert.ok(!(await page.content()).includes(enrollCode));
    secrets.push(enrollCode);

    const bundle = path.join(h.dirs.make(), 'client.bundle.json');
    const enrolled = await h.clientCli(['enroll', uri, '--out', bundle]);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    client = h.processes.node(CLIENT_BIN, [
      '--bundle',
      bundle,
      '--stats-report-interval-secs',
      '1',
    ]);
    await client.waitForEvent('control.connected', { timeoutMs: SLOW_STEP_MS });
    // The table polls every 5 s: the row turns connected without a reload.
    await page
      .locator('tr[data-client="edge-web"]')
      .getByText('connected', { exact: true })
      .waitFor({ timeout: 20_000 });
    await screenshot(page, 'clients');
  });

  let listenPort = 0;
  let ruleId = 0;

  it('pushes a rule from the dialog and shows it active', async (t) => {
    listenPort = await freePort();
    await page.getByRole('link', { name: 'Rules' }).click();
    await page.getByRole('button', { name: 'Push rule' }).click();
    // Bad input is named on its field before anything is sent.
    await page.getByLabel('Listen port', { exact: true }).fill('70000');
    await page.getByRole('button', { name: 'Push', exact: true }).click();
    await page.getByText('Listen port must be a port 1–65535').waitFor();
    await page.getByText('Target host is required').waitFor();
    await page.getByLabel('Listen port', { exact: true }).fill(String(listenPort));
    await page.getByLabel('Target host').fill('127.0.0.1');
    await page.getByLabel('Target port').fill(String(echo.port));
    await screenshot(page, 'push-dialog');
    await page.getByRole('button', { name: 'Push', exact: true }).click();
    const row = page.locator('tr[data-rule]').filter({ hasText: `127.0.0.1:${echo.port}` });
    await row.getByText('active', { exact: true }).waitFor({ timeout: 20_000 });
    const elapsedMs = Math.round(performance.now() - startedAt);
    t.diagnostic(`start to first rule pushed through the UI: ${elapsedMs} ms`);
    console.log(
      `webui e2e: spawn of the built server to first rule pushed through the UI: ${elapsedMs} ms`,
    );
    ruleId = Number(await row.getAttribute('data-rule'));
    ruleIdOfRun = ruleId;
    assert.ok(ruleId > 0);
    await screenshot(page, 'rules');
  });

  it('shows the rule’s bytes move live after traffic', async () => {
    await page.getByRole('link', { name: String(ruleId), exact: true }).click();
    await page.getByRole('heading', { name: `Rule ${ruleId}` }).waitFor();
    const payload = crypto.randomBytes(48 * 1024);
    const back = await tcpRoundTrip(listenPort, payload);
    assert.ok(back.equals(payload));
    // The client reports every second; the page shows it over the SSE stream.
    await page.getByTestId('rule.bytesIn').getByText('48.0 KiB').waitFor({ timeout: 20_000 });
    assert.equal(await page.getByTestId('stats-mode').innerText(), 'streaming');
    await screenshot(page, 'rule');
  });

  it('edits the rule in place: the id stays, the target changes, traffic still flows', async () => {
    await page.getByRole('link', { name: 'Rules' }).click();
    const row = page.locator(`tr[data-rule="${ruleId}"]`);
    await row.getByRole('button', { name: 'Edit' }).click();
    await page.getByRole('heading', { name: `Edit rule ${ruleId}` }).waitFor();
    await page.getByLabel('Target port').fill(String(echo2.port));
    await page.getByRole('button', { name: 'Save rule' }).click();
    await row.getByText(`127.0.0.1:${echo2.port}`).waitFor({ timeout: 20_000 });
    await row.getByText('active', { exact: true }).waitFor();
    const payload = crypto.randomBytes(1024);
    assert.ok((await tcpRoundTrip(listenPort, payload)).equals(payload));
  });

  it('shows the edit as a revision diff and restores the pushed version', async () => {
    await page.getByRole('link', { name: 'Revisions' }).click();
    await page.getByRole('heading', { name: 'Rule revisions' }).waitFor();
    // The revision the push made: restoring it undoes the edit.
    const pushed = page.locator('tr[data-revision]').filter({ hasText: `push rule ${ruleId}:` });
    await pushed.getByRole('button', { name: 'Diff' }).click();
    const block = page.locator(`[data-diff-rule="${ruleId}"]`);
    await block.getByText('edited since — restore reverts it').waitFor();
    const targets = block.locator('tr.differs').filter({ hasText: 'targets' });
    assert.match(await targets.locator('td.del').innerText(), new RegExp(`:${echo2.port} `));
    assert.match(await targets.locator('td.ins').innerText(), new RegExp(`:${echo.port} `));
    assert.equal(
      await block.locator('tr.differs').count(),
      1,
      'only the target differs from the pushed version',
    );
    await screenshot(page, 'revisions');
    acceptNextConfirm(page);
    await page.getByRole('button', { name: /^Restore revision \d+$/ }).click();
    await page
      .getByRole('status')
      .getByText(/^Restored to revision \d+ as revision \d+: 0 removed, 0 recreated, 1 reverted\.$/)
      .waitFor({ timeout: 20_000 });
    // The restore is itself the newest revision.
    await page.locator('tr[data-revision]').first().getByText('restore').first().waitFor();
    await navLink(page, 'Rules').click();
    const row = page.locator(`tr[data-rule="${ruleId}"]`);
    await row.getByText(`127.0.0.1:${echo.port}`).waitFor({ timeout: 20_000 });
    await row.getByText('active', { exact: true }).waitFor();
    const payload = crypto.randomBytes(1024);
    assert.ok((await tcpRoundTrip(listenPort, payload)).equals(payload));
  });

  it('shows a client’s page with its rules and re-enrolls it with a one-time command', async () => {
    await navLink(page, 'Clients').click();
    await page.getByRole('link', { name: 'edge-web', exact: true }).click();
    await page.waitForURL(/\/clients\/[0-9A-Z]{26}$/);
    edgeClientId = new URL(page.url()).pathname.split('/').at(-1) ?? '';
    await page
      .getByRole('heading', { name: /edge-web/ })
      .getByText('connected')
      .waitFor();
    await page.getByText('Rules on this client (1)').waitFor();
    await page.locator(`tr[data-client-rule="${ruleId}"]`).getByText('active').waitFor();
    await screenshot(page, 'client');
    acceptNextConfirm(page);
    await page.getByRole('button', { name: 'Re-enroll client' }).click();
    const command = await page.getByTestId('enroll-command').innerText();
    const code = codeOf(command);
    assert.ok(code.length > 10 && code !== enrollCode, 'a new one-time code');
    secrets.push(code);
    assert.match(await page.getByTestId('enroll-expiry').innerText(), /Expires in \d+:\d\d/);
    await page.getByText(/^Re-enrollment: the client keeps its id/).waitFor();
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    await page.getByRole('button', { name: 'Close' }).click();
    assert.ok(!(await page.content()).includes(code), 'closed, the code is gone');
    // Re-enrollment rotates the token only when redeemed: the live client stays connected.
    await page
      .getByRole('heading', { name: /edge-web/ })
      .getByText('connected')
      .waitFor();
    await page.goto(`${base}/clients/01HZZZZZZZZZZZZZZZZZZZZZZZ`);
    await page.getByTestId('client-not-found').waitFor();
  });

  it('renames, revokes and deletes a spare client from its page', async () => {
    await navLink(page, 'Clients').click();
    await page.getByRole('button', { name: 'Enroll client' }).click();
    await page.getByLabel('Name').fill('edge-spare');
    await page.getByRole('button', { name: 'Create command' }).click();
    const command = await page.getByTestId('enroll-command').innerText();
    secrets.push(codeOf(command));
    await page.getByRole('button', { name: 'Close' }).click();
    // Redeemed (the client exists from then on) but never started: it stays offline.
    const uri = /portunus:\/\/[^\s'"]+/.exec(command)?.[0] ?? '';
    const redeemed = await h.clientCli([
      'enroll',
      uri,
      '--out',
      path.join(h.dirs.make(), 'spare.bundle.json'),
    ]);
    assert.equal(redeemed.code, 0, redeemed.stderr);
    await page.getByRole('link', { name: 'edge-spare', exact: true }).click();
    await page
      .getByRole('heading', { name: /edge-spare/ })
      .getByText('offline')
      .waitFor();
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('Name', { exact: true }).fill(' ');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Name is required').waitFor();
    await page.getByLabel('Name', { exact: true }).fill('edge-spare-2');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: /edge-spare-2/ }).waitFor();
    acceptNextConfirm(page);
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page
      .getByRole('heading', { name: /edge-spare-2/ })
      .getByText('revoked')
      .waitFor();
    acceptNextConfirm(page);
    await page.getByRole('button', { name: 'Delete permanently' }).click();
    await page.waitForURL(/\/clients$/);
    const clients = await apiAsPage<{ client_name: string }[]>('GET', '/v1/clients');
    assert.deepEqual(
      clients.map((item) => item.client_name),
      ['edge-web'],
    );
  });

  it('shows the push, the edit and the restore in the audit log, live and in history pages', async () => {
    await navLink(page, 'Audit log').click();
    await page
      .locator('tr[data-audit-path="/v1/rules"]')
      .filter({ hasText: 'POST' })
      .first()
      .waitFor();
    await page
      .locator(`tr[data-audit-path="/v1/rules/${ruleId}"]`)
      .filter({ hasText: 'PUT' })
      .first()
      .waitFor({ timeout: 20_000 });
    await page.locator('tr[data-audit-path$="/restore"]').first().waitFor();
    // History: a frozen snapshot in pages of 10, Older along the cursors and Newer back.
    await page.getByRole('button', { name: 'History' }).click();
    await page.getByLabel('Rows per page').selectOption('10');
    await page.getByText(/^History: frozen snapshot, page 1, 10 rows\.$/).waitFor();
    const firstPage = await page.locator('tbody').innerText();
    assert.equal(await page.getByRole('button', { name: 'Newer' }).isDisabled(), true);
    await page.getByRole('button', { name: 'Older' }).click();
    await page.getByText(/^History: frozen snapshot, page 2, \d+ rows\.$/).waitFor();
    const secondPage = await page.locator('tbody').innerText();
    assert.notEqual(secondPage, firstPage);
    await page.getByRole('button', { name: 'Newer' }).click();
    await page.getByText(/^History: frozen snapshot, page 1, 10 rows\.$/).waitFor();
    assert.equal(await page.locator('tbody').innerText(), firstPage, 'the snapshot is frozen');
    await page.getByRole('button', { name: 'Older' }).click();
    await page.getByText(/^History: frozen snapshot, page 2, \d+ rows\.$/).waitFor();
    // The oldest rows are the onboarding's: reach the last page and find it.
    for (let pages = 2; pages < 100; pages++) {
      if (await page.getByRole('button', { name: 'Older' }).isDisabled()) break;
      const before = await page.getByTestId('audit-mode').innerText();
      await page.getByRole('button', { name: 'Older' }).click();
      await page.getByTestId('audit-mode').filter({ hasNotText: before }).waitFor();
    }
    await page.locator('tr[data-audit-path="/v1/auth/onboarding"]').first().waitFor();
    const denied = page.waitForResponse((response) => response.url().includes('outcome=deny'));
    await page.getByLabel('Outcome').selectOption('deny');
    const { count } = (await (await denied).json()) as { count: number };
    await page.getByText(`History: frozen snapshot, page 1, ${count} rows.`).waitFor();
    assert.equal(await page.locator('tbody tr').filter({ hasText: 'allow' }).count(), 0);
    await page.getByLabel('Outcome').selectOption('');
    await page.getByText(/^History: frozen snapshot, page 1, 10 rows\.$/).waitFor();
    await screenshot(page, 'audit');
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download as JSON' }).click();
    const file = await download;
    assert.match(file.suggestedFilename(), /^audit-\d{4}-\d\d-\d\d\.ndjson$/);
    await assertNoSecretsExposed('audit');
  });

  it('shows the raw metrics with the rule’s byte counter, filtered', async () => {
    await navLink(page, 'Metrics').click();
    await page
      .getByTestId('metrics-text')
      .getByText(/portunus_clients_connected 1/)
      .waitFor();
    await page.getByLabel('Filter lines').fill('portunus_rule_bytes_in_total');
    const text = await page.getByTestId('metrics-text').innerText();
    assert.match(text, new RegExp(`rule="${ruleId}"`));
    assert.ok(
      text.split('\n').every((line) => line.includes('portunus_rule_bytes_in_total')),
      text,
    );
    await page.getByLabel('Filter lines').fill('');
    await screenshot(page, 'metrics');
  });

  it('settings: a bad connect address is refused inline, the theme switches and is kept', async () => {
    await navLink(page, 'Settings').click();
    await page.getByText(/^Effective: .+ \(source: \w+\)/).waitFor();
    await page.getByLabel('Override (host:port)').fill('no port here');
    await page.getByRole('button', { name: 'Save' }).click();
    await page
      .getByRole('alert')
      .getByText(/^endpoint_invalid: /)
      .waitFor();
    await page.getByLabel('Theme').selectOption('dark');
    assert.equal(await page.evaluate(() => document.documentElement.dataset['theme']), 'dark');
    await page.reload();
    await page.getByLabel('Theme').waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.dataset['theme']), 'dark');
    await page.getByLabel('Theme').selectOption('system');
    assert.equal(await page.evaluate(() => document.documentElement.dataset['theme']), 'light');
  });

  it('signs out: the session is gone and the app is back at /login', async () => {
    // A user with a grant on the client, made while still signed in, for the next test.
    await apiAsPage('POST', '/v1/users', {
      user_id: USER.id,
      display_name: USER.name,
      initial_password: USER.password,
      password_change_required: true,
    });
    await apiAsPage('POST', '/v1/grants', {
      user_id: USER.id,
      client: 'edge-web',
      listen_port_start: 1024,
      listen_port_end: 65535,
      protocols: ['tcp', 'udp'],
    });
    // The user's page lists the grant and previews what deleting her would remove.
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('link', { name: USER.id }).click();
    await page.locator('tr[data-grant]').getByText('1024–65535').waitFor();
    await page.getByRole('button', { name: 'Delete' }).click();
    assert.match(
      await page.getByTestId('cascade-preview').innerText(),
      /1 grant\(s\) and 0 rule\(s\)/,
    );
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login$/);
    assert.equal(await sessionCookie(), '');
    await page.goto(`${base}/rules`);
    await page.waitForURL(/\/login$/);
  });

  it('a plain user changes the forced password, sees only their own rules and no admin pages', async () => {
    await page.getByLabel('User ID').fill(USER.id);
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Set a new password' }).waitFor();
    const newPassword = 'alice picked a new long one';
    secrets.push(newPassword);
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('Confirm new password').fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('heading', { name: `Hello, ${USER.name}` }).waitFor();
    const nav = page.getByRole('navigation', { name: 'main' });
    for (const hidden of ['Users', 'Audit log', 'Metrics']) {
      assert.equal(await nav.getByRole('link', { name: hidden }).count(), 0, hidden);
    }
    // Alice pushes one rule of her own; the admin's rule stays invisible to her.
    const alicePort = await freePort();
    await page.getByRole('link', { name: 'Rules' }).click();
    await page.getByRole('button', { name: 'Push rule' }).click();
    await page.getByLabel('Listen port', { exact: true }).fill(String(alicePort));
    await page.getByLabel('Target host').fill('127.0.0.1');
    await page.getByLabel('Target port').fill(String(echo.port));
    await page.getByRole('button', { name: 'Push', exact: true }).click();
    await page
      .locator('tr[data-rule]')
      .getByText('active', { exact: true })
      .waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('tr[data-rule]').count(), 1);
    assert.equal(await page.locator(`tr[data-rule="${ruleId}"]`).count(), 0);
    await page.goto(`${base}/users`);
    await page.getByText('You do not have permission to see this page.').waitFor();
    await assertNoSecretsExposed('user pages');
  });

  it('returns to login with "Session expired" when the session is revoked under it', async () => {
    await page.getByRole('link', { name: 'Rules' }).click();
    // Another tab signs out: this tab's cookie is now invalid server-side.
    const cookie = await sessionCookie();
    await browser.context.request.post(`${base}/v1/auth/logout`, {
      headers: { origin: base, 'x-portunus-csrf': '1' },
    });
    await browser.context.addCookies([
      { name: 'portunus_session', value: cookie, url: base, httpOnly: true, sameSite: 'Lax' },
    ]);
    // The next 5 s poll answers 401.
    await page.waitForURL(/\/login$/, { timeout: 20_000 });
    await page.getByText('Session expired').waitFor();
  });
});

/**
 * Opens the revisions diff, the client page, the audit history and the metrics in `tab`, saving
 * a screenshot of each as `<page>-<suffix>`, and checks none is wider than the viewport.
 */
async function screenshotMyPages(tab: Page, suffix: string): Promise<void> {
  const steps: [string, string, () => Promise<void>][] = [
    [
      'revisions',
      '/rules/revisions',
      async () => {
        const edited = tab
          .locator('tr[data-revision]')
          .filter({ hasText: `edit rule ${ruleIdOfRun}` });
        await edited.getByRole('button', { name: 'Diff' }).click();
        await tab.locator(`[data-diff-rule="${ruleIdOfRun}"]`).waitFor();
      },
    ],
    [
      'client',
      `/clients/${edgeClientId}`,
      async () => {
        await tab.locator('tr[data-client-rule]').first().waitFor();
      },
    ],
    [
      'audit',
      '/audit',
      async () => {
        await tab.getByRole('button', { name: 'History' }).click();
        await tab.getByLabel('Rows per page').selectOption('10');
        await tab.getByText(/^History: frozen snapshot, page 1, 10 rows\.$/).waitFor();
      },
    ],
    [
      'metrics',
      '/metrics',
      async () => {
        await tab
          .getByTestId('metrics-text')
          .getByText(/portunus_clients_connected/)
          .waitFor();
      },
    ],
  ];
  for (const [name, urlPath, ready] of steps) {
    await tab.goto(`${base}${urlPath}`);
    await ready();
    const overflow = await tab.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth,
    );
    assert.ok(overflow <= 0, `${name} is ${overflow}px wider than the viewport`);
    await screenshot(tab, `${name}-${suffix}`);
  }
}

describe('the UI in dark mode', { timeout: 120_000 }, () => {
  it('follows a dark system theme at desktop width: dark background, readable text', async () => {
    const dark = await launchBrowser({ width: 1280, height: 800 }, 'dark');
    try {
      const tab = await dark.context.newPage();
      await tab.goto(`${base}/login`);
      await tab.getByLabel('User ID').fill(ADMIN.id);
      await tab.getByLabel('Password').fill(ADMIN.password);
      await tab.getByRole('button', { name: 'Sign in' }).click();
      await tab.getByRole('heading', { name: 'Dashboard' }).waitFor();
      const colors = await tab.evaluate(() => ({
        background: getComputedStyle(document.body).backgroundColor,
        text: getComputedStyle(document.body).color,
      }));
      assert.equal(colors.background, 'rgb(15, 19, 24)');
      assert.equal(colors.text, 'rgb(230, 233, 238)');
      await screenshot(tab, 'dashboard-dark');
      for (const [link, name] of [
        ['Clients', 'clients-dark'],
        ['Rules', 'rules-dark'],
      ] as const) {
        await tab.getByRole('link', { name: link }).click();
        await tab.getByRole('heading', { name: link }).waitFor();
        await tab.locator('tbody tr').first().waitFor();
        await screenshot(tab, name);
      }
      await screenshotMyPages(tab, 'dark');
    } finally {
      await dark.close();
    }
  });

  it('at phone width, renders the dashboard without horizontal scrolling', async () => {
    const phone = await launchBrowser({ width: 390, height: 844 }, 'dark');
    try {
      const small = await phone.context.newPage();
      await small.goto(`${base}/login`);
      await small.getByLabel('User ID').fill(ADMIN.id);
      await small.getByLabel('Password').fill(ADMIN.password);
      await small.getByRole('button', { name: 'Sign in' }).click();
      await small.getByRole('heading', { name: 'Dashboard' }).waitFor();
      assert.equal(
        await small.evaluate(() => document.documentElement.dataset['theme']),
        'dark',
        'system theme follows the dark color scheme',
      );
      const overflow = await small.evaluate(
        () => document.documentElement.scrollWidth - window.innerWidth,
      );
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
      await screenshot(small, 'dashboard-phone-dark');
      await small.getByRole('link', { name: 'Rules' }).waitFor({ state: 'hidden' });
      await small.getByRole('button', { name: 'menu' }).click();
      await small.getByRole('link', { name: 'Rules' }).click();
      await small.getByRole('heading', { name: 'Rules' }).waitFor();
      await screenshot(small, 'rules-phone-dark');
      await screenshotMyPages(small, 'phone-dark');
    } finally {
      await phone.close();
    }
  });
});
