import type { Types } from 'mongoose';
import { z } from 'zod';
import type { Models } from '../db/models.ts';
import { contactListWithStamp, readAndKeepCampaignLinks, readContactList, type ContactListState } from './audience-state.ts';
import { COUNTRY_CODES, countryLabel, INSTITUTION_TYPE_CODES, institutionTypeLabel } from '../institutions/institution-codes.ts';
import { LANGUAGES, LANGUAGE_NAMES, type Language } from '../shared/languages.ts';

/**
 * Who a campaign invites: the active contacts of active institutions who have
 * not unsubscribed, narrowed by every list that is not empty — countries,
 * institution types, tags, and a list of email addresses (from a CSV).
 *
 * Invariant: a campaign that is not a demo never invites a demo contact (one
 * of the first start's demo institutions or of seed:demo's), and a demo
 * campaign invites demo contacts only, whatever its audience says.
 */
export const audienceSchema = z.object({
  countries: z.array(z.enum(COUNTRY_CODES, { error: (i) => `country "${String(i.input)}" is not one of the survey's countries` })).max(COUNTRY_CODES.length).default([]),
  types: z.array(z.enum(INSTITUTION_TYPE_CODES, { error: (i) => `institution type "${String(i.input)}" is unknown` })).max(INSTITUTION_TYPE_CODES.length).default([]),
  tags: z
    .array(z.string().trim().toLowerCase().regex(/^[\p{L}\p{N}_.-]{1,40}$/u, 'a tag is 1 to 40 letters, digits, dots, dashes or underscores'))
    .max(20)
    .default([]),
  emails: z.array(z.email('an address on the list is not a valid email address').max(254)).max(50_000).default([]),
});
export type Audience = z.infer<typeof audienceSchema>;
export const EVERYONE: Audience = { countries: [], types: [], tags: [], emails: [] };
/** An audience as stored (the campaign model's arrays of strings). */
export interface StoredAudience {
  countries: readonly string[];
  types: readonly string[];
  tags: readonly string[];
  emails: readonly string[];
}

/**
 * Reads a list of addresses as pasted or uploaded (a CSV export, one per line,
 * or separated by commas, semicolons or spaces): every cell that looks like
 * an address counts once, lower-cased; other cells (a header, names) are
 * returned apart so the page can say what it ignored.
 */
export function parseEmailList(text: string): { emails: string[]; ignored: string[] } {
  const emails = new Set<string>();
  const ignored: string[] = [];
  for (const raw of text.replace(/^\uFEFF/, '').split(/[\s,;]+/)) {
    const cell = raw.trim().replace(/^["'<]+|["'>]+$/g, '').toLowerCase();
    if (!cell) continue;
    if (z.email().max(254).safeParse(cell).success) emails.add(cell);
    else if (ignored.length < 20) ignored.push(cell);
  }
  return { emails: [...emails], ignored };
}

/** Tags as typed in a form field: separated by commas or spaces. */
export function parseTags(text: string): string[] {
  return [...new Set(text.split(/[\s,;]+/).map((t) => t.trim().toLowerCase()).filter(Boolean))];
}

/**
 * Demo data: flagged demo, or (seed:demo before the flag existed) an address
 * under the reserved .invalid domain, which no mail server delivers to.
 */
export function isDemoContact(contact: { demo?: boolean | null; email: string }, institution: { demo?: boolean | null } | undefined): boolean {
  return Boolean(contact.demo || institution?.demo || /\.invalid$/.test(contact.email));
}

export interface AudienceMember {
  _id: Types.ObjectId;
  /** The contact's name and their institution's: what an email to them says. */
  name: string;
  institution: Types.ObjectId;
  institutionName: string;
  email: string;
  language: string;
  country: string;
  type: string;
}

/**
 * The contacts a campaign's audience selects, read now (creating links reads
 * afresh). `demoExcluded` counts the demo contacts that would otherwise have
 * matched.
 */
export async function selectAudience(
  models: Models,
  campaign: { demo?: boolean | null; audience?: Partial<StoredAudience> | null },
): Promise<{ members: AudienceMember[]; demoExcluded: number }> {
  return membersOf(await readContactList(models), campaign);
}

/** The contacts of a contact list that a campaign's audience selects, in the order of their ids. */
function membersOf(contactList: ContactListState, campaign: { demo?: boolean | null; audience?: Partial<StoredAudience> | null }): { members: AudienceMember[]; demoExcluded: number } {
  const audience = { ...EVERYONE, ...withoutNulls(campaign.audience) };
  const countries = new Set<string>(audience.countries);
  const types = new Set<string>(audience.types);
  const emails = new Set(audience.emails);
  const members: AudienceMember[] = [];
  let demoExcluded = 0;
  // Ids of one length, hexadecimal: their order as strings is the order of the ids.
  const ids = [...contactList.contacts.keys()].sort();
  for (const id of ids) {
    const contact = contactList.contacts.get(id)!;
    const institution = contactList.institutions.get(String(contact.institution));
    if (!institution || institution.active === false || contact.active === false || contact.unsubscribedAt) continue;
    if (countries.size > 0 && !countries.has(institution.country)) continue;
    if (types.size > 0 && !types.has(institution.type)) continue;
    if (audience.tags.length > 0 && !audience.tags.some((tag) => contact.tags?.includes(tag))) continue;
    if (emails.size > 0 && !emails.has(contact.email)) continue;
    if (isDemoContact(contact, institution) !== Boolean(campaign.demo)) {
      if (!campaign.demo) demoExcluded += 1;
      continue;
    }
    members.push({
      _id: contact._id,
      name: contact.name,
      institution: contact.institution,
      institutionName: institution.name,
      email: contact.email,
      language: contact.language ?? 'en',
      country: institution.country,
      type: institution.type,
    });
  }
  return { members, demoExcluded };
}

/**
 * A campaign's audience and the contacts that have a personal link in it
 * already, read once (campaign:send prints the summary, then makes the links
 * and composes the emails from it). `contactListStamp` is the contact list's
 * change stamp read before (change-stamp.ts): while it has not moved, the
 * members are still what the database holds.
 */
export interface AudienceRead {
  members: AudienceMember[];
  demoExcluded: number;
  /** Contacts (by id) with a link in the campaign. */
  linked: Set<string>;
  contactListStamp: string;
}

export async function readAudience(models: Models, campaign: { _id: Types.ObjectId; demo?: boolean | null; audience?: Partial<StoredAudience> | null }): Promise<AudienceRead> {
  // The contact list as kept while its stamp has not moved (the platform reads it in the background: followContactList), else read now and kept for the confirmation page.
  const [{ state, stamp }, links] = await Promise.all([contactListWithStamp(models), readAndKeepCampaignLinks(models, campaign._id)]);
  const { members, demoExcluded } = membersOf(state, campaign);
  return { members, demoExcluded, linked: new Set(links.contacts), contactListStamp: stamp };
}

export interface AudienceSummary {
  /** The audience in words, e.g. "active contacts in AT (Austria), of Dual or apprenticeship-based initial VET". */
  description: string;
  matching: number;
  /** Of those, already with a personal link in this campaign. */
  withLink: number;
  /** What "Create the personal links" would make now. */
  toCreate: number;
  demoExcluded: number;
  /** Addresses on the list that match no contact (or only an inactive or demo one). */
  unknownEmails: string[];
  byCountry: Array<{ label: string; count: number }>;
  byType: Array<{ label: string; count: number }>;
  byLanguage: Array<{ label: string; count: number }>;
}

/** How many contacts the audience selects, how many links exist, and what inviting would create, in aggregate (from `read` when given). */
export async function summariseAudience(
  models: Models,
  campaign: { _id: Types.ObjectId; demo?: boolean | null; audience?: Partial<StoredAudience> | null; languages?: string[] | null },
  read?: AudienceRead,
): Promise<AudienceSummary> {
  const { members, demoExcluded, linked: invited } = read ?? (await readAudience(models, campaign));
  const languages = (campaign.languages?.length ? campaign.languages : [...LANGUAGES]) as Language[];
  const count = (keyOf: (m: AudienceMember) => string) => {
    const counts = new Map<string, number>();
    for (const member of members) counts.set(keyOf(member), (counts.get(keyOf(member)) ?? 0) + 1);
    return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([label, n]) => ({ label, count: n }));
  };
  const audience = { ...EVERYONE, ...withoutNulls(campaign.audience) };
  const found = new Set(members.map((m) => m.email));
  return {
    description: describeAudience(audience),
    matching: members.length,
    withLink: members.filter((m) => invited.has(String(m._id))).length,
    toCreate: members.filter((m) => !invited.has(String(m._id))).length,
    demoExcluded,
    unknownEmails: audience.emails.filter((e) => !found.has(e)),
    byCountry: count((m) => countryLabel(m.country)),
    byType: count((m) => institutionTypeLabel(m.type)),
    // The language each contact will be written to: theirs if the campaign offers it, else its first.
    byLanguage: count((m) => LANGUAGE_NAMES[(languages.includes(m.language as Language) ? m.language : languages[0]) as Language]),
  };
}

/** The audience in words, for the campaign page, the confirmation and the CLI. */
export function describeAudience(audience: StoredAudience): string {
  const parts: string[] = [];
  if (audience.countries.length > 0) parts.push(`in ${audience.countries.map(countryLabel).join(', ')}`);
  if (audience.types.length > 0) parts.push(`of ${audience.types.map(institutionTypeLabel).join(' or ')}`);
  if (audience.tags.length > 0) parts.push(`tagged ${audience.tags.join(' or ')}`);
  if (audience.emails.length > 0) parts.push(`on a list of ${audience.emails.length} address${audience.emails.length === 1 ? '' : 'es'}`);
  return parts.length === 0 ? 'all active contacts' : `active contacts ${parts.join(', ')}`;
}

/** Kept here too for the pages that know it from the audience. */
export { countryLabel };

function withoutNulls(audience: Partial<StoredAudience> | null | undefined): Partial<StoredAudience> {
  if (!audience) return {};
  return Object.fromEntries(Object.entries(audience).filter(([, v]) => Array.isArray(v))) as Partial<StoredAudience>;
}
