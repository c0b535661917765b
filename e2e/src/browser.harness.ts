/**
 * Browser helpers of the e2e tests: chromium itself comes from test-support (shared with the
 * benchmark); what a page keeps where scripts can read it is checked here. Tests only.
 */
import type { Page } from 'playwright-core';

export { launchBrowser, screenshot, type Browser } from '@portunus/test-support';

/** Everything a page keeps where scripts can read it: local and session storage, cookies. */
export async function readableStorage(page: Page): Promise<string> {
  return page.evaluate(() =>
    JSON.stringify({
      local: Object.entries(localStorage),
      session: Object.entries(sessionStorage),
      cookie: document.cookie,
    }),
  );
}
