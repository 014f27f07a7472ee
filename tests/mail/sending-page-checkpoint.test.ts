import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDemoData } from '../../server/campaigns/demo-data.service.ts';
import type { Models } from '../../server/db/models.ts';
import { erasePerson } from '../../server/privacy/privacy.service.ts';
import { noteChange } from '../../server/shared/change-stamp.ts';
import { EmailChanges, journalEmailChanges, KEEP_EMAIL_ENTRIES_MS } from '../../server/mail/email-changes.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { countByRound, enqueueMessages, INTENT_GRACE_MS, markAbandonedAsUnknown, recordHeartbeat, repairIntents, resolveUnknown } from '../../server/mail/outbox.service.ts';
import { polledCounts, sendingFigures } from '../../server/mail/sending-progress.ts';
import { createCampaignWithContacts, drainOutbox, senderFor } from '../helpers/mail.ts';
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

const deps = () => ({ models: platform.models, now: platform.clock.now });
const HISTORY = ['outbox', 'outbox_claims', 'outbox_outcomes'];
/** The campaign's counts from a read of its whole email history. */
const truth = (campaignId: Types.ObjectId) => countByRound({ models: platform.models }, campaignId);

/** A process just started (its own connection, nothing followed yet) counts the campaign's emails as a whole read does; `followsOn`: without reading the history. */
async function expectStartedProcessCounts(campaignId: Types.ObjectId, { followsOn = false } = {}): Promise<void> {
  const started = await otherConnection(platform);
  try {
    expect((await sendingFigures({ models: started.models }, campaignId)).counts).toEqual(await truth(campaignId));
    if (followsOn) expect(started.wholeReads.filter((c) => HISTORY.includes(c))).toEqual([]);
  } finally {
    await started.close();
  }
}

/** Models whose email journal refuses every entry: a process killed after its writes and before their journal entries, or a database that refused them. */
function diesBeforeJournal(models: Models): Models {
  const refusing = Object.create(models.EmailChange, { collection: { value: { insertOne: () => Promise.reject(new Error('killed before the journal entry')) } } });
  return { ...models, EmailChange: refusing as Models['EmailChange'] };
}

/** Models whose store of a checkpoint first lets `meanwhile` run: another process's write between a reader's reads and its store. */
function beforeCheckpointStore(models: Models, meanwhile: () => Promise<unknown>): Models {
  const collection = models.EmailChange.collection;
  const replaceOne = async (...args: Parameters<typeof collection.replaceOne>) => (await meanwhile(), collection.replaceOne(...args));
  const hooked = Object.create(models.EmailChange, { collection: { value: Object.create(collection, { replaceOne: { value: replaceOne } }) } });
  return { ...models, EmailChange: hooked as Models['EmailChange'] };
}

const privacyDeps = () => ({ models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set<string>() });

/** The journal's documents (entries and checkpoints) that name one of these emails. */
async function naming(messageIds: readonly string[]) {
  const all = await platform.models.EmailChange.find({}).lean();
  return all.filter((e) => messageIds.some((id) => [e.m, e.c, e.o].some((names) => names?.includes(id))));
}

/** A campaign of `contacts`, its invitations queued and sent, one refused (failed). */
async function sentCampaign(contacts: number) {
  const campaign = await createCampaignWithContacts(platform, { contacts });
  await enqueueInvitations(deps(), campaign.campaignId, 'test');
  sink.reply(campaign.emails[0]!, 550, 'No such mailbox');
  const sender = senderFor(platform, sink.url, `sender-${new Types.ObjectId()}`);
  await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
  sender.close();
  return campaign;
}

describe("the sending page follows on from the campaign's checkpoint", () => {
  it('a process just started, and a load after a reminder round, read none of the email history: the counts are those of a whole read', async () => {
    // Other campaigns' history, which a read by a filter goes through.
    await sentCampaign(4);
    const { campaignId, emails, contacts } = await sentCampaign(3);
    // The platform before its restart loaded the page.
    const before = await otherConnection(platform);
    await sendingFigures({ models: before.models }, campaignId);
    await before.close();

    const started = await otherConnection(platform);
    try {
      const first = await sendingFigures({ models: started.models }, campaignId);
      expect(first.counts).toEqual(await truth(campaignId));
      expect(first.counts.all).toMatchObject({ sent: 2, failed: 1, total: 3 });
      expect(first.failed.map((f) => f.message.to)).toEqual([emails[0]]);
      // The refused message and its outcome were looked up by _id; nothing of the history was read by a filter.
      expect(started.wholeReads.filter((c) => HISTORY.includes(c))).toEqual([]);

      // A reminder round adds three messages.
      const links = await platform.models.Invitation.find({ campaign: campaignId }).lean();
      const added = await enqueueMessages(deps(), 'reminder', 1, links.map((l) => ({ campaign: campaignId, contact: l.contact, invitation: l._id, to: contacts.find((c) => String(c._id) === String(l.contact))!.email, language: 'en' })));
      expect(added).toBe(3);
      const afterRound = await sendingFigures({ models: started.models }, campaignId);
      expect(afterRound.counts).toEqual(await truth(campaignId));
      expect(afterRound.counts.rounds.map((r) => [r.round, r.counts.queued])).toEqual([[0, 0], [1, 3]]);
      expect((await polledCounts({ models: started.models }, campaignId)).all).toEqual((await truth(campaignId)).all);
      expect(started.wholeReads.filter((c) => HISTORY.includes(c))).toEqual([]);
    } finally {
      await started.close();
    }

    // Another process started after the round.
    await expectStartedProcessCounts(campaignId, { followsOn: true });
  });

  it('a campaign whose checkpoint would pass the size limit: none is stored, the one there is removed, and every process reads the history whole, with the counts of a whole read', async () => {
    const { campaignId } = await sentCampaign(3);
    const checkpoint = () => platform.models.EmailChange.findById(`${campaignId}:checkpoint`).lean();
    // Under the limit, a first load stores one.
    const small = await otherConnection(platform);
    await sendingFigures({ models: small.models }, campaignId);
    await small.close();
    expect(await checkpoint()).not.toBeNull();

    // The campaign grew past the limit (here 300 bytes: three emails are ~450); a write no entry names sends the next reader to read whole.
    const limit = { checkpointMaxBytes: 300 };
    await noteChange(platform.models, 'emails', [campaignId]);
    const grown = await otherConnection(platform);
    try {
      expect((await sendingFigures({ models: grown.models, ...limit }, campaignId)).counts).toEqual(await truth(campaignId));
      expect(await checkpoint()).toBeNull();
    } finally {
      await grown.close();
    }

    // A process just started reads the history, as without a checkpoint, stores none, and follows a round from the journal.
    const started = await otherConnection(platform);
    try {
      expect((await sendingFigures({ models: started.models, ...limit }, campaignId)).counts).toEqual(await truth(campaignId));
      expect(started.wholeReads.filter((c) => HISTORY.includes(c)).sort()).toEqual(HISTORY);
      const links = await platform.models.Invitation.find({ campaign: campaignId }).lean();
      expect(await enqueueMessages(deps(), 'reminder', 1, links.map((l) => ({ campaign: campaignId, contact: l.contact, invitation: l._id, to: `r-${l._id}@vet.example`, language: 'en' })))).toBe(3);
      const readBefore = started.wholeReads.length;
      expect((await polledCounts({ models: started.models, ...limit }, campaignId)).all).toEqual((await truth(campaignId)).all);
      expect(started.wholeReads.slice(readBefore).filter((c) => HISTORY.includes(c))).toEqual([]);
      expect(await checkpoint()).toBeNull();
    } finally {
      await started.close();
    }
  });

  it("an erasure that lands between a reader's reads and its store of a checkpoint: no checkpoint names the erased emails, and the reader and a process just started count as a whole read", async () => {
    const { campaignId, contacts } = await sentCampaign(3);
    const person = contacts[1]!;
    const erasedIds = (await platform.models.Outbox.find({ campaign: campaignId, to: person.email }, { _id: 1 }).lean()).map((m) => String(m._id));
    expect(erasedIds).toHaveLength(1);
    const reader = await otherConnection(platform);
    try {
      // The reader's first load reads the history whole; the person is erased before it stores its checkpoint.
      let erasure: Promise<unknown> | undefined;
      const models = beforeCheckpointStore(reader.models, () => (erasure ??= erasePerson(privacyDeps(), { email: person.email, mode: 'delete', actor: 'test' })));
      expect((await sendingFigures({ models }, campaignId)).counts.all).toMatchObject({ total: 3 });
      expect(erasure).toBeDefined();
      expect(await naming(erasedIds)).toEqual([]);
      // The reader's next load reads whole again; what it stores then holds the campaign without the person.
      expect((await sendingFigures({ models }, campaignId)).counts).toEqual(await truth(campaignId));
      expect((await truth(campaignId)).all).toMatchObject({ total: 2 });
      expect(await platform.models.EmailChange.findById(`${campaignId}:checkpoint`).lean()).not.toBeNull();
      expect(await naming(erasedIds)).toEqual([]);
    } finally {
      await reader.close();
    }
    await expectStartedProcessCounts(campaignId);
  });

  it('an erasure while the sender journals other outcomes: a follower that had the erased emails counts as a whole read at its next load, and a process just started too', async () => {
    const { campaignId, contacts } = await sentCampaign(3);
    const reader = await otherConnection(platform);
    try {
      const poll = async () => (await polledCounts({ models: reader.models }, campaignId)).all;
      expect(await poll()).toMatchObject({ total: 3 });
      await erasePerson(privacyDeps(), { email: contacts[1]!.email, mode: 'delete', actor: 'test' });
      // A write journalled after the erasure moves the stamp on before the follower looks.
      await journalEmailChanges(platform.models, new EmailChanges().add(campaignId));
      // The page's load (a poll may reuse its last whole read for POLL_GAP_MS).
      expect((await sendingFigures({ models: reader.models }, campaignId)).counts).toEqual(await truth(campaignId));
      expect((await truth(campaignId)).all).toMatchObject({ total: 2 });
    } finally {
      await reader.close();
    }
    await expectStartedProcessCounts(campaignId);
  });

  it("removing demo data that a real campaign emailed by mistake, then a sender's write journalled: the page that was open and a process just started count as a whole read, and no checkpoint names the removed emails", async () => {
    const { campaignId, contacts } = await sentCampaign(3);
    await platform.models.Contact.updateOne({ _id: contacts[2]!._id }, { $set: { demo: true } });
    const removedIds = (await platform.models.Outbox.find({ campaign: campaignId, contact: contacts[2]!._id }, { _id: 1 }).lean()).map((m) => String(m._id));
    expect(removedIds).toHaveLength(1);
    const reader = await otherConnection(platform);
    try {
      // The page was open: it read the history and stored a checkpoint naming the three emails.
      expect((await sendingFigures({ models: reader.models }, campaignId)).counts.all).toMatchObject({ total: 3 });
      await removeDemoData({ models: platform.models, now: platform.clock.now }, 'test');
      // A write journalled after the removal moves the stamp on to its entry before the page looks.
      await journalEmailChanges(platform.models, new EmailChanges().add(campaignId));
      expect((await truth(campaignId)).all).toMatchObject({ total: 2 });
      expect((await sendingFigures({ models: reader.models }, campaignId)).counts).toEqual(await truth(campaignId));
    } finally {
      await reader.close();
    }
    await expectStartedProcessCounts(campaignId);
    expect((await naming(removedIds)).filter((e) => e._id.endsWith(':checkpoint'))).toEqual([]);
  });

  it('a sender killed between its claims and outcomes and their journal entries: once another sender finds it silent, the counts followed are those of a whole read', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const reader = await otherConnection(platform);
    try {
      const poll = async () => (await polledCounts({ models: reader.models }, campaignId)).all;
      expect(await poll()).toMatchObject({ queued: 3 });
      // The sender hands the three to the relay and writes their claims and outcomes, then dies before journalling them.
      const dying = senderFor(platform, sink.url, `dying-${new Types.ObjectId()}`);
      await expect(sendDueMessages({ ...dying.deps, models: diesBeforeJournal(platform.models) }, dying.policy)).rejects.toThrow('killed before the journal entry');
      dying.close();
      expect((await truth(campaignId)).all).toMatchObject({ sent: 3 });

      // Silent for the lease, it is found by another sender's pass.
      platform.clock.advance(dying.policy.leaseMs + 1000);
      const other = senderFor(platform, sink.url, `other-${new Types.ObjectId()}`);
      await sendDueMessages(other.deps, other.policy);
      other.close();
      const readBefore = reader.wholeReads.length;
      expect(await poll()).toEqual((await truth(campaignId)).all);
      // From the journal, not from a read of the history.
      expect(reader.wholeReads.slice(readBefore).filter((c) => HISTORY.includes(c))).toEqual([]);
    } finally {
      await reader.close();
    }
    await expectStartedProcessCounts(campaignId);
  });

  it('a round killed between its messages and their journal entry: once a sender repairs its intent, the counts followed are those of a whole read', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 3 });
    const reader = await otherConnection(platform);
    try {
      const poll = async () => (await polledCounts({ models: reader.models }, campaignId)).all;
      expect(await poll()).toMatchObject({ total: 0 });
      await expect(enqueueInvitations({ ...deps(), models: diesBeforeJournal(platform.models) }, campaignId, 'test')).rejects.toThrow('killed before the journal entry');
      expect((await truth(campaignId)).all).toMatchObject({ queued: 3 });

      // Past the grace period a sender's check of the intents finds it.
      platform.clock.advance(INTENT_GRACE_MS + 1000);
      await repairIntents(deps());
      const readBefore = reader.wholeReads.length;
      expect(await poll()).toEqual((await truth(campaignId)).all);
      expect(reader.wholeReads.slice(readBefore).filter((c) => HISTORY.includes(c))).toEqual([]);
    } finally {
      await reader.close();
    }
  });

  it("a write no entry names (an older version's sender) and a journalled one after it, the checkpoint's own read of the history 11 minutes old: a process just started answers its first load from the checkpoint, reads the history behind it, and its next load counts as a whole read", async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const watched = await otherConnection(platform);
    expect((await sendingFigures({ models: watched.models }, campaignId)).counts.all).toMatchObject({ queued: 3 });
    await watched.close();
    // An older version's sender: its claims and outcomes, no entry, then the stamp moved; a journalled write after it moves the stamp to its entry.
    const old = senderFor(platform, sink.url, `old-${new Types.ObjectId()}`);
    await expect(sendDueMessages({ ...old.deps, models: diesBeforeJournal(platform.models) }, old.policy)).rejects.toThrow('killed before the journal entry');
    old.close();
    await noteChange(platform.models, 'emails', [campaignId]);
    await journalEmailChanges(platform.models, new EmailChanges().add(campaignId));
    expect((await truth(campaignId)).all).toMatchObject({ sent: 3, queued: 0 });
    // Nobody read the history for 11 minutes.
    const aged = new Date(Date.now() - 11 * 60_000);
    await platform.models.EmailChange.collection.updateOne({ _id: `${campaignId}:checkpoint` } as never, { $set: { w: aged } });

    const started = await otherConnection(platform);
    try {
      await sendingFigures({ models: started.models }, campaignId);
      // The next load waits for the read behind the first, whatever the stamps say.
      expect((await sendingFigures({ models: started.models }, campaignId)).counts).toEqual(await truth(campaignId));
      expect((await polledCounts({ models: started.models }, campaignId)).all).toEqual((await truth(campaignId)).all);
      expect(started.wholeReads.filter((c) => HISTORY.includes(c)).sort()).toEqual(HISTORY);
    } finally {
      await started.close();
    }
    // The checkpoint stored from that read: a process started now follows on from it without reading the history.
    await expectStartedProcessCounts(campaignId, { followsOn: true });
  });

  it('a sending nobody watched for over an hour: the entries after the checkpoint are kept, and the next first load follows on from it without reading the history', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const watched = await otherConnection(platform);
    await sendingFigures({ models: watched.models }, campaignId);
    await watched.close();
    const sender = senderFor(platform, sink.url, `sender-${new Types.ObjectId()}`);
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    sender.close();
    // Every entry is older than the hour now, and a writer in another process cleans up.
    const entries = { _id: { $regex: `^${campaignId}:\\d` } };
    await platform.models.EmailChange.updateMany(entries, { $set: { t: new Date(Date.now() - 2 * KEEP_EMAIL_ENTRIES_MS) } });
    const written = await platform.models.EmailChange.countDocuments(entries);
    const writer = await otherConnection(platform);
    await journalEmailChanges(writer.models, new EmailChanges().add(new Types.ObjectId()));
    await writer.close();
    // The one the checkpoint holds (the invitations queued) went; those after it stay.
    expect(await platform.models.EmailChange.countDocuments(entries)).toBe(written - 1);

    const started = await otherConnection(platform);
    try {
      expect((await sendingFigures({ models: started.models }, campaignId)).counts).toEqual(await truth(campaignId));
      expect((await truth(campaignId)).all).toMatchObject({ sent: 3 });
      expect(started.wholeReads.filter((c) => HISTORY.includes(c))).toEqual([]);
    } finally {
      await started.close();
    }
  });

  it("a sender whose journal write failed while it lived on: its next pass journals what it wrote, and a process just started follows on from the checkpoint to the counts of a whole read", async () => {
    const { campaignId, contacts } = await sentCampaign(3);
    const watched = await otherConnection(platform);
    await sendingFigures({ models: watched.models }, campaignId);
    await watched.close();
    // A reminder round, sent by a sender whose journal entries the database refused (it was away a moment): the pass fails, the sender goes on.
    const links = await platform.models.Invitation.find({ campaign: campaignId }).lean();
    await enqueueMessages(deps(), 'reminder', 1, links.map((l) => ({ campaign: campaignId, contact: l.contact, invitation: l._id, to: contacts.find((c) => String(c._id) === String(l.contact))!.email, language: 'en' })));
    const sender = senderFor(platform, sink.url, `sender-${new Types.ObjectId()}`);
    try {
      await expect(sendDueMessages({ ...sender.deps, models: diesBeforeJournal(platform.models) }, sender.policy)).rejects.toThrow('killed before the journal entry');
      expect((await truth(campaignId)).rounds[1]?.counts).toMatchObject({ queued: 0, sending: 0, sent: 2, skipped: 1 });
      // Its next pass, with nothing due.
      expect(await sendDueMessages(sender.deps, sender.policy)).toEqual([]);
    } finally {
      sender.close();
    }

    await expectStartedProcessCounts(campaignId, { followsOn: true });
  });

  it("a coordinator's \"marked as sent\" killed between the outcome and its journal entry: once a sender repairs its intent, the counts followed are those of a whole read", async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 1 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const message = (await platform.models.Outbox.findOne({ campaign: campaignId }).lean())!;
    // A sender claimed it and died: another declares it unknown.
    const lease = 2_000;
    const worker = `killed-${new Types.ObjectId()}`;
    const longAgo = new Date(platform.clock.now().getTime() - 3 * lease);
    await recordHeartbeat({ ...deps(), now: () => longAgo }, worker);
    await platform.models.OutboxClaim.create({ _id: `${message._id}:0`, message: message._id, campaign: campaignId, attempt: 0, worker, at: longAgo });
    expect(await markAbandonedAsUnknown(deps(), lease)).toBe(1);
    const reader = await otherConnection(platform);
    try {
      const poll = async () => (await polledCounts({ models: reader.models }, campaignId)).all;
      expect(await poll()).toMatchObject({ unknown: 1 });
      await expect(resolveUnknown({ ...deps(), models: diesBeforeJournal(platform.models) }, `${message._id}:0`, 'sent', 'coordinator@vet.example')).rejects.toThrow('killed before the journal entry');
      expect((await truth(campaignId)).all).toMatchObject({ sent: 1, unknown: 0 });

      platform.clock.advance(INTENT_GRACE_MS + 1000);
      await repairIntents(deps());
      expect(await poll()).toEqual((await truth(campaignId)).all);
    } finally {
      await reader.close();
    }
  });
});
