import { simpleParser } from 'mailparser';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { reminderDryRun, startReminderRound } from '../../server/reminders/reminder.service.ts';
import { createCampaignWithContacts, drainOutbox, senderFor, statusesOf } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let sink: SmtpSink;

beforeAll(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

const deps = () => ({ models: platform.models, now: platform.clock.now });

/** A campaign of `n` contacts whose invitations went out through the sink. */
async function invitedCampaign(n: number, options: { countries?: string[]; types?: string[] } = {}) {
  const campaign = await createCampaignWithContacts(platform, { contacts: n, ...options });
  await enqueueInvitations(deps(), campaign.campaignId, 'test');
  const sender = senderFor(platform, sink.url);
  await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
  // The reminder policy leaves 7 days between the invitation and a reminder.
  platform.clock.advance(8 * 86_400_000);
  return { ...campaign, send: () => drainOutbox(() => sendDueMessages(sender.deps, sender.policy)), close: sender.close };
}

function rawTo(email: string): string {
  return [...sink.messages].reverse().find((m) => m.to.includes(email))?.raw ?? '';
}

async function lastMessageTo(email: string) {
  const message = [...sink.messages].reverse().find((m) => m.to.includes(email));
  if (!message) throw new Error(`nothing received for ${email}`);
  return simpleParser(message.raw);
}

describe('invitation emails', () => {
  it('carry the personal link, which opens the questionnaire, and one-click unsubscribe headers', async () => {
    const { emails, close } = await invitedCampaign(1);
    close();
    const mail = await lastMessageTo(emails[0]!);
    const link = /http:\/\/survey\.test(\/s\/[A-Za-z0-9_-]+)/.exec(mail.text ?? '')?.[1];
    expect(link).toBeDefined();
    const page = await request(platform.app).get(link!);
    expect(page.status, page.text.slice(0, 500)).toBe(200);
    const raw = rawTo(emails[0]!);
    expect(raw).toMatch(/^List-Unsubscribe:\s+<http:\/\/survey\.test\/u\/[0-9a-f]{24}\.[A-Za-z0-9_-]{43}>/m);
    expect(raw).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click/m);
    expect(mail.text).toMatch(/\/u\/[0-9a-f]{24}\./);
  });
});

describe('reminders', () => {
  it('go only to contacts who have not completed; completed, unsubscribed and bounced contacts get none; those who started get the other wording', async () => {
    const campaign = await invitedCampaign(5);
    const [completed, unsubscribed, bounced, started, untouched] = campaign.emails as [string, string, string, string, string];
    const invitationOf = async (email: string) => {
      const contact = await platform.models.Contact.findOne({ email }).lean();
      return platform.models.Invitation.findOne({ contact: contact!._id }).lean();
    };
    await platform.models.Invitation.updateOne({ _id: (await invitationOf(completed))!._id }, { $set: { completedAt: platform.clock.now() } });
    await platform.models.Invitation.updateOne({ _id: (await invitationOf(started))!._id }, { $set: { startedAt: platform.clock.now() } });
    await platform.models.Suppression.create({ email: bounced, reason: '550 no such user', at: platform.clock.now() });
    // One-click unsubscribe as a mail client does it: a POST without session or CSRF token.
    const unsubscribeUrl = /^List-Unsubscribe:\s+<http:\/\/survey\.test(\/u\/[^>]+)>/m.exec(rawTo(unsubscribed))![1]!;
    await request(platform.app).post(unsubscribeUrl).type('form').send('List-Unsubscribe=One-Click').expect(200);
    expect((await platform.models.Contact.findOne({ email: unsubscribed }).lean())!.unsubscribedAt).toBeInstanceOf(Date);

    const dryRun = await reminderDryRun(platform, campaign.campaignId);
    expect(dryRun.recipients.map((r) => r.email).sort()).toEqual([started, untouched].sort());
    expect(dryRun.started).toBe(1);

    const before = sink.messages.length;
    expect(await startReminderRound(deps(), campaign.campaignId, 'test')).toMatchObject({ started: true, round: 1, recipients: 2 });
    await campaign.send();
    campaign.close();
    const reminded = sink.messages.slice(before).flatMap((m) => m.to);
    expect(reminded.sort()).toEqual([started, untouched].sort());
    expect((await lastMessageTo(started)).text).toMatch(/finish where you left off/);
    expect((await lastMessageTo(untouched)).text).not.toMatch(/finish where you left off/);
    const statuses = await statusesOf(platform.models, campaign.campaignId);
    expect(statuses.filter((s) => s.message.kind === 'reminder').every((s) => s.state === 'sent')).toBe(true);
  });

  it('a reminder already queued is not sent to a contact who unsubscribes before it goes out', async () => {
    const campaign = await invitedCampaign(2);
    await startReminderRound(deps(), campaign.campaignId, 'test');
    const contact = await platform.models.Contact.findOne({ email: campaign.emails[0] }).lean();
    const page = await request(platform.app).get(String((await lastMessageTo(contact!.email)).text?.match(/http:\/\/survey\.test(\/u\/\S+)/)?.[1])).expect(200);
    expect(page.text).toMatch(/Unsubscribe/);
    await request(platform.app).post(String((await lastMessageTo(contact!.email)).text?.match(/http:\/\/survey\.test(\/u\/\S+)/)?.[1])).expect(200);
    const before = sink.messages.length;
    await campaign.send();
    campaign.close();
    expect(sink.messages.slice(before).flatMap((m) => m.to)).toEqual([campaign.emails[1]]);
    const skipped = (await statusesOf(platform.models, campaign.campaignId)).find((s) => s.message.kind === 'reminder' && s.message.to === contact!.email);
    expect(skipped).toMatchObject({ state: 'skipped' });
    expect(skipped!.last?.skipReason).toBe('unsubscribed');
  });

  it('when two callers start a round at the same moment, only one round starts and each contact is queued once', async () => {
    const campaign = await invitedCampaign(3);
    campaign.close();
    const results = await Promise.all([startReminderRound(deps(), campaign.campaignId, 'a'), startReminderRound(deps(), campaign.campaignId, 'b')]);
    expect(results.filter((r) => r.started)).toHaveLength(1);
    expect(await platform.models.ReminderRound.countDocuments({ campaign: campaign.campaignId, round: 1 })).toBe(1);
    expect(await platform.models.Outbox.countDocuments({ campaign: campaign.campaignId, kind: 'reminder' })).toBe(3);
  });

  it('a round is never started within the policy\'s days between rounds, by any caller', async () => {
    const campaign = await invitedCampaign(2);
    campaign.close();
    await platform.models.Campaign.updateOne({ _id: campaign.campaignId }, { $set: { reminderPolicy: { enabled: false, everyDays: 3, maxRounds: 5 } } });
    expect(await startReminderRound(deps(), campaign.campaignId, 'test')).toMatchObject({ started: true, round: 1 });
    platform.clock.advance(2 * 86_400_000);
    const refused = await startReminderRound(deps(), campaign.campaignId, 'test', 2);
    expect(refused).toMatchObject({ started: false });
    expect(!refused.started && refused.reason).toMatch(/leaves 3 days between rounds: round 2 can start from/);
    expect(await platform.models.ReminderRound.countDocuments({ campaign: campaign.campaignId })).toBe(2);
    platform.clock.advance(86_400_000);
    expect(await startReminderRound(deps(), campaign.campaignId, 'test', 2)).toMatchObject({ started: true, round: 2 });
  });

  it('the dry run counts recipients by country and institution type', async () => {
    const campaign = await invitedCampaign(6, { countries: ['DE', 'FR'], types: ['ivet_school', 'ivet_dual'] });
    campaign.close();
    const dryRun = await reminderDryRun(platform, campaign.campaignId);
    expect(dryRun.total).toBe(6);
    expect(dryRun.bySegment).toEqual([
      { country: 'DE', institutionType: 'ivet_dual', count: 1, started: 0 },
      { country: 'DE', institutionType: 'ivet_school', count: 2, started: 0 },
      { country: 'FR', institutionType: 'ivet_dual', count: 1, started: 0 },
      { country: 'FR', institutionType: 'ivet_school', count: 2, started: 0 },
    ]);
  });
});
