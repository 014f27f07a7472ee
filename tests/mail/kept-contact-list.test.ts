import mongoose from 'mongoose';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { contactListReads, contactListState } from '../../server/campaigns/audience-state.ts';
import { parseConfig } from '../../server/config.ts';
import { defineModels } from '../../server/db/models.ts';
import { institutionKey } from '../../server/institutions/institution.model.ts';
import { createInvitations } from '../../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { startSenderProcess } from '../../server/mail/sender-process.ts';
import { createLogger } from '../../server/shared/logger.ts';
import { createCampaignWithContacts, drainOutbox, PUBLIC_URL, senderFor, statusesOf } from '../helpers/mail.ts';
import { otherConnection } from '../helpers/other-connection.ts';
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

/** The platform's models on a connection of their own (a contact list kept for them alone), with the collections each find reads. */
async function watchedModels() {
  const connection = await mongoose.createConnection(`${inject('mongoUri')}/${platform.models.Invitation.db.name}`, { monitorCommands: true }).asPromise();
  const reads: string[] = [];
  connection.getClient().on('commandStarted', (event) => {
    if (event.commandName === 'find') reads.push(String(event.command.find));
  });
  return { models: defineModels(connection), reads, close: () => connection.close() };
}

/** Another campaign to contacts that exist already. */
async function campaignTo(contacts: Awaited<ReturnType<typeof createCampaignWithContacts>>['contacts']) {
  const campaign = await platform.models.Campaign.create({
    name: `Second wave ${String(contacts[0]!._id)}`,
    strands: ['S1'],
    opensAt: new Date(platform.clock.current.getTime() - 86_400_000),
    closesAt: new Date(platform.clock.current.getTime() + 30 * 86_400_000),
  });
  await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL }, campaign._id, contacts);
  await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaign._id, 'test');
  return campaign._id;
}

describe("the sender's contact list", () => {
  it('a pass whose contact list has not changed since the last pass reads neither the contacts nor the institutions', async () => {
    const { campaignId, contacts, emails } = await createCampaignWithContacts(platform, { contacts: 4 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const watched = await watchedModels();
    const { deps, policy, close } = senderFor({ ...platform, models: watched.models }, sink.url);
    try {
      // Kept as the platform's process keeps it (followContactList): a pass with as few recipients as these
      // reads them by _id and keeps no list (first-pass.test.ts).
      await contactListState(watched.models);
      await drainOutbox(() => sendDueMessages(deps, policy));
      const second = await campaignTo(contacts);
      watched.reads.length = 0;
      await drainOutbox(() => sendDueMessages(deps, policy));
      for (const { message, state } of await statusesOf(platform.models, second)) expect(state, message.to).toBe('sent');
      expect(watched.reads).not.toContain('contacts');
      expect(watched.reads).not.toContain('institutions');
    } finally {
      close();
      await watched.close();
    }
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email)).toBe(2);
  });

  it('a recipient written without moving the contact list stamp is read afresh and mailed, never skipped as deleted on the kept list', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, close } = senderFor(platform, sink.url);
    try {
      // The contact list kept as it is now, as the platform's process keeps it (see above).
      await contactListState(platform.models);
      await drainOutbox(() => sendDueMessages(deps, policy));
      // A contact written as no writer of the platform does (without the stamp): the kept list lacks it.
      const institution = await platform.models.Institution.create({ name: `Late school ${String(campaignId)}`, country: 'DE', type: 'ivet_school', key: institutionKey({ name: `Late school ${String(campaignId)}`, country: 'DE' }) });
      const late = await platform.models.Contact.create({ institution: institution._id, name: 'Late Leader', email: `late-${String(campaignId)}@school.example`, language: 'en' });
      await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL }, campaignId, [late]);
      await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
      await drainOutbox(() => sendDueMessages(deps, policy));
      const statuses = await statusesOf(platform.models, campaignId);
      expect(statuses).toHaveLength(3);
      for (const { message, state } of statuses) expect(state, message.to).toBe('sent');
      const counts = sink.countsByRecipient();
      for (const email of [...emails, late.email]) expect(counts.get(email), email).toBe(1);
      expect(sink.messages.find((m) => m.to.includes(late.email))!.raw).toContain('Late Leader');
    } finally {
      close();
    }
  });
});

describe('an extra sender (scripts/run-sender.ts)', () => {
  it('follows the contact list as the platform does: read once in the background before anything is due, and a pass of 200 invitations reads no contact list on its path', async () => {
    // More recipients than a pass looks up one by one: without a kept list, the pass reads the list whole.
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 200 });
    const own = await otherConnection(platform);
    const config = parseConfig({ SMTP_URL: sink.url, SEND_RATE_PER_SECOND: '5000', SEND_MAX_CONNECTIONS: '3', PUBLIC_URL: 'http://survey.test' });
    const extra = startSenderProcess({
      config: { ...config, SMTP_URL: sink.url },
      models: own.models,
      logger: createLogger({ level: 'silent', pretty: false }),
      tokenKey: platform.tokenKey,
      now: platform.clock.now,
      idleMs: 20,
    });
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
