import { randomBytes } from 'node:crypto';
import { Schema, type Connection, type Model, type Types } from 'mongoose';
import { noteChange, stampOf, type ChangeStampModel } from '../shared/change-stamp.ts';
import { insertNumbered, readNumbered } from '../shared/numbered-journal.ts';

/**
 * A campaign's email journal (`email_changes`): the messages each round
 * queued, and the claims and outcomes each write of the sender (and of a
 * coordinator's or a lease's decision on an outcome) added, so that the
 * sending page follows a sending by reading what changed, by _id, instead of
 * every campaign's email history by a filter (about 2 s of the database's
 * CPU with four campaigns of 3,000 emails, every few seconds while a page
 * watches).
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
 * and its entry is journalled by the repair that finds what it left: a
 * sender's claims and outcomes by the sender that declares its claims
 * unknown (markAbandonedAsUnknown), messages queued and a coordinator's
 * retries and resolutions by the repair of their intent (repairIntents).
 * What the journal refused in a sender's failed pass is journalled by that
 * sender's next pass; anything else by a reader's whole read once the one
 * its state comes from is KEPT_MAX_AGE_MS old (a checkpoint says when its
 * whole read began).
 *
 * A campaign's checkpoint (`<campaign>:checkpoint`, one document, found by
 * _id) holds every message (test sends apart), claim and outcome up to the
 * entry it names (`n`), one string field each (the engine's cost is per
 * value, not per byte), so that a reader just started follows on from it
 * with the entries after it instead of reading the history; readers write
 * it (sending-progress.ts). Entries are removed an hour after they were
 * written once a checkpoint holds them (those of a campaign without one
 * too: its first reader reads whole anyway), the checkpoint and the entries
 * with their campaign's retention purge. Entries and checkpoints name ids
 * only, never an address; an erasure removes the entries naming the
 * person's emails and their campaigns' checkpoints, and no checkpoint made
 * before it is kept or used (forgetErasedEmails), nor one made before the
 * removal of demo data.
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
    /** Messages queued (test sends never): "<message id>=<round>", comma-separated. */
    m: { type: String },
    /** A checkpoint's: the number of the last entry it holds. */
    n: { type: Number },
    /** A checkpoint's: the campaign's `erasures` stamp before the reads it was made from. */
    e: { type: String },
    /** A checkpoint's: when the whole read of the emails its state comes from began. */
    w: { type: Date },
  },
  { versionKey: false },
);

export interface EmailChangeEntry {
  _id: string;
  v: string;
  t: Date;
  c?: string;
  o?: string;
  m?: string;
}

/** A campaign's checkpoint: its messages, claims and outcomes as entries name them, up to entry `n`, whose stamp value is `v`, made after the erasure that left the `erasures` stamp at `e`, from a whole read begun at `w` (none: a version before it said, as good as never). */
export interface EmailCheckpoint extends EmailChangeEntry {
  n: number;
  e?: string;
  w?: Date;
}

export type EmailChangeModel = Model<EmailChangeEntry>;

export function defineEmailChangeModel(connection: Connection): { EmailChange: EmailChangeModel } {
  return { EmailChange: connection.model('EmailChange', emailChangeSchema, 'email_changes') as unknown as EmailChangeModel };
}

type JournalModels = { ChangeStamp: ChangeStampModel; EmailChange: EmailChangeModel };

/** What one write changed in a campaign's emails. */
export interface EmailChange {
  /** Message id and its round. */
  messages?: ReadonlyArray<readonly [string, number]>;
  claims?: readonly string[];
  /** Outcome id and the state it now has. */
  outcomes?: ReadonlyArray<readonly [string, string]>;
}

/** Changes gathered per campaign, for one journalEmailChanges. */
export class EmailChanges extends Map<string, { messages: Array<[string, number]>; claims: string[]; outcomes: Array<[string, string]> }> {
  /** `message` ([id, round]), `claim`, `outcome` ([id, state]): what one write changed; none: the campaign's emails changed in what no entry names (a note added to an outcome). */
  add(campaign: Types.ObjectId | string, change: { message?: [string, number]; claim?: string; outcome?: [string, string] } = {}): this {
    const key = String(campaign);
    let own = this.get(key);
    if (!own) this.set(key, (own = { messages: [], claims: [], outcomes: [] }));
    if (change.message) own.messages.push(change.message);
    if (change.claim) own.claims.push(change.claim);
    if (change.outcome) own.outcomes.push(change.outcome);
    return this;
  }

  /** Adds what another gathered (a journal write that failed, to be tried again). */
  addAll(other: EmailChanges): this {
    for (const [campaign, { messages, claims, outcomes }] of other) {
      this.add(campaign);
      this.get(campaign)!.messages.push(...messages);
      this.get(campaign)!.claims.push(...claims);
      this.get(campaign)!.outcomes.push(...outcomes);
    }
    return this;
  }
}

/**
 * Entries older than this are removed once their campaign's checkpoint holds
 * them, or when it has none, by a writer at most every CLEAN_UP_EVERY_MS (two
 * whole reads of the journal).
 */
export const KEEP_EMAIL_ENTRIES_MS = 60 * 60_000;
const CLEAN_UP_EVERY_MS = 10 * 60_000;
const lastCleanUp = new WeakMap<object, number>();

async function removeOldEntries(models: Pick<JournalModels, 'EmailChange'>): Promise<void> {
  if (Date.now() - (lastCleanUp.get(models.EmailChange) ?? 0) < CLEAN_UP_EVERY_MS) return;
  lastCleanUp.set(models.EmailChange, Date.now());
  const [old, checkpoints] = await Promise.all([
    models.EmailChange.find({ t: { $lt: new Date(Date.now() - KEEP_EMAIL_ENTRIES_MS) }, n: { $exists: false } }, { _id: 1 }).lean(),
    models.EmailChange.find({ n: { $exists: true } }, { _id: 1, n: 1 }).lean<Array<{ _id: string; n: number }>>(),
  ]);
  const heldUpTo = new Map(checkpoints.map((c) => [c._id.slice(0, c._id.indexOf(':')), c.n]));
  const removable = old.flatMap(({ _id }) => {
    const at = _id.indexOf(':');
    const held = heldUpTo.get(_id.slice(0, at));
    return held === undefined || Number(_id.slice(at + 1)) <= held ? [_id] : [];
  });
  for (let start = 0; start < removable.length; start += 1000) await models.EmailChange.deleteMany({ _id: { $in: removable.slice(start, start + 1000) } });
}

/** A retention purge removes its campaign's entries and checkpoint after its emails (see forgetErasedEmails). */
export async function forgetEmailChanges(models: JournalModels, campaign: Types.ObjectId | string): Promise<void> {
  await noteChange(models, 'erasures', [campaign]);
  await models.EmailChange.deleteMany({ _id: { $gte: `${String(campaign)}:`, $lt: `${String(campaign)};` } });
}

/**
 * An erasure removes the entries naming the person's emails (`entries`) and
 * the checkpoints of their campaigns, after the emails. It moves the
 * campaigns' `erasures` stamp first: a reader that stores a checkpoint reads
 * that stamp after its store and removes what it stored when the stamp is no
 * longer the one it read before its reads (storeEmailCheckpoint). Either the
 * erasure's removal comes after the store, or its stamp came before the
 * reader's look at it: no checkpoint made from the emails before their
 * erasure stays (no transaction needed, each step is one write or one read
 * by _id). The removal of demo data moves it the same way, removing no entry
 * (they name ids of demo emails only).
 */
export async function forgetErasedEmails(models: JournalModels, campaigns: Iterable<Types.ObjectId | string>, entries: readonly string[]): Promise<void> {
  const erased = [...new Set([...campaigns].map(String))];
  await noteChange(models, 'erasures', erased);
  const removed = [...entries, ...erased.map(checkpointId)];
  if (removed.length) await models.EmailChange.deleteMany({ _id: { $in: removed } });
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
    const entry = {
      v,
      t,
      ...(change.messages?.length && { m: change.messages.map(([id, round]) => `${id}=${round}`).join(',') }),
      ...(change.claims?.length && { c: change.claims.join(',') }),
      ...(change.outcomes?.length && { o: change.outcomes.map(([id, state]) => `${id}=${state}`).join(',') }),
    };
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

const checkpointId = (campaign: string) => `${campaign}:checkpoint`;

/**
 * The campaign's checkpoint, or undefined when it has none (never read,
 * purged, or erased with a person's emails) or has one made before the
 * erasure that left the `erasures` stamp at `erasures` (read before it).
 */
export async function readEmailCheckpoint(models: Pick<JournalModels, 'EmailChange'>, campaign: string, erasures: string): Promise<EmailCheckpoint | undefined> {
  const checkpoint = await models.EmailChange.findById(checkpointId(campaign)).lean<EmailCheckpoint>();
  return checkpoint && (checkpoint.e ?? '') === erasures ? checkpoint : undefined;
}

/**
 * A checkpoint is stored only up to this size: about 85 bytes a message
 * (its id and round, its claim, its outcome), so past some 140,000 emails in
 * a campaign, well below the 16 MB a document may hold.
 */
export const CHECKPOINT_MAX_BYTES = 12 * 1024 * 1024;

/**
 * Stores the campaign's checkpoint in place of one holding no later entry:
 * two readers storing at once each store a whole state, and the one that
 * comes last wins (an older one costs the next reader more entries, never a
 * wrong count). One larger than `maxBytes` is not stored, and the campaign's
 * checkpoint is removed instead: its readers then start as without one (a
 * whole read), and its entries go after an hour rather than being kept
 * behind a checkpoint no reader moves on. One made before an erasure (its
 * `e` is no longer the `erasures` stamp once stored) is removed again
 * (forgetErasedEmails). Returns whether it was stored and kept.
 */
export async function storeEmailCheckpoint(
  models: JournalModels,
  campaign: string,
  checkpoint: Omit<EmailCheckpoint, '_id' | 't'>,
  maxBytes = CHECKPOINT_MAX_BYTES,
): Promise<boolean> {
  const _id = checkpointId(campaign);
  if (checkpointBytes(checkpoint) > maxBytes) {
    await models.EmailChange.deleteOne({ _id });
    return false;
  }
  try {
    // The collection's own typing wants ObjectId ids; these are strings by design.
    await models.EmailChange.collection.replaceOne({ _id, n: { $lte: checkpoint.n } } as never, { ...checkpoint, t: new Date() }, { upsert: true });
  } catch (error) {
    // A later checkpoint is there (the filter missed it, so the upsert's insert was refused): it stays.
    if ((error as { code?: number }).code !== 11000) throw error;
  }
  if ((await stampOf(models, 'erasures', campaign)) === (checkpoint.e ?? '')) return true;
  // Whoever stored last, the campaign's checkpoint may hold erased emails: none is better (its next reader reads whole).
  await models.EmailChange.deleteOne({ _id });
  return false;
}

/** A checkpoint's size as a document, near enough: its strings and a little for the rest. */
const checkpointBytes = (checkpoint: Pick<EmailCheckpoint, 'm' | 'c' | 'o'>) => 200 + (checkpoint.m?.length ?? 0) + (checkpoint.c?.length ?? 0) + (checkpoint.o?.length ?? 0);
