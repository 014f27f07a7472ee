import { appendJournal, taggedRecordOf, textQuestionsOf } from '../../server/evidence/analytic-record.ts';
import { institutionTagger } from '../../server/evidence/institution-tag.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { Types } from 'mongoose';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../server/accounts/user.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { chromiumAvailable, guardPage, launchBrowser, listen } from '../helpers/browser.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let browser: Browser;
let server: Server;
let origin: string;

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error('Debian chromium is needed for the browser tests: apt-get install chromium');
  platform = await startTestPlatform();
  // Twelve institutions in Austria and twelve in Germany answer through their personal links,
  // enough for the cells to pass disclosure control.
  const first = await createInvitedContact(platform);
  const campaignId = first.campaignId;
  for (const [index, country] of ['AT', 'DE'].flatMap((c) => Array.from({ length: 12 }, () => c)).entries()) {
    const { path, invitation } = index === 0 ? first : await createInvitedContact(platform, { campaignId });
    const answers = completeAnswers({ P1: country, S1_2a: (index % 4) + 1, S1_2c: ((index + 1) % 4) + 1 });
    await respondent(platform, path, invitation.tokenHash).submit({ data: answers, baseRevision: 0, language: 'en' }).expect(201);
  }
  ({ server, origin } = await listen(platform.app));
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  server?.close();
  await platform?.close();
});

describe('a working-group reviewer in the browser', () => {
  it('signs in, filters by country, sees the charts drawn and downloads an export', async () => {
    await createUser(
      { models: platform.models, now: platform.clock.now },
      { name: 'Reviewer One', email: 'reviewer@board.example', role: 'reviewer', password: 'a long enough passphrase' },
      'test setup',
    );
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    const guard = guardPage(page, origin);

    await signInAsReviewer(page);

    await page.goto(`${origin}/evidence/barriers`);
    await page.locator('#filter-form select[name="country"]').selectOption('AT');
    await page.locator('#filter-form button[type="submit"]').click();
    await page.waitForURL(/country=AT/);

    const canvases = page.locator('canvas.evidence-chart');
    expect(await canvases.count()).toBeGreaterThan(0);
    await expect.poll(() => paintedPixels(canvases.first())).toBeGreaterThan(1000);
    // Every chart has an accessible table beside it.
    expect(await page.locator('table').count()).toBeGreaterThanOrEqual(await canvases.count());

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a.export-link', { hasText: 'CSV' }).first().click()]);
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.length).toBeGreaterThan(50);
    expect(csv).not.toContain('Test school');
    expect(guard.problems).toEqual([]);
    await context.close();
  });

  it('compares two waves for one country and sees the comparison chart drawn beside its table', async () => {
    // A second wave with the same answers under another campaign.
    const second = await platform.models.Campaign.create({ name: 'Second wave', strands: ['S1', 'S2', 'S3', 'S4'], opensAt: new Date('2026-09-01'), closesAt: new Date('2026-12-01') });
    const stored = await platform.models.Response.find({}).lean();
    const copies = stored.map((r) => ({ ...r, _id: new Types.ObjectId(), invitation: new Types.ObjectId(), campaign: second._id }));
    await platform.models.Response.insertMany(copies);
    // Their analytic records too, journalled, as the respondent path writes them (the evidence reads only these).
    const tagOf = institutionTagger(platform.models, platform.tagKey);
    const records = await Promise.all(copies.map((r) => taggedRecordOf(tagOf, { ...r, _id: r.invitation }, textQuestionsOf(buildCatalogue(loadSurveyLibrary())))));
    await platform.models.AnalyticRecord.collection.insertMany(records);
    await appendJournal(platform.models, records.map((r) => r._id));
    const first = stored[0]!.campaign;

    const context = await browser.newContext();
    const page = await context.newPage();
    const guard = guardPage(page, origin);
    await signInAsReviewer(page);

    await page.goto(`${origin}/evidence/waves`);
    await page.locator('#wave-form select[name="a"]').selectOption(String(first));
    await page.locator('#wave-form select[name="b"]').selectOption(String(second._id));
    await page.locator('#wave-form select[name="country"]').selectOption('DE');
    await page.locator('#wave-form button[type="submit"]').click();
    await page.waitForURL(/country=DE/);
    // The second wave's records were stored as by another process: pages show them once the follower polled, so the reviewer reloads until they do.
    const sideB = page.locator('.counts li').nth(1);
    await expect
      .poll(async () => {
        await page.reload();
        return sideB.textContent();
      })
      .toContain('12 responses');
    await expect.poll(() => paintedPixels(page.locator('canvas[data-chart="waves"]'))).toBeGreaterThan(1000);
    expect(await page.locator('table.wave-table').count()).toBeGreaterThan(0);
    expect(await page.locator('.counts').textContent()).toContain('12 responses');
    expect(guard.problems).toEqual([]);
    await context.close();
  });
});

async function signInAsReviewer(page: Page): Promise<void> {
  await page.goto(`${origin}/login`);
  await page.getByLabel('Email').fill('reviewer@board.example');
  await page.getByLabel('Password').fill('a long enough passphrase');
  await page.getByRole('button', { name: /sign in/i }).click();
  await page.waitForURL(/\/admin|\/evidence/);
}

/** A drawn chart has painted pixels; an empty canvas is all transparent. */
function paintedPixels(canvas: Locator): Promise<number> {
  return canvas.evaluate((element: HTMLCanvasElement) => {
    const { data } = element.getContext('2d')!.getImageData(0, 0, element.width, element.height);
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted += 1;
    return painted;
  });
}
