import type { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordBounces } from '../../server/mail/bounce.service.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { startReminderRound } from '../../server/reminders/reminder.service.ts';
import { messageStatuses } from '../../server/mail/outbox.service.ts';
import { createCampaignWithContacts, drainOutbox, senderFor, watchedSender } from '../helpers/mail.ts';
import { otherConnection } from '../helpers/other-connection.ts';
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

/** A campaign of `n` contacts whose invitations went out, at the time its first reminder round may start. */
async function invitedCampaign(n: number) {
  const campaign = await createCampaignWithContacts(platform, { contacts: n });
  await enqueueInvitations(deps(), campaign.campaignId, 'test');
  const { deps: senderDeps, policy, close } = senderFor(platform, sink.url);
  await drainOutbox(() => sendDueMessages(senderDeps, policy));
  close();
  // The reminder policy leaves 7 days between the invitation and a reminder.
  platform.clock.advance(8 * 86_400_000);
  return campaign;
}

/**
 * A respondent's submission under way in another process: its completion mark is written
 * (the first write of a response), its invitation's completedAt not yet.
 */
async function completionUnderWay(campaign: Types.ObjectId, invitation: Types.ObjectId) {
  const other = await otherConnection(platform);
  await other.models.Completion.create({ _id: invitation, campaign, at: platform.clock.now() });
  await other.close();
}

/** The state of the campaign's reminder to this address. */
async function reminderState(campaign: Types.ObjectId, to: string) {
  const [status] = await messageStatuses({ models: platform.models }, { campaign, to, kind: 'reminder' });
  return { state: status?.state, skipReason: status?.last?.skipReason };
}

const linkOf = async (campaign: Types.ObjectId, email: string) => {
  const contact = await platform.models.Contact.findOne({ email }).lean();
  return (await platform.models.Invitation.findOne({ campaign, contact: contact!._id }).lean())!;
};

describe('what a sender pass reads', () => {
  it('a reminder pass reads no collection of campaigns or completion marks whole, and a contact whose response is under way gets no reminder', async () => {
    // An earlier campaign with responses: its marks are in the same collection.
    const earlier = await invitedCampaign(3);
    for (const email of earlier.emails) await completionUnderWay(earlier.campaignId, (await linkOf(earlier.campaignId, email))._id);
    const { campaignId, emails } = await invitedCampaign(4);
    expect(await startReminderRound(deps(), campaignId, 'test')).toMatchObject({ started: true, recipients: 4 });
    await completionUnderWay(campaignId, (await linkOf(campaignId, emails[0]!))._id);

    const sender = await watchedSender(platform, sink.url);
    const before = sink.messages.length;
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    await sender.close();

    expect(sender.wholeReads).not.toContain('completions');
    expect(sender.wholeReads).not.toContain('campaigns');
    // A reminder is never sent to a contact whose response is complete.
    expect(await reminderState(campaignId, emails[0]!)).toEqual({ state: 'skipped', skipReason: 'completed' });
    expect(sink.messages.slice(before).flatMap((m) => m.to).sort()).toEqual(emails.slice(1).sort());
  });

  it('a response begun during a reminder pass, before its window, stops its reminder', async () => {
    const { campaignId, emails } = await invitedCampaign(20);
    await startReminderRound(deps(), campaignId, 'test');
    const { deps: senderDeps, policy, close } = senderFor(platform, sink.url);
    const before = sink.messages.length;
    const invitationClaims = await platform.models.OutboxClaim.countDocuments({ campaign: campaignId });
    sink.hold();
    let answered: string | undefined;
    try {
      // Windows of two: two reminders at the relay and two windows' claims ahead (six claims), the rest of the 20 to come.
      const pass = sendDueMessages(senderDeps, { ...policy, batchSize: 2 });
      await sink.heldMessages(2);
      await expect.poll(() => platform.models.OutboxClaim.countDocuments({ campaign: campaignId })).toBe(invitationClaims + 6);
      const claimed = new Set((await platform.models.OutboxClaim.find({ campaign: campaignId }).lean()).map((c) => String(c.message)));
      const waiting = (await platform.models.Outbox.find({ campaign: campaignId, kind: 'reminder' }).lean()).find((m) => !claimed.has(String(m._id)))!;
      await completionUnderWay(campaignId, waiting.invitation!);
      answered = waiting.to;
      sink.release();
      await pass;
    } finally {
      sink.release();
    }
    await drainOutbox(() => sendDueMessages(senderDeps, policy));
    close();
    expect(await reminderState(campaignId, answered!)).toEqual({ state: 'skipped', skipReason: 'completed' });
    expect(sink.messages.slice(before).flatMap((m) => m.to).sort()).toEqual(emails.filter((e) => e !== answered).sort());
  });

  it('a campaign closed by another process before the pass sends nothing, and an open one sends', async () => {
    const closing = await createCampaignWithContacts(platform, { contacts: 3 });
    const open = await createCampaignWithContacts(platform, { contacts: 2 });
    await enqueueInvitations(deps(), closing.campaignId, 'test');
    await enqueueInvitations(deps(), open.campaignId, 'test');
    // Closed by another process (the command line, another instance).
    const other = await otherConnection(platform);
    await other.models.Campaign.updateOne({ _id: closing.campaignId }, { $set: { closedAt: platform.clock.now() } });
    await other.close();

    const sender = await watchedSender(platform, sink.url);
    const before = sink.messages.length;
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    await sender.close();

    expect(sender.wholeReads).not.toContain('campaigns');
    expect(sink.messages.slice(before).flatMap((m) => m.to).sort()).toEqual([...open.emails].sort());
  });

  it('a pass reads the suppression list again only after the contact list changed, and an address suppressed by another process mid-pass gets nothing', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 20 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const sender = await watchedSender(platform, sink.url);
    const before = sink.messages.length;
    sink.hold();
    let bounced: string | undefined;
    let readsInPass = 0;
    try {
      // Ten windows of two, each with its facts read afresh (factsMaxAgeMs 0): each read the suppression list whole before.
      const readsBefore = sender.wholeReads.length;
      const pass = sendDueMessages(sender.deps, { ...sender.policy, batchSize: 2, factsMaxAgeMs: 0 });
      await sink.heldMessages(2);
      await expect.poll(() => platform.models.OutboxClaim.countDocuments({ campaign: campaignId })).toBe(6);
      const claimed = new Set((await platform.models.OutboxClaim.find({ campaign: campaignId }).lean()).map((c) => String(c.message)));
      bounced = (await platform.models.Outbox.find({ campaign: campaignId }).lean()).find((m) => !claimed.has(String(m._id)))!.to;
      // Recorded by a coordinator on another instance.
      const other = await otherConnection(platform);
      await recordBounces({ models: other.models, now: platform.clock.now }, [bounced], 'test');
      await other.close();
      sink.release();
      await pass;
      readsInPass = sender.wholeReads.slice(readsBefore).filter((c) => c === 'suppressions').length;
    } finally {
      sink.release();
    }
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    await sender.close();
    // The contact list's (at the pass's start), the first window's, and one after the bounce moved the contact list's stamp;
    // one more if the pass outlived the list's age limit.
    expect(readsInPass).toBeLessThanOrEqual(4);
    expect(sink.messages.slice(before).flatMap((m) => m.to).sort()).toEqual(emails.filter((e) => e !== bounced).sort());
  });
});
