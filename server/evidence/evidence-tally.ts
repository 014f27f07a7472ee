import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { DIMENSION_NAMES, responseMatch, type Dimension, type EvidenceFilter } from './evidence-filter.ts';
import { DONT_KNOW, type QuestionCatalogue } from './question-catalogue.ts';

/**
 * Grouped counts of the answers: the only thing indicators are derived from.
 *
 * Why the grouping is done here, in one streamed pass, and not by an
 * aggregation pipeline: the embedded FerretDB 1.24 keeps only `_id` and the
 * unwound field after `$unwind` (the profile and institution are lost),
 * evaluates only the first accumulator of a `$group`, and finds a document's
 * group by a linear search (time grows with documents × groups). A pipeline
 * that is correct there cannot break answers down by profile. So the responses
 * are read once, with a cursor (memory does not grow with their number), and
 * every grouping — overall, each dimension, the requested cross-tab — is
 * counted in the same pass.
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
  responses: number;
  /** Keyed by the dimensions joined with "+" ("" for overall). */
  groupings: Map<string, Grouping>;
}

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
}

export const groupingKey = (dimensions: readonly Dimension[]) => dimensions.join('+');
export const accreditationKey = (code: string, accredited: boolean) => `${code}@${accredited ? 'accredited' : 'other'}`;

interface StoredResponse {
  _id: Types.ObjectId;
  institution: Types.ObjectId;
  submittedAt: Date;
  profile?: Partial<Record<Dimension, string>>;
  items?: Array<{ strand: string; question: string; value: unknown; row?: string; rank?: number }>;
}

/**
 * Counts the answers of the responses the filter selects: overall, by every
 * dimension, and by the filter's cross-tab if it has two dimensions.
 * S4 is counted once per institution: only the latest response (submittedAt,
 * then _id) of an institution that answered S4 contributes S4 answers.
 */
export async function tallyResponses(models: Pick<Models, 'Response'>, filter: EvidenceFilter, spec: TallySpec): Promise<Tallies> {
  const match = responseMatch(filter);

  const groupingList: Dimension[][] = [[], ...DIMENSION_NAMES.map((d) => [d])];
  if (filter.breakdown.length === 2) groupingList.push([...filter.breakdown]);
  const groupings = new Map(groupingList.map((dimensions) => [groupingKey(dimensions), { dimensions, groups: new Map() } as Grouping]));
  const counter = responseCounter(spec, [...groupings.values()]);

  // One read: S4 answers wait until the pass is over, since only each
  // institution's latest response that answered S4 counts for them.
  let responses = 0;
  const latestS4 = new Map<string, StoredResponse>();
  const cursor = models.Response.find(match, { institution: 1, submittedAt: 1, profile: 1, items: 1 }).lean<StoredResponse[]>().cursor({ batchSize: 500 });
  for await (const response of cursor as AsyncIterable<StoredResponse>) {
    responses += 1;
    counter(response, (item) => item.strand !== 'S4');
    if (!response.items?.some((item) => item.strand === 'S4')) continue;
    const key = String(response.institution);
    const current = latestS4.get(key);
    if (!current || isLater(response, current)) {
      latestS4.set(key, { ...response, items: response.items.filter((item) => item.strand === 'S4') });
    }
  }
  for (const response of latestS4.values()) counter(response, () => true);
  return { responses, groupings };
}

type StoredItem = NonNullable<StoredResponse['items']>[number];

/**
 * Counts the chosen items of one response into every grouping. A response is
 * counted in two calls (its S4 items apart); every indicator and ratio draws
 * on one strand only, so no population is counted twice.
 */
function responseCounter(spec: TallySpec, groupingArray: Grouping[]) {
  const numberQuestions = new Set(spec.catalogue.questions.filter((q) => q.kind === 'number').map((q) => q.name));
  const textQuestions = new Set(spec.catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name));

  return (response: StoredResponse, include: (item: StoredItem) => boolean) => {
    const institution = String(response.institution);
    const profile = response.profile ?? {};
    const accredited = spec.accredited.has(profile.erasmus ?? '');
    const items = (response.items ?? []).filter(include);
    if (items.length === 0) return;
    const tallies = groupingArray.map((grouping) => groupOf(grouping, profile));

    const answered = new Set<string>();
    const numbers = new Map<string, number>();
    for (const item of items) {
      if (textQuestions.has(item.question)) continue;
      const value = item.value as string | number | boolean;
      const isNumeric = typeof value === 'number';
      if (numberQuestions.has(item.question) && isNumeric) numbers.set(item.question, value);
      answered.add(item.question);
      const valid = value !== DONT_KNOW;
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
      const denominator = numbers.get(ratio.denominator);
      const parts = ratio.numerator.map((q) => numbers.get(q));
      if (denominator === undefined || parts.every((p) => p === undefined)) continue;
      let numerator = parts.reduce<number>((total, p) => total + (p ?? 0), 0);
      if (ratio.numeratorShareOf) {
        const share = numbers.get(ratio.numeratorShareOf);
        if (share === undefined) continue;
        numerator = (numerator * share) / 100;
      }
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

    for (const key of answered) {
      for (const tally of tallies) {
        let population = tally.populations.get(key);
        if (!population) tally.populations.set(key, (population = { respondents: 0, institutions: new Set() }));
        population.respondents += 1;
        if (population.institutions.size < spec.institutionCap) population.institutions.add(institution);
      }
    }
  };
}

function groupOf(grouping: Grouping, profile: Partial<Record<Dimension, string>>): GroupTally {
  const key = grouping.dimensions.length === 0 ? OVERALL : grouping.dimensions.map((d) => profile[d] ?? NOT_STATED).join('|');
  let tally = grouping.groups.get(key);
  if (!tally) grouping.groups.set(key, (tally = { questions: new Map(), populations: new Map(), ratios: new Map() }));
  return tally;
}

function questionTally(tally: GroupTally, question: string): QuestionTally {
  let q = tally.questions.get(question);
  if (!q) tally.questions.set(question, (q = { items: new Map(), numericN: 0, sum: 0, dk: 0 }));
  return q;
}

function isLater(a: StoredResponse, b: StoredResponse): boolean {
  const diff = a.submittedAt.getTime() - b.submittedAt.getTime();
  return diff > 0 || (diff === 0 && String(a._id) > String(b._id));
}

/** The label of a group key: the profile codes of its dimensions. */
export function groupValues(key: string): string[] {
  return key === OVERALL ? [] : key.split('|');
}

