/**
 * npm run bench:evidence — how long the full evidence dashboard takes on 50,000
 * responses, against the time to read the same responses once with no
 * computation. Uses a fresh database: on MONGODB_URI if set, else an embedded
 * FerretDB started in a temporary directory. Prints figures; asserts nothing.
 *
 *   BENCH_RESPONSES=5000 npm run bench:evidence   (a smaller run)
 *   BENCH_RESPONSES=20000 npm run bench:evidence -- --snapshot
 *
 * --snapshot times only the cold load: every record one by one, against the
 * packed snapshot (record-snapshot.ts) and the journal after it, first with
 * the snapshot's records counted at the load (a snapshot built without
 * counts, as before they were kept), then with its counts taken on, with
 * BENCH_CHANGES_AFTER (default 200: when the next snapshot is built)
 * new revisions journalled after the snapshot; the loads must give the same
 * tables (BENCH_AGAIN=0: only the snapshot's against the first full load).
 * Each load is closed before the next, as a server holds one.
 *
 * Responses are stored in bulk in the shape the respondent path gives them
 * (every answer in data, the free-text items only), each with its analytic
 * record and journal entry. Then, while a second process (this script with
 * --role submitter) stores 5 responses a second as the respondent path does,
 * reviewer pages (overview, by country, country × role) are timed in turn:
 * p50/p95, the disclosure decisions taken meanwhile, and how long each of
 * the other process's responses took to show in this one's pages.
 * Before that, the same pages each right after a response stored in this
 * process (which the page must show at once, so it waits for the disclosure
 * decision that holds it): p50/p95 of wall and CPU time.
 * Wall times are printed beside CPU times and the load average: the machine
 * may be shared.
 */
import { randomBytes } from 'node:crypto';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Types } from 'mongoose';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { DEFAULT_THRESHOLDS } from '../server/evidence/disclosure.ts';
import { DIMENSION_NAMES, type EvidenceFilter } from '../server/evidence/evidence-filter.ts';
import type { EvidenceRecord } from '../server/evidence/evidence-record.ts';
import { EvidenceService, type EvidenceTables } from '../server/evidence/indicator.service.ts';
import { buildCatalogue } from '../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { appendJournal, taggedRecordOf, textQuestionsOf, type StoredSource, writeRecord } from '../server/evidence/analytic-record.ts';
import { institutionTagger } from '../server/evidence/institution-tag.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';
import { buildSnapshot, currentSnapshot, readSnapshot } from '../server/evidence/record-snapshot.ts';
import { completeAnswers } from '../tests/fixtures/complete-answers.ts';
import { loadAverage } from './bench-figures.ts';

/** The benchmark's institution tag key; the submitting child process gets it in BENCH_TAG_KEY. */
const TAG_KEY = process.env.BENCH_TAG_KEY ? Buffer.from(process.env.BENCH_TAG_KEY, 'hex') : randomBytes(32);
const RESPONSES = Number(process.env.BENCH_RESPONSES ?? 50_000);
const INSTITUTIONS = Math.max(20, Math.round(RESPONSES / 12));
/** Distinct validated answer sets, reused with other profiles: validating 50,000 would dominate the set-up. */
const ANSWER_POOL = 400;
const STRANDS = ['S1', 'S2', 'S3', 'S4'];
/** Pages timed right after a response stored in this process, the three views in turn. */
const OWN_PAGES = Number(process.env.BENCH_OWN_PAGES ?? 60);
/** The other process's pace, and how long the reviewer pages are timed meanwhile. */
const SUBMISSIONS_PER_SECOND = 5;
const CONCURRENT_SECONDS = Number(process.env.BENCH_CONCURRENT_SECONDS ?? 30);
/** The pace of decisions taken ahead of pages (EVIDENCE_DECISION_GAP_MS; unset: the service's default). */
const GAP_MS = process.env.EVIDENCE_DECISION_GAP_MS === undefined ? undefined : Number(process.env.EVIDENCE_DECISION_GAP_MS);

const load = () => `load ${loadAverage()}`;
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

async function main() {
  let dataDir: string | undefined;
  let engine: Awaited<ReturnType<typeof startEmbeddedEngine>> | undefined;
  let base_ = process.env.MONGODB_URI?.replace(/\/[^/]*$/, '');
  if (!base_) {
    dataDir = mkdtempSync(join(tmpdir(), 'bench-evidence-'));
    engine = await startEmbeddedEngine({ dataDir });
    base_ = engine.uri;
  }
  const dbName = `bench_evidence_${randomBytes(4).toString('hex')}`;
  const connection = await connect(`${base_}/${dbName}`);
  const models = defineModels(connection);
  try {
    await ensureIndexes(models);
    console.log(`Engine: ${engine ? 'embedded FerretDB' : 'MongoDB (MONGODB_URI)'}; generating ${RESPONSES.toLocaleString('en')} responses from ${INSTITUTIONS} institutions ...`);

    const random = randomSource(2026);
    const registry = new QuestionnaireRegistry();
    const catalogue = buildCatalogue(loadSurveyLibrary());
    const institutions = Array.from({ length: INSTITUTIONS }, (_, i) => ({ id: new Types.ObjectId(), ...syntheticInstitution(random, i) }));
    const pool: Array<Extract<ReturnType<typeof validatedResponse>, { ok: true }>> = [];
    while (pool.length < ANSWER_POOL) {
      const result = validatedResponse(registry, syntheticAnswers(random, institutions[pool.length % institutions.length]!), STRANDS);
      if (result.ok) pool.push(result);
    }
    const campaign = new Types.ObjectId();
    const isText = textQuestionsOf(catalogue);
    const tagOf = institutionTagger(models, TAG_KEY);
    const started = Date.now();
    const batch: object[] = [];
    for (let i = 0; i < RESPONSES; i++) {
      const institution = institutions[i % institutions.length]!;
      const answers = pool[random.int(0, pool.length - 1)]!;
      // The profile of the institution the response is stored for, the answers of a pooled validated set.
      const profile = { ...answers.profile, country: institution.country, institutionType: institution.type, size: institution.size, erasmus: institution.erasmus, location: institution.location };
      const invitation = new Types.ObjectId();
      batch.push({
        _id: invitation,
        campaign,
        invitation,
        institution: institution.id,
        revision: 1,
        definitionVersion: answers.version,
        strands: STRANDS,
        language: 'en',
        submittedAt: new Date(Date.UTC(2026, 2, 1) + i * 1000),
        data: answers.data,
        // As the respondent path stores it: the free-text items only (the closed ones are in the record).
        items: answers.items.filter((item) => isText(item.question)),
        profile,
      });
      if (batch.length === 1000 || i === RESPONSES - 1) {
        const docs = batch.splice(0) as Array<StoredSource & { _id: Types.ObjectId }>;
        await models.Response.collection.insertMany(docs as never[]);
        // The analytic record written beside each response (the evidence reads only these), and its journal entry.
        await models.AnalyticRecord.collection.insertMany(await Promise.all(docs.map((doc) => taggedRecordOf(tagOf, doc, isText))));
        await appendJournal(models, docs.map((doc) => doc._id));
        if ((i + 1) % 10_000 === 0) console.log(`  ${(i + 1).toLocaleString('en')} stored after ${((Date.now() - started) / 1000).toFixed(0)} s  ${load()}`);
      }
    }
    console.log(`Stored in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
    if (process.argv.includes('--snapshot')) return await compareColdLoads(models, catalogue, campaign);

    // The baseline: read every response once, as the evidence would, and do nothing with it (BENCH_PLAIN_READ=0 skips it: minutes at 50,000).
    let read = 0;
    const readStart = performance.now();
    const readCpu = process.cpuUsage();
    if (process.env.BENCH_PLAIN_READ !== '0') {
      console.log('Reading every response once ...');
      for await (const _ of models.Response.find({ campaign }).lean().cursor({ batchSize: 500 })) {
        read += 1;
        if (read % 10_000 === 0) console.log(`  ${read.toLocaleString('en')} read after ${((performance.now() - readStart) / 1000).toFixed(1)} s`);
      }
    }
    // NaN when skipped, and so is the cold load's ratio to it.
    const readMs = read > 0 ? performance.now() - readStart : NaN;
    const readCpuMs = cpuMs(readCpu);
    if (read > 0) console.log(`Single read, no computation:            ${readMs.toFixed(0)} ms (${read.toLocaleString('en')} responses)  ${load()}`);

    // Polling as a server does (EVIDENCE_POLL_MS's default), for the part where another process submits.
    const evidence = new EvidenceService({ models, catalogue, tagKey: TAG_KEY, thresholds: DEFAULT_THRESHOLDS, decisionGapMs: GAP_MS });
    console.log('Loading the analytic records into memory (cold load) ...');
    const loadStart = performance.now();
    const loadCpu = process.cpuUsage();
    await evidence.ready();
    const loadMs = performance.now() - loadStart;
    const loadCpuMs = cpuMs(loadCpu);
    const loadLoad = load();
    console.log(`Cold load of the records:               ${loadMs.toFixed(0)} ms (ratio to the plain read ${(loadMs / readMs).toFixed(2)}; ${evidence.records.toLocaleString('en')} records)`);
    // The records were all journalled within the last grace, so the follower reads the journal again from about its start after the load: done before any page is timed.
    const followStart = performance.now();
    await evidence.refresh();
    const followMs = performance.now() - followStart;
    console.log(`Journal followed after the load:        ${followMs.toFixed(0)} ms  ${load()}`);
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

    console.log(`Reviewer pages in turn, each right after a response stored in this process (${OWN_PAGES}) ...`);
    // The overview, the questions by country, a cross-tab of two dimensions: three views of one campaign's counts and decision.
    const views = [base, { ...base, breakdown: ['country'] }, { ...base, breakdown: ['country', 'role'] }] satisfies EvidenceFilter[];
    const own = await pagesAfterOwnResponses(evidence, views, (i) => {
      // A response of another contact of a stored institution, with that institution's profile, as the respondent path records it.
      const institution = institutions[(i * 7) % institutions.length]!;
      const answers = pool[(i * 13) % pool.length]!;
      const profile = { ...answers.profile, country: institution.country, institutionType: institution.type, size: institution.size, erasmus: institution.erasmus, location: institution.location };
      return { id: `own:${i}`, campaign: String(campaign), institution: String(institution.id), revision: 1, submittedAt: new Date(), profile, items: answers.items };
    });

    console.log(`Reviewer pages in turn while another process submits ${SUBMISSIONS_PER_SECOND}/s for ${CONCURRENT_SECONDS} s ...`);
    const concurrent = await whileAnotherProcessSubmits(`${base_}/${dbName}`, campaign, evidence, views);

    console.log(`\nResponses read:                         ${read.toLocaleString('en')}`);
    if (read > 0) console.log(`Single read, no computation:            ${readMs.toFixed(0)} ms  (CPU ${readCpuMs.toFixed(0)} ms in this process; the rest is the engine's)`);
    console.log(`Cold load of the records:               ${loadMs.toFixed(0)} ms  (ratio to the plain read ${(loadMs / readMs).toFixed(2)}; CPU ${loadCpuMs.toFixed(0)} ms; target ≤ 20 s)  ${loadLoad}`);
    console.log(`Journal followed after the load:        ${followMs.toFixed(0)} ms  (entries of the last grace read again)`);
    console.log(`Full dashboard after the load:          ${coldMs.toFixed(0)} ms`);
    console.log(`Full dashboard, warm (median of 5):     ${warmMs.toFixed(1)} ms  (target < 50 ms)`);
    console.log(`After a response arrives (no read):     ${invalidatedMs.toFixed(0)} ms`);
    console.log(`One country, after the above:           ${filterMs.toFixed(0)} ms  (no new read)`);
    console.log(`One country by role (a cross-tab):      ${crossMs.toFixed(0)} ms  (from memory)`);
    if (own.pages > 0) console.log(`Reviewer page after an own response:    wall p50 ${own.wallP50.toFixed(0)} ms  p95 ${own.wallP95.toFixed(0)} ms  CPU p50 ${own.cpuP50.toFixed(0)} ms  p95 ${own.cpuP95.toFixed(0)} ms  (decision to its end: CPU p50 ${own.endedP50.toFixed(0)} ms  p95 ${own.endedP95.toFixed(0)} ms; ${own.pages} pages; ${own.decisions} disclosure decisions)  ${own.load}`);
    console.log(`Reviewer page, other process at ${SUBMISSIONS_PER_SECOND}/s:  p50 ${concurrent.p50.toFixed(0)} ms  p95 ${concurrent.p95.toFixed(0)} ms  p99 ${concurrent.p99.toFixed(0)} ms  max ${concurrent.max.toFixed(0)} ms  (${concurrent.pages} pages, CPU ${concurrent.cpuPerPage.toFixed(0)} ms a page; ${concurrent.decisions} disclosure decisions taken in ${concurrent.slices} slices; ${concurrent.meanwhile} pages served the last decided tables while one was under way)`);
    console.log(`Its responses shown here after:         p50 ${concurrent.visibleP50.toFixed(0)} ms  max ${concurrent.visibleMax.toFixed(0)} ms  (${concurrent.seen}/${concurrent.submitted} seen)  ${concurrent.load}`);
    console.log(`  medians:  ${concurrent.breakdown.median}`);
    for (const line of concurrent.breakdown.worst) console.log(`  worst:    ${line}`);
    console.log(`  decisions: ${concurrent.breakdown.decisions}`);
    console.log(`Memory (RSS):                           ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB`);
    console.log(`Load average at the end:                ${load()}`);
    await evidence.close();
  } finally {
    await connection.dropDatabase().catch(() => undefined);
    await connection.close();
    await engine?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The cold load both ways: every record one by one (no snapshot yet), then a
 * snapshot built, BENCH_CHANGES_AFTER new revisions written after it as the
 * respondent path writes them, and a cold load from the snapshot and the
 * journal after it. The two loads' overview tables must be the same.
 */
async function compareColdLoads(models: ReturnType<typeof defineModels>, catalogue: ReturnType<typeof buildCatalogue>, campaign: Types.ObjectId) {
  const changesAfter = Number(process.env.BENCH_CHANGES_AFTER ?? 200);
  const timed = async <T>(label: string, run: () => Promise<T>) => {
    const wall = performance.now();
    const cpu = process.cpuUsage();
    const result = await run();
    const line = `${label.padEnd(40)}${((performance.now() - wall) / 1000).toFixed(1)} s  (CPU ${(cpuMs(cpu) / 1000).toFixed(1)} s in this process)  ${load()}`;
    console.log(line);
    return { result, line };
  };
  const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: ['country'] };
  // Sums rounded: a revision takes a part out and puts one back, which may leave a trace in the last bits.
  const text = async (evidence: EvidenceService) => JSON.stringify(await evidence.tables(base), (_, v: unknown) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v));
  /**
   * One cold load, as a server's start: the only evidence in memory (an earlier
   * load still held made every later one pay for collecting garbage over its
   * heap too). Its overview is kept as text to compare, after the timing.
   */
  const coldLoad = async () => {
    // No polling: the load alone is timed.
    const evidence = new EvidenceService({ models, catalogue, tagKey: TAG_KEY, thresholds: DEFAULT_THRESHOLDS, pollMs: 0 });
    await evidence.ready();
    return evidence;
  };
  const loaded = async (run: Awaited<ReturnType<typeof timed<EvidenceService>>>) => {
    const evidence = run.result;
    const tables = await text(evidence);
    await evidence.close();
    return { line: run.line, records: evidence.records, tables, fromCounts: evidence.lastLoad?.fromCounts ?? false };
  };

  console.log('Cold load of every record, one by one ...');
  const full = await loaded(await timed('Cold load, every record:', coldLoad));
  // The database's part alone (at 50,000 it takes minutes: BENCH_AGAIN=0 skips it).
  const recordsRead =
    process.env.BENCH_AGAIN === '0'
      ? undefined
      : await timed('Every record read, nothing counted:', async () => {
          let records = 0;
          for await (const _ of models.AnalyticRecord.find({}).lean().cursor({ batchSize: 1000 })) records += 1;
          return records;
        });
  console.log('Building the snapshot from every record, without counts (in the background in a server) ...');
  const recordsOnlyBuild = await timed('Snapshot built, records only:', () => buildSnapshot(models, { afterEntries: 0 }));
  // The database's part alone: the buckets read and unpacked, nothing counted.
  const { pointer } = await currentSnapshot(models);
  const bucketsRead = await timed('Snapshot read, nothing counted:', async () => {
    let records = 0;
    await readSnapshot(models, pointer!, () => (records += 1));
    return records;
  });
  console.log('Cold load from that snapshot, its records counted ...');
  const counted = await loaded(await timed('Cold load, snapshot only, counted:', coldLoad));
  console.log('Building the snapshot again, with its counts ...');
  const countsOf = new EvidenceService({ models, catalogue, tagKey: TAG_KEY, thresholds: DEFAULT_THRESHOLDS, pollMs: 0 }).countsImage;
  const build = await timed('Snapshot built, with counts:', () => buildSnapshot(models, { afterEntries: 0, countsOf }));
  const countsChunks = (await currentSnapshot(models)).pointer!.c ?? 0;
  console.log('Cold load from the snapshot and its counts, nothing after it ...');
  const snapshotOnly = await loaded(await timed('Cold load, snapshot only:', coldLoad));
  console.log(`Writing ${changesAfter.toLocaleString('en')} new revisions after the snapshot ...`);
  const changed = await timed(`${changesAfter.toLocaleString('en')} revisions written:`, async () => {
    const some = await models.AnalyticRecord.find({ campaign }).limit(changesAfter).lean();
    for (const record of some) await writeRecord(models, { ...record, revision: record.revision + 1, at: new Date() });
    return some.length;
  });
  console.log('Cold load from the snapshot and the journal after it ...');
  const fromSnapshot = await loaded(await timed('Cold load, snapshot + journal:', coldLoad));
  const sameBefore = snapshotOnly.tables === full.tables && counted.tables === full.tables;
  // The reference for the load that followed the journal: every record read again, now that the revisions are in (BENCH_AGAIN=0 skips it at large sizes).
  const again =
    process.env.BENCH_AGAIN === '0'
      ? undefined
      : await loaded(
          await timed('Cold load, every record (again):', async () => {
            await models.EvidenceSnapshot.deleteMany({});
            return coldLoad();
          }),
        );
  const same = sameBefore && (!again || fromSnapshot.tables === again.tables);

  console.log(`\nResponses:                              ${RESPONSES.toLocaleString('en')}; ${changed.result.toLocaleString('en')} revisions journalled after the snapshot`);
  console.log(full.line);
  if (recordsRead) console.log(recordsRead.line, `(${recordsRead.result.toLocaleString('en')} records)`);
  console.log(recordsOnlyBuild.line, `(${recordsOnlyBuild.result.records?.toLocaleString('en')} records)`);
  console.log(build.line, `(${build.result.records?.toLocaleString('en')} records; counts in ${countsChunks} chunks)`);
  console.log(bucketsRead.line, `(${bucketsRead.result.toLocaleString('en')} records in ${pointer!.buckets} buckets)`);
  console.log(counted.line, `(${counted.records.toLocaleString('en')} records)`);
  console.log(snapshotOnly.line, `(${snapshotOnly.records.toLocaleString('en')} records${snapshotOnly.fromCounts ? ', from its counts' : ', COUNTED'})`);
  console.log(fromSnapshot.line, `(${fromSnapshot.records.toLocaleString('en')} records${fromSnapshot.fromCounts ? ', from its counts' : ', COUNTED'}; target ≤ 20 s)`);
  if (again) console.log(again.line, `(${again.records.toLocaleString('en')} records)`);
  console.log(`Same tables, snapshot (counted, and from its counts) as every record:  ${sameBefore ? 'yes' : 'NO'}${again ? `; snapshot + journal as every record again: ${same ? 'yes' : 'NO'}` : ''}`);
  console.log(`Memory (RSS):                           ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB`);
  if (!same) process.exitCode = 1;
}

/**
 * Times reviewer pages, the filters in turn, each right after this process
 * stored one more response (`recordOf(i)`): what a reviewer waits for when
 * the page must show a response stored through this server.
 */
async function pagesAfterOwnResponses(evidence: EvidenceService, filters: EvidenceFilter[], recordOf: (i: number) => EvidenceRecord) {
  for (const filter of filters) await evidence.tables(filter);
  const wall: number[] = [];
  const cpu: number[] = [];
  const ended: number[] = [];
  const decisionsBefore = evidence.decisionsTaken;
  for (let i = 0; i < OWN_PAGES; i++) {
    evidence.apply(recordOf(i));
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    await evidence.tables(filters[i % filters.length]!);
    wall.push(performance.now() - started);
    cpu.push(cpuMs(cpuStart));
    // The decision's work after the page was answered (the other filters' tables), ended before the next response: a reviewer's pages are seconds apart.
    while (evidence.deciding) await new Promise((resolve) => setImmediate(resolve));
    ended.push(cpuMs(cpuStart));
  }
  const pct = (list: number[], p: number) => [...list].sort((a, b) => a - b)[Math.min(list.length - 1, Math.floor((p / 100) * list.length))] ?? NaN;
  return { pages: wall.length, wallP50: pct(wall, 50), wallP95: pct(wall, 95), cpuP50: pct(cpu, 50), cpuP95: pct(cpu, 95), endedP50: pct(ended, 50), endedP95: pct(ended, 95), decisions: evidence.decisionsTaken - decisionsBefore, load: load() };
}

/**
 * Times reviewer pages, the filters in turn, over and over while a child
 * process submits responses to the campaign at a steady pace, each through
 * the respondent path's storage (current response, journal intent, analytic
 * record), and notes when each of them first counts in this process's pages.
 * The CPU per page includes the decisions taken between pages.
 */
async function whileAnotherProcessSubmits(uri: string, campaign: Types.ObjectId, evidence: EvidenceService, filters: EvidenceFilter[]) {
  // Built as npm run bench:evidence runs this script (scripts/run-built.mjs), not under tsx's hooks.
  const child = fork(join(dirname(fileURLToPath(import.meta.url)), 'run-built.mjs'), [fileURLToPath(import.meta.url), '--role', 'submitter'], {
    env: { ...process.env, BENCH_URI: uri, BENCH_TAG_KEY: TAG_KEY.toString('hex'), BENCH_CAMPAIGN: String(campaign), BENCH_COUNT: String(SUBMISSIONS_PER_SECOND * CONCURRENT_SECONDS) },
  });
  const storedAt: number[] = [];
  const storedIds: string[] = [];
  const trace = traceFollowing(evidence);
  let finished = false;
  const done = new Promise<void>((resolve, reject) => {
    child.on('message', (message: { stored?: number; id?: string; ready?: boolean; done?: boolean }) => {
      // Date.now(): one clock for both processes on this machine (performance.timeOrigin is fixed at each start, so a step of the system clock between the two starts would shift one against the other).
      if (message.stored) {
        storedAt.push(message.stored);
        storedIds.push(message.id!);
      }
      if (message.done) resolve();
    });
    child.on('exit', (code) => (code ? reject(new Error(`the submitting process ended with ${code}`)) : resolve()));
  });
  void done.finally(() => (finished = true));
  await new Promise<void>((resolve) => child.once('message', () => resolve()));
  // What a page shows, not what the counts hold: records are counted at once, shown with the next decision.
  const shownNow = (tables: EvidenceTables) => tables.responses ?? NaN;
  const before = shownNow(await evidence.tables(filters[0]!));
  const pages: number[] = [];
  const visibleAfter: number[] = [];
  const cpu = process.cpuUsage();
  const decisionsBefore = evidence.decisionsTaken;
  const slicesBefore = evidence.decisionSlices;
  const meanwhileBefore = evidence.pagesServedMeanwhile;
  let finishedAt: number | undefined;
  while (!finished || visibleAfter.length < storedAt.length) {
    const t = performance.now();
    const tables = await evidence.tables(filters[pages.length % filters.length]!);
    pages.push(performance.now() - t);
    const now = Date.now();
    const shown = shownNow(tables) - before;
    while (visibleAfter.length < Math.min(shown, storedAt.length)) {
      trace.shown(storedIds[visibleAfter.length]!, now);
      visibleAfter.push(now - storedAt[visibleAfter.length]!);
    }
    // Never shown within 10 s of the last: counted as unseen.
    finishedAt ??= finished ? performance.now() : undefined;
    if (finishedAt !== undefined && performance.now() - finishedAt > 10_000) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await done;
  trace.stop();
  const sorted = [...pages].sort((a, b) => a - b);
  const visible = [...visibleAfter].sort((a, b) => a - b);
  const pct = (list: number[], p: number) => list[Math.min(list.length - 1, Math.floor((p / 100) * list.length))] ?? NaN;
  return {
    pages: pages.length,
    p50: pct(sorted, 50),
    p95: pct(sorted, 95),
    p99: pct(sorted, 99),
    max: sorted.at(-1) ?? NaN,
    cpuPerPage: cpuMs(cpu) / pages.length,
    decisions: evidence.decisionsTaken - decisionsBefore,
    slices: evidence.decisionSlices - slicesBefore,
    meanwhile: evidence.pagesServedMeanwhile - meanwhileBefore,
    submitted: storedAt.length,
    seen: visibleAfter.length,
    visibleP50: pct(visible, 50),
    visibleMax: visible.at(-1) ?? NaN,
    breakdown: trace.breakdown(storedIds.slice(0, visibleAfter.length).map((id, i) => ({ id, stored: storedAt[i]! }))),
    load: load(),
  };
}

/**
 * Where each of the other process's responses spent its time before a page
 * showed it: waiting for the poll that found its entry, that poll's reads,
 * held back by a disclosure decision under way, and its own decision (with
 * the tables and the page's turn). Watched from outside: the follower's poll,
 * the sink it applies to and the counts are wrapped at run time, so that the
 * same breakdown is printed for any version of the service.
 */
function traceFollowing(evidence: EvidenceService) {
  type Sink = { apply: (record: EvidenceRecord) => void };
  type Run = { done: Promise<unknown> };
  const inside = evidence as unknown as { follower: { poll: () => Promise<number>; polling: boolean }; gate: Sink; store: Sink; startDecision: (...args: unknown[]) => Run };
  const now = () => Date.now();
  const seen = new Map<string, { pollStart: number; applied: number; held: boolean; decisions: number; counted?: number; shown?: number; decisionsShown?: number }>();
  const { follower, gate, store } = inside;
  const [poll, applyGate, applyStore, startDecision] = [follower.poll, gate.apply, store.apply, inside.startDecision];
  const began = now();
  const decisions: Array<{ at: number; ms: number; slices: number }> = [];
  inside.startDecision = function (this: unknown, ...args: unknown[]) {
    const at = now();
    const slices = evidence.decisionSlices;
    const run = startDecision.apply(this, args);
    void run.done.finally(() => decisions.push({ at: at - began, ms: now() - at, slices: evidence.decisionSlices - slices }));
    return run;
  };
  let pollStart = 0;
  follower.poll = function (this: typeof follower) {
    if (!this.polling) pollStart = now();
    return poll.call(this);
  };
  gate.apply = (record) => {
    if (!seen.has(record.id)) seen.set(record.id, { pollStart, applied: now(), held: evidence.deciding, decisions: evidence.decisionsTaken });
    applyGate(record);
  };
  store.apply = function (this: Sink, record) {
    const entry = seen.get(record.id);
    if (entry && entry.counted === undefined) entry.counted = now();
    applyStore.call(this, record);
  };
  return {
    shown(id: string, at: number) {
      const entry = seen.get(id);
      if (entry) Object.assign(entry, { shown: at, decisionsShown: evidence.decisionsTaken });
    },
    stop() {
      Object.assign(follower, { poll });
      Object.assign(gate, { apply: applyGate });
      Object.assign(store, { apply: applyStore });
      Object.assign(inside, { startDecision });
    },
    breakdown(stored: Array<{ id: string; stored: number }>) {
      const rows = stored.flatMap(({ id, stored }) => {
        const e = seen.get(id);
        if (!e?.counted || !e.shown) return [];
        return [{ stored, total: e.shown - stored, pollWait: e.pollStart - stored, read: e.applied - e.pollStart, held: e.counted - e.applied, decided: e.shown - e.counted, wasHeld: e.held, decisions: e.decisionsShown! - e.decisions }];
      });
      const median = (key: 'pollWait' | 'read' | 'held' | 'decided') => [...rows].map((r) => r[key]).sort((a, b) => a - b)[Math.floor(rows.length / 2)] ?? NaN;
      const line = (r: (typeof rows)[number]) =>
        `${r.total.toFixed(0)} ms, stored ${(r.stored - began).toFixed(0)} ms into the run = poll wait ${r.pollWait.toFixed(0)} + read ${r.read.toFixed(0)} + held ${r.held.toFixed(0)} + own decision and page ${r.decided.toFixed(0)}  (${r.wasHeld ? 'held back' : 'not held'}; ${r.decisions} decisions ended meanwhile)`;
      return {
        median: `poll wait ${median('pollWait').toFixed(0)} + read ${median('read').toFixed(0)} + held ${median('held').toFixed(0)} + own decision and page ${median('decided').toFixed(0)} ms; held back ${rows.filter((r) => r.wasHeld).length}/${rows.length}`,
        worst: [...rows].sort((a, b) => b.total - a.total).slice(0, 5).map(line),
        decisions: `${decisions.length}, wall ms each (started ms into the run, slices): ${decisions.map((d) => `${d.ms.toFixed(0)} (${d.at.toFixed(0)}, ${d.slices})`).join(', ')}`,
      };
    },
  };
}

/**
 * Child process: stores BENCH_COUNT responses to the campaign at
 * SUBMISSIONS_PER_SECOND, each as the respondent path stores it (the current
 * response, then its analytic record through writeRecord: journal intent,
 * record), telling the parent when each is stored.
 */
async function runSubmitter() {
  const connection = await connect(process.env.BENCH_URI!);
  const models = defineModels(connection);
  const count = Number(process.env.BENCH_COUNT);
  const registry = new QuestionnaireRegistry();
  const { validator, version } = registry.forStrands(STRANDS);
  const isText = (question: string) => validator.isFreeText(question);
  const institution = new Types.ObjectId();
  process.send!({ ready: true });
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / SUBMISSIONS_PER_SECOND;
    if (performance.now() < due) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
    // Validated as a submission is, then stored as recordRevision stores it.
    const result = validator.validate(completeAnswers({ P1: 'DE', S1_5: 1 + (i % 5) }), 'en');
    if (!result.ok) throw new Error('fixture invalid');
    const id = new Types.ObjectId();
    const response = {
      _id: id,
      campaign: new Types.ObjectId(process.env.BENCH_CAMPAIGN),
      invitation: id,
      institution,
      revision: 1,
      definitionVersion: version,
      strands: STRANDS,
      language: 'en',
      submittedAt: new Date(),
      data: result.data,
      items: result.items.filter((item) => isText(item.question)),
      profile: { country: 'DE', institutionType: 'ivet_school', role: 'head' },
    };
    await models.Response.collection.insertOne(response as never);
    await writeRecord(models, await taggedRecordOf(institutionTagger(models, TAG_KEY), response, isText));
    process.send!({ stored: Date.now(), id: String(id) });
  }
  process.send!({ done: true });
  await connection.close();
  process.disconnect();
}

if (process.argv.includes('--role')) {
  runSubmitter().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
