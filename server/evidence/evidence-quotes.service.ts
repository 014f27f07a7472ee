import { createHash } from 'node:crypto';
import { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { isTooSmall, type Thresholds } from './disclosure.ts';
import { responseMatch, type EvidenceFilter } from './evidence-filter.ts';
import type { EvidenceService } from './indicator.service.ts';
import type { QuestionCatalogue } from './question-catalogue.ts';

export type QuoteState = 'pending' | 'approved' | 'hidden';

export interface Quote {
  /** Response, question and a hash of the text: what a review decision is kept under. */
  key: string;
  text: string;
  strand: string;
  question: string;
  /** Empty when the country's number of responses is suppressed: a label obeys the thresholds as a cell does. */
  country: string;
  /** Only for the coordinator. */
  institution?: string;
  state: QuoteState;
}

export type QuoteList = { suppressed: true } | { suppressed: false; quotes: Quote[] };

interface QuotedResponse {
  _id: Types.ObjectId;
  institution: Types.ObjectId;
  profile?: { country?: string };
  items?: Array<{ strand: string; question: string; value: unknown }>;
}

const MAX_QUOTES = 500;

export interface QuoteDeps {
  models: Pick<Models, 'Response' | 'Institution' | 'Invitation' | 'Contact' | 'QuoteReview'>;
  catalogue: QuestionCatalogue;
  evidence: EvidenceService;
  thresholds: Thresholds;
  /** Reads kept between pages; without one every call reads the database. */
  cache?: QuoteCache;
}

/**
 * The free-text answers the filter selects, as quotes.
 *
 * Reviewers see only quotes the coordinator approved (a new quote is pending
 * until then), never an institution, and every institution and contact name
 * of the campaign is removed from the text, whole or in parts, whatever its
 * case and accents. No quote is shown when the view's number of responses is
 * suppressed, or when the quotes come from fewer institutions or respondents
 * than the thresholds; a quote is labelled with its country only where the
 * country's number of responses is published.
 */
export async function listQuotes(deps: QuoteDeps, filter: Pick<EvidenceFilter, 'campaigns' | 'where'>, options: { strand?: string; showIdentities: boolean }): Promise<QuoteList> {
  const view = await deps.evidence.tables({ campaigns: filter.campaigns, where: filter.where, breakdown: [] });
  if (view.responses === null) return { suppressed: true };
  const textQuestions = deps.catalogue.questions.filter((q) => q.kind === 'text' && q.strand !== 'P' && (!options.strand || q.strand === options.strand)).map((q) => q.name);
  const read = await (deps.cache ?? new QuoteCache()).read(filter, () => readQuoted(deps, filter));
  const found = read.responses.filter((r) => r.items?.some((i) => textQuestions.includes(i.question)));
  const institutions = new Set(found.map((r) => String(r.institution)));
  if (isTooSmall([{ respondents: found.length, institutions }], deps.thresholds)) return { suppressed: true };

  const byCountry = (await deps.evidence.tables({ campaigns: filter.campaigns, where: {}, breakdown: ['country'] })).groupResponses;
  const institutionNames = options.showIdentities ? await read.institutionNames() : new Map<string, string>();
  const quotes: Quote[] = [];
  for (const response of found) {
    const country = response.profile?.country ?? '';
    for (const item of response.items ?? []) {
      if (!textQuestions.includes(item.question) || typeof item.value !== 'string') continue;
      quotes.push({
        key: quoteKey(response._id, item.question, item.value),
        text: options.showIdentities ? item.value : redactNames(item.value, read.names),
        strand: item.strand,
        question: item.question,
        country: country && byCountry[country] != null ? country : '',
        ...(options.showIdentities ? { institution: institutionNames.get(String(response.institution)) ?? '' } : {}),
        state: 'pending',
      });
    }
  }
  const decisions = new Map(
    (await deps.models.QuoteReview.find({ _id: { $in: quotes.map((q) => q.key) } }, { state: 1 }).lean<Array<{ _id: string; state: 'approved' | 'hidden' }>>()).map((d) => [d._id, d.state]),
  );
  for (const quote of quotes) quote.state = decisions.get(quote.key) ?? 'pending';
  const shown = options.showIdentities ? quotes : quotes.filter((q) => q.state === 'approved');
  shown.sort((a, b) => a.country.localeCompare(b.country) || a.text.localeCompare(b.text));
  return { suppressed: false, quotes: shown };
}

interface QuotedRead {
  /** Responses of the filter with a free-text answer (at most MAX_QUOTES), only the fields quotes need. */
  responses: QuotedResponse[];
  /** Every institution and contact name invited to the campaign: removed from the text reviewers see. */
  names: string[];
  /** The names of the quoted institutions, read when the coordinator first asks. */
  institutionNames: () => Promise<Map<string, string>>;
}

async function readQuoted(deps: QuoteDeps, filter: Pick<EvidenceFilter, 'campaigns' | 'where'>): Promise<QuotedRead> {
  const textQuestions = deps.catalogue.questions.filter((q) => q.kind === 'text' && q.strand !== 'P').map((q) => q.name);
  const responses = await deps.models.Response.find({ ...responseMatch(filter), 'items.question': { $in: textQuestions } }, { institution: 1, profile: 1, items: 1 })
    .limit(MAX_QUOTES)
    .lean<QuotedResponse[]>();
  // Only the free-text items are kept in memory.
  for (const r of responses) r.items = r.items?.filter((i) => textQuestions.includes(i.question));
  const names = await campaignNames(deps.models, filter.campaigns);
  let institutionNames: Promise<Map<string, string>> | undefined;
  return {
    responses,
    names,
    institutionNames: () => (institutionNames ??= namesById(deps.models.Institution, [...new Set(responses.map((r) => String(r.institution)))])),
  };
}

/**
 * The free-text answers read for quotes, kept per filter until a response
 * arrives or changes (invalidate(), wired beside the evidence counts' own) or
 * for at most QUOTE_CACHE_MAX_AGE_MS, which bounds how stale they can be after
 * writes by another process. Review decisions are not cached: they are read
 * by _id on every page.
 */
export const QUOTE_CACHE_MAX_AGE_MS = 60_000;
export class QuoteCache {
  private readonly entries = new Map<string, { at: number; read: Promise<QuotedRead> }>();
  constructor(private readonly now: () => number = Date.now) {}

  read(filter: Pick<EvidenceFilter, 'campaigns' | 'where'>, load: () => Promise<QuotedRead>): Promise<QuotedRead> {
    const key = JSON.stringify([filter.campaigns, Object.entries(filter.where).sort()]);
    const cached = this.entries.get(key);
    if (cached && this.now() - cached.at < QUOTE_CACHE_MAX_AGE_MS) return cached.read;
    const entry = { at: this.now(), read: load() };
    this.entries.set(key, entry);
    entry.read.catch(() => this.entries.get(key) === entry && this.entries.delete(key));
    return entry.read;
  }

  /** Forget every read: a response was stored, changed or erased, or a name changed. */
  invalidate = (): void => {
    this.entries.clear();
  };
}

/**
 * Records the coordinator's decision on a quote of the campaign (approved:
 * reviewers see it; hidden: they do not). Written by its exact _id, so a
 * second decision replaces the first. Refuses a key that is no current quote
 * of the campaign.
 */
export async function reviewQuote(deps: Pick<QuoteDeps, 'models'>, input: { campaign: string; key: string; state: 'approved' | 'hidden'; by: string; at: Date }): Promise<boolean> {
  const [responseId, question] = input.key.split(':');
  if (!responseId || !question || !Types.ObjectId.isValid(responseId)) return false;
  const response = await deps.models.Response.findOne({ _id: new Types.ObjectId(responseId) }, { campaign: 1, items: 1 }).lean<{ campaign: Types.ObjectId; items?: Array<{ question: string; value: unknown }> }>();
  const item = response?.items?.find((i) => i.question === question && typeof i.value === 'string');
  if (!response || String(response.campaign) !== input.campaign || !item || quoteKey(responseId, question, item.value as string) !== input.key) return false;
  await deps.models.QuoteReview.updateOne({ _id: input.key }, { $set: { campaign: response.campaign, state: input.state, by: input.by, at: input.at } }, { upsert: true });
  return true;
}

export function quoteKey(response: Types.ObjectId | string, question: string, text: string): string {
  return `${String(response)}:${question}:${createHash('sha256').update(text).digest('base64url').slice(0, 16)}`;
}

async function namesById(model: QuoteDeps['models']['Institution'] | QuoteDeps['models']['Contact'], ids: string[]): Promise<Map<string, string>> {
  const docs = await (model as QuoteDeps['models']['Contact']).find({ _id: { $in: ids } }, { name: 1 }).lean<Array<{ _id: Types.ObjectId; name: string }>>();
  return new Map(docs.map((d) => [String(d._id), d.name]));
}

/** Every institution and contact name invited to the campaign(s). */
async function campaignNames(models: QuoteDeps['models'], campaigns: string[]): Promise<string[]> {
  const invitations = await models.Invitation.find(campaigns.length ? { campaign: { $in: campaigns.map((id) => new Types.ObjectId(id)) } } : {}, { institution: 1, contact: 1 }).lean<
    Array<{ institution: Types.ObjectId; contact: Types.ObjectId }>
  >();
  const [institutions, contacts] = await Promise.all([
    namesById(models.Institution, [...new Set(invitations.map((i) => String(i.institution)))]),
    namesById(models.Contact, [...new Set(invitations.map((i) => String(i.contact)))]),
  ]);
  return [...institutions.values(), ...contacts.values()];
}

/** Words of names that are not names: left in the text. */
const COMMON_WORDS = new Set(['the', 'and', 'for', 'of', 'de', 'da', 'di', 'du', 'la', 'le', 'les', 'des', 'der', 'die', 'das', 'den', 'und', 'von', 'van', 'zu', 'zum', 'zur', 'del', 'della', 'y', 'el', 'et', 'en', 'im', 'am', 'an', 'at', 'in', 'on']);

/** Letters that accents do not decompose into: written as they are typed without them. */
const LETTERS: Record<string, string> = { ß: 'ss', æ: 'ae', œ: 'oe', ø: 'o', ł: 'l', đ: 'd', ð: 'd', þ: 'th', ı: 'i' };
const fold = (s: string) =>
  s
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[ßæœøłđðþı]/g, (c) => LETTERS[c]!);

/**
 * Replaces every name, and every word of a name (two letters or more, not a
 * common word), with a neutral mark; matched on whole words, ignoring case and
 * accents ("Müller", "muller", "MULLER").
 */
export function redactNames(text: string, names: readonly string[]): string {
  const terms = new Set<string>();
  for (const name of names) {
    const words = fold(name).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    if (words.length > 1) terms.add(words.map(escape).join('[^\\p{L}\\p{N}]+'));
    for (const word of words) if (word.length >= 2 && !COMMON_WORDS.has(word)) terms.add(escape(word));
  }
  if (terms.size === 0) return text;
  // The folded text, and where each of its characters came from in the original.
  let folded = '';
  const origin: number[] = [];
  let index = 0;
  for (const char of text) {
    const f = fold(char);
    folded += f;
    for (let i = 0; i < f.length; i++) origin.push(index);
    index += char.length;
  }
  origin.push(text.length);
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}])(?:${[...terms].sort((a, b) => b.length - a.length).join('|')})(?![\\p{L}\\p{N}])`, 'gu');
  let result = '';
  let last = 0;
  for (const match of folded.matchAll(pattern)) {
    const start = origin[match.index]!;
    const end = origin[match.index + match[0].length]!;
    result += text.slice(last, start) + '[name removed]';
    last = end;
  }
  return result + text.slice(last);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
