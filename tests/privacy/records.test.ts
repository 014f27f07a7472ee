import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
beforeAll(async () => {
  platform = await startTestPlatform();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

describe('records of processing', () => {
  it('list per campaign the basis, categories, recipients, retention and what is held now, as a page, JSON and CSV', async () => {
    const answered = await createInvitedContact(platform, { strands: ['S1'] });
    await platform.models.Campaign.updateOne({ _id: answered.campaignId }, { $set: { name: 'Records wave', lawfulBasis: 'public-task', retentionMonths: 12 } });
    await respondent(platform, answered.path, answered.invitation.tokenHash).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
    const drafted = await createInvitedContact(platform, { strands: ['S1'], campaignId: answered.campaignId });
    await respondent(platform, drafted.path, drafted.invitation.tokenHash).saveDraft({ data: { P1: 'AT' }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
    await signIn(platform, 'reviewer');

    const page = await coordinator.agent.get('/admin/privacy/records').expect(200);
    expect(page.text).toContain('Records wave');
    expect(page.text).toContain('Public task (Art. 6(1)(e))');
    expect(page.text).toContain('12 months after the close date');
    expect(page.text).toContain('Reviewers of the working group (1 account)');
    expect(page.text).toContain('2 contacts, 2 personal links, 1 draft, 1 identified and 0 anonymous responses, 1 revision');

    const json = await coordinator.agent.get('/admin/privacy/records.json').expect(200);
    const record = json.body.find((r: { campaign: string }) => r.campaign === String(answered.campaignId));
    expect(record.heldNow).toEqual({ contacts: 2, personalLinks: 2, drafts: 1, identifiedResponses: 1, anonymousResponses: 0, revisions: 1, emails: 0, consents: 0 });
    expect(record.categories.length).toBeGreaterThan(5);

    const csv = await coordinator.agent.get('/admin/privacy/records.csv?separator=semicolon').expect(200);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toMatch(/^campaign;name;opens;last_day;purpose;lawful_basis/);
    expect(lines.find((l) => l.includes('Records wave'))).toMatch(/;2;2;1;1;0;1;0;0$/);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'export.records-of-processing' })).toBe(2);

    const reviewer = await signIn(platform, 'reviewer');
    await reviewer.agent.get('/admin/privacy/records').expect(403);
  });

  it('the records and the retention page share the counts they keep, though they list the campaigns in another order', async () => {
    // One campaign opens first and closes last: the records list it first, the retention page last.
    const early = await createInvitedContact(platform, { strands: ['S1'], closesInDays: 400 });
    const late = await createInvitedContact(platform, { strands: ['S1'], closesInDays: 100 });
    await platform.models.Campaign.updateOne({ _id: early.campaignId }, { $set: { opensAt: new Date(platform.clock.current.getTime() - 30 * 86_400_000) } });
    await coordinator.agent.get('/admin/privacy').expect(200);
    // Written without moving a change stamp, as no writer of the platform does: only a count made again would show it.
    await platform.models.Consent.create({ _id: `test-${early.invitation._id}`, campaign: early.campaignId, invitation: early.invitation._id, version: 'v', language: 'en', at: platform.clock.current });
    const records = (await coordinator.agent.get('/admin/privacy/records.json').expect(200)).body as Array<{ campaign: string; heldNow: { consents: number } }>;
    expect(records.findIndex((r) => r.campaign === String(early.campaignId))).toBeLessThan(records.findIndex((r) => r.campaign === String(late.campaignId)));
    expect(records.find((r) => r.campaign === String(early.campaignId))!.heldNow.consents).toBe(0);
  });
});
