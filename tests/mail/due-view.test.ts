import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { findDueMessages, sendDueMessages, sendMessages } from '../../server/mail/outbox-sender.service.ts';
import { forgetDue, rebuildDueView } from '../../server/mail/outbox.service.ts';
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

/** The due entries of one campaign (the view holds every open campaign's). */
async function dueEntriesOf(campaignId: unknown) {
  return (await platform.models.OutboxDue.find({}).lean()).filter((e) => String(e.campaign) === String(campaignId));
}

/** The attempts "<message id>:<attempt>" that one campaign's due entries name, a batch entry's each. */
async function dueAttemptsOf(campaignId: unknown) {
  return (await dueEntriesOf(campaignId)).flatMap((e) => (e.messages ? (JSON.parse(e.messages) as Array<{ _id: string }>).map((m) => `${m._id}:0`) : [e._id])).sort();
}

// The sender reads what is left to send from the due view (outbox_due), not from the outbox's
// history; the claims stay the judge, so whatever state the view is in, nothing goes twice.
describe('the due view', () => {
  it('holds only what is left to send: a sent campaign leaves no entry, and enqueueing leaves no intent behind', async () => {
    await rebuildDueView(deps());
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 6 });
    await enqueueInvitations(deps(), campaignId, 'test');
    expect(await dueAttemptsOf(campaignId)).toHaveLength(6);
    expect(await platform.models.OutboxIntent.countDocuments()).toBe(0);
    const { deps: senderDeps, policy, close } = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(senderDeps, policy));
    close();
    for (const email of emails) expect(sink.countsByRecipient().get(email), email).toBe(1);
    expect(await dueEntriesOf(campaignId)).toEqual([]);
  });

  it('a stale entry (a crash between an outcome and its entry, or an entry for an attempt whose previous one settled) sends nothing twice and is removed', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const { deps: senderDeps, policy, close } = senderFor(platform, sink.url);
    const entries = await dueEntriesOf(campaignId);
    await drainOutbox(() => sendDueMessages(senderDeps, policy));
    // Put back the entries of attempts that went out, and of a next attempt that was never asked for.
    const { _id: first, ...fields } = (JSON.parse(entries[0]!.messages!) as Array<{ _id: string }>)[0]!;
    await platform.models.OutboxDue.insertMany([...entries, { _id: `${first}:1`, campaign: campaignId, at: entries[0]!.at, message: JSON.stringify(fields) }]);

    await drainOutbox(() => sendDueMessages(senderDeps, policy));
    close();
    for (const email of emails) expect(sink.countsByRecipient().get(email), email).toBe(1);
    expect((await statusesOf(platform.models, campaignId)).map((s) => s.state)).toEqual(['sent', 'sent', 'sent']);
    expect(await dueEntriesOf(campaignId)).toEqual([]);
  });

  it("a campaign's invitations queued together have one due entry", async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 30 });
    await enqueueInvitations(deps(), campaignId, 'test');
    expect(await dueEntriesOf(campaignId)).toHaveLength(1);
    expect(await dueAttemptsOf(campaignId)).toHaveLength(30);
  });

  it('a pass stopped part-way leaves the batch entry with only the messages it did not claim, and the next pass sends those once', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 20 });
    await enqueueInvitations(deps(), campaignId, 'test');
    expect(await dueEntriesOf(campaignId)).toHaveLength(1);
    const { deps: senderDeps, policy, close } = senderFor(platform, sink.url);
    const { due, context } = await findDueMessages(senderDeps, policy, { campaign: campaignId });
    // Stopped after its first window of claims.
    let windows = 0;
    const first = await sendMessages(senderDeps, { ...policy, batchSize: 5 }, due, context!, { stopped: () => windows++ > 0 });
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThan(20);
    expect(await dueEntriesOf(campaignId)).toHaveLength(1);
    expect(await dueAttemptsOf(campaignId)).toHaveLength(20 - first.length);
    await drainOutbox(() => sendDueMessages(senderDeps, policy));
    close();
    for (const email of emails) expect(sink.countsByRecipient().get(email), email).toBe(1);
    expect(await dueEntriesOf(campaignId)).toEqual([]);
  });

  it("erasing a message takes it out of its batch entry and leaves the batch's other messages due", async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 4 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const [erased, ...kept] = await dueAttemptsOf(campaignId);
    await forgetDue(platform.models, [new Types.ObjectId(erased!.split(':')[0])]);
    expect(await dueEntriesOf(campaignId)).toHaveLength(1);
    expect(await dueAttemptsOf(campaignId)).toEqual(kept);
    await forgetDue(platform.models, kept.map((id) => new Types.ObjectId(id.split(':')[0])));
    expect(await dueEntriesOf(campaignId)).toEqual([]);
  });

  it('a database written before this version gets the view built from the outbox on its first start, once', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 4 });
    await enqueueInvitations(deps(), campaignId, 'test');
    await platform.models.OutboxDue.deleteMany({});
    await platform.models.OutboxSignal.deleteOne({ _id: 'due-view-complete' });
    const { deps: senderDeps, policy, close } = senderFor(platform, sink.url);

    await drainOutbox(() => sendDueMessages(senderDeps, policy));
    close();
    for (const email of emails) expect(sink.countsByRecipient().get(email), email).toBe(1);
    expect(await platform.models.OutboxSignal.exists({ _id: 'due-view-complete' })).toBeTruthy();
  });
});
