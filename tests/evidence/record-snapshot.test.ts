import { inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import mongoose, { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { defineModels, type Models } from '../../server/db/models.ts';
import {
  compactJournal,
  journalFloor,
  journalHead,
  journalId,
  journalTestHooks,
  RecordFollower,
  recordOf,
  writeRecord,
  type AnalyticRecordDoc,
  type LoadResult,
} from '../../server/evidence/analytic-record.ts';
import type { EvidenceRecord } from '../../server/evidence/evidence-record.ts';
import { INSTITUTION_TAGS_MIGRATION, migrateInstitutionTags } from '../../server/evidence/institution-tag.ts';
import { DEFAULT_THRESHOLDS } from '../../server/evidence/disclosure.ts';
import { EvidenceService } from '../../server/evidence/indicator.service.ts';
import { buildSnapshot, currentSnapshot, invalidateSnapshot, snapshotTestHooks } from '../../server/evidence/record-snapshot.ts';
import { erasePerson } from '../../server/privacy/privacy.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { catalogue, CollectingSink, decode, isText, recordPlayer as playRecords } from '../helpers/evidence-records.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

/**
 * A process starting up reads the packed snapshot of the records and the
 * journal after it (record-snapshot.ts) instead of every record: it must end
 * with exactly what reading every record gives, through revisions, removals,
 * compaction, erasures and migrations, and with two processes building at once.
 */

const STRANDS = ['S1', 'S2', 'S3', 'S4'];
/** Short graces, so that compaction may remove entries a few hundred milliseconds old. */
const timings = { graceMs: 50, clockSkewMs: 0, leaseMs: 60_000, compactEveryMs: 0 };

let platform: TestPlatform;
/** A second connection to the same database, as another process of the platform has. */
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A cold load in another process: what it holds, and how it loaded. */
async function coldLoad(): Promise<{ records: Map<string, EvidenceRecord>; loaded: LoadResult }> {
  const sink = new CollectingSink();
  const follower = new RecordFollower(otherModels, sink, decode, 0, timings);
  const loaded = await follower.load();
  await follower.stop();
  return { records: sink.records, loaded };
}

/** Every stored record, decoded: what a load of every record gives. */
async function everyStoredRecord() {
  const docs = await platform.models.AnalyticRecord.find({}).lean<AnalyticRecordDoc[]>();
  return new Map(docs.map((doc) => [String(doc._id), decode(doc)]));
}

/** Every line of every bucket stored, whichever generation. */
async function everyBucketLine(): Promise<string[]> {
  const buckets = await platform.models.EvidenceSnapshotBucket.collection.find({}).toArray();
  return buckets.flatMap((bucket) => {
    const binary = bucket.d as unknown as { buffer: Uint8Array; position: number };
    return inflateRawSync(binary.buffer.subarray(0, binary.position)).toString('utf8').split('\n');
  });
}

/** Twelve validated answer sets, in four countries. */
function answerPool() {
  const { validator } = platform.questionnaires.forStrands(STRANDS);
  return ['AT', 'BE', 'DE', 'FR'].flatMap((country) =>
    [1, 3, 5].map((score) => {
      const result = validator.validate(completeAnswers({ P1: country, S1_5: score }), 'en');
      if (!result.ok) throw new Error('fixture invalid');
      return { data: result.data, profile: { country, role: 'head', institutionType: 'ivet_school' } };
    }),
  );
}

/** One change: a new response, the next revision of one (another profile and answers), or its removal. */
const stepArbitrary = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('submit' as const), respondent: fc.integer({ min: 0, max: 14 }), answers: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), respondent: fc.integer({ min: 0, max: 14 }) }) },
);

/** Plays changes on the records as the respondent path and the erasure do (journal intent, then record). */
function recordPlayer(campaign: Types.ObjectId) {
  return playRecords(platform.models, campaign, answerPool(), { respondents: 15, institutions: 4, minuteOf: (_, revision) => revision });
}

describe('a cold load from the snapshot and the journal after it', () => {
  it('holds exactly what loading every record holds, after random changes before and after the snapshot and across compactions', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArbitrary, { minLength: 5, maxLength: 25 }), fc.array(stepArbitrary, { minLength: 2, maxLength: 25 }), fc.array(stepArbitrary, { minLength: 1, maxLength: 15 }), async (before, after, later) => {
        const play = recordPlayer(new Types.ObjectId());
        await play(before);
        expect(await buildSnapshot(platform.models, { ...timings, afterEntries: 0, bucketRecords: 7 })).toMatchObject({ built: true });
        await play(after);
        let cold = await coldLoad();
        expect(cold.loaded.fromSnapshot).toBe(true);
        expect(cold.records).toEqual(await everyStoredRecord());

        // Compaction keeps what a load from the snapshot follows, however far the followers are.
        await sleep(4 * (timings.graceMs + timings.clockSkewMs));
        await compactJournal(platform.models, timings);
        const { pointer } = await currentSnapshot(platform.models);
        expect(await journalFloor(platform.models)).toBeLessThanOrEqual(pointer!.f! + 1);
        cold = await coldLoad();
        expect(cold.loaded.fromSnapshot).toBe(true);
        expect(cold.records).toEqual(await everyStoredRecord());

        // A new generation from the last one and the journal, more changes, then compaction past the first.
        expect(await buildSnapshot(platform.models, { ...timings, afterEntries: 0, bucketRecords: 7 })).toMatchObject({ built: true, incremental: true });
        await play(later);
        await sleep(4 * (timings.graceMs + timings.clockSkewMs));
        await compactJournal(platform.models, timings);
        expect(await journalFloor(platform.models)).toBeGreaterThan(pointer!.f! + 1);
        cold = await coldLoad();
        expect(cold.loaded.fromSnapshot).toBe(true);
        expect(cold.records).toEqual(await everyStoredRecord());
      }),
      { numRuns: 4, seed: 20261201 },
    );
  });

  it('a record whose intent came before the snapshot and whose write came after it is in the next cold load', async () => {
    const [answers] = answerPool();
    /** Starts a write and holds it between its journal intent and its record, as a slow writer. */
    const slowWrite = async () => {
      const record = recordOf({ _id: new Types.ObjectId(), campaign: new Types.ObjectId(), institution: 't:slow', revision: 1, submittedAt: new Date(), ...answers! }, isText);
      let release!: () => void;
      const paused = new Promise<void>((resolve) => {
        journalTestHooks.afterIntent = () => {
          resolve();
          return new Promise<void>((go) => (release = go));
        };
      });
      const writing = writeRecord(platform.models, record);
      await paused;
      journalTestHooks.afterIntent = undefined;
      return { record, finish: () => (release(), writing) };
    };
    const expectInColdLoad = async (record: AnalyticRecordDoc) => {
      const cold = await coldLoad();
      expect(cold.loaded.fromSnapshot).toBe(true);
      expect(cold.records.get(String(record._id))).toEqual(decode(record));
      expect(cold.records).toEqual(await everyStoredRecord());
    };

    // Built from every record, the intent within the grace before the build.
    await invalidateSnapshot(platform.models);
    const first = await slowWrite();
    expect(await buildSnapshot(platform.models, { ...timings, graceMs: 60_000, afterEntries: 0 })).toMatchObject({ built: true, incremental: false });
    await first.finish();
    await expectInColdLoad(first.record);

    // Built from the last generation, the intent older than the grace: still open, so still followed.
    const second = await slowWrite();
    await sleep(4 * (timings.graceMs + timings.clockSkewMs));
    expect(await buildSnapshot(platform.models, { ...timings, afterEntries: 0 })).toMatchObject({ built: true, incremental: true });
    await second.finish();
    await expectInColdLoad(second.record);
  });

  it('reads every record when the journal after the snapshot is no longer whole, and still holds exactly the stored records', async () => {
    const play = recordPlayer(new Types.ObjectId());
    await play([{ kind: 'submit', respondent: 0, answers: 0 }, { kind: 'submit', respondent: 1, answers: 4 }]);
    await buildSnapshot(platform.models, { ...timings, afterEntries: 0 });
    await play([{ kind: 'submit', respondent: 0, answers: 7 }, { kind: 'remove', respondent: 1 }]);
    // As a compaction that knew nothing of snapshots would leave it: the floor raised past the snapshot's position.
    const head = await journalHead(platform.models);
    await platform.models.EvidenceFollower.collection.insertOne({ _id: `floor:${journalId(head)}`, at: new Date() } as never);
    await platform.models.EvidenceJournal.deleteMany({ _id: { $lt: journalId(head) } });
    const cold = await coldLoad();
    expect(cold.loaded.fromSnapshot).toBeFalsy();
    expect(cold.records).toEqual(await everyStoredRecord());
  });

  /**
   * A process loads again while it follows (a page asks for every campaign,
   * or the records changed in a way no entry told): its timer keeps polling.
   * Both move the follower's position; side by side, each counted the same
   * entries past it, so it ran ahead of the journal and skipped what came
   * next (the auditor's views of one campaign then disagreed on CI).
   */
  it('polls asked while a load is under way wait for it: the follower ends at the journal head and follows what comes next', async () => {
    const play = recordPlayer(new Types.ObjectId());
    await play(Array.from({ length: 15 }, (_, respondent) => ({ kind: 'submit' as const, respondent, answers: respondent })));
    expect(await buildSnapshot(platform.models, { ...timings, afterEntries: 0 })).toMatchObject({ built: true });
    await play(Array.from({ length: 14 }, (_, respondent) => ({ kind: 'submit' as const, respondent, answers: respondent + 1 })));

    const sink = new CollectingSink();
    const follower = new RecordFollower(otherModels, sink, decode, 0, timings);
    let loaded = false;
    const loading = follower.load().finally(() => (loaded = true));
    // Polls one after another for as long as the load runs, as the timer does.
    let polls = 0;
    while (!loaded) {
      await follower.poll();
      polls += 1;
    }
    expect((await loading).fromSnapshot).toBe(true);
    expect(polls).toBeGreaterThan(0);
    expect(follower.sequence).toBe(await journalHead(platform.models));

    await play([{ kind: 'submit', respondent: 14, answers: 2 }]);
    await follower.poll();
    await follower.stop();
    expect(follower.sequence).toBe(await journalHead(platform.models));
    expect(sink.records).toEqual(await everyStoredRecord());
  });
});

describe('erasure and migrations', () => {
  it('after "delete the answers" of a respondent no bucket holds their record, and a cold load equals the full load', async () => {
    const deps = { models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set(catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name)) };
    const submitted = [];
    for (const country of ['AT', 'DE', 'FR']) {
      const invited = await createInvitedContact(platform);
      await respondent(platform, invited.path, invited.invitation.tokenHash).submit({ data: completeAnswers({ P1: country, S1_5: country === 'DE' ? 2 : 4 }), baseRevision: 0, language: 'en' }).expect(201);
      submitted.push(invited);
    }
    const [erased, forgotten] = submitted;
    const answers = (await platform.models.AnalyticRecord.findById(erased!.invitation._id).lean<AnalyticRecordDoc>())!.a;
    await buildSnapshot(platform.models, { ...timings, afterEntries: 0, bucketRecords: 2 });
    expect((await everyBucketLine()).some((line) => line.startsWith(String(erased!.invitation._id)))).toBe(true);

    await erasePerson(deps, { email: erased!.contact.email, mode: 'delete', actor: 'test' });
    await erasePerson(deps, { email: forgotten!.contact.email, mode: 'forget', actor: 'test' });
    const lines = await everyBucketLine();
    for (const gone of [erased, forgotten]) expect(lines.some((line) => line.includes(String(gone!.invitation._id)))).toBe(false);
    expect(lines.some((line) => line.includes(answers))).toBe(false);
    // The journal after the snapshot has the erasures' scrubbed entries: the load passes them, the snapshot never held those records.
    const cold = await coldLoad();
    expect(cold.loaded.fromSnapshot).toBe(true);
    expect(cold.records).toEqual(await everyStoredRecord());
    expect(cold.records.has(String(erased!.invitation._id))).toBe(false);
  });

  it('a follower that meets the entries an erasure blanked takes the erased records out by _id and reads no other record again', async () => {
    const deps = { models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set(catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name)) };
    const submitted = [];
    for (const country of ['AT', 'BE', 'DE', 'FR']) {
      const invited = await createInvitedContact(platform);
      await respondent(platform, invited.path, invited.invitation.tokenHash).submit({ data: completeAnswers({ P1: country }), baseRevision: 0, language: 'en' }).expect(201);
      submitted.push(invited);
    }
    await buildSnapshot(platform.models, { ...timings, afterEntries: 0, bucketRecords: 2 });
    // Another process, loaded from the snapshot; every record it reads from the database is decoded once.
    let read = 0;
    const sink = new CollectingSink();
    const follower = new RecordFollower(otherModels, sink, (doc) => (read++, decode(doc)), 0, timings);
    try {
      expect((await follower.load()).fromSnapshot).toBe(true);
      expect(sink.records).toEqual(await everyStoredRecord());
      const [deleted, forgotten] = submitted;
      await erasePerson(deps, { email: deleted!.contact.email, mode: 'delete', actor: 'test' });
      await erasePerson(deps, { email: forgotten!.contact.email, mode: 'forget', actor: 'test' });
      // The follower has not polled since: it meets the erasures' entries blanked, naming no record.
      read = 0;
      await follower.poll();
      expect(sink.records).toEqual(await everyStoredRecord());
      expect(sink.removed).toEqual(expect.arrayContaining([String(deleted!.invitation._id), String(forgotten!.invitation._id)]));
      // Read: the forgotten person's anonymous record (journalled as any new record), and nothing else.
      expect(read).toBe(1);
    } finally {
      await follower.stop();
    }
  });

  it('a build that read the records before an erasure loses its switch and leaves no bucket behind', async () => {
    const invited = await createInvitedContact(platform);
    await respondent(platform, invited.path, invited.invitation.tokenHash).submit({ data: completeAnswers({ P1: 'BE' }), baseRevision: 0, language: 'en' }).expect(201);
    const deps = { models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set<string>() };
    snapshotTestHooks.beforeSwitch = () => erasePerson(deps, { email: invited.contact.email, mode: 'delete', actor: 'test' }).then(() => undefined);
    try {
      // Another process builds (the person's record included), and the erasure runs before its switch.
      expect(await buildSnapshot(otherModels, { ...timings, afterEntries: 0, bucketRecords: 2 })).toMatchObject({ built: false, reason: 'lost' });
    } finally {
      snapshotTestHooks.beforeSwitch = undefined;
    }
    expect((await everyBucketLine()).some((line) => line.includes(String(invited.invitation._id)))).toBe(false);
    const cold = await coldLoad();
    expect(cold.records).toEqual(await everyStoredRecord());
  });

  it('two processes building at once never name a generation that is incomplete or mixed', async () => {
    const play = recordPlayer(new Types.ObjectId());
    await play(fc.sample(stepArbitrary, { numRuns: 20, seed: 9 }));
    const [a, b] = await Promise.all([buildSnapshot(platform.models, { ...timings, afterEntries: 0, bucketRecords: 3 }), buildSnapshot(otherModels, { ...timings, afterEntries: 0, bucketRecords: 3 })]);
    // One claims the generation and builds it; the other leaves it to that one.
    expect([a, b].filter((result) => result.built)).toHaveLength(1);
    expect([a, b].map((result) => result.reason ?? 'built').sort()).toEqual(['built', 'claimed']);
    const { pointer } = await currentSnapshot(platform.models);
    // The named generation is whole: every bucket it counts is there, and they hold exactly its records.
    const named = await platform.models.EvidenceSnapshotBucket.collection.countDocuments({ _id: { $regex: `^${pointer!.g}:` } as never });
    expect(named).toBe(pointer!.buckets);
    const cold = await coldLoad();
    expect(cold.loaded.fromSnapshot).toBe(true);
    expect(cold.records).toEqual(await everyStoredRecord());
  });

  it('the institution-tag migration leaves no snapshot: the next load reads every record', async () => {
    await buildSnapshot(platform.models, { ...timings, afterEntries: 0 });
    expect((await currentSnapshot(platform.models)).pointer!.g).toBeDefined();
    await platform.models.Claim.deleteMany({ _id: INSTITUTION_TAGS_MIGRATION });
    await migrateInstitutionTags(platform.models, platform.tagKey, platform.clock.now);
    expect((await currentSnapshot(platform.models)).pointer!.g).toBeUndefined();
    const cold = await coldLoad();
    expect(cold.loaded.fromSnapshot).toBeFalsy();
    expect(cold.records).toEqual(await everyStoredRecord());
  });
});

describe('one build per generation', () => {
  it('a claim whose builder went quiet for longer than the lease is taken over, and the late builder loses its switch', async () => {
    const play = recordPlayer(new Types.ObjectId());
    await play(fc.sample(stepArbitrary, { numRuns: 6, seed: 5 }));
    await invalidateSnapshot(platform.models);
    // Long enough for the stalled build to reach its switch on a loaded machine (300 ms was not: the claim went quiet before the second builder looked).
    const lease = { ...timings, leaseMs: 2_000, afterEntries: 0 };
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const atSwitch = new Promise<void>((resolve) => (reached = resolve));
    snapshotTestHooks.beforeSwitch = () => (reached(), held);
    try {
      const stalled = buildSnapshot(platform.models, lease);
      await atSwitch;
      snapshotTestHooks.beforeSwitch = undefined;
      expect(await buildSnapshot(otherModels, lease)).toMatchObject({ built: false, reason: 'claimed' });
      await sleep(lease.leaseMs + 100);
      expect(await buildSnapshot(otherModels, lease)).toMatchObject({ built: true });
      release();
      expect(await stalled).toMatchObject({ built: false, reason: 'lost' });
    } finally {
      snapshotTestHooks.beforeSwitch = undefined;
      release();
    }
    const cold = await coldLoad();
    expect(cold.loaded.fromSnapshot).toBe(true);
    expect(cold.records).toEqual(await everyStoredRecord());
  });

  it('of two evidence services on one database that both find the snapshot due, one builds it and the other uses it', async () => {
    const play = recordPlayer(new Types.ObjectId());
    await play(fc.sample(stepArbitrary, { numRuns: 12, seed: 3 }));
    // No generation: each service's follower wants one at its first compaction.
    await invalidateSnapshot(platform.models);
    let builds = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let firstBuildHeld!: () => void;
    const firstBuild = new Promise<void>((resolve) => (firstBuildHeld = resolve));
    // Every build that read the records and wrote its buckets passes here once, before its switch; the first is held there.
    snapshotTestHooks.beforeSwitch = async () => {
      builds += 1;
      firstBuildHeld();
      await held;
    };
    const service = (models: Models) => new EvidenceService({ models, catalogue, tagKey: platform.tagKey, thresholds: DEFAULT_THRESHOLDS, pollMs: 20, journal: { ...timings, compactEveryMs: 50 } });
    const services = [service(platform.models), service(otherModels)];
    try {
      await Promise.all(services.map((s) => s.ready()));
      // However long a build takes to get there on a busy machine (its counts are made in a thread of its own).
      await firstBuild;
      expect(builds).toBe(1);
      // Each service comes to compaction every 50 ms: ten more turns each while the first build is held.
      await sleep(500);
      expect(builds).toBe(1);
      release();
      // Until the switch is made (the test's timeout guards against a hang, not a time budget).
      while (!(await currentSnapshot(platform.models)).pointer?.g) await sleep(20);
      await sleep(300);
      expect(builds).toBe(1);
      const { pointer } = await currentSnapshot(platform.models);
      // Its record buckets and the chunks of its counts (a service's build keeps them), no more.
      expect(pointer!.c).toBeGreaterThan(0);
      expect(await platform.models.EvidenceSnapshotBucket.collection.countDocuments({ _id: { $regex: `^${pointer!.g}:` } as never })).toBe(pointer!.buckets! + pointer!.c!);
      const cold = await coldLoad();
      expect(cold.loaded.fromSnapshot).toBe(true);
      expect(cold.records).toEqual(await everyStoredRecord());
    } finally {
      snapshotTestHooks.beforeSwitch = undefined;
      release();
      await Promise.all(services.map((s) => s.close()));
    }
  });
});
