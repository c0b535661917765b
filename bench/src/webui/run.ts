/**
 * The web UI benchmark (`npm run bench:webui`): the built SPA's bundle size (gzipped, as served),
 * and the dashboard's first paint with 1,000 rules on 100 clients — a real store built by the
 * operator benchmark's fixtures, the real `portunus-server serve`, and Debian's chromium signing
 * in through the login page, then loading `/` five times. "First paint" is navigation start to
 * the moment the rules KPI shows all 1,000 rules (the page's data is fetched and rendered), read
 * from the browser's own clock. Figures are printed, never asserted; exit 1 when a step fails.
 */
import fs from 'node:fs';
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
    const samples: number[] = [];
    for (let load = 0; load < LOADS; load++) {
      await page.goto(`${base}/`);
      // The browser's clock: navigation start is 0, so performance.now() is time since it.
      const handle = await page.waitForFunction(
        `(() => { const kpi = document.querySelector('[data-testid="kpi-rules"] strong');
          return kpi && kpi.textContent.endsWith('/${RULES}') ? performance.now() : false; })()`,
        undefined,
        { timeout: 30_000, polling: 'raf' },
      );
      samples.push(Number(await handle.jsonValue()));
    }
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)] ?? Number.NaN;
    console.log(
      `dashboard first paint, ${RULES} rules on ${CLIENTS} clients: median ${median.toFixed(0)} ms ` +
        `(min ${samples[0]?.toFixed(0)}, max ${samples.at(-1)?.toFixed(0)}, ${LOADS} loads); goal < ${GOAL_MS} ms: ${median < GOAL_MS ? 'met' : 'NOT met'}`,
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
