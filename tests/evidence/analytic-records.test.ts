import mongoose, { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { defineModels, type Models } from '../../server/db/models.ts';
import {
  appendJournal,
  followEvidence,
  journalHead,
  journalId,
  journalIntents,
  migrateRecords,
  RECORDS_MIGRATION,
  recordOf,
  RecordFollower,
  taggedRecordOf,
  writeRecord,
  type AnalyticRecordDoc,
} from '../../server/evidence/analytic-record.ts';
import { institutionTagger } from '../../server/evidence/institution-tag.ts';
import { invalidateSnapshot } from '../../server/evidence/record-snapshot.ts';
import type { EvidenceRecord } from '../../server/evidence/evidence-record.ts';
import { removeDemoData } from '../../server/campaigns/demo-data.service.ts';
import { erasePerson } from '../../server/privacy/privacy.service.ts';
import { purgeCampaign } from '../../server/privacy/retention.service.ts';
import { submit } from '../../server/respond/respond.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { catalogue, CollectingSink, decode, isText } from '../helpers/evidence-records.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

const STRANDS = ['S1', 'S2', 'S3', 'S4'];

let platform: TestPlatform;
/** A second connection to the same database, as another process of the platform would have. */
let other: mongoose.Connection;
let otherModels: Models;
beforeAll(async () => {
  platform = await startTestPlatform();
  other = await mongoose.createConnection(`${inject('mongoUri')}/${platform.models.Response.db.name}`).asPromise();
  otherModels = defineModels(other);
});
afterAll(async () => {
  await other.close();
  await platform.close();
});

/** Polls until the condition holds, for at most `tries` polls: a bound against hanging, not a time budget. */
async function eventually(condition: () => boolean, poll: () => Promise<unknown>, tries = 200) {
  for (let i = 0; i < tries && !condition(); i++) {
    await poll();
    if (!condition()) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(condition()).toBe(true);
}

async function submitted(answers = completeAnswers(), options: { campaignId?: Types.ObjectId } = {}) {
  const invited = await createInvitedContact(platform, options);
  await respondent(platform, invited.path, invited.invitation.tokenHash).submit({ data: answers, baseRevision: 0, language: 'en' }).expect(201);
  return invited;
}

/** The closed answers' items as the validator flattens them: what a record must give back. */
function validatorItems(answers: Record<string, unknown>) {
  const { validator } = platform.questionnaires.forStrands(STRANDS);
  const result = validator.validate(answers, 'en');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.items.filter((item) => !validator.isFreeText(item.question));
}

async function storedRecord(id: unknown) {
  return platform.models.AnalyticRecord.findById(id).lean<AnalyticRecordDoc>();
}

describe('the analytic record of a response', () => {
  it('a submission writes a compact record whose decoded answers are exactly what the validator produced, free text left out', async () => {
    const answers = completeAnswers({ S1_6: 'Our mobility officer Jane Doe left.' });
    const { invitation, campaignId, institution } = await submitted(answers);
    const doc = (await storedRecord(invitation._id))!;
    expect(Object.keys(doc).sort()).toEqual(['_id', 'a', 'at', 'campaign', 'institution', 'p', 'revision']);
    expect(doc.a).not.toContain('Jane Doe');
    const record = decode(doc);
    // The institution by its tag in the campaign, never its id.
    expect(record).toMatchObject({ id: String(invitation._id), campaign: String(campaignId), institution: await institutionTagger(platform.models, platform.tagKey)(campaignId, institution._id), revision: 1 });
    expect(JSON.stringify(doc)).not.toContain(String(institution._id));
    expect(record.profile).toEqual({ country: 'AT', institutionType: 'ivet_school', size: '1000_2499', location: 'town_suburb', erasmus: 'accredited', role: 'head' });
    expect(record.items).toEqual(validatorItems(answers));
    expect(record.items.length).toBeGreaterThan(50);

    // The response keeps only its free-text items (the quotes read them); the closed ones live in the record.
    const response = (await platform.models.Response.findById(invitation._id).lean())!;
    expect(response.items.map((i) => i.question)).toEqual(['S1_6']);
    expect(response.submittedAt).toEqual(record.submittedAt);
  });

  it('a new revision replaces the record, and an older one never replaces a newer', async () => {
    const invited = await createInvitedContact(platform);
    const r = respondent(platform, invited.path, invited.invitation.tokenHash);
    await r.submit({ data: completeAnswers({ S1_5: 5 }), baseRevision: 0, language: 'en' }).expect(201);
    await r.submit({ data: completeAnswers({ S1_5: 2, P1: 'DE' }), baseRevision: 1, language: 'en' }).expect(201);
    const record = decode((await storedRecord(invited.invitation._id))!);
    expect(record.revision).toBe(2);
    expect(record.profile.country).toBe('DE');
    expect(record.items.filter((i) => i.question === 'S1_5')).toEqual([{ strand: 'S1', question: 'S1_5', value: 2 }]);

    // Revision 1 arriving late (a retry from another instance) leaves revision 2 in place; the intent it journalled is fulfilled already.
    const first = (await platform.models.ResponseRevision.findById(`${invited.invitation._id}:1`).lean())!;
    const head = await journalHead(platform.models);
    const kept = await writeRecord(platform.models, await taggedRecordOf(institutionTagger(platform.models, platform.tagKey), { ...first, _id: invited.invitation._id }, isText));
    expect(kept.revision).toBe(2);
    expect((await storedRecord(invited.invitation._id))!.revision).toBe(2);
    expect(await platform.models.EvidenceJournal.findById(journalId(head + 1)).lean()).toMatchObject({ r: invited.invitation._id, v: 1 });
  });

  it('the submission hands the evidence the record it stored, decoded', async () => {
    const { invitation, campaignId } = await createInvitedContact(platform);
    const heard: EvidenceRecord[] = [];
    const deps = { models: platform.models, questionnaires: platform.questionnaires, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, onResponseRecorded: (record: EvidenceRecord) => heard.push(record) };
    const campaign = (await platform.models.Campaign.findById(campaignId))!;
    await submit(deps, campaign, invitation, { data: completeAnswers(), baseRevision: 0, language: 'en' });
    expect(heard).toEqual([decode((await storedRecord(invitation._id))!)]);
  });
});

describe('erasure', () => {
  it('forgetting a respondent moves the record to the anonymous id with the same answers; deleting removes it; the journal keeps no invitation id', async () => {
    const deps = { models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set(catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name)) };
    const forgotten = await submitted();
    const deleted = await submitted();
    const before = decode((await storedRecord(forgotten.invitation._id))!);

    const changes: unknown[] = [];
    await erasePerson({ ...deps, onResponsesChanged: (change) => changes.push(change) }, { email: forgotten.contact.email, mode: 'forget', actor: 'test' });
    expect(await storedRecord(forgotten.invitation._id)).toBeNull();
    const anonymous = (await platform.models.Response.findOne({ anonymous: true, campaign: forgotten.campaignId }).lean())!;
    const after = decode((await storedRecord(anonymous._id))!);
    expect({ ...after, id: before.id }).toEqual(before);
    expect(changes).toEqual([{ written: [await storedRecord(anonymous._id)], removed: [String(forgotten.invitation._id)] }]);

    await erasePerson(deps, { email: deleted.contact.email, mode: 'delete', actor: 'test' });
    expect(await storedRecord(deleted.invitation._id)).toBeNull();

    const journal = await platform.models.EvidenceJournal.find({}).lean();
    const named = journal.map((entry) => String(entry.r));
    expect(named).not.toContain(String(forgotten.invitation._id));
    expect(named).not.toContain(String(deleted.invitation._id));
    expect(named).toContain(String(anonymous._id));
  });
});

describe('retention and demo data', () => {
  it('a retention purge moves each record to its anonymous id with the same answers', async () => {
    const { invitation, campaignId } = await submitted();
    const before = decode((await storedRecord(invitation._id))!);
    const changes: Array<{ written: AnalyticRecordDoc[]; removed: string[] }> = [];
    const textQuestions = new Set(catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name));
    await purgeCampaign({ models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions, workerId: 'test', onResponsesChanged: (c) => changes.push(c) }, campaignId);
    expect(await storedRecord(invitation._id)).toBeNull();
    const anonymous = (await platform.models.Response.findOne({ anonymous: true, campaign: campaignId }).lean())!;
    expect({ ...decode((await storedRecord(anonymous._id))!), id: before.id }).toEqual(before);
    expect(changes).toEqual([{ written: [await storedRecord(anonymous._id)], removed: [String(invitation._id)] }]);
    expect((await platform.models.EvidenceJournal.find({}).lean()).map((e) => String(e.r))).not.toContain(String(invitation._id));
  });

  it('removing the demo data removes the records of its responses and says which', async () => {
    const { invitation, campaignId } = await submitted();
    await platform.models.Campaign.updateOne({ _id: campaignId }, { $set: { demo: true } });
    const removed = await removeDemoData({ models: platform.models, now: platform.clock.now }, 'test');
    expect(removed.removedRecords).toEqual([String(invitation._id)]);
    expect(await storedRecord(invitation._id)).toBeNull();
  });
});

describe('migration of databases from before records', () => {
  it('responses stored with their items and no record get records equal to their items, once; a second run changes nothing', async () => {
    const campaignId = new Types.ObjectId();
    const { validator } = platform.questionnaires.forStrands(STRANDS);
    const old = [completeAnswers({ S1_5: 1 }), completeAnswers({ S1_5: 3, P1: 'BE' }), completeAnswers({ S1_6: 'free text' })].map((answers, i) => {
      const result = validator.validate(answers, 'en');
      if (!result.ok) throw new Error('fixture invalid');
      const id = new Types.ObjectId();
      const profile = { country: String(answers.P1), institutionType: 'ivet_school', role: 'head' };
      // The shape responses had before records: every item, closed and free text.
      return { _id: id, campaign: campaignId, invitation: id, institution: new Types.ObjectId(), revision: 1 + i, definitionVersion: 'old', strands: STRANDS, language: 'en', submittedAt: new Date(Date.UTC(2025, 0, 1 + i)), data: result.data, items: result.items, profile };
    });
    await platform.models.Response.collection.insertMany(old);
    await platform.models.Claim.deleteMany({ _id: RECORDS_MIGRATION });
    const existing = await platform.models.AnalyticRecord.countDocuments();

    const progress: number[] = [];
    const written = await migrateRecords(platform.models, platform.tagKey, isText, platform.clock.now, (read) => progress.push(read));
    expect(written).toBe(3);
    expect(progress.at(-1)).toBe(await platform.models.Response.countDocuments());
    for (const response of old) {
      const record = decode((await storedRecord(response._id))!);
      expect(record.items).toEqual(response.items.filter((item) => !isText(item.question)));
      expect(record).toMatchObject({ campaign: String(campaignId), revision: response.revision, submittedAt: response.submittedAt, profile: response.profile });
    }
    expect(await platform.models.AnalyticRecord.countDocuments()).toBe(existing + 3);

    // Marked done: a second run returns at once. Even forced (marker removed, as after a cut), it writes nothing.
    const snapshot = await platform.models.AnalyticRecord.find({}).sort({ _id: 1 }).lean();
    const head = await journalHead(platform.models);
    expect(await migrateRecords(platform.models, platform.tagKey, isText, platform.clock.now)).toBe(0);
    await platform.models.Claim.deleteMany({ _id: RECORDS_MIGRATION });
    expect(await migrateRecords(platform.models, platform.tagKey, isText, platform.clock.now)).toBe(0);
    expect(await platform.models.AnalyticRecord.find({}).sort({ _id: 1 }).lean()).toEqual(snapshot);
    expect(await journalHead(platform.models)).toBe(head);
  });
});

describe('several processes', () => {
  it('journal entries claimed by two connections at once are gap-free and name every record once', async () => {
    const start = await journalHead(platform.models);
    const ids = Array.from({ length: 40 }, () => new Types.ObjectId());
    await Promise.all([
      ...ids.slice(0, 20).map((id) => appendJournal(platform.models, [id])),
      ...ids.slice(20).map((id) => appendJournal(otherModels, [id])),
    ]);
    const entries = [];
    for (let n = start + 1; n <= start + 40; n++) entries.push(await platform.models.EvidenceJournal.findById(journalId(n)).lean());
    expect(entries.every(Boolean)).toBe(true);
    expect(new Set(entries.map((e) => String(e!.r)))).toEqual(new Set(ids.map(String)));
    expect(await journalHead(otherModels)).toBe(start + 40);
  });

  it('a record stored through one instance reaches a follower on another connection, and so does its removal', async () => {
    const sink = new CollectingSink();
    const follower = new RecordFollower(otherModels, sink, decode, await journalHead(otherModels), { pollMs: 100 });
    // Nothing changed: a poll applies nothing.
    expect(await follower.poll()).toBe(0);

    follower.start();
    try {
      const { invitation, contact } = await submitted();
      const id = String(invitation._id);
      await eventually(() => sink.records.has(id), () => Promise.resolve());
      expect(sink.records.get(id)).toEqual(decode((await storedRecord(invitation._id))!));

      const deps = { models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set<string>() };
      await erasePerson(deps, { email: contact.email, mode: 'delete', actor: 'test' });
      await eventually(() => !sink.records.has(id), () => Promise.resolve());
    } finally {
      await follower.stop();
    }
  });

  it('a load right after hundreds of records were written does not read them again, yet follows an intent whose record lands after the load', async () => {
    await invalidateSnapshot(platform.models);
    const campaign = new Types.ObjectId();
    const source = (revision: number) => ({ _id: new Types.ObjectId(), campaign, institution: 't:burst', revision, submittedAt: new Date(), profile: { country: 'AT' }, data: completeAnswers() });
    // A burst as seed:demo or a migration writes: intents first, then the records (some at a second revision), all within the grace before the load.
    const burst = [...Array.from({ length: 280 }, () => recordOf(source(1), isText)), ...Array.from({ length: 20 }, () => recordOf(source(2), isText))];
    await journalIntents(platform.models, burst.flatMap((r) => (r.revision === 2 ? [{ r: r._id, v: 1 }, { r: r._id, v: 2 }] : [{ r: r._id, v: 1 }])));
    await platform.models.AnalyticRecord.collection.insertMany(burst);
    // A writer between its intent and its record while the load reads.
    const late = recordOf(source(1), isText);
    await journalIntents(platform.models, [{ r: late._id, v: 1 }]);

    const sink = new CollectingSink();
    const follower = new RecordFollower(otherModels, sink, decode, 0, { pollMs: 100, compactEveryMs: 0 });
    try {
      await follower.load();
      expect(sink.records.has(String(late._id))).toBe(false);
      await platform.models.AnalyticRecord.collection.insertOne(late);
      await follower.poll();

      expect(sink.records.get(String(late._id))).toEqual(decode(late));
      expect(sink.records.size).toBe(await platform.models.AnalyticRecord.countDocuments());
      // Halving to the start of the burst, not one look-up per entry; only the records the load had not read at their revision are read (the late one, and those of earlier tests' removals, a few dozen): not the burst's.
      expect(follower.reads.lookBack).toBeLessThan(40);
      expect(follower.reads.records).toBeLessThan(burst.length / 4);
    } finally {
      await follower.stop();
    }
  });

  it('a load right after a burst of more entries than a pass needs reads them in one pass over the journal, not one look-up each, and still follows an intent whose record lands after the load', async () => {
    await invalidateSnapshot(platform.models);
    const campaign = new Types.ObjectId();
    const source = () => ({ _id: new Types.ObjectId(), campaign, institution: 't:pass', revision: 1, submittedAt: new Date(), profile: { country: 'AT' }, data: completeAnswers() });
    const burst = Array.from({ length: 600 }, () => recordOf(source(), isText));
    await journalIntents(platform.models, burst.map((r) => ({ r: r._id, v: 1 })));
    await platform.models.AnalyticRecord.collection.insertMany(burst);
    const late = recordOf(source(), isText);
    await journalIntents(platform.models, [{ r: late._id, v: 1 }]);

    const sink = new CollectingSink();
    const follower = new RecordFollower(otherModels, sink, decode, 0, { pollMs: 100, compactEveryMs: 0 });
    try {
      await follower.load();
      await platform.models.AnalyticRecord.collection.insertOne(late);
      await follower.poll();

      expect(sink.records.get(String(late._id))).toEqual(decode(late));
      expect(sink.records.size).toBe(await platform.models.AnalyticRecord.countDocuments());
      expect(follower.sequence).toBe(await journalHead(platform.models));
      // The burst's entries came in the pass; by _id only those after the head noted before the load (the late intent) and the look-ups that find the end.
      expect(follower.reads.entriesInPasses).toBeGreaterThanOrEqual(burst.length);
      expect(follower.reads.entries).toBeLessThan(50);
    } finally {
      await follower.stop();
    }
  });

  it('followEvidence loads every record once, then follows what another instance stores during and after the load', async () => {
    const campaign = await submitted();
    const sink = new CollectingSink();
    const following = followEvidence(otherModels, sink, { catalogue, pollMs: 100 });
    try {
      const loaded = await following.ready;
      expect(loaded.records).toBe(await platform.models.AnalyticRecord.countDocuments());
      expect(sink.records.get(String(campaign.invitation._id))).toEqual(decode((await storedRecord(campaign.invitation._id))!));
      const later = await submitted(completeAnswers({ S1_5: 4 }), { campaignId: campaign.campaignId });
      await eventually(() => sink.records.has(String(later.invitation._id)), () => Promise.resolve());
      expect(sink.records.size).toBe(await platform.models.AnalyticRecord.countDocuments());
    } finally {
      await following.stop();
    }
  });
});
