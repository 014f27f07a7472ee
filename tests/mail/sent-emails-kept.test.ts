import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { messageStatuses } from '../../server/mail/outbox.service.ts';
import { countSentEmails, findSentEmails } from '../../server/mail/sent-email.store.ts';
import { findSubjectData } from '../../server/privacy/subject.store.ts';
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
  it('are stored in their outcomes, packed against a base without personal data (the engine pays per document), and read back with the headers and bodies the relay received', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, close } = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(deps, policy));
    close();
    const messages = await platform.models.Outbox.find({ campaign: campaignId }).lean();
    expect(messages).toHaveLength(3);
    // No document of their own: each is in its outcome "sent", written by the same insert.
    expect(await platform.models.SentEmail.countDocuments({ _id: { $in: messages.map((m) => m._id) } })).toBe(0);
    const outcomes = await platform.models.OutboxOutcome.collection.find({ campaign: campaignId }).toArray();
    expect(outcomes).toHaveLength(3);
    for (const doc of outcomes) {
      expect(doc.state).toBe('sent');
      // What is personal in it, not the campaign's text again.
      expect(doc.sentEmail.length()).toBeLessThan(400);
    }
    // One base for the campaign's invitations in English, holding none of the contacts.
    const bases = await platform.models.SentEmailBase.find({ _id: { $in: [...new Set(outcomes.map((d) => d.sentEmailBase as string))] } }).lean();
    expect(bases).toHaveLength(1);
    for (const email of emails) expect(bases[0]!.text).not.toContain(email);
    // Pages read the outcomes without them.
    const statuses = await messageStatuses({ models: platform.models }, { campaign: campaignId });
    for (const status of statuses) expect(status.last).not.toHaveProperty('sentEmail');
    const kept = await findSentEmails(platform.models, messages.map((m) => m._id), outcomes as never);
    expect(kept).toHaveLength(3);
    for (const email of emails) {
      const one = kept.find((k) => k.headers.To === email)!;
      const received = sink.messages.find((m) => m.to.includes(email))!;
      expect(one.headers['Message-ID']).toBe(received.messageId);
      expect(one.text).toContain('/s/');
      expect(one.html).toContain('/s/');
    }
    expect(await countSentEmails(platform.models, campaignId)).toBe(3);
  });

  it('when an attempt was declared unknown before its sender wrote "sent", that outcome stays unknown and keeps the email the relay took', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const [late, onTime] = await platform.models.Outbox.find({ campaign: campaignId }).sort({ to: 1 }).lean();
    // As another sender does for the claims of a sender silent for the lease (markAbandonedAsUnknown).
    await platform.models.OutboxOutcome.collection.insertOne({ _id: `${late!._id}:0`, message: late!._id, campaign: campaignId, attempt: 0, state: 'unknown', at: platform.clock.now() } as never);
    const { deps, policy, close } = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(deps, policy));
    close();
    const outcome = await platform.models.OutboxOutcome.findById(`${late!._id}:0`).lean();
    expect(outcome).toMatchObject({ state: 'unknown', error: expect.stringContaining('Late report') });
    const data = await findSubjectData(platform.models, late!.to);
    expect(data.sentEmails).toHaveLength(1);
    expect(data.sentEmails[0]).toMatchObject({ _id: late!._id, headers: { To: late!.to } });
    // The export shows the email once, as an email, not as packed bytes in the outcome.
    expect(data.outboxOutcomes[0]).not.toHaveProperty('sentEmail');
    expect((await findSubjectData(platform.models, onTime!.to)).sentEmails[0]).toMatchObject({ _id: onTime!._id, headers: { To: onTime!.to } });
    expect(emails.sort()).toEqual([late!.to, onTime!.to].sort());
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
