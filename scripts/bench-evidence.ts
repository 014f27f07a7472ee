/**
 * npm run bench:evidence — how long the full evidence dashboard takes on 50,000
 * responses, against the time to read the same responses once with no
 * computation. Uses a fresh database: on MONGODB_URI if set, else an embedded
 * FerretDB started in a temporary directory. Prints figures; asserts nothing.
 *
 *   BENCH_RESPONSES=5000 npm run bench:evidence   (a smaller run)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Types } from 'mongoose';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { DEFAULT_THRESHOLDS } from '../server/evidence/disclosure.ts';
import { DIMENSION_NAMES, type EvidenceFilter } from '../server/evidence/evidence-filter.ts';
import { EvidenceService } from '../server/evidence/indicator.service.ts';
import { buildCatalogue } from '../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { recordOf, textQuestionsOf } from '../server/evidence/analytic-record.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';

const RESPONSES = Number(process.env.BENCH_RESPONSES ?? 50_000);
const INSTITUTIONS = Math.max(20, Math.round(RESPONSES / 12));
/** Distinct validated answer sets, reused with other profiles: validating 50,000 would dominate the set-up. */
const ANSWER_POOL = 400;
const STRANDS = ['S1', 'S2', 'S3', 'S4'];

async function main() {
  let dataDir: string | undefined;
  let engine: Awaited<ReturnType<typeof startEmbeddedEngine>> | undefined;
  let base = process.env.MONGODB_URI?.replace(/\/[^/]*$/, '');
  if (!base) {
    dataDir = mkdtempSync(join(tmpdir(), 'bench-evidence-'));
    engine = await startEmbeddedEngine({ dataDir });
    base = engine.uri;
  }
  const dbName = `bench_evidence_${randomBytes(4).toString('hex')}`;
  const connection = await connect(`${base}/${dbName}`);
  const models = defineModels(connection);
  try {
    await ensureIndexes(models);
    console.log(`Engine: ${engine ? 'embedded FerretDB' : 'MongoDB (MONGODB_URI)'}; generating ${RESPONSES.toLocaleString('en')} responses from ${INSTITUTIONS} institutions ...`);

    const random = randomSource(2026);
    const registry = new QuestionnaireRegistry();
    const catalogue = buildCatalogue(loadSurveyLibrary());
    const institutions = Array.from({ length: INSTITUTIONS }, (_, i) => ({ id: new Types.ObjectId(), ...syntheticInstitution(random, i) }));
    const pool = [];
    while (pool.length < ANSWER_POOL) {
      const result = validatedResponse(registry, syntheticAnswers(random, institutions[pool.length % institutions.length]!), STRANDS);
      if (result.ok) pool.push(result);
    }
    const campaign = new Types.ObjectId();
    const isText = textQuestionsOf(catalogue);
    const started = Date.now();
    const batch: object[] = [];
    for (let i = 0; i < RESPONSES; i++) {
      const institution = institutions[i % institutions.length]!;
      const answers = pool[random.int(0, pool.length - 1)]!;
      // The profile of the institution the response is stored for, the answers of a pooled validated set.
      const profile = { ...answers.profile, country: institution.country, institutionType: institution.type, size: institution.size, erasmus: institution.erasmus, location: institution.location };
      batch.push({
        campaign,
        invitation: new Types.ObjectId(),
        institution: institution.id,
        revision: 1,
        definitionVersion: answers.version,
        strands: STRANDS,
        language: 'en',
        submittedAt: new Date(Date.UTC(2026, 2, 1) + i * 1000),
        data: answers.data,
        items: answers.items,
        profile,
      });
      if (batch.length === 1000 || i === RESPONSES - 1) {
        const docs = batch.splice(0) as Array<Parameters<typeof recordOf>[0] & { invitation: Types.ObjectId }>;
        await models.Response.collection.insertMany(docs as never[]);
        // The analytic record written beside each response (the evidence reads only these).
        await models.AnalyticRecord.collection.insertMany(docs.map((doc) => recordOf({ ...doc, _id: doc.invitation }, isText)));
      }
    }
    console.log(`Stored in ${((Date.now() - started) / 1000).toFixed(1)} s.`);

    // The baseline: read every response once, as the evidence would, and do nothing with it.
    console.log('Reading every response once ...');
    let read = 0;
    const readStart = performance.now();
    for await (const _ of models.Response.find({ campaign }, { institution: 1, submittedAt: 1, profile: 1, items: 1 }).lean().cursor({ batchSize: 500 })) {
      read += 1;
      if (read % 10_000 === 0) console.log(`  ${read.toLocaleString('en')} read after ${((performance.now() - readStart) / 1000).toFixed(1)} s`);
    }
    const readMs = performance.now() - readStart;
    console.log(`Single read, no computation:            ${readMs.toFixed(0)} ms (${read.toLocaleString('en')} responses)`);

    const evidence = new EvidenceService({ models, catalogue, thresholds: DEFAULT_THRESHOLDS, pollMs: 0 });
    console.log('Loading the analytic records into memory (cold load) ...');
    const loadStart = performance.now();
    await evidence.ready();
    const loadMs = performance.now() - loadStart;
    console.log(`Cold load of the records:               ${loadMs.toFixed(0)} ms (ratio to the plain read ${(loadMs / readMs).toFixed(2)}; ${evidence.records.toLocaleString('en')} records)`);
    const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
    // The full dashboard: every indicator and distribution overall and by each dimension.
    const dashboard = async () => {
      await evidence.tables(base);
      for (const dimension of DIMENSION_NAMES) await evidence.tables({ ...base, breakdown: [dimension] });
    };
    console.log('Full dashboard, cold ...');
    const coldStart = performance.now();
    await dashboard();
    const coldMs = performance.now() - coldStart;
    console.log(`Full dashboard after the load:          ${coldMs.toFixed(0)} ms`);
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await dashboard();
      warm.push(performance.now() - t);
    }
    const warmMs = warm.sort((a, b) => a - b)[2]!;
    console.log('Full dashboard after a response arrives ...');
    const extra = pool[0]!;
    evidence.apply({ id: 'extra', campaign: String(campaign), institution: String(institutions[0]!.id), revision: 1, submittedAt: new Date(), profile: extra.profile, items: extra.items });
    const afterInvalidate = performance.now();
    await dashboard();
    const invalidatedMs = performance.now() - afterInvalidate;
    // A filter on one country is a slice of the counts already read; a cross-tab needs its own read.
    const country = institutions[0]!.country;
    const filterStart = performance.now();
    await evidence.tables({ ...base, where: { country: [country] } });
    const filterMs = performance.now() - filterStart;
    console.log('One country by role (a cross-tab), cold ...');
    const crossStart = performance.now();
    await evidence.tables({ ...base, where: { country: [country] }, breakdown: ['role'] });
    const crossMs = performance.now() - crossStart;

    console.log(`\nResponses read:                         ${read.toLocaleString('en')}`);
    console.log(`Single read, no computation:            ${readMs.toFixed(0)} ms`);
    console.log(`Cold load of the records:               ${loadMs.toFixed(0)} ms  (ratio to the plain read ${(loadMs / readMs).toFixed(2)})`);
    console.log(`Full dashboard after the load:          ${coldMs.toFixed(0)} ms`);
    console.log(`Full dashboard, warm (median of 5):     ${warmMs.toFixed(1)} ms  (target < 50 ms)`);
    console.log(`After a response arrives (no read):     ${invalidatedMs.toFixed(0)} ms`);
    console.log(`One country, after the above:           ${filterMs.toFixed(0)} ms  (no new read)`);
    console.log(`One country by role (a cross-tab):      ${crossMs.toFixed(0)} ms  (from memory)`);
    console.log(`Memory (RSS):                           ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB`);
  } finally {
    await connection.dropDatabase().catch(() => undefined);
    await connection.close();
    await engine?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
