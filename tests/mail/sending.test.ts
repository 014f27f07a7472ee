import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { countByState } from '../../server/mail/outbox.service.ts';
import { createCampaignWithContacts, drainOutbox, senderFor, statusesOf, statusOf } from '../helpers/mail.ts';
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

function sender() {
  const { deps, policy, close } = senderFor(platform, sink.url);
  return { step: () => sendDueMessages(deps, policy), close };
}

describe('sending invitations through a real SMTP server', () => {
  it('sends one invitation per contact and records the SMTP message id', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 5 });
    expect((await enqueueInvitations(deps(), campaignId, 'test')).added).toBe(5);
    // Pressing "send" again adds nothing.
    expect((await enqueueInvitations(deps(), campaignId, 'test')).added).toBe(0);
    const { step, close } = sender();
    await drainOutbox(step);
    close();
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email)).toBe(1);
    const statuses = await statusesOf(platform.models, campaignId);
    expect(statuses.every((m) => m.state === 'sent' && m.last?.messageId?.startsWith('<'))).toBe(true);
    expect(await countByState(platform, { campaign: campaignId })).toMatchObject({ sent: 5, queued: 0, total: 5 });
  });

  it('when the server answers 451 twice, the message waits, is retried with backoff and delivered once', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    const target = emails[0]!;
    sink.reply(target, 451, 'Try again later', 2);
    await enqueueInvitations(deps(), campaignId, 'test');
    const { step, close } = sender();
    await drainOutbox(step);
    let message = await statusOf(platform.models, campaignId, target);
    expect(message).toMatchObject({ state: 'queued', attempts: 1 });
    expect(message.error).toMatch(/451/);
    // Not due yet: nothing is sent before the backoff has passed.
    await drainOutbox(step);
    expect(sink.countsByRecipient().get(target)).toBeUndefined();
    platform.clock.advance(61_000);
    await drainOutbox(step);
    message = await statusOf(platform.models, campaignId, target);
    expect(message).toMatchObject({ state: 'queued', attempts: 2 });
    // The second delay is twice the first.
    expect(message.dueAt!.getTime() - platform.clock.current.getTime()).toBe(120_000);
    platform.clock.advance(121_000);
    await drainOutbox(step);
    close();
    message = await statusOf(platform.models, campaignId, target);
    expect(message).toMatchObject({ state: 'sent', attempts: 3 });
    expect(sink.countsByRecipient().get(target)).toBe(1);
  });

  it('when the server answers 550, the message fails for good, the address is suppressed and never retried', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    const target = emails[1]!;
    sink.reply(target, 550, 'No such user here');
    await enqueueInvitations(deps(), campaignId, 'test');
    const { step, close } = sender();
    await drainOutbox(step);
    const message = await statusOf(platform.models, campaignId, target);
    expect(message).toMatchObject({ state: 'failed', permanent: true, attempts: 1 });
    expect(message.error).toMatch(/550 No such user here/);
    expect(await platform.models.Suppression.findOne({ email: target }).lean()).toMatchObject({ email: target });
    platform.clock.advance(86_400_000);
    await drainOutbox(step);
    close();
    expect(await statusOf(platform.models, campaignId, target)).toMatchObject({ state: 'failed', attempts: 1 });
    expect(sink.countsByRecipient().get(target)).toBeUndefined();
    expect(sink.countsByRecipient().get(emails[0]!)).toBe(1);
  });

  it('when the connection drops, the message is retried and delivered once', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    const target = emails[2]!;
    sink.drop(target, 1);
    await enqueueInvitations(deps(), campaignId, 'test');
    const { step, close } = sender();
    await drainOutbox(step);
    expect(await statusOf(platform.models, campaignId, target)).toMatchObject({ state: 'queued', attempts: 1 });
    platform.clock.advance(61_000);
    await drainOutbox(step);
    close();
    expect(await statusOf(platform.models, campaignId, target)).toMatchObject({ state: 'sent', attempts: 2 });
    expect(sink.countsByRecipient().get(target)).toBe(1);
  });
});
