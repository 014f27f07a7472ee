import { randomBytes } from 'node:crypto';
import { Schema, type Connection, type Model, type Types } from 'mongoose';
import { noteChange, type ChangeStampModel } from '../shared/change-stamp.ts';
import { insertNumbered, readNumbered } from '../shared/numbered-journal.ts';

/**
 * A campaign's email journal (`email_changes`): the claims and outcomes each
 * write of the sender (and of a coordinator's or a lease's decision on an
 * outcome) added, so that the sending page's progress poll follows a sending
 * by reading what changed, by _id, instead of every campaign's email history
 * by a filter (about 2 s of the database's CPU with four campaigns of 3,000
 * emails, every few seconds while a page watches).
 *
 * Entries are numbered per campaign, `<campaign>:<number>`, each number
 * claimed by a unique insert, so they have no gaps and a reader goes from
 * the last it applied to the first that does not exist. The writer then sets
 * the campaign's `emails` stamp to the value its entry names, with the
 * number: a reader that finds the stamp at the value of the last entry it
 * applied knows it has every journalled change; any other value (a writer
 * that journals nothing: an erasure, a purge, an older version; entries
 * removed before the reader came to them) sends it to read the campaign's
 * emails whole. Entries name claims and outcomes with the state written, and
 * a later entry's state of an outcome replaces an earlier one's, so reading
 * an entry twice changes nothing. A writer that crashed between its write
 * and its entry is caught by the reader's whole read every KEPT_MAX_AGE_MS.
 * Entries name ids only, never an address, and are removed after an hour
 * (and with their campaign's retention purge).
 */
const emailChangeSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The value the writer sets the stamp to. */
    v: { type: String, required: true },
    t: { type: Date, required: true },
    /** Claims inserted: their ids ("<message id>:<attempt>"), comma-separated (one value, which the embedded engine reads far faster than a list). */
    c: { type: String },
    /** Outcomes written or changed: "<outcome id>=<state>", comma-separated. */
    o: { type: String },
  },
  { versionKey: false },
);

export interface EmailChangeEntry {
  _id: string;
  v: string;
  t: Date;
  c?: string;
  o?: string;
}

export type EmailChangeModel = Model<EmailChangeEntry>;

export function defineEmailChangeModel(connection: Connection): { EmailChange: EmailChangeModel } {
  return { EmailChange: connection.model('EmailChange', emailChangeSchema, 'email_changes') as unknown as EmailChangeModel };
}

type JournalModels = { ChangeStamp: ChangeStampModel; EmailChange: EmailChangeModel };

/** What one write changed in a campaign's emails. */
export interface EmailChange {
  claims?: readonly string[];
  /** Outcome id and the state it now has. */
  outcomes?: ReadonlyArray<readonly [string, string]>;
}

/** Changes gathered per campaign, for one journalEmailChanges. */
export class EmailChanges extends Map<string, { claims: string[]; outcomes: Array<[string, string]> }> {
  /** `claim`, `outcome` ([id, state]): what one write changed; neither: the campaign's emails changed in what no entry names (a note added to an outcome). */
  add(campaign: Types.ObjectId | string, change: { claim?: string; outcome?: [string, string] } = {}): this {
    const key = String(campaign);
    let own = this.get(key);
    if (!own) this.set(key, (own = { claims: [], outcomes: [] }));
    if (change.claim) own.claims.push(change.claim);
    if (change.outcome) own.outcomes.push(change.outcome);
    return this;
  }

  /** Adds what another gathered (a journal write that failed, to be tried again). */
  addAll(other: EmailChanges): this {
    for (const [campaign, { claims, outcomes }] of other) {
      this.add(campaign);
      this.get(campaign)!.claims.push(...claims);
      this.get(campaign)!.outcomes.push(...outcomes);
    }
    return this;
  }
}

/** Entries older than this are removed, by a writer at most every CLEAN_UP_EVERY_MS (a whole read of the journal). */
export const KEEP_EMAIL_ENTRIES_MS = 60 * 60_000;
const CLEAN_UP_EVERY_MS = 10 * 60_000;
const lastCleanUp = new WeakMap<object, number>();

async function removeOldEntries(models: Pick<JournalModels, 'EmailChange'>): Promise<void> {
  if (Date.now() - (lastCleanUp.get(models.EmailChange) ?? 0) < CLEAN_UP_EVERY_MS) return;
  lastCleanUp.set(models.EmailChange, Date.now());
  await models.EmailChange.deleteMany({ t: { $lt: new Date(Date.now() - KEEP_EMAIL_ENTRIES_MS) } });
}

/** A retention purge removes its campaign's entries with its emails. */
export async function forgetEmailChanges(models: Pick<JournalModels, 'EmailChange'>, campaign: Types.ObjectId | string): Promise<void> {
  await models.EmailChange.deleteMany({ _id: { $gte: `${String(campaign)}:`, $lt: `${String(campaign)};` } });
}
const SEQUENCE_DIGITS = 10;

export const emailChangeId = (campaign: string, sequence: number) => `${campaign}:${String(sequence).padStart(SEQUENCE_DIGITS, '0')}`;

/** The highest number each connection knows each campaign's journal to hold. */
const knownHeads = new WeakMap<object, Map<string, number>>();

/**
 * Journals what these writes changed, per campaign, and moves each campaign's
 * `emails` stamp to its entry: call it after the writes.
 */
export async function journalEmailChanges(models: JournalModels, changes: ReadonlyMap<string, EmailChange>): Promise<void> {
  let heads = knownHeads.get(models.EmailChange);
  if (!heads) knownHeads.set(models.EmailChange, (heads = new Map()));
  for (const [campaign, change] of changes) {
    const v = randomBytes(8).toString('hex');
    const t = new Date();
    const entry = { v, t, ...(change.claims?.length && { c: change.claims.join(',') }), ...(change.outcomes?.length && { o: change.outcomes.map(([id, state]) => `${id}=${state}`).join(',') }) };
    const from = (heads.get(campaign) ?? (await emailStamp(models, campaign)).n) + 1;
    // The collection's own typing wants ObjectId ids; these are strings by design.
    const sequence = await insertNumbered(from, (n) => models.EmailChange.collection.insertOne({ _id: emailChangeId(campaign, n), ...entry } as never));
    heads.set(campaign, Math.max(heads.get(campaign) ?? 0, sequence));
    await removeOldEntries(models);
    await noteChange(models, 'emails', [campaign], { v, n: sequence });
  }
}

/** A campaign's `emails` stamp: its value and the number of the entry its writer made (0 when its writer journals nothing). */
export async function emailStamp(models: { ChangeStamp: ChangeStampModel }, campaign: Types.ObjectId | string): Promise<{ v: string; n: number }> {
  const stamp = await models.ChangeStamp.findById(`emails:${String(campaign)}`, { v: 1, n: 1 }).lean();
  return { v: stamp?.v ?? '', n: stamp?.n ?? 0 };
}

/** A campaign's entries after `after` up to the first that does not exist (readNumbered); `undefined` when one up to `known` (the stamp's number) was removed. */
export function readEmailChanges(models: Pick<JournalModels, 'EmailChange'>, campaign: string, after: number, known: number): Promise<EmailChangeEntry[] | undefined> {
  return readNumbered((sequence) => models.EmailChange.findById(emailChangeId(campaign, sequence)).lean<EmailChangeEntry>(), after, known);
}
