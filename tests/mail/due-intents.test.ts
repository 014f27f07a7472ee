import { Types } from 'mongoose';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Models } from '../../server/db/models.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages, startOutboxSender } from '../../server/mail/outbox-sender.service.ts';
import { INTENT_GRACE_MS, repairIntents, retryFailed } from '../../server/mail/outbox.service.ts';
import { createCampaignWithContacts, drainOutbox, senderFor, statusesOf, statusOf } from '../helpers/mail.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let sink: SmtpSink;

beforeAll(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink({ keepRaw: false });
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

const deps = () => ({ models: platform.models, now: platform.clock.now });

/** The platform's models, in a process that dies between writing messages (or a retry) and their due entries. */
function diesBeforeDueEntries(models: Models): Models {
  const refused = { collection: { insertMany: () => Promise.reject(new Error('killed before the due entries')) } };
  return { ...models, OutboxDue: refused as unknown as Models['OutboxDue'] };
}

/** Waits for a condition; no time budget (the test's timeout guards against a hang only). */
async function until(condition: () => Promise<boolean>) {
  while (!(await condition())) await sleep(20);
}

async function dueEntriesOf(campaignId: Types.ObjectId) {
  return (await platform.models.OutboxDue.find({}).lean()).filter((e) => String(e.campaign) === String(campaignId));
}

// A crash between writing messages (or a coordinator's retry) and their due entries leaves an
// intent naming them; a sender puts the entries back from it, by _id, instead of reading the
// email history at every start. The claims stay the judge: nothing goes twice.
describe('intents of the due view', () => {
  it('messages whose writer died before their due entries are sent exactly once by two running senders in other processes, once the intent it left is older than the grace period', async () => {
    const processes = [await otherConnection(platform), await otherConnection(platform)];
    const senders = processes.map((p, i) => senderFor({ ...platform, models: p.models }, sink.url, `idle-sender-${i}`));
    const errors: unknown[] = [];
    const running = senders.map((s) => startOutboxSender(s.deps, s.policy, { idleMs: 20, onError: (error) => errors.push(error) }));
    // The senders send a first campaign and idle.
    const first = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations(deps(), first.campaignId, 'test');
    running.forEach((r) => r.wake());
    await until(async () => (await statusesOf(platform.models, first.campaignId)).every((s) => s.state === 'sent'));

    // The platform dies while queueing a second campaign: the messages are written, their due entries are not.
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 6 });
    await expect(enqueueInvitations({ ...deps(), models: diesBeforeDueEntries(platform.models) }, campaignId, 'test')).rejects.toThrow('killed');
    expect(await platform.models.Outbox.countDocuments({ campaign: campaignId })).toBe(6);
    expect(await dueEntriesOf(campaignId)).toEqual([]);
    // A young intent may be a writer at work: it is left to it.
    expect(await repairIntents(deps())).toBe(0);
    expect(await platform.models.OutboxIntent.countDocuments()).toBe(1);

    // Past the grace period the idling senders' check finds the intent, and one of them puts the entries back.
    platform.clock.advance(INTENT_GRACE_MS + 1000);
    await until(async () => (await statusesOf(platform.models, campaignId)).every((s) => s.state === 'sent'));
    await Promise.all(running.map((r) => r.stop()));
    // Another pass of each sends nothing more.
    for (const s of senders) expect(await sendDueMessages(s.deps, s.policy)).toEqual([]);
    for (const s of senders) s.close();
    await Promise.all(processes.map((p) => p.close()));
    expect(errors).toEqual([]);
    for (const email of [...first.emails, ...emails]) expect(sink.countsByRecipient().get(email), email).toBe(1);
    expect(await dueEntriesOf(campaignId)).toEqual([]);
    expect(await platform.models.OutboxIntent.countDocuments()).toBe(0);
  });

  it("a coordinator's retry cut short by a crash (the failed attempt turned into a retry, the next attempt's entry never written) is sent once by a sender in another process", async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    await enqueueInvitations(deps(), campaignId, 'test');
    sink.reply(emails[0]!, 451, '4.2.1 Mailbox busy, try later', 1);
    const platformSender = senderFor(platform, sink.url, 'platform-sender');
    // One attempt only: the 451 fails the message, for the coordinator to retry.
    const policy = { ...platformSender.policy, maxAttempts: 1 };
    await drainOutbox(() => sendDueMessages(platformSender.deps, policy));
    platformSender.close();
    expect((await statusOf(platform.models, campaignId, emails[0]!)).state).toBe('failed');
    const message = await platform.models.Outbox.findOne({ campaign: campaignId, to: emails[0] }).lean();

    await expect(retryFailed({ ...deps(), models: diesBeforeDueEntries(platform.models) }, `${message!._id}:0`, 'coordinator@vet.example')).rejects.toThrow('killed');
    expect((await statusOf(platform.models, campaignId, emails[0]!)).state).toBe('queued');
    expect(await dueEntriesOf(campaignId)).toEqual([]);

    const processes = [await otherConnection(platform), await otherConnection(platform)];
    const senders = processes.map((p, i) => senderFor({ ...platform, models: p.models }, sink.url, `retry-sender-${i}`));
    await drainOutbox(() => sendDueMessages(senders[0]!.deps, policy));
    expect(sink.countsByRecipient().get(emails[0]!)).toBeUndefined();
    platform.clock.advance(INTENT_GRACE_MS + 1000);
    // Both senders pass, one after the other and side by side: one of them sends it, once.
    await drainOutbox(() => sendDueMessages(senders[1]!.deps, policy));
    await Promise.all(senders.map((s) => drainOutbox(() => sendDueMessages(s.deps, policy))));
    for (const s of senders) s.close();
    await Promise.all(processes.map((p) => p.close()));
    for (const email of emails) expect(sink.countsByRecipient().get(email), email).toBe(1);
    expect((await statusOf(platform.models, campaignId, emails[0]!)).state).toBe('sent');
    expect(await platform.models.OutboxIntent.countDocuments()).toBe(0);
  });

  it("a sender starting on a database with a long email history reads none of it: what it reads of the outbox, the claims and the outcomes stays a few documents", async () => {
    // The database's first start on this version is behind it (that one builds the view from the outbox, once).
    const firstStart = senderFor(platform, sink.url, 'first-start');
    await drainOutbox(() => sendDueMessages(firstStart.deps, firstStart.policy));
    firstStart.close();
    // The history: 3,000 messages of a campaign still open, each claimed and sent.
    const at = platform.clock.now();
    const history = await platform.models.Campaign.create({ name: 'History', strands: ['S1'], opensAt: new Date(at.getTime() - 86_400_000), closesAt: new Date(at.getTime() + 30 * 86_400_000) });
    const messages = Array.from({ length: 3000 }, (_, i) => ({
      _id: new Types.ObjectId(),
      campaign: history._id,
      contact: new Types.ObjectId(),
      invitation: new Types.ObjectId(),
      kind: 'invitation',
      round: 0,
      to: `h${i}@history.example`,
      language: 'en',
      nextAttemptAt: at,
      createdAt: at,
      updatedAt: at,
    }));
    const attempt = (m: (typeof messages)[number]) => ({ _id: `${m._id}:0`, message: m._id, campaign: history._id, attempt: 0, at });
    await platform.models.Outbox.collection.insertMany(messages);
    await platform.models.OutboxClaim.collection.insertMany(messages.map((m) => ({ ...attempt(m), worker: 'long-gone' })) as never[]);
    await platform.models.OutboxOutcome.collection.insertMany(messages.map((m) => ({ ...attempt(m), state: 'sent' })) as never[]);
    // And two invitations to send, so that the start is seen to be over.
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    await enqueueInvitations(deps(), campaignId, 'test');

    const starting = await otherConnection(platform);
    const sender = senderFor({ ...platform, models: starting.models }, sink.url, 'starting-sender');
    const running = startOutboxSender(sender.deps, sender.policy, { idleMs: 20 });
    await until(async () => (await statusesOf(platform.models, campaignId)).every((s) => s.state === 'sent'));
    await running.stop();
    sender.close();
    await starting.close();
    for (const email of emails) expect(sink.countsByRecipient().get(email), email).toBe(1);
    const historyRead = ['outbox', 'outbox_claims', 'outbox_outcomes'].map((c) => starting.docsRead.get(c) ?? 0);
    expect(historyRead.reduce((a, b) => a + b, 0), `outbox, claims, outcomes read: ${historyRead.join(', ')}`).toBeLessThan(50);
  });
});
