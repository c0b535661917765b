/**
 * Debian's chromium driven by playwright-core, for browser tests and the web UI benchmark: a fresh
 * profile per launch, the flags this closed network needs (no background connections, no QUIC),
 * and never a browser download. Screenshots go to $PORTUNUS_SCREENSHOT_DIR when it is set, so the
 * run that tests the pages can refresh docs/screenshots/. Tests and benchmarks only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env['PORTUNUS_CHROMIUM'] ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** How long one browser step (a click, a wait for an element) may take. */
export const BROWSER_STEP_MS = 60_000;

export interface Browser {
  context: BrowserContext;
  profile: string;
  close(): Promise<void>;
}

export async function launchBrowser(
  viewport = { width: 1280, height: 800 },
  colorScheme: 'light' | 'dark' = 'light',
): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport,
    colorScheme,
  });
  // Playwright's 30 s default is too short for chromium beside the rest of the suite on two busy
  // cores; a step that never happens still fails, only later.
  context.setDefaultTimeout(BROWSER_STEP_MS);
  return {
    context,
    profile,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page PNG named `name` when screenshots are asked for; otherwise does nothing. */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env['PORTUNUS_SCREENSHOT_DIR'];
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}
