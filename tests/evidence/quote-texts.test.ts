import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDemoData } from '../../server/campaigns/demo-data.service.ts';
import { quoteKey } from '../../server/evidence/evidence-quotes.service.ts';
import { createInvitations, personalLink } from '../../server/invitations/invitation.service.ts';
import { decodeQuoteText, migrateQuoteTexts, QUOTE_TEXTS_MIGRATION, quoteTextOf, writeQuoteText, type QuoteTextDoc } from '../../server/evidence/quote-text.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn } from '../helpers/accounts.ts';
import { isText } from '../helpers/evidence-records.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { insertCountry } from './evidence-data.ts';

const STRANDS = ['S1', 'S2', 'S3', 'S4'];

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 5, minCellRespondents: 10 });
});
afterAll(async () => {
  await platform.close();
});

/** Complete answers with no free text (S1.6 is the fixture's only one). */
function withoutText(overrides: Parameters<typeof completeAnswers>[0]) {
  const answers = completeAnswers(overrides);
  delete answers.S1_6;
  return answers;
}

const copyOf = async (id: Types.ObjectId) => platform.models.QuoteText.findById(id).lean<QuoteTextDoc>();

describe('the quotes\' copies of free-text answers', () => {
  it('a submission writes its copy, a revision replaces it, one without free text empties it; the quotes page reads the copies, not the responses', async () => {
    const invited = await createInvitedContact(platform);
    const campaign = invited.campaignId;
    await insertCountry(platform, campaign, 'AT', 5, 10, { text: 'Ten colleagues went abroad.' });
    const link = respondent(platform, invited.path, invited.invitation.tokenHash);

    await link.submit({ data: completeAnswers({ P1: 'AT', S1_6: 'Our partner school in Lyon helped.' }), baseRevision: 0, language: 'en' }).expect(201);
    const first = (await copyOf(invited.invitation._id))!;
    expect(first).toMatchObject({ campaign, institution: invited.institution._id, revision: 1 });
    expect(decodeQuoteText(first)).toMatchObject({ profile: { country: 'AT' }, items: [{ strand: 'S1', question: 'S1_6', value: 'Our partner school in Lyon helped.' }] });
    // Nothing but the free text outside the profile: the closed answers stay with the response and its analytic record.
    expect(Object.keys(first).sort()).toEqual(['_id', 'campaign', 'institution', 'p', 'revision', 't']);

    // The response's own copy of the text changed behind the platform's back: the page shows what the quotes' copy holds.
    await platform.models.Response.updateOne({ _id: invited.invitation._id }, { $set: { items: [{ strand: 'S1', question: 'S1_6', value: 'Read from the response.' }] } });
    const { agent } = await signIn(platform, 'coordinator');
    const page = (await agent.get(`/evidence/quotes?campaign=${campaign}`).expect(200)).text;
    expect(page).toContain('Our partner school in Lyon helped.');
    expect(page).toContain('Ten colleagues went abroad.');
    expect(page).not.toContain('Read from the response.');

    await link.submit({ data: completeAnswers({ P1: 'AT', S1_6: 'Lyon and Graz helped.' }), baseRevision: 1, language: 'en' }).expect(201);
    expect(decodeQuoteText((await copyOf(invited.invitation._id))!)).toMatchObject({ items: [{ value: 'Lyon and Graz helped.' }] });
    expect((await copyOf(invited.invitation._id))!.revision).toBe(2);

    await link.submit({ data: withoutText({ P1: 'AT' }), baseRevision: 2, language: 'en' }).expect(201);
    expect(await copyOf(invited.invitation._id)).toMatchObject({ revision: 3, t: '[]' });
    platform.clock.advance(61_000);
    expect((await agent.get(`/evidence/quotes?campaign=${campaign}`).expect(200)).text).not.toContain('Lyon');
  });

  it('responses stored before the copies get them once, equal to what the respondent path writes; a second run changes nothing and a newer copy is kept', async () => {
    const { validator } = platform.questionnaires.forStrands(STRANDS);
    const campaign = new Types.ObjectId();
    const stored = [completeAnswers({ S1_6: 'Before the copies.' }), withoutText({ S1_5: 3 }), completeAnswers({ S1_6: 'Written again since.', P1: 'BE' })].map((answers, i) => {
      const result = validator.validate(answers, 'en');
      if (!result.ok) throw new Error('fixture invalid');
      const id = new Types.ObjectId();
      return { _id: id, campaign, invitation: id, institution: new Types.ObjectId(), revision: 1, definitionVersion: 'old', strands: STRANDS, language: 'en', submittedAt: new Date(Date.UTC(2025, 0, 1 + i)), data: result.data, items: result.items, profile: { country: String(answers.P1 ?? 'AT') } };
    });
    // An anonymous response (an erasure's or a purge's) has no free text and no institution id: it gets no copy.
    const anonymous = { ...stored[1]!, _id: new Types.ObjectId(), institution: undefined, institutionTag: 'tag', anonymous: true };
    await platform.models.Response.collection.insertMany([...stored, anonymous]);
    // The third was revised through the platform since: its copy is newer than the stored response.
    const newer = { ...quoteTextOf(stored[2]!, isText)!, revision: 2, t: JSON.stringify([['S1', 'S1_6', 'The newer text.']]) };
    await platform.models.QuoteText.collection.insertOne(newer);
    await platform.models.Claim.deleteMany({ _id: QUOTE_TEXTS_MIGRATION });

    const progress: number[] = [];
    expect(await migrateQuoteTexts(platform.models, isText, platform.clock.now, (read) => progress.push(read))).toBe(1);
    expect(progress.at(-1)).toBe(await platform.models.Response.countDocuments());
    expect(await copyOf(stored[0]!._id)).toEqual(quoteTextOf(stored[0]!, isText));
    expect(decodeQuoteText((await copyOf(stored[0]!._id))!).items).toEqual([{ strand: 'S1', question: 'S1_6', value: 'Before the copies.' }]);
    expect(await copyOf(stored[1]!._id)).toBeNull();
    expect(await copyOf(anonymous._id)).toBeNull();
    expect(await copyOf(stored[2]!._id)).toEqual(newer);

    // Marked done: a second run returns at once; forced (the marker removed, as after a cut), it writes nothing.
    const before = await platform.models.QuoteText.find({}).sort({ _id: 1 }).lean();
    expect(await migrateQuoteTexts(platform.models, isText, platform.clock.now)).toBe(0);
    await platform.models.Claim.deleteMany({ _id: QUOTE_TEXTS_MIGRATION });
    expect(await migrateQuoteTexts(platform.models, isText, platform.clock.now)).toBe(0);
    expect(await platform.models.QuoteText.find({}).sort({ _id: 1 }).lean()).toEqual(before);

    // A migration that read a response's first revision, with free text, while its second, without, was recorded: the
    // second's empty copy is there first, and the old text does not come back.
    const revised = { ...stored[0]!, _id: new Types.ObjectId(), items: stored[0]!.items };
    await platform.models.Response.collection.insertOne(revised);
    await writeQuoteText(platform.models, { ...revised, revision: 2, items: revised.items.filter((i) => !isText(i.question)) }, isText);
    await platform.models.Claim.deleteMany({ _id: QUOTE_TEXTS_MIGRATION });
    expect(await migrateQuoteTexts(platform.models, isText, platform.clock.now)).toBe(0);
    expect(await copyOf(revised._id)).toMatchObject({ revision: 2, t: '[]' });
  });

  it('names come from the contact list the process keeps; one it does not hold yet (written by another process a moment ago) is read by _id and removed', async () => {
    const invited = await createInvitedContact(platform);
    const campaign = invited.campaignId;
    await insertCountry(platform, campaign, 'AT', 5, 10, { text: 'Ten colleagues went abroad.' });
    const coordinator = await signIn(platform, 'coordinator');
    const page = async (agent: typeof coordinator.agent) => (await agent.get(`/evidence/quotes?campaign=${campaign}`).expect(200)).text;
    await page(coordinator.agent);

    // Written as another process would, without the contact list's journal: this process's kept list does not have them.
    const institution = await platform.models.Institution.create({ name: 'Harbourside Polytechnic', country: 'AT', type: 'ivet_school', key: `k-${new Types.ObjectId()}` });
    const contact = await platform.models.Contact.create({ institution: institution._id, name: 'Ottilie Brandauer', email: `${new Types.ObjectId()}@school.example` });
    await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: '' }, campaign, [contact]);
    const invitation = (await platform.models.Invitation.findOne({ campaign, contact: contact._id }).lean())!;
    const text = 'Ottilie Brandauer of Harbourside Polytechnic went to Lyon.';
    await respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitation), invitation.tokenHash).submit({ data: completeAnswers({ P1: 'AT', S1_6: text }), baseRevision: 0, language: 'en' }).expect(201);

    const csrf = (await page(coordinator.agent)).match(/name="_csrf" value="([^"]+)"/)![1]!;
    await coordinator.agent.post('/evidence/quotes/review').type('form').send({ _csrf: csrf, campaign: String(campaign), key: quoteKey(invitation._id, 'S1_6', text), state: 'approved' }).expect(303);
    const shown = await page((await signIn(platform, 'reviewer')).agent);
    expect(shown).toContain('[name removed] of [name removed] went to Lyon.');
    for (const word of ['Ottilie', 'Brandauer', 'Harbourside', 'Polytechnic']) expect(shown).not.toContain(word);
  });

  it('removing the demo data removes the copies of its responses', async () => {
    const invited = await createInvitedContact(platform);
    await respondent(platform, invited.path, invited.invitation.tokenHash).submit({ data: completeAnswers({ S1_6: 'A demo answer.' }), baseRevision: 0, language: 'en' }).expect(201);
    expect(await copyOf(invited.invitation._id)).not.toBeNull();
    await platform.models.Campaign.updateOne({ _id: invited.campaignId }, { $set: { demo: true } });
    await removeDemoData({ models: platform.models, now: platform.clock.now }, 'test');
    expect(await copyOf(invited.invitation._id)).toBeNull();
  });
});
