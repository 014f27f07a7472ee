import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { insertResponses, type RawItem, type RawResponse } from './evidence-data.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 5, minCellRespondents: 10 });
});
afterAll(async () => {
  await platform.close();
});

/** `respondents` responses of `institutions` institutions with this profile, each answering what `items(i)` gives. */
async function group(campaign: Types.ObjectId, profile: Record<string, string>, institutions: number, respondents: number, items: (i: number) => RawItem[]) {
  const ids = Array.from({ length: institutions }, () => new Types.ObjectId());
  const responses = Array.from({ length: respondents }, (_, i): RawResponse => ({
    _id: new Types.ObjectId(),
    campaign,
    institution: ids[i % institutions]!,
    submittedAt: new Date(Date.UTC(2026, 1, 1, 0, i)),
    profile,
    items: items(i),
  }));
  await insertResponses(platform, responses);
}

type JsonCell = { suppressed: boolean };
type Row = { code?: string; name?: string; overall: JsonCell; groups: Record<string, JsonCell> };

describe('one disclosure decision per cell', () => {
  it('a group that routing leaves without answers does not protect a hidden one: the overall cell minus the published groups never gives it', async () => {
    const campaign = new Types.ObjectId();
    // S4 is answered by heads (10 institutions) and by 3 international coordinators; teachers never see it.
    await group(campaign, { role: 'head' }, 10, 10, () => [{ strand: 'S4', question: 'S4_1', value: 3 }]);
    await group(campaign, { role: 'intl_coordinator' }, 3, 3, () => [{ strand: 'S4', question: 'S4_1', value: 1 }]);
    await group(campaign, { role: 'vocational_teacher' }, 6, 12, () => [{ strand: 'S1', question: 'S1_1', value: true }]);
    const { agent } = await signIn(platform, 'reviewer');
    const json = (await agent.get(`/evidence/indicators.json?campaign=${campaign}&by=role`).expect(200)).body as { indicators: Row[]; questions: Row[] };
    const rows = [json.indicators.find((r) => r.code === 'imi')!, json.questions.find((r) => r.name === 'S4_1')!];
    for (const row of rows) {
      // Too small, the coordinators' group is not listed at all (its number of responses is hidden).
      expect(row.groups.intl_coordinator, row.code ?? row.name).toBeUndefined();
      // With the overall and the heads shown, the coordinators' cell is the overall minus the heads.
      expect(row.overall.suppressed && (row.groups.head?.suppressed ?? true), row.code ?? row.name).toBe(false);
      expect(row.overall.suppressed || (row.groups.head?.suppressed ?? true), row.code ?? row.name).toBe(true);
    }
  });

  it('an indicator and its question are published or hidden together in every cell, so neither table gives away what the other hid', async () => {
    const campaign = new Types.ObjectId();
    // Austria: 10 answers, 2 of them "don't know": 8 valid answers are too few for the indicator, 10 answers were enough for the question table.
    await group(campaign, { country: 'AT' }, 5, 10, (i) => [{ strand: 'S1', question: 'S1_2a', value: i < 2 ? 'dk' : 3 }]);
    await group(campaign, { country: 'IT' }, 6, 12, () => [{ strand: 'S1', question: 'S1_2a', value: 4 }]);
    await group(campaign, { country: 'PL' }, 7, 14, () => [{ strand: 'S1', question: 'S1_2a', value: 2 }]);
    const { agent } = await signIn(platform, 'reviewer');
    const json = (await agent.get(`/evidence/indicators.json?campaign=${campaign}&by=country`).expect(200)).body as { indicators: Row[]; questions: Row[] };
    const indicator = json.indicators.find((r) => r.code === 'barrier_index:S1_2a')!;
    const question = json.questions.find((r) => r.name === 'S1_2a')!;
    // Austria's number of responses is hidden with it (its complement), so neither table lists Austria.
    expect(indicator.groups.AT).toBeUndefined();
    expect(Object.keys(question.groups)).toEqual(Object.keys(indicator.groups));
    for (const key of Object.keys(indicator.groups)) expect(question.groups[key]!.suppressed, key).toBe(indicator.groups[key]!.suppressed);
    expect(question.overall.suppressed).toBe(indicator.overall.suppressed);
  });

  it('filters and breakdown together reach at most three dimensions, the tables protected together', async () => {
    const campaign = new Types.ObjectId();
    await group(campaign, { country: 'AT' }, 5, 10, () => [{ strand: 'S1', question: 'S1_1', value: true }]);
    const { agent } = await signIn(platform, 'reviewer');
    await agent.get(`/evidence/indicators.json?campaign=${campaign}&country=AT&role=head&by=size`).expect(200);
    const refused = await agent.get(`/evidence/indicators.json?campaign=${campaign}&country=AT&role=head&by=size&cross=erasmus`).expect(400);
    expect(refused.text).toContain('Combine at most 3 profile dimensions');
  });
});
