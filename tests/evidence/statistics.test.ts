import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { catalogue, insertResponses, type RawItem, type RawResponse } from './evidence-data.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 5, minCellRespondents: 10 });
});
afterAll(async () => {
  await platform.close();
});

/** `count` respondents of as many institutions, the i-th answering items(i). */
async function campaignOf(items: (i: number) => RawItem[], count = 10): Promise<Types.ObjectId> {
  const campaign = new Types.ObjectId();
  const responses = Array.from({ length: count }, (_, i): RawResponse => ({
    _id: new Types.ObjectId(),
    campaign,
    institution: new Types.ObjectId(),
    submittedAt: new Date(Date.UTC(2026, 1, 1, 0, i)),
    profile: { country: 'AT' },
    items: items(i),
  }));
  await insertResponses(platform, responses);
  return campaign;
}

type Count = { value: unknown; row?: string; rank?: number; n: number; share: number | null };
type Question = { name: string; overall: { suppressed: boolean; respondents: number; validN: number; dk: number; counts: Count[] } };

async function json(campaign: Types.ObjectId) {
  const { agent } = await signIn(platform, 'reviewer');
  return { agent, body: (await agent.get(`/evidence/indicators.json?campaign=${campaign}`).expect(200)).body as { questions: Question[]; indicators: Array<{ code: string; overall: Record<string, unknown> }> } };
}

describe('what each figure counts', () => {
  it('a grid (S3.6) shares each answer of those who answered that row', async () => {
    const [first, second] = catalogue.byName.get('S3_6')!.rows.map((r) => String(r.value));
    // Everyone answers the first row (half "leader", half "teacher"); four answer the second, all "leader".
    const campaign = await campaignOf((i) => [
      { strand: 'S3', question: 'S3_6', row: first!, value: i < 5 ? 'leader' : 'teacher' },
      ...(i < 4 ? [{ strand: 'S3', question: 'S3_6', row: second!, value: 'leader' }] : []),
    ]);
    const { body } = await json(campaign);
    const s36 = body.questions.find((q) => q.name === 'S3_6')!.overall;
    const share = (row: string, value: string) => s36.counts.find((c) => c.row === row && c.value === value)!.share;
    expect(share(second!, 'leader')).toBe(100);
    expect(share(first!, 'leader')).toBe(50);
    expect(share(second!, 'teacher')).toBe(0);
    expect(s36.respondents).toBe(10);
    expect(s36.validN).toBe(14);
  });

  it('S4.5\'s separate "don\'t know" box counts as its "don\'t know", and every category is listed, those nobody chose with 0', async () => {
    const campaign = await campaignOf((i) => [
      i < 10 ? { strand: 'S4', question: 'S4_5', value: 40 } : { strand: 'S4', question: 'S4_5_dk', value: 'dk' },
      { strand: 'S1', question: 'S1_2a', value: 4 },
    ], 14);
    const { body, agent } = await json(campaign);
    const s45 = body.questions.find((q) => q.name === 'S4_5')!.overall;
    expect([s45.respondents, s45.validN, s45.dk]).toEqual([14, 10, 4]);
    expect(body.questions.map((q) => q.name)).not.toContain('S4_5_dk');
    const s12a = body.questions.find((q) => q.name === 'S1_2a')!.overall;
    expect(s12a.counts.map((c) => [c.value, c.n])).toEqual([[1, 0], [2, 0], [3, 0], [4, 14], ['dk', 0]]);
    const page = (await agent.get(`/evidence/questions?campaign=${campaign}`).expect(200)).text;
    expect(page).toContain('n = 14 respondents · valid answers: 14');
  });

  it('the learner mobility rate shows its gap to the 12% target as a figure', async () => {
    const campaign = await campaignOf(() => [
      { strand: 'S2', question: 'S2_9a', value: 6 },
      { strand: 'S2', question: 'S2_9b', value: 100 },
    ]);
    const { body, agent } = await json(campaign);
    const rate = body.indicators.find((r) => r.code === 'learner_mobility_rate')!.overall;
    expect(rate).toMatchObject({ suppressed: false, value: 6, targetGap: -6 });
    const csv = (await agent.get(`/evidence/export/indicators.csv?campaign=${campaign}`).expect(200)).text;
    const header = csv.split('\r\n').find((l) => l.startsWith('Indicator,'))!.split(',');
    const line = csv.split('\r\n').find((l) => l.startsWith('Learner mobility rate'))!.split(',');
    expect(line[header.indexOf('Overall')]).toBe('6');
    expect(line[header.indexOf('Overall gap to target (points)')]).toBe('-6');
    const page = (await agent.get(`/evidence?campaign=${campaign}`).expect(200)).text;
    expect(page).toContain('6.0% (\u22126.0 points against the target)');
  });

  it('the printable report names its campaign, fieldwork dates, filter, breakdown and thresholds', async () => {
    const created = await platform.models.Campaign.create({ name: 'Wave <2026>', strands: ['S1'], opensAt: new Date('2026-01-05'), closesAt: new Date('2026-03-01') });
    const campaign = created._id;
    const responses = Array.from({ length: 10 }, (_, i): RawResponse => ({
      _id: new Types.ObjectId(),
      campaign,
      institution: new Types.ObjectId(),
      submittedAt: new Date(Date.UTC(2026, 1, 1, 0, i)),
      profile: { country: 'AT' },
      items: [{ strand: 'S1', question: 'S1_1', value: true }],
    }));
    await insertResponses(platform, responses);
    const { agent } = await signIn(platform, 'reviewer');
    const page = (await agent.get(`/evidence/report?campaign=${campaign}&country=AT&by=role`).expect(200)).text;
    const scope = page.split('<dl class="report-scope">')[1]!.split('</dl>')[0]!;
    expect(scope).toContain('<dd>Wave &lt;2026&gt;</dd>');
    // The close is stored as the first moment after the last day: the report names the last day.
    expect(scope).toContain('<dd>5 January 2026 to 28 February 2026</dd>');
    expect(scope).toContain('<dd>Country: Austria</dd>');
    expect(scope).toContain('<dd>Role</dd>');
    expect(scope).toContain('<dd>5 institutions, 10 respondents; groups whose number of responses is suppressed are not listed</dd>');
  });
});
