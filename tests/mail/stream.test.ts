import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { findDueMessages, sendDueMessages, sendMessages } from '../../server/mail/outbox-sender.service.ts';
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

// The sender streams: a few messages in the relay's hands, the next ones claimed meanwhile,
// outcomes written behind. These check that no message falls between the claims and the outcomes.
describe('sending as a stream', () => {
  it('a relay that takes a message and drops the connection in the middle of a stream: that message is unknown, the campaign pauses once, no claim is left without an outcome, and after the pause every other contact gets one copy', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 30 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const taken = emails[10]!;
    sink.dropAfterData(taken, 1);
    const { deps: senderDeps, policy, close } = senderFor(platform, sink.url);
    const small = { ...policy, batchSize: 6 };

    await sendDueMessages(senderDeps, small);
    const statuses = await statusesOf(platform.models, campaignId);
    // Every message claimed has its outcome: sent, unknown, or waiting for the pause to end.
    expect(statuses.filter((s) => s.state === 'sending')).toEqual([]);
    expect(statuses.find((s) => s.message.to === taken)).toMatchObject({ state: 'unknown' });
    expect(statuses.every((s) => s.message.to === taken || s.state === 'sent' || s.state === 'queued')).toBe(true);
    // One pause, with what the relay did, not the note on the messages held back after it.
    const pauses = await platform.models.SendingPause.find({ campaign: campaignId }).lean();
    expect(pauses).toHaveLength(1);
    expect(pauses[0]!.error).not.toMatch(/Not handed to the mail server/);
    // Claimed after the error but not handed over: the relay never saw them.
    for (const s of statuses.filter((s) => s.last?.error?.startsWith('Not handed'))) expect(sink.countsByRecipient().get(s.message.to)).toBeUndefined();

    platform.clock.advance(policy.backoffMs + 1000);
    await drainOutbox(() => sendDueMessages(senderDeps, small));
    close();
    const received = sink.countsByRecipient();
    for (const email of emails) expect(received.get(email), email).toBe(1);
    const after = await statusesOf(platform.models, campaignId);
    expect(after.filter((s) => s.state !== 'sent').map((s) => [s.message.to, s.state])).toEqual([[taken, 'unknown']]);
  });

  it('stopped in the middle (Ctrl-C, shutdown), it sends what it claimed, records every outcome, and leaves the rest queued', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 40 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const { deps: senderDeps, policy, close } = senderFor(platform, sink.url);
    const small = { ...policy, batchSize: 4 };
    const { due, context } = await findDueMessages(senderDeps, small);
    let handled = 0;
    const outcomes = await sendMessages(
      senderDeps,
      small,
      due.filter((d) => String(d.message.campaign) === String(campaignId)),
      context!,
      { stopped: () => ++handled > 3 },
    );
    const statuses = await statusesOf(platform.models, campaignId);
    expect(statuses.filter((s) => s.state === 'sending')).toEqual([]);
    const sent = statuses.filter((s) => s.state === 'sent');
    expect(sent.length).toBe(outcomes.length);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.length).toBeLessThan(40);
    expect(statuses.filter((s) => s.state === 'queued')).toHaveLength(40 - sent.length);

    await drainOutbox(() => sendDueMessages(senderDeps, small));
    close();
    const received = sink.countsByRecipient();
    for (const email of emails) expect(received.get(email), email).toBe(1);
  });
});
