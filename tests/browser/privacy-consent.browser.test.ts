import type { Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, guardPage, launchBrowser, listen } from '../helpers/browser.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let browser: Browser;
let server: Server;
let origin: string;

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error('Debian chromium is needed for the browser tests: apt-get install chromium');
  platform = await startTestPlatform();
  ({ server, origin } = await listen(platform.app));
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  server?.close();
  await platform?.close();
});

describe('a respondent of a campaign that rests on consent, in the browser', () => {
  it('sees the privacy notice and must tick the consent before the first question appears; the consent is stored', async () => {
    const { path, invitation, campaignId } = await createInvitedContact(platform, { strands: ['S1'], language: 'en' });
    await platform.models.Campaign.updateOne({ _id: campaignId }, { $set: { lawfulBasis: 'consent' } });
    const page = await (await browser.newContext()).newPage();
    const guard = guardPage(page, origin);
    await page.goto(origin + path);

    await expect(page.locator('#privacy-notice').textContent()).resolves.toContain('Legal basis: your consent');
    expect(await page.locator('#privacy-link').getAttribute('href')).toBe(`/privacy/${campaignId}?lang=en`);
    // No question before consent.
    expect(await page.locator('[data-name="P1"]').count()).toBe(0);

    // Starting without ticking the box is refused, and nothing is sent.
    await page.locator('#consent-start').click();
    await expect(page.locator('#status').textContent()).resolves.toContain('Please tick the box');
    expect(await page.locator('[data-name="P1"]').count()).toBe(0);
    expect(await platform.models.Consent.countDocuments({})).toBe(0);

    await page.locator('#consent').check();
    const recorded = page.waitForResponse((res) => res.url().endsWith('/consent') && res.request().method() === 'POST');
    await page.locator('#consent-start').click();
    expect((await recorded).status()).toBe(201);
    await page.locator('[data-name="P1"]').waitFor();
    // The notice stays on the first page and the link on every page.
    expect(await page.locator('#privacy-notice').isVisible()).toBe(true);
    expect(await page.locator('#privacy-link').isVisible()).toBe(true);

    const consent = await platform.models.Consent.findById(String(invitation._id)).lean();
    expect(consent?.version).toMatch(/^[0-9a-f]{16}$/);
    expect(guard.problems).toEqual([]);
  });
});
