import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { defineModels } from '../../server/db/models.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { stampOf } from '../../server/shared/change-stamp.ts';
import { createCampaignWithContacts, drainOutbox, senderFor } from '../helpers/mail.ts';
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
  /** Due entries removed, one per statement of the delete commands. */
  const dueRemovals: unknown[] = [];
  const client = connection.getClient();
  client.on('commandStarted', (event) => {
    if (event.commandName === 'find') reads.push(String(event.command.find));
    if (event.commandName === 'delete' && event.command.delete === 'outbox_due') dueRemovals.push(...(event.command.deletes as unknown[]));
    if (['insert', 'update', 'delete'].includes(event.commandName)) started.set(event.requestId, `${event.commandName} ${String(event.command[event.commandName])}`);
  });
  client.on('commandSucceeded', (event) => {
    const write = started.get(event.requestId);
    if (write) answered.push(write);
  });
  const { deps, policy, close } = senderFor({ ...platform, models: defineModels(connection) }, sink.url);
  return { deps, policy, answered, reads, dueRemovals, close: async () => (close(), await connection.close()) };
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
    // 60 messages in windows of 6 (two per connection, as the platform sets it): many writes of outcomes.
    expect(outcomeWrites).toBeGreaterThan(5);
    expect(stamps).toBeLessThanOrEqual(2);
    // A page that sees the stamp sees every outcome: the last stamp comes after the last outcome.
    expect(answered.lastIndexOf('update change_stamps')).toBeGreaterThan(answered.lastIndexOf('insert outbox_outcomes'));
    expect(await stampOf(platform.models, 'emails', campaignId)).not.toBe(before);
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
