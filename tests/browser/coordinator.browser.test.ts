import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../server/accounts/user.service.ts';
import { startMailCatcher } from '../../server/mail/mail-catcher.ts';
import { createMailTransport } from '../../server/mail/mail-transport.ts';
import { startOutboxSender, type RunningSender } from '../../server/mail/outbox-sender.service.ts';
import { chromiumAvailable, guardPage, launchBrowser, listen } from '../helpers/browser.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let browser: Browser;
let server: Server;
let origin: string;
let sender: RunningSender | undefined;
let catcher: Awaited<ReturnType<typeof startMailCatcher>>;
const dataDir = mkdtempSync(join(tmpdir(), 'coordinator-browser-'));

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error('Debian chromium is needed for the browser tests: apt-get install chromium');
  // The embedded default's whole mail path: outbox → sender → SMTP → local mail catcher → /admin/mail.
  catcher = await startMailCatcher({ dataDir, port: 0 });
  platform = await startTestPlatform({ appDeps: { mailCatcher: catcher.view, wakeSender: () => sender?.wake() } });
  // The browser's date inputs speak of today; so must the platform's clock.
  platform.clock.current = new Date();
  ({ server, origin } = await listen(platform.app));
  sender = startOutboxSender(
    {
      models: platform.models,
      transport: createMailTransport({ url: catcher.url, ratePerSecond: 50, maxConnections: 2 }),
      tokenKey: platform.tokenKey,
      publicUrl: origin,
      from: 'Survey <survey@localhost>',
      now: () => new Date(),
      workerId: 'browser-test',
    },
    { maxAttempts: 3, leaseMs: 60_000, batchSize: 10, backoffMs: 1000 },
    { idleMs: 500 },
  );
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await sender?.stop();
  server?.close();
  await catcher?.close();
  await platform?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const CSV = [
  'institution_name,country,institution_type,erasmus_id,contact_name,email,language',
  'Berufskolleg Nord,DE,ivet_dual,,Jana Krüger,jana@bk-nord.example,de',
  'Lycée des métiers Rive Gauche,FR,ivet_school,E12345678,Luc Bernard,luc@lycee-rg.example,fr',
  'Ammattiopisto Itä,FI,ivet_school,,Aino Laine,aino@ai.example,en',
].join('\n');

describe('a coordinator in the browser', () => {
  it('imports a CSV, chooses an audience, sees the count, sends a test, confirms and sends; the email reaches the mail catcher and its link opens the questionnaire', async () => {
    await createUser(
      { models: platform.models, now: platform.clock.now },
      { name: 'Coordinator', email: 'coordinator@board.example', role: 'coordinator', password: 'a long enough passphrase' },
      'test setup',
    );
    const context = await browser.newContext();
    const page = await context.newPage();
    const guard = guardPage(page, origin);

    await page.goto(`${origin}/login`);
    await page.getByLabel('Email').fill('coordinator@board.example');
    await page.getByLabel('Password').fill('a long enough passphrase');
    await page.getByRole('button', { name: /sign in/i }).click();
    await page.waitForURL(/\/admin/);

    // Import: paste, preview (nothing written yet), confirm.
    await page.goto(`${origin}/admin/institutions/import`);
    await page.locator('#import-text').fill(CSV);
    await page.getByRole('button', { name: 'Show the preview' }).click();
    await page.getByRole('button', { name: /Import: create 3/ }).waitFor();
    expect(await platform.models.Contact.countDocuments({})).toBe(0);
    await page.getByRole('button', { name: /Import: create 3/ }).click();
    await page.waitForLoadState();
    expect(await platform.models.Contact.countDocuments({})).toBe(3);

    // Campaign with the default texts and an audience: Germany and France only (2 of the 3 contacts).
    await page.goto(`${origin}/admin/campaigns/new`);
    await page.locator('#campaign-name').fill('Spring wave');
    const today = new Date();
    const day = (d: Date) => d.toISOString().slice(0, 10);
    await page.locator('#campaign-opens').fill(day(new Date(today.getTime() - 86_400_000)));
    await page.locator('#campaign-last-day').fill(day(new Date(today.getTime() + 30 * 86_400_000)));
    await page.locator('#audience-countries').selectOption(['DE', 'FR']);
    await page.getByRole('button', { name: 'Create the campaign' }).click();

    // The count is shown before any link is made, and the button makes exactly that many.
    await page.getByRole('button', { name: 'Create 2 personal links' }).waitFor();
    expect(await page.locator('#audience-summary').textContent()).toMatch(/2\s+contacts match: active contacts in FR \(France\), DE \(Germany\)/);
    expect(await platform.models.Invitation.countDocuments({})).toBe(0);
    await page.getByRole('button', { name: 'Create 2 personal links' }).click();
    await page.getByText('No personal link to create').waitFor();
    expect(await platform.models.Invitation.countDocuments({})).toBe(2);

    // A test of each language to the coordinator, through the real sending path.
    await page.getByRole('link', { name: 'Preview the emails and send a test' }).click();
    expect(await page.content()).toMatch(/Spring wave/);
    await page.getByRole('button', { name: 'Send a test of each language to me' }).click();
    await page.waitForURL(/\/preview/);
    await expect.poll(async () => (await catcher.view.list(50)).length, { timeout: 240_000 }).toBe(3);
    const tests = catcher.view.list(50);
    expect(tests.every((m) => m.to.includes('coordinator@board.example'))).toBe(true);
    expect(await platform.models.Outbox.countDocuments({ kind: 'invitation' })).toBe(0);

    // The confirmation says how many and to whom before anything is sent.
    await page.getByRole('link', { name: 'Send the invitations…' }).first().click();
    const summary = await page.locator('#confirm-summary').textContent();
    expect(summary).toMatch(/You are about to send 2 invitation emails to 2 contacts at 2 institutions/);
    await page.getByRole('button', { name: 'Send 2 invitation emails now' }).click();
    await page.waitForURL(/\/sending$/);

    // The sender delivers to the local mail catcher; the coordinator reads the email there.
    await expect.poll(async () => (await catcher.view.list(50)).length, { timeout: 240_000 }).toBe(5);
    expect((await catcher.view.list(50)).some((m) => JSON.stringify(m.to).includes('aino@ai.example'))).toBe(false);
    await page.goto(`${origin}/admin/mail`);
    await page.getByRole('link').filter({ hasText: /./ }).last().waitFor();
    const toJana = (await catcher.view.list(50)).find((m) => JSON.stringify(m.to).includes('jana@bk-nord.example'))!;
    await page.goto(`${origin}/admin/mail/${toJana.id}`);
    const link = page.locator('a[href*="/s/"]').first();
    const href = await link.getAttribute('href');
    expect(href).toMatch(new RegExp(`^${origin}/s/[0-9a-f]{24}[A-Za-z0-9_-]{43}$`));

    await page.goto(href!);
    await page.locator('[data-name="P1"]').waitFor();
    expect(await page.locator('html').getAttribute('lang')).toBe('de');
    expect(guard.problems).toEqual([]);
    await context.close();
  });
});
