import { Types } from 'mongoose';
import { z } from 'zod';
import { recordAudit } from '../accounts/audit.service.ts';
import { contactListState } from '../campaigns/audience-state.ts';
import { isDemoContact } from '../campaigns/audience.service.ts';
import type { Models } from '../db/models.ts';
import { linksOfContacts, revokeOpenLinks } from '../invitations/invitation.service.ts';
import { csvHeader, csvLine, type CsvSeparator } from '../shared/csv.ts';
import { noteContactsChange } from '../shared/contact-changes.ts';
import { HttpError } from '../shared/http-error.ts';
import { languageLabel, LANGUAGES } from '../shared/languages.ts';
import { COUNTRY_CODES, countryLabel, INSTITUTION_TYPE_CODES, institutionTypeLabel } from './institution-codes.ts';
import { institutionKey } from './institution.model.ts';

export interface InstitutionDeps {
  models: Models;
  now: () => Date;
}

export const institutionQuerySchema = z.object({
  q: z.string().trim().max(200).optional().catch(undefined),
  country: z.enum(COUNTRY_CODES).optional().catch(undefined),
  type: z.enum(INSTITUTION_TYPE_CODES).optional().catch(undefined),
  page: z.coerce.number().int().min(1).max(100_000).catch(1).default(1),
});
export type InstitutionQuery = z.infer<typeof institutionQuerySchema>;

export const institutionEditSchema = z.object({
  name: z.string().trim().min(1).max(300),
  country: z.enum(COUNTRY_CODES),
  type: z.enum(INSTITUTION_TYPE_CODES),
  // Optional too, as the route hands the service what this schema parsed already (an empty field parsed to undefined).
  erasmusId: z
    .string()
    .trim()
    .toUpperCase()
    .optional()
    .transform((v) => v || undefined)
    .pipe(z.string().regex(/^E\d{8}$/, 'must be E followed by 8 digits').optional()),
});
export const contactEditSchema = z.object({
  name: z.string().trim().min(1).max(200),
  email: z.string().trim().toLowerCase().pipe(z.email().max(254)),
  language: z.enum(LANGUAGES),
});

const PER_PAGE = 50;

/**
 * Institutions matching a search (in the institution's name or a contact's
 * email, ignoring case), a country and a type, a page at a time, in the order
 * they were recorded. From the kept contact list (audience-state.ts: read
 * again only what its journal names after a change), so a load reads its
 * stamp; on the embedded engine a search or a filter read every
 * institution, and the totals every contact, on every load.
 */
export async function listInstitutions(deps: Pick<InstitutionDeps, 'models'>, query: InstitutionQuery) {
  const { contacts, institutions } = await contactListState(deps.models);
  const text = query.q?.toLowerCase();
  const byEmail = new Set(text ? [...contacts.values()].filter((c) => c.email.toLowerCase().includes(text)).map((c) => String(c.institution)) : []);
  const found = [...institutions]
    .filter(([id, i]) => (!query.country || i.country === query.country) && (!query.type || i.type === query.type) && (!text || i.name.toLowerCase().includes(text) || byEmail.has(id)))
    .slice((query.page - 1) * PER_PAGE, query.page * PER_PAGE + 1)
    .map(([id, i]) => ({ ...i, _id: new Types.ObjectId(id) }));
  return { institutions: found.slice(0, PER_PAGE), page: query.page, hasNext: found.length > PER_PAGE };
}

/** The export's filter: the same search, country and type as the list. */
async function institutionFilter(models: Models, query: InstitutionQuery) {
  const filter: Record<string, unknown> = {};
  if (query.country) filter.country = query.country;
  if (query.type) filter.type = query.type;
  if (query.q) {
    // The search text is matched literally, never as a pattern.
    const pattern = new RegExp(query.q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
    const byEmail = await models.Contact.find({ email: pattern }, { institution: 1 }).limit(5000).lean();
    filter.$or = [{ name: pattern }, { _id: { $in: byEmail.map((c) => c.institution) } }];
  }
  return filter;
}

/**
 * How many institutions and contacts are recorded, and how many of them are
 * active (a contact counts as active when it is, its institution is, and it
 * has not unsubscribed: those are the ones a campaign invites; demo contacts
 * apart, as no real campaign invites them), from the kept contact list.
 */
export async function institutionTotals(deps: Pick<InstitutionDeps, 'models'>) {
  const { contacts, institutions } = await contactListState(deps.models);
  const activeInstitutions = [...institutions.values()].filter((i) => i.active !== false).length;
  let activeContacts = 0;
  let demoContacts = 0;
  for (const contact of contacts.values()) {
    const institution = institutions.get(String(contact.institution));
    // Demo contacts are never invited by a real campaign: counted apart.
    if (isDemoContact(contact, institution)) demoContacts += 1;
    else if (contact.active !== false && !contact.unsubscribedAt && institution?.active !== false) activeContacts += 1;
  }
  return { institutions: institutions.size, activeInstitutions, contacts: contacts.size, activeContacts, demoContacts };
}

/**
 * Deactivates several institutions, or several contacts, at once: each as
 * setInstitutionActive / setContactActive does it (their open links revoked
 * first, each one audited). Returns how many were deactivated and how many
 * links that revoked.
 */
export async function deactivateMany(
  deps: InstitutionDeps,
  kind: 'institution' | 'contact',
  ids: Types.ObjectId[],
  actor: string,
): Promise<{ deactivated: number; revokedLinks: number }> {
  let revokedLinks = 0;
  for (const id of ids) {
    revokedLinks += kind === 'institution' ? await setInstitutionActive(deps, id, false, actor) : (await setContactActive(deps, id, false, actor)).revokedLinks;
  }
  return { deactivated: ids.length, revokedLinks };
}

export async function getInstitution(deps: Pick<InstitutionDeps, 'models'>, id: Types.ObjectId) {
  const institution = await deps.models.Institution.findById(id).lean();
  if (!institution) throw new HttpError(404, 'This institution does not exist.');
  // From the kept contact list: a filter on the institution reads every contact on the embedded engine.
  const { contacts: list } = await contactListState(deps.models);
  const contacts = [...list.values()].filter((contact) => String(contact.institution) === String(id)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const links = await linksOfContacts(deps.models, contacts.map((c) => c._id));
  return { institution, contacts: contacts.map((contact) => ({ ...contact, links: links.get(String(contact._id)) ?? [] })) };
}

/** Changes an institution's details; its key follows, so a later import still recognises it. */
export async function updateInstitution(deps: InstitutionDeps, id: Types.ObjectId, input: z.infer<typeof institutionEditSchema>, actor: string) {
  const data = institutionEditSchema.parse(input);
  const key = institutionKey({ name: data.name, country: data.country, erasmusId: data.erasmusId });
  const update = data.erasmusId ? { $set: { ...data, key } } : { $set: { name: data.name, country: data.country, type: data.type, key }, $unset: { erasmusId: 1 } };
  try {
    const result = await deps.models.Institution.updateOne({ _id: id }, update);
    if (result.matchedCount === 0) throw new HttpError(404, 'This institution does not exist.');
  } catch (error) {
    if ((error as { code?: number }).code === 11000) throw new HttpError(409, 'Another institution already has this name and country, or this Erasmus+ ID.');
    throw error;
  }
  await noteContactsChange(deps.models, { institutions: [id] });
  await recordAudit(deps.models, { actor, action: 'institution.update', target: `institution:${id}`, details: data, at: deps.now() });
}

/**
 * Deactivates (or reactivates) an institution: an inactive institution's
 * contacts are not invited, and deactivating revokes their links that still
 * work (the answers already given are kept). Reactivating does not bring the
 * links back: the coordinator makes new ones, contact by contact.
 */
export async function setInstitutionActive(deps: InstitutionDeps, id: Types.ObjectId, active: boolean, actor: string): Promise<number> {
  if (!(await deps.models.Institution.exists({ _id: id }))) throw new HttpError(404, 'This institution does not exist.');
  // Links first: after a crash in between, the institution still shows as active and deactivating again finishes the job.
  const revokedLinks = active ? undefined : await revokeOpenLinks(deps, { institution: id }, 'institution-deactivated');
  await deps.models.Institution.updateOne({ _id: id }, { $set: { active } });
  await noteContactsChange(deps.models, { institutions: [id] });
  await recordAudit(deps.models, { actor, action: active ? 'institution.reactivate' : 'institution.deactivate', target: `institution:${id}`, details: active ? undefined : { revokedLinks }, at: deps.now() });
  return revokedLinks ?? 0;
}

export async function updateContact(deps: InstitutionDeps, id: Types.ObjectId, input: z.infer<typeof contactEditSchema>, actor: string) {
  const data = contactEditSchema.parse(input);
  try {
    const result = await deps.models.Contact.updateOne({ _id: id }, { $set: data });
    if (result.matchedCount === 0) throw new HttpError(404, 'This contact does not exist.');
  } catch (error) {
    if ((error as { code?: number }).code === 11000) throw new HttpError(409, 'This institution already has a contact with that email address.');
    throw error;
  }
  await noteContactsChange(deps.models, { contacts: [id] });
  await recordAudit(deps.models, { actor, action: 'contact.update', target: `contact:${id}`, details: data, at: deps.now() });
}

/** Deactivates (or reactivates) a contact; deactivating revokes its links that still work, as for an institution. */
export async function setContactActive(deps: InstitutionDeps, id: Types.ObjectId, active: boolean, actor: string) {
  const contact = await deps.models.Contact.findById(id, { institution: 1 }).lean();
  if (!contact) throw new HttpError(404, 'This contact does not exist.');
  // Links first, as for an institution.
  const revokedLinks = active ? undefined : await revokeOpenLinks(deps, { contact: id }, 'contact-deactivated');
  await deps.models.Contact.updateOne({ _id: id }, { $set: { active } });
  await noteContactsChange(deps.models, { contacts: [id] });
  await recordAudit(deps.models, { actor, action: active ? 'contact.reactivate' : 'contact.deactivate', target: `contact:${id}`, details: active ? undefined : { revokedLinks }, at: deps.now() });
  return { institution: contact.institution, revokedLinks: revokedLinks ?? 0 };
}

/**
 * The institutions and contacts matching a query as CSV, in the import's
 * columns (so an export can be edited and imported again) plus the states.
 */
export async function* exportInstitutionsCsv(
  deps: Pick<InstitutionDeps, 'models'>,
  query: Omit<InstitutionQuery, 'page'>,
  separator: CsvSeparator = ',',
): AsyncGenerator<string> {
  const filter = await institutionFilter(deps.models, { ...query, page: 1 });
  yield csvHeader(['institution_name', 'country', 'institution_type', 'erasmus_id', 'contact_name', 'email', 'language', 'institution_active', 'contact_active', 'unsubscribed'], separator);
  // One read of all contacts, grouped by institution: on FerretDB any look-up by institution reads them all anyway.
  const contactsOf = new Map<string, Array<{ name: string; email: string; language?: string | null; active?: boolean | null; unsubscribedAt?: Date | null }>>();
  for await (const contact of deps.models.Contact.find({}, { institution: 1, name: 1, email: 1, language: 1, active: 1, unsubscribedAt: 1 }).lean().cursor({ batchSize: 2000 })) {
    const key = String(contact.institution);
    contactsOf.set(key, [...(contactsOf.get(key) ?? []), contact]);
  }
  for await (const institution of deps.models.Institution.find(filter).lean().cursor({ batchSize: 2000 })) {
    const own = (contactsOf.get(String(institution._id)) ?? []).sort((a, b) => a.name.localeCompare(b.name));
    // Labels, not codes: the import reads them back.
    const base = [institution.name, countryLabel(institution.country), institutionTypeLabel(institution.type), institution.erasmusId ?? ''];
    const yesNo = (value: boolean) => (value ? 'yes' : 'no');
    const active = yesNo(institution.active !== false);
    const lines = own.length
      ? own.map((c) => [...base, c.name, c.email, languageLabel(c.language ?? 'en'), active, yesNo(c.active !== false), c.unsubscribedAt ? 'yes' : 'no'])
      : [[...base, '', '', '', active, '', '']];
    yield lines.map((line) => csvLine(line, separator)).join('');
  }
}

