import mongoose from 'mongoose';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { defineModels } from '../../server/db/models.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { CLAIMS_WITHOUT_OUTCOME_PER_CONNECTION, sendDueMessages, sendingWindows, startOutboxSender } from '../../server/mail/outbox-sender.service.ts';
import { stampOf } from '../../server/shared/change-stamp.ts';
import { createCampaignWithContacts, drainOutbox, senderFor, statusesOf } from '../helpers/mail.ts';
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

/** A sender on a connection of its own that notes each write it makes, in the order they are answered. */
async function watchedSender() {
  const connection = await mongoose.createConnection(`${inject('mongoUri')}/${platform.models.Invitation.db.name}`, { monitorCommands: true }).asPromise();
  const started = new Map<number, string>();
  const answered: string[] = [];
  const reads: string[] = [];
  /** Outcomes per insert into outbox_outcomes, in the order the inserts were sent. */
  const outcomeInserts: number[] = [];
  /** Claims per insert into outbox_claims, in the order the inserts were sent. */
  const claimInserts: number[] = [];
  /** Claims sent to the database less outcomes it has written, after each of those commands; what a kill at that moment could leave unknown. */
  const withoutOutcome: number[] = [];
  let open = 0;
  const outcomesSent = new Map<number, number>();
  /** Due entries removed, one per statement of the delete commands. */
  const dueRemovals: unknown[] = [];
  const client = connection.getClient();
  client.on('commandStarted', (event) => {
    if (event.commandName === 'find') reads.push(String(event.command.find));
    if (event.commandName === 'insert' && event.command.insert === 'outbox_outcomes') outcomeInserts.push((event.command.documents as unknown[]).length);
    if (event.commandName === 'insert' && event.command.insert === 'outbox_claims') {
      claimInserts.push((event.command.documents as unknown[]).length);
      withoutOutcome.push((open += (event.command.documents as unknown[]).length));
    }
    if (event.commandName === 'insert' && event.command.insert === 'outbox_outcomes') outcomesSent.set(event.requestId, (event.command.documents as unknown[]).length);
    if (event.commandName === 'delete' && event.command.delete === 'outbox_due') dueRemovals.push(...(event.command.deletes as unknown[]));
    if (['insert', 'update', 'delete'].includes(event.commandName)) started.set(event.requestId, `${event.commandName} ${String(event.command[event.commandName])}`);
  });
  client.on('commandSucceeded', (event) => {
    const write = started.get(event.requestId);
    if (write) answered.push(write);
    const outcomes = outcomesSent.get(event.requestId);
    if (outcomes) withoutOutcome.push((open -= outcomes));
  });
  const { deps, policy, close } = senderFor({ ...platform, models: defineModels(connection) }, sink.url);
  return { deps, policy, answered, reads, dueRemovals, outcomeInserts, claimInserts, withoutOutcome, close: async () => (close(), await connection.close()) };
}

describe("the sender's round trips", () => {
  it("a pass moves its campaign's emails stamp behind its outcomes, not once per write of outcomes, and last, after every outcome", async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 60 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const before = await stampOf(platform.models, 'emails', campaignId);
    const { deps, policy, answered, close } = await watchedSender();
    // An interval longer than the pass: the stamp moves after the first write of outcomes and at the end.
    await drainOutbox(() => sendDueMessages(deps, { ...policy, batchSize: 6, stampIntervalMs: 3_600_000 }));
    await close();
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email)).toBe(1);
    const outcomeWrites = answered.filter((w) => w === 'insert outbox_outcomes').length;
    const stamps = answered.filter((w) => w === 'update change_stamps').length;
    // 60 messages in windows of 6: many writes of outcomes.
    expect(outcomeWrites).toBeGreaterThan(5);
    expect(stamps).toBeLessThanOrEqual(2);
    // A page that sees the stamp sees every outcome: the last stamp comes after the last outcome.
    expect(answered.lastIndexOf('update change_stamps')).toBeGreaterThan(answered.lastIndexOf('insert outbox_outcomes'));
    expect(await stampOf(platform.models, 'emails', campaignId)).not.toBe(before);
  });

  it('the outcomes of a pass are written a batch at a time, not as each write of outcomes ends', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 60 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, outcomeInserts, close } = await watchedSender();
    // A wait longer than the pass: a batch goes when it is full, and the rest at the end of the pass.
    await drainOutbox(() => sendDueMessages(deps, { ...policy, batchSize: 6, outcomeWaitMs: 3_600_000 }));
    await close();
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email)).toBe(1);
    expect(await platform.models.OutboxOutcome.countDocuments({ campaign: campaignId, state: 'sent' })).toBe(60);
    // 60 outcomes in batches of a window (6) at least (more gather while a write is under way): ten inserts at most.
    expect(outcomeInserts.reduce((sum, n) => sum + n, 0)).toBe(60);
    expect(outcomeInserts.length).toBeLessThanOrEqual(10);
    for (const size of outcomeInserts.slice(0, -1)) expect(size).toBeGreaterThanOrEqual(6);
  });

  it("with the platform's windows a pass claims and writes outcomes 2.5 messages per connection an insert, and never holds more than 6 claims per connection without an outcome", async () => {
    const connections = 3;
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 60 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, claimInserts, outcomeInserts, withoutOutcome, close } = await watchedSender();
    // A wait longer than the pass: outcomes go when their batch is full, so the bound is met only by the windows.
    await drainOutbox(() => sendDueMessages(deps, { ...policy, ...sendingWindows(connections), outcomeWaitMs: 3_600_000 }));
    await close();
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email)).toBe(1);
    expect(claimInserts.reduce((sum, n) => sum + n, 0)).toBe(60);
    expect(outcomeInserts.reduce((sum, n) => sum + n, 0)).toBe(60);
    // Windows of 8 claims (two per connection, as before, would take ten inserts) and batches of at least 7 outcomes.
    expect(claimInserts.length).toBeLessThanOrEqual(8);
    for (const size of outcomeInserts.slice(0, -1)) expect(size).toBeGreaterThanOrEqual(7);
    // What a sender killed at any moment of the pass leaves unknown: claimed ahead, in the relay's hands, or answered and not yet written.
    expect(Math.max(...withoutOutcome)).toBeLessThanOrEqual(CLAIMS_WITHOUT_OUTCOME_PER_CONNECTION * connections);
    expect(withoutOutcome.at(-1)).toBe(0);
  });

  it('a sender stopped while it gathers a batch of outcomes writes the batch before stop() returns', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 30 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, close } = await watchedSender();
    const before = sink.messages.length;
    sink.hold();
    const sender = startOutboxSender(deps, { ...policy, batchSize: 6, outcomeWaitMs: 3_600_000 }, { idleMs: 100 });
    try {
      // One message on each of the three connections; two accepted, whose outcomes wait for four more.
      await sink.heldMessages(3);
      sink.answer(2);
      await sink.heldMessages(3);
      // Time for a write of those outcomes to land, had one been sent.
      await sleep(500);
      expect(await platform.models.OutboxOutcome.countDocuments({ campaign: campaignId })).toBe(0);
    } finally {
      const stopping = sender.stop();
      sink.release();
      await stopping;
      await close();
    }
    // Every message the relay received has its outcome, sent; the rest wait, unclaimed.
    const received = new Set(sink.messages.slice(before).flatMap((m) => m.to));
    expect(received.size).toBeGreaterThan(2);
    for (const { message, state } of await statusesOf(platform.models, campaignId)) expect(state, message.to).toBe(received.has(message.to) ? 'sent' : 'queued');
    // The rest goes, so that the next test's passes meet nothing of this one.
    const rest = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(rest.deps, rest.policy));
    rest.close();
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email)).toBe(1);
  });

  it("an idle sender sleeps until the retry it knows of is due: no read of the due view before then, and the retry goes once it is", async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    // The relay asks for the first address again later: a retry due a backoff from now (the test's clock).
    sink.reply(emails[0]!, 451, '4.7.1 Try again later', 1);
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, reads, close } = await watchedSender();
    const sender = startOutboxSender(deps, policy, { idleMs: 20 });
    try {
      // A sender that went on sleeping past the due time fails here, not at the test's timeout.
      const received = async (email: string) => {
        for (let waited = 0; !sink.countsByRecipient().get(email); waited += 20) {
          if (waited > 20_000) throw new Error(`${email} was never sent`);
          await sleep(20);
        }
      };
      await Promise.all([received(emails[1]!), received(emails[2]!)]);
      // The retry's outcome brings one more read, which finds it not yet due: then the sender idles.
      while ((await platform.models.OutboxOutcome.countDocuments({ campaign: campaignId })) < 3) await sleep(20);
      await sleep(300);
      const dueReads = reads.filter((c) => c === 'outbox_due').length;
      const idleChecks = reads.filter((c) => c === 'outbox_workers').length;
      // Some fifty idle checks' time (one every 20 ms): the outbox signal, heartbeats and intents, never the due view.
      await sleep(1000);
      expect(reads.filter((c) => c === 'outbox_workers').length).toBeGreaterThan(idleChecks + 10);
      expect(reads.filter((c) => c === 'outbox_due').length).toBe(dueReads);
      expect(sink.countsByRecipient().get(emails[0]!)).toBeUndefined();
      // The retry's time comes (nothing enqueued, no wake()): the sender reads the due view and sends it.
      platform.clock.advance(policy.backoffMs * 4);
      await received(emails[0]!);
      expect(reads.filter((c) => c === 'outbox_due').length).toBeGreaterThan(dueReads);
    } finally {
      await sender.stop();
      await close();
    }
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email)).toBe(1);
    for (const { message, state } of await statusesOf(platform.models, campaignId)) expect(state, message.to).toBe('sent');
  });

  it("a campaign's invitations queued together are taken off the due view by one removal, not one per message", async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 60 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, dueRemovals, close } = await watchedSender();
    await drainOutbox(() => sendDueMessages(deps, { ...policy, batchSize: 6 }));
    await close();
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email)).toBe(1);
    expect(dueRemovals).toHaveLength(1);
    expect((await platform.models.OutboxDue.find({}).lean()).filter((e) => String(e.campaign) === String(campaignId))).toEqual([]);
  });

  it('the windows of a pass go by the pauses and the suppression list read for an earlier window while it is recent, and a suppression read then stops its message', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 60 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    // Suppressed before the pass: read with the pass's context and the first window, and kept.
    await platform.models.Suppression.create({ email: emails[59], reason: 'bounce', at: platform.clock.now() });
    const { deps, policy, reads, close } = await watchedSender();
    const outcomes = (await sendDueMessages(deps, { ...policy, batchSize: 6, factsMaxAgeMs: 3_600_000 })).filter((o) => o === 'sent' || o === 'skipped');
    await close();
    expect(outcomes.length).toBe(60);
    const counts = sink.countsByRecipient();
    for (const email of emails.slice(0, 59)) expect(counts.get(email)).toBe(1);
    expect(counts.get(emails[59]!)).toBeUndefined();
    // Ten windows of six: the pass's own read and one for the first window, not one per window.
    expect(reads.filter((c) => c === 'suppressions').length).toBeLessThanOrEqual(2);
    expect(reads.filter((c) => c === 'sending_pauses').length).toBeLessThanOrEqual(2);
  });
});
