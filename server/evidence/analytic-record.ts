import { Schema, Types, type Connection, type Model } from 'mongoose';
import type { Models } from '../db/models.ts';
import { flattenAnswers, type ResponseItem } from '../respond/answer-items.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { DIMENSION_NAMES, type Dimension } from './evidence-filter.ts';
import { institutionTagger, isInstitutionTag, type InstitutionTagger } from './institution-tag.ts';
import type { EvidenceRecord, EvidenceSink } from './evidence-record.ts';
import type { QuestionCatalogue } from './question-catalogue.ts';

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
 * response does), and every write or removal is followed by an entry in the
 * evidence journal so that other processes (a second instance, the CLI,
 * seed:demo) can follow it.
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
 */
const journalSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The record's id; blanked when an erasure removed the record (scrubJournal). */
    r: { type: Schema.Types.ObjectId },
  },
  { versionKey: false },
);

export type AnalyticRecordModel = Model<AnalyticRecordDoc>;
export type EvidenceJournalModel = Model<{ _id: string; r?: Types.ObjectId | null }>;

export function defineAnalyticRecordModels(connection: Connection): { AnalyticRecord: AnalyticRecordModel; EvidenceJournal: EvidenceJournalModel } {
  return {
    AnalyticRecord: connection.model('AnalyticRecord', analyticRecordSchema, 'analytic_records') as unknown as AnalyticRecordModel,
    EvidenceJournal: connection.model('EvidenceJournal', journalSchema, 'evidence_journal') as unknown as EvidenceJournalModel,
  };
}

type RecordModels = Pick<Models, 'AnalyticRecord' | 'EvidenceJournal'>;

/** How often a follower looks for changes made by other processes, unless EVIDENCE_POLL_MS says otherwise. */
export const DEFAULT_EVIDENCE_POLL_MS = 2000;

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
    id: String(doc._id),
    campaign: String(doc.campaign),
    institution: doc.institution,
    revision: doc.revision,
    submittedAt: new Date(doc.at),
    profile,
    items: flatten(JSON.parse(doc.a) as Record<string, unknown>),
  };
}

function toObjectId(value: unknown): Types.ObjectId {
  return value instanceof Types.ObjectId ? value : new Types.ObjectId(String(value));
}

// ---------------------------------------------------------------------------
// Writing

/**
 * Stores a record unless one of the same or a later revision is there, then
 * journals it. A first record is one unique insert; on a duplicate key the
 * stored one is read by _id and replaced only by a later revision (as the
 * current response is), so repeating it is harmless. Returns the record now
 * stored: this one, or the later one found.
 */
export async function writeRecord(models: RecordModels, record: AnalyticRecordDoc): Promise<AnalyticRecordDoc> {
  try {
    await models.AnalyticRecord.collection.insertOne(record);
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    const current = await models.AnalyticRecord.findById(record._id).lean<AnalyticRecordDoc>();
    // Removed in between (an erasure): try again from the start.
    if (!current) return writeRecord(models, record);
    if (current.revision >= record.revision) return current;
    await models.AnalyticRecord.collection.replaceOne({ _id: record._id }, record);
  }
  await appendJournal(models, [record._id]);
  return record;
}

/** What a change to stored responses did to the analytic records: records written (decode with decodeRecord) and ids removed. */
export interface RecordChange {
  written: AnalyticRecordDoc[];
  removed: string[];
}

/**
 * Removes the records of these responses and journals each removal, even of
 * a record already gone (an erasure repeated after a crash must still reach
 * the followers).
 */
export async function removeRecords(models: RecordModels, ids: readonly Types.ObjectId[]): Promise<void> {
  if (ids.length === 0) return;
  if (ids.length === 1) await models.AnalyticRecord.deleteOne({ _id: ids[0] });
  else await models.AnalyticRecord.deleteMany({ _id: { $in: [...ids] } });
  await appendJournal(models, ids);
}

// ---------------------------------------------------------------------------
// The journal

const SEQUENCE_DIGITS = 12;

export function journalId(sequence: number): string {
  return String(sequence).padStart(SEQUENCE_DIGITS, '0');
}

/** The highest sequence number each connection's journal is known to hold: where the next write starts. */
const knownHeads = new WeakMap<object, number>();

/**
 * The highest sequence number in the journal (0 when empty), found by _id
 * look-ups only: doubling steps from a number known to exist, then halving.
 * Entries are gap-free, so "exists" is true exactly up to the head.
 */
export async function journalHead(models: Pick<Models, 'EvidenceJournal'>, from = 0): Promise<number> {
  const exists = async (sequence: number) => sequence <= 0 || (await models.EvidenceJournal.exists({ _id: journalId(sequence) })) !== null;
  let low = Math.max(0, from);
  if (!(await exists(low))) low = 0;
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

/** Appends waiting in this process for the one in flight, per connection's journal. */
const queues = new WeakMap<object, { waiting: Array<{ ids: readonly Types.ObjectId[]; done: (error?: unknown) => void }>; busy: boolean }>();

/**
 * Appends one entry per record id, in order. Within a process, appends are
 * made one at a time and those arriving meanwhile go together in the next
 * insert (concurrent submissions never compete for the same number). Across
 * processes, each entry claims the next sequence number by a unique insert
 * (ordered, so the entries that went in before a duplicate are a contiguous
 * run); on a duplicate the head is found again and the rest retried after
 * it. A record journalled twice is harmless: following it twice applies it twice.
 */
export function appendJournal(models: Pick<Models, 'EvidenceJournal'>, recordIds: readonly Types.ObjectId[]): Promise<void> {
  const journal = models.EvidenceJournal;
  let queue = queues.get(journal);
  if (!queue) queues.set(journal, (queue = { waiting: [], busy: false }));
  const settled = new Promise<void>((resolve, reject) => queue.waiting.push({ ids: recordIds, done: (error) => (error ? reject(error) : resolve()) }));
  if (!queue.busy) {
    queue.busy = true;
    void (async () => {
      while (queue.waiting.length > 0) {
        const group = queue.waiting.splice(0);
        try {
          await insertEntries(models, group.flatMap((g) => g.ids));
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

async function insertEntries(models: Pick<Models, 'EvidenceJournal'>, recordIds: readonly Types.ObjectId[]): Promise<void> {
  const journal = models.EvidenceJournal;
  let head = knownHeads.get(journal) ?? (await journalHead(models));
  let pending = [...recordIds];
  while (pending.length > 0) {
    const entries = pending.slice(0, 500).map((r, i) => ({ _id: journalId(head + 1 + i), r }));
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

// ---------------------------------------------------------------------------
// Loading and following

export interface LoadResult {
  /** Records applied. */
  records: number;
  /** The journal's head before the load began: following from it misses nothing written since. */
  head: number;
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
 * Follows the journal from a sequence number it has: every `pollMs` it reads
 * the entries after it, one _id look-up each, and for each the record as it
 * is now (applied) or its absence (removed). When nothing changed a poll
 * costs one look-up. A record changed in another process reaches the sink
 * within one poll interval plus the time to read what changed.
 *
 * An erasure scrubs the record ids it removed from the journal (they are the
 * erased person's invitation ids); a follower that meets a scrubbed entry
 * cannot tell which record went, so it reads every record again and removes
 * the ids it had applied that are gone. Erasures are rare; this costs one
 * load of the records.
 */
export class RecordFollower {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  /** The ids this follower has applied and not removed: what a resynchronisation checks. */
  private readonly known = new Set<string>();
  /** The sink, noting which ids it holds. */
  readonly tracking: EvidenceSink;

  constructor(
    private readonly models: RecordModels,
    sink: EvidenceSink,
    private readonly decode: (doc: AnalyticRecordDoc) => EvidenceRecord,
    /** The last sequence number already reflected in the sink. */
    private position: number,
    private readonly options: { pollMs?: number; onError?: (error: unknown) => void } = {},
  ) {
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

  /** Loads every record (loadRecords) and continues from the journal's head noted before it. */
  async load(onProgress?: (loaded: number) => void, signal?: { stopped: boolean }): Promise<LoadResult> {
    const loaded = await loadRecords(this.models, this.decode, this.tracking, onProgress, signal);
    this.position = loaded.head;
    return loaded;
  }

  start(): this {
    if (this.timer) return this;
    const onError = this.options.onError ?? ((error: unknown) => console.error('Following the evidence records failed, retrying at the next poll:', error));
    this.timer = setInterval(() => {
      this.poll().catch(onError);
    }, this.options.pollMs ?? DEFAULT_EVIDENCE_POLL_MS);
    this.timer.unref();
    return this;
  }

  /** Whether a poll is under way (joining it may miss entries written after it passed the journal's end). */
  get polling(): boolean {
    return this.running !== undefined;
  }

  /** Applies every entry after the position; returns how many. A poll already running is joined, not doubled. */
  poll(): Promise<number> {
    this.running ??= this.catchUp().finally(() => (this.running = undefined));
    return this.running;
  }

  private async catchUp(): Promise<number> {
    let applied = 0;
    let resync = false;
    for (;;) {
      const entry = await this.models.EvidenceJournal.findById(journalId(this.position + 1)).lean();
      if (!entry) break;
      if (!entry.r) resync = true;
      else {
        const record = await this.models.AnalyticRecord.findById(entry.r).lean<AnalyticRecordDoc>();
        if (record) this.tracking.apply(this.decode(record));
        else this.tracking.remove(String(entry.r));
      }
      this.position += 1;
      applied += 1;
    }
    if (resync) await this.resynchronise();
    return applied;
  }

  private async resynchronise(): Promise<void> {
    const stored = new Set<string>();
    for await (const doc of this.models.AnalyticRecord.find({}).lean<AnalyticRecordDoc[]>().cursor({ batchSize: 1000 })) {
      const record = this.decode(doc as AnalyticRecordDoc);
      stored.add(record.id);
      this.tracking.apply(record);
    }
    for (const id of [...this.known]) if (!stored.has(id)) this.tracking.remove(id);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
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
 * those entries resynchronise). The journal's entries are tiny, so reading
 * it whole costs little beside an erasure.
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
  models: Pick<Models, 'AnalyticRecord' | 'EvidenceJournal' | 'Response' | 'Claim' | 'InstitutionSecret'>,
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
    const ids: Types.ObjectId[] = [];
    try {
      await models.AnalyticRecord.collection.insertMany(batch, { ordered: false });
      ids.push(...batch.map((r) => r._id));
    } catch (error) {
      // A duplicate is a record a submission wrote meanwhile: newer, and journalled by it.
      const failure = error as { writeErrors?: Array<{ code?: number; index?: number; err?: { code?: number; index?: number } }> };
      if (!failure.writeErrors?.every((e) => (e.code ?? e.err?.code) === 11000)) throw error;
      const refused = new Set(failure.writeErrors.map((e) => e.index ?? e.err?.index));
      ids.push(...batch.filter((_, index) => !refused.has(index)).map((r) => r._id));
    }
    await appendJournal(models, ids);
    written += ids.length;
    batch = [];
  };
  const tagOf = institutionTagger(models);
  for await (const response of models.Response.find({}, { campaign: 1, institution: 1, institutionTag: 1, revision: 1, submittedAt: 1, profile: 1, data: 1 }).lean().cursor({ batchSize: 500 })) {
    read += 1;
    if (!have.has(String(response._id))) {
      // An anonymous response carries its institution's tag; any other (and an anonymous one from before tags) its id.
      const stored = response as unknown as StoredSource & { institutionTag?: string };
      batch.push(isInstitutionTag(stored.institutionTag) ? recordOf({ ...stored, institution: stored.institutionTag! }, isText) : await taggedRecordOf(tagOf, stored, isText));
    }
    if (batch.length === 500) await flush();
    if (read % 1000 === 0) onProgress?.(read, written + batch.length);
  }
  await flush();
  if (read > 0) onProgress?.(read, written);
  // Recorded only at the end: a migration cut short runs again, skipping the records it wrote.
  await claimOnce(models, RECORDS_MIGRATION, now());
  return written;
}

function isDuplicateKey(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; writeErrors?: Array<{ code?: number; err?: { code?: number } }> };
  return e.code === 11000 || Boolean(e.writeErrors?.length && e.writeErrors.every((w) => (w.code ?? w.err?.code) === 11000));
}
