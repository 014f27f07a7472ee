import type { Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { chromiumAvailable, clickWhenDrawn, launchBrowser, listen } from '../helpers/browser.ts';
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

/** The page survey-core shows, and whether the question's element is on it and on screen. */
async function where(page: Page, question: string) {
  return page.evaluate((name) => {
    const survey = (window as any).vetSurvey;
    const element = document.querySelector(`[data-name="${name}"]`);
    const box = element?.getBoundingClientRect();
    return {
      page: survey.currentPage.name as string,
      questionPage: survey.getQuestionByName(name).page.name as string,
      onScreen: Boolean(box && box.bottom > 0 && box.top < window.innerHeight),
    };
  }, question);
}

describe('the error list of a refused submission', () => {
  for (const width of [1280, 390]) {
    it(`at ${width} px, a click on each link (later pages, earlier pages, in any order) shows that question's page with the question on screen`, async () => {
      const { path } = await createInvitedContact(platform, { language: 'en' });
      const page = await browser.newPage({ viewport: { width, height: 800 } });
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
      for (const [index, name] of [[1, 'S1_5'], [2, 'S2_10a'], [0, 'P3'], [2, 'S2_10a'], [1, 'S1_5']] as const) {
        await clickWhenDrawn(links.nth(index));
        await expect.poll(async () => JSON.stringify(await where(page, name))).toMatch(/"onScreen":true/);
        const shown = await where(page, name);
        expect(shown.page, `after the link to ${name}`).toBe(shown.questionPage);
      }
      await page.close();
    });
  }
});
