import { Schema, Types, type Connection, type Model } from 'mongoose';
import type { Models } from '../db/models.ts';
import { flattenAnswers, type ResponseItem } from '../respond/answer-items.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { DIMENSION_NAMES, type Dimension } from './evidence-filter.ts';
import { institutionTagger, isInstitutionTag, type InstitutionTagger } from './institution-tag.ts';
import type { EvidenceRecord, EvidenceSink } from './evidence-record.ts';
import type { QuestionCatalogue } from './question-catalogue.ts';
import { buildSnapshot, currentSnapshot, invalidateSnapshot, readCounts, readSnapshot, readSnapshotIds, SNAPSHOT_AFTER_ENTRIES, type CountsOf, type SnapshotPointer } from './record-snapshot.ts';

/**
 * The compact analytic record of a current response: what the evidence reads,
 * instead of the response itself. On FerretDB v1 the cost of reading a
 * document grows with the number of values in it (a full response with its
 * answers ~10 ms, this record ~0.3 ms), so the profile and the closed answers
 * are packed into one string each. Free-text answers never go in: they can
 * name someone and stay with the response (quotes, erasure).
 *
 * _id is the current response's: its invitation's id, or an anonymised
 * response's own. A record moves only forward by revision (as the current
 * response does), and every write or removal is preceded by an entry in the
 * evidence journal so that other processes (a second instance, the CLI,
 * seed:demo) can follow it (see "The journal" below for why before).
 */
const analyticRecordSchema = new Schema(
  {
    _id: { type: Schema.Types.ObjectId, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    /** The institution's tag in its campaign (institution-tag.ts), never its id: only ever compared. */
    institution: { type: String, required: true },
    revision: { type: Number, required: true },
    /** When this revision was submitted. */
    at: { type: Date, required: true },
    /** The profile (breakdown dimensions), as JSON: {"country":"AT",...}. */
    p: { type: String, required: true },
    /** The closed answers as the validator kept them, as JSON: {"S1.1":3,"S1.2":["a","b"],...}. */
    a: { type: String, required: true },
  },
  { versionKey: false },
);

export interface AnalyticRecordDoc {
  _id: Types.ObjectId;
  campaign: Types.ObjectId;
  institution: string;
  revision: number;
  at: Date;
  p: string;
  a: string;
}

/**
 * The journal of record changes, for other processes. Each entry's _id is a
 * zero-padded sequence number claimed by a unique insert of the next number
 * after the highest the writer knows (on a duplicate key, the one after), so
 * entries are gap-free in order of creation: a follower reads them by _id
 * equality one by one (the only look-up FerretDB v1 answers from an index)
 * and stops at the first that does not exist yet. An entry names the record
 * only; the follower reads the record as it is then.
 *
 * Without transactions, a crash between two writes keeps the first. Were the
 * record written first and its entry after, a crash between them would leave
 * a record no follower hears of (and a retry finds the record there and
 * journals nothing). So the entry goes first, as an intent: "record r is
 * being brought to revision v" (or "removed", x). A follower that reads the
 * record before the writer has written it keeps the intent open and looks
 * again at every poll; an intent still open after JOURNAL_GRACE_MS means the
 * writer died, and the follower writes the record itself from the current
 * response (the truth the record is made from, stored before it), which
 * journals it anew. Repeating a record write is harmless: it only moves
 * forward by revision.
 */
const journalSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The record's id; blanked when an erasure removed the record (scrubJournal). */
    r: { type: Schema.Types.ObjectId },
    /** An intent to write this revision of the record (absent: the record changed already, read it as it is). */
    v: { type: Number },
    /** An intent to remove the record. */
    x: { type: Boolean },
    /** When the writer claimed the entry (its clock): how long an intent may stay open, and how far back a load looks. */
    t: { type: Date },
  },
  { versionKey: false },
);

/**
 * The followers' marks, for compacting the journal: each following process
 * notes here, every so often, the last entry it has applied ("follower:..."),
 * and each compaction the number below which entries are gone ("floor:...",
 * one document per compaction, so two compactions never overwrite each
 * other's: the highest is the floor).
 */
const followerSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The follower's position: the last entry it applied (0 while it loads). */
    p: { type: Number },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);

export type AnalyticRecordModel = Model<AnalyticRecordDoc>;
export interface JournalEntry {
  _id: string;
  r?: Types.ObjectId | null;
  v?: number;
  x?: boolean;
  t?: Date;
}
export type EvidenceJournalModel = Model<JournalEntry>;
export type EvidenceFollowerModel = Model<{ _id: string; p?: number; at: Date }>;

export function defineAnalyticRecordModels(connection: Connection): {
  AnalyticRecord: AnalyticRecordModel;
  EvidenceJournal: EvidenceJournalModel;
  EvidenceFollower: EvidenceFollowerModel;
} {
  return {
    AnalyticRecord: connection.model('AnalyticRecord', analyticRecordSchema, 'analytic_records') as unknown as AnalyticRecordModel,
    EvidenceJournal: connection.model('EvidenceJournal', journalSchema, 'evidence_journal') as unknown as EvidenceJournalModel,
    EvidenceFollower: connection.model('EvidenceFollower', followerSchema, 'evidence_followers') as unknown as EvidenceFollowerModel,
  };
}

type JournalModels = Pick<Models, 'EvidenceJournal' | 'EvidenceFollower'>;
type RecordModels = Pick<Models, 'AnalyticRecord' | 'EvidenceJournal' | 'EvidenceFollower' | 'EvidenceSnapshot' | 'EvidenceSnapshotBucket'>;

/** How often a follower looks for changes made by other processes, unless EVIDENCE_POLL_MS says otherwise: a poll that finds nothing is one look-up (~1.6 ms). */
export const DEFAULT_EVIDENCE_POLL_MS = 500;

/**
 * How long a writer may take between its intent and the record written. A
 * writer slower than this journals the record once more when it is done; a
 * follower that still sees the intent open after this long writes the record
 * itself (the writer died). A load looks back over the entries of this long
 * (plus CLOCK_SKEW_MS) before its start, for records written while it read.
 */
export const JOURNAL_GRACE_MS = 30_000;
/** How far the clocks of two processes on one database may disagree. */
export const CLOCK_SKEW_MS = 10_000;
/**
 * A follower whose mark is older than this is no longer protected from
 * compaction: it marks itself every eighth of it, and one that has not for
 * half of it checks the floor before trusting the end of the journal.
 */
export const FOLLOWER_LEASE_MS = 10 * 60_000;

/** How a follower times intents, marks and compaction (tests shorten them). */
export interface JournalTimings {
  graceMs?: number;
  leaseMs?: number;
  clockSkewMs?: number;
  /** How often a follower compacts the journal; 0: never by itself. Default: the lease. */
  compactEveryMs?: number;
}

// ---------------------------------------------------------------------------
// Encoding

/** The fields of a current response a record is made from (stored responses and revisions have them all). */
export interface RecordSource {
  _id: unknown;
  campaign: unknown;
  /** The institution's tag in the campaign (institution-tag.ts): the record never holds its id. */
  institution: string;
  revision: number;
  submittedAt: Date;
  profile?: Record<string, unknown> | null;
  data?: Record<string, unknown> | null;
}

/** What a record is made from when a stored response is anonymised: its fields under the anonymous id, with the anonymised answers and the institution's tag. */
export function anonymousSource(response: Record<string, any>, anonymous: { _id: unknown; data: Record<string, unknown>; institutionTag: string }): RecordSource {
  return { _id: anonymous._id, campaign: response.campaign, institution: anonymous.institutionTag, revision: response.revision, submittedAt: response.submittedAt, profile: response.profile, data: anonymous.data };
}

/** The record of a current response; `isText` names the free-text questions, left out. */
export function recordOf(response: RecordSource, isText: (question: string) => boolean): AnalyticRecordDoc {
  const closed: Record<string, unknown> = {};
  for (const [question, value] of Object.entries(response.data ?? {})) {
    if (!isText(question) && !question.endsWith('-Comment')) closed[question] = value;
  }
  const profile: Record<string, string> = {};
  for (const [dimension, value] of Object.entries(response.profile ?? {})) if (typeof value === 'string') profile[dimension] = value;
  return {
    _id: toObjectId(response._id),
    campaign: toObjectId(response.campaign),
    institution: response.institution,
    revision: response.revision,
    at: response.submittedAt,
    p: JSON.stringify(profile),
    a: JSON.stringify(closed),
  };
}

/** A stored response as it names its institution: by id. */
export type StoredSource = Omit<RecordSource, 'institution'> & { institution: unknown };

/** The record of a stored (not anonymous) response: its institution's id replaced by the campaign's tag for it. */
export async function taggedRecordOf(tagOf: InstitutionTagger, response: StoredSource, isText: (question: string) => boolean): Promise<AnalyticRecordDoc> {
  return recordOf({ ...response, institution: await tagOf(response.campaign, response.institution) }, isText);
}

/**
 * The record of a stored response: an anonymous response carries its
 * institution's tag already; any other (and an anonymous one from before
 * tags) its institution id, which is tagged.
 */
export async function storedRecordOf(tagOf: InstitutionTagger, stored: StoredSource & { institutionTag?: string }, isText: (question: string) => boolean): Promise<AnalyticRecordDoc> {
  return isInstitutionTag(stored.institutionTag) ? recordOf({ ...stored, institution: stored.institutionTag! }, isText) : taggedRecordOf(tagOf, stored, isText);
}

/** Turns packed answers into items; build one from the catalogue with flattenerOf. */
export type Flatten = (answers: Record<string, unknown>) => ResponseItem[];

/** Flattens as the validator does (answer-items.ts), closed questions of the catalogue only. */
export function flattenerOf(catalogue: QuestionCatalogue): Flatten {
  const shapes = new Map(catalogue.questions.filter((q) => q.kind !== 'text').map((q) => [q.name, { strand: q.strand, ranking: q.kind === 'ranking' }]));
  return (answers) => flattenAnswers(answers, (question) => shapes.get(question));
}

/** The free-text questions of a catalogue, as a predicate for recordOf. */
export function textQuestionsOf(catalogue: QuestionCatalogue): (question: string) => boolean {
  const names = new Set(catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name));
  return (question) => names.has(question);
}

/** What the evidence knows of a stored record. */
export function decodeRecord(doc: AnalyticRecordDoc, flatten: Flatten): EvidenceRecord {
  const packed = JSON.parse(doc.p) as Record<string, unknown>;
  const profile: Partial<Record<Dimension, string>> = {};
  for (const dimension of DIMENSION_NAMES) if (typeof packed[dimension] === 'string') profile[dimension] = packed[dimension];
  return {
    id: flatCopy(String(doc._id)),
    campaign: String(doc.campaign),
    institution: doc.institution,
    revision: doc.revision,
    submittedAt: new Date(doc.at),
    profile,
    items: flatten(JSON.parse(doc.a) as Record<string, unknown>),
  };
}

/**
 * The string copied into one piece. An ObjectId's hex string is built up
 * from pieces that V8 keeps linked (~200 bytes of heap for 24 characters,
 * where one piece takes 40), and the evidence keeps every record's id for as
 * long as the process runs (bench:evidence:memory).
 */
function flatCopy(text: string): string {
  return JSON.parse(JSON.stringify(text)) as string;
}

/** An id as stored, whether the source held an ObjectId or its hex string. */
export function toObjectId(value: unknown): Types.ObjectId {
  return value instanceof Types.ObjectId ? value : new Types.ObjectId(String(value));
}

// ---------------------------------------------------------------------------
// Writing

/**
 * A pause between a journal intent and the write it announces, for the test
 * that kills a writer there (tests/evidence/crash-between-writes.test.ts).
 */
export const journalTestHooks: { afterIntent?: (recordIds: readonly Types.ObjectId[]) => Promise<void> } = {};

/**
 * Journals the intent, then stores the record unless one of the same or a
 * later revision is there. A first record is one unique insert; on a
 * duplicate key the stored one is read by _id and replaced only by a later
 * revision (as the current response is), so repeating it is harmless.
 * Returns the record now stored: this one, or the later one found.
 */
export async function writeRecord(models: RecordModels, record: AnalyticRecordDoc): Promise<AnalyticRecordDoc> {
  const started = Date.now();
  await journalIntents(models, [{ r: record._id, v: record.revision }]);
  await journalTestHooks.afterIntent?.([record._id]);
  const stored = await storeRecord(models, record);
  await journalIfLate(models, started, [record._id]);
  return stored;
}

async function storeRecord(models: RecordModels, record: AnalyticRecordDoc): Promise<AnalyticRecordDoc> {
  for (;;) {
    try {
      await models.AnalyticRecord.collection.insertOne(record);
      return record;
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    const current = await models.AnalyticRecord.findById(record._id).lean<AnalyticRecordDoc>();
    // Removed in between (an erasure): try again from the start.
    if (!current) continue;
    if (current.revision >= record.revision) return current;
    await models.AnalyticRecord.collection.replaceOne({ _id: record._id }, record);
    return record;
  }
}

/**
 * A write that ended more than the grace after its intent may have landed
 * after a loading process looked back for open intents (and after followers
 * wrote it themselves, which is harmless): journal it once more, as done.
 */
async function journalIfLate(models: JournalModels, started: number, ids: readonly Types.ObjectId[]): Promise<void> {
  if (Date.now() - started > JOURNAL_GRACE_MS) await appendJournal(models, ids);
}

/** What a change to stored responses did to the analytic records: records written (decode with decodeRecord) and ids removed. */
export interface RecordChange {
  written: AnalyticRecordDoc[];
  removed: string[];
}

/**
 * Journals the removal of the records of these responses, then removes them;
 * each removal is journalled even of a record already gone (an erasure
 * repeated after a crash must still reach the followers).
 */
export async function removeRecords(models: RecordModels, ids: readonly Types.ObjectId[]): Promise<void> {
  if (ids.length === 0) return;
  const started = Date.now();
  await journalIntents(models, ids.map((r) => ({ r, x: true })));
  await journalTestHooks.afterIntent?.(ids);
  if (ids.length === 1) await models.AnalyticRecord.deleteOne({ _id: ids[0] });
  else await models.AnalyticRecord.deleteMany({ _id: { $in: [...ids] } });
  await journalIfLate(models, started, ids);
}

// ---------------------------------------------------------------------------
// The journal

const SEQUENCE_DIGITS = 12;
/** Journal entries a follower reads side by side once the next one exists (and then their records), instead of one round trip after another. */
const READ_AHEAD = 16;
/**
 * A run of entries a follower knows to be waiting (the look-back after a full load) is read in
 * one pass over the journal, not by _id, once it is this long and at least a quarter of the
 * journal: on the embedded engine a filter other than exactly {_id} reads the whole collection,
 * ~0.04 ms an entry, against ~0.36 ms an entry by _id 16 side by side (50,000 entries: 2.1 s
 * against 18.2 s, load 7), so a pass costs less once the run is over about an eighth of it.
 */
const PASS_MIN_ENTRIES = 500;
/** Records a follower looks up by _id after scrubbed entries (forgetErased) before it reads every record instead, whatever it holds. */
const MAX_ERASED_LOOKUPS = 1000;

export function journalId(sequence: number): string {
  return String(sequence).padStart(SEQUENCE_DIGITS, '0');
}

/** The highest sequence number each connection's journal is known to hold: where the next write starts. */
const knownHeads = new WeakMap<object, number>();

/**
 * The highest sequence number in the journal (0 when empty), found by _id
 * look-ups only: doubling steps from a number known to exist, then halving.
 * Entries are gap-free from the floor (below it compaction removed them), so
 * "exists" is true exactly from the floor up to the head.
 */
export async function journalHead(models: JournalModels, from = 0): Promise<number> {
  const exists = async (sequence: number) => sequence <= 0 || (await models.EvidenceJournal.exists({ _id: journalId(sequence) })) !== null;
  // From nothing known, or from an entry compacted away: from the floor, which a compaction raises before removing anything below it.
  let low = from > 0 ? from : await journalFloor(models);
  for (let tries = 0; !(await exists(low)); tries++) {
    if (tries === 5) throw new Error(`the evidence journal has no entry ${low} at its floor`);
    low = await journalFloor(models);
  }
  let step = 1;
  while (await exists(low + step)) {
    low += step;
    step *= 2;
  }
  let high = low + step; // known not to exist
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await exists(middle)) low = middle;
    else high = middle;
  }
  knownHeads.set(models.EvidenceJournal, Math.max(knownHeads.get(models.EvidenceJournal) ?? 0, low));
  return low;
}

const FLOOR = 'floor:';
const FOLLOWER = 'follower:';

/** The lowest entry compaction kept (0 when it never ran): every entry from it to the head exists. */
export async function journalFloor(models: Pick<Models, 'EvidenceFollower'>): Promise<number> {
  // A handful of small documents: the followers' marks and the floors of the last compactions.
  const floors = await models.EvidenceFollower.find({ _id: { $gte: FLOOR, $lt: `${FLOOR}~` } }, { _id: 1 }).lean();
  return floors.reduce((highest, f) => Math.max(highest, Number(f._id.slice(FLOOR.length))), 0);
}

type Entry = Omit<JournalEntry, '_id' | 't'> & { r: Types.ObjectId };

/** Appends waiting in this process for the one in flight, per connection's journal. */
const queues = new WeakMap<object, { waiting: Array<{ entries: readonly Entry[]; done: (error?: unknown) => void }>; busy: boolean }>();

/** Journals records already written (or removed): followers read each as it is when they come to it. */
export function appendJournal(models: JournalModels, recordIds: readonly Types.ObjectId[]): Promise<void> {
  return journalIntents(models, recordIds.map((r) => ({ r })));
}

/**
 * Appends one entry each, in order. Within a process, appends are made one
 * at a time and those arriving meanwhile go together in the next insert
 * (concurrent submissions never compete for the same number). Across
 * processes, each entry claims the next sequence number by a unique insert
 * (ordered, so the entries that went in before a duplicate are a contiguous
 * run); on a duplicate the head is found again and the rest retried after
 * it. A record journalled twice is harmless: following it twice applies it twice.
 */
export function journalIntents(models: JournalModels, entries: readonly Entry[]): Promise<void> {
  const journal = models.EvidenceJournal;
  let queue = queues.get(journal);
  if (!queue) queues.set(journal, (queue = { waiting: [], busy: false }));
  const settled = new Promise<void>((resolve, reject) => queue.waiting.push({ entries, done: (error) => (error ? reject(error) : resolve()) }));
  if (!queue.busy) {
    queue.busy = true;
    void (async () => {
      while (queue.waiting.length > 0) {
        const group = queue.waiting.splice(0);
        try {
          await insertEntries(models, group.flatMap((g) => g.entries));
          for (const g of group) g.done();
        } catch (error) {
          for (const g of group) g.done(error);
        }
      }
      queue.busy = false;
    })();
  }
  return settled;
}

async function insertEntries(models: JournalModels, list: readonly Entry[]): Promise<void> {
  const journal = models.EvidenceJournal;
  let head = knownHeads.get(journal) ?? (await journalHead(models));
  let pending = [...list];
  while (pending.length > 0) {
    const t = new Date();
    const entries = pending.slice(0, 500).map((entry, i) => ({ _id: journalId(head + 1 + i), ...entry, t }));
    try {
      // The collection's own typing wants ObjectId ids; these are strings by design.
      if (entries.length === 1) await journal.collection.insertOne(entries[0] as never);
      else await journal.collection.insertMany(entries as never[], { ordered: true });
      head += entries.length;
      pending = pending.slice(entries.length);
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      const inserted = Number((error as { insertedCount?: number; result?: { insertedCount?: number } }).result?.insertedCount ?? (error as { insertedCount?: number }).insertedCount ?? 0);
      pending = pending.slice(inserted);
      head = await journalHead(models, head + inserted);
    }
    knownHeads.set(journal, Math.max(knownHeads.get(journal) ?? 0, head));
  }
}

/**
 * Removes the entries every live follower and the current snapshot have
 * passed, keeping those of the last two graces (a process loading now looks
 * back over them) and the one at the new floor (journalHead starts from it). A follower is live when its
 * mark is younger than the lease; one that is not may have been passed, and
 * finds out from the floor (RecordFollower) and reads every record again.
 * Two compactions at once are harmless: each removes only below what every
 * follower it saw live has passed, and raises the floor before removing.
 * Marks of followers gone for ten leases are removed too.
 */
export async function compactJournal(
  models: JournalModels & Pick<Models, 'EvidenceSnapshot'>,
  options: Omit<JournalTimings, 'compactEveryMs'> = {},
): Promise<{ floor: number; removed: number }> {
  const lease = options.leaseMs ?? FOLLOWER_LEASE_MS;
  const keepSince = Date.now() - 2 * ((options.graceMs ?? JOURNAL_GRACE_MS) + (options.clockSkewMs ?? CLOCK_SKEW_MS));
  const now = Date.now();
  const marks = (await models.EvidenceFollower.find({ _id: { $gte: FOLLOWER, $lt: `${FOLLOWER}~` } }).lean()).filter((m) => m._id.startsWith(FOLLOWER));
  const live = marks.filter((m) => new Date(m.at).getTime() > now - lease);
  // A load from the current snapshot follows the journal from its position (record-snapshot.ts): kept too.
  const { pointer } = await currentSnapshot(models);
  const passed = Math.min(await journalHead(models), ...live.map((m) => m.p ?? 0), pointer?.g ? (pointer.f ?? 0) : Infinity);
  const previous = await journalFloor(models);
  // The last entry older than what is kept, by halving between the floor and the entry every follower passed (times grow with the sequence, give or take the clocks' skew, which the doubled margin covers).
  const isOld = async (sequence: number) => {
    const entry = await models.EvidenceJournal.findById(journalId(sequence), { t: 1 }).lean();
    return !entry?.t || entry.t.getTime() < keepSince;
  };
  let old = Math.max(previous, 1) - 1;
  let recent = passed;
  while (recent - old > 1) {
    const middle = Math.floor((old + recent) / 2);
    if (await isOld(middle)) old = middle;
    else recent = middle;
  }
  const floor = old + 1;
  if (floor <= previous || floor <= 1) return { floor: previous, removed: 0 };
  try {
    await models.EvidenceFollower.collection.insertOne({ _id: `${FLOOR}${journalId(floor)}`, at: new Date() } as never);
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
  }
  const { deletedCount } = await models.EvidenceJournal.deleteMany({ _id: { $lt: journalId(floor) } });
  await models.EvidenceFollower.deleteMany({ _id: { $gte: FLOOR, $lt: `${FLOOR}${journalId(floor)}` } });
  const gone = marks.filter((m) => new Date(m.at).getTime() < now - 10 * lease).map((m) => m._id);
  if (gone.length > 0) await models.EvidenceFollower.deleteMany({ _id: { $in: gone } });
  return { floor, removed: deletedCount };
}

// ---------------------------------------------------------------------------
// Loading and following

export interface LoadResult {
  /** Records applied. */
  records: number;
  /** The journal position the load reached (for every record, the head noted before): following from it misses nothing written since. */
  head: number;
  /** Whether the records came from the snapshot (and the journal after it) rather than one by one. */
  fromSnapshot?: boolean;
  /** Whether the snapshot's records came as its counts (taken on, not counted again). */
  fromCounts?: boolean;
}

/**
 * Applies every stored record to the sink once, streamed. The journal's head
 * is noted first, so a record written or removed while the load runs is in
 * the journal after it, and a follower starting there catches it (applying a
 * record twice is harmless). `onProgress` is called every 5,000 records.
 */
export async function loadRecords(
  models: RecordModels,
  decode: (doc: AnalyticRecordDoc) => EvidenceRecord,
  sink: EvidenceSink,
  onProgress?: (loaded: number) => void,
  signal?: { stopped: boolean },
): Promise<LoadResult> {
  const head = await journalHead(models);
  let records = 0;
  for await (const doc of models.AnalyticRecord.find({}).lean<AnalyticRecordDoc[]>().cursor({ batchSize: 1000 })) {
    if (signal?.stopped) break;
    sink.apply(decode(doc as AnalyticRecordDoc));
    records += 1;
    if (records % 5000 === 0) onProgress?.(records);
  }
  return { records, head };
}

/**
 * Where following must begin for a state read from `started` on, knowing
 * the journal up to `head`: an entry up to `head` claimed before the grace
 * (and the skew) preceding `started` whose successor was claimed after it.
 * Intents of that last grace may have had their record written after the
 * read passed it, so they are followed again (applying a record twice is
 * harmless). `onLookUp` counts the entries read.
 *
 * Found by halving between 0 and `head` (a burst of 50,000 entries just
 * before a start is 16 look-ups, not 50,000 one after another). An entry
 * that is missing (compacted away) or has no `t` counts as old. Times grow
 * with the sequence only within a process: across processes the clocks
 * differ by up to the skew, so an old entry may sit above recent ones. The
 * halving keeps "low is old, high is recent" and ends on an old entry
 * followed by a recent one; whichever such pair it meets, that old entry is
 * at most the highest old entry (where walking back from the head would
 * stop), so a non-monotone `t` can only make following start earlier (more
 * entries followed again), never later than the walk would.
 */
export async function lookBack(
  models: JournalModels,
  head: number,
  started: number,
  timings: Pick<JournalTimings, 'graceMs' | 'clockSkewMs'> = {},
  onLookUp?: () => void,
): Promise<number> {
  const since = started - (timings.graceMs ?? JOURNAL_GRACE_MS) - (timings.clockSkewMs ?? CLOCK_SKEW_MS);
  const isOld = async (sequence: number) => {
    onLookUp?.();
    const entry = await models.EvidenceJournal.findById(journalId(sequence), { t: 1 }).lean();
    return !entry?.t || entry.t.getTime() < since;
  };
  // The head first: when nothing was claimed in the last grace (the usual start), one look-up.
  if (head <= 0 || (await isOld(head))) return Math.max(head, 0);
  let old = 0; // 0 stands for "before every entry"
  let recent = head;
  while (recent - old > 1) {
    const middle = Math.floor((old + recent) / 2);
    if (await isOld(middle)) old = middle;
    else recent = middle;
  }
  return old;
}

/** What an open intent waits for: the record at this revision or later (v), or gone (x). */
interface OpenIntent {
  v?: number;
  x?: boolean;
  /** When the writer claimed it (entry.t), on the follower's clock give or take the skew. */
  since: number;
}

function fulfils(intent: Pick<OpenIntent, 'v' | 'x'>, record: AnalyticRecordDoc | null): boolean {
  if (intent.x) return record === null;
  if (intent.v !== undefined) return record !== null && record.revision >= intent.v;
  return true;
}

/**
 * Follows the journal from a sequence number it has: every `pollMs` it reads
 * the entries after it, one _id look-up each (up to READ_AHEAD side by side),
 * and for each the record as it is now (applied) or its absence (removed). When nothing changed a poll
 * costs one look-up. A record changed in another process reaches the sink
 * within one poll interval plus the time to read what changed.
 *
 * An intent whose record is not written yet stays open and is looked at
 * again at every poll (one look-up each); one still open after the grace is
 * written by the follower itself from the current response (`repair`), as a
 * writer that died would have: so a change half-made by a crashed process
 * reaches every process within the grace plus a poll.
 *
 * An erasure scrubs the record ids it removed from the journal (they are the
 * erased person's invitation ids); a follower that meets a scrubbed entry
 * cannot tell from it which record went, so it compares the ids it holds
 * with the current snapshot, from which the erasure removed them first, and
 * looks up by _id those the snapshot lacks: the ones gone leave the counts
 * (forgetErased). Only without a snapshot, or with more to look up than a
 * quarter of what it holds, does it read every record again. Finding that
 * compaction removed entries it had not read (it was stopped or cut off
 * from the database for longer than the lease) costs one load of the
 * records: its mark told compaction where it was, and a follower whose
 * mark is older than half the lease checks the floor before trusting the
 * journal's end.
 */
export class RecordFollower {
  private timer: NodeJS.Timeout | undefined;
  /** Stops the polls when the connection closes: none may reach a database after that (a test drops it then). */
  private readonly stopOnClose = () => void this.stop();
  private running: Promise<number> | undefined;
  private compacting: Promise<unknown> | undefined;
  private lastCompaction = Date.now();
  /** The journal's head when the current snapshot was read, as this follower last knew it. */
  private snapshotHead = 0;
  /** The ids this follower has applied and not removed: what a resynchronisation checks. */
  private readonly known = new Set<string>();
  /** Intents whose record was not yet as announced when read, by record id. */
  private readonly open = new Map<string, OpenIntent & { id: Types.ObjectId }>();
  /**
   * The revision of each record a full load applied, until the first
   * catch-up after it ends: an intent of the look-back whose record the load
   * read at that revision or later needs neither the record read nor applied
   * again (see catchUp).
   */
  private loaded: { revisions: Map<string, number>; head: number } | undefined;
  /**
   * What this follower read from the database (tests and benchmarks read it): journal entries
   * while looking back, and while catching up by _id (entries) and in passes over the journal
   * (entriesInPasses), and records while catching up.
   */
  readonly reads = { lookBack: 0, entries: 0, entriesInPasses: 0, records: 0 };
  /** This process's mark in evidence_followers, and when it was last written (its clock, before the write). */
  private readonly markId = `${FOLLOWER}${new Types.ObjectId().toHexString()}`;
  private markedAt = 0;
  private readonly graceMs: number;
  private readonly leaseMs: number;
  /** The sink, noting which ids it holds. */
  readonly tracking: EvidenceSink;

  constructor(
    private readonly models: RecordModels,
    sink: EvidenceSink,
    private readonly decode: (doc: AnalyticRecordDoc) => EvidenceRecord,
    /** The last sequence number already reflected in the sink. */
    private position: number,
    private readonly options: JournalTimings & {
      pollMs?: number;
      onError?: (error: unknown) => void;
      /** Writes the record of this id from its current response (an intent its writer left open). */
      repair?: (id: Types.ObjectId) => Promise<void>;
      /**
       * The sink's counts as an image: made for a snapshot it builds (image), and taken on
       * from the snapshot at a load (restore: the ids of the records they hold, or null when
       * the sink cannot take them, and the records are applied one by one).
       */
      counts?: { image: CountsOf; restore: (image: Buffer) => string[] | null };
      /** After each poll (what the sink's owner derives from its counts may be made then, before a page asks). */
      polled?: () => void;
    } = {},
  ) {
    this.graceMs = options.graceMs ?? JOURNAL_GRACE_MS;
    this.leaseMs = options.leaseMs ?? FOLLOWER_LEASE_MS;
    this.tracking = {
      apply: (record) => {
        this.known.add(record.id);
        sink.apply(record);
      },
      remove: (id) => {
        this.known.delete(id);
        sink.remove(id);
      },
    };
  }

  /** The last sequence number applied. */
  get sequence(): number {
    return this.position;
  }

  /** Intents waiting for their record. */
  get openIntents(): number {
    return this.open.size;
  }

  /**
   * Loads the records from the snapshot and follows the journal after it
   * (loadSnapshot), or, when there is none, loads every record (loadRecords)
   * and continues from a little before the journal's head noted before it:
   * intents of the last grace (before the load began) may have had their
   * record written after the load read past it, so they are followed again
   * (applying a record twice is harmless). The mark says 0 meanwhile, so no
   * compaction removes what it will need.
   */
  async load(onProgress?: (loaded: number) => void, signal?: { stopped: boolean }, startOver?: () => void): Promise<LoadResult> {
    // Polls and a load both move the position: side by side, each counted the same entries past it and the follower ran ahead
    // of the journal, skipping what came next. The load waits for the poll under way, and polls asked meanwhile wait for it.
    while (this.running) await this.running.catch(() => undefined);
    const loading = this.loadAlone(onProgress, signal, startOver);
    const held: Promise<number> = loading.then(
      () => 0,
      () => 0,
    );
    this.running = held;
    void held.then(() => this.running === held && (this.running = undefined));
    return loading;
  }

  /** load(), with no poll under way; `startOver` empties the sink first (its owner's counts), the ids it held forgotten too. */
  private async loadAlone(onProgress?: (loaded: number) => void, signal?: { stopped: boolean }, startOver?: () => void): Promise<LoadResult> {
    if (startOver) {
      startOver();
      this.known.clear();
    }
    await this.mark(0);
    const fromSnapshot = await this.loadSnapshot(onProgress, signal);
    if (fromSnapshot) {
      await this.mark(this.position);
      return fromSnapshot;
    }
    const started = Date.now();
    // Records a snapshot cut short (a bucket gone) gave that are no longer stored are removed after the full load.
    const stored = new Map<string, number>();
    const sink: EvidenceSink = {
      apply: (record) => {
        stored.set(record.id, record.revision);
        this.tracking.apply(record);
      },
      remove: (id) => this.tracking.remove(id),
    };
    const loaded = await loadRecords(this.models, this.decode, sink, onProgress, signal);
    if (!signal?.stopped) for (const id of [...this.known]) if (!stored.has(id)) this.tracking.remove(id);
    this.loaded = { revisions: stored, head: loaded.head };
    this.position = await this.lookBack(loaded.head, started);
    await this.mark(this.position);
    return loaded;
  }

  /**
   * Applies the current snapshot's records, then every journal entry after
   * its position, as a poll does. A scrubbed entry met there is an erasure
   * that removed its records from the snapshot before scrubbing, unless the
   * pointer changed while this loaded: then every record is read again
   * (resynchronise). Null when there is no snapshot, the journal after it is
   * no longer whole, or a bucket went meanwhile: the caller reads every record.
   */
  private async loadSnapshot(onProgress?: (loaded: number) => void, signal?: { stopped: boolean }): Promise<LoadResult | null> {
    const { sequence, pointer } = await currentSnapshot(this.models);
    if (!pointer?.g || (await journalFloor(this.models)) > (pointer.f ?? 0) + 1) return null;
    let records = 0;
    const restored = await this.restoreCounts(pointer);
    if (restored) {
      for (const id of restored) this.known.add(id);
      records = restored.length;
    } else {
      const whole = await readSnapshot(
        this.models,
        pointer,
        (doc) => {
          this.tracking.apply(this.decode(doc));
          records += 1;
          if (records % 5000 === 0) onProgress?.(records);
        },
        signal,
      );
      if (!whole) return null;
    }
    this.snapshotHead = pointer.h ?? 0;
    this.position = pointer.f ?? 0;
    await this.catchUp({ snapshot: sequence, floorAtMost: this.position + 1 });
    return { records, head: this.position, fromSnapshot: true, fromCounts: restored !== null };
  }

  /**
   * The generation's counts taken on as they are, when it has them and the sink can: no record
   * decoded or counted. The ids they hold, or null: then the records are counted, as also when
   * the counts cannot be read (a chunk damaged: a load must not fail for what it can do without).
   */
  private async restoreCounts(pointer: SnapshotPointer): Promise<string[] | null> {
    if (!this.options.counts) return null;
    try {
      const image = await readCounts(this.models, pointer);
      return image && this.options.counts.restore(image);
    } catch (error) {
      (this.options.onError ?? console.error)(error);
      return null;
    }
  }

  private lookBack(head: number, started: number): Promise<number> {
    return lookBack(this.models, head, started, { graceMs: this.graceMs, clockSkewMs: this.options.clockSkewMs }, () => (this.reads.lookBack += 1));
  }

  start(): this {
    if (this.timer) return this;
    const onError = this.options.onError ?? ((error: unknown) => console.error('Following the evidence records failed, retrying at the next poll:', error));
    const compactEvery = this.options.compactEveryMs ?? this.leaseMs;
    this.timer = setInterval(() => {
      this.poll().catch(onError);
      if (compactEvery <= 0 || this.compacting) return;
      const compactionDue = Date.now() - this.lastCompaction >= compactEvery;
      // A load follows every entry after the snapshot one by one: a new one once SNAPSHOT_AFTER_ENTRIES came, not only at compaction.
      if (!compactionDue && this.position - this.snapshotHead < SNAPSHOT_AFTER_ENTRIES) return;
      if (compactionDue) this.lastCompaction = Date.now();
      const timings = { leaseMs: this.leaseMs, graceMs: this.graceMs, clockSkewMs: this.options.clockSkewMs };
      // The snapshot first: compaction keeps the entries a load from the newest one follows.
      this.compacting = buildSnapshot(this.models, { ...timings, countsOf: this.options.counts?.image })
        .then((built) => {
          // Claimed or lost: another follower builds it, and a load uses that one; this one looks again SNAPSHOT_AFTER_ENTRIES later (or at compaction), then finds it fresh.
          this.snapshotHead = built.head ?? this.position;
          if (compactionDue) return compactJournal(this.models, timings);
        })
        .catch(onError)
        .finally(() => (this.compacting = undefined));
    }, this.options.pollMs ?? DEFAULT_EVIDENCE_POLL_MS);
    this.timer.unref();
    this.models.EvidenceJournal.db.once('close', this.stopOnClose);
    return this;
  }

  /** Whether it polls by itself (started, not stopped). */
  get following(): boolean {
    return this.timer !== undefined;
  }

  /** Whether a poll is under way (joining it may miss entries written after it passed the journal's end). */
  get polling(): boolean {
    return this.running !== undefined;
  }

  /** Applies every entry after the position; returns how many. A poll already running is joined, not doubled. */
  poll(): Promise<number> {
    this.running ??= this.catchUp()
      .then((applied) => {
        this.options.polled?.();
        return applied;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * `fromSnapshot`: the first catch-up after a snapshot (loadSnapshot), which
   * may skip scrubbed entries while the pointer is still that one, and reads
   * every record again if compaction went past where it began.
   */
  private async catchUp(fromSnapshot?: { snapshot: number; floorAtMost: number }): Promise<number> {
    const markedRecently = () => Date.now() - this.markedAt < this.leaseMs / 2;
    const protectedAtStart = markedRecently();
    let applied = 0;
    let scrubbed = false;
    /** Entries in order from position + 1, READ_AHEAD at most: their records read side by side, then each followed. */
    const apply = async (entries: readonly JournalEntry[]) => {
      const followed = entries.filter((entry, i) => entry.r && !this.loadedAlready(entry, this.position + 1 + i));
      const records = await this.recordsOf(followed);
      for (const entry of entries) {
        if (!entry.r) scrubbed = true;
        else if (followed.includes(entry)) this.follow(entry, records.get(String(entry.r)) ?? null);
        this.position += 1;
        applied += 1;
      }
    };
    const run = await this.entriesInPass();
    for (let start = 0; start < run.length; start += READ_AHEAD) await apply(run.slice(start, start + READ_AHEAD));
    for (;;) {
      const entries = await this.entriesAfter(this.position);
      if (entries.length === 0) break;
      await apply(entries);
    }
    // Only the look-back after a full load is covered by what the load read: later entries are changes after it.
    this.loaded = undefined;
    await this.reviewOpenIntents();
    // The floor is raised before entries go: at most where this began, none it read had gone.
    let resync = fromSnapshot !== undefined && (await journalFloor(this.models)) > fromSnapshot.floorAtMost;
    // Unprotected for a while: the missing entry may have been compacted away rather than not written yet.
    if (!resync && !(protectedAtStart && markedRecently()) && this.position + 1 < (await journalFloor(this.models))) resync = true;
    // Scrubbed entries: the records their erasure removed leave by _id (a load from the snapshot passes them while the pointer is still the one it loaded).
    if (!resync && scrubbed && (!fromSnapshot || (await currentSnapshot(this.models)).sequence !== fromSnapshot.snapshot)) resync = !(await this.forgetErased());
    if (resync) await this.resynchronise();
    else if (Date.now() - this.markedAt >= this.leaseMs / 8) await this.mark(this.position);
    return applied;
  }

  /**
   * Whether the full load just made holds this entry's change already, for
   * a record the load read: an intent to write the revision it read or an
   * earlier one (the record only moves forward by revision, so that write
   * changes nothing the load did not see), or a plain entry up to the head
   * noted before the load (its change was made before the entry, so before
   * the load read anything). Any other change to the record after the load
   * read it has an entry of its own further on (an intent claimed in the
   * look-back, or, written more than the grace after its intent, journalled
   * again once written), followed as usual. A removal, a plain entry after
   * the head, or an entry of a record the load did not read is followed;
   * after the first entry of a record that is followed, its later ones are
   * followed too (a removal, then a fresh write of a lower revision).
   */
  private loadedAlready(entry: JournalEntry, sequence: number): boolean {
    if (!this.loaded) return false;
    const key = String(entry.r);
    const revision = this.loaded.revisions.get(key);
    if (revision !== undefined && !entry.x && (entry.v !== undefined ? revision >= entry.v : sequence <= this.loaded.head)) return true;
    this.loaded.revisions.delete(key);
    return false;
  }

  /**
   * The entries after `position` that exist, up to READ_AHEAD of them, in
   * order. Each is one `_id` look-up (the only index-backed filter on the
   * embedded engine), so they are asked for side by side rather than one
   * round trip after another; the run ends at the first one not written yet.
   */
  private async entriesAfter(position: number): Promise<JournalEntry[]> {
    const entryAt = (sequence: number) => {
      this.reads.entries += 1;
      return this.models.EvidenceJournal.findById(journalId(sequence)).lean<JournalEntry>();
    };
    // The next one alone first: a poll that finds nothing stays one look-up.
    const next = await entryAt(position + 1);
    if (!next) return [];
    const found = [next, ...(await Promise.all(Array.from({ length: READ_AHEAD - 1 }, (_, i) => entryAt(position + 2 + i))))];
    const missing = found.indexOf(null);
    return (missing === -1 ? found : found.slice(0, missing)) as JournalEntry[];
  }

  /**
   * After a full load, the entries from the position to the head noted before it, read in
   * one pass over the journal when there are enough of them (PASS_MIN_ENTRIES), in order;
   * otherwise none. Entries are gap-free from the floor to the head, so the run without a
   * gap from position + 1 is all of them; only that run is taken (what follows it is read
   * by _id as usual).
   */
  private async entriesInPass(): Promise<JournalEntry[]> {
    const head = this.loaded?.head ?? 0;
    const from = this.position + 1;
    if (head - from + 1 < PASS_MIN_ENTRIES || (head - from + 1) * 4 < head - (await journalFloor(this.models))) return [];
    const found = await this.models.EvidenceJournal.find({ _id: { $gte: journalId(from), $lte: journalId(head) } }).lean<JournalEntry[]>();
    // Zero-padded sequence numbers: their order as strings is their order as numbers.
    found.sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
    let run = 0;
    while (run < found.length && found[run]!._id === journalId(from + run)) run += 1;
    this.reads.entriesInPasses += found.length;
    return found.slice(0, run);
  }

  /** The records the entries name, as they are now (read after their entries, side by side); absent when removed. */
  private async recordsOf(entries: readonly JournalEntry[]): Promise<Map<string, AnalyticRecordDoc | null>> {
    const ids = [...new Map(entries.filter((e) => e.r).map((e) => [String(e.r), e.r!])).values()];
    this.reads.records += ids.length;
    const records = await Promise.all(ids.map((id) => this.models.AnalyticRecord.findById(id).lean<AnalyticRecordDoc>()));
    return new Map(ids.map((id, i) => [String(id), records[i] ?? null]));
  }

  /** Applies the record as it is now (read after the entry); an intent it does not fulfil yet stays open. */
  private follow(entry: JournalEntry, record: AnalyticRecordDoc | null): void {
    const id = entry.r!;
    const key = String(id);
    if (record) this.tracking.apply(this.decode(record));
    else this.tracking.remove(key);
    const waiting = this.open.get(key);
    if (!fulfils(entry, record)) this.open.set(key, { id, v: entry.v, x: entry.x, since: entry.t ? new Date(entry.t).getTime() : Date.now() });
    else if (waiting && fulfils(waiting, record)) this.open.delete(key);
  }

  /**
   * Looks again at each open intent's record: applied once fulfilled; still
   * open after the grace, its writer died: a write is made from the current
   * response (repair journals it, so every process gets it), a removal is
   * left to the erasure or purge that will run again.
   */
  private async reviewOpenIntents(): Promise<void> {
    for (const [key, intent] of [...this.open]) {
      const record = await this.models.AnalyticRecord.findById(intent.id).lean<AnalyticRecordDoc>();
      if (fulfils(intent, record)) {
        if (record) this.tracking.apply(this.decode(record));
        else this.tracking.remove(key);
        this.open.delete(key);
      } else if (Date.now() - intent.since > this.graceMs) {
        this.open.delete(key);
        if (intent.v !== undefined) await this.options.repair?.(intent.id);
      }
    }
  }

  /**
   * After scrubbed entries, which no longer say which record went: takes out
   * the records this follower holds that are no longer stored, and nothing
   * else. An erasure removes its records from the current generation before
   * it scrubs (eraseFromEvidence), so the generation read now holds none of
   * them: the records held that it lacks are those erased and those written
   * after it, each looked up by _id (side by side); the ones gone are
   * removed. The generation's ids are read from its buckets (at 50,000
   * records 100 documents), no record is read whole or counted again. False
   * when it cannot tell (no generation, a bucket gone meanwhile, or more to
   * look up than reading every record costs): then the caller resynchronises.
   */
  private async forgetErased(): Promise<boolean> {
    const { pointer } = await currentSnapshot(this.models);
    if (!pointer?.g) return false;
    const inGeneration = new Set<string>();
    if (!(await readSnapshotIds(this.models, pointer, (id) => inGeneration.add(id)))) return false;
    const candidates = [...this.known].filter((id) => !inGeneration.has(id));
    // A look-up by _id costs about what reading a few records in a full read does: past a quarter of what it holds, reading every record is cheaper.
    if (candidates.length > Math.max(MAX_ERASED_LOOKUPS, this.known.size / 4)) return false;
    for (let start = 0; start < candidates.length; start += READ_AHEAD) {
      const ids = candidates.slice(start, start + READ_AHEAD);
      const stored = await Promise.all(ids.map((id) => this.models.AnalyticRecord.exists({ _id: id })));
      ids.forEach((id, i) => stored[i] === null && this.tracking.remove(id));
    }
    return true;
  }

  /** Reads every record again: applies each, removes what this follower had and is gone, and continues from the head. */
  private async resynchronise(): Promise<void> {
    await this.mark(0);
    const started = Date.now();
    const head = await journalHead(this.models, this.position);
    const stored = new Set<string>();
    for await (const doc of this.models.AnalyticRecord.find({}).lean<AnalyticRecordDoc[]>().cursor({ batchSize: 1000 })) {
      const record = this.decode(doc as AnalyticRecordDoc);
      stored.add(record.id);
      this.tracking.apply(record);
    }
    for (const id of [...this.known]) if (!stored.has(id)) this.tracking.remove(id);
    this.position = Math.max(this.position, await this.lookBack(head, started));
    await this.mark(this.position);
  }

  /** Tells compaction which entries this follower still needs: those after `position`. */
  private async mark(position: number): Promise<void> {
    const at = Date.now();
    await this.models.EvidenceFollower.updateOne({ _id: this.markId }, { $set: { p: position, at: new Date(at) } }, { upsert: true });
    this.markedAt = at;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.models.EvidenceJournal.db.off('close', this.stopOnClose);
    await this.running;
    await this.compacting;
    // Gone: compaction need not wait for the lease.
    await this.models.EvidenceFollower.deleteOne({ _id: this.markId }).catch(() => undefined);
  }
}

/**
 * Writes the record of a current response whose writer left its intent open
 * (it died between the intent and the record): from the response, which is
 * stored before its record, so the record says what the response says. A
 * response gone meanwhile (an erasure) leaves nothing to write.
 */
export async function repairRecord(
  models: RecordModels & Pick<Models, 'Response' | 'InstitutionSecret'>,
  tagKey: Buffer,
  id: Types.ObjectId,
  isText: (question: string) => boolean,
): Promise<void> {
  const response = await models.Response.findById(id, { campaign: 1, institution: 1, institutionTag: 1, revision: 1, submittedAt: 1, profile: 1, data: 1 }).lean();
  if (response) await writeRecord(models, await storedRecordOf(institutionTagger(models, tagKey), response as unknown as StoredSource, isText));
}

export interface FollowingEvidence {
  /** Settles when the records are loaded and following has begun. */
  ready: Promise<LoadResult>;
  stop(): Promise<void>;
}

/**
 * Loads every record into the sink, then follows the journal: the one call
 * that keeps an in-memory evidence state up to date with every process.
 */
export function followEvidence(
  models: RecordModels,
  sink: EvidenceSink,
  options: {
    catalogue: QuestionCatalogue;
    pollMs?: number;
    onProgress?: (loaded: number) => void;
    onError?: (error: unknown) => void;
  },
): FollowingEvidence {
  const flatten = flattenerOf(options.catalogue);
  const follower = new RecordFollower(models, sink, (doc) => decodeRecord(doc, flatten), 0, { pollMs: options.pollMs, onError: options.onError });
  const signal = { stopped: false };
  const ready = follower.load(options.onProgress, signal).then((loaded) => {
    if (!signal.stopped) follower.start();
    return loaded;
  });
  return {
    ready,
    async stop() {
      signal.stopped = true;
      await ready.catch(() => undefined);
      await follower.stop();
    },
  };
}

/**
 * Blanks the record ids of erased responses in the journal, so that no trace
 * of the person's invitation id is left (followers that had not yet read
 * those entries find the records gone by comparing with the snapshot:
 * RecordFollower.forgetErased). The journal's entries are tiny, so reading
 * it whole costs little beside an erasure. Call it through eraseFromEvidence
 * (record-snapshot.ts) only: a load from the snapshot passes a blanked entry
 * because the erasure removed the records from the snapshot first.
 */
export async function scrubJournal(models: Pick<Models, 'EvidenceJournal'>, ids: readonly Types.ObjectId[]): Promise<void> {
  if (ids.length === 0) return;
  await models.EvidenceJournal.updateMany({ r: { $in: [...ids] } }, { $unset: { r: 1 } });
}

// ---------------------------------------------------------------------------
// Migration

export const RECORDS_MIGRATION = 'migration:analytic-records-v1';

/**
 * Writes the records of responses stored before records existed: once per
 * database (a marker records that it ran), idempotent and resumable (a
 * response whose record is there is skipped; a record written meanwhile by a
 * submission is newer and kept). Returns how many records it wrote.
 */
export async function migrateRecords(
  models: Pick<Models, 'AnalyticRecord' | 'EvidenceJournal' | 'EvidenceFollower' | 'EvidenceSnapshot' | 'Response' | 'Claim' | 'InstitutionSecret'>,
  tagKey: Buffer,
  isText: (question: string) => boolean,
  now: () => Date,
  onProgress?: (read: number, written: number) => void,
): Promise<number> {
  if (await models.Claim.exists({ _id: RECORDS_MIGRATION })) return 0;
  // The records are compact: reading their ids costs little beside the responses.
  const have = new Set((await models.AnalyticRecord.find({}, { _id: 1 }).lean()).map((r) => String(r._id)));
  let read = 0;
  let written = 0;
  let batch: AnalyticRecordDoc[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    // Intents first, as for every record write (see the journal's comment).
    await journalIntents(models, batch.map((r) => ({ r: r._id, v: r.revision })));
    try {
      await models.AnalyticRecord.collection.insertMany(batch, { ordered: false });
      written += batch.length;
    } catch (error) {
      // A duplicate is a record a submission wrote meanwhile: newer, so its intent here is fulfilled.
      const failure = error as { writeErrors?: Array<{ code?: number; index?: number; err?: { code?: number; index?: number } }> };
      if (!failure.writeErrors?.every((e) => (e.code ?? e.err?.code) === 11000)) throw error;
      written += batch.length - failure.writeErrors.length;
    }
    batch = [];
  };
  const tagOf = institutionTagger(models, tagKey);
  for await (const response of models.Response.find({}, { campaign: 1, institution: 1, institutionTag: 1, revision: 1, submittedAt: 1, profile: 1, data: 1 }).lean().cursor({ batchSize: 500 })) {
    read += 1;
    if (!have.has(String(response._id))) batch.push(await storedRecordOf(tagOf, response as unknown as StoredSource, isText));
    if (batch.length === 500) await flush();
    if (read % 1000 === 0) onProgress?.(read, written + batch.length);
  }
  await flush();
  if (read > 0) onProgress?.(read, written);
  // Journalled, but one by one a load would follow them more slowly than it reads every record: so no snapshot until the next build.
  if (written > 0) await invalidateSnapshot(models);
  // Recorded only at the end: a migration cut short runs again, skipping the records it wrote.
  await claimOnce(models, RECORDS_MIGRATION, now());
  return written;
}

export function isDuplicateKey(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; writeErrors?: Array<{ code?: number; err?: { code?: number } }> };
  return e.code === 11000 || Boolean(e.writeErrors?.length && e.writeErrors.every((w) => (w.code ?? w.err?.code) === 11000));
}
