import { readFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../server/accounts/user.service.ts';
import { quoteKey } from '../../server/evidence/evidence-quotes.service.ts';
import { chromiumAvailable, guardPage, launchBrowser, listen } from '../helpers/browser.ts';
import { readPdf } from '../helpers/pdf-text.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { insertVariedCampaign } from '../evidence/varied-data.ts';

let platform: TestPlatform;
let browser: Browser;
let server: Server;
let origin: string;
let campaignId: string;
let earlierId: string;
const CAMPAIGN = 'Wave 2026: staff mobility in VET';
/** Screenshots of every page at both widths go here when SCREENSHOTS_DIR is set (for looking at them by eye). */
const shots = process.env.SCREENSHOTS_DIR;

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error('Debian chromium is needed for the browser tests: apt-get install chromium');
  platform = await startTestPlatform();
  const campaign = await platform.models.Campaign.create({ name: CAMPAIGN, strands: ['S1', 'S2', 'S3', 'S4'], opensAt: new Date('2026-01-05'), closesAt: new Date('2026-03-01') });
  campaignId = String(campaign._id);
  const countries = ['AT', 'DE', 'FR', 'IT', 'PL', 'ES'];
  const responses = await insertVariedCampaign(platform, campaign._id, { countries, institutionsPerCountry: 8, text: (i) => `Finding a substitute teacher is the hardest part (${i}).` });
  // Every respondent was invited (two contacts per institution), and 24 institutions more that did not answer.
  const institutions = new Map(responses.map((r) => [String(r.institution), r]));
  for (const [id, r] of institutions) await platform.models.Institution.create({ _id: r.institution, name: `School ${id.slice(-6)}`, country: r.profile.country, type: r.profile.institutionType, key: `k-${id}` });
  for (const r of responses) await platform.models.Invitation.create({ campaign: campaign._id, contact: r._id, institution: r.institution, tokenHash: randomBytes(16).toString('hex') });
  for (let i = 0; i < 24; i++) {
    const institution = await platform.models.Institution.create({ name: `Silent school ${i}`, country: countries[i % 6], type: 'ivet_school', key: `silent-${i}` });
    await platform.models.Invitation.create({ campaign: campaign._id, contact: institution._id, institution: institution._id, tokenHash: randomBytes(16).toString('hex') });
  }
  // An earlier wave (fewer institutions, so its figures differ) for the wave comparison.
  const earlier = await platform.models.Campaign.create({ name: 'Wave 2025: staff mobility in VET', strands: ['S1', 'S2', 'S3', 'S4'], opensAt: new Date('2025-01-06'), closesAt: new Date('2025-03-01') });
  earlierId = String(earlier._id);
  await insertVariedCampaign(platform, earlier._id, { countries, institutionsPerCountry: 6 });
  // The coordinator approved every quote.
  for (const r of responses)
    for (const item of r.items.filter((i) => i.question === 'S1_6'))
      await platform.models.QuoteReview.create({ _id: quoteKey(r._id, 'S1_6', String(item.value)), campaign: campaign._id, state: 'approved', by: 'coordinator@board.example', at: new Date() });
  await createUser(
    { models: platform.models, now: platform.clock.now },
    { name: 'Reviewer One', email: 'reviewer@board.example', role: 'reviewer', password: 'a long enough passphrase' },
    'test setup',
  );
  ({ server, origin } = await listen(platform.app));
  browser = await launchBrowser();
  if (shots) mkdirSync(shots, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  server?.close();
  await platform?.close();
});

async function signInAsReviewer(page: Page): Promise<void> {
  await page.goto(`${origin}/login`);
  await page.getByLabel('Email').fill('reviewer@board.example');
  await page.getByLabel('Password').fill('a long enough passphrase');
  await page.getByRole('button', { name: /sign in/i }).click();
  await page.waitForURL(/\/admin|\/evidence/);
}

describe('the working group reads the evidence', () => {
  it('every evidence page, with and without a breakdown, fits the viewport at 1280 px and 390 px; tables too wide scroll inside their own box', async () => {
    const pages: Array<[string, string]> = [
      ['overview', '/evidence'],
      ['overview-by-country', '/evidence?by=country'],
      ['overview-country-x-role', '/evidence?by=country&cross=role'],
      ['heatmap', '/evidence/heatmap'],
      ['heatmap-barriers', '/evidence/heatmap?set=barrier_index'],
      ['barriers', '/evidence/barriers'],
      ['barriers-by-country', '/evidence/barriers?by=country'],
      ['questions', '/evidence/questions'],
      ['questions-by-role', '/evidence/questions?by=role&question=S1_2a'],
      ['quotes', '/evidence/quotes'],
      ['report', '/evidence/report'],
      ['report-austria', '/evidence/report?country=AT&by=role'],
      // German and French words are longer than English ones: the report in each language must fit as well.
      ['report-german', '/evidence/report?lang=de'],
      ['report-german-austria', '/evidence/report?country=AT&by=role&lang=de'],
      ['report-french-by-country', '/evidence/report?by=country&lang=fr'],
      ['filter-error', '/evidence?country=AT&country=DE'],
      ['waves-choose', '/evidence/waves'],
      ['waves', `/evidence/waves?a=${earlierId}&b=${campaignId}`],
      ['waves-austria', `/evidence/waves?a=${earlierId}&b=${campaignId}&country=AT`],
    ];
    const context = await browser.newContext();
    const page = await context.newPage();
    await signInAsReviewer(page);
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      for (const [name, path] of pages) {
        await page.goto(`${origin}${path}`);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow, `${name} at ${width} px`).toBeLessThanOrEqual(0);
        if (shots) await page.screenshot({ path: `${shots}/${name}-${width}.png`, fullPage: true });
      }
    }
    // The default campaign is the one with responses; the filter error is shown in the page, with the filter bar.
    await page.goto(`${origin}/evidence?country=AT&country=DE`);
    expect(await page.locator('.filter-error').textContent()).toContain('Country: choose one value');
    expect(await page.locator('#filter-form').count()).toBe(1);
    await context.close();
  });

  it('downloads the report as a PDF of several pages that names the campaign, its fieldwork and its response profile', async () => {
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    const guard = guardPage(page, origin);
    await signInAsReviewer(page);
    await page.goto(`${origin}/evidence/report?campaign=${campaignId}`);
    if (shots) {
      // What the PDF is printed from: the page in print media at A4 width.
      await page.setViewportSize({ width: 794, height: 1123 });
      await page.emulateMedia({ media: 'print' });
      await page.screenshot({ path: `${shots}/report-print-794.png`, fullPage: true });
      await page.emulateMedia({ media: 'screen' });
    }
    // Printing launches a browser on the server: on a busy machine that takes a while, so no time limit here.
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 0 }), page.getByRole('link', { name: 'Download the report as PDF' }).click({ timeout: 0 })]);
    expect(download.suggestedFilename()).toMatch(/^wave-2026-staff-mobility-in-vet_report_.*\.pdf$/);
    const pdf = readFileSync((await download.path())!);
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const { pages, text } = readPdf(pdf);
    expect(pages).toBeGreaterThan(1);
    const words = text.replace(/\s+/g, ' ');
    expect(words).toContain(CAMPAIGN);
    expect(words).toContain('5 January 2026 to 28 February 2026');
    expect(words).toContain('Responses by Country');
    expect(words).toContain('Barriers, ranked');
    expect(words).toContain('Methodological note');
    expect(words).toContain('Finding a substitute teacher');
    expect(guard.problems).toEqual([]);
    await context.close();
  });

  it('chooses French on the report page and downloads the PDF in French: its headings, method note, numbers and dates', async () => {
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    const guard = guardPage(page, origin);
    await signInAsReviewer(page);
    await page.goto(`${origin}/evidence/report?campaign=${campaignId}`);
    await page.locator('.report-languages').getByRole('link', { name: 'Français' }).click();
    await page.waitForURL(/lang=fr/);
    expect(await page.locator('html').getAttribute('lang')).toBe('fr');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 0 }), page.getByRole('link', { name: 'Télécharger le rapport en PDF' }).click({ timeout: 0 })]);
    const { text } = readPdf(readFileSync((await download.path())!));
    const words = text.replace(/\s+/g, ' ');
    for (const heading of ['Ce que couvre ce rapport', 'Qui a répondu', 'Réponses par Pays', 'Indicateurs clés', 'Obstacles, par ordre d’importance', 'Note méthodologique']) expect(words).toContain(heading);
    expect(words).toContain('5 janvier 2026 au 28 février 2026');
    expect(words).toMatch(/\d+,\d %/);
    expect(words).not.toContain('Methodological note');
    expect(guard.problems).toEqual([]);
    await context.close();
  });
});
