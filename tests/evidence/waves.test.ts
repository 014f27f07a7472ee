import fc from 'fast-check';
import request from 'supertest';
import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WaveComparison } from '../../server/evidence/wave-comparison.service.ts';
import { signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { choiceLabel } from '../../server/evidence/question-catalogue.ts';
import { catalogue, insertResponses, responseArbitrary, toResponses, type RawResponse } from './evidence-data.ts';
import { expectedDistribution, expectedIndicators, onceS4PerInstitution, type Expected } from './independent-indicators.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 5, minCellRespondents: 10 });
});
afterAll(async () => {
  await platform.close();
});

const NOTE = 'suppressed (fewer than 5 institutions or 10 respondents)';

async function campaign(name: string): Promise<Types.ObjectId> {
  const created = await platform.models.Campaign.create({ name, strands: ['S1', 'S2', 'S3', 'S4'], opensAt: new Date('2026-01-01'), closesAt: new Date('2026-03-01') });
  return created._id;
}

/** `respondents` responses from `institutions` institutions, each answering S1.1 and S1.2a. */
function small(campaignId: Types.ObjectId, institutions: number, respondents: number): RawResponse[] {
  const ids = Array.from({ length: institutions }, () => new Types.ObjectId());
  return Array.from({ length: respondents }, (_, i) => ({
    _id: new Types.ObjectId(),
    campaign: campaignId,
    institution: ids[i % institutions]!,
    submittedAt: new Date(Date.UTC(2026, 1, 1, 0, i)),
    profile: { country: 'AT' },
    items: [
      { strand: 'S1', question: 'S1_1', value: i % 3 === 0 },
      { strand: 'S1', question: 'S1_2a', value: (i % 4) + 1 },
    ],
  }));
}

const tooSmall = (e: Expected | undefined) => !e || e.respondents < 10 || e.institutions < 5;

describe('wave against wave', () => {
  it('every compared indicator and distribution equals the plain computation over each campaign, the difference is B minus A, and a question asked in one campaign only is left out', async () => {
    const a = await campaign('Wave 2025');
    const b = await campaign('Wave 2026');
    const responsesA = toResponses(fc.sample(responseArbitrary, { numRuns: 40, seed: 11 }), a);
    // Campaign B never asked S1.2b.
    const responsesB = toResponses(fc.sample(responseArbitrary, { numRuns: 40, seed: 12 }), b).map((r) => ({ ...r, items: r.items.filter((i) => i.question !== 'S1_2b') }));
    expect(responsesA.some((r) => r.items.some((i) => i.question === 'S1_2b'))).toBe(true);
    await insertResponses(platform, [...responsesA, ...responsesB]);

    const { agent } = await signIn(platform, 'reviewer');
    const json = (await agent.get(`/evidence/waves.json?campaign=${a}&campaign=${b}`).expect(200)).body as WaveComparison;
    expect(json.a).toMatchObject({ name: 'Wave 2025', responses: 40 });
    expect(json.b).toMatchObject({ name: 'Wave 2026', responses: 40 });

    // Asked in one campaign only: absent from indicators and distributions, and named as not compared.
    expect(json.common).not.toContain('S1_2b');
    expect(json.onlyA).toEqual(['S1_2b']);
    expect(json.onlyB).toEqual([]);
    expect(json.indicators.map((i) => i.code)).not.toContain('barrier_index:S1_2b');
    expect(json.questions.map((q) => q.name)).not.toContain('S1_2b');
    expect(json.notCompared).toEqual([expect.objectContaining({ code: 'barrier_index:S1_2b', missing: ['S1_2b'] })]);

    const plainA = expectedIndicators(onceS4PerInstitution(responsesA));
    const plainB = expectedIndicators(onceS4PerInstitution(responsesB));
    expect(json.indicators.length).toBeGreaterThan(30);
    let shown = 0;
    for (const row of json.indicators) {
      const ea = plainA.get(row.code);
      const eb = plainB.get(row.code);
      expect(ea, `${row.code} is computed independently`).toBeDefined();
      // One side hidden means both sides and the difference are hidden; a value suppressed beside a hidden answer count hides the difference too.
      expect(row.a.suppressed, row.code).toBe(row.b.suppressed);
      const withheld = !row.a.suppressed && (row.a.withheld === true || (!row.b.suppressed && row.b.withheld === true));
      expect(row.difference.suppressed, row.code).toBe(row.a.suppressed || withheld);
      if (row.a.suppressed || row.b.suppressed) {
        expect(tooSmall(ea) || tooSmall(eb), `${row.code} is suppressed only when a side is too small`).toBe(true);
        continue;
      }
      shown += 1;
      expect(tooSmall(ea) || tooSmall(eb), `${row.code} is shown only with enough answers on both sides`).toBe(false);
      expect(row.a.n, `${row.code} n A`).toBe(ea!.n);
      expect(row.b.n, `${row.code} n B`).toBe(eb!.n);
      if (withheld) continue;
      if (ea!.value === null || eb!.value === null) {
        expect(row.difference).toEqual({ suppressed: false, value: null });
      } else {
        expect(row.a.value).toBeCloseTo(ea!.value, 9);
        expect(row.b.value).toBeCloseTo(eb!.value, 9);
        expect(row.difference.suppressed === false && row.difference.value).toBeCloseTo(eb!.value - ea!.value, 9);
      }
    }
    expect(shown).toBeGreaterThan(20);

    const onceA = onceS4PerInstitution(responsesA);
    const onceB = onceS4PerInstitution(responsesB);
    for (const q of json.questions) {
      if (q.a.suppressed || q.b.suppressed) continue;
      const da = expectedDistribution(onceA, q.name);
      const db = expectedDistribution(onceB, q.name);
      // A "don't know" count suppressed in a published cell (null) goes with its respondents; the valid answers stay.
      expect([q.a.validN, q.a.dk ?? da.dk, q.b.validN, q.b.dk ?? db.dk], q.name).toEqual([da.validN, da.dk, db.validN, db.dk]);
      expect([q.a.dk === null, q.b.dk === null], q.name).toEqual([q.a.respondents === null, q.b.respondents === null]);
      if (q.kind === 'scale' && da.mean !== null && db.mean !== null && !q.a.withheld && !q.b.withheld) {
        expect(q.mean.suppressed === false && q.mean.value, `${q.name} mean difference`).toBeCloseTo(db.mean - da.mean, 9);
      }
      // Per answer: the shares of each side and their difference.
      for (const answer of q.answers) {
        if (answer.a!.n === null || answer.b!.n === null) expect(answer.difference.suppressed, `${q.name} ${answer.label}`).toBe(true);
        else if (answer.a!.share !== null && answer.b!.share !== null) {
          expect(answer.difference.suppressed === false && answer.difference.value).toBeCloseTo(answer.b!.share - answer.a!.share, 9);
        }
      }
    }
    // A scale question with every answer 1…4 on both sides: each answer's share is plain arithmetic.
    const s12a = json.questions.find((q) => q.name === 'S1_2a')!;
    expect([s12a.a.suppressed, s12a.b.suppressed]).toEqual([false, false]);
    {
      for (const value of [1, 2, 3, 4]) {
        const count = (rs: RawResponse[]) => rs.flatMap((r) => r.items).filter((i) => i.question === 'S1_2a' && i.value === value).length;
        const answer = s12a.answers.find((x) => x.label === choiceLabel(catalogue.byName.get('S1_2a'), value))!;
        expect(answer.a!.n).toBe(count(responsesA));
        expect(answer.b!.n).toBe(count(responsesB));
      }
    }

    // The page shows the same comparison, and the CSV export carries it.
    const page = (await agent.get(`/evidence/waves?a=${a}&b=${b}`).expect(200)).text;
    expect(page).toContain('Wave against wave');
    expect(page).toContain('data-code="participation_rate:S1_1"');
    expect(page).not.toContain('data-code="barrier_index:S1_2b"');
    expect(page).not.toContain('data-question="S1_2b"');
    expect(page).toContain('Asked only in A (not compared): S1_2b.');
    expect(page).toContain('questions present in the responses');
    const csv = (await agent.get(`/evidence/waves/export.csv?a=${a}&b=${b}`).expect(200)).text;
    expect(csv).toContain('Indicators by wave');
    expect(csv).toContain('Difference (Wave 2026 minus Wave 2025)');
    expect(csv).not.toContain('barrier_index:S1_2b');
    expect(csv).not.toMatch(/,S1_2b,/);
  });

  it('when one campaign is too small, its side and the difference are suppressed and the other side is what its own page shows; campaigns are never pooled', async () => {
    const smallWave = await campaign('Small wave');
    const largeWave = await campaign('Large wave');
    await insertResponses(platform, [...small(smallWave, 4, 12), ...small(largeWave, 6, 12)]);
    const { agent } = await signIn(platform, 'reviewer');

    const alone = (await agent.get(`/evidence/indicators.json?campaign=${largeWave}`).expect(200)).body;
    const ownCell = alone.indicators.find((i: { code: string }) => i.code === 'participation_rate:S1_1').overall;
    expect(ownCell).toMatchObject({ suppressed: false, n: 12 });

    const json = (await agent.get(`/evidence/waves.json?a=${smallWave}&b=${largeWave}`).expect(200)).body as WaveComparison;
    const row = json.indicators.find((i) => i.code === 'participation_rate:S1_1')!;
    expect(row.a).toEqual({ suppressed: true });
    expect(row.b).toEqual(ownCell);
    expect(row.difference).toEqual({ suppressed: true });
    const question = json.questions.find((q) => q.name === 'S1_2a')!;
    expect(question).toMatchObject({ a: { suppressed: true }, b: { suppressed: false }, mean: { suppressed: true }, answers: [] });

    const page = (await agent.get(`/evidence/waves?a=${smallWave}&b=${largeWave}`).expect(200)).text;
    const cells = page.split('data-code="participation_rate:S1_1"')[1]!.split('</tr>')[0]!;
    expect(cells.split(NOTE)).toHaveLength(3);
    const csv = (await agent.get(`/evidence/waves/export.csv?a=${smallWave}&b=${largeWave}`).expect(200)).text;
    expect(csv.split('\r\n').find((l) => l.startsWith('Participation rate'))!.split(',').slice(2)).toEqual([NOTE, '', '33.3%', '12', NOTE]);

    // No page pools two campaigns (B = pooled minus A would give a hidden side away).
    const refused = await agent.get(`/evidence/indicators.json?campaign=${smallWave}&campaign=${largeWave}`).expect(400);
    expect(refused.text).toContain('choose one campaign');
  });

  it('for a side too small to publish, the comparison does not tell which questions its respondents answered', async () => {
    const a = await campaign('Wave A');
    const b = await campaign('Wave B');
    const inCountry = (id: Types.ObjectId, country: string, institutions: number, respondents: number) =>
      small(id, institutions, respondents).map((r) => ({ ...r, profile: { country } }));
    // In B, three Maltese respondents (2 institutions) also answered S1.5, which nobody else answered.
    const maltese = inCountry(b, 'MT', 2, 3).map((r) => ({ ...r, items: [...r.items, { strand: 'S1', question: 'S1_5', value: 4 }] }));
    await insertResponses(platform, [...inCountry(a, 'DE', 6, 12), ...inCountry(b, 'DE', 6, 12), ...maltese]);
    const { agent } = await signIn(platform, 'reviewer');

    const json = (await agent.get(`/evidence/waves.json?a=${a}&b=${b}&country=MT`).expect(200)).body as WaveComparison;
    expect(json.b.responses).toBeNull();
    expect(json.onlyA).toEqual([]);
    expect(json.onlyB).toEqual([]);
    expect(json.common).not.toContain('S1_5');
    expect(json.questions.map((q) => q.name)).not.toContain('S1_5');
    for (const q of json.questions) expect(q.b).toEqual({ suppressed: true });
  });

  it('a profile filter restricts both sides to the same respondents, and a side hidden on its own page under that filter is hidden here too', async () => {
    const a = await campaign('Wave A');
    const b = await campaign('Wave B');
    const inCountry = (id: Types.ObjectId, country: string, institutions: number, respondents: number) =>
      small(id, institutions, respondents).map((r) => ({ ...r, profile: { country } }));
    // In B, MT is too small; DE is then hidden beside it so that MT cannot be recomputed from B's total.
    await insertResponses(platform, [...inCountry(a, 'AT', 6, 12), ...inCountry(a, 'DE', 6, 12), ...inCountry(b, 'AT', 6, 14), ...inCountry(b, 'DE', 6, 12), ...inCountry(b, 'MT', 2, 3)]);
    const { agent } = await signIn(platform, 'reviewer');
    const code = 'participation_rate:S1_1';
    const own = async (campaignId: Types.ObjectId, country: string) =>
      (await agent.get(`/evidence/indicators.json?campaign=${campaignId}&country=${country}`).expect(200)).body.indicators.find((i: { code: string }) => i.code === code).overall;

    const at = (await agent.get(`/evidence/waves.json?a=${a}&b=${b}&country=AT`).expect(200)).body as WaveComparison;
    expect(at.a.responses).toBe(12);
    expect(at.b.responses).toBe(14);
    const atRow = at.indicators.find((i) => i.code === code)!;
    expect(atRow.a).toEqual(await own(a, 'AT'));
    expect(atRow.b).toEqual(await own(b, 'AT'));
    expect(atRow.b).toMatchObject({ suppressed: false, n: 14 });

    const de = (await agent.get(`/evidence/waves.json?a=${a}&b=${b}&country=DE`).expect(200)).body as WaveComparison;
    const deRow = de.indicators.find((i) => i.code === code)!;
    expect(await own(b, 'DE')).toEqual({ suppressed: true });
    expect(deRow.b).toEqual({ suppressed: true });
    expect(deRow.a).toMatchObject({ suppressed: false, n: 12 });
    expect(deRow.difference).toEqual({ suppressed: true });

    const page = (await agent.get(`/evidence/waves?a=${a}&b=${b}&country=AT`).expect(200)).text;
    expect(page).toMatch(/<option value="AT" selected>/);
    // The exports carry the same filter.
    expect(page.replaceAll('&#x3D;', '=').replaceAll('&amp;', '&')).toContain(`/evidence/waves/export.csv?a=${a}&b=${b}&country=AT`);
    expect(page).toContain('data-chart="waves"');
  });

  it('a reviewer reaches the comparison from the evidence pages; two unknown or equal campaigns are refused', async () => {
    const a = await campaign('First wave');
    const b = await campaign('Second wave');
    const { agent } = await signIn(platform, 'reviewer');
    expect((await agent.get('/evidence').expect(200)).text).toContain('href="/evidence/waves"');
    const form = (await agent.get('/evidence/waves').expect(200)).text;
    expect(form).toContain('id="wave-form"');
    expect(form).toContain(`<option value="${a}">First wave</option>`);
    await agent.get(`/evidence/waves?a=${a}&b=${a}`).expect(400);
    await agent.get(`/evidence/waves?a=${a}&b=${new Types.ObjectId()}`).expect(400);
    await agent.get(`/evidence/waves?a=${a}&b=$ne`).expect(400);
    await agent.get(`/evidence/waves?campaign=${a}&campaign=${b}`).expect(200);
  });

  it('a visitor who is not signed in is sent to the sign-in page', async () => {
    const response = await request(platform.app).get('/evidence/waves').expect(303);
    expect(response.headers.location).toMatch(/^\/login/);
    await request(platform.app).get('/evidence/waves/export.csv').expect(303);
  });
});
