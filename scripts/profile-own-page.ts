/**
 * npm run profile:own-page — where a reviewer's page after an own
 * response goes, with no database: the records of bench:evidence (its
 * generator and seed, BENCH_RESPONSES of them, 5,000 by default) fed to the
 * evidence as a load would, then BENCH_OWN_PAGES pages (overview, by
 * country, country × role in turn), each right after one response and
 * waiting for the decision to end. Prints the pages' time (wall, what a
 * reviewer waits, and CPU: the process's, so V8's compiler and collector
 * threads beside the page count in it too), the CPU of the
 * count decisions' parts by question (timers wrapped around
 * CountSuppression's and CountAudit's methods here, not in the engine;
 * K=36 is S1.3, "responses" the number of responses) and, under the
 * inspector's CPU profiler, the functions by self and total time, with the
 * load average. BENCH_PROFILE=0: timers only; BENCH_FINGERPRINT=1: a hash
 * of every view's tables after each response, to compare two versions'
 * decisions; PROFILE_OUT=file.cpuprofile keeps the profile; BENCH_PROFILE=0
 * BENCH_TIMERS=0: neither, for the pages' times without what measuring adds. Prints each
 * page's CPU and wall time in order too, and p50 and p95 without the first page: the
 * first page after the load costs about three times a later one whatever
 * the response (328–413 ms at 50,000 with three different first
 * responses, against 83–223 ms for the pages after it), with as much
 * propagation as a later page (the same ~35,000 relations looked at). It
 * is the code's warm-up, once per process: a second EvidenceService of the
 * same 50,000 records in the same process answers its first page in 82 ms
 * (the first one's 358 ms), while one of 500 records before it, or a full
 * garbage collection after the load, does not take it away. It weighs in
 * p95 over tens of pages, not over a day's. Also how many pages took over
 * 100 ms (issue 9's p95 target allows one in twenty), of wall time and of CPU,
 * and per page the garbage collector's pauses, the audits from scratch, whether
 * its response opened a group, and for each page over 100 ms its largest timed
 * parts (with timers), so that what makes a slow page is printed, not guessed.
 * BENCH_NEW_GROUP_AT=k: the k-th page's response (from 0) comes from a new
 * institution whose profile gives only country, type and role, as
 * bench:evidence's second process's do, so that it opens new groups; its page's
 * time is printed apart. BENCH_HEAP=1: the JS heap allocated a page (V8's sampling heap profiler,
 * garbage included), by the function that allocated it (a built-in such as
 * Set's add named with its caller); typed arrays' contents are outside the
 * heap and not counted. Asserts nothing.
 *
 *   BENCH_OWN_PAGES=60 npm run profile:own-page
 */
import { Session, type HeapProfiler, type Profiler } from 'node:inspector';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { Types } from 'mongoose';
import { DEFAULT_THRESHOLDS } from '../server/evidence/disclosure.ts';
import type { EvidenceFilter } from '../server/evidence/evidence-filter.ts';
import type { EvidenceRecord, EvidenceSink } from '../server/evidence/evidence-record.ts';
import { EvidenceService } from '../server/evidence/indicator.service.ts';
import { CountSuppression } from '../server/evidence/count-suppression.ts';
import { CountAudit } from '../server/evidence/count-audit.ts';
import { buildCatalogue } from '../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';
import { loadAverage } from './bench-figures.ts';

const RESPONSES = Number(process.env.BENCH_RESPONSES ?? 5000);
const OWN_PAGES = Number(process.env.BENCH_OWN_PAGES ?? 60);
const NEW_GROUP_AT = Number(process.env.BENCH_NEW_GROUP_AT ?? -1);
const INSTITUTIONS = Math.max(20, Math.round(RESPONSES / 12));
const load = () => `load ${loadAverage()}`;
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

async function main() {
  const random = randomSource(2026);
  const registry = new QuestionnaireRegistry();
  const catalogue = buildCatalogue(loadSurveyLibrary());
  const institutions = Array.from({ length: INSTITUTIONS }, (_, i) => ({ id: new Types.ObjectId(), ...syntheticInstitution(random, i) }));
  const pool: Array<Extract<ReturnType<typeof validatedResponse>, { ok: true }>> = [];
  while (pool.length < 400) {
    const result = validatedResponse(registry, syntheticAnswers(random, institutions[pool.length % institutions.length]!), ['S1', 'S2', 'S3', 'S4']);
    if (result.ok) pool.push(result);
  }
  const recordOf = (id: string, institution: (typeof institutions)[number], answers: (typeof pool)[number], at: Date): EvidenceRecord => ({
    id,
    campaign: 'wave',
    institution: String(institution.id),
    revision: 1,
    submittedAt: at,
    profile: { ...answers.profile, country: institution.country, institutionType: institution.type, size: institution.size, erasmus: institution.erasmus, location: institution.location },
    items: answers.items,
  });
  const evidence = new EvidenceService({
    models: {} as never,
    catalogue,
    tagKey: Buffer.alloc(32),
    thresholds: DEFAULT_THRESHOLDS,
    load: async (sink: EvidenceSink) => {
      for (let i = 0; i < RESPONSES; i++) sink.apply(recordOf(`r${i}`, institutions[i % institutions.length]!, pool[random.int(0, pool.length - 1)]!, new Date(Date.UTC(2026, 2, 1) + i * 1000)));
    },
  });
  await evidence.ready();
  const base: EvidenceFilter = { campaigns: ['wave'], where: {}, breakdown: [] };
  const views = [base, { ...base, breakdown: ['country'] }, { ...base, breakdown: ['country', 'role'] }] satisfies EvidenceFilter[];
  const firstCpu = process.cpuUsage();
  for (const view of views) await evidence.tables(view);
  console.log(`first decision and pages: CPU ${cpuMs(firstCpu).toFixed(0)} ms  ${load()}`);
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object) => new Promise<T>((resolve, reject) => session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result as T))));
  // CPU timers on the count decisions' parts, by question (its number of categories, or the number of responses), wrapped here, not in the engine; a nested part counts in its caller too.
  const timers = new Map<string, { calls: number; ms: number }>();
  let timing = false;
  const keyOf = (answers: { counts: readonly unknown[]; listed?: boolean }) => (answers.listed ? 'responses' : `K=${answers.counts.length}`);
  const wrap = (proto: object, method: string, label: (self: never, args: unknown[]) => string) => {
    const original = (proto as Record<string, (...args: unknown[]) => unknown>)[method]!;
    (proto as Record<string, unknown>)[method] = function (this: never, ...args: unknown[]) {
      if (!timing) return original.apply(this, args);
      const started = process.cpuUsage();
      try {
        return original.apply(this, args);
      } finally {
        const key = `${method} ${label(this, args)}`;
        const t = timers.get(key) ?? { calls: 0, ms: 0 };
        t.calls += 1;
        t.ms += cpuMs(started);
        timers.set(key, t);
      }
    };
  };
  const answersOf = (self: { answers: { counts: readonly unknown[]; listed?: boolean } }) => self.answers;
  wrap(CountSuppression.prototype, 'run', (self, args) => `${keyOf(answersOf(self))} ${(args[0] as unknown[] | undefined)?.length ? 'forced' : 'unforced'}`);
  wrap(CountSuppression.prototype, 'decide', (self) => keyOf(answersOf(self)));
  wrap(CountSuppression.prototype, 'outOfReach', (self) => keyOf(answersOf(self)));
  const outcome = (proto: object, method: string, said: (result: never) => string = String) => {
    const original = (proto as Record<string, (...args: unknown[]) => unknown>)[method]!;
    (proto as Record<string, unknown>)[method] = function (this: never, ...args: unknown[]) {
      const result = original.apply(this, args);
      if (timing) {
        const key = `${method} ${keyOf(answersOf(this))} -> ${said(result as never)}`;
        const t = timers.get(key) ?? { calls: 0, ms: 0 };
        t.calls += 1;
        timers.set(key, t);
      }
      return result;
    };
  };
  outcome(CountSuppression.prototype, 'outOfReach');
  outcome(CountSuppression.prototype, 'firstRunStands');
  wrap(CountAudit.prototype, 'traced', (self) => keyOf(answersOf(self)));
  // Whether an audit from scratch that the kept bounds called for finds a pin (a repair round follows) or not (the kept bounds were too narrow).
  outcome(CountAudit.prototype, 'traced', (finding: { pinned: unknown[] }) => (finding.pinned.length > 0 ? 'pins' : 'pins nothing'));
  wrap(CountAudit.prototype, 'again', (self) => keyOf(answersOf(self)));
  wrap(CountAudit.prototype, 'fromScratch', (self) => keyOf(answersOf(self)));
  // BENCH_TIMERS=0: no timers either (their process.cpuUsage calls cost about a tenth of a page), for the pages' own CPU.
  timing = process.env.BENCH_TIMERS !== '0';
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  const profiling = process.env.BENCH_PROFILE !== '0';
  // With BENCH_NEW_GROUP_AT, the profile covers that page and the pages after it only.
  const profiledFrom = NEW_GROUP_AT >= 0 && NEW_GROUP_AT < OWN_PAGES ? NEW_GROUP_AT : 0;
  const profiledPages = OWN_PAGES - profiledFrom;
  const heapSampling = process.env.BENCH_HEAP === '1';
  if (heapSampling) await post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  const cpu: number[] = [];
  const wall: number[] = [];
  // Per page, what its wall time held: the garbage collector's pauses on the main thread, and the audits taken from scratch (with timers).
  const gcPauses: Array<{ start: number; ms: number }> = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcPauses.push({ start: entry.startTime, ms: entry.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const pageGc: number[] = [];
  const pageScratch: number[] = [];
  // The lattice's shape (bumped when a response opens or closes a group: the decision is then carried over to new lines); read through the service's private store, as a bench may.
  const shape = () => (evidence as unknown as { store: { scope(campaigns: string[]): { structure: number } } }).store.scope(['wave']).structure;
  const pageOpened: boolean[] = [];
  const pageParts: Array<Array<[string, number]>> = [];
  const scratchCalls = () => [...timers].reduce((sum, [key, t]) => sum + (key.startsWith('fromScratch ') ? t.calls : 0), 0);
  const fingerprint = createHash('sha256');
  for (let i = 0; i < OWN_PAGES; i++) {
    const institution = institutions[(i * 7) % institutions.length]!;
    if (profiling && i === profiledFrom) await post('Profiler.start');
    const record = recordOf(`own:${i}`, institution, pool[(i * 13) % pool.length]!, new Date());
    // BENCH_NEW_GROUP_AT=k: page k's response opens new groups, as bench:evidence's second process's first one does (a new institution whose profile gives only country, type and role).
    if (i === NEW_GROUP_AT) Object.assign(record, { institution: String(new Types.ObjectId()), profile: { country: 'DE', institutionType: 'ivet_school', role: 'head' } });
    const shapeBefore = shape();
    evidence.apply(record);
    pageOpened.push(shape() !== shapeBefore);
    const started = process.cpuUsage();
    const startedAt = performance.now();
    const scratchBefore = scratchCalls();
    const timersBefore = new Map([...timers].map(([key, t]) => [key, t.ms]));
    await evidence.tables(views[i % views.length]!);
    while (evidence.deciding) await new Promise((resolve) => setImmediate(resolve));
    const endedAt = performance.now();
    wall.push(endedAt - startedAt);
    cpu.push(cpuMs(started));
    pageScratch.push(scratchCalls() - scratchBefore);
    pageParts.push(
      [...timers]
        .map(([key, t]): [string, number] => [key, t.ms - (timersBefore.get(key) ?? 0)])
        .filter(([, ms]) => ms >= 5)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4),
    );
    // The observer reports a pause after it: wait a turn so that this page's are in.
    await new Promise((resolve) => setImmediate(resolve));
    pageGc.push(gcPauses.filter((p) => p.start >= startedAt && p.start < endedAt).reduce((sum, p) => sum + p.ms, 0));
    // BENCH_FINGERPRINT=1: every view's tables after each response, hashed (outside the timing), to compare two versions' decisions.
    if (process.env.BENCH_FINGERPRINT === '1') {
      const wasTiming: boolean = timing;
      timing = false;
      for (const view of views) fingerprint.update(JSON.stringify(await evidence.tables(view)));
      timing = wasTiming;
    }
  }
  if (NEW_GROUP_AT >= 0 && NEW_GROUP_AT < OWN_PAGES) console.log(`page ${NEW_GROUP_AT}, after a response that opens new groups: wall ${wall[NEW_GROUP_AT]!.toFixed(0)} ms  CPU ${cpu[NEW_GROUP_AT]!.toFixed(0)} ms`);
  console.log(`pages in order (CPU ms): ${cpu.map((ms) => ms.toFixed(0)).join(' ')}`);
  console.log(`pages in order (wall ms): ${wall.map((ms) => ms.toFixed(0)).join(' ')}`);
  gcObserver.disconnect();
  console.log(`pages in order (garbage collector's pauses, ms): ${pageGc.map((ms) => ms.toFixed(0)).join(' ')}`);
  if (timing) console.log(`pages in order (audits from scratch): ${pageScratch.join(' ')}`);
  if (timing) {
    console.log(`pages over 100 ms of wall time, and their largest timed parts (CPU ms):`);
    wall.forEach((ms, i) => ms > 100 && console.log(`  page ${i}: wall ${ms.toFixed(0)}  CPU ${cpu[i]!.toFixed(0)}  GC ${pageGc[i]!.toFixed(0)}  ${pageParts[i]!.map(([key, t]) => `${key} ${t.toFixed(0)}`).join(', ')}`));
  }
  console.log(`pages whose response opened a group (from 0): ${pageOpened.flatMap((opened, i) => (opened ? [i] : [])).join(' ') || 'none'}`);
  if (process.env.BENCH_FINGERPRINT === '1') console.log(`fingerprint of every view after each response: ${fingerprint.digest('hex')}`);
  timing = false;
  console.log(`\nCount decisions' parts by question (CPU ms a page, calls a page):`);
  for (const [key, t] of [...timers].sort((a, b) => b[1].ms - a[1].ms).slice(0, 60)) console.log(`  ${(t.ms / OWN_PAGES).toFixed(1).padStart(7)} ms ${(t.calls / OWN_PAGES).toFixed(1).padStart(6)} calls  ${key}`);
  /** p50 and p95 of pages' times, in milliseconds. */
  const percentiles = (what: string, pages: number[]) => {
    const sorted = [...pages].sort((a, b) => a - b);
    return `${what} p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms  p95 ${sorted[Math.floor(0.95 * sorted.length)]!.toFixed(0)} ms`;
  };
  const total = cpu.reduce((a, b) => a + b, 0);
  console.log(`${OWN_PAGES} pages after an own response (decision to its end): ${percentiles('wall', wall)}  ${percentiles('CPU', cpu)}  CPU sum ${total.toFixed(0)} ms  ${load()}`);
  if (cpu.length > 1) {
    console.log(`  without the first page (${wall[0]!.toFixed(0)} ms wall, ${cpu[0]!.toFixed(0)} ms CPU): ${percentiles('wall', wall.slice(1))}  ${percentiles('CPU', cpu.slice(1))}`);
    console.log(`  pages over 100 ms: ${wall.filter((ms) => ms > 100).length} of ${wall.length} wall, ${cpu.filter((ms) => ms > 100).length} CPU`);
  }
  if (heapSampling) await printAllocations(post);
  if (!profiling) return;
  const { profile } = await post<{ profile: Profiler.Profile }>('Profiler.stop');
  if (process.env.PROFILE_OUT) writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));

  // Self and total time by function (name and file), each sample once per function however deep it recurs.
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const label = (id: number) => frameName(byId.get(id)!.callFrame);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  const deltas = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id, index) => {
    const ms = (deltas[index + 1] ?? 0) / 1000;
    if (byId.get(id)!.callFrame.functionName === '(idle)') return;
    busy += ms;
    self.set(label(id), (self.get(label(id)) ?? 0) + ms);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) seen.add(label(at));
    for (const name of seen) inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
  });
  const top = (map: Map<string, number>, n: number) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, ms]) => `  ${(ms / profiledPages).toFixed(1).padStart(7)} ms/page ${((100 * ms) / busy).toFixed(1).padStart(5)}%  ${name}`).join('\n');
  console.log(`\nSelf time (of ${(busy / profiledPages).toFixed(0)} ms a page not idle):\n${top(self, 30)}`);
  console.log(`\nTotal time:\n${top(inclusive, 60)}`);
}

/** A profile's frame as printed: its function, then its file from server/, scripts/ or node_modules/ on, and line. */
function frameName({ functionName, url, lineNumber }: { functionName: string; url: string; lineNumber: number }): string {
  return `${functionName || '(anonymous)'} ${url.replace(/^.*\/(server|scripts|node_modules)\//, '$1/')}:${lineNumber + 1}`;
}

/** What BENCH_HEAP=1 sampled: bytes allocated a page, by allocating function. */
async function printAllocations(post: <T>(method: string, params?: object) => Promise<T>) {
  const { profile } = await post<{ profile: HeapProfiler.SamplingHeapProfile }>('HeapProfiler.getSamplingProfile');
  await post('HeapProfiler.stopSampling');
  const bytes = new Map<string, number>();
  const walk = (node: HeapProfiler.SamplingHeapProfileNode, caller: string) => {
    const { functionName, lineNumber } = node.callFrame;
    const name = frameName(node.callFrame);
    // A built-in (no line of its own) is named with its caller: Set's add in a decision is not Set's add in a table.
    const key = lineNumber < 0 ? `${functionName} in ${caller}` : name;
    bytes.set(key, (bytes.get(key) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child, lineNumber < 0 ? caller : name);
  };
  walk(profile.head, '');
  const total = [...bytes.values()].reduce((a, b) => a + b, 0);
  console.log(`\nJS heap allocated: ${(total / OWN_PAGES / 1048576).toFixed(2)} MB a page (sampled; typed arrays' contents not counted)`);
  for (const [key, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${(size / OWN_PAGES / 1024).toFixed(0).padStart(7)} KB a page  ${key}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
