import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../server/accounts/user.service.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { chromiumAvailable, guardPage, launchBrowser, listen } from '../helpers/browser.ts';
import { createCampaignWithContacts, drainOutbox, senderFor } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let browser: Browser;
let server: Server;
let origin: string;
let sink: SmtpSink;
/** Set SCREENSHOT_DIR to keep a screenshot of the page with its notice at each width, to look at. */
const screenshots = process.env.SCREENSHOT_DIR;

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error('Debian chromium is needed for the browser tests: apt-get install chromium');
  platform = await startTestPlatform();
  sink = await startSmtpSink();
  ({ server, origin } = await listen(platform.app));
  browser = await launchBrowser();
  if (screenshots) mkdirSync(screenshots, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  server?.close();
  await sink?.close();
  await platform?.close();
});

describe('the sending page left open', () => {
  it('says when messages failed after it was drawn, and its reload link lists them', async () => {
    await createUser(
      { models: platform.models, now: platform.clock.now },
      { name: 'Sending', email: 'sending@board.example', role: 'coordinator', password: 'a long enough passphrase' },
      'test setup',
    );
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    const refused = emails[1]!;
    sink.reply(refused, 550, '5.1.1 No such user here', 1);
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');

    const page = await browser.newPage({ viewport: { width: 390, height: 900 } });
    const guard = guardPage(page, origin);
    await page.goto(`${origin}/login`);
    await page.getByLabel('Email').fill('sending@board.example');
    await page.getByLabel('Password').fill('a long enough passphrase');
    await page.getByRole('button', { name: /sign in/i }).click();
    await page.waitForURL(/\/admin/);
    await page.goto(`${origin}/admin/campaigns/${campaignId}/sending`);
    expect(await page.locator('#failed-messages tbody').textContent()).toContain('None.');
    expect(await page.locator('#lists-changed').isHidden()).toBe(true);

    // The sender works while the page is open: one recipient is refused for good.
    const { deps, policy, close } = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(deps, policy));
    close();

    // The progress poll moves the counts and says the lists drawn with the page are behind.
    const notice = page.locator('#lists-changed');
    await notice.waitFor({ state: 'visible', timeout: 30_000 });
    expect(await notice.textContent()).toMatch(/The lists of messages below have changed \(failed: 0 when this page was loaded, 1 now\)\.\s+Reload the page to see them and decide\./);
    expect(await page.locator('#failed-messages tbody').textContent()).toContain('None.');
    for (const width of [390, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      if (screenshots) await page.screenshot({ path: join(screenshots, `sending-lists-changed-${width}.png`), fullPage: true });
      expect(await page.evaluate(() => document.documentElement.scrollWidth), `${width} px`).toBeLessThanOrEqual(width);
    }

    await notice.getByRole('link', { name: 'Reload the page' }).click();
    await page.waitForLoadState();
    const failed = await page.locator('#failed-messages tbody').textContent();
    expect(failed).toContain(refused);
    expect(failed).toMatch(/550 5\.1\.1 No such user here/);
    expect(await page.locator('#lists-changed').isHidden()).toBe(true);
    // Two more polls: the counts match the lists drawn, so the notice stays hidden.
    await page.waitForTimeout(4_500);
    expect(await page.locator('#lists-changed').isHidden()).toBe(true);
    expect(guard.problems).toEqual([]);
    await page.close();
  });
});
