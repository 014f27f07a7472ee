import ExcelJS from 'exceljs';
import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvLine, neutraliseFormula } from '../../server/shared/csv.ts';
import { signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { DONT_KNOW } from '../../server/evidence/question-catalogue.ts';
import { UNLISTED_GROUPS_NOTE } from '../../server/evidence/disclosure.ts';
import { COMPLEMENT_CASE, insertCountry, SUPPRESSED_NOTE, type RawResponse } from './evidence-data.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 5, minCellRespondents: 10 });
});
afterAll(async () => {
  await platform.close();
});

const NOTE = SUPPRESSED_NOTE;

/** `respondents` responses from `institutions` institutions of one country, every one answering S1.2a. */
function country(campaign: Types.ObjectId, code: string, institutions: number, respondents: number, text?: string): Promise<RawResponse[]> {
  return insertCountry(platform, campaign, code, institutions, respondents, { profile: { role: 'vocational_teacher' }, ...(text ? { text } : {}) });
}

async function institutionsNamed(responses: RawResponse[], name: string) {
  for (const id of new Set(responses.map((r) => String(r.institution)))) {
    await platform.models.Institution.create({ _id: id, name: `${name} ${id.slice(-4)}`, country: 'AT', type: 'ivet_school', key: `${name}-${id}` });
  }
}

type JsonCell = { suppressed: boolean; value?: number; n?: number };
const participation = (json: { indicators: Array<{ code: string; overall: JsonCell; groups: Record<string, JsonCell> }> }) =>
  json.indicators.find((i) => i.code === 'participation_rate:S1_1')!;

/**
 * Italy's "don't know" and respondents withheld and its valid answers shown, alike in the questions page (its first cells,
 * `pageCells`), the CSV and the Excel export.
 */
async function expectItalyWithheld(agent: Awaited<ReturnType<typeof signIn>>['agent'], campaign: Types.ObjectId, question: string, validN: number, pageCells: string[]) {
  const page = (await agent.get(`/evidence/questions?campaign=${campaign}&by=country&question=${question}`).expect(200)).text;
  const italy = page.split('<th scope="row">Italy</th>')[1]!.split('</tr>')[0]!.match(/<td>([^<]*)<\/td>/g)!.map((td) => td.slice(4, -5));
  expect(italy.slice(0, pageCells.length)).toEqual(pageCells);

  const csv = (await agent.get(`/evidence/export/questions.csv?campaign=${campaign}&by=country`).expect(200)).text;
  const header = csv.split('\r\n').find((l) => l.startsWith('Question,'))!.split(',');
  const line = csv.split('\r\n').find((l) => l.includes(`,${question},Italy,`))!.split(',');
  expect(line[header.indexOf('Respondents (n)')]).toBe('');
  expect(line[header.indexOf("Don't know")]).toBe('');
  expect(line[header.indexOf('Valid answers or picks')]).toBe(String(validN));
  expect(line[header.indexOf('Note')]).toBe("respondents and don't know suppressed");

  const xlsx = await agent.get(`/evidence/export/questions.xlsx?campaign=${campaign}&by=country`).buffer(true).parse(binary as never).expect(200);
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(xlsx.body as never);
  const sheet = workbook.worksheets[0]!;
  const rows = sheet.getRows(1, sheet.rowCount)!;
  const headerRow = (rows.find((r) => r.getCell(1).value === 'Question')!.values as string[]).slice(1);
  const italyRow = rows.find((r) => r.getCell(2).value === question && r.getCell(3).value === 'Italy')!;
  expect(italyRow.getCell(headerRow.indexOf('Respondents (n)') + 1).value).toBeNull();
  expect(italyRow.getCell(headerRow.indexOf("Don't know") + 1).value).toBeNull();
  expect(italyRow.getCell(headerRow.indexOf('Valid answers or picks') + 1).value).toBe(validN);
}

describe('disclosure control', () => {
  it('a country with 4 institutions or 9 respondents is not listed, with 5 and 10 it is shown', async () => {
    const campaign = new Types.ObjectId();
    await country(campaign, 'AT', 5, 10);
    await country(campaign, 'DE', 4, 10);
    await country(campaign, 'FR', 5, 9);
    await country(campaign, 'IT', 6, 12);
    const { agent } = await signIn(platform, 'reviewer');
    const json = (await agent.get(`/evidence/indicators.json?campaign=${campaign}&by=country`).expect(200)).body;
    const row = participation(json);
    expect(row.groups.AT).toMatchObject({ suppressed: false, n: 10, value: 50 });
    expect(row.groups.IT).toMatchObject({ suppressed: false, n: 12 });
    // A group whose number of responses is hidden is not listed: a listed one would say it has a response.
    expect(Object.keys(row.groups).sort()).toEqual(['AT', 'IT']);
    expect(Object.keys(json.groupResponses).sort()).toEqual(['AT', 'IT']);
    expect(row.overall).toMatchObject({ suppressed: false, n: 41 });
  });

  it('when exactly one group is too small, the next smallest is suppressed too, so neither can be recomputed from the total, and neither is listed', async () => {
    const campaign = new Types.ObjectId();
    for (const [code, institutions, respondents] of COMPLEMENT_CASE) await country(campaign, code, institutions, respondents);
    const { agent } = await signIn(platform, 'reviewer');
    const json = (await agent.get(`/evidence/indicators.json?campaign=${campaign}&by=country`).expect(200)).body;
    const row = participation(json);
    expect(Object.keys(row.groups).sort()).toEqual(['IT', 'PL']);
    expect(row.groups.IT).toMatchObject({ suppressed: false, n: 12 });
    expect(row.groups.PL).toMatchObject({ suppressed: false, n: 14 });

    // The pages, the CSV and the Excel export leave both out and say that groups too small are not listed.
    const page = await agent.get(`/evidence?campaign=${campaign}&by=country`).expect(200);
    expect(page.text).toContain(UNLISTED_GROUPS_NOTE);
    const table = page.text.split('<table class="indicator-table group-table">')[1]!.split('</table>')[0]!;
    expect(table).toContain('Italy');
    expect(table).not.toContain('Germany');
    expect(table).not.toContain('Austria');
    const csv = (await agent.get(`/evidence/export/indicators.csv?campaign=${campaign}&by=country`).expect(200)).text;
    const line = csv.split('\r\n').find((l) => l.startsWith('Participation rate'))!;
    const header = csv.split('\r\n').find((l) => l.startsWith('Indicator,'))!.split(',');
    const cells = line.split(',');
    expect(header).not.toContain('Germany');
    expect(header).not.toContain('Austria');
    expect(cells[header.indexOf('Italy')]).toBe('50');
    expect(csv).toContain(UNLISTED_GROUPS_NOTE);
    expect(csv).not.toContain('Germany');

    const xlsx = await agent.get(`/evidence/export/indicators.xlsx?campaign=${campaign}&by=country`).buffer(true).parse(binary as never).expect(200);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(xlsx.body as never);
    const sheet = workbook.getWorksheet('Indicators')!;
    const headerIndex = sheet.getRows(1, sheet.rowCount)!.find((r) => r.getCell(1).value === 'Indicator')!.number;
    const headerRow = (sheet.getRow(headerIndex).values as string[]).slice(1);
    const participationRow = sheet.getRows(headerIndex + 1, sheet.rowCount - headerIndex)!.find((r) => String(r.getCell(1).value).startsWith('Participation rate'))!;
    expect(headerRow).not.toContain('Germany');
    expect(headerRow).not.toContain('Austria');
    const italy = participationRow.getCell(headerRow.indexOf('Italy') + 1);
    expect(italy.value).toBe(50);
    expect(italy.numFmt).toBe('0.0');
  });

  it('a filter shows a group exactly as the breakdown does: a group hidden as the complement stays hidden (and unlisted) when filtered on, broken down, or pooled', async () => {
    const campaign = new Types.ObjectId();
    for (const [code, institutions, respondents] of COMPLEMENT_CASE) await country(campaign, code, institutions, respondents);
    const { agent } = await signIn(platform, 'reviewer');
    const json = async (query: string) => participation((await agent.get(`/evidence/indicators.json?campaign=${campaign}&${query}`).expect(200)).body);

    // AT alone is big enough, but it is DE's complement in the breakdown: the total minus IT and PL minus AT would give DE.
    expect((await json('country=AT')).overall).toEqual({ suppressed: true });
    expect((await json('country=AT&by=role')).groups).toEqual({});
    expect((await json('country=IT')).overall).toMatchObject({ suppressed: false, n: 12 });
    const byCountry = (await json('role=vocational_teacher&by=country')).groups;
    expect(Object.keys(byCountry).sort()).toEqual(['IT', 'PL']);
    expect(byCountry).toMatchObject({ IT: { suppressed: false, n: 12 } });

    const page = (await agent.get(`/evidence?campaign=${campaign}&country=AT`).expect(200)).text;
    const pageRow = page.split('<th scope="row">Participation rate')[1]!.split('</tr>')[0]!;
    expect(pageRow).toContain(NOTE);
    expect(pageRow).not.toContain('n = ');
    const csv = (await agent.get(`/evidence/export/indicators.csv?campaign=${campaign}&country=AT`).expect(200)).text;
    expect(csv.split('\r\n').find((l) => l.startsWith('Participation rate'))).toContain(NOTE);
    expect(csv).toContain('Filter,Country: Austria');

    // Two values pooled minus one would give the other away: refused with a message saying what to change.
    const pooled = await agent.get(`/evidence/indicators.json?campaign=${campaign}&country=AT&country=DE`).expect(400);
    expect(pooled.text).toContain('Country: choose one value');
    // A script asking for the JSON (with no Accept header, as curl sends */*) gets its refusal as JSON, naming what to use instead.
    const unknown = await agent.get(`/evidence/indicators.json?campaign=${campaign}&by=nation`).expect(400).expect('Content-Type', /application\/json/);
    expect(unknown.body).toEqual({ error: 'The filter is not valid. Break down by: not a profile dimension (use one of country, institutionType, role, size, erasmus, location).' });
  });

  it("a published group's \"don't know\" count that would give a hidden group's away is suppressed with its respondents, in the page, the JSON, the CSV and the Excel export; its valid answers and mean stay", async () => {
    // Germany is too small and Austria hides as its complement; Austria's "don't know" is 0, so Germany's 1 would be the overall 4
    // minus Italy's 1 and Poland's 2: Italy's (the smaller) is hidden, and its respondents (valid answers + "don't know") with it.
    const campaign = new Types.ObjectId();
    for (const [code, institutions, respondents, dontKnow] of [['AT', 5, 10, 0], ['DE', 4, 10, 1], ['IT', 6, 12, 1], ['PL', 7, 14, 2]] as const) {
      await insertCountry(platform, campaign, code, institutions, respondents, { profile: { role: 'vocational_teacher' }, s12a: Array(dontKnow).fill(DONT_KNOW) });
    }
    const { agent } = await signIn(platform, 'reviewer');
    const json = (await agent.get(`/evidence/indicators.json?campaign=${campaign}&by=country`).expect(200)).body as { questions: Array<{ name: string; overall: object; groups: Record<string, object> }> };
    const s12a = json.questions.find((q) => q.name === 'S1_2a')!;
    expect(Object.keys(s12a.groups).sort()).toEqual(['IT', 'PL']);
    expect(s12a.groups.IT).toMatchObject({ suppressed: false, respondents: null, dk: null, validN: 11, mean: 4 });
    expect(s12a.groups.PL).toMatchObject({ suppressed: false, respondents: 14, dk: 2, validN: 12 });
    expect(s12a.overall).toMatchObject({ suppressed: false, respondents: 46, dk: 4 });

    // Respondents (n), valid answers, "don't know", top two, mean.
    await expectItalyWithheld(agent, campaign, 'S1_2a', 11, ['–', '11', '–', '100.0%', '4.00']);
  });

  it("a number question's \"don't know\" (S4.5's separate box) that would give a hidden group's away is suppressed with its respondents, in the page, the JSON, the CSV, the Excel export and the wave comparison; its valid answers and mean stay", async () => {
    // One response per institution (S4 counts once per institution). Germany is too small and Austria hides as its complement;
    // Austria's "don't know" is 0, so Germany's 1 would be the overall 4 minus Italy's 1 and Poland's 2: Italy's (the smaller) is
    // hidden, and its respondents (valid answers + "don't know") with it. An earlier wave, the same, to compare with.
    const [earlier, campaign] = await Promise.all(['Wave 2025', 'Wave 2026'].map(async (name) => (await platform.models.Campaign.create({ name, strands: ['S4'], opensAt: new Date('2026-01-01'), closesAt: new Date('2026-03-01') }))._id));
    const answers = (dontKnow: number, numbers: number) => [...Array(dontKnow).fill(DONT_KNOW), ...Array(numbers).fill(20)];
    for (const wave of [earlier!, campaign!]) {
      for (const [code, size, dontKnow] of [['AT', 10, 0], ['DE', 9, 1], ['IT', 11, 1], ['PL', 12, 2]] as const) {
        await insertCountry(platform, wave, code, size, size, { profile: { role: 'head' }, s45: answers(dontKnow, size - dontKnow) });
      }
    }
    const { agent } = await signIn(platform, 'reviewer');
    const json = (await agent.get(`/evidence/indicators.json?campaign=${campaign}&by=country`).expect(200)).body as { questions: Array<{ name: string; overall: object; groups: Record<string, object> }> };
    const s45 = json.questions.find((q) => q.name === 'S4_5')!;
    expect(Object.keys(s45.groups).sort()).toEqual(['IT', 'PL']);
    expect(s45.groups.IT).toMatchObject({ suppressed: false, respondents: null, dk: null, validN: 10, mean: 20 });
    expect((s45.groups.IT as { counts: Array<{ value: unknown; n: number | null }> }).counts.filter((c) => c.value === DONT_KNOW)).toEqual([expect.objectContaining({ n: null })]);
    expect(s45.groups.PL).toMatchObject({ suppressed: false, respondents: 12, dk: 2, validN: 10 });
    expect(s45.overall).toMatchObject({ suppressed: false, respondents: 42, dk: 4, validN: 38 });

    // Respondents (n), valid answers, "don't know", mean.
    await expectItalyWithheld(agent, campaign!, 'S4_5', 10, ['–', '10', '–', '20.00']);

    // The wave comparison for Italy: each side is that campaign's published cell.
    const waves = (await agent.get(`/evidence/waves.json?a=${earlier}&b=${campaign}&country=IT`).expect(200)).body as { questions: Array<{ name: string; a: object; b: object }> };
    const compared = waves.questions.find((q) => q.name === 'S4_5')!;
    for (const side of [compared.a, compared.b]) expect(side).toMatchObject({ suppressed: false, respondents: null, dk: null, validN: 10 });
  });

  it("a \"don't know\" count hidden beside valid counts on one side of a share withholds neither the share nor the indicator", async () => {
    // Germany's 4s and "don't know" would be the overall's minus Italy's and Poland's (Austria answered 3 only): Poland's 4s are
    // hidden, with its 3s (so that its valid answers do not give them back), and its "don't know" (smaller than Italy's). The 3s
    // and 4s both count as a barrier and in the top two: the barrier index and the top-two share stay, the mean does not.
    const campaign = new Types.ObjectId();
    const answers = (dontKnow: number, fours: number, threes: number) => [...Array(dontKnow).fill(DONT_KNOW), ...Array(fours).fill(4), ...Array(threes).fill(3)];
    for (const [code, institutions, s12a] of [['AT', 5, answers(0, 0, 10)], ['DE', 4, answers(1, 9, 0)], ['IT', 6, answers(2, 2, 9)], ['PL', 7, answers(1, 4, 8)]] as const) {
      await insertCountry(platform, campaign, code, institutions, s12a.length, { profile: { role: 'vocational_teacher' }, s12a });
    }
    const { agent } = await signIn(platform, 'reviewer');
    type Row = { name?: string; code?: string; groups: Record<string, { suppressed: boolean; counts?: Array<{ value: unknown; n: number | null }> } & Record<string, unknown>> };
    const json = (await agent.get(`/evidence/indicators.json?campaign=${campaign}&by=country`).expect(200)).body as { questions: Row[]; indicators: Row[] };
    const poland = json.questions.find((q) => q.name === 'S1_2a')!.groups.PL!;
    expect(poland).toMatchObject({ suppressed: false, respondents: null, dk: null, validN: 12, topShare: 100, mean: null, withheld: true });
    expect(poland.counts!.filter((c) => c.n === null).map((c) => c.value)).toEqual([3, 4, DONT_KNOW]);
    expect(json.indicators.find((i) => i.code === 'barrier_index:S1_2a')!.groups.PL).toMatchObject({ suppressed: false, value: 100, n: 12 });
  });

  it('a filtered group too small to publish does not show how many responded either, nor does the group that would give it away, nor whether anyone responded', async () => {
    const campaign = new Types.ObjectId();
    await country(campaign, 'AT', 6, 12);
    await country(campaign, 'MT', 2, 3);
    const { agent } = await signIn(platform, 'reviewer');
    expect((await agent.get(`/evidence/indicators.json?campaign=${campaign}`).expect(200)).body.responses).toBe(15);
    // 15 overall minus Austria's 12 would be Malta's 3: Austria's count is hidden as its complement.
    expect((await agent.get(`/evidence/indicators.json?campaign=${campaign}&country=AT`).expect(200)).body.responses).toBeNull();
    expect((await agent.get(`/evidence/indicators.json?campaign=${campaign}&country=MT`).expect(200)).body.responses).toBeNull();
    expect((await agent.get(`/evidence/indicators.json?campaign=${campaign}&by=country`).expect(200)).body.groupResponses).toEqual({});
    const page = (await agent.get(`/evidence?campaign=${campaign}&country=MT`).expect(200)).text;
    expect(page).toContain('<strong>a suppressed number of</strong> responses');
    expect(page).not.toMatch(/<strong>3<\/strong> responses/);
    // A country nobody answered from reads exactly as Malta does: "0 responses" would tell that Malta's are not 0.
    const tablesOf = async (code: string) => {
      const { filter: _filter, ...tables } = (await agent.get(`/evidence/indicators.json?campaign=${campaign}&country=${code}&by=role`).expect(200)).body;
      return tables;
    };
    expect(await tablesOf('PL')).toEqual(await tablesOf('MT'));
    const empty = (await agent.get(`/evidence?campaign=${campaign}&country=PL`).expect(200)).text;
    expect(empty).toContain('<strong>a suppressed number of</strong> responses');
  });
});

describe('evidence pages', () => {
  it('every page renders for a reviewer with the filter form, chart canvases with their data block and export links, and no raw-data links', async () => {
    const campaign = new Types.ObjectId();
    await country(campaign, 'AT', 5, 10);
    await country(campaign, 'IT', 6, 12);
    const { agent } = await signIn(platform, 'reviewer');
    for (const path of ['/evidence', '/evidence/barriers', '/evidence/heatmap', '/evidence/questions', '/evidence/quotes', '/evidence/report']) {
      const page = await agent.get(`${path}?campaign=${campaign}&country=&by=country`).expect(200);
      expect(page.text, path).toContain('id="filter-form"');
      expect(page.text, path).toContain('class="export-link"');
      expect(page.text, path).not.toContain('responses.csv');
    }
    const barriers = (await agent.get(`/evidence/barriers?campaign=${campaign}`).expect(200)).text;
    expect(barriers).toContain('class="evidence-chart"');
    expect(barriers).toContain('<script type="application/json" id="evidence-chart-data">');
    const report = (await agent.get(`/evidence/report?campaign=${campaign}`).expect(200)).text;
    expect(report).toContain('not a probability sample');
    expect(report).toContain('22</strong> responses');
    await agent.get('/evidence?country=XX').expect(400);
  });
});

describe('who sees raw data', () => {
  it('a reviewer gets 403 for the raw responses and the codebook; the coordinator gets pseudonyms, never names, and the export is audited', async () => {
    const campaign = new Types.ObjectId();
    const responses = await country(campaign, 'AT', 5, 10, '=HYPERLINK("http://evil.example","click")');
    await institutionsNamed(responses, 'Secret school');
    const reviewer = await signIn(platform, 'reviewer');
    await reviewer.agent.get(`/evidence/export/responses.csv?campaign=${campaign}`).expect(403);
    await reviewer.agent.get('/evidence/export/codebook.csv').expect(403);
    await reviewer.agent.get('/evidence/export/codebook.xlsx').expect(403);

    const coordinator = await signIn(platform, 'coordinator');
    const raw = (await coordinator.agent.get(`/evidence/export/responses.csv?campaign=${campaign}`).expect(200)).text;
    const lines = raw.replace(/^\ufeff/, '').trim().split('\r\n');
    expect(lines).toHaveLength(11);
    expect(raw).not.toContain('Secret school');
    for (const r of responses) expect(raw).not.toContain(String(r.institution));
    // Stable pseudonyms: 10 responses of 5 institutions give 5 institution pseudonyms.
    const institutionColumn = lines.slice(1).map((l) => l.split(',')[1]);
    expect(new Set(institutionColumn).size).toBe(5);
    expect(institutionColumn[0]).toMatch(/^I-[\w-]{12}$/);
    const audit = await platform.models.AuditEntry.findOne({ action: 'evidence.export', target: 'responses.csv' });
    expect(audit?.actor).toBe(coordinator.user.email);

    const codebook = (await coordinator.agent.get('/evidence/export/codebook.csv').expect(200)).text;
    expect(codebook).toContain('S1_2a');
    expect(codebook).toContain('barrier_index');
  });

  it('a visitor who is not signed in is sent to the sign-in page', async () => {
    const { default: request } = await import('supertest');
    const response = await request(platform.app).get('/evidence').expect(303);
    expect(response.headers.location).toMatch(/^\/login/);
  });
});

describe('formula neutralisation', () => {
  it('cells starting with = + - @ get a leading apostrophe, in CSV and in the raw export', async () => {
    expect(neutraliseFormula('=1+2')).toBe("'=1+2");
    expect(neutraliseFormula('+1')).toBe("'+1");
    expect(neutraliseFormula('-1')).toBe("'-1");
    expect(neutraliseFormula('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(neutraliseFormula('plain')).toBe('plain');
    expect(csvLine(['=cmd|x', 'a,b'])).toBe(`'=cmd|x,"a,b"\r\n`);

    const campaign = new Types.ObjectId();
    await country(campaign, 'AT', 5, 10, '@SUM(1+1)');
    const coordinator = await signIn(platform, 'coordinator');
    const raw = (await coordinator.agent.get(`/evidence/export/responses.csv?campaign=${campaign}`).expect(200)).text;
    expect(raw).toContain(`'@SUM(1+1)`);
    expect(raw).not.toMatch(/,@SUM/);
  });

  it('cells starting with a tab, a carriage return, NUL or spaces before a formula character are neutralised too', () => {
    expect(neutraliseFormula('\tcmd')).toBe("'\tcmd");
    expect(neutraliseFormula('\r=1')).toBe("'\r=1");
    expect(neutraliseFormula('\0=1')).toBe("'\0=1");
    expect(neutraliseFormula('  =HYPERLINK("x")')).toBe(`'  =HYPERLINK("x")`);
    expect(neutraliseFormula('a = b')).toBe('a = b');
  });

  it('with ";" as separator, a cell holding ";" is quoted so a reader never splits off a cell that starts a formula', async () => {
    expect(csvLine(['a;=1+1', 'b,c'], ';')).toBe(`"a;=1+1";b,c\r\n`);
    const campaign = new Types.ObjectId();
    await country(campaign, 'AT', 5, 10, 'ok;=SUM(1+1)');
    const coordinator = await signIn(platform, 'coordinator');
    const raw = (await coordinator.agent.get(`/evidence/export/responses.csv?campaign=${campaign}&separator=semicolon`).expect(200)).text;
    const header = raw.replace(/^\ufeff/, '').split('\r\n')[0]!;
    expect(header.startsWith('response;institution;campaign;')).toBe(true);
    expect(raw).toContain(`"ok;=SUM(1+1)"`);
    const indicators = (await coordinator.agent.get(`/evidence/export/indicators.csv?campaign=${campaign}&separator=semicolon`).expect(200)).text;
    expect(indicators.split('\r\n')[1]).toContain(';');
    await coordinator.agent.get(`/evidence/export/indicators.csv?campaign=${campaign}&separator=tab`).expect(400);
  });
});

function binary(res: NodeJS.ReadableStream, callback: (error: Error | null, body: Buffer) => void) {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
}
