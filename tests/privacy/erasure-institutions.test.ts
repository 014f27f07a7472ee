import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvitations, personalLink } from '../../server/invitations/invitation.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
beforeAll(async () => {
  // Two institutions per published cell: whether an anonymous record still counts as its institution shows.
  platform = await startTestPlatform({ minCellInstitutions: 2, minCellRespondents: 1 });
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

async function published(campaignId: unknown) {
  const json = (await coordinator.agent.get(`/evidence/indicators.json?campaign=${campaignId}&by=country`).expect(200)).body;
  return { indicators: json.indicators, questions: json.questions.filter((q: { kind: string }) => q.kind !== 'text') };
}

describe('erasure and the institutions behind the evidence', () => {
  it('forgetting one of two respondents of an institution leaves the evidence unchanged: the institution counts once, and S4 still takes its latest answer', async () => {
    // Institution A: two respondents who submit at the same moment (the earlier invitation is the one forgotten,
    // so the tie between them must still fall as before); institution B: one respondent.
    const first = await createInvitedContact(platform, { strands: ['S1', 'S4'] });
    const colleague = await platform.models.Contact.create({ institution: first.institution._id, name: 'Colleague at A', email: `colleague-${first.contact.email}`, language: 'en' });
    await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: '' }, first.campaignId, [colleague]);
    const colleagueInvitation = (await platform.models.Invitation.findOne({ campaign: first.campaignId, contact: colleague._id }))!;
    const other = await createInvitedContact(platform, { campaignId: first.campaignId });

    const submit = async (path: string, tokenHash: string, answers: Record<string, unknown>) => {
      const submitted = await respondent(platform, path, tokenHash).submit({ data: completeAnswers(answers), baseRevision: 0, language: 'en' });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
    };
    await submit(first.path, first.invitation.tokenHash, { S1_5: 1, S4_1: 1, S4_2: 1 });
    await submit(personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, colleagueInvitation), colleagueInvitation.tokenHash, { S1_5: 5, S4_1: 4, S4_2: 4 });
    await submit(other.path, other.invitation.tokenHash, { P1: 'DE', S1_5: 3, S4_1: 3, S4_2: 3 });

    const before = await published(first.campaignId);
    // Published overall (two institutions), and S4 takes one answer per institution: two, not three.
    const s4 = before.questions.find((q: { name: string }) => q.name === 'S4_1');
    expect(s4.overall).toMatchObject({ suppressed: false, respondents: 2 });
    await coordinator.agent.post('/admin/privacy/erase').type('form').send({ _csrf: coordinator.csrf, email: first.contact.email, mode: 'forget', confirm: 'yes' }).expect(200);

    const anonymous = await platform.models.Response.findOne({ campaign: first.campaignId, anonymous: true }).lean();
    expect(String(anonymous!.institution)).toBe(String(first.institution._id));
    expect(await published(first.campaignId)).toEqual(before);
  });
});
