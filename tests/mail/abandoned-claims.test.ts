import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Models } from '../../server/db/models.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { countByRound, markAbandonedAsUnknown, recordHeartbeat } from '../../server/mail/outbox.service.ts';
import { polledCounts, sendingFigures } from '../../server/mail/sending-progress.ts';
import { createCampaignWithContacts, senderFor, statusesOf } from '../helpers/mail.ts';
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

  it('a sender that died with claims in flight, on a long history: another sender declares them unknown reading its few claims, not the history', async () => {
    const at = platform.clock.now();
    const campaign = new Types.ObjectId();
    const attempt = (i: number, worker: string, when: Date) => {
      const message = new Types.ObjectId();
      return { _id: `${message}:0`, message, campaign, attempt: 0, worker, at: when, n: i };
    };
    // The history: 3,000 claims, each with its outcome.
    const history = Array.from({ length: 3000 }, (_, i) => attempt(i, 'long-done', new Date(at.getTime() - 86_400_000)));
    await platform.models.OutboxClaim.collection.insertMany(history.map(({ n: _, ...c }) => c) as never[]);
    await platform.models.OutboxOutcome.collection.insertMany(history.map(({ n: _, worker: __, ...c }) => ({ ...c, state: 'sent' })) as never[]);
    // A sender that beat, claimed two messages and was killed.
    const killed = `killed-${new Types.ObjectId()}`;
    const deps = { models: platform.models, now: platform.clock.now };
    await recordHeartbeat({ ...deps, now: () => new Date(at.getTime() - 3 * LEASE_MS) }, killed);
    const open = [attempt(0, killed, new Date(at.getTime() - 3 * LEASE_MS)), attempt(1, killed, new Date(at.getTime() - 2 * LEASE_MS))];
    await platform.models.OutboxClaim.collection.insertMany(open.map(({ n: _, ...c }) => c) as never[]);

    const other = await otherConnection(platform);
    expect(await markAbandonedAsUnknown({ models: other.models, now: platform.clock.now }, LEASE_MS)).toBe(2);
    await other.close();
    for (const claim of open) expect((await platform.models.OutboxOutcome.findById(claim._id).lean())?.state).toBe('unknown');
    const read = ['outbox_claims', 'outbox_outcomes'].map((c) => other.docsRead.get(c) ?? 0);
    expect(read.reduce((a, b) => a + b, 0), `claims, outcomes read: ${read.join(', ')}`).toBeLessThan(50);
  });

  it('a sender killed with a claim younger than the lease: its claims and outcomes are journalled once, not again at each pass until that claim is declared, and a page follows them', async () => {
    const deps = { models: platform.models, now: platform.clock.now };
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 2 });
    await enqueueInvitations(deps, campaignId, 'test');
    const [first, second] = await platform.models.Outbox.find({ campaign: campaignId }).lean();
    const reader = await otherConnection(platform);
    try {
      const poll = async () => (await polledCounts({ models: reader.models }, campaignId)).all;
      expect(await poll()).toMatchObject({ queued: 2 });
      // It beat, claimed the first long ago and recorded it sent, claimed the second just before it was killed, and journalled none of it.
      const worker = `killed-${new Types.ObjectId()}`;
      const ago = (ms: number) => new Date(platform.clock.now().getTime() - ms);
      await recordHeartbeat({ ...deps, now: () => ago(3 * LEASE_MS) }, worker);
      const claimOf = (message: typeof first, at: Date) => ({ _id: `${message!._id}:0`, message: message!._id, campaign: campaignId, attempt: 0, worker, at });
      await platform.models.OutboxClaim.insertMany([claimOf(first, ago(3 * LEASE_MS)), claimOf(second, ago(LEASE_MS / 4))]);
      await platform.models.OutboxOutcome.create({ _id: `${first!._id}:0`, message: first!._id, campaign: campaignId, attempt: 0, state: 'sent', at: ago(3 * LEASE_MS) });
      const entries = () => platform.models.EmailChange.countDocuments({ _id: { $regex: `^${campaignId}:\\d` } });
      const before = await entries();

      // Three passes while the second claim is younger than the lease: one entry, the first's.
      for (let pass = 0; pass < 3; pass++) {
        expect(await markAbandonedAsUnknown(deps, LEASE_MS)).toBe(0);
        platform.clock.advance(LEASE_MS / 8);
      }
      expect(await entries()).toBe(before + 1);
      // The page's load (a poll may reuse a whole read for its gap).
      expect((await sendingFigures({ models: reader.models }, campaignId)).counts.all).toMatchObject({ sent: 1, sending: 1 });

      // Older than the lease, the second is declared unknown: one entry more, with that outcome.
      platform.clock.advance(LEASE_MS);
      expect(await markAbandonedAsUnknown(deps, LEASE_MS)).toBe(1);
      expect(await markAbandonedAsUnknown(deps, LEASE_MS)).toBe(0);
      expect(await entries()).toBe(before + 2);
      const counts = (await sendingFigures({ models: reader.models }, campaignId)).counts;
      expect(counts).toEqual(await countByRound({ models: platform.models }, campaignId));
      expect(counts.all).toMatchObject({ sent: 1, unknown: 1 });
      expect(reader.wholeReads.filter((c) => ['outbox', 'outbox_claims', 'outbox_outcomes'].includes(c))).toEqual(['outbox', 'outbox_claims', 'outbox_outcomes']);
    } finally {
      await reader.close();
    }
  });
});
