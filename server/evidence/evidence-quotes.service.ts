import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { isTooSmall, type Thresholds } from './disclosure.ts';
import { responseMatch, type EvidenceFilter } from './evidence-filter.ts';
import type { QuestionCatalogue } from './question-catalogue.ts';

export interface Quote {
  text: string;
  strand: string;
  question: string;
  country: string;
  /** Only for the coordinator. */
  institution?: string;
}

export type QuoteList = { suppressed: true } | { suppressed: false; quotes: Quote[] };

interface QuotedResponse {
  institution: Types.ObjectId;
  invitation: Types.ObjectId;
  profile?: { country?: string };
  items?: Array<{ strand: string; question: string; value: unknown }>;
}

const MAX_QUOTES = 500;

/**
 * The free-text answers the filter selects, as quotes. Reviewers never see who
 * wrote them: no institution, and the institution's and the contact's names are
 * blanked out of the text. When the quotes come from fewer institutions or
 * respondents than the thresholds, none is shown (country plus text could
 * identify someone).
 */
export async function listQuotes(
  deps: { models: Pick<Models, 'Response' | 'Institution' | 'Invitation' | 'Contact'>; catalogue: QuestionCatalogue; thresholds: Thresholds },
  filter: Pick<EvidenceFilter, 'campaigns' | 'where'>,
  options: { strand?: string; showIdentities: boolean },
): Promise<QuoteList> {
  const textQuestions = deps.catalogue.questions.filter((q) => q.kind === 'text' && q.strand !== 'P' && (!options.strand || q.strand === options.strand)).map((q) => q.name);
  const found = await deps.models.Response.find({ ...responseMatch(filter), 'items.question': { $in: textQuestions } }, { institution: 1, invitation: 1, profile: 1, items: 1 })
    .limit(MAX_QUOTES)
    .lean<QuotedResponse[]>();
  const institutions = new Set(found.map((r) => String(r.institution)));
  if (isTooSmall([{ respondents: found.length, institutions }], deps.thresholds)) return { suppressed: true };

  const institutionNames = new Map(
    (await deps.models.Institution.find({ _id: { $in: [...institutions] } }, { name: 1 }).lean<Array<{ _id: Types.ObjectId; name: string }>>()).map((i) => [String(i._id), i.name]),
  );
  const contactOf = new Map(
    (await deps.models.Invitation.find({ _id: { $in: found.map((r) => r.invitation) } }, { contact: 1 }).lean<Array<{ _id: Types.ObjectId; contact: Types.ObjectId }>>()).map((i) => [String(i._id), String(i.contact)]),
  );
  const contactNames = new Map(
    (await deps.models.Contact.find({ _id: { $in: [...new Set(contactOf.values())] } }, { name: 1 }).lean<Array<{ _id: Types.ObjectId; name: string }>>()).map((c) => [String(c._id), c.name]),
  );

  const quotes: Quote[] = [];
  for (const response of found) {
    const institution = institutionNames.get(String(response.institution)) ?? '';
    const contact = contactNames.get(contactOf.get(String(response.invitation)) ?? '') ?? '';
    for (const item of response.items ?? []) {
      if (!textQuestions.includes(item.question) || typeof item.value !== 'string') continue;
      const text = options.showIdentities ? item.value : blankOut(item.value, institution, contact);
      quotes.push({ text, strand: item.strand, question: item.question, country: response.profile?.country ?? '', ...(options.showIdentities ? { institution } : {}) });
    }
  }
  quotes.sort((a, b) => a.country.localeCompare(b.country) || a.text.localeCompare(b.text));
  return { suppressed: false, quotes };
}

/** Replaces the institution's name, the contact's name and each part of it longer than 3 letters with a neutral mark. */
function blankOut(text: string, institution: string, contact: string): string {
  const words = [institution, contact, ...contact.split(/\s+/).filter((w) => w.length > 3)].filter(Boolean);
  let result = text;
  for (const word of words.sort((a, b) => b.length - a.length)) {
    result = result.replace(new RegExp(word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'giu'), '[name removed]');
  }
  return result;
}
