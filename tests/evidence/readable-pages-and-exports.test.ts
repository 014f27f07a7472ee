import ExcelJS from 'exceljs';
import { randomBytes } from 'node:crypto';
import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signIn } from '../helpers/accounts.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { COMPLEMENT_CASE, insertCountry, SUPPRESSED_NOTE, type RawResponse } from './evidence-data.ts';
import { UNLISTED_GROUPS_NOTE } from '../../server/evidence/disclosure.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 5, minCellRespondents: 10 });
});
afterAll(async () => {
  await platform.close();
});

const NOTE = SUPPRESSED_NOTE;

/** `respondents` responses from `institutions` institutions of one country; S1.2a "4" (a major barrier) by all. */
function country(campaign: Types.ObjectId, code: string, institutions: number, respondents: number, text?: string): Promise<RawResponse[]> {
  return insertCountry(platform, campaign, code, institutions, respondents, { profile: { institutionType: 'ivet_school', role: 'head' }, text });
}

async function namedCampaign(name: string, opensDaysAgo = 30) {
  const day = 86_400_000;
  const now = platform.clock.now().getTime();
  return (await platform.models.Campaign.create({ name, strands: ['S1'], opensAt: new Date(now - opensDaysAgo * day), closesAt: new Date(now + 30 * day) }))._id;
}

/** The rows of the table captioned `caption`: header cell, then the data cells' texts. */
function tableRows(html: string, caption: string): string[][] {
  const table = html.split(`<caption>${caption}`)[1]!.split('</table>')[0]!;
  return [...table.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((row) => [...row[1]!.matchAll(/<t[hd][^>]*>([\s\S]*?)<\/t[hd]>/g)].map((cell) => cell[1]!.replace(/<[^>]+>/g, '').trim()));
}

/** Cells' classes in the table captioned `caption`, per body row. */
function cellClasses(html: string, caption: string): string[][] {
  const body = html.split(`<caption>${caption}`)[1]!.split('</table>')[0]!.split('<tbody>')[1]!;
  return [...body.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((row) => [...row[1]!.matchAll(/<td class="([^"]*)"/g)].map((m) => m[1]!.trim()));
}

function binary(res: NodeJS.ReadableStream, callback: (error: Error | null, body: Buffer) => void) {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
}

describe('readable tables', () => {
  it('by country, groups are rows and the chosen indicator set the columns; groups suppressed throughout are left out with one note; every published cell is coloured', async () => {
    const campaign = await namedCampaign('Readable wave');
    for (const [code, institutions, respondents] of COMPLEMENT_CASE) await country(campaign, code, institutions, respondents);
    const { agent } = await signIn(platform, 'reviewer');

    const page = (await agent.get(`/evidence/heatmap?campaign=${campaign}&set=barrier_index`).expect(200)).text;
    const caption = 'S1 barrier index (% moderate or major) by country';
    const [header, ...rows] = tableRows(page, caption);
    // One column per barrier (no other indicator), labelled without repeating the family the caption names.
    expect(header![0]).toBe('Group');
    expect(header!.slice(1)).toEqual(['No one can cover my classes while I am away']);
    // Germany is too small and Austria its complement: neither is listed (their numbers of responses are hidden), as the table's note says; the 11 barriers nobody answered are left out with one note.
    expect(rows.map((r) => r[0])).toEqual(['Overall', 'Italy', 'Poland']);
    expect(page).toContain(`; ${UNLISTED_GROUPS_NOTE}.`);
    expect(page).toContain(`11 indicators not shown: every one of their cells is ${NOTE}.`);
    expect(page).not.toContain('Germany</th>');
    for (const classes of cellClasses(page, caption)) for (const c of classes) expect(c).toMatch(/^(shade-[1-5]|band-[a-z-]+)$/);

    // The set chooser keeps the filter.
    expect(page).toContain('<option value="barrier_index" selected>');
    expect(page).toMatch(new RegExp(`<input type="hidden" name="campaign" value="${campaign}">`));
  });

  it('a cross-tab of country × role stays one row per pair, never one column per pair', async () => {
    const campaign = await namedCampaign('Cross wave');
    for (const [code, institutions, respondents] of COMPLEMENT_CASE) await country(campaign, code, institutions, respondents);
    const { agent } = await signIn(platform, 'reviewer');
    const page = (await agent.get(`/evidence?campaign=${campaign}&by=country&cross=role`).expect(200)).text;
    const [header, ...rows] = tableRows(page, 'Headline indicators by country × role');
    expect(header!.length).toBeLessThanOrEqual(9);
    expect(rows.map((r) => r[0])).toEqual(['Overall', 'Italy · Head of institution', 'Poland · Head of institution']);
  });

  it('the barrier page honours "break down by", and tells the barrier index from the top-3 share', async () => {
    const campaign = await namedCampaign('Barrier wave');
    for (const [code, institutions, respondents] of COMPLEMENT_CASE) await country(campaign, code, institutions, respondents);
    const { agent } = await signIn(platform, 'reviewer');
    const page = (await agent.get(`/evidence/barriers?campaign=${campaign}&by=country`).expect(200)).text;
    const index = tableRows(page, 'Barrier index (% moderate or major) by country');
    expect(index.map((r) => r[0])).toEqual(['Group', 'Overall', 'Italy', 'Poland']);
    expect(index[2]![1]).toMatch(/^100\.0% n = 12$/);
    expect(page).toContain('<caption>Top-3 share (% naming the barrier among their three biggest) by country');
    expect(page).toContain('<th scope="col">Barrier index (% moderate or major)</th>');
    // Where both appear in one table, each label says which it is.
    const overview = (await agent.get(`/evidence?campaign=${campaign}`).expect(200)).text;
    expect(overview).toContain('No one can cover my classes while I am away (barrier index, % moderate or major)');
    expect(overview).toContain('No one can cover my classes while I am away (top-3 share, % naming it)');
  });

  it('under a country filter the header shows the invitations to that country beside its responses and says what the rate is based on; under a filter on role it shows only the responses and says why there is no rate', async () => {
    const campaign = await namedCampaign('Invited wave');
    await country(campaign, 'IT', 6, 12);
    await country(campaign, 'PL', 7, 14);
    const invite = async (code: string, n: number) => {
      for (let i = 0; i < n; i++) {
        const institution = await platform.models.Institution.create({ name: `${code} school ${i}`, country: code, type: 'ivet_school', key: `k-${randomBytes(6).toString('hex')}` });
        await platform.models.Invitation.create({ campaign, contact: new Types.ObjectId(), institution: institution._id, tokenHash: randomBytes(16).toString('hex') });
      }
    };
    await invite('IT', 24);
    await invite('PL', 20);
    const { agent } = await signIn(platform, 'reviewer');
    const italy = (await agent.get(`/evidence?campaign=${campaign}&country=IT`).expect(200)).text;
    expect(italy).toContain('<strong>12</strong> responses in this filter');
    expect(italy).toContain('<strong>24</strong> invitations in this filter');
    expect(italy).toContain('Response rate <strong>50.0%</strong>');
    // What the rate is: the institution record's country for the invitations, the answered country for the responses.
    expect(italy).toContain('Response rate: responses in this filter ÷ invitations to institutions whose record says Country: Italy. A response counts by the country its respondent answered');
    const all = (await agent.get(`/evidence?campaign=${campaign}`).expect(200)).text;
    expect(all).toContain('<strong>44</strong> invitations');
    expect(all).toContain('Response rate: responses ÷ invitations (links not revoked).');
    // Role is known only from the answers: the header shows the responses and says plainly why there is no rate, with no invitation count beside them.
    const heads = (await agent.get(`/evidence?campaign=${campaign}&role=head`).expect(200)).text;
    expect(heads).toContain('responses in this filter');
    expect(heads).not.toContain('invitations in this filter');
    expect(heads).not.toContain('Response rate <strong>');
    expect(heads).toContain("Invitations and the response rate are not known for this filter: an invitation is known only by its institution record&#x27;s country and institution type, and role is known only from the answers.");
    const both = (await agent.get(`/evidence?campaign=${campaign}&country=IT&location=rural`).expect(200)).text;
    expect(both).toContain('and location is known only from the answers');
    // The export says the same in its first lines, after exactly one byte-order mark.
    const csv = (await agent.get(`/evidence/export/indicators.csv?campaign=${campaign}&role=head`).expect(200)).text;
    expect(csv.startsWith('\ufeffCampaign,')).toBe(true);
    expect(csv.slice(1)).not.toContain('\ufeff');
    expect(csv).toContain('Invitations,not known for this filter');
    expect(csv).toContain('Response rate,not known for this filter');
    expect(csv).toContain('Response rate based on,"Invitations and the response rate are not known for this filter');
  });
});

describe('default campaign and filter errors', () => {
  it('without a chosen campaign, pages show the newest campaign that publishes anything, not a newer one with a single response or none yet', async () => {
    const published = await namedCampaign('Published wave', 20);
    await country(published, 'IT', 6, 12);
    const single = await namedCampaign('Newer wave, one response', 2);
    await country(single, 'AT', 1, 1);
    // Opened, nobody has answered yet: its "0 responses" is published, and shows nothing else.
    const empty = await namedCampaign('Newest wave, no response yet', 1);
    const { agent } = await signIn(platform, 'reviewer');
    const page = (await agent.get('/evidence').expect(200)).text;
    expect(page).toContain(`<option value="${published}" selected>Published wave</option>`);
    // Delete what this test made, so the other tests' campaigns are not affected by it.
    await platform.models.Campaign.deleteMany({ _id: { $in: [published, single, empty] } });
  });

  it('a pooled filter is refused within the page, with the filter bar to change it', async () => {
    const campaign = await namedCampaign('Pooled wave');
    await country(campaign, 'IT', 6, 12);
    const { agent } = await signIn(platform, 'reviewer');
    for (const path of ['/evidence', '/evidence/barriers', '/evidence/questions', '/evidence/quotes', '/evidence/report']) {
      const page = (await agent.get(`${path}?campaign=${campaign}&country=IT&country=PL`).expect(400)).text;
      expect(page, path).toContain('Country: choose one value (values are not pooled)');
      expect(page, path).toContain('id="filter-form"');
      expect(page, path).toContain(`<option value="${campaign}" selected>`);
    }
  });
});

describe('exports of each page', () => {
  it("each page's download links export that page's tables, named after the campaign, filter and date, with the scope in their first lines", async () => {
    const campaign = await namedCampaign('Export wave «2026»');
    for (const [code, institutions, respondents] of COMPLEMENT_CASE) await country(campaign, code, institutions, respondents, 'Substitutes are hard to find.');
    const coordinator = await signIn(platform, 'coordinator');
    const { agent } = coordinator;
    const links = async (path: string) => [...(await agent.get(`${path}?campaign=${campaign}&by=country`).expect(200)).text.matchAll(/class="export-link" href="([^"]+)"/g)].map((m) => m[1]!.replaceAll('&amp;', '&').replaceAll('&#x3D;', '='));
    expect((await links('/evidence/questions'))[0]).toBe(`/evidence/export/questions.csv?campaign=${campaign}&by=country`);
    expect((await links('/evidence/barriers'))[0]).toBe(`/evidence/export/barriers.csv?campaign=${campaign}&by=country`);
    expect((await links('/evidence/quotes'))[0]).toBe(`/evidence/export/quotes.csv?campaign=${campaign}&by=country`);
    expect(await links('/evidence')).toContain(`/evidence/export/indicators-long.csv?campaign=${campaign}&by=country`);

    const barriers = await agent.get(`/evidence/export/barriers.csv?campaign=${campaign}&by=country`).expect(200);
    expect(barriers.headers['content-disposition']).toBe('attachment; filename=export-wave-2026_barriers_by-country_2026-03-02.csv');
    const lines = barriers.text.replace(/^\ufeff/, '').split('\r\n');
    expect(lines[0]).toBe('Campaign,Export wave «2026»');
    expect(lines).toContain('Filter,none (everyone)');
    expect(lines).toContain('Breakdown,Country');
    expect(lines).toContain('Generated,2 March 2026');
    const codes = lines.slice(lines.findIndex((l) => l.startsWith('Indicator,')) + 1).filter(Boolean).map((l) => /,([a-z0-9_]+)(?::\w+)?,(?:%|mean|points|EUR|number),/.exec(l)![1]);
    expect(new Set(codes)).toEqual(new Set(['barrier_index', 'top3_ranking']));

    const questions = (await agent.get(`/evidence/export/questions.csv?campaign=${campaign}&by=country`).expect(200)).text;
    const s12a = questions.split('\r\n').filter((l) => l.includes(',S1_2a,'));
    expect(s12a.map((l) => l.split(',S1_2a,')[1]!.split(',')[0])).toEqual(['Overall', 'Italy', 'Poland']);
    expect(s12a.find((l) => l.includes(',Italy,'))!.split(',S1_2a,')[1]).toBe('Italy,12,12,0,100,4,');
    expect(lines).toContain(`Disclosure thresholds,"5 institutions, 10 respondents; ${UNLISTED_GROUPS_NOTE}"`);

    const quotes = (await agent.get(`/evidence/export/quotes.csv?campaign=${campaign}`).expect(200)).text;
    expect(quotes).toContain('Country,Strand,Question,Quote,Institution,Review state');
    expect(quotes).toContain('Substitutes are hard to find.');
    expect(quotes.split('\r\n')[0]).toBe('\ufeffCampaign,Export wave «2026»');

    const long = (await agent.get(`/evidence/export/indicators-long.csv?campaign=${campaign}&by=country`).expect(200)).text.split('\r\n');
    expect(long).toContain('Indicator,Code,Unit,Group,Value,n,Band,Gap to target (points),Note');
    const participation = long.filter((l) => l.includes(',participation_rate:S1_1,'));
    expect(participation.map((l) => l.split(',participation_rate:S1_1,')[1])).toEqual([
      '%,Overall,50,46,,,',
      '%,Italy,50,12,,,',
      '%,Poland,50,14,,,',
    ]);
  });

  it('the questions workbook has numbers as numbers with number formats, a distribution sheet, and the scope above the header', async () => {
    const campaign = await namedCampaign('Workbook wave');
    await country(campaign, 'IT', 6, 12);
    const { agent } = await signIn(platform, 'reviewer');
    const xlsx = await agent.get(`/evidence/export/questions.xlsx?campaign=${campaign}`).buffer(true).parse(binary as never).expect(200);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(xlsx.body as never);
    expect(workbook.worksheets.map((s) => s.name)).toEqual(['Questions', 'Distributions']);
    const sheet = workbook.getWorksheet('Questions')!;
    expect(sheet.getRow(1).values).toEqual([undefined, 'Campaign', 'Workbook wave']);
    const headerAt = sheet.getRows(1, sheet.rowCount)!.find((r) => r.getCell(1).value === 'Question')!.number;
    expect(sheet.getRow(headerAt).font?.bold).toBe(true);
    const s12a = sheet.getRows(headerAt + 1, sheet.rowCount - headerAt)!.find((r) => r.getCell(2).value === 'S1_2a')!;
    expect(s12a.getCell(4).value).toBe(12);
    expect(s12a.getCell(7).value).toBe(100);
    expect(s12a.getCell(7).numFmt).toBe('0.0');
    expect(s12a.getCell(8).value).toBe(4);
    expect(s12a.getCell(8).numFmt).toBe('0.00');
    const distribution = workbook.getWorksheet('Distributions')!;
    const four = distribution.getRows(1, distribution.rowCount)!.find((r) => r.getCell(2).value === 'S1_2a' && r.getCell(7).value === '4')!;
    expect(four.getCell(8).value).toBe(12);
  });
});

describe('quotes', () => {
  it('the quotes page does not read the responses again on every load, nor after a response through the platform, which it takes in alone; writes by another process show within a minute', async () => {
    const { campaignId: campaign, path, invitation } = await createInvitedContact(platform);
    await country(campaign, 'AT', 5, 10, 'Read at the first load.');
    const { agent } = await signIn(platform, 'coordinator');
    const quotes = async () => (await agent.get(`/evidence/quotes?campaign=${campaign}`).expect(200)).text;
    expect(await quotes()).toContain('Read at the first load.');

    // Written straight into the database: no response arrived through the platform, so the page keeps what it read.
    await country(campaign, 'AT', 5, 10, 'Written behind its back.');
    expect(await quotes()).not.toContain('Written behind its back.');

    // A respondent submits through the personal link: the page takes in that one response, and reads no other (what was
    // written behind its back stays unread), however many responses the campaign has.
    const answers = completeAnswers({ P1: 'AT', S1_6: 'Submitted through the link.' });
    await respondent(platform, path, invitation.tokenHash).submit({ data: answers, baseRevision: 0, language: 'en' }).expect(201);
    const after = await quotes();
    expect(after).toContain('Submitted through the link.');
    expect(after).toContain('Read at the first load.');
    expect(after).not.toContain('Written behind its back.');

    // A revision replaces its quote.
    const revised = completeAnswers({ P1: 'AT', S1_6: 'Revised through the link.' });
    await respondent(platform, path, invitation.tokenHash).submit({ data: revised, baseRevision: 1, language: 'en' }).expect(201);
    const afterRevision = await quotes();
    expect(afterRevision).toContain('Revised through the link.');
    expect(afterRevision).not.toContain('Submitted through the link.');

    // Writes by another process are picked up within a minute.
    await country(campaign, 'AT', 5, 10, 'Another process wrote this.');
    expect(await quotes()).not.toContain('Another process wrote this.');
    platform.clock.advance(61_000);
    const later = await quotes();
    expect(later).toContain('Another process wrote this.');
    expect(later).toContain('Written behind its back.');
  });

  it('a response from an invitation made after the quotes were read has the quotes read again, so that its names are removed for reviewers', async () => {
    const { campaignId: campaign } = await createInvitedContact(platform);
    await country(campaign, 'AT', 5, 10, 'Read at the first load.');
    const coordinator = await signIn(platform, 'coordinator');
    const quotes = async (agent: typeof coordinator.agent) => (await agent.get(`/evidence/quotes?campaign=${campaign}`).expect(200)).text;
    expect(await quotes(coordinator.agent)).toContain('Read at the first load.');
    await country(campaign, 'AT', 5, 10, 'Written behind its back.');

    // Invited after the read: its institution and contact names were not among those the read removes.
    const late = await createInvitedContact(platform, { campaignId: campaign });
    const text = `At ${late.institution.name} ${late.contact.name} found a partner.`;
    await respondent(platform, late.path, late.invitation.tokenHash).submit({ data: completeAnswers({ P1: 'AT', S1_6: text }), baseRevision: 0, language: 'en' }).expect(201);
    const page = await quotes(coordinator.agent);
    expect(page).toContain(text);
    // Read again whole: what was written behind its back is in too.
    expect(page).toContain('Written behind its back.');

    const csrf = page.match(/name="_csrf" value="([^"]+)"/)![1]!;
    for (const key of new Set([...page.matchAll(/name="key" value="([^"]+)"/g)].map((m) => m[1]!)))
      await coordinator.agent.post('/evidence/quotes/review').type('form').send({ _csrf: csrf, campaign: String(campaign), key, state: 'approved' }).expect(303);
    const reviewer = await signIn(platform, 'reviewer');
    const shown = await quotes(reviewer.agent);
    expect(shown).toContain('[name removed] [name removed] found a partner.');
    expect(shown).not.toContain(late.contact.name);
  });
});

describe('the report', () => {
  it('names the campaign, fieldwork, filter, breakdown, thresholds, invitations, institutions and response rate, and shows the response profile, charts, heat map, quotes and method note', async () => {
    const campaign = await namedCampaign('Report wave');
    await country(campaign, 'IT', 6, 12, 'Our region shares a pool of substitutes.');
    await country(campaign, 'PL', 7, 14);
    for (let i = 0; i < 30; i++) {
      const institution = await platform.models.Institution.create({ name: `Invited ${i}`, country: i % 2 ? 'IT' : 'PL', type: 'ivet_school', key: `k-${randomBytes(6).toString('hex')}` });
      await platform.models.Invitation.create({ campaign, contact: new Types.ObjectId(), institution: institution._id, tokenHash: randomBytes(16).toString('hex') });
    }
    const coordinator = await signIn(platform, 'coordinator');
    const page = (await coordinator.agent.get(`/evidence/report?campaign=${campaign}`).expect(200)).text;
    const scope = page.split('<dl class="report-scope">')[1]!.split('</dl>')[0]!;
    for (const line of ['<dt>Campaign</dt><dd>Report wave</dd>', '<dt>Institutions invited</dt><dd>30</dd>', '<dt>Invitations</dt><dd>30</dd>', '<dt>Responses</dt><dd>26</dd>', '<dt>Response rate</dt><dd>86.7%</dd>', '<dd>5 institutions, 10 respondents; groups whose number of responses is suppressed are not listed</dd>'])
      expect(scope).toContain(line);
    expect(page).toContain('<caption>Responses by Country</caption>');
    expect(page).toContain('<caption>Responses by Role</caption>');
    expect(page).toContain('data-chart="headline"');
    expect(page).toContain('data-chart="barrier-index"');
    expect(page).toContain('<caption>Headline indicators by country</caption>');
    expect(page).toContain('Methodological note');
    expect(page.replaceAll('&#x3D;', '=')).toContain(`href="/evidence/report.pdf?campaign=${campaign}"`);
    // Reviewers see approved quotes only: none is approved yet.
    expect(page).toContain('No quote approved for publication yet.');

    // In French and German, chosen by the reviewer: headings, scope, labels from the survey's translations, numbers and dates in the language's format.
    expect(page.replaceAll('&#x3D;', '=')).toContain(`href="/evidence/report?campaign=${campaign}&amp;lang=fr" lang="fr">Français</a>`);
    const french = (await coordinator.agent.get(`/evidence/report?campaign=${campaign}&lang=fr`).expect(200)).text.replaceAll('&#x3D;', '=');
    expect(french).toContain('<html lang="fr">');
    const frenchScope = french.split('<dl class="report-scope">')[1]!.split('</dl>')[0]!;
    for (const line of ['<dt>Campagne</dt><dd>Report wave</dd>', '<dt>Établissements invités</dt><dd>30</dd>', '<dt>Taux de réponse</dt><dd>86,7\u00a0%</dd>', '<dd>5 établissements, 10 répondants ; les groupes dont le nombre de réponses est masqué ne sont pas listés</dd>', '<dt>Base du taux de réponse</dt><dd>Taux de réponse : réponses ÷ invitations (liens non révoqués).</dd>'])
      expect(frenchScope).toContain(line);
    expect(frenchScope).toMatch(/<dt>Période d’enquête<\/dt><dd>\d+ \p{L}+ \d{4} au \d+ \p{L}+ \d{4}<\/dd>/u);
    for (const text of ['<h2>Note méthodologique</h2>', '<caption>Réponses par Pays</caption>', '<th scope="row">Italie</th>', 'Indice de la charte de qualité (ICQ) : moyenne (1–5)', '<h2>Obstacles, par ordre d’importance</h2>', 'Aucune citation n’est encore approuvée pour publication.', 'Télécharger le rapport en PDF'])
      expect(french).toContain(text);
    expect(french).not.toContain('Methodological note');
    const chart = JSON.parse(french.split('<script type="application/json" id="evidence-chart-data">')[1]!.split('</script>')[0]!.replaceAll('&quot;', '"'));
    expect(chart[0].label).toBe('Indicateurs clés en pour cent');
    expect(french).toContain(`href="/evidence/report.pdf?campaign=${campaign}&amp;lang=fr"`);
    const german = (await coordinator.agent.get(`/evidence/report?campaign=${campaign}&lang=de`).expect(200)).text;
    for (const text of ['<h2>Methodische Hinweise</h2>', '<dt>Rücklaufquote</dt><dd>86,7\u00a0%</dd>', '<caption>Antworten nach Land</caption>', '<th scope="row">Polen</th>'])
      expect(german).toContain(text);
    await coordinator.agent.get(`/evidence/report?campaign=${campaign}&lang=xx`).expect(400);
  });
});
