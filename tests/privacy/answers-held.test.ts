import type { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { journalIntents } from '../../server/evidence/analytic-record.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { personalLink } from '../../server/invitations/invitation.service.ts';
import { heldAnswerReads, heldAnswers, heldAnswersTestHooks } from '../../server/privacy/answers-held.ts';
import { erasePerson } from '../../server/privacy/privacy.service.ts';
import { revisionId } from '../../server/respond/response.model.ts';
import { KEPT_MAX_AGE_MS } from '../../server/shared/change-stamp.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { createCampaignWithContacts } from '../helpers/mail.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { respondent } from '../helpers/respondent.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

const textQuestions = new Set(buildCatalogue(loadSurveyLibrary()).questions.filter((q) => q.kind === 'text').map((q) => q.name));
const privacyDeps = () => ({ models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions });

/** The campaign's answers counted from the collections themselves. */
async function counted(campaign: Types.ObjectId) {
  const [identifiedResponses, anonymousResponses, revisions] = await Promise.all([
    platform.models.Response.countDocuments({ campaign, anonymous: { $ne: true } }),
    platform.models.Response.countDocuments({ campaign, anonymous: true }),
    platform.models.ResponseRevision.countDocuments({ campaign }),
  ]);
  return { identifiedResponses, anonymousResponses, revisions };
}

async function campaignOf(count: number) {
  const campaign = await createCampaignWithContacts(platform, { contacts: count, countries: ['AT'] });
  const invitations = await platform.models.Invitation.find({ campaign: campaign.campaignId }).sort({ _id: 1 }).lean();
  const person = (i: number) => respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitations[i]!), invitations[i]!.tokenHash);
  return { ...campaign, invitations, person };
}

/**
 * A campaign of `count` links whose first has answered, read by another process; `storeRevision(n)` stores a copy of
 * that answer as revision n, and nothing else (no response moved, no journal entry), as a writer that crashed would.
 */
async function withOneAnswered(
  count: number,
  check: (setup: Awaited<ReturnType<typeof campaignOf>> & { reader: Awaited<ReturnType<typeof otherConnection>>; load: () => Promise<unknown>; storeRevision: (revision: number) => Promise<void> }) => Promise<void>,
) {
  const campaign = await campaignOf(count);
  await campaign.person(0).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
  const first = campaign.invitations[0]!._id;
  const reader = await otherConnection(platform);
  try {
    await check({
      ...campaign,
      reader,
      load: async () => (await heldAnswers(reader.models)).get(String(campaign.campaignId)),
      storeRevision: async (revision) => {
        const stored = (await platform.models.ResponseRevision.findById(revisionId(first, 1)).lean())!;
        await platform.models.ResponseRevision.create({ ...stored, _id: revisionId(first, revision), revision });
      },
    });
  } finally {
    await reader.close();
  }
}

describe("the personal-data page's answers follow the evidence journal", () => {
  it('a submission and a revision elsewhere are applied from their journal entries; an erasure reads the answers whole', async () => {
    const { campaignId, contacts, person } = await campaignOf(3);
    const reader = await otherConnection(platform);
    try {
      const load = async () => (await heldAnswers(reader.models)).get(String(campaignId)) ?? { identifiedResponses: 0, anonymousResponses: 0, revisions: 0 };
      expect(await load()).toEqual({ identifiedResponses: 0, anonymousResponses: 0, revisions: 0 });
      expect(heldAnswerReads(reader.models).whole).toBe(1);

      await person(0).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
      expect(await load()).toEqual({ identifiedResponses: 1, anonymousResponses: 0, revisions: 1 });
      await person(0).submit({ data: { ...completeAnswers(), S1_2a: 3 }, baseRevision: 1, language: 'en' }).expect(201);
      await person(1).saveDraft({ data: { S1_2a: 2 }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
      await person(1).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
      expect(await load()).toEqual({ identifiedResponses: 2, anonymousResponses: 0, revisions: 3 });
      expect(await load()).toEqual(await counted(campaignId));
      // Three entries applied, no read of the responses after the first.
      expect(heldAnswerReads(reader.models)).toEqual({ whole: 1, entries: 3 });
      reader.wholeReads.splice(0);
      await load();
      expect(reader.wholeReads.filter((c) => c === 'responses' || c === 'response_revisions')).toEqual([]);

      // The erasure turns one response anonymous and removes its revisions: the journal names the removal, so the answers are read whole.
      await erasePerson(privacyDeps(), { email: contacts[0]!.email, mode: 'forget', actor: 'test' });
      expect(await load()).toEqual({ identifiedResponses: 1, anonymousResponses: 1, revisions: 1 });
      expect(await load()).toEqual(await counted(campaignId));
      expect(heldAnswerReads(reader.models).whole).toBe(2);

      // Followed on from there.
      await person(2).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
      expect(await load()).toEqual({ identifiedResponses: 2, anonymousResponses: 1, revisions: 2 });
      expect(heldAnswerReads(reader.models).whole).toBe(2);
    } finally {
      await reader.close();
    }
  });

  it('an entry for answers the whole read found already is not counted twice, nor one journalled again', async () => {
    await withOneAnswered(2, async ({ campaignId, invitations, reader, load, storeRevision }) => {
      // A revision stored and its response moved on, whose entry is written only after the whole read (as when the read falls between them).
      await storeRevision(2);
      await platform.models.Response.updateOne({ _id: invitations[0]!._id }, { $set: { revision: 2 } });
      expect(await load()).toEqual({ identifiedResponses: 1, anonymousResponses: 0, revisions: 2 });
      const whole = heldAnswerReads(reader.models).whole;
      await journalIntents(platform.models, [{ r: invitations[0]!._id, v: 2 }]);
      // A record written twice (a retry, a follower's repair) journals it twice.
      await journalIntents(platform.models, [{ r: invitations[0]!._id, v: 1 }]);
      expect(await load()).toEqual({ identifiedResponses: 1, anonymousResponses: 0, revisions: 2 });
      expect(heldAnswerReads(reader.models).whole).toBe(whole);
      expect(await load()).toEqual(await counted(campaignId));
    });
  });

  it('a revision whose writer crashed before its journal entry shows once the kept answers, past their age, are read again beside a load', async () => {
    await withOneAnswered(1, async ({ campaignId, invitations, person, reader, load, storeRevision }) => {
      expect(await load()).toEqual({ identifiedResponses: 1, anonymousResponses: 0, revisions: 1 });
      await storeRevision(2);
      expect(await load()).toEqual({ identifiedResponses: 1, anonymousResponses: 0, revisions: 1 });

      heldAnswersTestHooks.age(reader.models, KEPT_MAX_AGE_MS);
      // Answered from what was kept, without waiting for the read beside it.
      expect(await load()).toEqual({ identifiedResponses: 1, anonymousResponses: 0, revisions: 1 });
      await heldAnswersTestHooks.refreshed(reader.models);
      expect(await load()).toEqual({ identifiedResponses: 1, anonymousResponses: 0, revisions: 2 });
      // The next submission's entry (revision 3 would skip none) is followed from the state read beside.
      await platform.models.Invitation.updateOne({ _id: invitations[0]!._id }, { $set: { revision: 2 } });
      await platform.models.Response.updateOne({ _id: invitations[0]!._id }, { $set: { revision: 2 } });
      await person(0).submit({ data: completeAnswers(), baseRevision: 2, language: 'en' }).expect(201);
      expect(await load()).toEqual({ identifiedResponses: 1, anonymousResponses: 0, revisions: 3 });
      expect(await load()).toEqual(await counted(campaignId));
    });
  });
});
