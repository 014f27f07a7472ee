import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { findSentEmails } from '../../server/mail/sent-email.store.ts';
import { createCampaignWithContacts, drainOutbox, senderFor } from '../helpers/mail.ts';
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

describe('emails as sent, kept for access requests', () => {
  it('are stored packed against a base without personal data (the engine pays per byte), and read back with the headers and bodies the relay received', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, close } = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(deps, policy));
    close();
    const messages = await platform.models.Outbox.find({ campaign: campaignId }).lean();
    expect(messages).toHaveLength(3);
    const stored = await platform.models.SentEmail.collection.find({ _id: { $in: messages.map((m) => m._id) } }).toArray();
    expect(stored).toHaveLength(3);
    for (const doc of stored) {
      expect(Object.keys(doc).sort()).toEqual(['_id', 'base', 'campaign', 'packed', 'sentAt']);
      // What is personal in it, not the campaign's text again.
      expect(doc.packed.length()).toBeLessThan(400);
    }
    // One base for the campaign's invitations in English, holding none of the contacts.
    const bases = await platform.models.SentEmailBase.find({ _id: { $in: [...new Set(stored.map((d) => d.base as string))] } }).lean();
    expect(bases).toHaveLength(1);
    for (const email of emails) expect(bases[0]!.text).not.toContain(email);
    const kept = await findSentEmails(platform.models, messages.map((m) => m._id));
    for (const email of emails) {
      const one = kept.find((k) => k.headers.To === email)!;
      const received = sink.messages.find((m) => m.to.includes(email))!;
      expect(one.headers['Message-ID']).toBe(received.messageId);
      expect(one.text).toContain('/s/');
      expect(one.html).toContain('/s/');
    }
  });

  it('kept by an older version as fields or as one JSON string, they are read as they are', async () => {
    const _id = new Types.ObjectId();
    const headers = { From: 'Survey <survey@test>', To: 'old@school.example', Subject: 'Old', 'Message-ID': '<old@test>' };
    await platform.models.SentEmail.collection.insertOne({ _id, campaign: new Types.ObjectId(), sentAt: new Date(), headers, text: 'old text', html: '<p>old</p>' });
    const [old] = await findSentEmails(platform.models, [_id]);
    expect(old).toMatchObject({ _id, headers, text: 'old text', html: '<p>old</p>' });
    expect(old).not.toHaveProperty('email');
    // The version before bases kept them as one JSON string.
    const json = new Types.ObjectId();
    await platform.models.SentEmail.collection.insertOne({ _id: json, campaign: new Types.ObjectId(), sentAt: new Date(), email: JSON.stringify({ headers, text: 'json text', html: '<p>json</p>' }) });
    const [fromJson] = await findSentEmails(platform.models, [json]);
    expect(fromJson).toMatchObject({ _id: json, headers, text: 'json text', html: '<p>json</p>' });
  });
});
