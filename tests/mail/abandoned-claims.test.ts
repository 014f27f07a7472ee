import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markAbandonedAsUnknown, recordHeartbeat } from '../../server/mail/outbox.service.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

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
});
