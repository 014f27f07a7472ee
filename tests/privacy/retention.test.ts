import type { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvitations } from '../../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { unsubscribe } from '../../server/mail/unsubscribe.service.ts';
import { unsubscribeLink } from '../../server/mail/unsubscribe-token.ts';
import { suppressionHash } from '../../server/privacy/subject.store.ts';
import { textQuestionNames } from '../../server/privacy/privacy.service.ts';
import { claimAttempt, runKey } from '../../server/privacy/retention.store.ts';
import { RETENTION_LEASE_MS, retentionDueAt, runRetention } from '../../server/privacy/retention.service.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { formatDay } from '../../server/shared/dates.ts';
import { quoteKey } from '../../server/evidence/evidence-quotes.service.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { drainOutbox, senderFor } from '../helpers/mail.ts';
import { respondent } from '../helpers/respondent.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { searchEveryCollection } from './subject-data.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
let sink: SmtpSink;
beforeAll(async () => {
  platform = await startTestPlatform();
  coordinator = await signIn(platform, 'coordinator');
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

const textQuestions = textQuestionNames(buildCatalogue(loadSurveyLibrary()));
/** The emails as sent kept for these outbox messages (in their outcomes "sent"). */
const keptEmails = (messages: Types.ObjectId[]) => platform.models.OutboxOutcome.countDocuments({ message: { $in: messages }, sentEmail: { $exists: true } });
const instance = (workerId: string) => ({ models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions, workerId });

/** A campaign closing tomorrow with a one-month retention: one respondent who submitted (with free text), one with a draft; both were sent their invitation. */
async function closingCampaign() {
  const answered = await createInvitedContact(platform, { strands: ['S1'], closesInDays: 1 });
  await platform.models.Campaign.updateOne({ _id: answered.campaignId }, { $set: { retentionMonths: 1 } });
  await respondent(platform, answered.path, answered.invitation.tokenHash).submit({ data: completeAnswers({ S1_6: 'Ask Ms Example in Linz' }), baseRevision: 0, language: 'en' }).expect(201);
  const drafted = await createInvitedContact(platform, { strands: ['S1'], campaignId: answered.campaignId });
  await respondent(platform, drafted.path, drafted.invitation.tokenHash).saveDraft({ data: { P1: 'AT' }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
  await enqueueInvitations({ models: platform.models, now: platform.clock.now }, answered.campaignId, 'test');
  const { deps, policy, close } = senderFor(platform, sink.url);
  await drainOutbox(() => sendDueMessages(deps, policy));
  close();
  const campaign = (await platform.models.Campaign.findById(answered.campaignId).lean())!;
  return { campaignId: answered.campaignId, answered, drafted, dueAt: retentionDueAt(campaign) };
}

describe('retention that runs by itself', () => {
  it('purges a campaign exactly at its due date, not a millisecond before, keeping anonymous closed answers and later campaigns\' contacts', async () => {
    const { campaignId, answered, drafted, dueAt } = await closingCampaign();
    // The drafted contact is also invited to a later campaign: they stay, that invitation too.
    const later = await createInvitedContact(platform, { strands: ['S1'], closesInDays: 400 });
    await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: '' }, later.campaignId, [drafted.contact]);

    const overview = await coordinator.agent.get('/admin/privacy').expect(200);
    expect(overview.text).toContain(`on ${formatDay(dueAt)}`);

    platform.clock.current = new Date(dueAt.getTime() - 1);
    expect(await runRetention(instance('a'))).toEqual([]);
    expect(await platform.models.Invitation.countDocuments({ campaign: campaignId })).toBe(2);

    const emails = (await platform.models.Outbox.find({ campaign: campaignId }, { _id: 1 }).lean()).map((m) => m._id);
    expect(await keptEmails(emails)).toBe(2);
    const journalled = () => platform.models.EmailChange.countDocuments({ _id: { $regex: `^${campaignId}:` } });
    expect(await journalled()).toBeGreaterThan(0);
    await coordinator.agent
      .post('/evidence/quotes/review')
      .type('form')
      .send({ _csrf: coordinator.csrf, campaign: String(campaignId), key: quoteKey(answered.invitation._id, 'S1_6', 'Ask Ms Example in Linz'), state: 'approved' })
      .expect(303);
    // The respondent unsubscribed: after the purge the list knows the address only as a keyed hash.
    await unsubscribe({ models: platform.models, tokenKey: platform.tokenKey, now: platform.clock.now }, unsubscribeLink({ tokenKey: platform.tokenKey, publicUrl: '' }, String(answered.contact._id)).split('/u/')[1]!);
    expect(await platform.models.Suppression.countDocuments({ email: answered.contact.email })).toBe(1);
    platform.clock.current = dueAt;
    expect((await runRetention(instance('a'))).map(String)).toContain(String(campaignId));
    expect(await platform.models.Invitation.countDocuments({ campaign: campaignId })).toBe(0);
    expect(await keptEmails(emails)).toBe(0);
    expect(await journalled()).toBe(0);
    const responses = await platform.models.Response.find({ campaign: campaignId }).lean();
    expect(responses).toHaveLength(1);
    expect(responses[0]!.data).not.toHaveProperty('S1_6');
    expect(responses[0]!.profile).toMatchObject({ country: 'AT' });

    const needles = [answered.contact.email, answered.contact.name, String(answered.contact._id), String(answered.invitation._id), String(drafted.invitation._id), 'Linz'];
    expect(await searchEveryCollection(platform, needles)).toEqual([]);
    expect(await platform.models.Suppression.findOne({ email: suppressionHash(platform.tokenKey, answered.contact.email) }).lean()).toMatchObject({ reason: 'retention' });
    expect(await platform.models.Contact.countDocuments({ _id: drafted.contact._id })).toBe(1);
    expect(await platform.models.Invitation.countDocuments({ contact: drafted.contact._id })).toBe(1);

    // Once: a later check purges nothing more; the page says when it was done.
    platform.clock.advance(86_400_000);
    expect((await runRetention(instance('a'))).map(String)).not.toContain(String(campaignId));
    expect(await platform.models.AuditEntry.countDocuments({ action: 'privacy.retention-purge', target: `campaign:${campaignId}` })).toBe(1);
    expect((await coordinator.agent.get('/admin/privacy').expect(200)).text).toContain(`done on ${formatDay(dueAt)}`);
  });

  it('two instances checking at the same moment purge a campaign once', async () => {
    const { campaignId, dueAt } = await closingCampaign();
    platform.clock.current = dueAt;
    const [a, b] = await Promise.all([runRetention(instance('a')), runRetention(instance('b'))]);
    expect([...a, ...b].filter((id) => String(id) === String(campaignId))).toHaveLength(1);
    expect(await platform.models.RetentionRun.countDocuments({ campaign: campaignId })).toBe(2); // attempt 1 and done
    expect(await platform.models.AuditEntry.countDocuments({ action: 'privacy.retention-purge', target: `campaign:${campaignId}` })).toBe(1);
    expect(await platform.models.Response.countDocuments({ campaign: campaignId })).toBe(1);
  });

  it('a purge whose process died is left alone during its lease and then finished by the next check', async () => {
    const { campaignId, dueAt } = await closingCampaign();
    platform.clock.current = dueAt;
    // A process claimed the purge and died before doing it.
    expect(await claimAttempt(platform.models, runKey(campaignId, dueAt), 1, { campaign: campaignId, dueAt, worker: 'dead', at: dueAt })).toBe(true);
    expect((await runRetention(instance('a'))).map(String)).not.toContain(String(campaignId));
    expect(await platform.models.Invitation.countDocuments({ campaign: campaignId })).toBe(2);
    platform.clock.advance(RETENTION_LEASE_MS);
    expect((await runRetention(instance('a'))).map(String)).toContain(String(campaignId));
    expect(await platform.models.Invitation.countDocuments({ campaign: campaignId })).toBe(0);
    expect(await platform.models.Response.countDocuments({ campaign: campaignId })).toBe(1);
  });

  it('the coordinator sees the dry run on the page, which changes nothing, and purges what is due from it, once', async () => {
    const { campaignId, answered, dueAt } = await closingCampaign();
    const name = (await platform.models.Campaign.findById(campaignId).lean())!.name;
    const emails = (await platform.models.Outbox.find({ campaign: campaignId }, { _id: 1 }).lean()).map((m) => m._id);
    // Two email records, one kept as sent (a copy is kept only when the relay accepted it): the dry run counts them apart.
    await platform.models.OutboxOutcome.updateOne({ message: emails[1] }, { $unset: { sentEmail: 1, sentEmailBase: 1 } });
    const purgeNow = () => coordinator.agent.post('/admin/privacy/retention').type('form').send({ _csrf: coordinator.csrf });

    // A second before it is due: the date and the dry run, and nothing to purge yet.
    platform.clock.current = new Date(dueAt.getTime() - 1000);
    const before = await coordinator.agent.get('/admin/privacy').expect(200);
    expect(rowOf(before.text, campaignId)).toEqual([name, '1', `on ${formatDay(dueAt)}`, '2', '2', '1', '1', '1', '2', '1', '0']);
    expect(before.text).not.toContain('Purge what is due now');
    expect((await purgeNow().expect(200)).text).toContain('Nothing was due');
    expect(await platform.models.Invitation.countDocuments({ campaign: campaignId })).toBe(2);
    expect(await keptEmails(emails)).toBe(1);

    platform.clock.current = dueAt;
    const due = await coordinator.agent.get('/admin/privacy').expect(200);
    expect(rowOf(due.text, campaignId)).toEqual([name, '1', 'due now (runs within the hour)', '2', '2', '1', '1', '1', '2', '1', '0']);
    expect(due.text).toContain('Purge what is due now');
    // The dry run removes nothing.
    expect(await platform.models.Invitation.countDocuments({ campaign: campaignId })).toBe(2);

    // Only a coordinator, only with the form's token.
    await coordinator.agent.post('/admin/privacy/retention').type('form').send({}).expect(403);
    const reviewer = await signIn(platform, 'reviewer');
    await reviewer.agent.post('/admin/privacy/retention').type('form').send({ _csrf: reviewer.csrf }).expect(403);
    expect(await platform.models.Invitation.countDocuments({ campaign: campaignId })).toBe(2);

    const purged = await purgeNow().expect(200);
    expect(purged.text).toContain(`Purged now: ${name}.`);
    expect(rowOf(purged.text, campaignId)).toEqual([name, '1', `done on ${formatDay(dueAt)}`, '0', '0', '0', '0', '0', '0', '0', '0']);
    expect(purged.text).not.toContain('Purge what is due now');
    expect(await platform.models.Invitation.countDocuments({ campaign: campaignId })).toBe(0);
    expect(await keptEmails(emails)).toBe(0);
    const anonymous = await platform.models.Response.find({ campaign: campaignId }).lean();
    expect(anonymous).toHaveLength(1);
    expect(anonymous[0]!.data).not.toHaveProperty('S1_6');
    expect(await searchEveryCollection(platform, [answered.contact.email, answered.contact.name, 'Linz'])).toEqual([]);
    const audit = await platform.models.AuditEntry.find({ action: 'privacy.retention-purge', target: `campaign:${campaignId}` }).lean();
    expect(audit.map((a) => a.actor)).toEqual([coordinator.user.email]);

    // Again, from the page or by the scheduler: nothing more.
    expect((await purgeNow().expect(200)).text).toContain('Nothing was due');
    expect((await runRetention(instance('b'))).map(String)).not.toContain(String(campaignId));
    expect(await platform.models.AuditEntry.countDocuments({ action: 'privacy.retention-purge', target: `campaign:${campaignId}` })).toBe(1);
  });

  it('an uploaded contacts file nobody confirmed is gone a day later, whether or not another file is uploaded', async () => {
    const uploaded = await platform.models.ImportPreview.create({ previewId: 'stale-preview', actor: 'someone', text: 'institution_name,email\nA school,forgotten@school.example', createdAt: platform.clock.now() });
    platform.clock.advance(24 * 3600_000 - 1000);
    await runRetention(instance('a'));
    expect(await platform.models.ImportPreview.countDocuments({ _id: uploaded._id })).toBe(1);
    platform.clock.advance(2000);
    await runRetention(instance('a'));
    expect(await platform.models.ImportPreview.countDocuments({ _id: uploaded._id })).toBe(0);
  });
});

/** The cells of a campaign's row in the retention table, as text. */
function rowOf(html: string, campaignId: unknown): string[] {
  const row = new RegExp(`<tr><td><a href="/admin/campaigns/${campaignId}">[\\s\\S]*?</tr>`).exec(html);
  if (!row) throw new Error(`no row for campaign ${campaignId}`);
  return [...row[0].matchAll(/<td>([\s\S]*?)<\/td>/g)].map((m) => m[1]!.replace(/<[^>]+>/g, '').trim());
}
