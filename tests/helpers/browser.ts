import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Express } from 'express';
import { chromium, errors, type Browser, type Locator, type Page } from 'playwright-core';

/** Debian's Chromium: playwright cannot download its own browser on these machines. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // Without the background-networking flags Chromium tries to reach Google's hosts at start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function listen(app: Express): Promise<{ server: Server; origin: string }> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * Watches a page for what must never happen: a console error, an uncaught
 * exception, a failed response, or a request to any host other than the platform's.
 */
export function guardPage(page: Page, origin: string): { problems: string[] } {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(origin) && !url.startsWith('data:') && !url.startsWith('blob:')) problems.push(`request to another host: ${url}`);
  });
  return { problems };
}

/**
 * Clicks as a respondent would, once the element stands still. Playwright checks that over two
 * animation frames. In one CI run on a loaded machine, a click just after the questionnaire changed
 * page waited its whole 30 s for the first of those frames (its log stopped at "waiting for element
 * to be visible, enabled and stable", with no retry), and runs under the same load here did not do
 * it again. Either Chromium drew no frame or the page's script stopped. So a click that gets
 * nowhere in 10 s asks the page for an answer: a page whose script no longer answers fails at once,
 * as it would fail a respondent; otherwise the page is brought to the front (which makes Chromium
 * draw) and the click is tried again, three times in all.
 */
export async function clickWhenDrawn(locator: Locator): Promise<void> {
  const page = locator.page();
  for (let attempt = 1; ; attempt += 1) {
    try {
      await locator.click({ timeout: 10_000 });
      return;
    } catch (error) {
      if (attempt === 3 || !(error instanceof errors.TimeoutError)) throw error;
      const answered = await Promise.race([page.evaluate(() => true), new Promise<false>((resolve) => setTimeout(resolve, 5_000, false))]);
      if (!answered) throw new Error(`the page's script stopped answering while a click waited on ${locator}`, { cause: error });
      await page.bringToFront();
    }
  }
}
