import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mongoose, { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { defineModels, type Models } from '../../server/db/models.ts';
import {
  compactJournal,
  journalFloor,
  journalHead,
  journalId,
  RecordFollower,
  removeRecords,
  repairRecord,
  taggedRecordOf,
  writeRecord,
  type AnalyticRecordDoc,
  type StoredSource,
} from '../../server/evidence/analytic-record.ts';
import { institutionTagger } from '../../server/evidence/institution-tag.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { CollectingSink, decode, isText } from '../helpers/evidence-records.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

/** A stored response's record as the respondent path writes it: its institution as the campaign's tag. */
const tagged = (response: StoredSource) => taggedRecordOf(institutionTagger(platform.models, platform.tagKey), response, isText);
const STRANDS = ['S1', 'S2', 'S3', 'S4'];

let platform: TestPlatform;
/** The test's own connection, as another process of the platform has. */
let other: mongoose.Connection;
let otherModels: Models;
let uri: string;
beforeAll(async () => {
  platform = await startTestPlatform();
  uri = `${inject('mongoUri')}/${platform.models.Response.db.name}`;
  other = await mongoose.createConnection(uri).asPromise();
  otherModels = defineModels(other);
});
afterAll(async () => {
  await other.close();
  await platform.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A current response as the respondent path stores it (before its record). */
async function storedResponse(campaign: Types.ObjectId, answers = completeAnswers(), revision = 1) {
  const { validator, version } = platform.questionnaires.forStrands(STRANDS);
  const result = validator.validate(answers, 'en');
  if (!result.ok) throw new Error('fixture invalid');
  const id = new Types.ObjectId();
  const response = { _id: id, campaign, invitation: id, institution: new Types.ObjectId(), revision, definitionVersion: version, strands: STRANDS, language: 'en', submittedAt: new Date(), data: result.data, items: [], profile: { country: String(answers.P1 ?? 'AT') } };
  await platform.models.Response.collection.insertOne(response as never);
  return response;
}

/** Every stored record, decoded: what a follower must hold. */
async function everyStoredRecord() {
  const docs = await platform.models.AnalyticRecord.find({}).lean<AnalyticRecordDoc[]>();
  return new Map(docs.map((doc) => [String(doc._id), decode(doc)]));
}

describe('a writer killed between the journal intent and the record', () => {
  it('another process that keeps running gets the record within the grace plus a poll, without restarting', async () => {
    const sink = new CollectingSink();
    const graceMs = 500;
    const follower = new RecordFollower(otherModels, sink, decode, 0, { pollMs: 100, graceMs, clockSkewMs: 0, compactEveryMs: 0, repair: (id) => repairRecord(otherModels, platform.tagKey, id, isText) });
    await follower.load();
    follower.start();
    try {
      const response = await storedResponse(new Types.ObjectId());
      const child = fork(fileURLToPath(new URL('./crash-writer.ts', import.meta.url)), [uri, String(response._id), platform.tagKey.toString('hex')], { execArgv: ['--import', 'tsx'] });
      const said = await new Promise<string>((resolve) => child.once('message', (m) => resolve(String(m))));
      expect(said).toBe('between the intent and the record');
      const killed = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      child.kill('SIGKILL');
      expect(await killed).toBe('SIGKILL');

      // The intent is there, the record is not: the writer died between them.
      expect(await platform.models.AnalyticRecord.findById(response._id).lean()).toBeNull();
      const id = String(response._id);
      // Polled every 100 ms, repaired once the intent is older than the grace, however long that takes on a busy
      // machine (the test's timeout guards against a hang).
      while (!sink.records.has(id)) await sleep(100);
      expect(sink.records.get(id)).toEqual(decode(await tagged(response)));
      expect(follower.openIntents).toBe(0);
      // The follower wrote it, and so every other process has it too.
      expect(decode((await platform.models.AnalyticRecord.findById(response._id).lean<AnalyticRecordDoc>())!)).toEqual(sink.records.get(id));
    } finally {
      await follower.stop();
    }
  });
});

describe('journal compaction', () => {
  it('removes what every live follower passed; a follower that lagged past it reads every record again and ends with exactly the stored records', async () => {
    const timings = { leaseMs: 400, graceMs: 50, clockSkewMs: 0, compactEveryMs: 0 };
    const campaign = new Types.ObjectId();
    const before = [await storedResponse(campaign), await storedResponse(campaign, completeAnswers({ P1: 'BE' }))];
    for (const r of before) await writeRecord(platform.models, await tagged(r));

    const lagging = new CollectingSink();
    const laggard = new RecordFollower(otherModels, lagging, decode, 0, timings);
    await laggard.load();
    const live = new CollectingSink();
    const follower = new RecordFollower(platform.models, live, decode, 0, timings);
    await follower.load();

    // While the laggard sleeps: new records, a new revision, a removal.
    const later = [await storedResponse(campaign, completeAnswers({ P1: 'DE' })), await storedResponse(campaign, completeAnswers({ P1: 'FR' }))];
    for (const r of later) await writeRecord(platform.models, await tagged(r));
    await writeRecord(platform.models, await tagged({ ...before[1]!, revision: 2, data: { ...before[1]!.data, P1: 'NL' }, profile: { country: 'NL' } }));
    await removeRecords(platform.models, [before[0]!._id]);
    const laggardAt = laggard.sequence;

    await sleep(timings.leaseMs + 100);
    await follower.poll(); // applied everything, and its mark says so
    const head = await journalHead(platform.models);
    expect(follower.sequence).toBe(head);
    const { floor, removed } = await compactJournal(platform.models, timings);
    expect(floor).toBe(head);
    expect(removed).toBeGreaterThan(0);
    expect(await journalFloor(platform.models)).toBe(head);
    expect(await platform.models.EvidenceJournal.exists({ _id: journalId(laggardAt + 1) })).toBeNull();
    expect(await journalHead(otherModels)).toBe(head);

    await laggard.poll();
    const stored = await everyStoredRecord();
    expect(lagging.records).toEqual(stored);
    expect(lagging.records.has(String(before[0]!._id))).toBe(false);
    expect(lagging.records.get(String(before[1]!._id))!.profile.country).toBe('NL');

    // Both go on following from the compacted journal.
    const last = await storedResponse(campaign, completeAnswers({ P1: 'IT' }));
    await writeRecord(otherModels, await tagged(last));
    await laggard.poll();
    await follower.poll();
    const now = await everyStoredRecord();
    expect(lagging.records).toEqual(now);
    expect(live.records).toEqual(now);
    await laggard.stop();
    await follower.stop();
  });
});

describe('a follower and its connection', () => {
  it('when its connection closes, the follower stops polling, so none of its reads reaches a database dropped after it', async () => {
    // A follower polling on after its test had closed the connection and dropped the database once
    // made the embedded engine create that database again under the old one's open files: the engine
    // died of a bus error and every later test file failed.
    const connection = await mongoose.createConnection(uri).asPromise();
    const follower = new RecordFollower(defineModels(connection), new CollectingSink(), decode, 0, { pollMs: 50, graceMs: 500, clockSkewMs: 0, compactEveryMs: 0 });
    await follower.load();
    follower.start();
    expect(follower.following).toBe(true);
    await connection.close();
    expect(follower.following).toBe(false);
  });
});
