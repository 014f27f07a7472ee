/**
 * npm run bench:snapshot-stall — how long the server's event loop stops
 * while a snapshot is built with its counts (record-snapshot.ts buildSnapshot
 * with EvidenceService.countsImage), the counting done on the loop's thread
 * (as before: slices of 1,000 records with setImmediate between, then the
 * settling and the image in one step) against in a worker thread (as now),
 * and a build without counts beside them (the build's own pieces: reading
 * the records, packing and deflating buckets). The longest gap between two
 * turns of a 1 ms interval timer is what a page or respondent request
 * arriving then waits at worst. Fresh embedded database; prints figures and
 * the load average, asserts nothing. Both ways must give the same bytes.
 *
 *   BENCH_RECORDS=20000 BENCH_ROUNDS=2 npm run bench:snapshot-stall
 *   node scripts/run-built.mjs scripts/bench-snapshot-stall.ts   (the built bundle: the worker must load there too)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Types } from 'mongoose';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes, type Models } from '../server/db/models.ts';
import { appendJournal, decodeRecord, flattenerOf, taggedRecordOf, textQuestionsOf, type StoredSource } from '../server/evidence/analytic-record.ts';
import { DEFAULT_THRESHOLDS } from '../server/evidence/disclosure.ts';
import { EvidenceStore } from '../server/evidence/evidence-store.ts';
import { EvidenceService } from '../server/evidence/indicator.service.ts';
import { viewTables } from '../server/evidence/evidence-tally.ts';
import { ACCREDITED_STATUSES, defineIndicators } from '../server/evidence/indicators.ts';
import { institutionTagger } from '../server/evidence/institution-tag.ts';
import { buildCatalogue, type QuestionCatalogue } from '../server/evidence/question-catalogue.ts';
import { buildSnapshot, invalidateSnapshot, unpackBucket, unpackRecord, type CountsOf } from '../server/evidence/record-snapshot.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';
import { loadAverage } from './bench-figures.ts';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const STRANDS = ['S1', 'S2', 'S3', 'S4'];
const load = () => `load ${loadAverage()}`;

/** The counting as it was before the worker (indicator.service.ts at cc10a0d): on this thread, in slices, then settled and imaged in one step. */
function countsOnThisThread(catalogue: QuestionCatalogue): CountsOf {
  const set = defineIndicators(catalogue);
  const spec = { catalogue, ratios: set.ratios, indicatorsOf: set.indicatorsOf, institutionCap: DEFAULT_THRESHOLDS.minInstitutions, accredited: ACCREDITED_STATUSES };
  const flatten = flattenerOf(catalogue);
  return async (buckets) => {
    // Then the records were unpacked from the builder's lines in one go, as here from its buckets.
    const docs = buckets.flatMap((bucket) => unpackBucket(bucket).map(unpackRecord));
    const counts = new EvidenceStore(spec, viewTables());
    for (let i = 0; i < docs.length; i++) {
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
      counts.apply(decodeRecord(docs[i]!, flatten));
    }
    return counts.image();
  };
}

/** Runs the build while a 1 ms timer notes the longest gap between its turns; the build's wall time and that gap. */
async function stallDuring(build: () => Promise<unknown>): Promise<{ wallMs: number; stallMs: number }> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  await build();
  const wallMs = performance.now() - started;
  clearInterval(timer);
  longest = Math.max(longest, performance.now() - last);
  return { wallMs, stallMs: longest };
}

async function seed(models: Models, catalogue: QuestionCatalogue, tagKey: Buffer): Promise<void> {
  const random = randomSource(2026);
  const registry = new QuestionnaireRegistry();
  const institutions = Array.from({ length: Math.max(20, Math.round(RECORDS / 12)) }, (_, i) => ({ id: new Types.ObjectId(), ...syntheticInstitution(random, i) }));
  const pool = [];
  while (pool.length < 400) {
    const result = validatedResponse(registry, syntheticAnswers(random, institutions[pool.length % institutions.length]!), STRANDS);
    if (result.ok) pool.push(result);
  }
  const campaign = new Types.ObjectId();
  const isText = textQuestionsOf(catalogue);
  const tagOf = institutionTagger(models, tagKey);
  const batch: Array<StoredSource & { _id: Types.ObjectId }> = [];
  for (let i = 0; i < RECORDS; i++) {
    const institution = institutions[i % institutions.length]!;
    const answers = pool[random.int(0, pool.length - 1)]!;
    const profile = { ...answers.profile, country: institution.country, institutionType: institution.type, size: institution.size, erasmus: institution.erasmus, location: institution.location };
    const id = new Types.ObjectId();
    batch.push({ _id: id, campaign, invitation: id, institution: institution.id, revision: 1, submittedAt: new Date(Date.UTC(2026, 2, 1) + i * 1000), data: answers.data, profile } as never);
    if (batch.length === 1000 || i === RECORDS - 1) {
      const docs = batch.splice(0);
      await models.AnalyticRecord.collection.insertMany(await Promise.all(docs.map((doc) => taggedRecordOf(tagOf, doc, isText))));
      await appendJournal(models, docs.map((doc) => doc._id));
    }
  }
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-stall-'));
  const engine = await startEmbeddedEngine({ dataDir });
  const connection = await connect(`${engine.uri}/bench_stall_${randomBytes(4).toString('hex')}`);
  const models = defineModels(connection);
  try {
    await ensureIndexes(models);
    const catalogue = buildCatalogue(loadSurveyLibrary());
    const tagKey = randomBytes(32);
    console.log(`Storing ${RECORDS.toLocaleString('en')} analytic records ...  ${load()}`);
    await seed(models, catalogue, tagKey);
    const inWorker = new EvidenceService({ models, catalogue, tagKey, thresholds: DEFAULT_THRESHOLDS, pollMs: 0 }).countsImage;
    const onThread = countsOnThisThread(catalogue);
    const images: Record<string, Buffer | null> = {};
    const keep = (name: string, countsOf: CountsOf): CountsOf => async (buckets) => (images[name] = await countsOf(buckets));
    const ways: Array<[string, CountsOf | undefined]> = [
      ['counts on the loop thread (before)', keep('thread', onThread)],
      ['counts in a worker thread (now)   ', keep('worker', inWorker)],
      ['no counts (the build alone)       ', undefined],
    ];
    // The first build of a run reads every record from a cold engine (1-3 minutes at 50,000 against 15-30 s after): not counted against either way.
    const warm = await stallDuring(() => buildSnapshot(models, { afterEntries: 0 }));
    console.log(`warm-up build, no counts: longest loop stall ${warm.stallMs.toFixed(0)} ms, build ${(warm.wallMs / 1000).toFixed(1)} s  (${load()})`);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, countsOf] of round % 2 ? ways : [...ways].reverse()) {
        await invalidateSnapshot(models);
        const before = load();
        const { wallMs, stallMs } = await stallDuring(() => buildSnapshot(models, { afterEntries: 0, countsOf }));
        console.log(`round ${round}, ${name}: longest loop stall ${stallMs.toFixed(0).padStart(5)} ms, build ${(wallMs / 1000).toFixed(1).padStart(5)} s  (${before} -> ${load()})`);
      }
    }
    console.log(`Same image both ways: ${Boolean(images.thread && images.worker && images.thread.equals(images.worker))} (${images.worker?.length.toLocaleString('en')} bytes)`);
  } finally {
    await connection.close();
    await engine.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
