import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvitations, personalLink } from '../../server/invitations/invitation.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { INSTITUTION_TAGS_MIGRATION, migrateInstitutionTags } from '../../server/evidence/institution-tag.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { textQuestionNames } from '../../server/privacy/privacy.service.ts';
import { purgeCampaign } from '../../server/privacy/retention.service.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { documentsHolding } from './subject-data.ts';

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

    expect(await published(first.campaignId)).toEqual(before);

    // The anonymous record names no institution: it carries the institution's tag in the campaign, the one its colleague's record carries too.
    const institutionId = String(first.institution._id);
    const anonymous = (await platform.models.Response.findOne({ campaign: first.campaignId, anonymous: true }).lean<Record<string, unknown>>())!;
    expect(anonymous).not.toHaveProperty('institution');
    const colleagueRecord = (await platform.models.AnalyticRecord.findById(colleagueInvitation._id).lean())!;
    expect(anonymous.institutionTag).toBe(colleagueRecord.institution);
    expect((await platform.models.AnalyticRecord.findById(anonymous._id).lean())!.institution).toBe(colleagueRecord.institution);
    // An independent search: no stored document that names the anonymous record also holds the institution's id.
    const naming = await documentsHolding(platform, String(anonymous._id));
    expect(new Set(naming.map((d) => d.collection))).toEqual(new Set(['responses', 'analytic_records', 'evidence_journal']));
    for (const document of naming) expect(document.text, `${document.collection} ${document.id}`).not.toContain(institutionId);
    expect(await platform.models.InstitutionSecret.countDocuments({ _id: first.campaignId })).toBe(1);

    // The retention purge anonymises the others and drops the campaign's secret: still the same evidence, and no record leads to an institution.
    await purgeCampaign({ models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: textQuestionNames(buildCatalogue(loadSurveyLibrary())), workerId: 'test' }, first.campaignId);
    expect(await platform.models.Response.countDocuments({ campaign: first.campaignId, anonymous: { $ne: true } })).toBe(0);
    // Called here as another process would run it: the page shows it once the follower has polled past it.
    await expect.poll(() => published(first.campaignId)).toEqual(before);
    expect(await platform.models.InstitutionSecret.countDocuments({ _id: first.campaignId })).toBe(0);
    for (const record of await platform.models.AnalyticRecord.find({ campaign: first.campaignId }).lean()) {
      for (const document of await documentsHolding(platform, String(record._id))) {
        expect(document.text).not.toContain(institutionId);
        expect(document.text).not.toContain(String(other.institution._id));
      }
    }
  });

  it('a database from before institution tags: the migration replaces the ids in records and anonymous responses, once, and the evidence stays the same', async () => {
    const first = await createInvitedContact(platform, { strands: ['S1', 'S4'] });
    const colleague = await platform.models.Contact.create({ institution: first.institution._id, name: 'Colleague', email: `colleague-${first.contact.email}`, language: 'en' });
    await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: '' }, first.campaignId, [colleague]);
    const colleagueInvitation = (await platform.models.Invitation.findOne({ campaign: first.campaignId, contact: colleague._id }))!;
    const other = await createInvitedContact(platform, { campaignId: first.campaignId });
    await respondent(platform, first.path, first.invitation.tokenHash).submit({ data: completeAnswers({ S4_1: 1, S4_2: 1 }), baseRevision: 0, language: 'en' }).expect(201);
    await respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, colleagueInvitation), colleagueInvitation.tokenHash).submit({ data: completeAnswers({ S4_1: 4, S4_2: 4 }), baseRevision: 0, language: 'en' }).expect(201);
    await respondent(platform, other.path, other.invitation.tokenHash).submit({ data: completeAnswers({ P1: 'DE', S4_1: 3, S4_2: 3 }), baseRevision: 0, language: 'en' }).expect(201);
    await coordinator.agent.post('/admin/privacy/erase').type('form').send({ _csrf: coordinator.csrf, email: first.contact.email, mode: 'forget', confirm: 'yes' }).expect(200);
    const before = await published(first.campaignId);

    // Back to how such a database was stored: institution ids in the records and in the anonymous response, no secret.
    const idOf = new Map<string, string>();
    for (const invited of [{ invitation: colleagueInvitation, institution: first.institution }, other]) {
      idOf.set((await platform.models.AnalyticRecord.findById(invited.invitation._id).lean())!.institution, String(invited.institution._id));
    }
    for (const record of await platform.models.AnalyticRecord.find({ campaign: first.campaignId }).lean()) {
      await platform.models.AnalyticRecord.updateOne({ _id: record._id }, { $set: { institution: idOf.get(record.institution)! } });
    }
    await platform.models.Response.collection.updateOne({ campaign: first.campaignId, anonymous: true }, { $set: { institution: first.institution._id }, $unset: { institutionTag: 1 } });
    await platform.models.InstitutionSecret.deleteMany({});
    await platform.models.Claim.deleteMany({ _id: INSTITUTION_TAGS_MIGRATION });

    expect(await migrateInstitutionTags(platform.models, platform.tagKey, platform.clock.now)).toBe(4);
    const records = await platform.models.AnalyticRecord.find({ campaign: first.campaignId }).lean();
    expect(records.every((r) => r.institution.startsWith('t:'))).toBe(true);
    expect(new Set(records.map((r) => r.institution)).size).toBe(2);
    const anonymous = (await platform.models.Response.findOne({ campaign: first.campaignId, anonymous: true }).lean<Record<string, unknown>>())!;
    expect(anonymous).not.toHaveProperty('institution');
    expect(anonymous.institutionTag).toBe((await platform.models.AnalyticRecord.findById(colleagueInvitation._id).lean())!.institution);
    // Once: marked done; forced again, nothing is left in the old form.
    expect(await migrateInstitutionTags(platform.models, platform.tagKey, platform.clock.now)).toBe(0);
    await platform.models.Claim.deleteMany({ _id: INSTITUTION_TAGS_MIGRATION });
    expect(await migrateInstitutionTags(platform.models, platform.tagKey, platform.clock.now)).toBe(0);

    // An instance started now reads the migrated records: the same evidence.
    const fresh = await signIn({ ...platform, app: platform.anotherInstance() }, 'coordinator');
    const json = (await fresh.agent.get(`/evidence/indicators.json?campaign=${first.campaignId}&by=country`).expect(200)).body;
    expect({ indicators: json.indicators, questions: json.questions.filter((q: { kind: string }) => q.kind !== 'text') }).toEqual(before);
  });
});
