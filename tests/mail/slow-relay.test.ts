import { formatDateTime } from '../../server/shared/dates.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../server/cli/commands.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { reminderDryRun } from '../../server/reminders/reminder.service.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { createCampaignWithContacts, drainOutbox, senderFor, statusesOf } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let sink: SmtpSink;
let coordinator: SignedInAgent;

beforeAll(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

const deps = () => ({ models: platform.models, now: platform.clock.now });

/** Waits until the condition holds: progress, not a time budget. */
async function until(condition: () => Promise<boolean>) {
  while (!(await condition())) await sleep(20);
}

describe('a slow or breaking relay never gets a message twice', () => {
  it('when the relay answers the end of the data only after the reply timeout, each contact gets one copy and the message is unknown, listed with its Message-ID and claim time', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations(deps(), campaignId, 'test');
    sink.hold();
    // The sender gives up after two seconds without an answer (a fixed wait: the shortest is the longest); the relay answers later still.
    const sender = senderFor(platform, sink.url, 'impatient', { connectMs: 10_000, replyMs: 2000, replyMinMs: 2000, replyFactor: 10 });
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    sink.release();

    const statuses = await statusesOf(platform.models, campaignId);
    expect(statuses.map((s) => s.state)).toEqual(['unknown', 'unknown', 'unknown']);
    // Hours later, after any pause or backoff, nothing is sent again by itself.
    platform.clock.advance(6 * 3600_000);
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    sender.close();
    const received = sink.countsByRecipient();
    for (const email of emails) expect(received.get(email), email).toBe(1);
    expect((await statusesOf(platform.models, campaignId)).every((s) => s.state === 'unknown' && s.attempts === 1)).toBe(true);

    const page = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text;
    const table = /<table id="unknown-messages">[\s\S]*?<\/table>/.exec(page)![0];
    for (const message of sink.messages.filter((m) => emails.includes(m.to[0]!))) {
      expect(table).toContain(message.messageId.replace(/</g, '&lt;').replace(/>/g, '&gt;'));
    }
    const claim = await platform.models.OutboxClaim.findById(`${statuses[0]!.message._id}:0`).lean();
    expect(table).toContain(formatDateTime(claim!.at));
    expect(table).toMatch(/did not answer whether it accepted it/);
    // A reminder round would leave them out, and its dry run says so.
    expect((await reminderDryRun(platform, campaignId)).unknownInvitations).toBe(3);
    const reminders = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/reminders`).expect(200)).text;
    expect(reminders).toMatch(/<p id="dry-run-unknown">Not included: 3 contacts whose invitation's outcome is unknown \(the sender stopped before the mail server answered\)\. Resolve them on the <a href="\/admin\/campaigns\/[0-9a-f]{24}\/sending">sending page<\/a>\.<\/p>/);
    const printed: string[] = [];
    await runCommand(['campaign:send', '--campaign', String(campaignId), '--reminder-round'], { models: platform.models, now: platform.clock.now, tokenKey: platform.tokenKey, publicUrl: '', print: (line) => printed.push(line) });
    expect(printed).toContain("Not included: 3 contacts whose invitation's outcome is unknown; resolve them on the sending page first.");
  });

  it('when the connection breaks after the relay received the data, the message is unknown and not sent again', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    const [broken, fine] = emails as [string, string];
    sink.dropAfterData(broken);
    await enqueueInvitations(deps(), campaignId, 'test');
    const sender = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    platform.clock.advance(6 * 3600_000);
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    sender.close();
    const byTo = new Map((await statusesOf(platform.models, campaignId)).map((s) => [s.message.to, s.state]));
    expect(byTo.get(broken)).toBe('unknown');
    expect(byTo.get(fine)).toBe('sent');
    expect(sink.countsByRecipient().get(broken)).toBe(1);
    expect(sink.countsByRecipient().get(fine)).toBe(1);
  });

  it('a second, idle sender does not declare unknown the messages a live sender is still delivering to a slow relay', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    await enqueueInvitations(deps(), campaignId, 'test');
    sink.hold();
    const busy = senderFor(platform, sink.url, 'busy');
    const pass = sendDueMessages(busy.deps, { ...busy.policy, heartbeatMs: 20 });
    await sink.heldMessages(2);

    // Longer than the lease since the claims: only the busy sender's heartbeat says it is alive.
    platform.clock.advance(busy.policy.leaseMs + 60_000);
    await until(async () => ((await platform.models.OutboxWorker.findById('busy').lean())?.at ?? new Date(0)) >= platform.clock.current);
    const idle = senderFor(platform, sink.url, 'idle');
    expect(await sendDueMessages(idle.deps, idle.policy)).toEqual([]);
    idle.close();
    expect((await statusesOf(platform.models, campaignId)).map((s) => s.state)).toEqual(['sending', 'sending']);

    sink.release();
    expect(await pass).toEqual(['sent', 'sent']);
    busy.close();
    expect((await statusesOf(platform.models, campaignId)).map((s) => s.state)).toEqual(['sent', 'sent']);
    for (const email of emails) expect(sink.countsByRecipient().get(email)).toBe(1);
  });
});
