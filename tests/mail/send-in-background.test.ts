import type { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { institutionKey } from '../../server/institutions/institution.model.ts';
import { createInvitations } from '../../server/invitations/invitation.service.ts';
import { recordInvitationSend, startInvitationQueue, type InvitationQueue } from '../../server/mail/invitation-send.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { createCampaignWithContacts, drainOutbox, PUBLIC_URL, senderFor } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let sink: SmtpSink;
let coordinator: SignedInAgent;

// The app's "queue now" goes nowhere: each test starts the background queueing itself,
// as the platform process (or another instance, after a crash) does.
beforeAll(async () => {
  platform = await startTestPlatform({ appDeps: { queueInvitations: () => undefined } });
  sink = await startSmtpSink();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

const queue = (options: Parameters<typeof startInvitationQueue>[1] = {}): InvitationQueue => startInvitationQueue({ models: platform.models, now: platform.clock.now }, options);

/** The confirmation page's form, as the coordinator would submit it. */
async function confirmation(campaignId: Types.ObjectId) {
  const page = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/send`).expect(200)).text;
  return { _csrf: coordinator.csrf, expected: /name="expected" value="(\d+)"/.exec(page)![1]!, sendNo: /name="sendNo" value="(\d+)"/.exec(page)![1]! };
}

const invitationsOf = (campaign: Types.ObjectId) => platform.models.Outbox.find({ campaign, kind: 'invitation' }).lean();

/** One invitation email per personal link, each with its due entry; the sink received each address once. */
async function expectOneMessagePerLink(campaign: Types.ObjectId, emails: string[]) {
  const messages = await invitationsOf(campaign);
  const invitations = await platform.models.Invitation.find({ campaign }, { _id: 1 }).lean();
  expect(messages.map((m) => String(m.invitation)).sort()).toEqual(invitations.map((i) => String(i._id)).sort());
  const sender = senderFor(platform, sink.url);
  await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
  sender.close();
  const received = sink.countsByRecipient();
  expect(emails.map((e) => received.get(e))).toEqual(emails.map(() => 1));
}

describe('"Send the invitations" records the decision and queues in the background', () => {
  it('answers once the decision is recorded, before any message is queued; the queueing then completes and the sending page shows "k of N"', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 7 });
    const form = await confirmation(campaignId);
    expect(form).toMatchObject({ expected: '7', sendNo: '1' });
    const response = await coordinator.agent.post(`/admin/campaigns/${campaignId}/send`).type('form').send(form).expect(303);
    expect(response.headers.location).toBe(`/admin/campaigns/${campaignId}/sending`);

    // The decision is durable; nothing is queued by the request itself.
    expect(await platform.models.InvitationSend.findById(`${campaignId}:1`).lean()).toMatchObject({ expected: 7, queued: 0, by: coordinator.user.email });
    expect(await invitationsOf(campaignId)).toHaveLength(0);
    expect((await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text).toMatch(/Queueing: <span id="queueing-count">0<\/span> of 7 invitation emails/);
    expect((await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending.json`).expect(200)).body.queueing).toEqual({ queued: 0, expected: 7, finished: false });
    // A new confirmation while it is queued offers no second send.
    expect((await coordinator.agent.get(`/admin/campaigns/${campaignId}/send`).expect(200)).text).toContain('The invitations are being queued');

    const background = queue({ chunk: 3 });
    await background.idle();
    await background.stop();
    expect(await platform.models.InvitationSend.findById(`${campaignId}:1`).lean()).toMatchObject({ queued: 7, finishedAt: expect.any(Date) });
    expect(await platform.models.ReminderRound.exists({ campaign: campaignId, round: 0 })).not.toBeNull();
    expect((await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending.json`).expect(200)).body.queueing).toEqual({ queued: 7, expected: 7, finished: true });
    expect((await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text).not.toContain('Queueing:');
    await expectOneMessagePerLink(campaignId, emails);
  });

  it('when the process stops mid-way, another one resumes at its start and each link gets exactly one message', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 9 });
    await coordinator.agent.post(`/admin/campaigns/${campaignId}/send`).type('form').send(await confirmation(campaignId)).expect(303);

    // The first process stops after its first step (2 messages), as a crash would leave it.
    const first = queue({ chunk: 2, onChunk: () => void first.stop() });
    await first.idle();
    expect(await invitationsOf(campaignId)).toHaveLength(2);
    const interrupted = await platform.models.InvitationSend.findById(`${campaignId}:1`).lean();
    expect(interrupted).toMatchObject({ queued: 2 });
    expect(interrupted?.finishedAt).toBeUndefined();

    // A link created after the count was checked is not part of this decision.
    const institution = await platform.models.Institution.create({ name: `Late school ${campaignId}`, country: 'DE', type: 'ivet_school', key: institutionKey({ name: `Late school ${campaignId}`, country: 'DE' }) });
    const late = await platform.models.Contact.create({ institution: institution._id, name: 'Late', email: `late-${campaignId}@school.example`, language: 'en' });
    await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL }, campaignId, [late]);

    // Two instances start and both resume it.
    const [second, third] = [queue({ chunk: 2 }), queue({ chunk: 4 })];
    await Promise.all([second.idle(), third.idle()]);
    await Promise.all([second.stop(), third.stop()]);
    expect(await platform.models.InvitationSend.findById(`${campaignId}:1`).lean()).toMatchObject({ queued: 9, finishedAt: expect.any(Date) });
    expect(await platform.models.Outbox.exists({ campaign: campaignId, contact: late._id })).toBeNull();
    await platform.models.Invitation.deleteOne({ campaign: campaignId, contact: late._id });
    await expectOneMessagePerLink(campaignId, emails);
  });

  it('a double click records one decision and queues once; the same form sent again later adds nothing', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 5 });
    const form = await confirmation(campaignId);
    const post = () => coordinator.agent.post(`/admin/campaigns/${campaignId}/send`).type('form').send(form);
    const answers = await Promise.all([post(), post()]);
    expect(answers.map((a) => a.status)).toEqual([303, 303]);
    const background = queue();
    await background.idle();
    expect((await post()).status).toBe(303);
    await background.idle();
    await background.stop();
    expect(await platform.models.InvitationSend.countDocuments({ campaign: campaignId })).toBe(1);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'mail.send-invitations', target: `campaign:${campaignId}` })).toBe(1);
    await expectOneMessagePerLink(campaignId, emails);
  });

  it('a crash between the decision and its audit entry: the queueing that resumes it writes the entry, once', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 3 });
    const form = await confirmation(campaignId);
    // What the request had done when it died: the decision, not yet its audit entry.
    expect(await recordInvitationSend({ models: platform.models, now: platform.clock.now }, campaignId, { n: Number(form.sendNo), expected: Number(form.expected), by: coordinator.user.email })).toBe('recorded');
    const audited = () => platform.models.AuditEntry.find({ action: 'mail.send-invitations', target: `campaign:${campaignId}` }).lean();
    expect(await audited()).toHaveLength(0);
    const [first, second] = [queue(), queue()];
    await Promise.all([first.idle(), second.idle()]);
    await Promise.all([first.stop(), second.stop()]);
    const entries = await audited();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor: coordinator.user.email });
    expect(JSON.parse(entries[0]!.details!)).toEqual({ confirmed: 3, send: 1 });
  });

  it('when the count changed since the confirmation, nothing is queued and the sending page says so', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 4 });
    const form = await confirmation(campaignId);
    await coordinator.agent.post(`/admin/campaigns/${campaignId}/send`).type('form').send({ ...form, expected: '3' }).expect(303);
    const background = queue();
    await background.idle();
    await background.stop();
    expect(await invitationsOf(campaignId)).toHaveLength(0);
    expect((await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text).toContain('now 4, not 3');
    // Confirming again is the campaign's second decision.
    expect(await confirmation(campaignId)).toMatchObject({ expected: '4', sendNo: '2' });
  });
});
