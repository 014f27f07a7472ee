import { formatDateTime } from '../../server/shared/dates.ts';
import request from 'supertest';
import type { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { personalLink } from '../../server/invitations/invitation.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { csrfOf, signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { createCampaignWithContacts, drainOutbox, senderFor } from '../helpers/mail.ts';
import { respondent } from '../helpers/respondent.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let sink: SmtpSink;
let coordinator: SignedInAgent;
let wakes = 0;

beforeAll(async () => {
  platform = await startTestPlatform({ appDeps: { wakeSender: () => (wakes += 1) } });
  sink = await startSmtpSink();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

/**
 * A campaign whose invitations the coordinator sent from the sending page
 * (through the SMTP sink). Countries alternate DE, FR.
 */
async function invitedCampaign(n: number) {
  const campaign = await createCampaignWithContacts(platform, { contacts: n, countries: ['DE', 'FR'] });
  await platform.models.Campaign.updateOne({ _id: campaign.campaignId }, { $set: { strands: ['S1', 'S2', 'S3', 'S4'] } });
  // Sending confirms the count the confirmation page shows.
  const confirm = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/send`).expect(200);
  const expected = /name="expected" value="(\d+)"/.exec(confirm.text)![1];
  const sendNo = /name="sendNo" value="(\d+)"/.exec(confirm.text)![1];
  await coordinator.agent.post(`/admin/campaigns/${campaign.campaignId}/send`).type('form').send({ _csrf: coordinator.csrf, expected, sendNo }).expect(303);
  // The request records the decision; the invitations are queued in the background.
  await platform.invitationQueue.idle();
  const sender = senderFor(platform, sink.url);
  await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
  sender.close();
  // The reminder policy leaves 7 days between the invitation and a reminder.
  platform.clock.advance(8 * 86_400_000);
  return campaign;
}

async function remindersPage(campaignId: Types.ObjectId) {
  return (await coordinator.agent.get(`/admin/campaigns/${campaignId}/reminders`).expect(200)).text;
}

const rounds = (campaignId: Types.ObjectId) => platform.models.ReminderRound.find({ campaign: campaignId }).lean();
const reminders = (campaignId: Types.ObjectId) => platform.models.Outbox.find({ campaign: campaignId, kind: 'reminder' }).lean();
const nextRoundOf = (html: string) => /name="round" value="(\d+)"/.exec(html)?.[1];
const recipientEmails = (html: string, emails: readonly string[]) => {
  const table = /<table aria-labelledby="dry-run-who-heading"[\s\S]*?<\/table>/.exec(html)?.[0] ?? '';
  return emails.filter((email) => table.includes(email)).sort();
};

describe('reminder pages', () => {
  it('the dry run lists exactly the contacts who have not completed and have not unsubscribed, by country and institution type, and sends nothing', async () => {
    const campaign = await invitedCampaign(5);
    const [completed, unsubscribed, started, ...untouched] = campaign.emails as [string, string, string, string, string];
    const invitations = await platform.models.Invitation.find({ campaign: campaign.campaignId }).lean();
    const respondentOf = (email: string) => {
      const contact = campaign.contacts.find((c) => c.email === email)!;
      const invitation = invitations.find((i) => String(i.contact) === String(contact._id))!;
      return respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitation), invitation.tokenHash);
    };
    await respondentOf(completed).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
    await respondentOf(started).saveDraft({ data: { P1: 'FR' }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
    const raw = sink.messages.find((m) => m.to.includes(unsubscribed))!.raw;
    const unsubscribePath = /^List-Unsubscribe:\s+<http:\/\/survey\.test(\/u\/[^>]+)>/m.exec(raw)![1]!;
    await request(platform.app).post(unsubscribePath).type('form').send('List-Unsubscribe=One-Click').expect(200);

    const html = await remindersPage(campaign.campaignId);
    expect(recipientEmails(html, campaign.emails)).toEqual([started, ...untouched].sort());
    expect(/id="dry-run-total">(\d+)</.exec(html)?.[1]).toBe('3');
    // Contacts 2 and 4 are in DE, 3 in FR; all school-based IVET.
    expect(/data-segment="DE\|ivet_school"><td>DE<\/td><td>[^<]*<\/td><td>(\d+)<\/td><td>(\d+)</.exec(html)?.slice(1)).toEqual(['2', '1']);
    expect(/data-segment="FR\|ivet_school"><td>FR<\/td><td>[^<]*<\/td><td>(\d+)<\/td><td>(\d+)</.exec(html)?.slice(1)).toEqual(['1', '0']);
    expect(nextRoundOf(html)).toBe('1');
    expect(html).toContain('Invitation');
    expect(await reminders(campaign.campaignId)).toHaveLength(0);
  });

  it('the coordinator changes the policy; out-of-range values are refused and nothing is written', async () => {
    const campaign = await invitedCampaign(1);
    const url = `/admin/campaigns/${campaign.campaignId}/reminders/policy`;
    await coordinator.agent.post(url).type('form').send({ _csrf: coordinator.csrf, enabled: 'on', everyDays: '5', maxRounds: '3' }).expect(303);
    const policyOf = async () => (await platform.models.Campaign.findById(campaign.campaignId).lean())!.reminderPolicy;
    expect(await policyOf()).toMatchObject({ enabled: true, everyDays: 5, maxRounds: 3 });
    const audit = await platform.models.AuditEntry.find({ action: 'reminder.policy', target: `campaign:${campaign.campaignId}` }).lean();
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!.details!)).toEqual({ enabled: true, everyDays: 5, maxRounds: 3 });

    const refused = await coordinator.agent.post(url).type('form').send({ _csrf: coordinator.csrf, everyDays: '61', maxRounds: '11' }).expect(400);
    expect(refused.text).toContain('from 1 to 60');
    expect(refused.text).toContain('from 0 to 10');
    await coordinator.agent.post(url).type('form').send({ _csrf: coordinator.csrf, everyDays: '0', maxRounds: '-1' }).expect(400);
    expect(await policyOf()).toMatchObject({ enabled: true, everyDays: 5, maxRounds: 3 });

    // Unticking the box switches automatic reminders off.
    await coordinator.agent.post(url).type('form').send({ _csrf: coordinator.csrf, everyDays: '5', maxRounds: '3' }).expect(303);
    expect((await policyOf())?.enabled).toBe(false);
    expect(await remindersPage(campaign.campaignId)).toMatch(/name="everyDays" type="number" min="1" max="60" required value="5"/);
  });

  it('without the CSRF token, neither the policy nor a reminder round is written', async () => {
    const campaign = await invitedCampaign(2);
    const policyBefore = (await platform.models.Campaign.findById(campaign.campaignId).lean())!.reminderPolicy;
    await coordinator.agent.post(`/admin/campaigns/${campaign.campaignId}/reminders/policy`).type('form').send({ enabled: 'on', everyDays: '3', maxRounds: '5' }).expect(403);
    await coordinator.agent
      .post(`/admin/campaigns/${campaign.campaignId}/reminders/policy`)
      .type('form')
      .send({ _csrf: 'forged', enabled: 'on', everyDays: '3', maxRounds: '5' })
      .expect(403);
    expect((await platform.models.Campaign.findById(campaign.campaignId).lean())!.reminderPolicy).toEqual(policyBefore);
    await coordinator.agent.post(`/admin/campaigns/${campaign.campaignId}/reminders/send`).type('form').send({ round: '1' }).expect(403);
    expect((await rounds(campaign.campaignId)).map((r) => r.round)).toEqual([0]);
    expect(await reminders(campaign.campaignId)).toHaveLength(0);
    expect(await platform.models.AuditEntry.countDocuments({ target: `campaign:${campaign.campaignId}`, action: { $in: ['reminder.policy', 'reminder.send-round'] } })).toBe(0);
  });

  it('"Send a reminder round now" queues one reminder per dry-run recipient, wakes the sender and shows the sending page', async () => {
    const campaign = await invitedCampaign(3);
    const html = await remindersPage(campaign.campaignId);
    const wakesBefore = wakes;
    const sent = await coordinator.agent
      .post(`/admin/campaigns/${campaign.campaignId}/reminders/send`)
      .type('form')
      .send({ _csrf: csrfOf(html), round: nextRoundOf(html) })
      .expect(303);
    expect(sent.headers.location).toBe(`/admin/campaigns/${campaign.campaignId}/sending`);
    expect(wakes).toBe(wakesBefore + 1);
    expect((await rounds(campaign.campaignId)).map((r) => r.round).sort()).toEqual([0, 1]);
    expect((await reminders(campaign.campaignId)).map((m) => m.to).sort()).toEqual([...campaign.emails].sort());
    const audit = await platform.models.AuditEntry.find({ action: 'reminder.send-round', target: `campaign:${campaign.campaignId}` }).lean();
    expect(JSON.parse(audit[0]!.details!)).toEqual({ round: 1, recipients: 3 });
    // The page now lists the round, and says from when round 2 can start instead of offering a button the policy would refuse.
    const after = await remindersPage(campaign.campaignId);
    expect(after).toContain('Reminder 1');
    const round1 = (await rounds(campaign.campaignId)).find((r) => r.round === 1)!;
    expect(after).toContain(`<strong>Round 2 can start from ${formatDateTime(new Date(round1.startedAt.getTime() + 7 * 86_400_000))}</strong>: the policy leaves 7 days between rounds`);
    expect(nextRoundOf(after)).toBeUndefined();
    expect(after).not.toContain('Send a reminder round now');
    platform.clock.advance(7 * 86_400_000);
    const week = await remindersPage(campaign.campaignId);
    expect(nextRoundOf(week)).toBe('2');
    expect(week).not.toContain('can start from');
  });

  it('two "send a round now" posts of the same page at once start one round, and each contact is queued once', async () => {
    const campaign = await invitedCampaign(3);
    const html = await remindersPage(campaign.campaignId);
    const post = () =>
      coordinator.agent.post(`/admin/campaigns/${campaign.campaignId}/reminders/send`).type('form').send({ _csrf: csrfOf(html), round: nextRoundOf(html) });
    const responses = await Promise.all([post(), post()]);
    expect(responses.map((r) => r.status).sort()).toEqual([303, 409]);
    expect(responses.find((r) => r.status === 409)!.text).toMatch(/No round was started/);
    expect((await rounds(campaign.campaignId)).map((r) => r.round).sort()).toEqual([0, 1]);
    expect(await reminders(campaign.campaignId)).toHaveLength(3);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'reminder.send-round', target: `campaign:${campaign.campaignId}` })).toBe(1);

    // A later post of that same stale page does not start round 2 either.
    await post().expect(409);
    expect(await rounds(campaign.campaignId)).toHaveLength(2);
  });

  it('a reviewer gets 403 on the reminder page, the policy form and "send a round now", and nothing is written', async () => {
    const campaign = await invitedCampaign(1);
    const reviewer = await signIn(platform, 'reviewer');
    const page = await reviewer.agent.get(`/admin/campaigns/${campaign.campaignId}/reminders`).expect(403);
    expect(page.text).not.toContain(campaign.emails[0]);
    await reviewer.agent.post(`/admin/campaigns/${campaign.campaignId}/reminders/policy`).type('form').send({ _csrf: reviewer.csrf, enabled: 'on', everyDays: '2', maxRounds: '9' }).expect(403);
    await reviewer.agent.post(`/admin/campaigns/${campaign.campaignId}/reminders/send`).type('form').send({ _csrf: reviewer.csrf, round: '1' }).expect(403);
    expect((await platform.models.Campaign.findById(campaign.campaignId).lean())!.reminderPolicy?.enabled).toBe(false);
    expect(await rounds(campaign.campaignId)).toHaveLength(1);
    expect(await reminders(campaign.campaignId)).toHaveLength(0);
  });
});
