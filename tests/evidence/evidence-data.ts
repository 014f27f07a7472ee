import fc from 'fast-check';
import { Types } from 'mongoose';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { buildCatalogue, DONT_KNOW, type QuestionMeta } from '../../server/evidence/question-catalogue.ts';
import type { TestPlatform } from '../helpers/test-platform.ts';
import { appendJournal, taggedRecordOf, textQuestionsOf } from '../../server/evidence/analytic-record.ts';
import { institutionTagger } from '../../server/evidence/institution-tag.ts';
import { quoteTextOf } from '../../server/evidence/quote-text.ts';
import type { EvidenceService } from '../../server/evidence/indicator.service.ts';
import type { Thresholds } from '../../server/evidence/disclosure.ts';
import { DIMENSION_NAMES, type Dimension } from '../../server/evidence/evidence-filter.ts';

export const catalogue = buildCatalogue(loadSurveyLibrary());

export interface RawItem {
  strand: string;
  question: string;
  value: string | number | boolean;
  row?: string;
  rank?: number;
}

export interface RawResponse {
  _id: Types.ObjectId;
  campaign: Types.ObjectId;
  institution: Types.ObjectId;
  submittedAt: Date;
  profile: Record<string, string>;
  items: RawItem[];
}

/** Every combination of up to `k` profile dimensions (the views' breakdowns and filters are made from them). */
export function dimensionCombinations(k: number, from = 0, chosen: Dimension[] = []): Dimension[][] {
  if (chosen.length === k) return [chosen];
  return [chosen, ...DIMENSION_NAMES.slice(from).flatMap((d, i) => dimensionCombinations(k, from + i + 1, [...chosen, d]))];
}

/** Thresholds low enough that small random campaigns have published and hidden cells side by side (the auditor's tests). */
export const LOW_THRESHOLDS: Thresholds = { minInstitutions: 2, minRespondents: 3 };
/** Thresholds that hide nothing with answers: the truth, as it would be published without disclosure control. */
export const NO_THRESHOLDS: Thresholds = { minInstitutions: 1, minRespondents: 1 };

/** Small value sets, so that groups hold several responses. */
export const PROFILE_VALUES: Record<string, string[]> = {
  country: ['AT', 'DE', 'FR'],
  institutionType: ['ivet_school', 'ivet_dual'],
  role: ['head', 'vocational_teacher', 'intl_coordinator'],
  size: ['under_250', '1000_2499'],
  erasmus: ['accredited', 'consortium_coordinator', 'none'],
  location: ['city', 'rural'],
};

const answerable = catalogue.questions.filter((q) => q.strand !== 'P');

function itemArbitrary(q: QuestionMeta): fc.Arbitrary<RawItem[]> {
  const base = { strand: q.strand, question: q.name };
  const codes = q.choices.map((c) => c.value);
  switch (q.kind) {
    case 'scale':
    case 'choice':
      return fc.constantFrom(...codes).map((value) => [{ ...base, value }]);
    case 'yesno':
      return fc.boolean().map((value) => [{ ...base, value }]);
    case 'multi':
      return fc.subarray(codes, { minLength: 1, maxLength: Math.min(3, codes.length) }).map((values) => values.map((value) => ({ ...base, value })));
    case 'ranking':
      return fc.shuffledSubarray(codes, { minLength: 3, maxLength: 3 }).map((values) => values.map((value, i) => ({ ...base, value, rank: i + 1 })));
    case 'matrix':
      return fc
        .subarray(q.rows.map((r) => String(r.value)), { minLength: 1 })
        .chain((rows) => fc.tuple(...rows.map((row) => fc.constantFrom(...codes).map((value) => ({ ...base, row, value })))));
    case 'number':
      return fc.integer({ min: 0, max: q.name === 'S4_4a' || q.name === 'S2_9b' ? 200 : 60 }).map((value) => [{ ...base, value }]);
    default:
      return fc.constant([{ ...base, value: 'Words about mobility.' }]);
  }
}

/** One random response: a profile (some dimensions may be missing) and answers to a random subset of the questions. */
export const responseArbitrary = fc.record({
  institution: fc.integer({ min: 0, max: 7 }),
  minutes: fc.integer({ min: 0, max: 100_000 }),
  profile: fc.record(
    Object.fromEntries(Object.entries(PROFILE_VALUES).map(([d, values]) => [d, fc.option(fc.constantFrom(...values), { freq: 6 })])),
  ),
  answers: fc.tuple(...answerable.map((q) => fc.option(itemArbitrary(q), { freq: 3 }))),
});

export type ResponseSeed = typeof responseArbitrary extends fc.Arbitrary<infer T> ? T : never;

const institutionIds = Array.from({ length: 8 }, () => new Types.ObjectId());

/** Turns generated seeds into stored-response documents (the shape respond.service.ts writes). */
export function toResponses(seeds: ResponseSeed[], campaign: Types.ObjectId): RawResponse[] {
  return seeds.map((seed, index) => {
    const profile: Record<string, string> = {};
    for (const [d, v] of Object.entries(seed.profile)) if (v) profile[d] = v;
    return {
      _id: new Types.ObjectId(),
      campaign,
      institution: institutionIds[seed.institution]!,
      // Distinct times: the tie rule never decides which S4 answer counts.
      submittedAt: new Date(Date.UTC(2026, 0, 1) + seed.minutes * 60_000 + index),
      profile,
      items: seed.answers.flatMap((items) => (items ?? []) as RawItem[]),
    };
  });
}

/**
 * Stores documents as the respondent path would (with the fields the model
 * requires), and their analytic records, journalled: as another process
 * would, so the platform's evidence, given, is made to follow the journal
 * before this returns (its pages no longer look at the journal themselves).
 */
export async function insertResponses(platform: Pick<TestPlatform, 'models' | 'tagKey'> & { app?: TestPlatform['app'] }, responses: RawResponse[]): Promise<void> {
  const { models } = platform;
  const docs = responses.map((r) => ({
    ...r,
    invitation: new Types.ObjectId(),
    revision: 1,
    definitionVersion: 'test',
    strands: ['S1', 'S2', 'S3', 'S4'],
    language: 'en',
    // Enough of the SurveyJS answers for the raw export (one value per question).
    data: Object.fromEntries(r.items.map((i) => [i.question, i.value])),
  }));
  const isText = textQuestionsOf(catalogue);
  await models.Response.insertMany(docs);
  // The free text the quotes read, as the respondent path writes it.
  const quoteTexts = docs.map((doc) => quoteTextOf(doc, isText)).filter((q) => q !== null);
  if (quoteTexts.length) await models.QuoteText.collection.insertMany(quoteTexts);
  const tagOf = institutionTagger(models, platform.tagKey);
  const records = await Promise.all(docs.map((doc) => taggedRecordOf(tagOf, { ...doc, data: answersOf(doc.items) }, isText)));
  if (records.length === 0) return;
  await models.AnalyticRecord.collection.insertMany(records);
  await appendJournal(models, records.map((r) => r._id));
  await (platform.app?.locals.evidence as EvidenceService | undefined)?.refresh();
}

/** The SurveyJS answers that flatten into these items: a ranking's order, a matrix's rows, a multiple choice's picks. */
export function answersOf(items: readonly RawItem[]): Record<string, unknown> {
  const answers: Record<string, unknown> = {};
  for (const item of [...items].sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0))) {
    const kind = catalogue.byName.get(item.question)?.kind;
    if (item.row !== undefined) answers[item.question] = { ...(answers[item.question] as object), [item.row]: item.value };
    else if (kind === 'ranking' || kind === 'multi') answers[item.question] = [...((answers[item.question] as unknown[]) ?? []), item.value];
    else answers[item.question] = item.value;
  }
  return answers;
}

/** What a suppressed cell says in pages and exports. */
export const SUPPRESSED_NOTE = 'suppressed (fewer than 5 institutions or 10 respondents)';

/**
 * Countries as [code, institutions, respondents] where, at 5 institutions or
 * 10 respondents, DE alone is too small and AT, the next smallest, is hidden
 * as its complement; IT and PL are published.
 */
export const COMPLEMENT_CASE = [
  ['AT', 5, 10],
  ['DE', 4, 10],
  ['IT', 6, 12],
  ['PL', 7, 14],
] as const;

/**
 * Stores `respondents` responses from `institutions` institutions of one
 * country: S1.2a answered 4 by all, S1.1 yes by every other one, and the free
 * text if given.
 */
export async function insertCountry(
  platform: Parameters<typeof insertResponses>[0],
  campaign: Types.ObjectId,
  code: string,
  institutions: number,
  respondents: number,
  /**
   * s12a: the S1.2a answers of the first responses (the rest answer 4); s45: the S4.5 answers of the first responses (a
   * number, or "don't know" ticked in its separate box S4_5_dk; the rest do not answer S4).
   */
  extra: { profile?: Record<string, string>; text?: string; s12a?: ReadonlyArray<number | typeof DONT_KNOW>; s45?: ReadonlyArray<number | typeof DONT_KNOW> } = {},
): Promise<RawResponse[]> {
  const ids = Array.from({ length: institutions }, () => new Types.ObjectId());
  const responses = Array.from({ length: respondents }, (_, i): RawResponse => ({
    _id: new Types.ObjectId(),
    campaign,
    institution: ids[i % institutions]!,
    submittedAt: new Date(Date.UTC(2026, 1, 1, 0, i)),
    profile: { country: code, ...extra.profile },
    items: [
      { strand: 'S1', question: 'S1_1', value: i % 2 === 0 },
      { strand: 'S1', question: 'S1_2a', value: extra.s12a?.[i] ?? 4 },
      ...(extra.text ? [{ strand: 'S1', question: 'S1_6', value: extra.text }] : []),
      ...(extra.s45?.[i] === undefined ? [] : [extra.s45[i] === DONT_KNOW ? { strand: 'S4', question: 'S4_5_dk', value: DONT_KNOW } : { strand: 'S4', question: 'S4_5', value: extra.s45[i]! }]),
    ],
  }));
  await insertResponses(platform, responses);
  return responses;
}
