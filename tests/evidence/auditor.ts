import { readdirSync, readFileSync } from 'node:fs';
import type { Highs } from 'highs';
import type { Cell, Line } from '../../server/evidence/disclosure.ts';
import { DIMENSION_NAMES, type Dimension } from '../../server/evidence/evidence-filter.ts';
import type { EvidenceTables, IndicatorFigures, IndicatorRow, QuestionRow } from '../../server/evidence/indicator.service.ts';
import type { Distribution } from '../../server/evidence/indicators.ts';
import { DONT_KNOW } from '../../server/evidence/question-catalogue.ts';
import type { WaveComparison } from '../../server/evidence/wave-comparison.service.ts';
import { narrowByLinearProgramming } from './linear-programming.ts';

/**
 * The outside auditor. It reads only what is published (the JSON of
 * EvidenceService.tables for every view, the wave comparison) and derives,
 * for every hidden cell, bounds on every additive quantity of every figure:
 *
 * - responses: the number of responses of the cell;
 * - a question's distribution: its respondents, valid answers, "don't know",
 *   the count of each answer category and, for numbers, the sum;
 * - an indicator: its n, its respondents and, where the value is a share or a
 *   mean of items, the count of hits or the sum behind it.
 *
 * Constraints: every line of the campaign's lattice (the cells that differ in
 * one dimension add up to the cell without it), per quantity; inside a cell,
 * a distribution's valid answers are its non-"don't know" counts and its
 * "don't know" count is its "don't know" category, a single answer's
 * respondents are valid answers plus "don't know", and no count exceeds the
 * respondents (each relation used only where every published cell obeys it);
 * nothing is negative; cells known to be empty (routing, or nobody of
 * that group answered) are 0; a group that a view lists, even as
 * suppressed, has at least one response (an empty group is not listed);
 * and, with SolveOptions.respondentsWithinResponses, a question's
 * respondents are at most the group's number of responses (equal to it for
 * a question the survey definitions require of everyone, where the
 * published tables agree); with SolveOptions.weighted, a mean, a top-two
 * share and an indicator computed from one question as weighted sums of
 * its counts, and a number's sum within its range; with SolveOptions.sides,
 * sums of a scale's counts over splits of its points.
 * Bounds are narrowed over all constraints until nothing changes (interval
 * propagation: sound, not always the tightest); with
 * SolveOptions.linearProgramming, then by a linear-programming solver over
 * all of a figure's constraints at once.
 */
export interface Interval {
  lo: number;
  hi: number;
}

/** Quantity name → value, for one figure in one cell. */
export type Quantities = Map<string, number>;

/** A cell of the campaign's lattice: its profile values in the dimensions' order, "country=AT&role=head"; overall is "". */
export type CellId = string;

export function cellOf(values: Partial<Record<Dimension, string>>): CellId {
  return DIMENSION_NAMES.filter((d) => values[d] !== undefined)
    .map((d) => `${d}=${values[d]}`)
    .join('&');
}

function parseCell(id: CellId): Map<Dimension, string> {
  return new Map(id === '' ? [] : id.split('&').map((part) => part.split('=') as [Dimension, string]));
}

const countKey = (c: Distribution['counts'][number]) => `count ${c.row ?? ''}|${c.rank ?? ''}|${String(c.value)}`;
export const isDontKnowCount = (key: string) => key.endsWith(`|${DONT_KNOW}`);

/**
 * A question's "don't know" answers in a cell: its "dk" and its "don't know"
 * count (the same figure twice), of every kind of question, a number's
 * separate box (S4.5's S4_5_dk) included. Protected like an answer count: a
 * hidden or withheld one that is not 0 must not be pinned, also by an
 * outsider who knows which cells' "don't know" counts are 0 (the premise of
 * the mechanism's rule for "don't know": its 0 never protects), so that a published
 * "don't know" that gives a hidden one back with the zeros is a finding.
 */
export const isDontKnow = (quantity: string) => quantity === 'dk' || isDontKnowCount(quantity);

/** A quantity of a published cell that is shown as suppressed (an answer count hidden beside published ones): an unknown. */
export const SUPPRESSED = NaN;

/**
 * The figures of a question cell that someone can add up across cells. A
 * scale's mean and top-two share (a yes/no's share of yes) are read back as
 * sums over the valid answers, `valueSum` (mean × valid answers) and `topTwo`
 * (share × valid answers): additive like the counts, and weighted sums of
 * them (see SolveOptions.weighted).
 */
export function distributionQuantities(d: Pick<Distribution, 'respondents' | 'validN' | 'dk' | 'sum' | 'counts' | 'mean' | 'topShare'>, kind: string): Quantities {
  const q: Quantities = new Map([
    // Suppressed with a hidden "don't know" count: unknowns.
    ['respondents', d.respondents ?? SUPPRESSED],
    ['validN', d.validN],
    ['dk', d.dk ?? SUPPRESSED],
  ]);
  if (d.sum !== null) q.set('sum', d.sum);
  // Without valid answers there is no mean or share, and nothing behind them; with some, a missing one is withheld.
  const behind = (value: number | null, scale: number) => (value === null ? (d.validN > 0 ? SUPPRESSED : 0) : unround((value * d.validN) / scale));
  if (kind === 'scale') q.set('valueSum', behind(d.mean, 1));
  if (kind === 'scale' || kind === 'yesno') q.set('topTwo', behind(d.topShare, 100));
  for (const c of d.counts) q.set(countKey(c), c.n ?? SUPPRESSED);
  return q;
}

/** The quantities read back from a mean, a top-two share or an indicator's value computed from one question: used only with SolveOptions.weighted. */
const isWeightedQuantity = (quantity: string) => quantity === 'valueSum' || quantity === 'topTwo' || quantity.startsWith(HITS);

/** A scale's valid answers below its two top points, a sum of its counts (SolveOptions.sides). */
const BELOW_TOP_TWO = 'belowTopTwo';

/** An indicator's hits inside the solve of the question it is computed from: "hits of participation_rate:S1_1". */
const HITS = 'hits of ';

/** Rounding a published share or mean back to a count or a sum. */
const unround = (x: number) => Math.round(x * 1e6) / 1e6;

/** The figures of an indicator cell someone can add up: n, respondents, and counts or sums rebuilt from share or mean × n. */
export function indicatorQuantities(row: Pick<IndicatorRow, 'code' | 'family' | 'unit'>, figures: IndicatorFigures & { respondents: number }): Quantities {
  const q: Quantities = new Map([
    ['n', figures.n],
    ['respondents', figures.respondents],
  ]);
  // Shares and means of answers (not pooled ratios of reported numbers, nor the IMI's rescaled mean).
  const ofItems = !POOLED_RATIO_FAMILIES.has(row.family) && row.family !== 'imi';
  // A value suppressed beside a hidden answer count (its n still published) gives neither: an unknown.
  const withheld = figures.value === null && figures.n > 0;
  if (ofItems && row.unit === 'percent') q.set('hits', withheld ? SUPPRESSED : unround(((figures.value ?? 0) * figures.n) / 100));
  if (ofItems && row.unit === 'mean') q.set('sum', withheld ? SUPPRESSED : unround((figures.value ?? 0) * figures.n));
  return q;
}

/** Indicators computed as a ratio of pooled totals: their n counts responses, their value is no share of it. */
const POOLED_RATIO_FAMILIES = new Set(['learner_mobility_rate', 'long_term_rate', 'recognition_rate', 'europass_rate', 'inclusion_rate', 'reciprocity', 'staff_mobility_rate', 'capacity_ratios', 'experience_share']);

/** Indicators that are not sums of their cells' parts: the accreditation gap is a difference of two rates. */
export const NON_ADDITIVE_FAMILIES = new Set(['accreditation_gap']);

/** Everything a reader holding every published table has: per figure and cell, its quantities, or the fact that it is hidden. */
export class Publication {
  readonly published = new Map<string, Map<CellId, Quantities>>();
  readonly hidden = new Map<string, Set<CellId>>();
  /** Groups a view lists (a column) while their number of responses is hidden: each tells that its group has a response. */
  readonly listedHidden = new Set<CellId>();
  /** The question kind per question figure (a single answer or picks). */
  readonly kinds = new Map<string, string>();
  /** The same figure and cell said differently in two places: hidden in one, shown in another, or two values. */
  readonly contradictions: string[] = [];

  add(figure: string, cell: CellId, quantities: Quantities | null, where: string): void {
    let published = this.published.get(figure);
    let hidden = this.hidden.get(figure);
    if (!published || !hidden) {
      this.published.set(figure, (published = new Map()));
      this.hidden.set(figure, (hidden = new Set()));
    }
    if (quantities === null) {
      if (published.has(cell)) this.contradictions.push(`${figure} at "${cell}" hidden in ${where} but published elsewhere`);
      hidden.add(cell);
      return;
    }
    if (hidden.has(cell)) this.contradictions.push(`${figure} at "${cell}" published in ${where} but hidden elsewhere`);
    const before = published.get(cell);
    if (before && !sameQuantities(before, quantities)) {
      this.contradictions.push(`${figure} at "${cell}" in ${where}: ${JSON.stringify([...quantities])}, elsewhere ${JSON.stringify([...before])}`);
    }
    published.set(cell, quantities);
  }

  /** One view's tables (any filter, any breakdown), its cells named by their profile values. */
  addTables(tables: EvidenceTables, where = describeView(tables)): void {
    const filterValues = Object.fromEntries(Object.entries(tables.filter.where).map(([d, values]) => [d, values![0]!])) as Partial<Record<Dimension, string>>;
    const overall = cellOf(filterValues);
    const groupCell = (key: string) => {
      const parts = key === '' ? [] : key.split('|');
      return cellOf({ ...filterValues, ...Object.fromEntries(tables.dimensions.map((d, i) => [d, parts[i]!])) });
    };
    const each = <T extends object>(figure: string, row: { overall: Cell<T>; groups: Record<string, Cell<T>> }, quantities: (cell: Extract<Cell<T>, { suppressed: false }>) => Quantities) => {
      this.add(figure, overall, row.overall.suppressed ? null : quantities(row.overall), where);
      for (const [key, cell] of Object.entries(row.groups)) this.add(figure, groupCell(key), cell.suppressed ? null : quantities(cell), where);
    };
    for (const row of tables.indicators) {
      if (!NON_ADDITIVE_FAMILIES.has(row.family)) each(`indicator:${row.code}`, row, (c) => indicatorQuantities(row, c));
    }
    for (const row of tables.questions) {
      this.kinds.set(`question:${row.name}`, row.kind);
      each(`question:${row.name}`, row, (c) => distributionQuantities(c, row.kind));
    }
    const responses = (n: number | null) => (n === null ? null : new Map([['responses', n]]));
    this.add('responses', overall, responses(tables.responses), where);
    for (const [key, n] of Object.entries(tables.groupResponses)) {
      this.add('responses', groupCell(key), responses(n), where);
      if (n === null) this.listedHidden.add(groupCell(key));
    }
  }

  /** The wave comparison's side B, the campaign audited, for everyone or one profile value. */
  addWaveSide(comparison: WaveComparison, where: Partial<Record<Dimension, string>>): void {
    const cell = cellOf(where);
    const label = `waves ${cell || 'overall'}`;
    for (const row of comparison.indicators) {
      if (NON_ADDITIVE_FAMILIES.has(row.code.split(':')[0]!)) continue;
      this.add(`indicator:${row.code}`, cell, row.b.suppressed ? null : indicatorQuantities({ code: row.code, family: row.code.split(':')[0]!, unit: row.unit }, row.b), label);
    }
    for (const row of comparison.questions) this.add(`question:${row.name}`, cell, row.b.suppressed ? null : distributionQuantities(row.b, row.kind), label);
    this.add('responses', cell, comparison.b.responses === null ? null : new Map([['responses', comparison.b.responses]]), label);
  }
}

function describeView(tables: EvidenceTables): string {
  const where = Object.entries(tables.filter.where).map(([d, v]) => `${d}=${v![0]}`);
  return [...where, tables.dimensions.length ? `by ${tables.dimensions.join('×')}` : 'overall'].join(' ');
}

const sameQuantities = (a: Quantities, b: Quantities) =>
  a.size === b.size && [...a].every(([k, v]) => (Number.isNaN(v) ? b.has(k) && Number.isNaN(b.get(k)!) : Math.abs((b.get(k) ?? NaN) - v) < 1e-6));

/**
 * The campaign's lattice as the auditor sees it: every table over up to
 * `maxDimensions` dimensions, each the product of the values seen in that
 * dimension anywhere (a cell never shown is an unknown of the system, which
 * keeps every line an equality), and the lines between them.
 */
export interface Lattice {
  cells: CellId[];
  index: Map<CellId, number>;
  /** Per line, the total's index then its members' indices. */
  lines: number[][];
}

export function latticeOf(publication: Publication, maxDimensions: number): Lattice {
  const values = new Map<Dimension, Set<string>>(DIMENSION_NAMES.map((d) => [d, new Set()]));
  for (const cells of [...publication.published.values(), ...publication.hidden.values()]) {
    for (const id of cells instanceof Map ? cells.keys() : cells) for (const [d, v] of parseCell(id)) values.get(d)!.add(v);
  }
  const cells: CellId[] = [];
  const index = new Map<CellId, number>();
  const lines: number[][] = [];
  const tables = (from: number, chosen: Dimension[]): Dimension[][] =>
    chosen.length === maxDimensions ? [chosen] : [chosen, ...DIMENSION_NAMES.slice(from).flatMap((d, i) => tables(from + i + 1, [...chosen, d]))];
  const product = (dims: Dimension[]): Array<Partial<Record<Dimension, string>>> =>
    dims.reduce<Array<Partial<Record<Dimension, string>>>>((acc, d) => acc.flatMap((partial) => [...values.get(d)!].map((v) => ({ ...partial, [d]: v }))), [{}]);
  const all = tables(0, []);
  for (const dims of all) {
    for (const values of product(dims)) {
      const id = cellOf(values);
      index.set(id, cells.length);
      cells.push(id);
    }
  }
  for (const dims of all) {
    for (const axis of dims) {
      const rest = dims.filter((d) => d !== axis);
      for (const totalValues of product(rest)) {
        const members = [...values.get(axis)!].map((v) => index.get(cellOf({ ...totalValues, [axis]: v }))!);
        if (members.length > 0) lines.push([index.get(cellOf(totalValues))!, ...members]);
      }
    }
  }
  return { cells, index, lines };
}

/**
 * Interval propagation: each equality (its first variable the sum of the
 * others) and each a ≤ b narrows the bounds, until nothing moves by half a
 * unit or more (every quantity is a whole count or a sum of whole numbers,
 * so this ends).
 */
export function propagate(lo: Float64Array, hi: Float64Array, equalities: readonly number[][], atMost: ReadonlyArray<readonly [number, number]> = [], weighted: readonly WeightedRow[] = [], whole: (v: number) => boolean = () => true): void {
  const EPS = 0.5;
  for (let changed = true, rounds = 0; changed && rounds < 1000; rounds++) {
    changed = false;
    for (const eq of equalities) {
      const t = eq[0]!;
      let sumLo = 0;
      let sumHi = 0;
      let infinite = 0;
      for (let i = 1; i < eq.length; i++) {
        const v = eq[i]!;
        sumLo += lo[v]!;
        if (hi[v] === Infinity) infinite++;
        else sumHi += hi[v]!;
      }
      if (sumLo > lo[t]! + EPS) ((lo[t] = sumLo), (changed = true));
      if (infinite === 0 && sumHi < hi[t]! - EPS) ((hi[t] = sumHi), (changed = true));
      for (let i = 1; i < eq.length; i++) {
        const v = eq[i]!;
        if (infinite - (hi[v] === Infinity ? 1 : 0) === 0) {
          const newLo = lo[t]! - (sumHi - (hi[v] === Infinity ? 0 : hi[v]!));
          if (newLo > lo[v]! + EPS) ((lo[v] = newLo), (changed = true));
        }
        const newHi = hi[t]! - (sumLo - lo[v]!);
        if (newHi < hi[v]! - EPS) ((hi[v] = newHi), (changed = true));
      }
    }
    for (const [a, b] of atMost) {
      if (hi[b]! < hi[a]! - EPS) ((hi[a] = hi[b]!), (changed = true));
      if (lo[a]! > lo[b]! + EPS) ((lo[b] = lo[a]!), (changed = true));
    }
    for (const row of weighted) if (narrowWeighted(lo, hi, row, whole, EPS)) changed = true;
  }
}

/** min ≤ Σ coefficient × variable ≤ max (an equality when min = max). */
export interface WeightedRow {
  vars: number[];
  coefficients: number[];
  min: number;
  max: number;
}

/**
 * One pass of a weighted row over its variables: each term lies between the
 * row's bounds less the other terms' extremes; a variable that is a whole
 * number (`whole`) is rounded inwards. Returns whether a bound moved by `eps`
 * or more.
 */
function narrowWeighted(lo: Float64Array, hi: Float64Array, { vars, coefficients, min, max }: WeightedRow, whole: (v: number) => boolean, eps: number): boolean {
  const termLo = vars.map((v, i) => (coefficients[i]! > 0 ? coefficients[i]! * lo[v]! : coefficients[i]! * hi[v]!));
  const termHi = vars.map((v, i) => (coefficients[i]! > 0 ? coefficients[i]! * hi[v]! : coefficients[i]! * lo[v]!));
  const finiteSum = (terms: number[]) => terms.reduce((t, x) => (Number.isFinite(x) ? t + x : t), 0);
  const [sumLo, sumHi] = [finiteSum(termLo), finiteSum(termHi)];
  const [infiniteLo, infiniteHi] = [termLo.filter((x) => !Number.isFinite(x)).length, termHi.filter((x) => !Number.isFinite(x)).length];
  let changed = false;
  vars.forEach((v, i) => {
    const a = coefficients[i]!;
    // The other terms' extremes: infinite when any of them is unbounded.
    const othersHi = infiniteHi - (Number.isFinite(termHi[i]!) ? 0 : 1) > 0 ? Infinity : sumHi - (Number.isFinite(termHi[i]!) ? termHi[i]! : 0);
    const othersLo = infiniteLo - (Number.isFinite(termLo[i]!) ? 0 : 1) > 0 ? -Infinity : sumLo - (Number.isFinite(termLo[i]!) ? termLo[i]! : 0);
    const [fromLo, fromHi] = [min - othersHi, max - othersLo];
    let [newLo, newHi] = a > 0 ? [fromLo / a, fromHi / a] : [fromHi / a, fromLo / a];
    if (whole(v)) [newLo, newHi] = [Math.ceil(newLo - 1e-6), Math.floor(newHi + 1e-6)];
    if (newLo > lo[v]! + eps) ((lo[v] = newLo), (changed = true));
    if (newHi < hi[v]! - eps) ((hi[v] = newHi), (changed = true));
  });
  return changed;
}

/**
 * The hidden cells with answers an outsider can pin to one value (or, with
 * `minRange`, to a range narrower than that), in any lattice (cells and
 * lines given as the mechanism sees them): published cells exact, hidden
 * cells of size 0 known empty, nothing negative; with `listed`, a hidden
 * cell that is not empty is at least 1 (views list it, as the groups of a
 * number of responses); with `highs`, bounds from linear programming too.
 */
export function pinnedCells(
  cells: readonly string[],
  lines: ReadonlyArray<{ total: string; members: readonly string[] }>,
  size: ReadonlyMap<string, number>,
  hidden: ReadonlySet<string>,
  listed = false,
  minRange = 1,
  highs?: Highs,
): string[] {
  const index = new Map(cells.map((c, i) => [c, i]));
  const lo = new Float64Array(cells.length);
  const hi = new Float64Array(cells.length);
  cells.forEach((cell, i) => {
    const value = size.get(cell) ?? 0;
    if (!hidden.has(cell) || value === 0) lo[i] = hi[i] = value;
    else ((lo[i] = listed ? 1 : 0), (hi[i] = Infinity));
  });
  const equalities = lines.map((line) => [line.total, ...line.members].map((c) => index.get(c)!));
  propagate(lo, hi, equalities);
  if (highs) {
    const targets = cells.flatMap((cell, i) => (hidden.has(cell) && (size.get(cell) ?? 0) > 0 ? [i] : []));
    narrowByLinearProgramming(highs, lo, hi, equalities, [], [], targets, () => true, minRange);
    propagate(lo, hi, equalities);
  }
  return cells.filter((cell, i) => hidden.has(cell) && (size.get(cell) ?? 0) > 0 && hi[i]! - lo[i]! < minRange);
}

export interface SolveOptions {
  /** Only these quantities (all when absent). */
  quantities?: (figure: string, quantity: string) => boolean;
  /** Also the relations between a cell's own quantities (valid answers are the sum of the counts, and so on). */
  withinCells?: boolean;
  /**
   * What the listing of groups tells. By default every hidden group has at
   * least one response, as when views listed every group that has one (a
   * column, a row, a cross-tab cell, a filter answered other than with the
   * empty group's 0): stronger than what is published now. With `unlisted`,
   * only the groups a view lists while their number of responses is hidden
   * (Publication.listedHidden: a figure there is published) have at least
   * one; an unlisted group may be empty, and a filter on an empty value
   * reads as a suppressed one.
   */
  unlisted?: boolean;
  /**
   * Also tie each question's respondents to the group's number of responses
   * in every cell: at most it (nobody answers a question without a
   * response), and equal to it for a question the survey definitions make
   * required and show to everyone (`requiredForEveryone`), where the
   * published cells say the campaign asked it of everyone. Off by default
   * here; the standing test of sizes turns it on, on a random seed each run
   * and on fixed ones (the mechanism closes the pins through hidden numbers
   * of responses, not every path of the other direction: see the README).
   */
  respondentsWithinResponses?: boolean;
  /**
   * Also the weighted relations inside a cell between a question's counts
   * and what is published beside them, each additive across cells too: a
   * scale's mean × valid answers is Σ value × count (`valueSum`); its top-two
   * share × valid answers the count of its two top points, a yes/no's share
   * of yes its count of yes (`topTwo`); an indicator computed from one
   * question's categories (`SINGLE_QUESTION_INDICATORS`) has as many hits as
   * the counts it takes; a number's sum is at least its valid answers × the
   * definitions' minimum and at most × their maximum. Each only where every
   * published cell obeys it.
   */
  weighted?: boolean;
  /**
   * Also sums of a scale's counts over a split of its points into two sets,
   * quantities of every cell that add up along lines like the counts and,
   * the two sides, to the valid answers inside a cell. An outsider forms
   * them from the counts alone, whether or not any share is published:
   * exact linear algebra over the counts finds what they give, but interval
   * propagation over single counts does not. 'topTwo': the split of its
   * top-two share (`topTwo`, `belowTopTwo`); 'every': every split. The
   * published top-two share is read only with `weighted`.
   */
  sides?: 'topTwo' | 'every';
  /**
   * The narrowest range a hidden quantity with answers may keep (the
   * mechanism's protection width, Thresholds.minRange): upper − lower bound
   * below it is a breach. 1 when absent: only one value is pinned.
   */
  minRange?: number;
  /**
   * Also the bounds linear programming gives (narrowByLinearProgramming):
   * each target quantity minimised and maximised over every constraint of
   * its figure at once, after interval propagation; all quantities left open
   * unless `targets` says which. A target that two solutions found on the
   * way set `minRange` apart keeps the bounds propagation gave. Slower by
   * far: for small campaigns.
   */
  linearProgramming?: { highs: Highs; targets?: (figure: string, cell: CellId, quantity: string) => boolean };
}

/**
 * The questions the public survey definitions (surveys/*.json) make required
 * and show to everyone: `isRequired`, and no `visibleIf` on the question or
 * on any page or panel around it. Whether a campaign asked their strand at
 * all is not in the definitions: the solver uses the equality only where the
 * published cells agree with it.
 */
export function requiredForEveryone(directory = new URL('../../surveys/', import.meta.url)): Set<string> {
  const names = new Set<string>();
  const walk = (node: unknown, hiddenSometimes: boolean): void => {
    if (Array.isArray(node)) return node.forEach((child) => walk(child, hiddenSometimes));
    if (typeof node !== 'object' || node === null) return;
    const element = node as { name?: unknown; type?: unknown; isRequired?: unknown; visibleIf?: unknown; pages?: unknown; elements?: unknown };
    const routed = hiddenSometimes || element.visibleIf !== undefined;
    if (typeof element.name === 'string' && element.type !== 'panel' && element.isRequired === true && !routed) names.add(element.name);
    walk(element.pages, routed);
    walk(element.elements, routed);
  };
  for (const file of readdirSync(directory).filter((f) => f.endsWith('.json'))) walk(JSON.parse(readFileSync(new URL(file, directory), 'utf8')), false);
  return names;
}

/** What the public survey definitions (surveys/*.json) say of each question: the indicator it feeds, a number's range. */
export function questionDefinitions(directory = new URL('../../surveys/', import.meta.url)): Map<string, { indicator?: string; min?: number; max?: number }> {
  const definitions = new Map<string, { indicator?: string; min?: number; max?: number }>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (typeof node !== 'object' || node === null) return;
    const element = node as { name?: unknown; indicator?: unknown; min?: unknown; max?: unknown; pages?: unknown; elements?: unknown };
    if (typeof element.name === 'string') {
      definitions.set(element.name, {
        ...(typeof element.indicator === 'string' ? { indicator: element.indicator } : {}),
        ...(typeof element.min === 'number' ? { min: element.min } : {}),
        ...(typeof element.max === 'number' ? { max: element.max } : {}),
      });
    }
    walk(element.pages);
    walk(element.elements);
  };
  for (const file of readdirSync(directory).filter((f) => f.endsWith('.json'))) walk(JSON.parse(readFileSync(new URL(file, directory), 'utf8')));
  return definitions;
}

/**
 * Indicators computed from one question's categories, per family (the
 * definitions' `indicator` of the question), as the codebook states them:
 * the indicator row's code, and whether an answer category counts as a hit.
 * A ranking's top-3 share counts a choice named at any rank, one row per choice.
 */
const SINGLE_QUESTION_INDICATORS: Record<string, (question: string, value: string) => string | null> = {
  participation_rate: (question, value) => (value === 'true' ? `participation_rate:${question}` : null),
  capacity: (question, value) => (value === 'true' ? `capacity:${question}` : null),
  barrier_index: (question, value) => (Number(value) >= 3 ? `barrier_index:${question}` : null),
  competence_gap: (question, value) => (Number(value) <= 2 ? `competence_gap:${question}` : null),
  top3_ranking: (_, value) => `top3_ranking:${value}`,
};

/** A count's answer category value, from its quantity name ("count row|rank|value"). */
const valueOfCount = (count: string) => count.slice('count '.length).split('|').slice(2).join('|');

let definitionsRead: ReturnType<typeof questionDefinitions> | undefined;
const definitions = () => (definitionsRead ??= questionDefinitions());

/** Per indicator computed from one question's categories (SINGLE_QUESTION_INDICATORS) and published or hidden somewhere: its hits' name and the question's counts it takes. */
function indicatorHits(publication: Publication, figure: string): Map<string, string[]> {
  const question = figure.slice('question:'.length);
  const rule = SINGLE_QUESTION_INDICATORS[definitions().get(question)?.indicator ?? ''];
  const hits = new Map<string, string[]>();
  if (!rule) return hits;
  const counts = new Set([...(publication.published.get(figure)?.values() ?? [])].flatMap((q) => [...q.keys()].filter((n) => n.startsWith('count ') && !isDontKnowCount(n))));
  for (const count of counts) {
    const code = rule(question, valueOfCount(count));
    if (code === null || !(publication.published.has(`indicator:${code}`) || publication.hidden.has(`indicator:${code}`))) continue;
    hits.set(HITS + code, [...(hits.get(HITS + code) ?? []), count]);
  }
  return hits;
}

/** A question's published cells with its indicators' hits beside them (unknown where the indicator is not published, or the question is not). */
function withHits(publication: Publication, figure: string, hits: ReadonlyMap<string, string[]>): Map<CellId, Quantities> {
  const published = publication.published.get(figure) ?? new Map<CellId, Quantities>();
  if (hits.size === 0) return published;
  const indicators = [...hits.keys()].map((name) => [name, publication.published.get(`indicator:${name.slice(HITS.length)}`)] as const);
  const names = new Set([...published.values()].flatMap((q) => [...q.keys()]));
  const cells = new Set([...published.keys(), ...indicators.flatMap(([, cells]) => [...(cells?.keys() ?? [])])]);
  return new Map(
    [...cells].map((id) => {
      const q: Quantities = new Map(published.get(id) ?? [...names].map((n) => [n, SUPPRESSED]));
      for (const [name, cells] of indicators) q.set(name, cells?.get(id)?.get('hits') ?? SUPPRESSED);
      return [id, q];
    }),
  );
}

/** Whether every published cell where all its terms are known obeys a relation. */
const obeyed = (cells: Iterable<Quantities>, { terms, min, max }: CellRelation) =>
  [...cells].every((q) => {
    if (terms.some(([n]) => !q.has(n) || Number.isNaN(q.get(n)))) return true;
    const total = terms.reduce((t, [n, w]) => t + w * q.get(n)!, 0);
    return total >= min - 1e-4 && total <= max + 1e-4;
  });

/** A relation inside one cell over quantity names: min ≤ Σ weight × quantity ≤ max. */
interface CellRelation {
  terms: Array<[string, number]>;
  min: number;
  max: number;
}

/**
 * The weighted relations inside a cell of one question (SolveOptions.weighted),
 * over its quantity names; `hits` lists, per indicator's hits, the counts it takes.
 */
function weightedRelations(names: readonly string[], kind: string, hits: ReadonlyMap<string, string[]>, range: { min?: number; max?: number } | undefined): CellRelation[] {
  const valid = names.filter((n) => n.startsWith('count ') && !isDontKnowCount(n));
  const relations: CellRelation[] = [];
  const sumOf = (total: string, members: Array<[string, number]>) => {
    if (names.includes(total) && members.length > 0) relations.push({ terms: [[total, 1], ...members.map(([n, w]): [string, number] => [n, -w])], min: 0, max: 0 });
  };
  if (kind === 'scale') {
    const points = valid.map((n) => [n, Number(valueOfCount(n))] as const).filter(([, v]) => Number.isFinite(v));
    const top = Math.max(...points.map(([, v]) => v)) - 1;
    sumOf('valueSum', points.map(([n, v]) => [n, v]));
    sumOf('topTwo', points.filter(([, v]) => v >= top).map(([n]) => [n, 1]));
  }
  if (kind === 'yesno') sumOf('topTwo', valid.filter((n) => valueOfCount(n) === 'true').map((n) => [n, 1]));
  for (const [total, counts] of hits) sumOf(total, counts.map((n) => [n, 1]));
  if (kind === 'number' && names.includes('sum') && names.includes('validN')) {
    if (range?.min !== undefined) relations.push({ terms: [['sum', 1], ['validN', -range.min]], min: 0, max: Infinity });
    if (range?.max !== undefined) relations.push({ terms: [['sum', 1], ['validN', -range.max]], min: -Infinity, max: 0 });
  }
  return relations;
}

/** A scale's valid points as their counts' names and values. */
function scalePoints(names: readonly string[]): Array<readonly [string, number]> {
  return names.filter((n) => n.startsWith('count ') && !isDontKnowCount(n)).map((n) => [n, Number(valueOfCount(n))] as const).filter(([, v]) => Number.isFinite(v));
}

/**
 * The splits of a scale's points (SolveOptions.sides), each as the names of
 * its two sums and the points on either side: its top-two share's, or every
 * split into two non-empty sets (the lowest point always on the second side,
 * so that each is listed once; the top-two share's among them twice).
 */
function scaleSplits(points: ReadonlyArray<readonly [string, number]>, sides: 'topTwo' | 'every'): Array<{ names: [string, string]; of: [string[], string[]] }> {
  if (points.length < 2) return [];
  const values = points.map(([, v]) => v).sort((a, b) => a - b);
  const side = (inFirst: (v: number) => boolean): [string[], string[]] => [points.filter(([, v]) => inFirst(v)).map(([n]) => n), points.filter(([, v]) => !inFirst(v)).map(([n]) => n)];
  const splits: Array<{ names: [string, string]; of: [string[], string[]] }> = [{ names: ['topTwo', BELOW_TOP_TWO], of: side((v) => v >= values[values.length - 1]! - 1) }];
  if (sides === 'topTwo') return splits;
  for (let mask = 1; mask < 1 << (values.length - 1); mask++) {
    const first = new Set(values.slice(1).filter((_, i) => (mask >> i) & 1));
    const label = [...first].join('+');
    splits.push({ names: [`points ${label}`, `points not ${label}`], of: side((v) => first.has(v)) });
  }
  return splits;
}

/** A scale's sums over splits of its points (SolveOptions.sides): each the sum of its points' counts, a split's two the valid answers. */
function sideRelations(names: readonly string[], kind: string, sides: 'topTwo' | 'every'): CellRelation[] {
  if (kind !== 'scale') return [];
  const sumOf = (total: string, members: readonly string[]): CellRelation => ({ terms: [[total, 1], ...members.map((n): [string, number] => [n, -1])], min: 0, max: 0 });
  return scaleSplits(scalePoints(names), sides).flatMap(({ names: [a, b], of: [inA, inB] }) => [
    sumOf(a, inA),
    sumOf(b, inB),
    { terms: [['validN', 1], [a, -1], [b, -1]], min: 0, max: 0 },
  ]);
}

/**
 * Bounds on every quantity of one figure in every cell of the lattice.
 * `empty(cell, quantity)` says the quantity is known to be 0 there.
 */
export function solveFigure(publication: Publication, figure: string, lattice: Lattice, empty: (cell: CellId, quantity: string) => boolean, options: SolveOptions = {}): Map<CellId, Map<string, Interval>> {
  return solveLinked(publication, figure, lattice, empty, options).bounds;
}

/** Bounds on a group's number of responses, per cell, and whether a question's respondents equal it (else: at most it). */
interface ResponsesLink {
  responses: ReadonlyMap<CellId, Interval>;
  equal: boolean;
}

/**
 * solveFigure, with the number of responses known so far (`link`): for the
 * responses figure, they are its starting bounds; for a question, the
 * responses are one more quantity of every cell, its respondents at most (or
 * equal to) it. Returns the figure's bounds and the responses' bounds
 * narrowed by it.
 */
function solveLinked(
  publication: Publication,
  figure: string,
  lattice: Lattice,
  empty: (cell: CellId, quantity: string) => boolean,
  options: SolveOptions,
  link?: ResponsesLink,
): { bounds: Map<CellId, Map<string, Interval>>; responses?: Map<CellId, Interval> } {
  const kind = publication.kinds.get(figure);
  const question = figure.slice('question:'.length);
  // An indicator computed from this question's categories: its hits are one more quantity of the question's cells.
  const hits = options.weighted && kind !== undefined ? indicatorHits(publication, figure) : new Map<string, string[]>();
  const published = withHits(publication, figure, hits);
  // The number of responses is a quantity even where no cell publishes it (its hidden groups are still listed).
  const given = figure === RESPONSES ? ['responses'] : [];
  const own = [...new Set([...given, ...[...published.values()].flatMap((q) => [...q.keys()])])]
    .filter((n) => (options.weighted === true || !isWeightedQuantity(n)) && (!options.quantities || options.quantities(figure, n)))
    .sort();
  // A scale's sides, formed from its counts (a published share is read only with `weighted`): unknowns in every cell.
  const derived = options.sides && kind === 'scale' ? scaleSplits(scalePoints(own), options.sides).flatMap((split) => split.names.filter((n) => !own.includes(n))) : [];
  own.push(...derived);
  // A question's cells carry the group's number of responses as a quantity of their own, last (never one of the question's).
  const linked = link !== undefined && figure !== RESPONSES && own.includes('respondents');
  const names = linked ? [...own, LINKED] : own;
  const Q = names.length;
  const qIndex = new Map(names.map((n, i) => [n, i]));
  const N = lattice.cells.length * Q;
  const lo = new Float64Array(N);
  const hi = new Float64Array(N).fill(Infinity);
  const ownQ = own.length;
  lattice.cells.forEach((id, c) => {
    const known = published.get(id);
    if (known) {
      for (let q = 0; q < ownQ; q++) {
        if (derived.includes(names[q]!)) continue;
        const value = known.get(names[q]!) ?? 0;
        if (Number.isNaN(value)) {
          if (empty(id, names[q]!)) hi[c * Q + q] = 0;
        } else lo[c * Q + q] = hi[c * Q + q] = value;
      }
    } else for (let q = 0; q < ownQ; q++) if (empty(id, names[q]!)) hi[c * Q + q] = 0;
    // The responses known so far: a question's linked quantity, or the responses figure's own starting bounds.
    const start = link?.responses.get(id);
    if (start && (linked || figure === RESPONSES)) {
      const q = linked ? ownQ : qIndex.get('responses');
      if (q !== undefined) ((lo[c * Q + q] = Math.max(lo[c * Q + q]!, start.lo)), (hi[c * Q + q] = Math.min(hi[c * Q + q]!, start.hi)));
    }
  });
  // A group listed with its number of responses hidden exists; by default every hidden group is taken as listed (SolveOptions.unlisted).
  const responses = qIndex.get('responses');
  if (figure === RESPONSES && responses !== undefined) {
    for (const id of options.unlisted ? publication.listedHidden : (publication.hidden.get(figure) ?? [])) {
      const c = lattice.index.get(id);
      if (c !== undefined) lo[c * Q + responses] = Math.max(lo[c * Q + responses]!, 1);
    }
  }

  // Equalities: variable 0 of each is the total, the rest its members.
  const equalities: number[][] = [];
  for (const line of lattice.lines) for (let q = 0; q < Q; q++) equalities.push(line.map((c) => c * Q + q));
  // Inequalities a ≤ b.
  const atMost: Array<readonly [number, number]> = [];
  const inCell: Array<{ total: string; members: string[] }> = [];
  if (kind !== undefined) {
    const counts = names.filter((n) => n.startsWith('count '));
    inCell.push({ total: 'validN', members: counts.filter((n) => !isDontKnowCount(n)) });
    if (counts.some(isDontKnowCount)) inCell.push({ total: 'dk', members: counts.filter(isDontKnowCount) });
    inCell.push({ total: 'respondents', members: ['validN', 'dk'] });
  }
  // A relation is used only where every published cell obeys it (an auditor reads it off the published tables and the questionnaire; cells with a suppressed part cannot say).
  const holds = (total: string, members: string[]) =>
    qIndex.has(total) &&
    members.every((m) => qIndex.has(m)) &&
    members.length > 0 &&
    [...published.values()].every((q) => [total, ...members].some((m) => Number.isNaN(q.get(m))) || Math.abs(q.get(total)! - members.reduce((t, m) => t + q.get(m)!, 0)) < 1e-6);
  for (const { total, members } of options.withinCells ? inCell : []) {
    if (!holds(total, members)) continue;
    for (let c = 0; c < lattice.cells.length; c++) equalities.push([total, ...members].map((n) => c * Q + qIndex.get(n)!));
  }
  const bound = qIndex.get(kind !== undefined ? 'respondents' : 'n');
  if (bound !== undefined && options.withinCells) {
    for (const n of names) {
      const q = qIndex.get(n)!;
      // Each count, "don't know" and an indicator's hits are at most the respondents (n); valid answers may be picks, several each.
      if (kind !== undefined ? !n.startsWith('count ') && n !== 'dk' : n !== 'hits') continue;
      for (let c = 0; c < lattice.cells.length; c++) atMost.push([c * Q + q, c * Q + bound]);
    }
  }

  const weighted: WeightedRow[] = [];
  if ((options.weighted || options.sides) && kind !== undefined) {
    const relations = [...(options.weighted ? weightedRelations(names, kind, hits, definitions().get(question)) : []), ...(options.sides ? sideRelations(names, kind, options.sides) : [])];
    for (const relation of relations) {
      if (!relation.terms.every(([n]) => qIndex.has(n)) || !obeyed(published.values(), relation)) continue;
      for (let c = 0; c < lattice.cells.length; c++) {
        weighted.push({ vars: relation.terms.map(([n]) => c * Q + qIndex.get(n)!), coefficients: relation.terms.map(([, w]) => w), min: relation.min, max: relation.max });
      }
    }
  }

  if (linked) {
    const respondents = qIndex.get('respondents')!;
    // Who answered a question gave a response; a required question shown to everyone was answered in every response.
    for (let c = 0; c < lattice.cells.length; c++) {
      if (link.equal) equalities.push([c * Q + ownQ, c * Q + respondents]);
      else atMost.push([c * Q + respondents, c * Q + ownQ]);
    }
  }

  // A number's sum need not be whole (S4.3a runs in tenths); every other quantity is a count or a sum of whole points.
  const whole = (v: number) => names[v % Q] !== 'sum';
  propagate(lo, hi, equalities, atMost, weighted, whole);
  if (options.linearProgramming) {
    const { highs, targets } = options.linearProgramming;
    const chosen: number[] = [];
    for (let v = 0; v < N; v++) {
      const [c, q] = [Math.floor(v / Q), v % Q];
      if (q < ownQ && hi[v]! > lo[v]! && (!targets || targets(figure, lattice.cells[c]!, names[q]!))) chosen.push(v);
    }
    narrowByLinearProgramming(highs, lo, hi, equalities, atMost, weighted, chosen, whole, options.minRange ?? 1);
    // What the solver rounded inwards can narrow other quantities in turn.
    propagate(lo, hi, equalities, atMost, weighted, whole);
  }
  // Bounds that cross say the published tables contradict each other (or a relation assumed above is wrong).
  for (let v = 0; v < N; v++) {
    if (lo[v]! > hi[v]! + 1e-6) throw new Error(`${figure} ${names[v % Q]} at "${lattice.cells[Math.floor(v / Q)]}": no value fits the published tables`);
  }
  const bounds = new Map<CellId, Map<string, Interval>>();
  lattice.cells.forEach((id, c) => bounds.set(id, new Map(own.map((n, q) => [n, { lo: lo[c * Q + q]!, hi: hi[c * Q + q]! }]))));
  const at = linked ? ownQ : figure === RESPONSES ? qIndex.get('responses') : undefined;
  if (at === undefined) return { bounds };
  return { bounds, responses: new Map(lattice.cells.map((id, c) => [id, { lo: lo[c * Q + at]!, hi: hi[c * Q + at]! }])) };
}

/** The name of the number of responses inside a question's solve (never a quantity of a question). */
const LINKED = '\u0000responses';

/** The number of responses of a group: the figure whose cells the views list. */
const RESPONSES = 'responses';

/** Single answers: one valid answer per respondent, so valid answers count people. */
const SINGLE_ANSWER_KINDS = new Set(['scale', 'choice', 'yesno', 'number']);

/**
 * The sizes of a cell: how many responses, respondents, or respondents with a
 * valid answer stand behind a figure. These are what the disclosure mechanism
 * protects (see the README); counts of single answers, picks, sums are not.
 */
export function isSize(publication: Publication, figure: string, quantity: string): boolean {
  if (quantity === 'responses' || quantity === 'respondents') return true;
  return quantity === 'validN' && SINGLE_ANSWER_KINDS.has(publication.kinds.get(figure) ?? '');
}

/** Every figure solved; the truth (for empty cells) comes from the caller, as routing would tell an outsider. */
export function solveAll(publication: Publication, lattice: Lattice, empty: (figure: string, cell: CellId, quantity: string) => boolean, options: SolveOptions = {}): Map<string, Map<CellId, Map<string, Interval>>> {
  const figures = [...publication.published.keys()];
  const solve = (figure: string, link?: ResponsesLink) => solveLinked(publication, figure, lattice, (cell, quantity) => empty(figure, cell, quantity), options, link);
  if (!options.respondentsWithinResponses || !figures.includes(RESPONSES)) return new Map(figures.map((figure) => [figure, solve(figure).bounds]));
  // The figures share the number of responses: each question's solve narrows it for the others, until no solve narrows it further.
  const required = requiredForEveryone();
  const equal = (figure: string) => required.has(figure.slice('question:'.length)) && respondentsEqualResponses(publication, figure);
  const result = new Map<string, Map<CellId, Map<string, Interval>>>();
  let first = solve(RESPONSES);
  let responses = first.responses!;
  result.set(RESPONSES, first.bounds);
  for (let narrowed = true, rounds = 0; narrowed && rounds < 100; rounds++) {
    narrowed = false;
    for (const figure of figures) {
      if (figure === RESPONSES) continue;
      const solved = solve(figure, publication.kinds.has(figure) ? { responses, equal: equal(figure) } : undefined);
      result.set(figure, solved.bounds);
      if (!solved.responses || !narrows(solved.responses, responses)) continue;
      responses = solved.responses;
      narrowed = true;
    }
    if (!narrowed) break;
    first = solve(RESPONSES, { responses, equal: false });
    responses = first.responses!;
    result.set(RESPONSES, first.bounds);
  }
  return result;
}

/** Whether any cell's bounds in `after` are narrower than in `before` by half a unit or more (they never widen). */
const narrows = (after: ReadonlyMap<CellId, Interval>, before: ReadonlyMap<CellId, Interval>) =>
  [...after].some(([id, { lo, hi }]) => lo > before.get(id)!.lo + 0.5 || hi < before.get(id)!.hi - 0.5);

/**
 * Whether the campaign asked a required question of everyone, as far as the
 * published tables tell: its overall respondents equal the overall number of
 * responses, and so do those of every cell where both are published. (The
 * definitions say what was asked of a campaign that had the strand, not
 * whether it had it; a few small cells that agree by chance do not say.)
 */
function respondentsEqualResponses(publication: Publication, figure: string): boolean {
  const responses = publication.published.get(RESPONSES)!;
  const question = publication.published.get(figure);
  if (!question?.has('') || !responses.has('')) return false;
  return [...question].every(([id, q]) => !responses.has(id) || responses.get(id)!.get('responses') === q.get('respondents'));
}

/** A cube of groups (3 × 3 × 2 unless given) with all its margins (the tables over fewer dimensions), as cells and lines. */
export function cube(extent: readonly number[] = [3, 3, 2]): { cells: string[]; lines: Line[]; inner: string[] } {
  const cells: string[] = [];
  const lines: Line[] = [];
  const id = (values: Array<number | null>) => values.map((v) => (v === null ? '*' : String(v))).join('');
  const all = (values: Array<number | null>, axis: number): Array<Array<number | null>> =>
    axis === extent.length ? [values] : [null, ...Array.from({ length: extent[axis]! }, (_, v) => v)].flatMap((v) => all([...values, v], axis + 1));
  for (const values of all([], 0)) {
    cells.push(id(values));
    values.forEach((v, axis) => {
      if (v !== null) return;
      lines.push({ total: id(values), members: Array.from({ length: extent[axis]! }, (_, x) => id(values.map((w, a) => (a === axis ? x : w)))) });
    });
  }
  return { cells, lines, inner: cells.filter((c) => !c.includes('*')) };
}

/** Random groups of 0–5 respondents (many empty) in a cube with all its margins, each margin the sum of its groups. */
export function randomSizes(cells: readonly string[], inner: readonly string[], random: () => number): Map<string, number> {
  return cubeSizes(cells, inner, new Map(inner.map((c) => [c, random() < 0.4 ? 0 : Math.floor(random() * 6)])));
}

/** A cube's sizes (cube above): its inner cells' as given, every other cell the sum of the inner cells it holds. */
export function cubeSizes(cells: readonly string[], inner: readonly string[], innerSizes: ReadonlyMap<string, number>): Map<string, number> {
  const size = new Map(innerSizes);
  for (const c of cells.filter((c) => c.includes('*'))) {
    size.set(c, inner.filter((x) => [...c].every((ch, i) => ch === '*' || ch === x[i])).reduce((t, x) => t + size.get(x)!, 0));
  }
  return size;
}
