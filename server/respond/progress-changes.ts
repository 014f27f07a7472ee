import { randomBytes } from 'node:crypto';
import { Schema, type Connection, type Model, type Types } from 'mongoose';
import { noteChange, type ChangeStampModel } from '../shared/change-stamp.ts';
import { insertNumbered, readNumbered } from '../shared/numbered-journal.ts';

/**
 * A campaign's progress journal (`progress_changes`): which personal link
 * was opened, begun or answered for the first time, so that the fieldwork
 * page follows its respondents by reading what changed, by _id, instead of
 * every invitation and completion mark again after each of them (on the
 * embedded engine every filter reads every campaign's invitations, drafts
 * included: seconds at a few thousand links, on each first opening while the
 * fieldwork runs).
 *
 * Entries are numbered per campaign, `<campaign>:<number>`, each number
 * claimed by a unique insert (numbered-journal.ts), so they have no gaps and
 * a reader goes from the last it applied to the first that does not exist.
 * The writer then sets the campaign's `progress` stamp to the value its entry
 * names, with the number. A step only ever moves a link forward (opened,
 * begun, answered), so applying an entry twice, or entries in another order,
 * changes nothing. What moves a link back (an erasure, a retention purge,
 * the removal of demo data) or writes progress in bulk (seed:demo, the
 * completion marks' backfill) journals an entry that names no link
 * (`all`): a reader reads the campaign's progress whole when it comes to it,
 * whatever entries follow. A stamp no entry it applied names (a writer that
 * journals nothing, entries removed before the reader came to them) sends it
 * to read whole as well, and so does a state older than KEPT_MAX_AGE_MS: a
 * writer that crashed between its write and its entry shows then.
 *
 * Entries name invitation ids and a letter, never a person. A writer removes
 * the entry PROGRESS_ENTRIES_KEPT before its own, so a campaign keeps at most
 * that many; an erasure removes those naming the person's links, a retention
 * purge its campaign's.
 */
const progressChangeSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The value the writer sets the stamp to. */
    v: { type: String, required: true },
    t: { type: Date, required: true },
    /**
     * Links that moved: "<invitation id>=<o|s|c>" (opened, started, completed; a completion followed by its time in
     * ms since 1970, as its completion mark has it), comma-separated (one value: the engine's cost is per value).
     */
    p: { type: String },
    /** Links may have moved back, or many at once: read the campaign's progress whole. */
    all: { type: Boolean },
  },
  { versionKey: false },
);

export interface ProgressChangeEntry {
  _id: string;
  v: string;
  t: Date;
  p?: string;
  all?: boolean;
}

export type ProgressChangeModel = Model<ProgressChangeEntry>;

export function defineProgressChangeModel(connection: Connection): { ProgressChange: ProgressChangeModel } {
  return { ProgressChange: connection.model('ProgressChange', progressChangeSchema, 'progress_changes') as unknown as ProgressChangeModel };
}

type JournalModels = { ChangeStamp: ChangeStampModel; ProgressChange: ProgressChangeModel };

/** A link's first opening, its first answers of the respondent's own, its first submission. */
export type ProgressStep = 'opened' | 'started' | 'completed';
const LETTERS: Record<ProgressStep, string> = { opened: 'o', started: 's', completed: 'c' };
export const STEP_OF_LETTER: Readonly<Record<string, ProgressStep>> = { o: 'opened', s: 'started', c: 'completed' };

/** Entries a campaign keeps: a reader further behind reads its progress whole. */
export const PROGRESS_ENTRIES_KEPT = 2_000;
const SEQUENCE_DIGITS = 10;

export const progressChangeId = (campaign: string, sequence: number) => `${campaign}:${String(sequence).padStart(SEQUENCE_DIGITS, '0')}`;

/** The highest number each connection knows each campaign's journal to hold: the next entry is looked for after it. */
const knownHeads = new WeakMap<object, Map<string, number>>();

/** Journals that this link took this step (a completion: at `at`, its completion mark's time): call it after the step is written. */
export function journalProgress(models: JournalModels, campaign: Types.ObjectId | string, invitation: Types.ObjectId | string, step: ProgressStep, at?: Date): Promise<void> {
  return journal(models, campaign, { p: `${String(invitation)}=${LETTERS[step]}${step === 'completed' && at ? at.getTime() : ''}` });
}

/** Journals that these campaigns' progress must be read whole (links moved back or many moved at once): call it after the writes. */
export async function journalProgressReset(models: JournalModels, campaigns: Iterable<Types.ObjectId | string>): Promise<void> {
  for (const campaign of new Set([...campaigns].map(String))) await journal(models, campaign, { all: true });
}

/** Changes waiting for their campaign's entry in one connection, and whether an entry is being written. */
interface Pending {
  parts: string[];
  all: boolean;
  waiting: Array<{ resolve: () => void; reject: (error: unknown) => void }>;
  writing: boolean;
}
const pendingByModels = new WeakMap<object, Map<string, Pending>>();

/**
 * Journals a change: the changes of one campaign that arrive while its entry
 * is being written go into the next entry together, so that a connection
 * writes one entry at a time per campaign. Without that, concurrent
 * submissions would all try the same next number and retry one after
 * another (400 submissions 32 at a time: a third slower, p95 three times).
 * Resolves once an entry holding the change and its stamp are written.
 */
function journal(models: JournalModels, campaign: Types.ObjectId | string, change: { p: string } | { all: true }): Promise<void> {
  const key = String(campaign);
  let byCampaign = pendingByModels.get(models.ProgressChange);
  if (!byCampaign) pendingByModels.set(models.ProgressChange, (byCampaign = new Map()));
  let pending = byCampaign.get(key);
  if (!pending) byCampaign.set(key, (pending = { parts: [], all: false, waiting: [], writing: false }));
  const own = pending;
  return new Promise<void>((resolve, reject) => {
    if ('all' in change) own.all = true;
    else own.parts.push(change.p);
    own.waiting.push({ resolve, reject });
    if (!own.writing) void writeEntries(models, key, own);
  });
}

async function writeEntries(models: JournalModels, campaign: string, pending: Pending): Promise<void> {
  pending.writing = true;
  while (pending.waiting.length > 0) {
    const waiting = pending.waiting.splice(0);
    const change = pending.all ? { all: true } : { p: pending.parts.join(',') };
    pending.parts = [];
    pending.all = false;
    try {
      await writeEntry(models, campaign, change);
      for (const waiter of waiting) waiter.resolve();
    } catch (error) {
      for (const waiter of waiting) waiter.reject(error);
    }
  }
  pending.writing = false;
}

async function writeEntry(models: JournalModels, campaign: string, change: { p: string } | { all: boolean }): Promise<void> {
  let heads = knownHeads.get(models.ProgressChange);
  if (!heads) knownHeads.set(models.ProgressChange, (heads = new Map()));
  const v = randomBytes(8).toString('hex');
  const from = (heads.get(campaign) ?? (await progressStamp(models, campaign)).n) + 1;
  // The collection's own typing wants ObjectId ids; these are strings by design.
  const sequence = await insertNumbered(from, (n) => models.ProgressChange.collection.insertOne({ _id: progressChangeId(campaign, n), v, t: new Date(), ...change } as never));
  heads.set(campaign, Math.max(heads.get(campaign) ?? 0, sequence));
  if (sequence > PROGRESS_ENTRIES_KEPT) await models.ProgressChange.deleteOne({ _id: progressChangeId(campaign, sequence - PROGRESS_ENTRIES_KEPT) });
  await noteChange(models, 'progress', [campaign], { v, n: sequence });
}

/** A campaign's `progress` stamp: its value and the number of the entry its writer made (0 before the first). */
export async function progressStamp(models: { ChangeStamp: ChangeStampModel }, campaign: Types.ObjectId | string): Promise<{ v: string; n: number }> {
  const stamp = await models.ChangeStamp.findById(`progress:${String(campaign)}`, { v: 1, n: 1 }).lean();
  return { v: stamp?.v ?? '', n: stamp?.n ?? 0 };
}

/** A campaign's entries after `after` up to the first that does not exist; `undefined` when one up to `known` (the stamp's number) was removed. */
export function readProgressChanges(models: Pick<JournalModels, 'ProgressChange'>, campaign: string, after: number, known: number): Promise<ProgressChangeEntry[] | undefined> {
  return readNumbered((sequence) => models.ProgressChange.findById(progressChangeId(campaign, sequence)).lean<ProgressChangeEntry>(), after, known);
}

/** The number in an entry's _id. */
export const sequenceOf = (entry: Pick<ProgressChangeEntry, '_id'>) => Number(entry._id.slice(entry._id.lastIndexOf(':') + 1));

/** The links an entry names, with their steps and, for a completion, its time (the entry's own when it names none). */
export function stepsOf(entry: Pick<ProgressChangeEntry, 'p' | 't'>): Array<{ id: string; step: ProgressStep; at: Date }> {
  if (!entry.p) return [];
  return entry.p.split(',').flatMap((part) => {
    const [id, code] = part.split('=');
    const step = code ? STEP_OF_LETTER[code[0]!] : undefined;
    if (!id || !step) return [];
    const at = code!.length > 1 ? new Date(Number(code!.slice(1))) : entry.t;
    return [{ id, step, at: Number.isNaN(at.getTime()) ? entry.t : at }];
  });
}

/** Every entry that names one of these invitations (an erasure's; the journal is short: at most PROGRESS_ENTRIES_KEPT a campaign). */
export async function progressChangesNaming(models: Pick<JournalModels, 'ProgressChange'>, invitations: readonly string[]): Promise<ProgressChangeEntry[]> {
  if (invitations.length === 0) return [];
  const named = new Set(invitations);
  const all = await models.ProgressChange.find({}).lean<ProgressChangeEntry[]>();
  return all.filter((entry) => stepsOf(entry).some(({ id }) => named.has(id)));
}

/** An erasure removes the entries naming the person's links (`entries`), after the links, and has their campaigns' progress read whole. */
export async function forgetErasedProgress(models: JournalModels, campaigns: Iterable<Types.ObjectId | string>, entries: readonly string[]): Promise<void> {
  if (entries.length) await models.ProgressChange.deleteMany({ _id: { $in: [...entries] } });
  await journalProgressReset(models, [...[...campaigns].map(String), ...entries.map((id) => id.slice(0, id.lastIndexOf(':')))]);
}

/** A retention purge removes its campaign's entries after its links, and has its progress read whole. */
export async function forgetProgressChanges(models: JournalModels, campaign: Types.ObjectId | string): Promise<void> {
  await models.ProgressChange.deleteMany({ _id: { $gte: `${String(campaign)}:`, $lt: `${String(campaign)};` } });
  await journalProgressReset(models, [campaign]);
}
