import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailCatcher } from '../../server/mail/mail-catcher.ts';
import { signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let catcher: Awaited<ReturnType<typeof startMailCatcher>>;
const dataDir = mkdtempSync(join(tmpdir(), 'mail-catcher-'));

beforeAll(async () => {
  catcher = await startMailCatcher({ dataDir, port: 0 });
  platform = await startTestPlatform({ appDeps: { mailCatcher: catcher.view } });
});
afterAll(async () => {
  await catcher?.close();
  await platform?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const SUBJECT = 'Mobilität des Personals: Ihre Meinung zählt — Frühjahr 2027';
const UNSUBSCRIBE = '<https://survey.example.org/u/abcdef0123456789>, <mailto:office@board.example?subject=unsubscribe>';

async function send() {
  const transport = nodemailer.createTransport({ url: catcher.url } as never);
  // A long unbroken line, as a personal link or a pasted paragraph makes.
  const text = `Guten Tag,\n\n${'Sehr-lange-Zeile-ohne-Leerzeichen-'.repeat(40)}\n\nhttps://survey.example.org/s/${'x'.repeat(67)}`;
  await transport.sendMail({
    from: 'Survey <survey@board.example>',
    to: 'jana@bk-nord.example',
    subject: SUBJECT,
    text,
    html: '<p>Guten Tag,</p>',
    headers: { 'List-Unsubscribe': UNSUBSCRIBE, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
  });
  transport.close();
}

describe('the mail catcher pages', () => {
  it('list a message with a non-ASCII subject decoded, and show its List-Unsubscribe header and a wrapping body', async () => {
    await send();
    const { agent } = await signIn(platform, 'coordinator');
    const list = await agent.get('/admin/mail').expect(200);
    expect(list.text).toContain('Mobilität des Personals: Ihre Meinung zählt — Frühjahr 2027');
    expect(list.text).not.toContain('=?UTF-8?');
    // The date when it was received, in the platform's one format, not an ISO string.
    expect(list.text).not.toMatch(/\d{4}-\d\d-\d\dT/);
    expect(list.text).toMatch(/\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC/);

    const [caught] = catcher.view.list(1);
    const page = await agent.get(`/admin/mail/${caught!.id}`).expect(200);
    const shown = unescapeHtml(page.text);
    expect(shown).toContain('https://survey.example.org/u/abcdef0123456789');
    expect(shown).toContain('mailto:office@board.example?subject=unsubscribe');
    expect(shown).toContain('List-Unsubscribe=One-Click');
    expect(page.text).not.toContain('[object Object]');
    // The body is shown in a block that wraps long lines (the CSS class says how).
    expect(page.text).toMatch(/class="caught-body"/);
    const css = await agent.get('/static/site.css').expect(200);
    expect(css.text).toMatch(/\.caught-body\s*\{[^}]*white-space:\s*pre-wrap[^}]*overflow-wrap:\s*anywhere/);
  });
});

function unescapeHtml(html: string): string {
  return html.replace(/&#x3D;/g, '=').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}
