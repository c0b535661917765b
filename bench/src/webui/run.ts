/**
 * The web UI benchmark (`npm run bench:webui`): the built SPA's bundle size (gzipped, as served),
 * and the dashboard's first paint with 1,000 rules on 100 clients — a real store built by the
 * operator benchmark's fixtures, the real `portunus-server serve`, and Debian's chromium signing
 * in through the login page, then loading `/` five times. "First paint" is navigation start to
 * the moment the rules KPI shows all 1,000 rules (the page's data is fetched and rendered), read
 * from the browser's own clock. The baseline, loaded alternately with the dashboard in the same
 * browser against the same server, is the login page's first paint (same bundle, one tiny
 * request): the ratio is what 1,000 rules and 100 clients cost over loading the app at all.
 * Figures are printed, never asserted; exit 1 when a step fails.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { ProcessGroup, SERVER_BIN, launchBrowser, tempDirs } from '@portunus/test-support';

import { buildOperatorStore } from '../operator/fixtures.js';
import { operatorBenchConfig } from '../operator/config.js';

const RULES = 1_000;
const CLIENTS = 100;
const LOADS = 5;
const ADMIN = { id: 'ui-admin', password: 'a long benchmark password' };
const GOAL_MS = 1_000;

const dirs = tempDirs();
const processes = new ProcessGroup();

function bundleSizes(): { file: string; raw: number; gzip: number }[] {
  const dist = path.join(
    path.dirname(new URL(import.meta.resolve('@portunus/webui/package.json')).pathname),
    'dist',
    'assets',
  );
  return fs
    .readdirSync(dist)
    .filter((name) => name.endsWith('.js') || name.endsWith('.css'))
    .map((name) => {
      const body = fs.readFileSync(path.join(dist, name));
      return { file: name, raw: body.length, gzip: zlib.gzipSync(body).length };
    });
}

async function main(): Promise<number> {
  for (const { file, raw, gzip } of bundleSizes()) {
    console.log(
      `bundle ${file}: ${(raw / 1024).toFixed(1)} KiB, ${(gzip / 1024).toFixed(1)} KiB gzipped`,
    );
  }
  const dataDir = path.join(dirs.make('portunus-bench-webui-'), 'data');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  const store = buildOperatorStore(dataDir, {
    ...operatorBenchConfig(true),
    rules: RULES,
    clients: CLIENTS,
  });
  const server = processes.node(SERVER_BIN, [
    '--data-dir',
    dataDir,
    'serve',
    '--control-listen',
    '127.0.0.1:0',
    '--operator-http-listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
  ]);
  const listening = await server.waitForEvent('server.listening', { timeoutMs: 60_000 });
  const base = `http://${String((listening['listeners'] as Record<string, unknown>)['operator_http'])}`;
  const created = await fetch(`${base}/v1/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${store.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      user_id: ADMIN.id,
      display_name: 'UI admin',
      role: 'superadmin',
      initial_password: ADMIN.password,
      password_change_required: false,
    }),
  });
  if (created.status !== 201)
    throw new Error(`create user: ${created.status} ${await created.text()}`);
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${base}/login`);
    await page.getByLabel('User ID').fill(ADMIN.id);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('kpi-rules').getByText(`/${RULES}`).waitFor({ timeout: 30_000 });
    const dashboard: number[] = [];
    const baseline: number[] = [];
    /** Navigation start to the moment `ready` (a script expression) holds, on the browser clock. */
    const paint = async (url: string, ready: string): Promise<number> => {
      await page.goto(url);
      const handle = await page.waitForFunction(
        `(() => (${ready}) ? performance.now() : false)()`,
        undefined,
        { timeout: 30_000, polling: 'raf' },
      );
      return Number(await handle.jsonValue());
    };
    for (let load = 0; load < LOADS; load++) {
      baseline.push(
        await paint(
          `${base}/login`,
          `Array.from(document.querySelectorAll('h1')).some((h) => h.textContent === 'Sign in')`,
        ),
      );
      dashboard.push(
        await paint(
          `${base}/`,
          `(document.querySelector('[data-testid="kpi-rules"] strong')?.textContent ?? '').endsWith('/${RULES}')`,
        ),
      );
    }
    const median = (values: number[]) =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
    const range = (values: number[]) =>
      `min ${Math.min(...values).toFixed(0)}, max ${Math.max(...values).toFixed(0)}`;
    const dash = median(dashboard);
    const login = median(baseline);
    console.log(
      `baseline: login page first paint, same bundle and server: median ${login.toFixed(0)} ms (${range(baseline)}, ${LOADS} loads)`,
    );
    console.log(
      `dashboard first paint, ${RULES} rules on ${CLIENTS} clients: median ${dash.toFixed(0)} ms ` +
        `(${range(dashboard)}, ${LOADS} loads) = ${(dash / login).toFixed(2)}× the baseline; ` +
        `goal < ${GOAL_MS} ms: ${dash < GOAL_MS ? 'met' : 'NOT met'}`,
    );
    console.log(
      `load average (1/5/15 min): ${os
        .loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')}`,
    );
    return 0;
  } finally {
    await browser.close();
  }
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(`bench:webui failed: ${(error as Error).stack ?? String(error)}`);
} finally {
  await processes.killAll();
  dirs.cleanup();
}
process.exit(code);
