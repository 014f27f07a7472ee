import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { startOutboxSender } from '../../server/mail/outbox-sender.service.ts';
import { createCampaignWithContacts, senderFor, statusesOf } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let sink: SmtpSink;

beforeAll(async () => {
  platform = await startTestPlatform();
  platform.clock.current = new Date();
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

/** Resolves once the promise settles, or with 'pending' when `check` says to give up first (no time budget: the check follows progress). */
async function settles(promise: Promise<unknown>, ready: () => Promise<boolean>): Promise<'settled' | 'pending'> {
  let settled = false;
  void promise.finally(() => (settled = true));
  while (!settled) {
    if (!(await ready())) return 'pending';
    await sleep(20);
  }
  return 'settled';
}

// The poll interval is set to ten minutes: a stop that waited for the idle sender's next poll
// would still be pending when the test's own one-minute limit fails it.
describe('stopping the sender', { timeout: 60_000 }, () => {
  it('an idle sender whose next poll is ten minutes away stops at once, and a woken one sends first', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    const { deps: senderDeps, policy, close } = senderFor(platform, sink.url);
    const sender = startOutboxSender({ ...senderDeps, now: () => new Date() }, policy, { idleMs: 600_000 });
    await enqueueInvitations({ models: platform.models, now: () => new Date() }, campaignId, 'test');
    sender.wake();
    // Idle once every message has its outcome.
    while ((await statusesOf(platform.models, campaignId)).some((s) => s.state !== 'sent')) await sleep(20);
    await sleep(50);
    expect(await settles(sender.stop(), async () => true)).toBe('settled');
    close();
    for (const email of emails) expect(sink.countsByRecipient().get(email)).toBe(1);
  });
});
