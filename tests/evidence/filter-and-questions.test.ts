import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNLISTED_GROUPS_NOTE } from '../../server/evidence/disclosure.ts';
import { DIMENSION_NAMES, DIMENSIONS } from '../../server/evidence/evidence-filter.ts';
import { signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { catalogue, COMPLEMENT_CASE, insertCountry, SUPPRESSED_NOTE, type RawResponse } from './evidence-data.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 5, minCellRespondents: 10 });
});
afterAll(async () => {
  await platform.close();
});

const NOTE = SUPPRESSED_NOTE;

/** `respondents` responses from `institutions` institutions of one country, all school-based IVET. */
function country(campaign: Types.ObjectId, code: string, institutions: number, respondents: number): Promise<RawResponse[]> {
  return insertCountry(platform, campaign, code, institutions, respondents, { profile: { institutionType: 'ivet_school' } });
}

/** The rows of the table captioned `caption`: header cell, then the data cells' texts. */
function tableRows(html: string, caption: string): string[][] {
  const table = html.split(`<caption>${caption}`)[1]!.split('</table>')[0]!;
  return [...table.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((row) => [...row[1]!.matchAll(/<t[hd][^>]*>([\s\S]*?)<\/t[hd]>/g)].map((cell) => cell[1]!.trim()));
}

describe('filter bar', () => {
  it('without a chosen campaign, pages show the most recent real campaign that has opened, not the demo one nor one yet to open', async () => {
    const day = 24 * 3600_000;
    const now = platform.clock.now().getTime();
    const create = (name: string, opensAt: number, demo = false) =>
      platform.models.Campaign.create({ name, strands: ['S1'], opensAt: new Date(opensAt), closesAt: new Date(opensAt + 90 * day), demo });
    const older = await create('Wave 2025', now - 400 * day);
    const latest = await create('Wave 2026', now - 30 * day);
    await create('Demo campaign', now - day, true);
    await create('Wave 2027', now + 300 * day);
    await country(older._id, 'AT', 6, 12);
    await country(latest._id, 'AT', 6, 14);
    const { agent } = await signIn(platform, 'reviewer');

    expect((await agent.get('/evidence/indicators.json').expect(200)).body.responses).toBe(14);
    const page = (await agent.get('/evidence').expect(200)).text;
    expect(page).toContain(`<option value="${latest._id}" selected>Wave 2026</option>`);
    expect((await agent.get(`/evidence/indicators.json?campaign=${older._id}`).expect(200)).body.responses).toBe(12);
  });


  it('every profile dimension is a select listing the survey\'s codes with their English labels, and a chosen value stays selected and filters', async () => {
    const campaign = new Types.ObjectId();
    await country(campaign, 'AT', 5, 10);
    await country(campaign, 'IT', 6, 12);
    const { agent } = await signIn(platform, 'reviewer');

    const page = (await agent.get(`/evidence?campaign=${campaign}`).expect(200)).text;
    const form = page.split('id="filter-form"')[1]!.split('</form>')[0]!;
    expect(form).not.toContain('<input name="country"');
    for (const dimension of DIMENSION_NAMES) {
      const select = form.split(`<select name="${dimension}">`)[1]?.split('</select>')[0];
      expect(select, `${dimension} has a select`).toBeDefined();
      const choices = catalogue.byName.get(DIMENSIONS[dimension].question)!.choices;
      expect(choices.length, dimension).toBeGreaterThan(1);
      for (const choice of choices) expect(select, `${dimension} ${choice.value}`).toContain(`<option value="${choice.value}">${choice.label.default.replace(/&/g, '&amp;')} (${choice.value})</option>`);
    }
    expect(form).toContain('<option value="AT">Austria (AT)</option>');

    // What the form sends: the chosen country, every other select left at "All".
    const empties = DIMENSION_NAMES.filter((d) => d !== 'country').map((d) => `${d}=`).join('&');
    const filtered = (await agent.get(`/evidence?campaign=${campaign}&country=AT&${empties}`).expect(200)).text;
    expect(filtered).toContain('<option value="AT" selected>Austria (AT)</option>');
    expect(filtered).toContain('<strong>10</strong> responses');
    await agent.get(`/evidence?country=Austria`).expect(400);
  });
});

describe('answers per question by group', () => {
  it('with a breakdown, one chosen question is shown with a row per group; a too-small group and its complement are left out with one note', async () => {
    const campaign = new Types.ObjectId();
    for (const [code, institutions, respondents] of COMPLEMENT_CASE) await country(campaign, code, institutions, respondents);
    const { agent } = await signIn(platform, 'reviewer');

    const page = (await agent.get(`/evidence/questions?campaign=${campaign}&by=country&question=S1_2a`).expect(200)).text;
    expect(page).toContain('<option value="S1_2a" selected>');
    const [header, overall, ...groups] = tableRows(page, 'S1_2a by group');
    // Groups are rows, in the questionnaire's order of countries; the answers are the columns.
    expect(header!.slice(0, 6)).toEqual(['Group', 'Respondents (n)', 'Valid answers', 'Don&#x27;t know', 'Top two / yes', 'Mean']);
    // Every category is listed: 1 to 4 and "don't know", those nobody chose with 0.
    expect(header).toHaveLength(11);
    expect(overall!.slice(0, 6)).toEqual(['Overall', '46', '46', '0', '100.0%', '4.00']);
    // Germany (4 institutions) is too small; Austria, the next smallest, is suppressed with it: neither is listed, as the note says.
    expect(groups.map((row) => row[0])).toEqual(['Italy', 'Poland']);
    expect(groups[0]!.slice(1, 3)).toEqual(['12', '12']);
    expect(groups[0]![6]).toBe('0 (0.0%)');
    expect(page).toContain(`Groups with too few answers are ${NOTE}; ${UNLISTED_GROUPS_NOTE}.`);
    expect(page).not.toContain('groups not shown');
    expect(page).not.toContain('Germany</th>');

    const yesNo = tableRows((await agent.get(`/evidence/questions?campaign=${campaign}&by=country&question=S1_1`).expect(200)).text, 'S1_1 by group');
    const yes = yesNo[0]!.indexOf('Yes');
    expect(yesNo.slice(2).map((row) => row[yes])).toEqual(['6 (50.0%)', '7 (50.0%)']);

    // Without a breakdown there is no per-group table.
    expect((await agent.get(`/evidence/questions?campaign=${campaign}`).expect(200)).text).not.toContain('S1_2a by group');
  });
});
