import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Models } from '../../server/db/models.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { markAbandonedAsUnknown, recordHeartbeat } from '../../server/mail/outbox.service.ts';
import { createCampaignWithContacts, senderFor, statusesOf } from '../helpers/mail.ts';
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

const LEASE_MS = 2_000;

describe('claims of a sender that died', () => {
  it('a sender killed just after claiming: its claims younger than the lease are declared unknown at a later pass, not left "sending" for good', async () => {
    const deps = { models: platform.models, now: platform.clock.now };
    const worker = `killed-${new Types.ObjectId()}`;
    const campaign = new Types.ObjectId();
    const claim = (at: Date) => {
      const message = new Types.ObjectId();
      return { _id: `${message}:0`, message, campaign, attempt: 0, worker, at };
    };
    // It beat, then claimed twice (one claim long ago, one just before it was killed), and beat no more.
    await recordHeartbeat({ ...deps, now: () => new Date(platform.clock.now().getTime() - 3 * LEASE_MS) }, worker);
    const old = claim(new Date(platform.clock.now().getTime() - 3 * LEASE_MS));
    const recent = claim(new Date(platform.clock.now().getTime() - LEASE_MS / 2));
    await platform.models.OutboxClaim.insertMany([old, recent]);
    const stateOf = async (id: string) => (await platform.models.OutboxOutcome.findById(id).lean())?.state ?? 'sending';

    // The next sender's pass: the old claim is abandoned, the recent one may still be in the relay's hands.
    expect(await markAbandonedAsUnknown(deps, LEASE_MS)).toBe(1);
    expect([await stateOf(old._id), await stateOf(recent._id)]).toEqual(['unknown', 'sending']);

    // Once the recent claim is older than the lease too, a pass (which looks only when a worker is silent) declares it.
    platform.clock.current = new Date(platform.clock.now().getTime() + LEASE_MS);
    expect(await markAbandonedAsUnknown(deps, LEASE_MS)).toBe(1);
    expect(await stateOf(recent._id)).toBe('unknown');
    // Nothing of it is open now: it is no longer looked after.
    expect((await platform.models.OutboxWorker.findById(worker).lean())?.busy).toBe(false);
  });

  it('a pass whose outcomes could not be written leaves its claims to be declared unknown once its sender is silent, even after a later pass of the same sender succeeded', async () => {
    const deps = { models: platform.models, now: platform.clock.now };
    const first = await createCampaignWithContacts(platform, { contacts: 2 });
    await enqueueInvitations(deps, first.campaignId, 'test');
    const { deps: senderDeps, policy, close } = senderFor(platform, sink.url, `flaky-${new Types.ObjectId()}`);
    // The database refuses the outcomes (it went away) after the relay took both messages.
    const refusing = Object.create(platform.models.OutboxOutcome, { collection: { value: { insertMany: () => Promise.reject(new Error('database away')) } } });
    await expect(sendDueMessages({ ...senderDeps, models: { ...platform.models, OutboxOutcome: refusing as Models['OutboxOutcome'] } }, policy)).rejects.toThrow('database away');
    expect((await statusesOf(platform.models, first.campaignId)).map((s) => s.state)).toEqual(['sending', 'sending']);

    // The same sender's next pass succeeds.
    const second = await createCampaignWithContacts(platform, { contacts: 1 });
    await enqueueInvitations(deps, second.campaignId, 'test');
    expect(await sendDueMessages(senderDeps, policy)).toEqual(['sent']);
    close();

    // Silent for the lease, it is found by another sender, which declares the two claims unknown (never resent).
    platform.clock.advance(policy.leaseMs + 1000);
    const other = senderFor(platform, sink.url, 'other-worker');
    await sendDueMessages(other.deps, other.policy);
    other.close();
    expect((await statusesOf(platform.models, first.campaignId)).map((s) => s.state)).toEqual(['unknown', 'unknown']);
    for (const email of [...first.emails, ...second.emails]) expect(sink.countsByRecipient().get(email), email).toBe(1);
  });
});
