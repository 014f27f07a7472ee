import { randomBytes } from 'node:crypto';
import { Schema, type Connection, type Model, type Types } from 'mongoose';
import { CONTACT_LIST, noteChange, type ChangeStampModel } from './change-stamp.ts';
import { insertNumbered, readNumbered } from './numbered-journal.ts';

/**
 * The contact list's journal (`contact_changes`): what each change of the
 * contact list touched, so that a process that keeps the list in memory
 * (audience-state.ts) reads again only those contacts and institutions by
 * _id after another process's change, instead of every contact (about a
 * second at 3,000 on the embedded engine, which reads every document for any
 * filter but an _id).
 *
 * Each entry's _id is a zero-padded sequence number, claimed by a unique
 * insert of the next free number, so entries have no gaps and a reader goes
 * from the last it applied to the first that does not exist (numbered-journal.ts). The writer then
 * sets the contact list's change stamp to the value its entry names (and the
 * number, so the next writer knows where to start): a reader that finds the
 * stamp at the value of an entry it applied knows the list it keeps has
 * every journalled change; a stamp no entry names (a writer that journals
 * nothing, entries removed before the reader came to them) sends it to read
 * the whole list. Entries name ids, not values: the reader reads each
 * document as it is now, so two writers' entries in either order give the
 * same list. A writer that crashed between its write and its entry is caught
 * by the whole read every few minutes, as before the journal.
 */
const contactChangeSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The value the writer sets the stamp to. */
    v: { type: String, required: true },
    t: { type: Date, required: true },
    /** Contacts written, created or deleted. */
    c: { type: [Schema.Types.ObjectId], default: undefined },
    /** Institutions written, created or deleted. */
    i: { type: [Schema.Types.ObjectId], default: undefined },
    /** The suppression list changed (read whole: it is short). */
    s: { type: Boolean },
    /** Anything may have changed: read the whole list. */
    all: { type: Boolean },
  },
  { versionKey: false },
);

export interface ContactChangeEntry {
  _id: string;
  v: string;
  t: Date;
  c?: Types.ObjectId[];
  i?: Types.ObjectId[];
  s?: boolean;
  all?: boolean;
}

export type ContactChangeModel = Model<ContactChangeEntry>;

export function defineContactChangeModel(connection: Connection): { ContactChange: ContactChangeModel } {
  return { ContactChange: connection.model('ContactChange', contactChangeSchema, 'contact_changes') as unknown as ContactChangeModel };
}

type JournalModels = { ChangeStamp: ChangeStampModel; ContactChange: ContactChangeModel };

/** What a change of the contact list touched; nothing named: anything may have. */
export interface ContactListChange {
  contacts?: Iterable<Types.ObjectId>;
  institutions?: Iterable<Types.ObjectId>;
  suppressions?: boolean;
}

/** Past this many ids an entry says "all": reading them one by one would cost about what reading the list does. */
export const MAX_JOURNALLED_IDS = 300;
/** Entries older than this are removed (by a writer, every 100th entry): a reader's list is read whole when older than ten minutes. */
export const KEEP_ENTRIES_MS = 60 * 60_000;
const SEQUENCE_DIGITS = 12;

export const contactChangeId = (sequence: number) => String(sequence).padStart(SEQUENCE_DIGITS, '0');

/** The highest number each connection's journal is known to hold. */
const knownHeads = new WeakMap<object, number>();

/**
 * Says that contacts, institutions or the suppression list changed: call it
 * after the change is written, with what it touched when known (a change
 * that names nothing makes every reader read the whole list).
 */
export async function noteContactsChange(models: JournalModels, changed?: ContactListChange): Promise<void> {
  const contacts = [...(changed?.contacts ?? [])];
  const institutions = [...(changed?.institutions ?? [])];
  const all = !changed || contacts.length + institutions.length > MAX_JOURNALLED_IDS;
  const v = randomBytes(8).toString('hex');
  const t = new Date();
  const entry = all ? { v, t, all: true } : { v, t, ...(contacts.length > 0 && { c: contacts }), ...(institutions.length > 0 && { i: institutions }), ...(changed.suppressions && { s: true }) };
  const hint = (await models.ChangeStamp.findById(`contacts:${CONTACT_LIST}`, { n: 1 }).lean())?.n ?? 0;
  // The collection's own typing wants ObjectId ids; these are strings by design.
  const sequence = await insertNumbered(Math.max(hint, knownHeads.get(models.ContactChange) ?? 0) + 1, (n) => models.ContactChange.collection.insertOne({ _id: contactChangeId(n), ...entry } as never));
  knownHeads.set(models.ContactChange, Math.max(knownHeads.get(models.ContactChange) ?? 0, sequence));
  if (sequence % 100 === 0) await models.ContactChange.deleteMany({ t: { $lt: new Date(Date.now() - KEEP_ENTRIES_MS) } });
  await noteChange(models, 'contacts', [CONTACT_LIST], { v, n: sequence });
}

/**
 * Makes these entries name no contact (an erasure, a retention purge): each
 * says "read the whole list" instead, so a reader that has not applied it
 * yet still reads what changed.
 */
export async function forgetJournalledContacts(models: Pick<JournalModels, 'ContactChange'>, entryIds: readonly string[]): Promise<void> {
  for (const _id of entryIds) await models.ContactChange.updateOne({ _id }, { $set: { all: true }, $unset: { c: 1 } });
}

/** The contact list's stamp: its value and the number of the latest entry its writer made (0 before the first). */
export async function contactListStamp(models: { ChangeStamp: ChangeStampModel }): Promise<{ v: string; n: number }> {
  const stamp = await models.ChangeStamp.findById(`contacts:${CONTACT_LIST}`, { v: 1, n: 1 }).lean();
  return { v: stamp?.v ?? '', n: stamp?.n ?? 0 };
}

/** The entries after `after` up to the first that does not exist (readNumbered); `undefined` when one up to `known` (the stamp's number) was removed. */
export function readContactChanges(models: Pick<JournalModels, 'ContactChange'>, after: number, known: number): Promise<ContactChangeEntry[] | undefined> {
  return readNumbered((sequence) => models.ContactChange.findById(contactChangeId(sequence)).lean<ContactChangeEntry>(), after, known);
}
