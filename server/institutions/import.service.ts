import { parse } from 'csv-parse/sync';
import { randomBytes } from 'node:crypto';
import { Types, type Model } from 'mongoose';
import { z } from 'zod';
import { recordAudit } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { noteContactsChange } from '../shared/contact-changes.ts';
import { HttpError } from '../shared/http-error.ts';
import { languageCodeOf, languageLabel, LANGUAGES } from '../shared/languages.ts';
import { COUNTRY_CODES, countryCodeOf, countryLabel, INSTITUTION_TYPE_CODES, institutionTypeLabel, institutionTypeOf } from './institution-codes.ts';
import { DEMO_KEY_PREFIX, institutionKey } from './institution.model.ts';

export interface ImportDeps {
  models: Models;
  now: () => Date;
}

/** Largest accepted contacts file. */
export const IMPORT_MAX_BYTES = 5 * 1024 * 1024;
export const IMPORT_COLUMNS = ['institution_name', 'country', 'institution_type', 'erasmus_id', 'contact_name', 'email', 'language', 'tags'] as const;
const REQUIRED_COLUMNS = ['institution_name', 'country', 'institution_type', 'contact_name', 'email'] as const;

const optionalText = (schema: z.ZodType<string | undefined>) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema);

/** One CSV row, checked. Messages are shown to the coordinator next to the row number. */
const rowSchema = z.object({
  institution_name: z.string().trim().min(1, 'the institution name is empty').max(300, 'the institution name is longer than 300 characters'),
  country: z
    .string()
    .trim()
    // A code in any case, the label an export writes ("AT (Austria)") or the country's name ("Österreich"); the survey's "other" stays lower case.
    .transform(countryCodeOf)
    .refine((c) => c !== 'GR', 'country GR: the survey codes Greece as EL')
    .pipe(
      z.enum(COUNTRY_CODES, {
        error: (issue) =>
          issue.input === ''
            ? 'the country is empty'
            : `country "${String(issue.input)}" is not one of the survey's countries (write its two-letter code, e.g. DE, Greece as EL; its name, e.g. Germany or Deutschland; or "other")`,
      }),
    ),
  institution_type: z
    .string()
    .transform((value, context) => {
      const code = institutionTypeOf(value);
      if (!code) context.addIssue({ code: 'custom', message: value.trim() === '' ? 'the institution type is empty' : `institution type "${value.trim()}" is unknown (use one of ${INSTITUTION_TYPE_CODES.join(', ')}, or the type's name in English, French or German, e.g. "School-based initial VET")` });
      return code ?? z.NEVER;
    }),
  erasmus_id: optionalText(
    z.string().trim().toUpperCase().regex(/^E\d{8}$/, 'the Erasmus+ organisation ID must be E followed by 8 digits').optional(),
  ),
  contact_name: z.string().trim().min(1, 'the contact name is empty').max(200, 'the contact name is longer than 200 characters'),
  email: z.string().trim().toLowerCase().pipe(z.email({ error: (issue) => (issue.input === '' ? 'the email address is empty' : `"${String(issue.input)}" is not a valid email address`) }).max(254)),
  language: optionalText(
    z.string().transform(languageCodeOf).pipe(z.enum(LANGUAGES, { error: (issue) => `language "${String(issue.input)}" is not one of ${LANGUAGES.join(', ')}` })).optional(),
  ).transform((v) => v ?? 'en'),
  /** The contact's lists, for choosing a campaign's audience: separated by "|" or spaces; an empty cell changes nothing. */
  tags: optionalText(z.string().optional()).transform((value, context) => {
    if (value === undefined) return undefined;
    const tags = [...new Set(value.split(/[\s|,;]+/).map((t) => t.trim().toLowerCase()).filter(Boolean))].sort();
    const bad = tags.find((t) => !/^[\p{L}\p{N}_.-]{1,40}$/u.test(t));
    if (bad !== undefined) context.addIssue({ code: 'custom', message: `tag "${bad}" is not 1 to 40 letters, digits, dots, dashes or underscores` });
    return tags;
  }),
});
type ImportRow = z.infer<typeof rowSchema>;

/** A "duplicate" row repeats an earlier row of the file exactly: that earlier row alone is imported. */
export type RowAction = 'create' | 'update' | 'unchanged' | 'duplicate' | 'reject';

/** One field that an update changes, in words: "Contact: Mikko V → Mikko Virtanen". */
export interface FieldChange {
  field: string;
  from: string;
  to: string;
}

export interface RowOutcome {
  /** As a spreadsheet shows it: the header is row 1. */
  row: number;
  action: RowAction;
  /** Why the row is rejected, or what changes. */
  reason?: string;
  institutionName: string;
  email: string;
  /** Every column of a valid row, in words, for the preview of new rows. */
  fields?: Record<FieldLabel, string>;
  /** What an update changes, field by field. */
  changes?: FieldChange[];
}

const FIELD_LABELS = {
  name: 'Institution',
  country: 'Country',
  type: 'Type',
  erasmusId: 'Erasmus+ ID',
  contactName: 'Contact',
  email: 'Email',
  language: 'Language',
  tags: 'Tags',
} as const;
type FieldLabel = (typeof FIELD_LABELS)[keyof typeof FIELD_LABELS];

/** A stored or imported value as the coordinator reads it. */
function shownValue(field: keyof typeof FIELD_LABELS, value: unknown): string {
  if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) return '(none)';
  if (field === 'country') return countryLabel(String(value));
  if (field === 'type') return institutionTypeLabel(String(value));
  if (field === 'language') return languageLabel(String(value));
  if (Array.isArray(value)) return [...value].sort().join(', ');
  return String(value);
}

function fieldsOf(data: ImportRow): Record<FieldLabel, string> {
  const values: Record<keyof typeof FIELD_LABELS, unknown> = {
    name: data.institution_name,
    country: data.country,
    type: data.institution_type,
    erasmusId: data.erasmus_id,
    contactName: data.contact_name,
    email: data.email,
    language: data.language,
    tags: data.tags,
  };
  return Object.fromEntries(Object.entries(values).map(([field, value]) => [FIELD_LABELS[field as keyof typeof FIELD_LABELS], shownValue(field as keyof typeof FIELD_LABELS, value)])) as Record<FieldLabel, string>;
}

function changesOf(current: Record<string, unknown>, set: Record<string, unknown>, names: Record<string, keyof typeof FIELD_LABELS>): FieldChange[] {
  return Object.entries(set)
    .filter(([field]) => field in names)
    .map(([field, to]) => ({ field: FIELD_LABELS[names[field]!], from: shownValue(names[field]!, current[field]), to: shownValue(names[field]!, to) }));
}

export interface ImportPlan {
  rows: RowOutcome[];
  counts: Record<RowAction, number>;
  institutions: { create: number; update: number };
  contacts: { create: number; update: number };
  /** The writes that commit the plan; empty when re-importing the same file. */
  writes: {
    institutions: Array<{ key: string; existingId?: Types.ObjectId; set: Record<string, unknown> }>;
    /** Demo institutions (made before their keys were apart) holding a key a new real institution takes: given their demo key first. */
    demoKeys: Array<{ _id: Types.ObjectId; key: string }>;
    contacts: Array<{ institutionKey: string; institutionId?: Types.ObjectId; email: string; existingId?: Types.ObjectId; set: Record<string, unknown> }>;
  };
}

/**
 * Reads a contacts CSV (UTF-8, optional BOM, "," or ";" separated, quoted
 * fields allowed) and checks each row. A file in another encoding (Excel's
 * plain "CSV" is Windows-1252 or 1250, by the computer's language) is refused
 * with the line that shows it, never imported with its accents replaced. A file that cannot be read as a table,
 * or lacks a required column, is refused as a whole (HttpError 400).
 */
export function parseContactsCsv(text: string): { valid: Array<{ row: number; data: ImportRow }>; rejected: RowOutcome[] } {
  if (Buffer.byteLength(text, 'utf8') > IMPORT_MAX_BYTES) {
    throw new HttpError(413, `The file is larger than ${IMPORT_MAX_BYTES / 1024 / 1024} MB. Please split it into several files.`);
  }
  const body = text.replace(/^\uFEFF/, '');
  // A workbook chosen in place of its CSV: an .xlsx (or .ods) file is a zip archive.
  if (body.startsWith('PK\u0003\u0004')) {
    throw new HttpError(
      400,
      'This is a spreadsheet workbook (.xlsx or .ods), not a CSV file. Nothing was imported. In Excel, "Save as" the type "CSV UTF-8 (comma delimited)"; in LibreOffice, "Save as" "Text CSV" with the character set "Unicode (UTF-8)"; then import that file.',
    );
  }
  // Bytes that are not UTF-8 were decoded as U+FFFD: importing them would store "K\uFFFDln" for "Köln".
  const unreadable = body.indexOf('\uFFFD');
  if (unreadable >= 0) {
    const line = body.slice(0, unreadable).split(/\r?\n/).length;
    const sample = body.split(/\r?\n/)[line - 1]!.trim().slice(0, 80);
    throw new HttpError(
      400,
      `The file is not in UTF-8: line ${line} has characters that cannot be read (shown as \uFFFD: "${sample}"). ` +
        'Nothing was imported. Save the file as UTF-8 and upload it again: in Excel, "Save as" the type "CSV UTF-8 (comma delimited)"; in LibreOffice, choose the character set "Unicode (UTF-8)".',
    );
  }
  const headerLine = body.split(/\r?\n/, 1)[0] ?? '';
  // The header's most frequent separator: a comma, a semicolon (Excel where the comma is the decimal sign) or a tab (Excel's "Text (Tab delimited)").
  const count = (separator: string) => headerLine.split(separator).length - 1;
  const delimiter = [',', ';', '\t'].reduce((best, separator) => (count(separator) > count(best) ? separator : best));
  let records: string[][];
  try {
    // Empty lines are kept (and skipped below) so that record i is row i + 1, as a spreadsheet numbers it; a quote inside a cell that does not start with one is text ("B "Nord" School").
    records = parse(body, { delimiter, bom: true, skip_empty_lines: false, relax_column_count: true, relax_quotes: true, trim: false });
  } catch (error) {
    throw new HttpError(400, csvErrorMessage(body, delimiter, error as Error & { code?: string; lines?: number }));
  }
  const isEmpty = (record: string[]) => record.every((cell) => cell.trim() === '');
  const headerAt = Math.max(0, records.findIndex((record) => !isEmpty(record)));
  const header = (records[headerAt] ?? []).map((name) => name.trim().toLowerCase().replace(/[\s-]+/g, '_'));
  const missing = REQUIRED_COLUMNS.filter((column) => !header.includes(column));
  if (missing.length > 0) {
    throw new HttpError(400, `The file lacks the column(s) ${missing.join(', ')}. Expected columns: ${IMPORT_COLUMNS.join(', ')}.`);
  }
  const valid: Array<{ row: number; data: ImportRow }> = [];
  const rejected: RowOutcome[] = [];
  records.forEach((record, index) => {
    const row = index + 1;
    if (index <= headerAt || isEmpty(record)) return;
    const raw = Object.fromEntries(IMPORT_COLUMNS.map((column) => [column, header.includes(column) ? (record[header.indexOf(column)] ?? '') : '']));
    const result = rowSchema.safeParse(raw);
    if (result.success) valid.push({ row, data: result.data });
    else rejected.push({ row, action: 'reject', reason: result.error.issues.map((issue) => issue.message).join('; '), institutionName: raw.institution_name!.trim(), email: raw.email!.trim() });
  });
  return { valid, rejected };
}

/**
 * What to fix when the file is not CSV. A quoted cell that is never closed
 * is named by the line where it opens: the parser only notices at the end
 * of the file, where the rest of the file has become one cell.
 */
function csvErrorMessage(body: string, delimiter: string, error: Error & { code?: string; lines?: number }): string {
  const lineText = (line: number) => (body.split(/\r?\n/)[line - 1] ?? '').trim().slice(0, 80);
  if (error.code === 'CSV_QUOTE_NOT_CLOSED') {
    const line = unclosedQuoteLine(body, delimiter);
    if (line !== undefined) {
      return (
        `Line ${line} opens a quoted cell that is never closed, so the rest of the file would be read as that one cell. ` +
        `A cell that starts with " must end with " (a " inside it is written ""): close the quote or remove it, and import the file again. Nothing was imported. Line ${line} reads: ${lineText(line)}`
      );
    }
  }
  const at = error.lines ? ` at line ${error.lines} ("${lineText(error.lines)}")` : '';
  return `The file could not be read as CSV${at}: ${error.message}. Nothing was imported.`;
}

/** The line where the quoted cell left open at the end of the file starts, read as the parser reads it (a quote opens a cell only at its start; "" inside is a quote). */
function unclosedQuoteLine(body: string, delimiter: string): number | undefined {
  let line = 1;
  let openedAt: number | undefined;
  let fieldStart = true;
  for (let i = 0; i < body.length; i++) {
    const char = body[i]!;
    if (openedAt !== undefined) {
      if (char === '"') {
        if (body[i + 1] === '"') i += 1;
        else openedAt = undefined;
      } else if (char === '\n') line += 1;
      continue;
    }
    if (char === '"' && fieldStart) openedAt = line;
    if (char === '\n') line += 1;
    fieldStart = char === delimiter || char === '\n' || (char === '\r' && body[i + 1] === '\n');
  }
  return openedAt;
}

/**
 * Compares a contacts file with the database and says, row by row, what a
 * commit would create, update, leave unchanged or reject. Writes nothing.
 * An institution is recognised by its key (Erasmus+ ID, else country + name);
 * a contact by institution + email. Active flags and unsubscriptions are
 * never changed by an import, so re-importing a file changes nothing.
 */
export async function planImport(deps: Pick<ImportDeps, 'models'>, text: string): Promise<ImportPlan> {
  const { valid, rejected } = parseContactsCsv(text);
  return planRows(deps, valid, rejected);
}

async function planRows(deps: Pick<ImportDeps, 'models'>, valid: Array<{ row: number; data: ImportRow }>, rejected: RowOutcome[]): Promise<ImportPlan> {
  const outcomes: RowOutcome[] = [...rejected];

  // An email address may appear once in a file: otherwise which row is right is unclear.
  // Rows that repeat each other exactly (a file pasted twice, say) are clear: the first is imported.
  const rowsByEmail = new Map<string, Array<{ row: number; data: ImportRow }>>();
  for (const entry of valid) rowsByEmail.set(entry.data.email, [...(rowsByEmail.get(entry.data.email) ?? []), entry]);
  const firstRowOfKey = new Map<string, { row: number; data: ImportRow }>();
  const accepted: Array<{ row: number; data: ImportRow; key: string }> = [];
  for (const entry of valid) {
    const rows = rowsByEmail.get(entry.data.email)!;
    const reject = (reason: string) => outcomes.push({ row: entry.row, action: 'reject', reason, institutionName: entry.data.institution_name, email: entry.data.email });
    if (rows.length > 1) {
      const first = rows[0]!;
      const allSame = rows.every((other) => JSON.stringify(other.data) === JSON.stringify(first.data));
      if (!allSame) {
        reject(`the email address ${entry.data.email} appears on rows ${rows.map((r) => r.row).join(', ')}`);
        continue;
      }
      if (first !== entry) {
        outcomes.push({ row: entry.row, action: 'duplicate', reason: `the same as row ${first.row}: imported once`, institutionName: entry.data.institution_name, email: entry.data.email });
        continue;
      }
    }
    const key = institutionKey({ name: entry.data.institution_name, country: entry.data.country, erasmusId: entry.data.erasmus_id });
    const first = firstRowOfKey.get(key);
    if (first && !sameInstitution(first.data, entry.data)) {
      reject(`the institution's details differ from row ${first.row}`);
      continue;
    }
    if (!first) firstRowOfKey.set(key, entry);
    accepted.push({ ...entry, key });
  }

  const { found: existing, demoHolders } = await findExistingInstitutions(deps.models, [...firstRowOfKey.values()].map((e) => e.data));
  const institutionWrites: ImportPlan['writes']['institutions'] = [];
  const institutionChange = new Map<string, 'create' | 'update' | 'unchanged'>();
  const institutionChanges = new Map<string, FieldChange[]>();
  for (const [key, { data }] of firstRowOfKey) {
    const found = existing.get(key);
    const wanted = { name: data.institution_name, country: data.country, type: data.institution_type, erasmusId: data.erasmus_id, key };
    if (!found) {
      institutionWrites.push({ key, set: wanted });
      institutionChange.set(key, 'create');
      continue;
    }
    const set = changedFields(found, wanted);
    institutionChange.set(key, Object.keys(set).length > 0 ? 'update' : 'unchanged');
    institutionChanges.set(key, changesOf(found, set, { name: 'name', country: 'country', type: 'type', erasmusId: 'erasmusId' }));
    if (Object.keys(set).length > 0) institutionWrites.push({ key, existingId: found._id, set });
  }

  const existingIds = [...existing.values()].map((i) => i._id);
  const contacts = new Map<string, { _id: Types.ObjectId; name: string; language?: string | null; tags?: string[] }>();
  const known = new Set(existingIds.map(String));
  const projection = { institution: 1, email: 1, name: 1, language: 1, tags: 1 };
  for await (const contact of lookUp<{ _id: Types.ObjectId; institution: Types.ObjectId; email: string; name: string; language?: string | null }>(deps.models.Contact, 'institution', existingIds, projection)) {
    if (known.has(String(contact.institution))) contacts.set(`${contact.institution}|${contact.email}`, contact as never);
  }
  const contactWrites: ImportPlan['writes']['contacts'] = [];
  const counts = { create: 0, update: 0, unchanged: 0, duplicate: 0, reject: 0 };
  let contactsCreated = 0;
  let contactsUpdated = 0;
  for (const { row, data, key } of accepted) {
    const institution = existing.get(key);
    const found = institution ? contacts.get(`${institution._id}|${data.email}`) : undefined;
    const wanted = { name: data.contact_name, language: data.language, tags: data.tags };
    const set = found ? changedFields(found, wanted) : { ...wanted, email: data.email };
    const contactChange = !found ? 'create' : Object.keys(set).length > 0 ? 'update' : 'unchanged';
    if (contactChange === 'create') contactsCreated += 1;
    if (contactChange === 'update') contactsUpdated += 1;
    if (contactChange !== 'unchanged') contactWrites.push({ institutionKey: key, institutionId: institution?._id, email: data.email, existingId: found?._id, set });
    const institutionAction = institutionChange.get(key)!;
    const action: RowAction =
      institutionAction === 'create' || contactChange === 'create' ? 'create' : institutionAction === 'update' || contactChange === 'update' ? 'update' : 'unchanged';
    const changes =
      action === 'update'
        ? [...(institutionAction === 'update' ? institutionChanges.get(key)! : []), ...(found && contactChange === 'update' ? changesOf(found, set, { name: 'contactName', language: 'language', tags: 'tags' }) : [])]
        : undefined;
    const reason = changes?.map((c) => `${c.field}: ${c.from} → ${c.to}`).join('; ');
    outcomes.push({ row, action, reason, institutionName: data.institution_name, email: data.email, fields: fieldsOf(data), changes });
  }
  for (const outcome of outcomes) counts[outcome.action] += 1;
  outcomes.sort((a, b) => a.row - b.row);
  return {
    rows: outcomes,
    counts,
    institutions: {
      create: [...institutionChange.values()].filter((c) => c === 'create').length,
      update: [...institutionChange.values()].filter((c) => c === 'update').length,
    },
    contacts: { create: contactsCreated, update: contactsUpdated },
    writes: {
      institutions: institutionWrites,
      contacts: contactWrites,
      demoKeys: institutionWrites.flatMap((w) => (!w.existingId && demoHolders.has(w.key) ? [{ _id: demoHolders.get(w.key)!, key: w.key }] : [])),
    },
  };
}

/**
 * Applies a plan. Creations are upserts keyed like the plan, so a second
 * commit of the same file (or two at once) creates nothing twice.
 * Records the import in the audit log.
 */
export async function applyImport(
  deps: ImportDeps,
  plan: ImportPlan,
  actor: string,
  fileName?: string,
  audit: { action: string; target?: string } = { action: 'import.commit', target: fileName },
): Promise<void> {
  const now = deps.now();
  // Plain inserts and updates by _id: FerretDB v1 looks documents up by other
  // fields with a full scan, so one upsert per row would make a large import quadratic.
  const idByKey = new Map<string, Types.ObjectId>();
  await updateById(deps.models.Institution.collection, plan.writes.demoKeys.map((d) => ({ _id: d._id, set: { key: `${DEMO_KEY_PREFIX}${d.key}` } })));
  const changed = plan.writes.institutions.filter((w) => w.existingId);
  await updateById(deps.models.Institution.collection, changed.map((w) => ({ _id: w.existingId!, set: { ...w.set, updatedAt: now } })));
  for (const write of changed) idByKey.set(write.key, write.existingId!);
  const fresh = plan.writes.institutions
    .filter((w) => !w.existingId)
    .map((w) => ({ _id: new Types.ObjectId(), ...withoutUndefined(w.set), key: w.key, active: true, demo: false, createdAt: now, updatedAt: now }));
  const taken = await insertIgnoringDuplicates(deps.models.Institution.collection, fresh);
  for (const doc of fresh) if (!taken.has(doc._id)) idByKey.set(doc.key, doc._id);
  // Another import created some of the same institutions at the same moment: use theirs.
  const lost = fresh.filter((doc) => taken.has(doc._id)).map((doc) => doc.key);
  for (const batch of chunks(lost, 500)) {
    for (const institution of await deps.models.Institution.find({ key: { $in: batch } }, { key: 1 }).lean()) idByKey.set(institution.key, institution._id);
  }

  const contactChanges = plan.writes.contacts.filter((w) => w.existingId);
  await updateById(deps.models.Contact.collection, contactChanges.map((w) => ({ _id: w.existingId!, set: { ...w.set, updatedAt: now } })));
  const contacts = plan.writes.contacts
    .filter((w) => !w.existingId)
    .map((w) => {
      const institution = w.institutionId ?? idByKey.get(w.institutionKey);
      if (!institution) throw new Error(`institution ${w.institutionKey} vanished during the import`);
      return { _id: new Types.ObjectId(), ...w.set, tags: w.set.tags ?? [], institution, email: w.email, active: true, demo: false, createdAt: now, updatedAt: now };
    });
  await insertIgnoringDuplicates(deps.models.Contact.collection, contacts);
  // The institutions and contacts written or created (an _id that lost to another import's is simply not found by a reader).
  await noteContactsChange(deps.models, {
    institutions: [...plan.writes.demoKeys.map((d) => d._id), ...changed.map((w) => w.existingId!), ...fresh.map((doc) => doc._id)],
    contacts: [...contactChanges.map((w) => w.existingId!), ...contacts.map((c) => c._id)],
  });

  await recordAudit(deps.models, {
    actor,
    action: audit.action,
    target: audit.target,
    details: { rows: plan.counts, institutions: plan.institutions, contacts: plan.contacts },
    at: now,
  });
}

export type ImportFields = Partial<Record<(typeof IMPORT_COLUMNS)[number], string>>;

/**
 * Adds one institution with a contact, or one contact to an institution, typed
 * on a page: checked and written exactly like one row of a CSV import (same
 * messages, same keys, same writes). Something already recorded is not
 * changed here: that is what the institution's page is for. Returns the
 * problems, or the institution the contact now belongs to. Audited as
 * `institution.add` or `contact.add`.
 */
export async function addFromForm(
  deps: ImportDeps,
  fields: ImportFields,
  actor: string,
): Promise<{ problems: string[] } | { institutionId: Types.ObjectId; newInstitution: boolean }> {
  const raw = Object.fromEntries(IMPORT_COLUMNS.map((column) => [column, fields[column] ?? '']));
  const checked = rowSchema.safeParse(raw);
  if (!checked.success) return { problems: checked.error.issues.map((issue) => issue.message) };
  const plan = await planRows(deps, [{ row: 2, data: checked.data }], []);
  const outcome = plan.rows[0]!;
  if (outcome.action === 'reject') return { problems: [outcome.reason ?? 'the row is not valid'] };
  if (outcome.action === 'unchanged') return { problems: [`${checked.data.email} is already a contact of this institution`] };
  if (outcome.action === 'update') return { problems: [`already recorded with other details (${outcome.reason}): change them on the institution's page`] };
  const newInstitution = plan.institutions.create === 1;
  const key = institutionKey({ name: checked.data.institution_name, country: checked.data.country, erasmusId: checked.data.erasmus_id });
  await applyImport(deps, plan, actor, undefined, { action: newInstitution ? 'institution.add' : 'contact.add', target: checked.data.email });
  const institution = await deps.models.Institution.findOne({ key }, { _id: 1 }).lean();
  if (!institution) throw new Error(`the institution ${key} was not found after adding it`);
  return { institutionId: institution._id, newInstitution };
}

/**
 * Plans an import and, when asked, commits it: what the command line and the
 * web upload both call. Returns the plan that was (or would be) applied.
 */
export async function importContacts(deps: ImportDeps, text: string, options: { commit: boolean; actor: string; fileName?: string }): Promise<ImportPlan> {
  const plan = await planImport(deps, text);
  if (options.commit) await applyImport(deps, plan, options.actor, options.fileName);
  return plan;
}

/**
 * Drops uploaded files nobody confirmed within a day (FerretDB has no TTL
 * indexes): at each upload, and at the retention scheduler's hourly check,
 * so a file that names people never stays for long.
 */
export async function dropUnconfirmedPreviews(deps: ImportDeps): Promise<void> {
  await deps.models.ImportPreview.deleteMany({ createdAt: { $lt: new Date(deps.now().getTime() - 24 * 3600_000) } });
}

/** Keeps an uploaded file until the coordinator confirms its preview; returns the preview's id. */
export async function storePreview(deps: ImportDeps, text: string, actor: string, fileName?: string): Promise<string> {
  const now = deps.now();
  await dropUnconfirmedPreviews(deps);
  const previewId = randomBytes(24).toString('base64url');
  await deps.models.ImportPreview.create({ previewId, actor, text, fileName, createdAt: now });
  return previewId;
}

export async function loadPreview(deps: ImportDeps, previewId: string, actor: string) {
  if (!/^[A-Za-z0-9_-]{32}$/.test(previewId)) return null;
  return deps.models.ImportPreview.findOne({ previewId, actor }).lean();
}

/**
 * Commits a stored preview once: the first confirmation claims it by a
 * unique insert; a second click (or a second tab) gets a 409.
 */
export async function commitPreview(deps: ImportDeps, previewId: string, actor: string): Promise<ImportPlan> {
  if (!/^[A-Za-z0-9_-]{32}$/.test(previewId)) throw new HttpError(404, 'This import preview does not exist.');
  const preview = await deps.models.ImportPreview.findOne({ previewId, actor, committedAt: { $exists: false } }).lean();
  if (!preview || !(await claimOnce(deps.models, `import:${previewId}`, deps.now()))) throw new HttpError(409, 'This import was already committed, or its preview expired. Upload the file again.');
  const plan = await importContacts(deps, preview.text, { commit: true, actor, fileName: preview.fileName ?? undefined });
  await deps.models.ImportPreview.updateOne({ previewId }, { $set: { committedAt: deps.now(), text: '' } });
  return plan;
}

type StoredInstitution = { _id: Types.ObjectId; name: string; country: string; type: string; erasmusId?: string | null; key: string; demo?: boolean | null };

/**
 * Existing institutions by the key the file gives them; one known by name
 * only is found by name too. A demo institution is never one of them (its
 * contacts are never invited and go with the demo data): `demoHolders` are
 * those made before demo keys were apart that hold a file's key, by key.
 */
async function findExistingInstitutions(models: Models, rows: ImportRow[]): Promise<{ found: Map<string, StoredInstitution>; demoHolders: Map<string, Types.ObjectId> }> {
  const fileKeys = new Set<string>();
  // An institution first imported without its Erasmus+ ID is the same one when the ID arrives later.
  const fileKeyOfNameKey = new Map<string, string>();
  for (const data of rows) {
    const key = institutionKey({ name: data.institution_name, country: data.country, erasmusId: data.erasmus_id });
    fileKeys.add(key);
    if (data.erasmus_id) fileKeyOfNameKey.set(institutionKey({ name: data.institution_name, country: data.country }), key);
  }
  const found = new Map<string, StoredInstitution>();
  const demoHolders = new Map<string, Types.ObjectId>();
  const projection = { name: 1, country: 1, type: 1, erasmusId: 1, key: 1, demo: 1 };
  for await (const institution of lookUp<StoredInstitution>(models.Institution, 'key', [...fileKeys, ...fileKeyOfNameKey.keys()], projection)) {
    if (institution.demo) {
      if (fileKeys.has(institution.key)) demoHolders.set(institution.key, institution._id);
      continue;
    }
    const fileKey = fileKeys.has(institution.key) ? institution.key : fileKeyOfNameKey.get(institution.key);
    // An exact key match wins over a match by name.
    if (fileKey && (!found.has(fileKey) || institution.key === fileKey)) found.set(fileKey, institution);
  }
  return { found, demoHolders };
}

type RawCollection = { bulkWrite(ops: never, options: object): Promise<unknown>; insertMany(docs: never, options: object): Promise<unknown> };

async function updateById(collection: RawCollection, updates: Array<{ _id: Types.ObjectId; set: Record<string, unknown> }>) {
  for (const batch of chunks(updates, 1000)) {
    await collection.bulkWrite(batch.map((u) => ({ updateOne: { filter: { _id: u._id }, update: { $set: u.set } } })) as never, { ordered: false });
  }
}

/** Inserts the documents; returns the _ids of those a unique index refused (already there). */
async function insertIgnoringDuplicates(collection: RawCollection, docs: Array<{ _id: Types.ObjectId }>): Promise<Set<Types.ObjectId>> {
  const refused = new Set<Types.ObjectId>();
  for (const batch of chunks(docs, 1000)) {
    try {
      await collection.insertMany(batch as never, { ordered: false });
    } catch (error) {
      const writeErrors = (error as { writeErrors?: Array<{ code?: number; index: number }> | { code?: number; index: number } }).writeErrors;
      const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
      if (list.length === 0 || list.some((e) => e.code !== 11000)) throw error;
      for (const e of list) refused.add(batch[e.index]!._id);
    }
  }
  return refused;
}

/**
 * The documents whose field is one of the values. FerretDB v1 answers any
 * filter but _id with a full scan, so for many values one scan of the whole
 * collection beats many $in queries; the caller checks membership.
 */
async function* lookUp<T>(model: Model<any>, field: string, values: unknown[], projection: object): AsyncGenerator<T> {
  if (values.length === 0) return;
  if (values.length > 1000) {
    for await (const doc of model.find({}, projection).lean().cursor({ batchSize: 2000 })) yield doc as T;
    return;
  }
  for (const batch of chunks(values, 500)) for (const doc of await model.find({ [field]: { $in: batch } }, projection).lean()) yield doc as T;
}

function sameInstitution(a: ImportRow, b: ImportRow): boolean {
  return a.institution_name === b.institution_name && a.country === b.country && a.institution_type === b.institution_type && a.erasmus_id === b.erasmus_id;
}

function changedFields(current: Record<string, unknown>, wanted: Record<string, unknown>): Record<string, unknown> {
  const set: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(wanted)) {
    if (value === undefined) continue;
    const same = Array.isArray(value) ? JSON.stringify([...((current[field] as unknown[] | undefined) ?? [])].sort()) === JSON.stringify(value) : current[field] === value;
    if (!same) set[field] = value;
  }
  return set;
}

function withoutUndefined(object: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined));
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
