import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contactListReads } from '../../server/campaigns/audience-state.ts';
import { parseConfig } from '../../server/config.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { startSenderProcess } from '../../server/mail/sender-process.ts';
import { createLogger } from '../../server/shared/logger.ts';
import { createCampaignWithContacts, statusesOf } from '../helpers/mail.ts';
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

describe('an extra sender (scripts/run-sender.ts)', () => {
  it('follows the contact list as the platform does: read once in the background before anything is due, and a pass of 200 invitations reads no contact list on its path', async () => {
    // More recipients than a pass looks up one by one: without a kept list, the pass reads the list whole.
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 200 });
    const own = await otherConnection(platform);
    const config = parseConfig({ SMTP_URL: sink.url, SEND_RATE_PER_SECOND: '5000', SEND_MAX_CONNECTIONS: '3', PUBLIC_URL: 'http://survey.test' });
    const extra = startSenderProcess({ config: { ...config, SMTP_URL: sink.url }, models: own.models, logger: createLogger({ level: 'silent', pretty: false }), tokenKey: platform.tokenKey, now: platform.clock.now, idleMs: 20 });
    try {
      // Nothing is due yet: the list is read by the sender's process all the same, once.
      for (let waited = 0; contactListReads(own.models).whole === 0; waited += 20) {
        if (waited > 20_000) throw new Error('the extra sender never read the contact list');
        await sleep(20);
      }
      expect(contactListReads(own.models).whole).toBe(1);
      const contactReadsBefore = own.wholeReads.filter((c) => c === 'contacts').length;
      await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
      for (let waited = 0; emails.some((e) => !sink.countsByRecipient().has(e)); waited += 50) {
        if (waited > 60_000) throw new Error('the extra sender did not send the campaign');
        await sleep(50);
      }
      // The pass went by the kept list: no whole read of the contacts since the one before anything was due.
      expect(own.wholeReads.filter((c) => c === 'contacts').length).toBe(contactReadsBefore);
      expect(contactListReads(own.models).whole).toBe(1);
    } finally {
      await extra.stop();
      await own.close();
    }
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email)).toBe(1);
    for (const { message, state } of await statusesOf(platform.models, campaignId)) expect(state, message.to).toBe('sent');
  });
});
