import { createHash } from 'node:crypto';
import type { Types } from 'mongoose';
import { MAX_VIEW_DIMENSIONS } from './disclosure.ts';
import { DIMENSION_NAMES, type Dimension } from './evidence-filter.ts';
import { DONT_KNOW, type QuestionCatalogue } from './question-catalogue.ts';

/**
 * Grouped counts of the answers: the only thing indicators are derived from.
 *
 * Why the grouping is done here, in one streamed pass, and not by an
 * aggregation pipeline (measured on the embedded FerretDB 1.24, see README):
 * its `$unwind` keeps only `_id` and the unwound field, its `$group` hands one
 * iterator to all accumulators (only the first one counts), finds a
 * document's group by a linear search and holds every grouped document in
 * memory. Copying the profile into each item and running one accumulator per
 * pipeline makes a pipeline correct there, but 100 responses took 26.5 s to
 * group against 1.0 s to read (300: 97 s against 2.6 s). So the responses are
 * read once, with a cursor (memory does not grow with their number), and every
 * grouping is counted in the same pass.
 *
 * The read is the whole campaign, never a profile filter: a filtered view is a
 * slice of the campaign's tables (indicator.service.ts), so that it is
 * protected exactly as the same cells are in the breakdown. Every combination
 * of MAX_VIEW_DIMENSIONS dimensions is counted in the pass; the coarser tables
 * are added up from them.
 */
export const NOT_STATED = '-';
/** The key of the one group of the overall "breakdown". */
export const OVERALL = '';

export interface ItemCount {
  value: string | number | boolean;
  row?: string;
  rank?: number;
  n: number;
}

/** The answers to one question within one group. */
export interface QuestionTally {
  /** Answer items per (row, rank, value); numbers are summed instead (see sum). */
  items: Map<string, ItemCount>;
  /** Items with a numeric value, and their total. */
  numericN: number;
  sum: number;
  dk: number;
}

/** Respondents and institutions behind a cell; institutions are counted up to a cap (all disclosure needs). */
export interface Population {
  respondents: number;
  institutions: Set<string>;
}

/** Pooled totals of a ratio over the responses that gave both parts. */
export interface RatioTally {
  numerator: number;
  denominator: number;
  n: number;
}

export interface GroupTally {
  /** Responses in the group, whatever they answered. */
  responses: number;
  questions: Map<string, QuestionTally>;
  /** Per question (everyone who answered, "don't know" included) and per indicator (valid answers only). */
  populations: Map<string, Population>;
  ratios: Map<string, RatioTally>;
}

/** One grouping (overall, a dimension, or a pair of dimensions) and its groups. */
export interface Grouping {
  dimensions: Dimension[];
  groups: Map<string, GroupTally>;
}

export interface Tallies {
  /** Every combination of MAX_VIEW_DIMENSIONS dimensions (coarser tables are added up from them); keyed by the dimensions joined with "+". */
  groupings: Map<string, Grouping>;
}

/** The population of a question's valid answers ("don't know" excluded). */
export const validKey = (question: string) => `valid:${question}`;

/** The population of every response, whatever it answered: who stands behind a count of responses. */
export const RESPONSES = '*';

/** A ratio counted from each response that answered the denominator and at least one numerator part. */
export interface RatioSpec {
  code: string;
  numerator: string[];
  denominator: string;
  /** Multiply the numerator by this question's value / 100 (the own-funds share of the budget). */
  numeratorShareOf?: string;
  /** Split by accredited / not accredited as well (the accreditation gap). */
  byAccreditation?: boolean;
}

/**
 * One response's parts of a ratio: its denominator and the sum of the
 * numerator parts it gave (scaled by a share where the ratio has one), or
 * nothing when it did not give the denominator and at least one part.
 */
export function ratioParts(ratio: RatioSpec, numbers: ReadonlyMap<string, number>): { numerator: number; denominator: number } | undefined {
  const denominator = numbers.get(ratio.denominator);
  const parts = ratio.numerator.map((q) => numbers.get(q));
  if (denominator === undefined || parts.every((p) => p === undefined)) return undefined;
  let numerator = parts.reduce<number>((total, p) => total + (p ?? 0), 0);
  if (ratio.numeratorShareOf) {
    const share = numbers.get(ratio.numeratorShareOf);
    if (share === undefined) return undefined;
    numerator = (numerator * share) / 100;
  }
  return { numerator, denominator };
}

/** Which population keys an item contributes to, beyond its question. */
export type IndicatorPopulations = ReadonlyMap<string, readonly string[]>;

export interface TallySpec {
  catalogue: QuestionCatalogue;
  ratios: readonly RatioSpec[];
  indicatorsOf: IndicatorPopulations;
  /** Institutions are counted up to this many (the disclosure threshold). */
  institutionCap: number;
  /** Erasmus+ statuses (P8 codes) counted as accredited. */
  accredited: ReadonlySet<string>;
  /** The most the tallies kept for pages may weigh (evidence-store.ts TALLY_WEIGHT_KEPT unless given: tests give less). */
  tallyWeightKept?: number;
}

export const groupingKey = (dimensions: readonly Dimension[]) => dimensions.join('+');
export const accreditationKey = (code: string, accredited: boolean) => `${code}@${accredited ? 'accredited' : 'other'}`;

export interface StoredResponse {
  _id: Types.ObjectId | string;
  institution: Types.ObjectId | string;
  submittedAt: Date;
  profile?: Partial<Record<Dimension, string>>;
  items?: Array<{ strand: string; question: string; value: unknown; row?: string; rank?: number }>;
}

/**
 * Counts responses from scratch in one pass (the reference the in-memory
 * counts of evidence-store.ts are tested against).
 */
export async function countResponses(responses: AsyncIterable<StoredResponse> | Iterable<StoredResponse>, spec: TallySpec): Promise<Tallies> {
  const groupingList = combinations(DIMENSION_NAMES, Math.min(MAX_VIEW_DIMENSIONS, DIMENSION_NAMES.length));
  const groupings = new Map(groupingList.map((dimensions) => [groupingKey(dimensions), { dimensions, groups: new Map() } as Grouping]));
  const counter = responseCounter(spec, [...groupings.values()]);

  // One read: S4 answers wait until the pass is over, since only each
  // institution's latest response that answered S4 counts for them.
  const latestS4 = new Map<string, StoredResponse>();
  for await (const response of responses) {
    counter(response, (item) => item.strand !== 'S4');
    if (!response.items?.some((item) => item.strand === 'S4')) continue;
    const key = String(response.institution);
    const current = latestS4.get(key);
    if (!current || isLater(response, current)) {
      latestS4.set(key, { ...response, items: response.items.filter((item) => item.strand === 'S4') });
    }
  }
  for (const response of latestS4.values()) counter(response, () => true, false);
  return { groupings };
}

type StoredItem = NonNullable<StoredResponse['items']>[number];

/** Every choice of `k` of the items, each in the items' order. */
export function combinations<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  return items.flatMap((item, i) => combinations(items.slice(i + 1), k - 1).map((rest) => [item, ...rest]));
}

/**
 * Every table a view can show: each combination of up to
 * MAX_VIEW_DIMENSIONS dimensions, overall included. Here, not beside the
 * decision (indicator.service.ts): a counting thread (counts-thread.ts)
 * needs it without loading the decision's modules and their solver.
 */
export function viewTables(): Dimension[][] {
  return Array.from({ length: Math.min(MAX_VIEW_DIMENSIONS, DIMENSION_NAMES.length) + 1 }, (_, k) => combinations(DIMENSION_NAMES, k)).flat();
}

/**
 * Separate "don't know" boxes of a number question (S4_5_dk beside S4_5):
 * counted as that question's "don't know", as the design brief reads them.
 */
export function dontKnowBoxes(catalogue: QuestionCatalogue): Map<string, string> {
  return new Map(
    catalogue.questions
      .filter((q) => q.name.endsWith('_dk') && catalogue.byName.get(q.name.slice(0, -3))?.kind === 'number')
      .map((q) => [q.name, q.name.slice(0, -3)]),
  );
}

/**
 * Counts the chosen items of one response into every grouping. A response is
 * counted in two calls (its S4 items apart); every indicator and ratio draws
 * on one strand only, so no population is counted twice.
 */
function responseCounter(spec: TallySpec, groupingArray: Grouping[]) {
  const numberQuestions = new Set(spec.catalogue.questions.filter((q) => q.kind === 'number').map((q) => q.name));
  const textQuestions = new Set(spec.catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name));
  const boxes = dontKnowBoxes(spec.catalogue);

  return (response: StoredResponse, include: (item: StoredItem) => boolean, countResponse = true) => {
    const institution = String(response.institution);
    const profile = response.profile ?? {};
    const accredited = spec.accredited.has(profile.erasmus ?? '');
    const tallies = groupingArray.map((grouping) => groupOf(grouping, profile));
    if (countResponse) {
      for (const tally of tallies) {
        tally.responses += 1;
        addTo(tally, RESPONSES, institution, spec.institutionCap);
      }
    }
    const items = (response.items ?? [])
      .filter(include)
      .map((item) => (boxes.has(item.question) ? { ...item, question: boxes.get(item.question)!, value: DONT_KNOW } : item));
    if (items.length === 0) return;

    const answered = new Set<string>();
    const numbers = new Map<string, number>();
    for (const item of items) {
      if (textQuestions.has(item.question)) continue;
      const value = item.value as string | number | boolean;
      const isNumeric = typeof value === 'number';
      if (numberQuestions.has(item.question) && isNumeric) numbers.set(item.question, value);
      answered.add(item.question);
      const valid = value !== DONT_KNOW;
      if (valid) answered.add(validKey(item.question));
      if (valid) for (const key of spec.indicatorsOf.get(item.question) ?? []) answered.add(key);
      const itemKey = isNumeric && numberQuestions.has(item.question) ? '' : `${item.row ?? ''}|${item.rank ?? ''}|${typeof value}|${String(value)}`;
      for (const tally of tallies) {
        const q = questionTally(tally, item.question);
        if (isNumeric) {
          q.numericN += 1;
          q.sum += value;
        }
        if (!valid) q.dk += 1;
        if (itemKey) {
          const entry = q.items.get(itemKey);
          if (entry) entry.n += 1;
          else q.items.set(itemKey, { value, ...(item.row !== undefined ? { row: item.row } : {}), ...(item.rank !== undefined ? { rank: item.rank } : {}), n: 1 });
        }
      }
    }

    for (const ratio of spec.ratios) {
      const parts = ratioParts(ratio, numbers);
      if (!parts) continue;
      const { numerator, denominator } = parts;
      const keys = [ratio.code, ...(ratio.byAccreditation ? [accreditationKey(ratio.code, accredited)] : [])];
      for (const key of keys) {
        answered.add(key);
        for (const tally of tallies) {
          let r = tally.ratios.get(key);
          if (!r) tally.ratios.set(key, (r = { numerator: 0, denominator: 0, n: 0 }));
          r.numerator += numerator;
          r.denominator += denominator;
          r.n += 1;
        }
      }
    }

    for (const key of answered) for (const tally of tallies) addTo(tally, key, institution, spec.institutionCap);
  };
}

function addTo(tally: GroupTally, key: string, institution: string, cap: number): void {
  let population = tally.populations.get(key);
  if (!population) tally.populations.set(key, (population = { respondents: 0, institutions: new Set() }));
  population.respondents += 1;
  if (population.institutions.size < cap) population.institutions.add(institution);
}

function groupOf(grouping: Grouping, profile: Partial<Record<Dimension, string>>): GroupTally {
  const key = grouping.dimensions.length === 0 ? OVERALL : grouping.dimensions.map((d) => profile[d] ?? NOT_STATED).join('|');
  let tally = grouping.groups.get(key);
  if (!tally) grouping.groups.set(key, (tally = emptyTally()));
  return tally;
}

export function emptyTally(): GroupTally {
  return { responses: 0, questions: new Map(), populations: new Map(), ratios: new Map() };
}

/**
 * Adds one group's counts to another's (a coarser group made of finer ones).
 * Institutions are a set capped at `cap`; the union of capped sets, capped
 * again, is exact up to the cap, which is all disclosure control asks.
 */
export function addTally(into: GroupTally, from: GroupTally, cap: number): void {
  into.responses += from.responses;
  for (const [name, q] of from.questions) {
    const target = questionTally(into, name);
    target.numericN += q.numericN;
    target.sum += q.sum;
    target.dk += q.dk;
    for (const [key, item] of q.items) {
      const entry = target.items.get(key);
      if (entry) entry.n += item.n;
      else target.items.set(key, { ...item });
    }
  }
  for (const [key, p] of from.populations) {
    let target = into.populations.get(key);
    if (!target) into.populations.set(key, (target = { respondents: 0, institutions: new Set() }));
    target.respondents += p.respondents;
    for (const institution of p.institutions) {
      if (target.institutions.size >= cap) break;
      target.institutions.add(institution);
    }
  }
  for (const [key, r] of from.ratios) {
    const target = into.ratios.get(key);
    if (target) {
      target.numerator += r.numerator;
      target.denominator += r.denominator;
      target.n += r.n;
    } else into.ratios.set(key, { ...r });
  }
}

function questionTally(tally: GroupTally, question: string): QuestionTally {
  let q = tally.questions.get(question);
  if (!q) tally.questions.set(question, (q = { items: new Map(), numericN: 0, sum: 0, dk: 0 }));
  return q;
}

/**
 * The later submitted; at the same moment, the one whose counted content
 * (profile and S4 answers) ranks last (contentRank). Never the _id:
 * forgetting a person (privacy.service.ts) keeps their closed answers and
 * profile under a new id, and must not move a figure. Equal content counts
 * the same either way.
 */
function isLater(a: StoredResponse, b: StoredResponse): boolean {
  const diff = a.submittedAt.getTime() - b.submittedAt.getTime();
  return diff > 0 || (diff === 0 && contentRank(a) > contentRank(b));
}

/**
 * What decides between two S4 answers of one institution submitted at the
 * same moment: 48 bits of a hash of the counted content (profile and S4
 * answers), a number the in-memory counts keep per record instead of the
 * content itself (~400 bytes). Two different contents ranking equal (odds
 * 2^-48 per such tie) would leave the choice to the order records come in.
 */
export function contentRank(response: Pick<StoredResponse, 'profile' | 'items'>): number {
  const content = JSON.stringify([response.profile ?? {}, (response.items ?? []).filter((item) => item.strand === 'S4')]);
  return createHash('sha256').update(content).digest().readUIntBE(0, 6);
}

/** The label of a group key: the profile codes of its dimensions. */
export function groupValues(key: string): string[] {
  return key === OVERALL ? [] : key.split('|');
}

