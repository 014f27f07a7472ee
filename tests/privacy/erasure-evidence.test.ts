import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
beforeAll(async () => {
  // Thresholds of 1: every cell is published, so any change would show.
  platform = await startTestPlatform({ minCellInstitutions: 1, minCellRespondents: 1 });
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

const ANSWERS = [
  { P1: 'AT', S1_5: 5, S1_2a: 4 },
  { P1: 'AT', S1_5: 2, S1_2a: 2 },
  { P1: 'DE', S1_5: 4, S1_2a: 1 },
  { P1: 'DE', S1_5: 1, S1_2a: 3 },
  { P1: 'FR', S1_5: 3, S1_2a: 1 },
];
const PERSON = { P1: 'AT', S1_5: 1, S1_2a: 1, S1_6: 'I am the only Austrian head teacher near Graz.' };

/** A campaign whose contacts each submit one of the answer sets; returns the campaign and the addresses in order. */
async function campaignWith(answerSets: Array<Record<string, unknown>>) {
  let campaignId: Awaited<ReturnType<typeof createInvitedContact>>['campaignId'] | undefined;
  const emails: string[] = [];
  for (const answers of answerSets) {
    const invited = await createInvitedContact(platform, { strands: ['S1'], campaignId });
    campaignId = invited.campaignId;
    emails.push(invited.contact.email);
    const submitted = await respondent(platform, invited.path, invited.invitation.tokenHash).submit({ data: completeAnswers(answers), baseRevision: 0, language: 'en' });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
  }
  return { campaignId: campaignId!, emails };
}

/** What the evidence publishes for a campaign: every indicator and question distribution, overall and by country. */
async function published(campaignId: unknown) {
  const json = (await coordinator.agent.get(`/evidence/indicators.json?campaign=${campaignId}&by=country`).expect(200)).body;
  return { indicators: json.indicators, questions: json.questions.filter((q: { kind: string }) => q.kind !== 'text') };
}

async function erase(email: string, mode: 'forget' | 'delete') {
  await coordinator.agent.post('/admin/privacy/erase').type('form').send({ _csrf: coordinator.csrf, email, mode, confirm: 'yes' }).expect(200);
}

describe('erasure and the evidence', () => {
  it('forgetting a respondent leaves every indicator and distribution of the campaign unchanged', async () => {
    const { campaignId, emails } = await campaignWith([...ANSWERS, PERSON]);
    const before = await published(campaignId);
    expect(before.indicators.length).toBeGreaterThan(0);
    await erase(emails.at(-1)!, 'forget');
    expect(await published(campaignId)).toEqual(before);
    // The free text went with the person.
    const quotes = await coordinator.agent.get(`/evidence/quotes?campaign=${campaignId}`).expect(200);
    expect(quotes.text).not.toContain('Graz');
  });

  it('deleting a respondent with their answers changes the evidence exactly as if they had never answered', async () => {
    const { campaignId, emails } = await campaignWith([...ANSWERS, PERSON]);
    const { campaignId: without } = await campaignWith(ANSWERS);
    const before = await published(campaignId);
    expect(before).not.toEqual(await published(without));
    await erase(emails.at(-1)!, 'delete');
    expect(await published(campaignId)).toEqual(await published(without));
  });
});
