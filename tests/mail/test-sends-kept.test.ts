import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { listTestSends, queueTestSend } from '../../server/mail/test-send.service.ts';
import { purgeCampaign } from '../../server/privacy/retention.service.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { confirmationPage } from '../helpers/confirm-send.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { createCampaignWithContacts, drainOutbox, senderFor } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
let sink: SmtpSink;

beforeAll(async () => {
  platform = await startTestPlatform({ appDeps: { queueInvitations: () => undefined } });
  coordinator = await signIn(platform, 'coordinator');
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

/** The test sends as the confirmation page lists them: the number the next test gets, and each message's state. */
async function testSendsShown(campaignId: Types.ObjectId) {
  const { page } = await confirmationPage(coordinator, campaignId);
  const states = [...page.matchAll(/<tr><td>(\d+)<\/td><td>[^<]*<\/td><td>[^<]*<\/td><td>([^<]*)<\/td><\/tr>/g)].map((m) => `${m[1]} ${m[2]}`);
  return { nextTestNo: Number(/name="testNo" value="(\d+)"/.exec(page)?.[1]), states: [...new Set(states)] };
}

describe('the test sends on the confirmation page are kept between loads', () => {
  it('reads no email for a campaign that never had a test, then the outbox once, and a test send, its outcome and a purge written through another connection show at the next load', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 2 });
    expect(await testSendsShown(campaignId)).toEqual({ nextTestNo: 1, states: [] });
    const other = await otherConnection(platform);
    try {
      // No test yet: only the campaign's stamp is read, never the outbox and its claims and outcomes.
      await listTestSends(other, campaignId);
      expect(other.read).toEqual(['change_stamps']);

      // A test send from another instance.
      const me = { _id: new Types.ObjectId(), email: coordinator.user.email, name: 'Coordinator' };
      expect((await queueTestSend({ models: other.models, now: platform.clock.now }, campaignId, me, 1)).queued).toBeGreaterThan(0);
      expect(await testSendsShown(campaignId)).toEqual({ nextTestNo: 2, states: ['1 queued'] });
      // Loaded again and again (here on the other connection), only the change stamp is read.
      await listTestSends(other, campaignId);
      const readsOnce = other.read.length;
      expect(other.read).toContain('outbox');
      await listTestSends(other, campaignId);
      await listTestSends(other, campaignId);
      expect(other.read.slice(readsOnce)).toEqual(['change_stamps', 'change_stamps']);

      // Sent by a sender process.
      const { deps, policy, close } = senderFor({ models: other.models, clock: platform.clock, tokenKey: platform.tokenKey }, sink.url);
      try {
        await drainOutbox(() => sendDueMessages(deps, policy));
      } finally {
        close();
      }
      expect(await testSendsShown(campaignId)).toEqual({ nextTestNo: 2, states: ['1 sent'] });
      // The campaign's emails purged at the end of its retention period: its tests go too.
      const retention = { models: other.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set<string>(), workerId: 'test' };
      await purgeCampaign(retention, campaignId);
      expect(await testSendsShown(campaignId)).toEqual({ nextTestNo: 1, states: [] });
    } finally {
      await other.close();
    }
  });
});
