import type { Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord, flattenerOf, type AnalyticRecordDoc } from '../../server/evidence/analytic-record.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { chromiumAvailable, clickWhenDrawn, guardPage, launchBrowser, listen } from '../helpers/browser.ts';
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

async function pick(page: Page, question: string, index = 0) {
  await clickWhenDrawn(page.locator(`[data-name="${question}"] .sd-item label, [data-name="${question}"] label.sd-selectbase__label`).nth(index));
}

async function next(page: Page) {
  const saved = page.waitForResponse((res) => res.url().endsWith('/draft') && res.request().method() === 'PUT');
  await clickWhenDrawn(page.getByRole('button', { name: 'Next' }).first());
  expect((await saved).status()).toBe(200);
}

describe('a school leader in the browser', () => {
  it('fills the questionnaire across pages, closes the page, reopens the link, resumes where they stopped and submits', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'en' });
    const context = await browser.newContext();
    let page = await context.newPage();
    let guard = guardPage(page, origin);

    await page.goto(origin + path);
    await expect(page.locator('[data-name="P1"]')).toBeTruthy();
    // The page may render once more just after loading (pre-filled country, counter): open the list again if it closed.
    for (let attempt = 1; ; attempt += 1) {
      await page.locator('[data-name="P1"] .sd-dropdown').click();
      try {
        await page.locator('.sv-list__item', { hasText: 'Austria' }).first().click({ timeout: 5000 });
        break;
      } catch (error) {
        if (attempt === 5) throw error;
      }
    }
    for (const question of ['P2', 'P3', 'P4a', 'P4b', 'P5']) await pick(page, question, 1);
    await next(page);
    await pick(page, 'P8', 0);
    await next(page);
    await page.locator('[data-name="P9"]').waitFor();
    expect(guard.problems).toEqual([]);
    await page.close();

    const draft = await platform.models.Invitation.findById(invitation._id).lean();
    expect(draft?.draft?.pageNo).toBe(2);
    expect(JSON.parse(draft!.draft!.json!)).toMatchObject({ P1: 'AT', P2: 'ivet_dual', P8: 'accredited' });

    // Reopen: the page resumes on the third page with the answers given so far.
    page = await context.newPage();
    guard = guardPage(page, origin);
    await page.goto(origin + path);
    await page.locator('[data-name="P9"]').waitFor();
    expect(await page.evaluate(() => (window as any).vetSurvey.data.P1)).toBe('AT');

    await pick(page, 'P9', 0); // head of institution: S4 is shown
    await pick(page, 'P10a', 0); // no mobility of their own
    await clickWhenDrawn(page.locator('[data-name="P11"] label', { hasText: 'No' }).first()); // S2 is hidden
    await next(page);

    // S1: barriers by clicking, the top-three ranking through the model (drag and drop).
    await pick(page, 'S1_1', 0);
    await pick(page, 'S1_2a', 3);
    await pick(page, 'S1_2c', 2);
    await page.evaluate(() => (window as any).vetSurvey.setValue('S1_3', ['S1_2a', 'S1_2c', 'S1_2l']));
    // Click "Next" until the last page, then "Complete".
    for (let guardSteps = 0; guardSteps < 20; guardSteps += 1) {
      const isLast = await page.evaluate(() => (window as any).vetSurvey.isLastPage);
      if (isLast) break;
      await next(page);
    }
    await clickWhenDrawn(page.getByRole('button', { name: 'Complete' }).first());
    await page.getByText('Thank you').waitFor();
    expect(guard.problems).toEqual([]);
    await context.close();

    const response = await platform.models.Response.findOne({ invitation: invitation._id }).lean();
    expect(response?.revision).toBe(1);
    expect(response?.profile).toMatchObject({ country: 'AT', institutionType: 'ivet_dual', erasmus: 'accredited', role: 'head' });
    expect(response?.data).toMatchObject({ P11: false, S1_3: ['S1_2a', 'S1_2c', 'S1_2l'] });
    // The closed answers are counted from the response's analytic record.
    const record = decodeRecord((await platform.models.AnalyticRecord.findById(invitation._id).lean<AnalyticRecordDoc>())!, flattenerOf(buildCatalogue(loadSurveyLibrary())));
    expect(record.items.some((item) => item.question === 'S1_3' && item.value === 'S1_2c' && item.rank === 2)).toBe(true);
  });

  it('keeps answers in the browser while the server cannot be reached and sends them when it is back', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'fr' });
    const context = await browser.newContext();
    const page = await context.newPage();
    const guard = guardPage(page, origin);
    await page.goto(origin + path);
    await page.locator('[data-name="P2"]').waitFor();
    await pick(page, 'P2', 2);

    await context.setOffline(true);
    await page.locator('#save-later').click();
    await page.locator('#status.is-error').waitFor();
    expect(await page.locator('#status').textContent()).toContain('serveur est injoignable');
    expect((await platform.models.Invitation.findById(invitation._id).lean())?.draft).toBeUndefined();

    const back = page.waitForResponse((res) => res.url().endsWith('/draft') && res.status() === 200);
    await context.setOffline(false);
    await back;
    const draft = await platform.models.Invitation.findById(invitation._id).lean();
    expect(JSON.parse(draft!.draft!.json!)).toMatchObject({ P2: 'cvet_adult' });
    // The failed fetch while offline is the only console error allowed.
    expect(guard.problems.filter((p) => !p.includes('ERR_INTERNET_DISCONNECTED'))).toEqual([]);
    await context.close();
  });
});

describe('two tabs of the same link', () => {
  it('when a stale tab submits different answers, it says so in the respondent language and sends them as the next revision on request', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'de' });
    const context = await browser.newContext();
    const [first, stale] = [await context.newPage(), await context.newPage()];
    const guard = guardPage(stale, origin);
    for (const page of [first, stale]) {
      await page.goto(origin + path);
      await page.locator('[data-name="P1"]').waitFor();
    }
    const complete = (page: Page, answers: Record<string, unknown>) =>
      page.evaluate((data) => {
        const survey = (window as any).vetSurvey;
        survey.data = data;
        survey.doComplete();
      }, answers);

    await complete(first, completeAnswers({ S1_5: 5 }));
    await first.getByText('Vielen Dank').waitFor();

    const refused = stale.waitForResponse((res) => res.url().endsWith('/submit'));
    await complete(stale, completeAnswers({ S1_5: 1 }));
    expect((await refused).status()).toBe(409);
    await stale.locator('#conflict').waitFor();
    expect(await stale.locator('#status').textContent()).toContain('bereits Antworten übermittelt');
    expect((await platform.models.Response.findById(invitation._id).lean())?.revision).toBe(1);

    await stale.getByRole('button', { name: 'Antworten dieser Seite verwenden' }).click();
    await stale.getByText('Vielen Dank').waitFor();
    const current = await platform.models.Response.findById(invitation._id).lean();
    expect(current?.revision).toBe(2);
    expect((current?.data as Record<string, unknown>).S1_5).toBe(1);
    expect(guard.problems.filter((p) => !p.includes('409'))).toEqual([]);

    // The first tab, reloaded, offers the correction with the answers now current.
    await first.goto(`${origin}${path}?edit=1`);
    await first.locator('[data-name="P1"]').waitFor();
    expect(await first.evaluate(() => (window as any).vetSurvey.data.S1_5)).toBe(1);
    await context.close();
  });
});

/** WCAG 2 contrast ratio of an element's text against the background it is drawn on (computed colours, alpha blended). */
async function contrastOf(page: Page, selector: string): Promise<{ ratio: number; text: string }> {
  return page.locator(selector).first().evaluate((element) => {
    const parse = (css: string) => {
      const [r, g, b, a = 1] = (css.match(/[\d.]+/g) ?? []).map(Number);
      return { r: r!, g: g!, b: b!, a };
    };
    const over = (top: ReturnType<typeof parse>, bottom: ReturnType<typeof parse>) => ({
      r: top.r * top.a + bottom.r * (1 - top.a),
      g: top.g * top.a + bottom.g * (1 - top.a),
      b: top.b * top.a + bottom.b * (1 - top.a),
      a: 1,
    });
    // The background: every ancestor's colour, blended from the page's (white) upwards.
    const layers: string[] = [];
    for (let node: Element | null = element; node; node = node.parentElement) layers.push(getComputedStyle(node).backgroundColor);
    let background = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) background = over(parse(layer), background);
    const style = getComputedStyle(element);
    const color = parse(style.color);
    const text = over({ ...color, a: color.a * Number(style.opacity) }, background);
    const luminance = (c: { r: number; g: number; b: number }) => {
      const channel = (v: number) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
    };
    const [light, dark] = [luminance(text), luminance(background)].sort((x, y) => y - x);
    return { ratio: (light! + 0.05) / (dark! + 0.05), text: (element as HTMLElement).innerText.slice(0, 40) };
  });
}

describe('the questionnaire page around the questions', () => {
  it('counts pages over the whole questionnaire, so the total stays the same when pages appear or disappear', async () => {
    const { path } = await createInvitedContact(platform, { language: 'en' });
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    const guard = guardPage(page, origin);
    await page.goto(origin + path);
    const counter = page.locator('#page-counter-text');
    await expect.poll(() => counter.textContent()).toMatch(/^Page 1 of \d+$/);
    const total = Number((await counter.textContent())!.match(/of (\d+)/)![1]);

    // Country and institution type are pre-filled from the institution record.
    expect(await page.evaluate(() => (window as any).vetSurvey.data)).toMatchObject({ P1: 'DE', P2: 'ivet_school' });
    for (const question of ['P3', 'P4a', 'P4b', 'P5']) await pick(page, question, 1);
    await next(page);
    await pick(page, 'P8', 0);
    await next(page);
    expect(await counter.textContent()).toBe(`Page 3 of ${total}`);
    // Answers that hide whole strands (S2, S4) or show them again never change the total.
    for (const answers of [{ P9: 'teacher_vocational', P11: false }, { P9: 'head', P11: true }]) {
      await page.evaluate((a) => Object.entries(a).forEach(([k, v]) => (window as any).vetSurvey.setValue(k, v)), answers);
      expect(await counter.textContent()).toBe(`Page 3 of ${total}`);
    }
    await pick(page, 'P10a', 0);
    await next(page);
    expect(await counter.textContent()).toBe(`Page 4 of ${total}`);
    expect(await page.locator('#page-counter-section').textContent()).toBe('· Preconditions and barriers');
    // The introduction is on the first page only.
    expect(await page.locator('.sd-header__text .sd-description').isVisible()).toBe(false);
    expect(guard.problems).toEqual([]);
    await context.close();
  });

  it('when the respondent switches language, the header, toolbar and counter switch with the questionnaire', async () => {
    const { path } = await createInvitedContact(platform, { language: 'en' });
    const context = await browser.newContext();
    const page = await context.newPage();
    const guard = guardPage(page, origin);
    await page.goto(origin + path);
    await page.locator('[data-name="P1"]').waitFor({ state: 'attached' });
    const saved = page.waitForResponse((res) => res.url().endsWith('/draft'));
    await page.locator('#language').selectOption('de');
    expect((await saved).status()).toBe(200);
    expect(await page.locator('.site-header__name').textContent()).toBe('Umfrage zur Mobilität des Berufsbildungspersonals');
    expect(await page.locator('label[for="language"]').textContent()).toBe('Sprache');
    expect(await page.locator('#save-later').textContent()).toBe('Speichern und später fortsetzen');
    expect(await page.locator('#page-counter-text').textContent()).toMatch(/^Seite 1 von \d+$/);
    expect(await page.locator('.skip-link').textContent()).toBe('Zum Inhalt springen');
    expect(await page.evaluate(() => [document.documentElement.lang, document.title])).toEqual(['de', 'Umfrage zur Mobilität des Berufsbildungspersonals']);
    expect(await page.locator('[data-name="P1"] .sd-question__title').textContent()).toContain('Land');
    expect(guard.problems).toEqual([]);
    await context.close();
  });

  it('when the server refuses answers on several pages, every one is listed with a link that goes to its question', async () => {
    const { path } = await createInvitedContact(platform, { language: 'en' });
    const page = await browser.newPage();
    await page.goto(origin + path);
    await page.locator('[data-name="P1"]').waitFor({ state: 'attached' });
    const refused = page.waitForResponse((res) => res.url().endsWith('/submit'));
    await page.evaluate((data) => {
      const survey = (window as any).vetSurvey;
      survey.data = data;
      survey.doComplete();
    }, completeAnswers({ P3: undefined, S1_5: 99, S2_10a: 9999 }));
    expect((await refused).status()).toBe(422);
    const links = page.locator('#error-list li a');
    await expect.poll(() => links.count()).toBe(3);
    expect(await links.evaluateAll((as) => as.map((a) => (a as HTMLElement).dataset.question))).toEqual(['P3', 'S1_5', 'S2_10a']);
    // The page first moves the focus to the first refused answer; survey-core does that after a delay,
    // so the list is used once it has: a focus arriving later would take the Enter below.
    const focused = () => page.evaluate(() => document.activeElement?.closest('[data-name]')?.getAttribute('data-name') ?? null);
    await expect.poll(focused).toBe('P3');
    // Keyboard, as a screen-reader user would follow the list.
    await links.nth(2).focus();
    await page.keyboard.press('Enter');
    await expect.poll(focused).toBe('S2_10a');
    expect(await page.evaluate(() => (window as any).vetSurvey.currentPage.name)).toBe('s2_figures');
    await page.close();
  });

  it('draws the counter and the descriptions with a contrast ratio of at least 4.5:1', async () => {
    const { path } = await createInvitedContact(platform, { language: 'fr' });
    const page = await browser.newPage();
    await page.goto(origin + path);
    await page.locator('[data-name="P1"]').waitFor({ state: 'attached' });
    for (const selector of ['#page-counter-text', '#page-counter-section', '.sd-header__text .sd-description', '.sd-page__description']) {
      const { ratio, text } = await contrastOf(page, selector);
      expect.soft(ratio, `${selector} ("${text}")`).toBeGreaterThanOrEqual(4.5);
    }
    await page.close();
  });
});
