import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../server/accounts/user.service.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { startMailCatcher } from '../../server/mail/mail-catcher.ts';
import { chromiumAvailable, launchBrowser, listen } from '../helpers/browser.ts';
import { createCampaignWithContacts } from '../helpers/mail.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let browser: Browser;
let server: Server;
let origin: string;
let catcher: Awaited<ReturnType<typeof startMailCatcher>>;
const dataDir = mkdtempSync(join(tmpdir(), 'coordinator-pages-'));
/** Set SCREENSHOT_DIR to keep a screenshot of each page at each width, to look at. */
const screenshots = process.env.SCREENSHOT_DIR;

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error('Debian chromium is needed for the browser tests: apt-get install chromium');
  catcher = await startMailCatcher({ dataDir, port: 0 });
  platform = await startTestPlatform({ appDeps: { mailCatcher: catcher.view } });
  ({ server, origin } = await listen(platform.app));
  browser = await launchBrowser();
  if (screenshots) mkdirSync(screenshots, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  server?.close();
  await catcher?.close();
  await platform?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function signedInPage(width: number): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  await page.goto(`${origin}/login`);
  await page.getByLabel('Email').fill('pages@board.example');
  await page.getByLabel('Password').fill('a long enough passphrase');
  await page.getByRole('button', { name: /sign in/i }).click();
  await page.waitForURL(/\/admin/);
  return page;
}

async function check(page: Page, name: string, width: number) {
  // The screenshot first, so that a page too wide can be looked at.
  if (screenshots) await page.screenshot({ path: join(screenshots, `${name}-${width}.png`), fullPage: true });
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(scrollWidth, `${name} at ${width} px`).toBeLessThanOrEqual(width);
}

describe('the coordinator pages changed for issue 11', () => {
  it('fit the viewport at 1280 and 390 px, and the email text editors take the page width', async () => {
    await createUser({ models: platform.models, now: platform.clock.now }, { name: 'Pages', email: 'pages@board.example', role: 'coordinator', password: 'a long enough passphrase' }, 'test setup');
    const campaign = await createCampaignWithContacts(platform, { contacts: 12, countries: ['DE', 'FR', 'EL'], types: ['ivet_school', 'ivet_dual'] });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaign.campaignId, 'test');
    const invitations = await platform.models.Invitation.find({ campaign: campaign.campaignId }).limit(4).lean();
    for (const [i, invitation] of invitations.entries()) {
      await platform.models.Completion.create({ _id: invitation._id, campaign: campaign.campaignId, at: new Date(platform.clock.current.getTime() + i * 86_400_000) });
    }
    const transport = nodemailer.createTransport({ url: catcher.url } as never);
    await transport.sendMail({
      from: 'Survey <survey@board.example>',
      to: 'jana@bk-nord.example',
      subject: 'Mobilität des Personals: Ihre Meinung zählt — Frühjahr 2027',
      text: `Guten Tag,\n\n${'https://survey.example.org/s/'.padEnd(200, 'x')}\n\n${'Sehr-lange-Zeile-'.repeat(60)}`,
      headers: { 'List-Unsubscribe': '<https://survey.example.org/u/abcdef0123456789abcdef0123456789>, <mailto:office@board.example?subject=unsubscribe>' },
    });
    transport.close();
    const [caught] = catcher.view.list(1);
    const id = String(campaign.campaignId);
    const csv = [
      'institution_name,country,institution_type,erasmus_id,contact_name,email,language,tags',
      `${campaign.institutions[0]!.name},DE,ivet_dual,,Leader renamed,${campaign.emails[0]},fr,north`,
      'Kauno technikos kolegija,LT,cvet_adult,E10203040,Rūta Kazlauskienė,ruta@ktk.example,en,pilot|baltic',
      'Kauno technikos kolegija,LT,cvet_adult,E10203040,Rūta Kazlauskienė,ruta@ktk.example,en,pilot|baltic',
      'School abroad,other,ivet_school,,Ana,ana@abroad.example,en,',
    ].join('\n');

    for (const width of [1280, 390]) {
      const page = await signedInPage(width);
      for (const [name, path] of [
        ['mail-catcher', '/admin/mail'],
        ['mail-message', `/admin/mail/${caught!.id}`],
        ['fieldwork', `/admin/campaigns/${id}/fieldwork`],
        ['email-preview', `/admin/campaigns/${id}/preview`],
        ['sending', `/admin/campaigns/${id}/sending`],
        ['confirm-send', `/admin/campaigns/${id}/send`],
        ['privacy', '/admin/privacy'],
        ['privacy-records', '/admin/privacy/records'],
        ['campaigns', '/admin/campaigns'],
        ['close', `/admin/campaigns/${id}/close`],
        ['reminders', `/admin/campaigns/${id}/reminders`],
        ['institutions', '/admin/institutions'],
        ['institution', `/admin/institutions/${campaign.institutions[0]!._id}`],
        ['institution-new', '/admin/institutions/new'],
        ['dashboard', '/admin'],
        ['campaign', `/admin/campaigns/${id}`],
        ['suppressions', '/admin/suppressions'],
        ['users', '/admin/users'],
        ['audit', '/admin/audit'],
        ['demo-data', '/admin/demo-data'],
        // Last: the editors' widths are measured on it below.
        ['campaign-form', '/admin/campaigns/new'],
      ] as const) {
        await page.goto(`${origin}${path}`);
        if (name === 'email-preview') {
          // The HTML version is drawn in its sandboxed frame.
          await expect.poll(() => page.frames().find((f) => f !== page.mainFrame())?.evaluate(() => document.body?.innerText ?? '').catch(() => '') ?? '').toMatch(/Dear Leader/);
        }
        await check(page, name, width);
      }
      // The email editors of the campaign form: as wide as the form's content.
      const widths = await page.evaluate(() => {
        const editor = document.querySelector('textarea.email-text')!.getBoundingClientRect().width;
        const main = document.querySelector('main')!;
        const style = getComputedStyle(main);
        return { editor, content: main.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) };
      });
      expect(widths.editor).toBeGreaterThan(widths.content * 0.85);

      await page.goto(`${origin}/admin/institutions/import`);
      await page.locator('#import-text').fill(csv);
      await page.getByRole('button', { name: 'Show the preview' }).click();
      await page.getByRole('button', { name: /Import: create/ }).waitFor();
      await check(page, 'import-preview', width);
      // A refused file quotes its line, which may have no space to break at.
      await page.goto(`${origin}/admin/institutions/import`);
      await page.locator('#import-text').fill('institution_name,country,institution_type,contact_name,email\n"Berufsschule-Wien-Nord-Floridsdorf,AT,ivet_school,Eva.Kaiser,eva.kaiser@bs-wien-floridsdorf.example\n');
      await page.getByRole('button', { name: 'Show the preview' }).click();
      await page.getByText('opens a quoted cell that is never closed').waitFor();
      await check(page, 'import-refused', width);
      await page.close();
    }
  });
});
