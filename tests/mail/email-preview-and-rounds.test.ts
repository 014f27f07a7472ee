import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvitations } from '../../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { startReminderRound } from '../../server/reminders/reminder.service.ts';
import { csrfOf, signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { createCampaignWithContacts, drainOutbox, senderFor } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let sink: SmtpSink;
let coordinator: SignedInAgent;
beforeAll(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink();
  coordinator = await signIn(platform, 'coordinator', { name: 'Cora Ordinator' });
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

const deps = () => ({ models: platform.models, now: platform.clock.now });
const unescape = (html: string) => html.replace(/&#x3D;/g, '=').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

async function drain() {
  const sender = senderFor(platform, sink.url);
  await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
  sender.close();
}

describe('the email preview', () => {
  it('shows the HTML version of each email in a sandboxed frame, and the reminder to those who have not started and to those who have', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 1 });
    const page = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/preview`).expect(200);
    // The HTML as sent, in a frame that runs no script and reaches nothing of the platform.
    const frames = [...page.text.matchAll(/<iframe [^>]*sandbox=""[^>]*srcdoc="([^"]*)"/g)].map((m) => unescape(m[1]!));
    expect(frames.length).toBeGreaterThanOrEqual(9);
    expect(frames[0]).toMatch(/^<!doctype html><html lang="en"><body><p>Dear Leader 0,<\/p>/);
    const shown = unescape(page.text);
    expect(shown).toMatch(/Reminder to those who have not started/);
    expect(shown).toMatch(/Reminder to those who started/);
    expect(shown).toContain('Every provider\'s view counts.');
    expect(shown).toContain('you can finish where you left off');
  });

  it('each language\'s sample is the first contact invited in that language, and a language nobody speaks shows sample data', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 2 });
    await platform.models.Campaign.updateOne({ _id: campaign.campaignId }, { $set: { languages: ['en', 'fr', 'de'] } });
    const school = campaign.institutions[0]!._id;
    const french = await platform.models.Contact.insertMany(['Amélie Premier', 'Bruno Second'].map((name, i) => ({ institution: school, name, email: `fr${i}-${campaign.campaignId}@school.example`, language: 'fr' })));
    for (const contact of french) await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: '' }, campaign.campaignId, [contact]);
    const page = unescape((await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/preview`).expect(200)).text);
    expect(page).toContain(`Leader 0 <${campaign.emails[0]}>`);
    expect(page).toContain(`Amélie Premier <${french[0]!.email}>`);
    expect(page).not.toContain('Bruno Second');
    expect(page).not.toContain('Leader 1');
    expect(page).toContain('sample data');
  });

  it('a test of the reminder wording sends both branches in each language, marked as tests', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 1 });
    await platform.models.Campaign.updateOne({ _id: campaign.campaignId }, { $set: { languages: ['en', 'fr'] } });
    const preview = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/preview`).expect(200);
    expect(preview.text).toMatch(/<select[^>]*name="wording"/);
    const testNo = /name="testNo" value="(\d+)"/.exec(preview.text)![1]!;
    const before = sink.messages.length;
    await coordinator.agent
      .post(`/admin/campaigns/${campaign.campaignId}/test-send`)
      .type('form')
      .send({ _csrf: csrfOf(preview.text), testNo, returnTo: 'preview', wording: 'reminder' })
      .expect(303);
    await drain();
    const parsed = await Promise.all(sink.messages.slice(before).map((m) => simpleParser(m.raw)));
    expect(parsed).toHaveLength(4);
    expect(parsed.every((m) => (m.subject ?? '').startsWith('[TEST] '))).toBe(true);
    const english = parsed.filter((m) => /^\[TEST\] Reminder/.test(m.subject ?? ''));
    expect(english).toHaveLength(2);
    expect(english.some((m) => m.text?.includes('finish where you left off'))).toBe(true);
    expect(english.some((m) => m.text?.includes('Every provider'))).toBe(true);
    expect(await platform.models.Outbox.countDocuments({ campaign: campaign.campaignId, kind: 'reminder' })).toBe(0);
    const after = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/preview`).expect(200);
    expect(unescape(after.text)).toMatch(/Reminder, started/);
  });
});

describe('the sending page', () => {
  it('counts the invitations and each reminder round apart', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations(deps(), campaign.campaignId, 'test');
    await drain();
    platform.clock.advance(8 * 86_400_000);
    expect(await startReminderRound(deps(), campaign.campaignId, 'test')).toMatchObject({ started: true, round: 1, recipients: 3 });
    const page = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/sending`).expect(200);
    expect(page.text).toMatch(/<th scope="col">Invitations<\/th>/);
    expect(page.text).toMatch(/<th scope="col">Reminder round 1<\/th>/);
    expect(page.text).toMatch(/data-round="0" data-state="sent">3</);
    expect(page.text).toMatch(/data-round="1" data-state="queued">3</);
    expect(page.text).toMatch(/data-round="all" data-state="total">6</);
    const json = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/sending.json`).expect(200);
    expect(json.body.total).toBe(6);
    expect(json.body.rounds).toEqual([
      expect.objectContaining({ round: 0, counts: expect.objectContaining({ sent: 3, total: 3 }) }),
      expect.objectContaining({ round: 1, counts: expect.objectContaining({ queued: 3, total: 3 }) }),
    ]);
  });
});
