import fc from 'fast-check';
import mongoose, { Types } from 'mongoose';
import { threadId } from 'node:worker_threads';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { defineModels, type Models } from '../../server/db/models.ts';
import { eraseFromEvidence } from '../../server/evidence/record-snapshot.ts';
import { removeRecords } from '../../server/evidence/analytic-record.ts';
import type { Thresholds } from '../../server/evidence/disclosure.ts';
import { DIMENSION_NAMES, type EvidenceFilter } from '../../server/evidence/evidence-filter.ts';
import { countBuckets } from '../../server/evidence/counts-thread.ts';
import { EvidenceService } from '../../server/evidence/indicator.service.ts';
import { buildSnapshot, currentSnapshot, invalidateSnapshot } from '../../server/evidence/record-snapshot.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { catalogue, recordPlayer as playRecords } from '../helpers/evidence-records.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

/**
 * A snapshot carries its records' counts (record-snapshot.ts, an
 * evidence-store.ts image): a cold load takes them on instead of counting
 * every record, and must show exactly the tables counting gives, with the
 * journal after the snapshot applied on top; counts made for other
 * thresholds are not taken, and the records are counted instead.
 */

const STRANDS = ['S1', 'S2', 'S3', 'S4'];
const timings = { graceMs: 50, clockSkewMs: 0, leaseMs: 60_000, compactEveryMs: 0 };
/** Low enough that a few institutions show figures (the default would suppress every cell here). */
const THRESHOLDS: Thresholds = { minInstitutions: 2, minRespondents: 2 };

let platform: TestPlatform;
/** Another process's connection: the loads happen there. */
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

const service = (thresholds = THRESHOLDS) => new EvidenceService({ models: otherModels, catalogue, tagKey: platform.tagKey, thresholds, pollMs: 0, journal: timings });

/** Every breakdown, two cross-tabs and a filter of one campaign, as text (sums rounded: a revision taken out and put back may leave a trace in the last bits). */
async function everyTable(evidence: EvidenceService, campaign: Types.ObjectId): Promise<string> {
  const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
  const filters: EvidenceFilter[] = [
    base,
    ...DIMENSION_NAMES.map((dimension) => ({ ...base, breakdown: [dimension] })),
    { ...base, breakdown: ['country', 'role'] },
    { ...base, breakdown: ['country', 'institutionType'] },
    { ...base, where: { country: ['AT', 'DE'] }, breakdown: ['role'] },
  ];
  const tables = [];
  for (const filter of filters) tables.push(await evidence.tables(filter));
  return JSON.stringify(tables, (_, v: unknown) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v));
}

/** A cold load in the other process: its tables and how it loaded. */
async function coldLoad(campaign: Types.ObjectId, thresholds = THRESHOLDS) {
  const evidence = service(thresholds);
  await evidence.ready();
  const tables = await everyTable(evidence, campaign);
  const loaded = evidence.lastLoad!;
  await evidence.close();
  return { tables, loaded };
}

/** The tables counting every stored record gives: a cold load with no snapshot. */
async function countedFromEveryRecord(campaign: Types.ObjectId): Promise<string> {
  await invalidateSnapshot(platform.models);
  const { tables, loaded } = await coldLoad(campaign);
  expect(loaded.fromSnapshot).toBeFalsy();
  return tables;
}

/** Eighteen validated answer sets: three countries, two roles, three scores. */
function answerPool() {
  const { validator } = platform.questionnaires.forStrands(STRANDS);
  return ['AT', 'BE', 'DE'].flatMap((country) =>
    ['head', 'teacher'].flatMap((role) =>
      [1, 3, 5].map((score) => {
        const result = validator.validate(completeAnswers({ P1: country, S1_5: score }), 'en');
        if (!result.ok) throw new Error('fixture invalid');
        return { data: result.data, profile: { country, role, institutionType: score === 3 ? 'ivet_school' : 'cvet_provider' } };
      }),
    ),
  );
}

const stepArbitrary = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('submit' as const), respondent: fc.integer({ min: 0, max: 19 }), answers: fc.nat(), late: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), respondent: fc.integer({ min: 0, max: 19 }) }) },
);

/** Plays submissions, revisions (another profile, answers, perhaps an earlier time: S4 once per institution) and removals on the records, as the respondent path and the erasure do. */
function recordPlayer(campaign: Types.ObjectId) {
  return playRecords(platform.models, campaign, answerPool(), { respondents: 20, institutions: 5, minuteOf: (step, revision) => (step.late ? revision * 60 : step.respondent) });
}

describe('a snapshot that carries its counts', () => {
  it('is loaded without counting its records, and shows the tables counting every record gives, with the journal after it applied', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArbitrary, { minLength: 8, maxLength: 30 }), fc.array(stepArbitrary, { minLength: 1, maxLength: 20 }), async (before, after) => {
        const campaign = new Types.ObjectId();
        const play = recordPlayer(campaign);
        await play(before);
        expect(await buildSnapshot(platform.models, { ...timings, afterEntries: 0, countsOf: service().countsImage })).toMatchObject({ built: true });
        expect((await currentSnapshot(platform.models)).pointer!.c).toBeGreaterThan(0);
        const fromCounts = await coldLoad(campaign);
        expect(fromCounts.loaded).toMatchObject({ fromSnapshot: true, fromCounts: true });

        // The revisions, new responses and removals after the snapshot are followed from the journal, on top of the counts.
        await play(after);
        const withJournal = await coldLoad(campaign);
        expect(withJournal.loaded).toMatchObject({ fromSnapshot: true, fromCounts: true });
        expect(withJournal.tables).toBe(await countedFromEveryRecord(campaign));
      }),
      { numRuns: 4, seed: 20261202 },
    );
  });

  it('made for other thresholds are not taken: the records are counted, and the tables are the same', async () => {
    const campaign = new Types.ObjectId();
    const play = recordPlayer(campaign);
    await play(Array.from({ length: 16 }, (_, i) => ({ kind: 'submit' as const, respondent: i, answers: i * 7, late: false })));
    // Counted for a cap of three institutions: this process's layout counts up to two.
    expect(await buildSnapshot(platform.models, { ...timings, afterEntries: 0, countsOf: service({ minInstitutions: 3, minRespondents: 2 }).countsImage })).toMatchObject({ built: true });
    const loaded = await coldLoad(campaign);
    expect(loaded.loaded).toMatchObject({ fromSnapshot: true, fromCounts: false });
    expect(loaded.tables).toBe(await countedFromEveryRecord(campaign));
  });

  it('whose chunk is damaged are not taken: the load counts the records instead of failing', async () => {
    const campaign = new Types.ObjectId();
    const play = recordPlayer(campaign);
    await play(Array.from({ length: 12 }, (_, i) => ({ kind: 'submit' as const, respondent: i, answers: i * 3, late: i % 2 === 0 })));
    expect(await buildSnapshot(platform.models, { ...timings, afterEntries: 0, countsOf: service().countsImage })).toMatchObject({ built: true });
    const { pointer } = await currentSnapshot(platform.models);
    await platform.models.EvidenceSnapshotBucket.collection.updateOne({ _id: `${pointer!.g}:c000000` as never }, { $set: { d: Buffer.from('not deflated counts') } });
    const loaded = await coldLoad(campaign);
    expect(loaded.loaded).toMatchObject({ fromSnapshot: true, fromCounts: false });
    expect(loaded.tables).toBe(await countedFromEveryRecord(campaign));
  });

  it('an erasure keeps no counts holding the erased record, and the next load counts without it', async () => {
    const campaign = new Types.ObjectId();
    const play = recordPlayer(campaign);
    await play(Array.from({ length: 10 }, (_, i) => ({ kind: 'submit' as const, respondent: i, answers: i * 5, late: false })));
    expect(await buildSnapshot(platform.models, { ...timings, afterEntries: 0, countsOf: service().countsImage })).toMatchObject({ built: true });
    const erased = (await platform.models.AnalyticRecord.find({ campaign }).lean())[3]!._id;
    await removeRecords(platform.models, [erased]);
    await eraseFromEvidence(platform.models, [erased]);
    // No chunk of counts anywhere names the erased record.
    const chunks = await platform.models.EvidenceSnapshotBucket.collection.find({ _id: { $regex: ':c' } as never }).toArray();
    const { inflateRawSync } = await import('node:zlib');
    for (const chunk of chunks) {
      const binary = chunk.d as unknown as { buffer: Uint8Array; position: number };
      expect(inflateRawSync(binary.buffer.subarray(0, binary.position)).includes(String(erased))).toBe(false);
    }
    const loaded = await coldLoad(campaign);
    expect(loaded.loaded).toMatchObject({ fromSnapshot: true, fromCounts: false });
    expect(loaded.tables).toBe(await countedFromEveryRecord(campaign));
  });

  it('are made by a server in a worker thread: the bytes counting on its own thread gives, and a load takes them on', async () => {
    const campaign = new Types.ObjectId();
    const play = recordPlayer(campaign);
    await play(Array.from({ length: 14 }, (_, i) => ({ kind: 'submit' as const, respondent: i, answers: i * 11, late: i % 3 === 0 })));
    // No generation: the server's follower builds one at its first compaction, as it does in fieldwork.
    await invalidateSnapshot(platform.models);
    const server = new EvidenceService({ models: platform.models, catalogue, tagKey: platform.tagKey, thresholds: THRESHOLDS, pollMs: 20, journal: { ...timings, compactEveryMs: 20 } });
    await server.ready();
    await vi.waitFor(async () => expect((await currentSnapshot(platform.models)).pointer?.c).toBeGreaterThan(0), { timeout: 120_000, interval: 100 });
    await server.close();
    // Counted in another thread than the server's.
    expect(server.lastCounts?.threadId).toBeGreaterThan(0);
    expect(server.lastCounts?.threadId).not.toBe(threadId);

    // Byte for byte what counting the generation's buckets here gives (the image carries the spec's hash: a load would refuse another).
    const { pointer } = await currentSnapshot(platform.models);
    const bytes = async (id: string) => {
      const doc = await platform.models.EvidenceSnapshotBucket.collection.findOne({ _id: id as never });
      const binary = doc!.d as unknown as { buffer: Uint8Array; position: number };
      return binary.buffer.subarray(0, binary.position);
    };
    const buckets = await Promise.all(Array.from({ length: pointer!.buckets! }, (_, i) => bytes(`${pointer!.g}:${String(i).padStart(6, '0')}`)));
    const chunks = await Promise.all(Array.from({ length: pointer!.c! }, (_, i) => bytes(`${pointer!.g}:c${String(i).padStart(6, '0')}`)));
    const stored = Buffer.concat(chunks.map((chunk) => inflateRawSync(chunk)));
    expect(stored.equals(countBuckets({ catalogue, institutionCap: THRESHOLDS.minInstitutions }, buckets)!)).toBe(true);

    const loaded = await coldLoad(campaign);
    expect(loaded.loaded).toMatchObject({ fromSnapshot: true, fromCounts: true });
    expect(loaded.tables).toBe(await countedFromEveryRecord(campaign));
  });

  it('whose thread fails are not kept: the build goes on without them', async () => {
    const evidence = service();
    expect(await evidence.countsImage([Buffer.from('not a deflated bucket')])).toBeNull();
    await evidence.close();
  });
});
