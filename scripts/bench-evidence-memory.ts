/**
 * npm run bench:evidence:memory — the evidence's in-memory counts at 5,000,
 * 20,000 and 50,000 responses (no database: records are fed as a load
 * would, each decoded from its stored form as a cold load decodes it): time
 * to decode and count a record, memory per response, and reviewer pages
 * while responses arrive 5 per second (four kinds in turn, each page right
 * after a response; p50 and p95 per kind and over all). Prints a table;
 * asserts nothing.
 *
 *   BENCH_SIZES=5000,20000 npm run bench:evidence:memory
 *   BENCH_PAGES=0 npm run bench:evidence:memory    (the load and memory only)
 *   BENCH_VIEWS=175 npm run bench:evidence:memory  (then a reviewer opening that many
 *       other views, breakdowns by two dimensions with and without a filter: what
 *       the pages' kept tables and tallies add, and how long the views took)
 */
import { availableParallelism, loadavg } from 'node:os';
import { Types } from 'mongoose';
import { performance } from 'node:perf_hooks';
import { DEFAULT_THRESHOLDS } from '../server/evidence/disclosure.ts';
import { DIMENSION_NAMES, type EvidenceFilter } from '../server/evidence/evidence-filter.ts';
import type { EvidenceRecord, EvidenceSink } from '../server/evidence/evidence-record.ts';
import { decisionFootprint } from '../server/evidence/evidence-decision.ts';
import type { CampaignCounts, EvidenceStore } from '../server/evidence/evidence-store.ts';
import { EvidenceService } from '../server/evidence/indicator.service.ts';
import { decodeRecord, flattenerOf, recordOf, textQuestionsOf, type AnalyticRecordDoc } from '../server/evidence/analytic-record.ts';
import { buildCatalogue } from '../server/evidence/question-catalogue.ts';
import { compareWaves } from '../server/evidence/wave-comparison.service.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';

const SIZES = (process.env.BENCH_SIZES ?? '5000,20000,50000').split(',').map(Number);
/** Distinct validated answer sets, reused with other institutions' profiles: validating 50,000 would dominate the set-up. */
const ANSWER_POOL = 300;
/** Pages measured per size, each after new responses arrived (5 per second: one per 200 ms of simulated time). */
const PAGES = Number(process.env.BENCH_PAGES ?? 40);
/** Other views a reviewer opens after the pages (BENCH_VIEWS; none by default). */
const VIEWS = Number(process.env.BENCH_VIEWS ?? 0);

const random = randomSource(2026);
const registry = new QuestionnaireRegistry();
const catalogue = buildCatalogue(loadSurveyLibrary());
const maxSize = Math.max(...SIZES);
const institutions = Array.from({ length: Math.max(20, Math.round(maxSize / 12)) }, (_, i) => ({ id: `inst${i}`, ...syntheticInstitution(random, i) }));
const pool: Array<Extract<ReturnType<typeof validatedResponse>, { ok: true }>> = [];
while (pool.length < ANSWER_POOL) {
  const result = validatedResponse(registry, syntheticAnswers(random, institutions[pool.length % institutions.length]!, pool.length % 2 === 0 ? 1 : 2), ['S1', 'S2', 'S3', 'S4']);
  if (result.ok) pool.push(result);
}

const flatten = flattenerOf(catalogue);
const isText = textQuestionsOf(catalogue);
const campaignIds = new Map<string, string>();
/** A record as the database holds it (analytic-record.ts): what a cold load reads and decodes. */
function storedRecord(campaign: string, i: number): AnalyticRecordDoc {
  const institution = institutions[i % institutions.length]!;
  const answers = pool[random.int(0, pool.length - 1)]!;
  let campaignId = campaignIds.get(campaign);
  if (!campaignId) campaignIds.set(campaign, (campaignId = Types.ObjectId.createFromTime(campaignIds.size + 1).toHexString()));
  const profile = { ...answers.profile, country: institution.country, institutionType: institution.type, size: institution.size, erasmus: institution.erasmus, location: institution.location };
  return recordOf({ _id: new Types.ObjectId(), campaign: campaignId, institution: institution.id, revision: 1, submittedAt: new Date(Date.UTC(2026, 2, 1) + i * 1000), profile, data: answers.data }, isText);
}

function record(campaign: string, i: number): EvidenceRecord {
  const institution = institutions[i % institutions.length]!;
  const answers = pool[random.int(0, pool.length - 1)]!;
  return {
    id: `${campaign}:${i}`,
    campaign,
    institution: institution.id,
    revision: 1,
    submittedAt: new Date(Date.UTC(2026, 2, 1) + i * 1000),
    profile: { ...answers.profile, country: institution.country, institutionType: institution.type, size: institution.size, erasmus: institution.erasmus, location: institution.location },
    items: answers.items,
  };
}

/**
 * VIEWS views, each a breakdown by two dimensions, unfiltered and then
 * filtered by one of the institutions' countries, types or sizes (six of
 * each): what the heap grew by (the tables and tallies pages keep), the
 * tallies kept, and the views' time.
 */
async function browse(evidence: EvidenceService, base: EvidenceFilter, size: number, decidedBytes: number, perResponse: (bytes: number) => string): Promise<string> {
  const dimensions = DIMENSION_NAMES;
  const pairs = dimensions.flatMap((d, i) => dimensions.slice(i + 1).map((e) => [d, e]));
  const views: EvidenceFilter[] = pairs.map((breakdown) => ({ ...base, breakdown }));
  for (const [dimension, field] of [['country', 'country'], ['institutionType', 'type'], ['size', 'size']] as const) {
    const values = [...new Set(institutions.map((institution) => institution[field]))].slice(0, 6);
    for (const value of values) for (const breakdown of pairs) if (!breakdown.includes(dimension)) views.push({ ...base, where: { [dimension]: [value] }, breakdown });
  }
  const started = performance.now();
  for (const view of views.slice(0, VIEWS)) await evidence.tables(view);
  const ms = performance.now() - started;
  const after = await heap();
  const campaignCounts = (evidence as unknown as { store: { campaigns: Map<string, CampaignCounts> } }).store.campaigns;
  const kept = [...campaignCounts.values()].map((counts) => counts.talliesKept).reduce((a, b) => ({ cells: a.cells + b.cells, weight: a.weight + b.weight }), { cells: 0, weight: 0 });
  return `${size.toLocaleString('en')}: ${Math.min(VIEWS, views.length)} views in ${(ms / 1000).toFixed(1)} s, the heap grew ${((after.total - decidedBytes) / 1048576).toFixed(1)} MB (${perResponse(after.total - decidedBytes)} B/response); filters' tables kept ${evidence.filtersKept}, tallies kept ${kept.cells} (weight ${kept.weight.toLocaleString('en')})`;
}

const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? NaN;
/** A figure for the table, or "—" where nothing was measured (BENCH_PAGES=0 times no page after a response). */
const shown = (value: number, digits: number) => (Number.isNaN(value) ? '—' : value.toFixed(digits));
/** Bytes held: the JS heap and the typed arrays' buffers, which live outside it (the cells' counters are typed arrays). */
const heap = async () => {
  // Twice, a turn apart: the buffers of typed arrays collected by the first are freed on a later turn (a load's doubled arrays counted otherwise).
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, 50));
  (globalThis as { gc?: () => void }).gc?.();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return { heapUsed, arrayBuffers, total: heapUsed + arrayBuffers };
};

async function main() {
  if (!(globalThis as { gc?: () => void }).gc) console.log('(run with node --expose-gc for exact memory figures; npm run bench:evidence:memory does)');
  const rows: string[][] = [];
  const sizes: string[][] = [];
  const breakdowns: string[][] = [];
  const decisions: string[] = [];
  const browsing: string[] = [];
  const loadAtStart = loadavg()[0]!;
  // The state a response adds is the slope between two sizes; the rest is fixed per campaign (the cells of its tables).
  let smaller: { total: number; stateBytes: number } | undefined;
  for (const size of SIZES) {
    const before = await heap();
    let applied = before;
    let makingMs = 0;
    let makingCpuMs = 0;
    const evidence = new EvidenceService({
      models: {} as never,
      catalogue,
      tagKey: Buffer.alloc(32),
      thresholds: DEFAULT_THRESHOLDS,
      load: async (sink: EvidenceSink, campaigns) => {
        for (const campaign of campaigns ?? ['wave1', 'wave2']) {
          // Two waves: the second a fifth of the first's size (wave comparison).
          const n = campaign === 'wave1' ? size : Math.round(size / 5);
          for (let from = 0; from < n; from += 1000) {
            // Made apart and its time taken off: the stored form is what a load reads from the database.
            const started = performance.now();
            const cpuStart = process.cpuUsage();
            const docs = Array.from({ length: Math.min(1000, n - from) }, (_, k) => storedRecord(campaign, from + k));
            makingMs += performance.now() - started;
            const used = process.cpuUsage(cpuStart);
            makingCpuMs += (used.user + used.system) / 1000;
            for (const doc of docs) sink.apply({ ...decodeRecord(doc, flatten), campaign });
          }
        }
        // Its gc's time is not the load's (taken off as the making of records is).
        const started = performance.now();
        const cpuStart = process.cpuUsage();
        applied = await heap();
        makingMs += performance.now() - started;
        const used = process.cpuUsage(cpuStart);
        makingCpuMs += (used.user + used.system) / 1000;
      },
    });
    const base: EvidenceFilter = { campaigns: ['wave1'], where: {}, breakdown: [] };
    // The cold load: every record decoded and counted (ready() counts what was applied before it returns).
    const loadStart = performance.now();
    const loadCpuStart = process.cpuUsage();
    await evidence.ready();
    const loadMs = performance.now() - loadStart - makingMs;
    const loadUsed = process.cpuUsage(loadCpuStart);
    const loadCpuMs = (loadUsed.user + loadUsed.system) / 1000 - makingCpuMs;
    const counted = await heap();
    const footprint = (evidence as unknown as { store: EvidenceStore }).store.footprint();
    const firstPageStart = performance.now();
    const firstPageCpuStart = process.cpuUsage();
    await evidence.tables(base);
    const firstPageMs = performance.now() - firstPageStart;
    const firstPageUsed = process.cpuUsage(firstPageCpuStart);
    const firstPageCpuMs = (firstPageUsed.user + firstPageUsed.system) / 1000;
    const after = await heap();
    const stateBytes = after.total - before.total;
    // The decision's typed arrays by where they are held, both campaigns added up (the wave comparison decides wave 2 too).
    const decisionBytes = new Map<string, number>();

    // Reviewer pages, each right after a response arrived (as a second process submitting 5 per second gives them).
    const pages: Record<string, (() => Promise<unknown>)> = {
      overview: () => evidence.tables(base),
      'questions by country': () => evidence.tables({ ...base, breakdown: ['country'] }),
      'country × role': () => evidence.tables({ ...base, breakdown: ['country', 'role'] }),
      'wave comparison': () => compareWaves(evidence, { id: 'wave1', name: 'Wave 1' } as never, { id: 'wave2', name: 'Wave 2' } as never),
    };
    let next = size;
    const applyTimes: number[] = [];
    // A kind's first page is apart: for the wave comparison it is wave 2's first decision, from scratch (not a page after a response).
    const kinds = Object.entries(pages).map(([name, page]) => ({ name, page, firstMs: 0, times: [] as number[], cpu: [] as number[] }));
    for (const kind of kinds) {
      const firstStart = performance.now();
      await kind.page();
      kind.firstMs = performance.now() - firstStart;
    }
    // Then the kinds in turn, each page right after a response, so that every kind meets the process's first pages alike
    // (the pages after the load cost more while V8 still compiles; kind after kind, the first kind alone met them).
    for (let i = 0; i < PAGES * kinds.length; i++) {
      const kind = kinds[i % kinds.length]!;
      const applyStart = performance.now();
      evidence.apply(record('wave1', next++));
      applyTimes.push(performance.now() - applyStart);
      const started = performance.now();
      const cpuStart = process.cpuUsage();
      await kind.page();
      kind.times.push(performance.now() - started);
      const used = process.cpuUsage(cpuStart);
      kind.cpu.push((used.user + used.system) / 1000);
    }
    const all = { name: 'all kinds', firstMs: NaN, times: kinds.flatMap((k) => k.times), cpu: kinds.flatMap((k) => k.cpu) };
    for (const { name, firstMs, times, cpu } of [...kinds, all]) {
      rows.push([size.toLocaleString('en'), name, Number.isNaN(firstMs) ? '' : firstMs.toFixed(0), shown(quantile(times, 0.5), 1), shown(quantile(times, 0.95), 1), shown(quantile(cpu, 0.5), 1), shown(quantile(cpu, 0.95), 1)]);
      // As it goes: a run at 50,000 takes minutes on a busy machine.
      console.log(`${rows.at(-1)!.join('\t')}\t(load average ${loadavg()[0]!.toFixed(1)})`);
    }
    const total = Math.round(size * 1.2);
    const perResponse = (bytes: number) => String(Math.round(bytes / total));
    const decided = await heap();
    const campaignCounts = (evidence as unknown as { store: { campaigns: Map<string, CampaignCounts> } }).store.campaigns;
    for (const counts of campaignCounts.values()) for (const [place, bytes] of decisionFootprint(counts)) decisionBytes.set(place, (decisionBytes.get(place) ?? 0) + bytes);
    const decisionTyped = [...decisionBytes.values()].reduce((a, b) => a + b, 0);
    decisions.push(
      // The decisions are what the heap grew by since the counts were counted (both waves' decisions and what the pages after responses keep); the state in all adds the counts.
      `${size.toLocaleString('en')} + ${Math.round(size / 5).toLocaleString('en')}: state with both waves decided ${perResponse(decided.total - before.total)} B/response (${((decided.total - before.total) / 1048576).toFixed(1)} MB): the counts ${perResponse(counted.total - before.total)}, both waves' decisions ${perResponse(decided.total - counted.total)} B/response (${((decided.total - counted.total) / 1048576).toFixed(1)} MB), of which typed arrays kept by the decisions ${perResponse(decisionTyped)}:\n` +
        [...decisionBytes]
          .sort((a, b) => b[1] - a[1])
          .map(([place, bytes]) => `  ${place}\t${perResponse(bytes)}\t${(bytes / 1048576).toFixed(2)} MB`)
          .join('\n'),
    );
    if (VIEWS > 0) browsing.push(await browse(evidence, base, size, decided.total, perResponse));
    const typed = footprint.partPlaces + footprint.partAmounts + footprint.cellCounts + footprint.cellSums + footprint.cellPopulations + footprint.cellInstitutions;
    breakdowns.push([
      `${size.toLocaleString('en')} + ${Math.round(size / 5).toLocaleString('en')}`,
      perResponse(applied.heapUsed - before.heapUsed),
      perResponse(footprint.partPlaces),
      perResponse(footprint.partAmounts),
      perResponse(counted.heapUsed - applied.heapUsed),
      perResponse(footprint.cellCounts),
      perResponse(footprint.cellSums),
      perResponse(footprint.cellPopulations),
      perResponse(footprint.cellInstitutions),
      perResponse(counted.arrayBuffers - before.arrayBuffers - typed),
      perResponse(counted.total - before.total),
      perResponse(after.total - counted.total),
      `${footprint.records} / ${footprint.profiles} / ${footprint.cells} / ${footprint.cellMembers}`,
      [footprint.partOnes, footprint.partOthers].map((n) => (n / footprint.records).toFixed(1)).join(' / '),
    ]);
    sizes.push([
      `${size.toLocaleString('en')} + ${Math.round(size / 5).toLocaleString('en')}`,
      ((1000 * total) / loadMs).toFixed(0),
      ((1000 * loadMs) / total).toFixed(0),
      ((1000 * loadCpuMs) / total).toFixed(0),
      shown(1000 * quantile(applyTimes, 0.5), 0),
      firstPageMs.toFixed(0),
      firstPageCpuMs.toFixed(0),
      (stateBytes / 1048576).toFixed(1),
      String(Math.round((after.heapUsed - before.heapUsed) / total)),
      String(Math.round((after.arrayBuffers - before.arrayBuffers) / total)),
      String(Math.round(stateBytes / total)),
      smaller ? String(Math.round((stateBytes - smaller.stateBytes) / (total - smaller.total))) : '',
      loadavg()[0]!.toFixed(1),
    ]);
    smaller = { total, stateBytes };
    console.log(`${sizes.at(-1)!.join('\t')}\t(load average ${loadavg()[0]!.toFixed(1)})`);
  }
  console.log(`\nCounting and memory (responses in wave 1 + wave 2; load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end, ${availableParallelism()} cores):`);
  console.log(['responses', 'records/s', 'µs/record wall', 'µs/record CPU', 'new response µs', 'first page ms', 'first page CPU ms', 'state MB', 'heap B/resp', 'typed arrays B/resp', 'state B/resp', 'added B/resp since the size above', 'load average'].join('\t'));
  for (const row of sizes) console.log(row.join('\t'));
  console.log(`\nWhere the bytes are (per response; heap: the JS heap grown by that step; the rest typed arrays):`);
  console.log(['responses', 'records heap', 'part places', 'part amounts', 'cells heap', 'cell counters', 'cell sums', 'cell populations', 'cell institutions', 'other arrays', 'counts in all', 'decision (first page)', 'records / profiles / cells / listed institutions', 'a part, bytes: ones / other slots'].join('\t'));
  for (const row of breakdowns) console.log(row.join('\t'));
  console.log(`\nThe decisions' arrays (per response; after every page kind's first page):`);
  for (const text of decisions) console.log(text);
  if (browsing.length > 0) {
    console.log(`\nA reviewer opening ${VIEWS} other views (breakdowns by two dimensions, unfiltered and filtered by a country, type or size), after the above:`);
    for (const text of browsing) console.log(text);
  }
  // CPU time is what the page costs this process; wall time also says how busy the machine was.
  console.log(`\nReviewer pages right after a new response (ms, no database read):`);
  console.log(['responses', 'page', 'first page', 'wall p50', 'wall p95', 'CPU p50', 'CPU p95'].join('\t'));
  for (const row of rows) console.log(row.join('\t'));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
