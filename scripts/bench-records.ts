/**
 * npm run bench:records — what the compact analytic records save: the time to
 * read N full responses (as the evidence read them before records: profile
 * and items) against reading the same N analytic records, and decoding them
 * into what the evidence counts. Also the journal: one poll when nothing
 * changed. Uses a fresh database: on MONGODB_URI if set, else an embedded
 * FerretDB in a temporary directory. Prints figures; asserts nothing.
 *
 *   BENCH_RESPONSES=5000 npm run bench:records   (the default)
 *
 * The submit throughput with the record write ÷ without it:
 * npm run bench:submit -- --records
 */
import { Types } from 'mongoose';
import { appendJournal, decodeRecord, flattenerOf, journalHead, loadRecords, recordOf, RecordFollower, textQuestionsOf, type AnalyticRecordDoc } from '../server/evidence/analytic-record.ts';
import type { EvidenceRecord } from '../server/evidence/evidence-record.ts';
import { buildCatalogue } from '../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { benchDatabase } from './bench-database.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';

const RESPONSES = Number(process.env.BENCH_RESPONSES ?? 5000);
const INSTITUTIONS = Math.max(20, Math.round(RESPONSES / 12));
const ANSWER_POOL = 200;
const STRANDS = ['S1', 'S2', 'S3', 'S4'];

async function main() {
  const database = await benchDatabase('records');
  const { models } = database;
  const catalogue = buildCatalogue(loadSurveyLibrary());
  const isText = textQuestionsOf(catalogue);
  const flatten = flattenerOf(catalogue);
  try {
    console.log(`bench:records  engine=${database.engine}  responses=${RESPONSES.toLocaleString('en')}`);

    const random = randomSource(2026);
    const registry = new QuestionnaireRegistry();
    const institutions = Array.from({ length: INSTITUTIONS }, (_, i) => ({ id: new Types.ObjectId(), ...syntheticInstitution(random, i) }));
    const pool = [];
    while (pool.length < ANSWER_POOL) {
      const result = validatedResponse(registry, syntheticAnswers(random, institutions[pool.length % institutions.length]!), STRANDS);
      if (result.ok) pool.push(result);
    }
    const campaign = new Types.ObjectId();
    const storeStart = performance.now();
    let responses: Array<Record<string, unknown>> = [];
    let records: AnalyticRecordDoc[] = [];
    for (let i = 0; i < RESPONSES; i++) {
      const institution = institutions[i % institutions.length]!;
      const answers = pool[random.int(0, pool.length - 1)]!;
      const id = new Types.ObjectId();
      const profile = { ...answers.profile, country: institution.country, institutionType: institution.type, size: institution.size, erasmus: institution.erasmus, location: institution.location };
      // The full response as it was stored before records (every item), and its record.
      const response = { _id: id, campaign, invitation: id, institution: institution.id, revision: 1, definitionVersion: answers.version, strands: STRANDS, language: 'en', submittedAt: new Date(Date.UTC(2026, 2, 1) + i * 1000), data: answers.data, items: answers.items, profile };
      responses.push(response);
      records.push(recordOf({ ...response, institution: `t:bench-${institution.id}` }, isText));
      if (responses.length === 500 || i === RESPONSES - 1) {
        await models.Response.collection.insertMany(responses as never[]);
        await models.AnalyticRecord.collection.insertMany(records);
        await appendJournal(models, records.map((r) => r._id));
        responses = [];
        records = [];
        process.stderr.write(`\rstored ${i + 1}/${RESPONSES}`);
      }
    }
    process.stderr.write(` in ${((performance.now() - storeStart) / 1000).toFixed(0)} s\n`);
    const sample = (await models.Response.findOne({}).lean())!;
    const sampleRecord = (await models.AnalyticRecord.findById(sample._id).lean<AnalyticRecordDoc>())!;
    console.log(`one response: ${(sample.items ?? []).length} items, ${JSON.stringify(sample).length} chars of JSON; its record: 7 fields, ${JSON.stringify(sampleRecord).length} chars`);

    // Every full response once, as the evidence read them before records.
    const fullStart = performance.now();
    let full = 0;
    for await (const _ of models.Response.find({ campaign }, { institution: 1, submittedAt: 1, profile: 1, items: 1 }).lean().cursor({ batchSize: 500 })) full += 1;
    const fullMs = performance.now() - fullStart;

    // Every record once, read only.
    const readStart = performance.now();
    let read = 0;
    for await (const _ of models.AnalyticRecord.find({}).lean().cursor({ batchSize: 1000 })) read += 1;
    const readMs = performance.now() - readStart;

    // The load the evidence does at start: read, decode, hand to a sink.
    const held: EvidenceRecord[] = [];
    const loadStart = performance.now();
    const loaded = await loadRecords(models, (doc) => decodeRecord(doc, flatten), { apply: (r) => held.push(r), remove: () => undefined });
    const loadMs = performance.now() - loadStart;

    // A follower's poll when nothing changed, and when one record changed.
    const follower = new RecordFollower(models, { apply: () => undefined, remove: () => undefined }, (doc) => decodeRecord(doc, flatten), await journalHead(models));
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await follower.poll();
      idle.push(performance.now() - t);
    }
    await appendJournal(models, [sample._id as Types.ObjectId]);
    const oneStart = performance.now();
    await follower.poll();
    const oneMs = performance.now() - oneStart;
    const headStart = performance.now();
    const head = await journalHead(models);
    const headMs = performance.now() - headStart;

    const row = (label: string, ms: number, n: number) => console.log(`${label.padEnd(44)} ${(ms / 1000).toFixed(2).padStart(8)} s   ${(ms / n).toFixed(3).padStart(7)} ms each`);
    console.log('');
    row(`read ${full.toLocaleString('en')} full responses (profile + items)`, fullMs, full);
    row(`read ${read.toLocaleString('en')} analytic records`, readMs, read);
    row(`load ${loaded.records.toLocaleString('en')} records (read + decode + sink)`, loadMs, loaded.records);
    console.log(`\nfull responses ÷ records (read):  ${(fullMs / readMs).toFixed(1)}×`);
    console.log(`full responses ÷ records (load):  ${(fullMs / loadMs).toFixed(1)}×`);
    console.log(`decoded items per record: ${(held.reduce((n, r) => n + r.items.length, 0) / held.length).toFixed(0)}`);
    console.log(`\nfollower poll, nothing changed (median of 20): ${idle.sort((a, b) => a - b)[10]!.toFixed(2)} ms`);
    console.log(`follower poll, one record changed:            ${oneMs.toFixed(2)} ms`);
    console.log(`journal head found by probing (${head.toLocaleString('en')} entries): ${headMs.toFixed(1)} ms`);
  } finally {
    await database.close();
  }
}

await main();
