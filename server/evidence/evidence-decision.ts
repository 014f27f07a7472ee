import { bitArray, bitAt, markBit } from './bits.ts';
import { differingCells } from './count-audit.ts';
import { CountSuppression, linesByCell, type AnswerCounts, type CountColumn, type CountDecision, type LineIndex } from './count-suppression.ts';
import { dontKnowCountsOf, minRangeOf, solveUnknownsOf, type Thresholds } from './disclosure.ts';
import type { Dimension } from './evidence-filter.ts';
import type { CampaignCounts, Cell } from './evidence-store.ts';
import { boundedResponses, byCodeUnits, cellId, DONT_KNOW_KEY, NUMBERS_KEY, questionFigures, respondentsAtMostOf, RESPONSES_FIGURE, sameSizeCouples, sameSizeRoundSteps, TiedRespondentLines, withinResponsesForced, type CellLookup, type Disclosure, type HiddenCells, type HiddenCounts, type HiddenCountsOfQuestion, type UnitMember } from './indicator.service.ts';
import { DONT_KNOW } from './question-catalogue.ts';

/**
 * The disclosure decision of disclosure.ts, taken from a campaign's kept
 * counts (evidence-store.ts) with plain number arrays: the same cells, lines,
 * units and rules as disclosureOf, in the same order, so both engines hide
 * the same cells. Taken again whenever the counts changed, from the last
 * decision (see decideFromCounts); the lattice's lines only when cells
 * appeared or went.
 */

/** The lattice's cells and their lines, numbered (the lines' index arrays as count-suppression.ts reads them). */
interface Lattice extends LineIndex {
  structure: number;
  cells: Cell[];
  ids: string[];
  indexOf: Map<string, number>;
}

const lattices = new WeakMap<CampaignCounts, Lattice>();

function latticeOf(counts: CampaignCounts): Lattice {
  const known = lattices.get(counts);
  if (known && known.structure === counts.structure) return known;
  const cells: Cell[] = [];
  const ids: string[] = [];
  const indexOf = new Map<string, number>();
  const keysOf = new Map<string, string[]>();
  for (const table of counts.tables) {
    const keys = [...table.cells.keys()].sort(byCodeUnits);
    keysOf.set(table.dimensions.join('+'), keys);
    for (const key of keys) {
      const id = cellId(table.dimensions, key);
      indexOf.set(id, cells.length);
      cells.push(table.cells.get(key)!);
      ids.push(id);
    }
  }
  const totals: number[] = [];
  const starts: number[] = [];
  const members: number[] = [];
  for (const table of counts.tables) {
    const dimensions = table.dimensions;
    const keys = keysOf.get(dimensions.join('+'))!;
    dimensions.forEach((_, axis) => {
      const rest = dimensions.filter((__, i) => i !== axis);
      const lines = new Map<string, number[]>();
      for (const key of keys) {
        const restKey = key
          .split('|')
          .filter((__, i) => i !== axis)
          .join('|');
        let line = lines.get(restKey);
        if (!line) lines.set(restKey, (line = []));
        line.push(indexOf.get(cellId(dimensions, key))!);
      }
      for (const [restKey, line] of lines) {
        totals.push(indexOf.get(cellId(rest, restKey))!);
        starts.push(members.length);
        members.push(...line);
      }
    });
  }
  starts.push(members.length);
  const order = ids.map((_, i) => i).sort((a, b) => byCodeUnits(ids[a]!, ids[b]!));
  const rank = new Int32Array(ids.length);
  order.forEach((cell, position) => (rank[cell] = position));
  const lineStart = Int32Array.from(starts);
  const lineMembers = Int32Array.from(members);
  const lineTotal = Int32Array.from(totals);
  const memberOf = linesByCell(cells.length, lineTotal.length, (l, visit) => {
    for (let k = lineStart[l]!; k < lineStart[l + 1]!; k++) visit(lineMembers[k]!);
  });
  const totalOf = linesByCell(cells.length, lineTotal.length, (l, visit) => visit(lineTotal[l]!));
  const lattice: Lattice = {
    structure: counts.structure,
    cells,
    ids,
    indexOf,
    rank,
    lineTotal,
    lineStart,
    lineMembers,
    memberOfStart: memberOf.start,
    memberOf: memberOf.lines,
    totalOfStart: totalOf.start,
    totalOf: totalOf.lines,
  };
  lattices.set(counts, lattice);
  return lattice;
}

/**
 * A column of respondents, of a figure's sizes, or of a category's or "don't
 * know"'s answer counts, one value per cell: in 16 bits until a value does
 * not fit (at 50,000 records, 32-bit columns were ~160 bytes a response of
 * the decisions' state), then in 32 bits for that campaign (wideCampaigns).
 */
function countColumn(n: number, wide: boolean): CountColumn {
  return wide ? new Int32Array(n) : new Uint16Array(n);
}

/** What the last decision of a campaign's counts found, kept to take the next one from what changed since. */
interface DecisionState {
  lattice: Lattice;
  thresholds: Thresholds;
  /** Whether single answer counts are suppressed too (the benchmark compares without). */
  answerCounts: boolean;
  /** The layout's slots when the units' answer categories were last listed (a new answer adds one). */
  slotCount: number;
  /** Each lattice cell's version when it was last read. */
  seen: Float64Array;
  /** Respondents per population across the lattice's cells, one column per population a unit uses. */
  columns: Map<number, CountColumn>;
  units: UnitState[];
  /** The rule for tied respondents' lines, kept from the last decision (listed again from scratch when a unit's figures or the lattice changed). */
  tied: TiedRespondentLines;
  /** The published numbers of responses as the last decision left them, bounding the other units' questions' respondents (AnswerCounts.respondentsAtMost). */
  atMost: Int32Array;
}

interface UnitState {
  /** Per figure, the populations behind it (-1: not met yet). */
  figures: number[][];
  /** Per figure, its respondents per cell (a population's column when it has one population). */
  sizes: CountColumn[];
  /** Cells hidden by primary suppression, and the unit's whole decision (never changed once handed out). */
  primary: Uint8Array;
  hidden: Uint8Array;
  /** Its questions' answer counts, and which of them are hidden in published cells. */
  questions: QuestionCounts[];
  /**
   * Its last secondary suppression from its primary, forced and whole cells,
   * with what it read (see secondaryStands), per step (decideUnit's).
   */
  secondary: Map<string, SecondaryRun>;
  /** The cells its last decision hid beside its primary ones for the number of responses' sake (sameSizeRounds); none: its own decision. */
  forced: ReadonlySet<number>;
}

interface SecondaryRun {
  /** The cells hidden when it started: the primary ones and those forced. */
  start: Uint8Array;
  /** Per figure and cell at f × n + c, whether the figure has answers there (a bit each: bitAt). */
  withData: Int32Array;
  hidden: Uint8Array;
  ties: Int32Array;
  /**
   * The cells whose sizes may have changed since withData was read or last
   * found the same (each decision's changed cells; sizes change nowhere
   * else); null once they come to more than SINCE_MOST_SHARE of the cells:
   * then secondaryStands reads every cell.
   */
  since: number[] | null;
}

/** The share of a lattice's cells up to which a secondary run notes the cells changed since it (SecondaryRun.since). */
const SINCE_MOST_SHARE = 1 / 8;

/** Notes a decision's changed cells in each of a unit's kept secondary runs (SecondaryRun.since). */
function noteChangedCells(unit: UnitState, changed: readonly number[], n: number): void {
  if (changed.length === 0) return;
  for (const run of unit.secondary.values()) {
    if (run.since === null) continue;
    if (run.since.length + changed.length > n * SINCE_MOST_SHARE) run.since = null;
    else for (const c of changed) run.since.push(c);
  }
}

interface QuestionCounts {
  name: string;
  /**
   * The answer categories met in the campaign ("don't know" apart), in code-unit order of their keys: their slots; their keys,
   * then "don't know"'s where it is a category (AnswerCounts.openSum). A number question's one category is its numericN slot.
   */
  slots: number[];
  keys: string[];
  sumOf: number[];
  sides: Int32Array[];
  /** Per category, its count per cell; per cell, its "don't know" answers (from its slots) and respondents (its population's column). */
  values: CountColumn[];
  dontKnowSlots: number[];
  dontKnow: CountColumn;
  respondents: CountColumn;
  /** The number of responses (count-suppression.ts AnswerCounts.listed): its one count is the responses column. */
  listed?: true;
  /** Its counts, as the decisions of them read them. */
  answers: AnswerCounts;
  /**
   * The decisions of its counts, each taken again from what changed since it
   * was last taken, per step of its unit's decision (decideUnit): a unit of
   * sameSizeRounds is decided once per round, each time with more cells
   * hidden, and a unit whose counts hide a cell whole decides again with it;
   * one kept decision went back and forth between those and read them all
   * again each time (and its audit, with bounds kept from another step, was
   * taken from scratch), while the same step after one more response hides
   * nearly the same cells.
   */
  steps: Map<string, KeptCounts>;
  /** The hidden counts by cell id, for the suppression's last decision. */
  view: HiddenCountsOfQuestion & { decision: CountDecision | undefined };
}

/** A question's count decision kept for one step, and the cells where its counts changed since it was last taken. */
interface KeptCounts {
  suppression: CountSuppression;
  changedCells: number[];
}

const states = new WeakMap<CampaignCounts, DecisionState>();
/** Campaigns where a value of a column of respondents or answer counts did not fit in 16 bits: their columns are 32-bit from then on (their state is dropped when one is added). */
const wideCampaigns = new WeakSet<CampaignCounts>();

/**
 * The decision for a campaign's counts as they are now, with a table source
 * that builds each group's tally when a view asks for it. Taken from the last
 * decision: only the cells whose counts changed since are read again, and
 * only the units whose sizes or primary suppression changed there are decided
 * again (a response touches the units of what it answered, in one cell per
 * table). Secondary suppression of such a unit is replayed whole, from its
 * primary cells, so the decision is exactly the one from scratch. Its
 * questions' answer counts are decided again from the lines that changed
 * (count-suppression.ts CountSuppression), with the same outcome.
 *
 * Taken in steps (decisionSteps), a unit or a question's counts at a
 * time, so that a caller can let other work run between them (the service
 * takes it in slices off the event loop's way); the counts must not change
 * until the last step (the service holds changes back meanwhile).
 */
export function decideFromCounts(
  counts: CampaignCounts,
  units: readonly UnitMember[][],
  thresholds: Thresholds,
  options: { sidesOf: (question: string, keys: readonly string[]) => Int32Array[]; answerCounts?: boolean },
): Disclosure {
  const steps = decisionSteps(counts, units, thresholds, options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** No cells (a population whose respondents changed nowhere). */
const NO_CELLS: readonly number[] = Object.freeze([]);

/** decideFromCounts's decision, a step at a time: nothing may change the counts from its first step to its last. */
export function* decisionSteps(
  counts: CampaignCounts,
  units: readonly UnitMember[][],
  thresholds: Thresholds,
  /** sidesOf: indicator.service.ts answerSides, for the same decision as disclosureOf's; answerCounts: false leaves count suppression out (the benchmark compares). */
  options: { sidesOf: (question: string, keys: readonly string[]) => Int32Array[]; answerCounts?: boolean },
): Generator<void, Disclosure, void> {
  counts.settleInstitutions();
  const lattice = latticeOf(counts);
  const { cells } = lattice;
  const n = cells.length;
  const layout = counts.layout;
  const cap = layout.spec.institutionCap;

  const answerCounts = options.answerCounts !== false;
  const minRange = minRangeOf(thresholds);
  const solveUnknowns = solveUnknownsOf(thresholds);
  let state = states.get(counts);
  // Each value of a column is checked as it is written (put): one that does not fit in 16 bits starts the decision again with 32-bit columns.
  const wide = wideCampaigns.has(counts);
  let overflow = false;
  const put = (column: CountColumn, c: number, value: number) => {
    column[c] = value;
    if (column[c] !== value) overflow = true;
  };
  const sameRules = state !== undefined && state.thresholds === thresholds && state.answerCounts === answerCounts;
  // Cells joined or left: the last decision's state carried over to the new lattice, every unit decided again.
  const restructured = sameRules && state!.lattice !== lattice;
  if (restructured) states.set(counts, (state = carriedOver(state!, lattice)));
  if (!state || !sameRules) {
    state = { lattice, thresholds, answerCounts, slotCount: 0, seen: new Float64Array(n).fill(-1), columns: new Map(), units: [], tied: new TiedRespondentLines(lattice), atMost: new Int32Array(n).fill(-1) };
    states.set(counts, state);
  }
  const { columns, seen } = state;
  const respondentsOf = (cell: Cell, p: number) => (p >= 0 && p < cell.populations.length ? cell.populations[p]! : 0);
  const column = (p: number) => {
    let values = columns.get(p);
    if (!values) {
      values = countColumn(n, wide);
      for (let c = 0; c < n; c++) put(values, c, respondentsOf(cells[c]!, p));
      columns.set(p, values);
    }
    return values;
  };

  // The cells that changed since the last decision, and the populations whose respondents changed there.
  const changed: number[] = [];
  for (let c = 0; c < n; c++) {
    if (seen[c] === cells[c]!.version) continue;
    seen[c] = cells[c]!.version;
    changed.push(c);
  }
  // The lattice (made again when cells appeared) and the scan for changed cells read every cell: a step each.
  yield;
  const changedPopulations = new Set<number>();
  // Per population, the cells where its respondents changed, in the order of `changed` (each cell once): lists, not sets, since
  // they are only pushed to and read in that order (a set per population was ~0.8 MB of garbage a page at 50,000).
  const changedCellsByPopulation = new Map<number, number[]>();
  for (const [p, values] of columns) {
    for (const c of changed) {
      const respondents = respondentsOf(cells[c]!, p);
      if (values[c] === respondents) continue;
      put(values, c, respondents);
      changedPopulations.add(p);
      let cellsOf = changedCellsByPopulation.get(p);
      if (!cellsOf) changedCellsByPopulation.set(p, (cellsOf = []));
      cellsOf.push(c);
    }
  }

  yield;
  const tooSmall = (populations: number[], c: number) => {
    let any = false;
    for (const p of populations) {
      const respondents = respondentsOf(cells[c]!, p);
      if (respondents === 0) continue;
      any = true;
      const institutions = Math.min(cells[c]!.institutionN[p]!, cap);
      if (respondents < thresholds.minRespondents || institutions < thresholds.minInstitutions) return true;
    }
    return !any;
  };
  const sizeAt = (populations: number[], c: number) => {
    let size = 0;
    for (const p of populations) size += respondentsOf(cells[c]!, p);
    return size;
  };
  const primaryAt = (unit: UnitState, c: number) => {
    let withData = false;
    for (let f = 0; f < unit.figures.length; f++) {
      if (unit.sizes[f]![c]! <= 0) continue;
      withData = true;
      if (tooSmall(unit.figures[f]!, c)) return 1;
    }
    return withData ? 0 : 1;
  };

  // Each question's answer categories ("don't know" apart) that the campaign has: a category no record gave never acts.
  const countAt = (slot: number, c: number) => cells[c]!.counts[layout.places[slot]! >> 1] ?? 0;
  const overall = lattice.indexOf.get(cellId([], '')) ?? -1;
  const categories = new Map<string, Array<{ slot: number; key: string; row: string }>>();
  if (state.answerCounts && overall >= 0) {
    layout.slots.forEach((slot, i) => {
      if (slot.kind !== 'item' || slot.value === DONT_KNOW || countAt(i, overall) <= 0) return;
      let list = categories.get(slot.question);
      if (!list) categories.set(slot.question, (list = []));
      list.push({ slot: i, key: slot.key, row: slot.row ?? '' });
    });
    for (const list of categories.values()) list.sort((a, b) => byCodeUnits(a.key, b.key));
  }
  const dontKnowSlotsOf = new Map<string, number[]>();
  // A number question's valid answers (one number each): its numericN slot.
  const numbersSlotOf = new Map<string, number>();
  layout.slots.forEach((slot, i) => {
    if (slot.kind === 'numericN') numbersSlotOf.set(slot.question, i);
    if (slot.kind !== 'item' || slot.value !== DONT_KNOW) return;
    let list = dontKnowSlotsOf.get(slot.question);
    if (!list) dontKnowSlotsOf.set(slot.question, (list = []));
    list.push(i);
  });
  const campaignDontKnow = (member: UnitMember) => dontKnowCountsOf(thresholds) && overall >= 0 && dontKnowAt(dontKnowSlotsOf.get(member.question!) ?? [], overall) > 0;
  /** A number question whose valid answers are one category with its "don't know" beside it (disclosureOf's rule): the campaign has both. */
  const numbersCategory = (member: UnitMember) => {
    const slot = member.number === true ? numbersSlotOf.get(member.question!) : undefined;
    return slot !== undefined && state.answerCounts && overall >= 0 && countAt(slot, overall) > 0 && campaignDontKnow(member);
  };
  /** Whether a question's categories lie in one row, as a single answer's do (a grid's lie in one row per item); asked of every question in every decision, so without a set of the rows. */
  const inOneRow = (list: ReadonlyArray<{ row: string }> | undefined) => list !== undefined && list.length > 0 && list.every((c) => c.row === list[0]!.row);
  /** Whether a question's "don't know" is one more category (disclosureOf's rule): a single answer or a number, the campaign has one. */
  const dontKnowCategory = (member: UnitMember) =>
    numbersCategory(member) || (member.singleAnswer === true && inOneRow(categories.get(member.question!)) && campaignDontKnow(member));
  const questionCounts = (member: UnitMember, known: QuestionCounts | undefined): QuestionCounts => {
    const name = member.question!;
    const numbers = numbersCategory(member);
    const list = numbers ? [{ slot: numbersSlotOf.get(name)!, key: NUMBERS_KEY, row: '' }] : (categories.get(name) ?? []);
    const slots = list.map((c) => c.slot);
    const withDontKnow = dontKnowCategory(member);
    if (known && known.slots.length === slots.length && known.slots.every((slot, k) => slot === slots[k]) && (known.answers.openSum !== undefined) === withDontKnow) {
      // The cells where its respondents changed are a sublist of `changed`, in its order: met in step with it.
      const respondentsChanged = changedCellsOfPopulation(name);
      let nextChanged = 0;
      for (const c of changed) {
        let differs = false;
        known.slots.forEach((slot, k) => {
          const value = countAt(slot, c);
          if (known.values[k]![c] === value) return;
          put(known.values[k]!, c, value);
          differs = true;
        });
        const dontKnow = dontKnowAt(known.dontKnowSlots, c);
        if (known.dontKnow[c] !== dontKnow) (put(known.dontKnow, c, dontKnow), (differs = true));
        const respondentsChangedHere = respondentsChanged[nextChanged] === c;
        if (respondentsChangedHere) nextChanged += 1;
        if (differs || respondentsChangedHere) for (const kept of known.steps.values()) kept.changedCells.push(c);
      }
      return known;
    }
    const rows = new Map<string, number>();
    const sumOf = list.map((c) => rows.get(c.row) ?? (rows.set(c.row, rows.size), rows.size - 1));
    const values = slots.map((slot) => {
      const value = countColumn(n, wide);
      for (let c = 0; c < n; c++) put(value, c, countAt(slot, c));
      return value;
    });
    const valueKeys = list.map((c) => c.key);
    // A number's mean and sum are of the valid answers only, and its indicators pooled ratios: nothing splits its count.
    const valueSides = numbers ? [] : options.sidesOf(name, valueKeys);
    const dontKnowSlots = dontKnowSlotsOf.get(name) ?? [];
    const dontKnow = countColumn(n, wide);
    for (let c = 0; c < n; c++) put(dontKnow, c, dontKnowAt(dontKnowSlots, c));
    const respondents = column(layout.populations.index.get(name) ?? -1);
    // "Don't know" last, in a sum of its own (AnswerCounts.openSum), outside every split; its counts are the dontKnow column.
    const keys = withDontKnow ? [...valueKeys, DONT_KNOW_KEY] : valueKeys;
    const sides = withDontKnow ? valueSides.map((side) => Int32Array.from([...side, 0])) : valueSides;
    if (withDontKnow) sumOf.push(1);
    const answers = { counts: withDontKnow ? [...values, dontKnow] : values, sumOf, sides, respondents, dontKnow, minRange, solveUnknowns, ...(withDontKnow ? { openSum: 1 } : {}) };
    return { name, slots, keys, sumOf, sides, values, dontKnowSlots, dontKnow, respondents, answers, steps: new Map(), view: { decision: undefined, of: () => undefined, at: () => undefined } };
  };
  const dontKnowAt = (dontKnowSlots: readonly number[], c: number) => dontKnowSlots.reduce((t, slot) => t + countAt(slot, c), 0);
  // A question's respondents changed in a cell where its counts did not (someone answered only "don't know"): its audit looks again.
  const changedCellsOfPopulation = (name: string): readonly number[] => {
    const p = layout.populations.index.get(name) ?? -1;
    return changedCellsByPopulation.get(p) ?? NO_CELLS;
  };
  /** The number of responses, audited as a count that views list (disclosureOf's): its column, the cells where it changed. */
  const responsesCounts = (p: number, known: QuestionCounts | undefined): QuestionCounts => {
    if (known) {
      for (const kept of known.steps.values()) kept.changedCells.push(...(changedCellsByPopulation.get(p) ?? []));
      return known;
    }
    const values = [column(p)];
    const dontKnow = countColumn(n, wide);
    const answers = { counts: values, sumOf: [0], sides: [], respondents: values[0], dontKnow, listed: true, minRange };
    return { name: RESPONSES_FIGURE, slots: [], keys: [RESPONSES_FIGURE], sumOf: [0], sides: [], values, dontKnowSlots: [], dontKnow, respondents: values[0]!, listed: true, answers, steps: new Map(), view: { decision: undefined, of: () => undefined, at: () => undefined } };
  };
  const countsChanged = (q: QuestionCounts) =>
    changed.some((c) => q.slots.some((slot, k) => q.values[k]![c] !== countAt(slot, c)) || (q.answers.openSum !== undefined && q.dontKnow[c] !== dontKnowAt(q.dontKnowSlots, c)));

  // A question everyone answers and the number of responses are decided together (disclosureOf's rounds); every other
  // unit after them, once the number of responses' decision is final (withinResponsesForced): its own decision waits till then.
  const couples = sameSizeCouples(units);
  const responsesUnit = units.findIndex((members) => members.some((m) => m.id === RESPONSES_FIGURE));
  const coupled = [...new Set([...couples.flatMap((c) => [c.unit, c.responsesUnit]), ...(responsesUnit >= 0 ? [responsesUnit] : [])])];
  const redone = new Set<number>();
  let refigured = false;
  for (let u = 0; u < units.length; u++) {
    const members = units[u]!;
    const figures = members.map((member) => member.populationKeys.map((key) => layout.populations.index.get(key) ?? -1));
    let unit = state.units[u];
    let redo = false;
    if (!unit || JSON.stringify(unit.figures) !== JSON.stringify(figures)) {
      const sizes = figures.map((populations) => {
        if (populations.length === 1) return column(populations[0]!);
        const size = countColumn(n, wide);
        for (let c = 0; c < n; c++) put(size, c, sizeAt(populations, c));
        return size;
      });
      unit = { figures, sizes, primary: new Uint8Array(n), hidden: new Uint8Array(n), questions: [], secondary: new Map(), forced: new Set() };
      for (let c = 0; c < n; c++) unit.primary[c] = primaryAt(unit, c);
      state.units[u] = unit;
      redo = true;
      refigured = true;
    } else {
      noteChangedCells(unit, changed, n);
      redo = restructured || figures.some((populations) => populations.some((p) => changedPopulations.has(p)));
      for (const c of changed) {
        figures.forEach((populations, f) => {
          if (populations.length === 1) return;
          const size = sizeAt(populations, c);
          if (size === unit!.sizes[f]![c]) return;
          put(unit!.sizes[f]!, c, size);
          redo = true;
        });
        const primary = primaryAt(unit, c);
        if (primary !== unit.primary[c]) {
          unit.primary[c] = primary;
          redo = true;
        }
      }
    }
    const before = unit.questions;
    if (state.answerCounts && members.length === 1 && members[0]!.id === RESPONSES_FIGURE) {
      if (before.length === 0) redo = true;
      unit.questions = [responsesCounts(figures[0]![0]!, before[0])];
    } else {
      const asked = members.filter((member) => member.question !== undefined && (numbersCategory(member) || categories.has(member.question)));
      if (!redo) redo = asked.length !== before.length || before.some((q, i) => q.name !== asked[i]!.question || countsChanged(q) || (q.answers.openSum !== undefined) !== dontKnowCategory(asked[i]!));
      unit.questions = asked.map((member, i) => questionCounts(member, before[i]?.name === member.question ? before[i] : undefined));
    }
    if (overflow) {
      // Nothing was decided from a value that did not fit: each unit's columns are written before it is decided.
      wideCampaigns.add(counts);
      states.delete(counts);
      return yield* decisionSteps(counts, units, thresholds, options);
    }
    if (redo) {
      if (coupled.includes(u)) yield* decideUnit(lattice, unit);
      redone.add(u);
    }
  }

  // The rounds are taken again from the coupled units' own decisions whenever a unit was decided again: they start there, and
  // they read the other units' questions too (tiedRespondents: their sizes and primary cells).
  const open = (u: number, c: number) => state.units[u]!.primary[c] === 0;
  // The rule for tied respondents follows every decision's changes (its sizes and primary cells changed only in the changed cells, unless a unit's figures did).
  if (refigured) state.tied = new TiedRespondentLines(lattice);
  const questions = questionFigures(units).map(({ unit, figure }) => ({ unit, sizes: state.units[unit]!.sizes[figure]! }));
  const tied = couples[0] ? state.tied.update(questions, state.units[couples[0].responsesUnit]!.sizes[0]!, open, changed) : undefined;
  yield;
  if (redone.size > 0) {
    for (const u of coupled) if (!redone.has(u) && state.units[u]!.forced.size > 0) yield* decideUnit(lattice, state.units[u]!);
    const rounds = new Map<number, number>();
    yield* sameSizeRoundSteps(
      couples.map(({ unit, figure, responsesUnit }) => ({ unit, responsesUnit, sizes: state.units[unit]!.sizes[figure]!, responses: state.units[responsesUnit]!.sizes[0]! })),
      { index: lattice, cellCount: n, open, questions, tied },
      (u, c) => state.units[u]!.hidden[c] === 1,
      (u, forced) => {
        const round = (rounds.get(u) ?? 0) + 1;
        rounds.set(u, round);
        // The rounds' forced cells grow in the next round: the unit keeps those of this one.
        return decideUnit(lattice, state.units[u]!, new Set(forced), round);
      },
    );
  }
  // Every other unit: decided again when its counts changed or the cells the number of responses forces on it did.
  if (responsesUnit >= 0) {
    const responsesHidden = state.units[responsesUnit]!.hidden;
    const hiddenResponses = (c: number) => responsesHidden[c] === 1;
    // The hidden numbers of responses that published ones bound, listed once: a few of the cells, each unit's forced ones among them.
    const bounded = [...withinResponsesForced(boundedResponses(lattice, n, hiddenResponses), hiddenResponses, () => true)];
    // The published numbers of responses bound the questions' hidden respondents: where they changed (a few of the cells, where
    // the response counts), every question with respondents there looks again; the array is the same one from call to call.
    const atMostChanged: number[] = [];
    respondentsAtMostOf(state.units[responsesUnit]!.sizes[0]!, hiddenResponses, state.atMost, atMostChanged);
    for (let u = 0; u < units.length; u++) {
      if (coupled.includes(u)) continue;
      const unit = state.units[u]!;
      // The audits take a bound in the cells they hide only: those of its steps' runs (every cell after the lattice changed).
      const runs = [...unit.secondary.values()];
      const cells = runs.length === 0 ? atMostChanged : atMostChanged.filter((c) => runs.some((run) => run.hidden[c] === 1));
      let bound = false;
      for (const q of unit.questions) {
        q.answers.respondentsAtMost = state.atMost;
        if (!cells.some((c) => q.respondents[c]! > 0)) continue;
        bound = true;
        for (const kept of q.steps.values()) kept.changedCells.push(...cells);
      }
      // Its forced cells as last time (the same cells, as many): nothing to decide again unless its counts or bounds changed.
      let forcedNow = 0;
      let same = !redone.has(u) && !bound;
      for (const c of bounded) if (open(u, c)) ((forcedNow += 1), (same &&= unit.forced.has(c)));
      if (same && forcedNow === unit.forced.size) continue;
      yield* decideUnit(lattice, unit, new Set(bounded.filter((c) => open(u, c))));
    }
  }

  const hidden = new Map<string, HiddenCells>();
  const countsHidden: HiddenCounts = new Map();
  // A cell outside the lattice has no records: what it shows is the empty group's (as disclosureOf's sets say).
  const cellNumber = (id: string) => lattice.indexOf.get(id) ?? -1;
  units.forEach((members, u) => {
    const unit = state.units[u]!;
    const isHidden = unit.hidden;
    const view: HiddenCells = { has: (id) => isHidden[cellNumber(id)] === 1, at: (c) => isHidden[c] === 1 };
    for (const member of members) hidden.set(member.id, view);
    for (const q of unit.questions) if (!q.listed) countsHidden.set(q.name, q.view);
  });

  const source = {
    cells(dimensions: Dimension[]): CellLookup {
      const table = counts.table(dimensions);
      if (!table) throw new Error(`no counts by ${dimensions.join('+')}`);
      return {
        keys: () => table.cells.keys(),
        get: (key: string) => {
          const cell = table.cells.get(key);
          return cell ? counts.tally(cell) : undefined;
        },
      };
    },
  };
  return { source, cellNumber, hidden, counts: countsHidden };
}

/**
 * The state of the last decision over a lattice that cells joined or left
 * since. Its cells are numbered as from scratch (latticeOf), so each kept
 * array is carried over by cell, a cell that stays being the same object;
 * a cell that joined has never been seen, so the decision reads it as
 * changed, with its lines, and decides every unit again (secondary
 * suppression is replayed over the new lines; each question's count
 * decision from its kept state, CountSuppression carriedOver).
 */
function carriedOver(state: DecisionState, lattice: Lattice): DecisionState {
  const old = state.lattice;
  const from = new Int32Array(old.cells.length).fill(-1);
  const numbers = new Map(lattice.cells.map((cell, c) => [cell, c]));
  old.cells.forEach((cell, c) => (from[c] = numbers.get(cell) ?? -1));
  const n = lattice.cells.length;
  const carry = <T extends Int32Array | Uint16Array | Uint8Array | Float64Array>(values: T, fresh: number): T => {
    const next = new (values.constructor as new (length: number) => T)(n);
    next.fill(fresh);
    for (let c = 0; c < from.length; c++) if (from[c]! >= 0) next[from[c]!] = values[c]!;
    return next;
  };
  const columns = new Map([...state.columns].map(([p, values]) => [p, carry(values, 0)]));
  const columnOf = new Map([...state.columns].map(([p, values]) => [values, columns.get(p)!]));
  // A unit's last secondary suppressions are not carried over: the lines are new.
  const units = state.units.map((unit): UnitState => ({
    figures: unit.figures,
    sizes: unit.sizes.map((size) => columnOf.get(size) ?? carry(size, 0)),
    primary: carry(unit.primary, 0),
    hidden: carry(unit.hidden, 0),
    secondary: new Map(),
    // Every unit is decided again over the new lines, the rounds of sameSizeRounds from scratch.
    forced: new Set(),
    questions: unit.questions.map((q) => {
      const values = q.values.map((value) => columnOf.get(value) ?? carry(value, 0));
      const dontKnow = carry(q.dontKnow, 0);
      const respondents = columnOf.get(q.respondents)!;
      const answers = { ...q.answers, counts: q.answers.openSum === undefined ? values : [...values, dontKnow], respondents, dontKnow };
      return {
        ...q,
        values,
        dontKnow,
        respondents,
        answers,
        steps: new Map(
          [...q.steps].map(([step, kept]) => [
            step,
            { suppression: kept.suppression.carriedOver(lattice, answers, from), changedCells: kept.changedCells.flatMap((c) => (from[c]! >= 0 ? [from[c]!] : [])) },
          ]),
        ),
      };
    }),
  }));
  return { ...state, lattice, seen: carry(state.seen, -1), columns, units, tied: new TiedRespondentLines(lattice), atMost: carry(state.atMost, -1) };
}

/**
 * A unit's cells and its questions' hidden answer counts: secondary
 * suppression from its primary cells, then suppression of answer counts
 * (count-suppression.ts); a cell whose counts cannot be protected otherwise
 * is hidden whole and both steps are taken again. `forced`: cells hidden
 * beside the primary ones from the start (sameSizeRounds), kept as the
 * unit's (the caller never changes them after); `round`: which of the
 * rounds this is (0: the unit's own decision). Each step (round, and pass
 * with more cells hidden whole) is taken from that step's last runs.
 */
function* decideUnit(lattice: Lattice, unit: UnitState, forced: ReadonlySet<number> = new Set(), round = 0): Generator<void, void, void> {
  unit.forced = forced;
  // The forced cells and those the counts hide whole, copied only when the counts add one.
  let whole = forced;
  const hideWhole = (c: number) => {
    if (whole === forced) whole = new Set(forced);
    (whole as Set<number>).add(c);
  };
  for (let pass = 0; ; pass++) {
    const step = `${round}.${pass}`;
    let isHidden = unit.primary.slice();
    for (const c of whole) isHidden[c] = 1;
    // Each step's run is kept: after a response it is mostly the same one again.
    const last = unit.secondary.get(step);
    if (last && secondaryStands(lattice, unit, isHidden, last)) {
      // Its cells with data are the same as when it ran: none of the cells changed since need looking at again.
      last.since = [];
      isHidden = last.hidden.slice();
    } else {
      const start = isHidden.slice();
      const ties: number[] = [];
      secondarySuppression(lattice, unit.sizes, isHidden, ties);
      unit.secondary.set(step, { start, withData: withDataOf(unit.sizes), hidden: isHidden.slice(), ties: Int32Array.from(ties), since: [] });
    }
    unit.hidden = isHidden;
    let more = false;
    for (const q of unit.questions) {
      yield;
      // A step met for the first time starts from scratch (its counts as they are now: no change to name).
      let kept = q.steps.get(step);
      if (!kept) q.steps.set(step, (kept = { suppression: new CountSuppression(lattice, q.answers), changedCells: [] }));
      const decision = kept.suppression.decide(isHidden, kept.changedCells.splice(0));
      if (q.view.decision !== decision) q.view = { decision, ...hiddenCountsView(q.keys, decision, (id) => lattice.indexOf.get(id) ?? -1) };
      for (const c of decision.wholeCells) if (!whole.has(c)) ((more = true), hideWhole(c));
    }
    if (!more) return;
  }
}

/**
 * The hidden answer counts of a question's published cells, by cell id or
 * number: the keys of the counts (Distribution's). Made for a cell when a
 * view asks for it (a decision hides counts in thousands of cells; a page
 * shows a few).
 */
export function hiddenCountsView(keys: readonly string[], decision: CountDecision, indexOf: (id: string) => number): HiddenCountsOfQuestion {
  // By number, null where none are hidden: a decision that stands serves the next pages' views too, each cell with one look-up.
  const byCell = new Map<number, ReadonlySet<string> | null>();
  const at = (cell: number) => {
    let known = byCell.get(cell);
    if (known === undefined) {
      const categories = decision.hidden.get(cell);
      byCell.set(cell, (known = categories ? new Set(categories.map((k) => keys[k]!)) : null));
    }
    return known ?? undefined;
  };
  return { of: (id) => at(indexOf(id)), at };
}

function withDataOf(sizes: readonly CountColumn[]): Int32Array {
  const n = sizes[0]?.length ?? 0;
  const withData = bitArray(sizes.length * n);
  sizes.forEach((size, f) => {
    for (let c = 0; c < n; c++) if (size[c]! > 0) markBit(withData, f * n + c, true);
  });
  return withData;
}

/**
 * Whether the unit's last secondary suppression is the one from `start`
 * (its primary and forced cells) for its sizes now: the same starting cells and the same cells with
 * data per figure make every line act in the same order (both are all it
 * reads besides sizes), and sizes only choose which member a line hides,
 * the smallest; so it is the same when each such choice still falls to the
 * member it fell to. `ties`: per choice among two or more members, the
 * figure, the chosen cell, how many were open, those cells. Sizes change
 * only in a decision's changed cells, so only the cells noted since it ran
 * (SecondaryRun.since) are read for data, unless they were too many.
 */
function secondaryStands(lattice: Lattice, unit: UnitState, start: Uint8Array, last: SecondaryRun): boolean {
  const n = unit.primary.length;
  if (differingCells(start, last.start).length > 0) return false;
  const F = unit.sizes.length;
  const withDataAt = (c: number) => {
    for (let f = 0; f < F; f++) if ((unit.sizes[f]![c]! > 0 ? 1 : 0) !== bitAt(last.withData, f * n + c)) return false;
    return true;
  };
  if (last.since === null) {
    for (let c = 0; c < n; c++) if (!withDataAt(c)) return false;
  } else for (const c of last.since) if (!withDataAt(c)) return false;
  const { rank } = lattice;
  const ties = last.ties;
  for (let i = 0; i < ties.length; ) {
    const size = unit.sizes[ties[i]!]!;
    const open = ties[i + 2]!;
    let smallest = -1;
    for (let j = i + 3; j < i + 3 + open; j++) {
      const m = ties[j]!;
      if (smallest < 0 || size[m]! < size[smallest]! || (size[m] === size[smallest] && rank[m]! < rank[smallest]!)) smallest = m;
    }
    if (smallest !== ties[i + 1]) return false;
    i += 3 + open;
  }
  return true;
}

/**
 * Secondary suppression to a fixed point, per figure and line, counting only
 * the members where the figure has answers (as disclosure.ts hiddenCells):
 * the same cells hidden in the same order as its passes over every figure's
 * lines, without the passes. A line acts only when exactly one of its cells
 * (total included) is unknown, and then hides one more, so it acts at most
 * once; a pass does nothing at a line that cannot act. So the passes are
 * replayed by visiting only the lines that can act, in pass order: a line that
 * comes to have exactly one unknown acts later in the same pass when it comes
 * after the line that just acted, else in the next pass.
 */
function secondarySuppression(lattice: Lattice, sizes: readonly CountColumn[], isHidden: Uint8Array, ties?: number[]): void {
  const { lineTotal, lineStart, lineMembers, rank, memberOfStart, memberOf, totalOfStart, totalOf } = lattice;
  const lineCount = lineTotal.length;
  const positions = sizes.length * lineCount;
  // Per (figure, line) at position figure × lineCount + line: members with answers, and unknowns among them and the total.
  const members = new Int32Array(positions);
  const unknowns = new Int32Array(positions);
  const ready = new MinHeap();
  for (let f = 0; f < sizes.length; f++) {
    const size = sizes[f]!;
    for (let l = 0; l < lineCount; l++) {
      let m = 0;
      let u = isHidden[lineTotal[l]!]!;
      for (let k = lineStart[l]!; k < lineStart[l + 1]!; k++) {
        const cell = lineMembers[k]!;
        if (size[cell]! <= 0) continue;
        m += 1;
        u += isHidden[cell]!;
      }
      const at = f * lineCount + l;
      members[at] = m;
      unknowns[at] = u;
      if (m > 0 && u === 1) ready.push(at);
    }
  }
  // Keys: pass × positions + position, so the heap gives lines in the order the passes reach them.
  let pass = 0;
  let current = -1;
  const unknownAt = (at: number) => {
    unknowns[at]! += 1;
    if (unknowns[at] !== 1 || members[at] === 0) return;
    ready.push((at > current ? pass : pass + 1) * positions + at);
  };
  const hide = (cell: number) => {
    isHidden[cell] = 1;
    for (let f = 0; f < sizes.length; f++) {
      const base = f * lineCount;
      if (sizes[f]![cell]! > 0) for (let k = memberOfStart[cell]!; k < memberOfStart[cell + 1]!; k++) unknownAt(base + memberOf[k]!);
      for (let k = totalOfStart[cell]!; k < totalOfStart[cell + 1]!; k++) unknownAt(base + totalOf[k]!);
    }
  };
  while (ready.size > 0) {
    const key = ready.pop();
    const at = key % positions;
    if (unknowns[at] !== 1) continue;
    pass = (key - at) / positions;
    current = at;
    const size = sizes[Math.floor(at / lineCount)]!;
    const l = at % lineCount;
    let smallest = -1;
    let open = 0;
    for (let k = lineStart[l]!; k < lineStart[l + 1]!; k++) {
      const m = lineMembers[k]!;
      const sm = size[m]!;
      if (sm <= 0 || isHidden[m]) continue;
      open += 1;
      if (smallest < 0 || sm < size[smallest]! || (sm === size[smallest] && rank[m]! < rank[smallest]!)) smallest = m;
    }
    if (ties && open > 1) {
      ties.push(Math.floor(at / lineCount), smallest, open);
      for (let k = lineStart[l]!; k < lineStart[l + 1]!; k++) {
        const m = lineMembers[k]!;
        if (size[m]! > 0 && !isHidden[m]) ties.push(m);
      }
    }
    hide(smallest >= 0 ? smallest : lineTotal[l]!);
  }
}

/** A binary min-heap of numbers. */
class MinHeap {
  private items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  push(value: number): void {
    const items = this.items;
    let i = items.length;
    items.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = value;
  }
  pop(): number {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= items.length) break;
        const child = left + 1 < items.length && items[left + 1]! < items[left]! ? left + 1 : left;
        if (items[child]! >= last) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}

/**
 * Bytes of typed arrays the last decision of a campaign's counts keeps, by
 * where they are held (bench:evidence:memory prints them): each array once,
 * under the first place it is met; the lattice's cells are the store's.
 */
export function decisionFootprint(counts: CampaignCounts): Map<string, number> {
  const bytes = new Map<string, number>();
  const seen = new Set<object>();
  const visit = (value: unknown, place: string): void => {
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      bytes.set(place, (bytes.get(place) ?? 0) + value.byteLength);
      return;
    }
    if (value instanceof Map) for (const entry of value.values()) visit(entry, place);
    else if (value instanceof Set || Array.isArray(value)) for (const entry of value) visit(entry, place);
    else for (const [key, entry] of Object.entries(value)) if (key !== 'cells') visit(entry, /^\d+$/.test(key) ? place : place ? `${place}.${key}` : key);
  };
  visit(lattices.get(counts), 'lattice');
  visit(states.get(counts), '');
  return bytes;
}
