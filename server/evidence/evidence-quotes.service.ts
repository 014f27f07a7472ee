import { createHash } from 'node:crypto';
import { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { isTooSmall, type Thresholds } from './disclosure.ts';
import { DIMENSION_NAMES, type EvidenceFilter } from './evidence-filter.ts';
import type { EvidenceService } from './indicator.service.ts';
import { contactListState } from '../campaigns/audience-state.ts';
import { readCampaignLinkEntries } from '../invitations/link-copy.store.ts';
import type { QuestionCatalogue } from './question-catalogue.ts';
import { decodeQuoteText, quoteTexts, readQuoteText, type QuotedResponse, type QuoteTextDoc } from './quote-text.ts';

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

const MAX_QUOTES = 500;

export interface QuoteDeps {
  models: Pick<Models, 'QuoteText' | 'Institution' | 'Invitation' | 'LinkCopy' | 'LinkChange' | 'ChangeStamp' | 'Contact' | 'ContactChange' | 'Suppression' | 'QuoteReview'>;
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
  const found = read.responses.filter((r) => r.items.some((i) => textQuestions.includes(i.question)));
  const institutions = new Set(found.map((r) => String(r.institution)));
  if (isTooSmall([{ respondents: found.length, institutions }], deps.thresholds)) return { suppressed: true };

  const byCountry = (await deps.evidence.tables({ campaigns: filter.campaigns, where: {}, breakdown: ['country'] })).groupResponses;
  const institutionNames = options.showIdentities ? await read.institutionNames() : new Map<string, string>();
  const quotes: Quote[] = [];
  for (const response of found) {
    const country = response.profile.country ?? '';
    for (const item of response.items) {
      if (!textQuestions.includes(item.question)) continue;
      quotes.push({
        key: quoteKey(response._id, item.question, item.value),
        text: options.showIdentities ? item.value : read.redact(item.value),
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

export interface QuotedRead {
  /** Responses of the filter with a free-text answer (at most MAX_QUOTES), only the fields quotes need. */
  responses: QuotedResponse[];
  /** The invitations whose institution and contact names the redaction removes: a response of another is read with the names again. */
  invitations: ReadonlySet<string>;
  /** Removes every institution and contact name invited to the campaign from a text reviewers see (nameRedactor, made once per read). */
  redact: (text: string) => string;
  /** The names of the quoted institutions, read when the coordinator first asks. */
  institutionNames: () => Promise<Map<string, string>>;
}

/** Where a read of quotes comes from: the responses' free text (quote-text.ts) and the names around them. */
export type QuoteSource = Pick<Models, 'QuoteText' | 'Institution' | 'Invitation' | 'LinkCopy' | 'LinkChange' | 'ChangeStamp' | 'Contact' | 'ContactChange' | 'Suppression'>;

/** The free-text questions of the catalogue whose answers can be quotes (the profile's are not). */
export function quotedQuestions(catalogue: QuestionCatalogue): string[] {
  return catalogue.questions.filter((q) => q.kind === 'text' && q.strand !== 'P').map((q) => q.name);
}

/**
 * The filter's responses with free text (at most MAX_QUOTES) and the
 * campaign's names, read from the database (QuoteCache keeps it): the
 * responses' compact quote documents, never the responses.
 */
export async function readQuoted(deps: Pick<QuoteDeps, 'models' | 'catalogue'>, filter: Pick<EvidenceFilter, 'campaigns' | 'where'>): Promise<QuotedRead> {
  const textQuestions = new Set(quotedQuestions(deps.catalogue));
  const responses: QuotedResponse[] = [];
  for await (const response of quoteTexts(deps.models, filter.campaigns)) {
    response.items = response.items.filter((i) => textQuestions.has(i.question));
    if (response.items.length > 0 && inSlice(filter, response)) responses.push(response);
    if (responses.length === MAX_QUOTES) break;
  }
  const { names, invitations } = await campaignNames(deps.models, filter.campaigns);
  return quotedRead(deps.models, responses, nameRedactor(names), invitations);
}

function quotedRead(models: QuoteSource, responses: QuotedResponse[], redact: (text: string) => string, invitations: ReadonlySet<string>): QuotedRead {
  let institutionNames: Promise<Map<string, string>> | undefined;
  return {
    responses,
    invitations,
    redact,
    institutionNames: () => (institutionNames ??= namesById(models.Institution, [...new Set(responses.map((r) => String(r.institution)))])),
  };
}

/** Whether a response's profile lies in the filter's slice (as responseMatch selects in the database). */
function inSlice(filter: Pick<EvidenceFilter, 'where'>, response: QuotedResponse): boolean {
  return DIMENSION_NAMES.every((d) => !filter.where[d]?.length || filter.where[d]!.includes(response.profile[d] as string));
}

/**
 * The free-text answers read for quotes, kept per filter for at most
 * QUOTE_CACHE_MAX_AGE_MS, which bounds how stale they can be after writes by
 * another process. A response stored through this process is taken in
 * (responseStored); an erasure, an anonymisation or a removal forgets every
 * read (invalidate(), wired beside the evidence counts' own). Review
 * decisions are not cached: they are read by _id on every page.
 */
export const QUOTE_CACHE_MAX_AGE_MS = 60_000;
export class QuoteCache {
  private readonly entries = new Map<string, { at: number; filter: Pick<EvidenceFilter, 'campaigns' | 'where'>; load: () => Promise<QuotedRead>; read: Promise<QuotedRead> }>();
  constructor(private readonly now: () => number = Date.now) {}

  read(filter: Pick<EvidenceFilter, 'campaigns' | 'where'>, load: () => Promise<QuotedRead>): Promise<QuotedRead> {
    const key = JSON.stringify([filter.campaigns, Object.entries(filter.where).sort()]);
    const cached = this.entries.get(key);
    if (cached && this.now() - cached.at < QUOTE_CACHE_MAX_AGE_MS) return cached.read;
    const entry = { at: this.now(), filter, load, read: load() };
    this.entries.set(key, entry);
    this.forgetOnFailure(key, entry);
    return entry.read;
  }

  /**
   * A response stored or revised through this process (`id`: its
   * invitation's, the current response's): every kept read of its campaign
   * takes it in from that one response, read by _id, instead of reading
   * every response of its filter again (at 804 responses that read took
   * ~1 s, and it grows with the responses; a response used to clear every
   * read). A read that did not know its invitation (invited after the read)
   * is made again whole, so that its names are among those removed. The
   * pages that ask meanwhile wait for the read so changed.
   */
  responseStored(id: string, campaign: string, models: QuoteSource, textQuestions: readonly string[]): void {
    let one: Promise<QuotedResponse | null> | undefined;
    for (const [key, entry] of this.entries) {
      if (entry.filter.campaigns.length > 0 && !entry.filter.campaigns.includes(campaign)) continue;
      one ??= quotedResponse(models, textQuestions, id);
      const response = one;
      entry.read = entry.read.then(async (read) => {
        if (!read.invitations.has(id)) return entry.load();
        const stored = await response;
        const responses = read.responses.filter((r) => String(r._id) !== id);
        if (stored && inSlice(entry.filter, stored) && responses.length < MAX_QUOTES) responses.push(stored);
        return quotedRead(models, responses, read.redact, read.invitations);
      });
      this.forgetOnFailure(key, entry);
    }
  }

  /** Forget every read: a response was erased, anonymised or removed, or a name changed. */
  invalidate = (): void => {
    this.entries.clear();
  };

  private forgetOnFailure(key: string, entry: { read: Promise<QuotedRead> }): void {
    const read = entry.read;
    read.catch(() => this.entries.get(key) === entry && entry.read === read && this.entries.delete(key));
  }
}

/** One current response's free-text answers as a quote read keeps them; null when it has none (or is gone). */
async function quotedResponse(models: QuoteSource, textQuestions: readonly string[], id: string): Promise<QuotedResponse | null> {
  const response = await readQuoteText(models, id);
  if (!response) return null;
  response.items = response.items.filter((i) => textQuestions.includes(i.question));
  return response.items.length ? response : null;
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
  const doc = await deps.models.QuoteText.findOne({ _id: new Types.ObjectId(responseId) }).lean<QuoteTextDoc>();
  const item = doc && decodeQuoteText(doc).items.find((i) => i.question === question);
  if (!doc || String(doc.campaign) !== input.campaign || !item || quoteKey(responseId, question, item.value) !== input.key) return false;
  await deps.models.QuoteReview.updateOne({ _id: input.key }, { $set: { campaign: doc.campaign, state: input.state, by: input.by, at: input.at } }, { upsert: true });
  return true;
}

export function quoteKey(response: Types.ObjectId | string, question: string, text: string): string {
  return `${String(response)}:${question}:${createHash('sha256').update(text).digest('base64url').slice(0, 16)}`;
}

async function namesById(model: QuoteDeps['models']['Institution'] | QuoteDeps['models']['Contact'], ids: string[]): Promise<Map<string, string>> {
  const docs = await (model as QuoteDeps['models']['Contact']).find({ _id: { $in: ids } }, { name: 1 }).lean<Array<{ _id: Types.ObjectId; name: string }>>();
  return new Map(docs.map((d) => [String(d._id), d.name]));
}

/**
 * Every institution and contact name invited to the campaign(s), and the
 * invitations they were read from: a named campaign's from its compact copy
 * of the links (link-copy.store.ts), not from the invitations, and the names
 * from the contact list this process keeps current (audience-state.ts), not
 * from the contacts and institutions; any it does not hold yet (written by
 * another process a moment ago) are read by _id.
 */
async function campaignNames(models: QuoteDeps['models'], campaigns: string[]): Promise<{ names: string[]; invitations: Set<string> }> {
  const invitations: Array<{ _id: Types.ObjectId; institution: Types.ObjectId; contact: Types.ObjectId }> = campaigns.length
    ? (await Promise.all(campaigns.map((campaign) => readCampaignLinkEntries(models, campaign)))).flat()
    : await models.Invitation.find({}, { institution: 1, contact: 1 }).lean();
  const list = await contactListState(models);
  const namesOf = async (ids: Iterable<string>, kept: ReadonlyMap<string, { name: string }>, model: QuoteDeps['models']['Institution'] | QuoteDeps['models']['Contact']) => {
    const names: string[] = [];
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const entry = kept.get(id);
      if (entry) names.push(entry.name);
      else missing.push(id);
    }
    if (missing.length) names.push(...(await namesById(model, missing)).values());
    return names;
  };
  const [institutions, contacts] = await Promise.all([
    namesOf(invitations.map((i) => String(i.institution)), list.institutions, models.Institution),
    namesOf(invitations.map((i) => String(i.contact)), list.contacts, models.Contact),
  ]);
  return { names: [...institutions, ...contacts], invitations: new Set(invitations.map((i) => String(i._id))) };
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

/** A character folded as `fold` folds it, ASCII without normalising (nothing in it decomposes or is a mark). */
const foldChar = (char: string) => (char.length === 1 && char.charCodeAt(0) < 0x80 ? char.toLowerCase() : fold(char));

/** What goes between the words of a name of several words: anything but letters and digits. */
const SEPARATOR = '[^\\p{L}\\p{N}]+';

/**
 * A function that replaces every name, and every word of a name (two letters
 * or more, not a common word), with a neutral mark; matched on whole words,
 * ignoring case and accents ("Müller", "muller", "MULLER").
 *
 * Matched as one regular expression of every name would match (the longest
 * first, at the leftmost word), word by word: the text's words (runs of
 * letters and digits, folded) are looked up among the names' first words.
 * The expression, with the demo waves' ~800 names, took ~300 ms of each
 * printable report, made again for every quote; made once, a quote still
 * took ~8 ms against 2,500 names (bench:quotes), since it tries every name at
 * every word.
 */
export function nameRedactor(names: readonly string[]): (text: string) => string {
  // Each name and name word under its expression's text, which ordered them (longest first; the first added among equals).
  const terms = new Map<string, string[]>();
  const add = (words: string[]) => {
    const term = words.map(escape).join(SEPARATOR);
    if (!terms.has(term)) terms.set(term, words);
  };
  for (const name of names) {
    const words = fold(name).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    if (words.length > 1) add(words);
    for (const word of words) if (word.length >= 2 && !COMMON_WORDS.has(word)) add([word]);
  }
  if (terms.size === 0) return (text) => text;
  const byFirstWord = new Map<string, string[][]>();
  for (const [, words] of [...terms].sort((a, b) => b[0].length - a[0].length)) {
    const list = byFirstWord.get(words[0]!);
    if (list) list.push(words);
    else byFirstWord.set(words[0]!, [words]);
  }
  return (text) => {
    // The folded text, and where each of its characters came from in the original.
    let folded = '';
    const origin: number[] = [];
    let index = 0;
    for (const char of text) {
      const f = foldChar(char);
      folded += f;
      for (let i = 0; i < f.length; i++) origin.push(index);
      index += char.length;
    }
    origin.push(text.length);
    const words = [...folded.matchAll(/[\p{L}\p{N}]+/gu)];
    let result = '';
    let last = 0;
    for (let i = 0; i < words.length; ) {
      let length = 0;
      for (const name of byFirstWord.get(words[i]![0]) ?? []) {
        let same = i + name.length <= words.length;
        for (let j = 1; j < name.length && same; j++) same = words[i + j]![0] === name[j];
        if (same) {
          length = name.length;
          break;
        }
      }
      if (length === 0) {
        i += 1;
        continue;
      }
      const first = words[i]!;
      const end = words[i + length - 1]!;
      result += text.slice(last, origin[first.index]!) + '[name removed]';
      last = origin[end.index + end[0].length]!;
      i += length;
    }
    return result + text.slice(last);
  };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
