/**
 * npm run bench:disclosure — what disclosure control publishes of the demo
 * data (seed:demo's two waves, generated in memory from the same seeds) at the
 * real thresholds, and what the decision costs, with and without the
 * suppression of single answer counts (count-suppression.ts):
 *
 * - the share of published cells overall and in the one-dimension tables
 *   (every indicator and question of the newer wave, every breakdown);
 * - the share of the answer counts in those cells that are published (of the
 *   non-zero ones, those in hidden cells included);
 * - the share of the groups whose number of responses is published, per
 *   number of dimensions of their table, and of the questions' cells with
 *   respondents (every question of the newer wave, every table);
 * - the hidden sizes an outsider pins knowing that a question's respondents
 *   are at most the group's number of responses (respondents-audit.ts);
 * - the decision's CPU time from scratch, and from the last decision after
 *   one more response (the path a page takes after a submission), and after
 *   one that opens a new group (a profile combination no record had: the
 *   lattice changes).
 *
 * With suppression of single answer counts, once per protection width
 * (Thresholds.minRange) given as arguments (`npm run bench:disclosure -- 1 2 3`),
 * the default's when none is given, in the order given; BENCH_DONT_KNOW=0
 * leaves "don't know" counts out of it (Thresholds.dontKnowCounts), and
 * BENCH_SOLVE_UNKNOWNS=6000 solves answer counts as DISCLOSURE_SOLVE_UNKNOWNS
 * does (Thresholds.solveUnknowns; 0, off, by default). BENCH_INSTITUTIONS=10
 * makes the campaigns from 10 institutions instead of seed:demo's 150 (a
 * campaign of a few dozen responses).
 *
 * Prints figures with the load average; asserts nothing. No database.
 */
import { performance } from 'node:perf_hooks';
import { solverWork } from '../server/evidence/count-equalities.ts';
import { DEFAULT_THRESHOLDS, dontKnowCountsOf, minRangeOf, solveUnknownsOf } from '../server/evidence/disclosure.ts';
import { decideFromCounts } from '../server/evidence/evidence-decision.ts';
import { DIMENSION_NAMES, type Dimension } from '../server/evidence/evidence-filter.ts';
import type { EvidenceRecord } from '../server/evidence/evidence-record.ts';
import { EvidenceStore } from '../server/evidence/evidence-store.ts';
import { indexLines } from '../server/evidence/count-suppression.ts';
import { RESPONSES, viewTables } from '../server/evidence/evidence-tally.ts';
import { answerSides, buildTablesFrom, cellId, disclosureUnits, latticeOf, RESPONSES_FIGURE, type EvidenceTables } from '../server/evidence/indicator.service.ts';
import { ACCREDITED_STATUSES, defineIndicators } from '../server/evidence/indicators.ts';
import { buildCatalogue } from '../server/evidence/question-catalogue.ts';
import { auditWithinResponses } from '../server/evidence/respondents-audit.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';
import { loadAverage, median } from './bench-figures.ts';

/** As seed:demo makes them: institutions (BENCH_INSTITUTIONS for fewer or more), contacts per institution, the waves and the share of contacts who answer. */
const INSTITUTIONS = Number(process.env.BENCH_INSTITUTIONS ?? 150);
if (!Number.isInteger(INSTITUTIONS) || INSTITUTIONS < 1) throw new Error(`BENCH_INSTITUTIONS is a whole number of institutions, at least 1, not ${process.env.BENCH_INSTITUTIONS}`);
const CONTACTS = 4;
const WAVES = [
  { wave: 1 as const, campaign: 'demo-2024', answerShare: 0.62 },
  { wave: 2 as const, campaign: 'demo-2025', answerShare: 0.74 },
];
const REPEATS = Number(process.env.BENCH_REPEATS ?? 0) || 5;

const load = () => `load average ${loadAverage()}`;
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

const registry = new QuestionnaireRegistry();
const catalogue = buildCatalogue(loadSurveyLibrary());
const set = defineIndicators(catalogue);
const units = disclosureUnits(catalogue, set);
const sidesOf = (question: string, keys: readonly string[]) => answerSides(catalogue, set, question, keys);

function demoRecords(): EvidenceRecord[] {
  const records: EvidenceRecord[] = [];
  for (let i = 0; i < INSTITUTIONS; i++) {
    const profile = syntheticInstitution(randomSource(10_000 + i), i);
    for (let c = 0; c < CONTACTS; c++) {
      for (const wave of WAVES) {
        const random = randomSource(wave.wave * 1_000_000 + i * 10 + c);
        if (random.next() > wave.answerShare) continue;
        const result = validatedResponse(registry, syntheticAnswers(random, profile, wave.wave), ['S1', 'S2', 'S3', 'S4']);
        if (!result.ok) continue;
        records.push({ id: `${wave.campaign}:${i}:${c}`, campaign: wave.campaign, institution: `inst${i}`, revision: 1, submittedAt: new Date(Date.UTC(2020 + wave.wave, 3, 1, 0, records.length)), profile: result.profile, items: result.items });
      }
    }
  }
  return records;
}

function storeOf(records: EvidenceRecord[]): EvidenceStore {
  const store = new EvidenceStore({ catalogue, ratios: set.ratios, indicatorsOf: set.indicatorsOf, institutionCap: DEFAULT_THRESHOLDS.minInstitutions, accredited: ACCREDITED_STATUSES }, viewTables());
  for (const record of records) store.apply(record);
  return store;
}

interface Shares {
  overall: [number, number];
  oneDimension: [number, number];
  /** Non-zero answer counts shown, of all non-zero ones (in hidden cells too), and of those in published cells. */
  counts: [number, number];
  countsInPublished: [number, number];
  /** Indicator values suppressed beside a hidden answer count (their n published), overall and by one dimension, of the published indicator cells. */
  withheld: { overall: [number, number]; oneDimension: [number, number] };
  /** Top-two shares suppressed beside a hidden answer count, of the published cells of questions that have one. */
  topShares: [number, number];
  /** Non-zero "don't know" counts suppressed (with the respondents) in published cells, of the published cells that have one: overall, by one dimension. */
  dontKnow: { overall: [number, number]; oneDimension: [number, number] };
  /** The same, of number questions (S4.5's separate box): overall and by one dimension together. */
  dontKnowOfNumbers: [number, number];
}

function sharesOf(tables: EvidenceTables[]): Shares {
  const shares: Shares = { overall: [0, 0], oneDimension: [0, 0], counts: [0, 0], countsInPublished: [0, 0], withheld: { overall: [0, 0], oneDimension: [0, 0] }, topShares: [0, 0], dontKnow: { overall: [0, 0], oneDimension: [0, 0] }, dontKnowOfNumbers: [0, 0] };
  const add = (pair: [number, number], shown: boolean) => ((pair[0] += shown ? 1 : 0), (pair[1] += 1));
  tables.forEach((t, i) => {
    const cells = (row: { overall: unknown; groups: Record<string, unknown> }) => (i === 0 ? [row.overall] : Object.values(row.groups));
    const target = i === 0 ? shares.overall : shares.oneDimension;
    for (const row of t.indicators) {
      for (const cell of cells(row) as EvidenceTables['indicators'][number]['overall'][]) {
        add(target, !cell.suppressed);
        if (!cell.suppressed) add(i === 0 ? shares.withheld.overall : shares.withheld.oneDimension, cell.withheld === true);
      }
    }
    for (const row of t.questions) for (const cell of cells(row) as EvidenceTables['questions'][number]['overall'][]) add(target, !cell.suppressed);
  });
  return shares;
}

/** Per number of dimensions of a table (0–3), the groups whose number of responses is published, of all the groups listed. */
function responsesShares(decision: ReturnType<typeof decideFromCounts>): Array<[number, number]> {
  const shares = Array.from({ length: 4 }, (): [number, number] => [0, 0]);
  const hidden = decision.hidden.get(RESPONSES_FIGURE)!;
  for (const dimensions of viewTables()) {
    for (const key of decision.source.cells(dimensions).keys()) {
      shares[dimensions.length]![0] += hidden.has(cellId(dimensions, key)) ? 0 : 1;
      shares[dimensions.length]![1] += 1;
    }
  }
  return shares;
}

/** Per number of dimensions of a table (0–3), the cells of questions with respondents there that are published, of all those cells. */
function questionShares(decision: ReturnType<typeof decideFromCounts>): Array<[number, number]> {
  const shares = Array.from({ length: 4 }, (): [number, number] => [0, 0]);
  const questions = units.flatMap((unit) => unit.flatMap((m) => (m.question === undefined ? [] : [{ id: m.id, question: m.question }])));
  for (const dimensions of viewTables()) {
    const cells = decision.source.cells(dimensions);
    for (const key of cells.keys()) {
      const tally = cells.get(key)!;
      const id = cellId(dimensions, key);
      for (const { id: figure, question } of questions) {
        if ((tally.populations.get(question)?.respondents ?? 0) <= 0) continue;
        shares[dimensions.length]![0] += decision.hidden.get(figure)!.has(id) ? 0 : 1;
        shares[dimensions.length]![1] += 1;
      }
    }
  }
  return shares;
}

/** Non-zero answer counts of the overall and one-dimension cells, by what an open decision (thresholds 1/1) shows: the truth. */
function countShares(tables: EvidenceTables[], truth: EvidenceTables[], shares: Shares): void {
  tables.forEach((t, i) => {
    t.questions.forEach((row, q) => {
      const open = truth[i]!.questions[q]!;
      const pairs = i === 0 ? [[row.overall, open.overall] as const] : Object.keys(row.groups).map((key) => [row.groups[key]!, open.groups[key]!] as const);
      for (const [cell, real] of pairs) {
        if (real.suppressed) continue;
        if (!cell.suppressed && real.dk) {
          const pair = i === 0 ? shares.dontKnow.overall : shares.dontKnow.oneDimension;
          pair[0] += cell.dk === null ? 1 : 0;
          pair[1] += 1;
          if (row.kind === 'number') ((shares.dontKnowOfNumbers[0] += cell.dk === null ? 1 : 0), (shares.dontKnowOfNumbers[1] += 1));
        }
        if (!cell.suppressed && real.topShare !== null) {
          shares.topShares[0] += cell.topShare === null ? 1 : 0;
          shares.topShares[1] += 1;
        }
        real.counts.forEach((count, k) => {
          if (!count.n) return;
          const shown = !cell.suppressed && cell.counts[k]!.n !== null;
          shares.counts[0] += shown ? 1 : 0;
          shares.counts[1] += 1;
          if (cell.suppressed) return;
          shares.countsInPublished[0] += shown ? 1 : 0;
          shares.countsInPublished[1] += 1;
        });
      }
    });
  });
}

/** A response of the wave whose profile mixes two others' so that it opens a group no record had (found on a probe store). */
function newGroupRecord(records: EvidenceRecord[], campaign: string): EvidenceRecord {
  const probe = storeOf(records);
  const wave = records.filter((record) => record.campaign === campaign);
  for (const record of wave) {
    for (const other of wave) {
      for (const dimension of DIMENSION_NAMES) {
        if (other.profile[dimension] === undefined || other.profile[dimension] === record.profile[dimension]) continue;
        const candidate = { ...record, id: `${campaign}:probe`, profile: { ...record.profile, [dimension]: other.profile[dimension] } };
        const structure = probe.scope([campaign]).structure;
        probe.apply(candidate);
        if (probe.scope([campaign]).structure !== structure) return candidate;
        probe.remove(candidate.id);
      }
    }
  }
  throw new Error('no profile combination opens a new group');
}

/**
 * What an outsider pins with one relation that the mechanism's audits use
 * only where the number of responses is published: a question's
 * respondents are at most the group's number of responses
 * (respondents-audit.ts, interval propagation over every line, every
 * question and the number of responses together). The hidden
 * sizes (numbers of responses and questions' respondents, not 0) pinned, of
 * all of them.
 */
function withinPins(decision: ReturnType<typeof decideFromCounts>, minRange: number): string {
  const { cells, lines } = latticeOf(decision.source);
  const ids = [...cells.keys()];
  const column = (key: string) => Int32Array.from(ids, (id) => cells.get(id)!.populations.get(key)?.respondents ?? 0);
  const hiddenOf = (figure: string) => {
    const hidden = decision.hidden.get(figure)!;
    return (c: number) => hidden.has(ids[c]!);
  };
  const questions = units.flatMap((unit) => unit.flatMap((m) => (m.question === undefined ? [] : [{ sizes: column(m.question), hidden: hiddenOf(m.id) }])));
  const lattice = indexLines(ids, lines);
  // Its CPU too: what auditing every question with the relation in every decision, from scratch, would add.
  const started = process.cpuUsage();
  const finding = auditWithinResponses(lattice, { sizes: column(RESPONSES), hidden: hiddenOf(RESPONSES_FIGURE) }, questions, minRange);
  const used = process.cpuUsage(started);
  const responses = finding.pinned.filter((v) => v < ids.length).length;
  return `${finding.pinned.length} of ${finding.checked} hidden sizes (${responses} numbers of responses), audited in ${((used.user + used.system) / 1000).toFixed(0)} ms of CPU over ${questions.length} questions`;
}

const pct = ([shown, all]: [number, number]) => `${((100 * shown) / Math.max(1, all)).toFixed(1)}% (${shown} of ${all})`;

function main() {
  const records = demoRecords();
  const newer = WAVES[1]!.campaign;
  console.log(`Demo data: ${records.length} responses (${records.filter((r) => r.campaign === newer).length} in ${newer}), thresholds ${DEFAULT_THRESHOLDS.minInstitutions} institutions / ${DEFAULT_THRESHOLDS.minRespondents} respondents; ${load()}`);
  const views = [[], ...DIMENSION_NAMES.map((d) => [d])] as Dimension[][];
  const tablesOf = (decision: ReturnType<typeof decideFromCounts>, thresholds = DEFAULT_THRESHOLDS) =>
    views.map((breakdown) => buildTablesFrom(catalogue, set, decision, { campaigns: [newer], where: {}, breakdown }, thresholds));

  const truthStore = storeOf(records);
  const open = { minInstitutions: 1, minRespondents: 1 };
  const truth = tablesOf(decideFromCounts(truthStore.scope([newer]), units, open, { answerCounts: false, sidesOf }), open);

  const opener = newGroupRecord(records, newer);
  const widths = process.argv.slice(2).map(Number);
  if (widths.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`protection widths are whole numbers of at least 1, not ${process.argv.slice(2).join(' ')}`);
  const dontKnowCounts = process.env.BENCH_DONT_KNOW !== '0';
  const solveUnknowns = Number(process.env.BENCH_SOLVE_UNKNOWNS ?? 0);
  if (!Number.isInteger(solveUnknowns) || solveUnknowns < 0) throw new Error(`BENCH_SOLVE_UNKNOWNS is a whole number of open quantities (0: off), not ${process.env.BENCH_SOLVE_UNKNOWNS}`);
  const runs = [
    { answerCounts: false, thresholds: DEFAULT_THRESHOLDS },
    ...(widths.length > 0 ? widths : [minRangeOf(DEFAULT_THRESHOLDS)]).map((minRange) => ({ answerCounts: true, thresholds: { ...DEFAULT_THRESHOLDS, minRange, dontKnowCounts, solveUnknowns } })),
  ];
  for (const { answerCounts, thresholds } of runs) {
    const scratch: number[] = [];
    const scratchWall: number[] = [];
    const incremental: number[] = [];
    const work0 = { ...solverWork };
    const newGroup: number[] = [];
    let shares: Shares | undefined;
    let responses: Array<[number, number]> = [];
    let questionCells: Array<[number, number]> = [];
    let pinned = '';
    for (let r = 0; r < REPEATS; r++) {
      // A new store each time: its counts have no last decision to start from.
      const store = storeOf(records);
      const counts = store.scope([newer]);
      let started = process.cpuUsage();
      const wall = performance.now();
      const decision = decideFromCounts(counts, units, thresholds, { answerCounts, sidesOf });
      scratch.push(cpuMs(started));
      scratchWall.push(performance.now() - wall);
      if (r === 0) {
        const tables = tablesOf(decision, thresholds);
        shares = sharesOf(tables);
        countShares(tables, truth, shares);
        responses = responsesShares(decision);
        questionCells = questionShares(decision);
        pinned = withinPins(decision, minRangeOf(thresholds));
      }
      // One more response of the wave (another contact's): the decision from the last one.
      store.apply({ ...records.find((record) => record.campaign === newer)!, id: `${newer}:extra:${r}` });
      started = process.cpuUsage();
      decideFromCounts(store.scope([newer]), units, thresholds, { answerCounts, sidesOf });
      incremental.push(cpuMs(started));
      // A response that opens a new group (a profile combination no record had): the lattice changes.
      store.apply({ ...opener, id: `${newer}:opener:${r}` });
      started = process.cpuUsage();
      decideFromCounts(store.scope([newer]), units, thresholds, { answerCounts, sidesOf });
      newGroup.push(cpuMs(started));
    }
    const s = shares!;
    console.log(`\n${answerCounts ? `With suppression of single answer counts${dontKnowCountsOf(thresholds) ? ', "don\'t know" among them' : ''}, protection width ${minRangeOf(thresholds)}${solveUnknownsOf(thresholds) > 0 ? `, solved up to ${solveUnknownsOf(thresholds)} open quantities` : ''}` : 'Without suppression of single answer counts'}:`);
    console.log(`  overall cells published:            ${pct(s.overall)}`);
    console.log(`  one-dimension cells published:      ${pct(s.oneDimension)}`);
    console.log(`  non-zero answer counts published:   ${pct(s.counts)} (in published cells: ${pct(s.countsInPublished)})`);
    console.log(`  indicator values suppressed beside a hidden count (n shown), of published indicator cells: overall ${pct(s.withheld.overall)}, one dimension ${pct(s.withheld.oneDimension)}`);
    console.log(`  top-two shares suppressed beside a hidden count, of published cells that have one: ${pct(s.topShares)}`);
    console.log(`  "don't know" counts (not 0) suppressed with the respondents, of published cells that have one: overall ${pct(s.dontKnow.overall)}, one dimension ${pct(s.dontKnow.oneDimension)}`);
    console.log(`    of number questions (overall and one dimension): ${pct(s.dontKnowOfNumbers)}`);
    console.log(`  numbers of responses published, by tables over 0, 1, 2 and 3 dimensions: ${responses.map(pct).join('; ')}`);
    console.log(`  question cells with respondents published, by tables over 0, 1, 2 and 3 dimensions: ${questionCells.map(pct).join('; ')}`);
    console.log(`  pinned by an outsider who knows respondents ≤ responses: ${pinned}`);
    if (solveUnknownsOf(thresholds) > 0) {
      const work = { solves: solverWork.solves - work0.solves, targets: solverWork.targets - work0.targets, shown: solverWork.shownByMoves - work0.shownByMoves };
      console.log(`  linear programming beyond the elimination budget: ${work.solves} solves; ${work.shown} of ${work.targets} targets shown open by kept moves (count-equalities.ts Witnesses)`);
    }
    console.log(`  decision from scratch: median ${median(scratch).toFixed(0)} ms CPU (${median(scratchWall).toFixed(0)} ms wall) over ${REPEATS}; after one more response: median ${median(incremental).toFixed(0)} ms CPU; after one that opens a new group: median ${median(newGroup).toFixed(0)} ms CPU; ${load()}`);
  }
}

main();
