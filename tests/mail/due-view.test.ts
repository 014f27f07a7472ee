import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { rebuildDueView } from '../../server/mail/outbox.service.ts';
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

// The sender reads what is left to send from the due view (outbox_due), not from the outbox's
// history; the claims stay the judge, so whatever state the view is in, nothing goes twice.
describe('the due view', () => {
  it('holds only what is left to send: a sent campaign leaves no entry, and enqueueing leaves no intent behind', async () => {
    await rebuildDueView(deps());
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 6 });
    await enqueueInvitations(deps(), campaignId, 'test');
    expect(await dueEntriesOf(campaignId)).toHaveLength(6);
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
    await platform.models.OutboxDue.insertMany([...entries, { ...entries[0]!, _id: entries[0]!._id.replace(/:0$/, ':1') }]);

    await drainOutbox(() => sendDueMessages(senderDeps, policy));
    close();
    for (const email of emails) expect(sink.countsByRecipient().get(email), email).toBe(1);
    expect((await statusesOf(platform.models, campaignId)).map((s) => s.state)).toEqual(['sent', 'sent', 'sent']);
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
