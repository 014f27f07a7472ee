import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Schema, Types, type Connection, type Model } from 'mongoose';
import type { Models } from '../db/models.ts';
import {
  FOLLOWER_LEASE_MS,
  isDuplicateKey,
  journalFloor,
  journalHead,
  journalId,
  lookBack,
  scrubJournal,
  type AnalyticRecordDoc,
  type JournalEntry,
  type JournalTimings,
} from './analytic-record.ts';

/**
 * A packed snapshot of the analytic records, so that a process starting up
 * reads a few hundred documents instead of one per record: on FerretDB v1 a
 * record read costs 1.3–2.8 ms whatever its size, a bucket of 500 records
 * deflated into one binary field ~16 ms.
 *
 * A generation is the records as a load would have had them at one journal
 * position, in buckets `<generation>:<index>`. The pointer to it is written
 * last, by a unique insert of the next pointer number (so, without
 * transactions, a half-written generation is never named, and of two
 * builders or an erasure and a builder that read the same pointer only the
 * first to switch wins; the other drops what it wrote). Builders do not get
 * that far as a rule: a build first claims the generation after the pointer
 * it read, by a unique insert (claimBuild), and a follower that finds it
 * claimed leaves the build to the claimant. A pointer names the
 * generation and the journal entry a load follows from (`f`): the head
 * noted before the records were read, moved back before the first intent
 * the generation does not fulfil (followFrom), so every change it may lack
 * is in the journal after that entry. A pointer without a
 * generation says there is none (a migration rewrote records): loads read
 * every record until the next build.
 *
 * An erasure removes its records' ids from the current generation before it
 * scrubs them from the journal (eraseFromEvidence): so a loader that meets a
 * scrubbed entry while the pointer has not changed since it read it knows
 * the generation it loaded did not hold that record.
 *
 * A generation may carry its records' counts too (`c` chunks `<generation>:c<index>`,
 * an evidence-store.ts image deflated): what counting its records in bucket
 * order gives, made by the builder, so a load copies arrays instead of
 * decoding and counting every record (at 50,000 records most of a load's
 * CPU). Written before the pointer as the buckets are, and for a generation
 * only: a load that finds a chunk gone, or an image made for other
 * questions or tables, counts the records as before.
 */
const pointerSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The generation's id; absent: no snapshot (loads read every record). */
    g: { type: String },
    /** The journal entry after which a load follows. */
    f: { type: Number },
    /** The journal's head when the generation was read. */
    h: { type: Number },
    records: { type: Number },
    buckets: { type: Number },
    /** Chunks of the generation's counts (none: a load counts its records). */
    c: { type: Number },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);

const bucketSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The records, one a line, tab-separated (packRecord), deflated. */
    d: { type: Buffer, required: true },
  },
  { versionKey: false },
);

export interface SnapshotPointer {
  _id: string;
  g?: string;
  f?: number;
  h?: number;
  records?: number;
  buckets?: number;
  c?: number;
  at: Date;
}

export function defineRecordSnapshotModels(connection: Connection) {
  return {
    EvidenceSnapshot: connection.model('EvidenceSnapshot', pointerSchema, 'evidence_snapshots') as unknown as Model<SnapshotPointer>,
    EvidenceSnapshotBucket: connection.model('EvidenceSnapshotBucket', bucketSchema, 'evidence_snapshot_buckets') as unknown as Model<{ _id: string; d: Buffer }>,
  };
}

type SnapshotModels = Pick<Models, 'AnalyticRecord' | 'EvidenceJournal' | 'EvidenceFollower' | 'EvidenceSnapshot' | 'EvidenceSnapshotBucket'>;
type PointerModels = Pick<Models, 'EvidenceSnapshot'>;

/** Records per bucket: ~100 KB deflated, ~0.6 MB as text. */
export const SNAPSHOT_BUCKET_RECORDS = 500;
/**
 * A new generation is built once the journal has this many entries past the
 * last one's head: a load follows them one by one (two look-ups and, for a
 * revision, the record counted out and in: 500 took 45 s at 20,000 records,
 * load average 16-19), a build rewrites every bucket (~5 s at 50,000) and,
 * with counts, counts every record again (~5 s of CPU more at 50,000, in a
 * worker thread: counts-thread.ts).
 */
export const SNAPSHOT_AFTER_ENTRIES = 200;
/** A generation no pointer names is removed once it is this old (a build in progress is younger). */
const ABANDONED_AFTER_MS = 60 * 60_000;

// ---------------------------------------------------------------------------
// Packing

/** One record as one line: fields tab-separated (JSON escapes tabs and newlines inside p and a; ids and tags have none). */
function packRecord(doc: AnalyticRecordDoc): string {
  return `${String(doc._id)}\t${String(doc.campaign)}\t${doc.institution}\t${doc.revision}\t${new Date(doc.at).getTime()}\t${doc.p}\t${doc.a}`;
}

export function unpackRecord(line: string): AnalyticRecordDoc {
  const [id, campaign, institution, revision, at, p, a] = line.split('\t') as [string, string, string, string, string, string, string];
  return { _id: new Types.ObjectId(id), campaign: new Types.ObjectId(campaign), institution, revision: Number(revision), at: new Date(Number(at)), p, a };
}

function packBucket(lines: readonly string[]): Buffer {
  return deflateRawSync(lines.join('\n'), { level: 1 });
}

/** A field's bytes as read: a BSON Binary (its bytes up to its position), or bytes. */
function bytesOf(data: unknown): Uint8Array {
  const binary = data as { buffer: Uint8Array; position: number };
  return data instanceof Uint8Array ? data : binary.buffer.subarray(0, binary.position);
}

/** A bucket's lines, from its field as read (or as written: a generation's buckets are what its counts are made from). */
export function unpackBucket(data: unknown): string[] {
  const text = inflateRawSync(bytesOf(data)).toString('utf8');
  return text === '' ? [] : text.split('\n');
}

const bucketId = (generation: string, index: number) => `${generation}:${String(index).padStart(6, '0')}`;
const countsId = (generation: string, index: number) => `${generation}:c${String(index).padStart(6, '0')}`;
const isCounts = (id: string) => id.includes(':c');
/** Bytes of counts per chunk before deflating (an image at 50,000 records is ~40 MB, mostly zeros). */
const COUNTS_CHUNK_BYTES = 4 << 20;

/**
 * What makes a generation's counts (EvidenceStore.image) from its buckets as
 * written (deflated lines, unpackBucket and unpackRecord), in order; null:
 * none kept. Bytes rather than records, so that a worker thread can be
 * handed them (indicator.service.ts counts there, off the server's loop).
 */
export type CountsOf = (buckets: readonly Uint8Array[]) => Promise<Buffer | null>;
const pointerId = (sequence: number) => journalId(sequence);

// ---------------------------------------------------------------------------
// The pointer

/** The newest pointer and its number (0 and null when no snapshot was ever built). */
export async function currentSnapshot(models: PointerModels): Promise<{ sequence: number; pointer: SnapshotPointer | null }> {
  const { sequence, pointer } = await snapshotState(models);
  return { sequence, pointer };
}

/**
 * The pointers and the build claims (buildSnapshot), in one read: a handful
 * of small documents, since older pointers and claims are removed as new
 * ones come. Pointer ids are digits only, claim ids start with BUILD.
 */
async function snapshotState(models: PointerModels): Promise<{ sequence: number; pointer: SnapshotPointer | null; pointers: SnapshotPointer[]; claims: Array<{ _id: string; at: Date }> }> {
  const documents = await models.EvidenceSnapshot.find({}).lean<SnapshotPointer[]>();
  const pointers = documents.filter((d) => !d._id.startsWith(BUILD));
  const claims = documents.filter((d) => d._id.startsWith(BUILD));
  const pointer = pointers.reduce<SnapshotPointer | null>((newest, p) => (!newest || p._id > newest._id ? p : newest), null);
  return { sequence: pointer ? Number(pointer._id) : 0, pointer, pointers, claims };
}

/**
 * A build's claim on the generation after pointer `sequence`:
 * `build:<sequence>:<attempt>`. The first process to insert it builds; any
 * other that read the same pointer leaves it to that one, and uses its
 * generation once switched to. A claim older than the lease is taken over by
 * a unique insert of the next attempt (its builder died, or is slower than
 * the lease: then both build, and the switch decides as before).
 */
const BUILD = 'build:';
const claimId = (sequence: number, attempt: number) => `${BUILD}${journalId(sequence)}:${String(attempt).padStart(3, '0')}`;
const claimSequence = (id: string) => Number(id.slice(BUILD.length).split(':')[0]);

async function claimBuild(models: PointerModels, sequence: number, claims: ReadonlyArray<{ _id: string; at: Date }>, leaseMs: number): Promise<string | null> {
  const mine = claims.filter((c) => claimSequence(c._id) === sequence).sort((a, b) => (a._id < b._id ? 1 : -1));
  const last = mine[0];
  if (last && new Date(last.at).getTime() > Date.now() - leaseMs) return null;
  const id = claimId(sequence, last ? Number(last._id.split(':').at(-1)) + 1 : 1);
  try {
    await models.EvidenceSnapshot.collection.insertOne({ _id: id, at: new Date() } as never);
    return id;
  } catch (error) {
    if (isDuplicateKey(error)) return null;
    throw error;
  }
}

/** Switches to a new pointer if none came after `sequence`; false when another did first. */
async function switchPointer(models: PointerModels, sequence: number, fields: Omit<SnapshotPointer, '_id' | 'at'>): Promise<boolean> {
  const id = pointerId(sequence + 1);
  try {
    await models.EvidenceSnapshot.collection.insertOne({ _id: id, ...fields, at: new Date() } as never);
  } catch (error) {
    if (isDuplicateKey(error)) return false;
    throw error;
  }
  // A number whose pointer was removed since (removeUnnamed keeps the last two) is free again, yet not the newest: lost too.
  if ((await currentSnapshot(models)).sequence <= sequence + 1) return true;
  await models.EvidenceSnapshot.deleteOne({ _id: id });
  return false;
}

/**
 * Says there is no snapshot any more (a migration rewrote records without
 * the journal's look-back being enough to vouch for the last generation):
 * loads read every record until the next build. A build under way when this
 * is written loses its switch.
 */
export async function invalidateSnapshot(models: PointerModels): Promise<void> {
  for (;;) {
    const { sequence } = await currentSnapshot(models);
    if (await switchPointer(models, sequence, {})) return;
  }
}

// ---------------------------------------------------------------------------
// Reading

/**
 * Hands every record of the pointer's generation to `onRecord`, bucket by
 * bucket. False when a bucket is gone (an erasure or a later build removed
 * the generation meanwhile): the caller reads the records instead.
 */
export async function readSnapshot(models: Pick<Models, 'EvidenceSnapshotBucket'>, pointer: SnapshotPointer, onRecord: (doc: AnalyticRecordDoc) => void, signal?: { stopped: boolean }): Promise<boolean> {
  for (let index = 0; index < (pointer.buckets ?? 0); index++) {
    if (signal?.stopped) return false;
    const bucket = await models.EvidenceSnapshotBucket.collection.findOne({ _id: bucketId(pointer.g!, index) as never });
    if (!bucket) return false;
    for (const line of unpackBucket(bucket.d)) onRecord(unpackRecord(line));
  }
  return true;
}

/** The pointer's generation's counts (an EvidenceStore image), or null when it has none or a chunk is gone. */
export async function readCounts(models: Pick<Models, 'EvidenceSnapshotBucket'>, pointer: SnapshotPointer): Promise<Buffer | null> {
  if (!pointer.g || !pointer.c) return null;
  const chunks: Buffer[] = [];
  for (let index = 0; index < pointer.c; index++) {
    const chunk = await models.EvidenceSnapshotBucket.collection.findOne({ _id: countsId(pointer.g, index) as never });
    if (!chunk) return null;
    chunks.push(inflateRawSync(bytesOf(chunk.d)));
  }
  return Buffer.concat(chunks);
}

/**
 * Hands the id of every record of the pointer's generation to `onId`, bucket
 * by bucket, nothing else unpacked (what a follower compares its records
 * with after an erasure). False when a bucket is gone.
 */
export async function readSnapshotIds(models: Pick<Models, 'EvidenceSnapshotBucket'>, pointer: SnapshotPointer, onId: (id: string) => void): Promise<boolean> {
  for (let index = 0; index < (pointer.buckets ?? 0); index++) {
    const bucket = await models.EvidenceSnapshotBucket.collection.findOne({ _id: bucketId(pointer.g!, index) as never });
    if (!bucket) return false;
    for (const line of unpackBucket(bucket.d)) onId(line.slice(0, line.indexOf('\t')));
  }
  return true;
}

// ---------------------------------------------------------------------------
// Building

/** A pause before a build switches to its generation, for the test that erases a person there (tests/evidence/record-snapshot.test.ts). */
export const snapshotTestHooks: { beforeSwitch?: () => Promise<void> } = {};

export interface BuildResult {
  /** Whether a new generation is now named. */
  built: boolean;
  /** Why not: fresh enough, another process (or another follower of this one) is building it, or another switched first. */
  reason?: 'fresh' | 'claimed' | 'lost';
  records?: number;
  /** Whether it was made from the last generation and the journal since (else from every record). */
  incremental?: boolean;
  /** The journal's head when the generation now named was read (unknown when another process switched first). */
  head?: number;
}

/**
 * Builds a new generation when the journal has moved SNAPSHOT_AFTER_ENTRIES
 * past the last one (or there is none), from the last generation and the
 * journal after it (reading only the records it names), or from every record
 * when there is no generation or the journal after it is no longer whole,
 * once it has claimed that generation (claimBuild: 'claimed' when another
 * has). Then removes the generations no pointer of the last two names. Runs
 * in the background (the follower that compacts the journal), never on a page.
 */
export async function buildSnapshot(
  models: SnapshotModels,
  options: Pick<JournalTimings, 'graceMs' | 'clockSkewMs' | 'leaseMs'> & { afterEntries?: number; bucketRecords?: number; countsOf?: CountsOf } = {},
): Promise<BuildResult> {
  const started = Date.now();
  // Read first: any erasure or migration after this wins the switch, so what this build read before them is never named.
  const { sequence, pointer, claims } = await snapshotState(models);
  const head = await journalHead(models);
  if (pointer?.g && head - (pointer.h ?? 0) < (options.afterEntries ?? SNAPSHOT_AFTER_ENTRIES)) return { built: false, reason: 'fresh', head: pointer.h };
  // One build per generation: every follower that sees the journal move on would otherwise read and write every bucket too, to lose the switch.
  const claim = await claimBuild(models, sequence, claims, options.leaseMs ?? FOLLOWER_LEASE_MS);
  if (!claim) return { built: false, reason: 'claimed' };
  try {
    return await buildClaimed(models, { ...options, started, sequence, pointer, head });
  } catch (error) {
    // Failed, not died: the next follower's turn may try again at once rather than after the lease.
    await models.EvidenceSnapshot.deleteOne({ _id: claim }).catch(() => undefined);
    throw error;
  }
}

async function buildClaimed(
  models: SnapshotModels,
  options: Pick<JournalTimings, 'graceMs' | 'clockSkewMs' | 'leaseMs'> & { bucketRecords?: number; countsOf?: CountsOf; started: number; sequence: number; pointer: SnapshotPointer | null; head: number },
): Promise<BuildResult> {
  const { started, sequence, pointer, head } = options;
  const lines = new Map<string, string>();
  /** Intents read on the way (position, entry), to tell which the generation does not fulfil. */
  const intents: Array<[number, JournalEntry]> = [];
  const noteIntent = (position: number, entry: JournalEntry) => (entry.v !== undefined || entry.x) && intents.push([position, entry]);
  let incremental = false;
  if (pointer?.g && (await journalFloor(models)) <= (pointer.f ?? 0) + 1) {
    incremental = await readSnapshot(models, pointer, (doc) => lines.set(String(doc._id), packRecord(doc)));
    for (let position = (pointer.f ?? 0) + 1; incremental && position <= head; position++) {
      const entry = await models.EvidenceJournal.findById(journalId(position)).lean();
      // Compacted meanwhile: read every record instead.
      if (!entry) incremental = false;
      // A scrubbed entry: its erasure removed the record from the generation read above before scrubbing (the switch below fails otherwise).
      else if (entry.r) {
        const record = await models.AnalyticRecord.findById(entry.r).lean<AnalyticRecordDoc>();
        if (record) lines.set(String(entry.r), packRecord(record));
        else lines.delete(String(entry.r));
        noteIntent(position, entry);
      }
    }
  }
  if (!incremental) {
    lines.clear();
    intents.length = 0;
    for await (const doc of models.AnalyticRecord.find({}).lean<AnalyticRecordDoc[]>().cursor({ batchSize: 1000 })) lines.set(String(doc._id), packRecord(doc as AnalyticRecordDoc));
  }
  const follow = await followFrom(models, { ...options, incrementalFrom: incremental ? (pointer!.f ?? 0) : undefined, lines, intents });
  const generation = await writeGeneration(models, [...lines.values()], options.bucketRecords);
  // Counted in the order the buckets hold the records: what a load counting them would hold.
  const counts = options.countsOf ? await writeCounts(models, generation.id, await options.countsOf(generation.packed)) : 0;
  await snapshotTestHooks.beforeSwitch?.();
  if (!(await switchPointer(models, sequence, { g: generation.id, f: follow, h: head, records: lines.size, buckets: generation.buckets, ...(counts ? { c: counts } : {}) }))) {
    await removeBuckets(models, generation.id, generation.buckets, counts);
    return { built: false, reason: 'lost' };
  }
  await removeUnnamed(models);
  return { built: true, records: lines.size, incremental, head };
}

/**
 * Where a load from the generation must begin following: before the first
 * intent the generation does not fulfil (its record read before the write it
 * announces, or the removal), if that intent is of the last grace (its
 * writer may still be at work, as for a load's look-back) or is the last of
 * its record within the lease (its writer died; a follower repairs it, and a
 * load must see it to do so). Every other entry up to the head is in the
 * generation already: plain entries name records written before them, so
 * before the head was noted and the records read.
 */
async function followFrom(
  models: Pick<Models, 'EvidenceJournal' | 'EvidenceFollower'>,
  options: Pick<JournalTimings, 'graceMs' | 'clockSkewMs' | 'leaseMs'> & { head: number; started: number; incrementalFrom?: number; lines: Map<string, string>; intents: Array<[number, JournalEntry]> },
): Promise<number> {
  const window = await lookBack(models, options.head, options.started, options);
  const intents = [...options.intents];
  // The entries of the last grace that the build has not read on its way.
  for (let position = window + 1; position <= (options.incrementalFrom ?? options.head); position++) {
    const entry = await models.EvidenceJournal.findById(journalId(position)).lean();
    if (entry?.r && (entry.v !== undefined || entry.x)) intents.push([position, entry]);
  }
  const last = new Map<string, number>();
  for (const [position, entry] of intents) last.set(String(entry.r), Math.max(last.get(String(entry.r)) ?? 0, position));
  const stale = options.started - (options.leaseMs ?? FOLLOWER_LEASE_MS);
  let follow = options.head;
  for (const [position, entry] of intents) {
    const line = options.lines.get(String(entry.r));
    const revision = line === undefined ? undefined : Number(line.split('\t', 4)[3]);
    const fulfilled = entry.x ? revision === undefined : revision !== undefined && revision >= entry.v!;
    if (fulfilled) continue;
    if (position > window || (last.get(String(entry.r)) === position && (entry.t?.getTime() ?? 0) > stale)) follow = Math.min(follow, position - 1);
  }
  return follow;
}

/** Writes the buckets of a new generation; its id, how many, and their bytes as written (what its counts are made from). */
async function writeGeneration(
  models: Pick<Models, 'EvidenceSnapshotBucket'>,
  lines: readonly string[],
  bucketRecords = SNAPSHOT_BUCKET_RECORDS,
): Promise<{ id: string; buckets: number; packed: Buffer[] }> {
  const id = new Types.ObjectId().toHexString();
  const packed: Buffer[] = [];
  for (let start = 0; start < lines.length; start += bucketRecords) {
    const bytes = packBucket(lines.slice(start, start + bucketRecords));
    await models.EvidenceSnapshotBucket.collection.insertOne({ _id: bucketId(id, packed.length) as never, d: bytes });
    packed.push(bytes);
  }
  return { id, buckets: packed.length, packed };
}

/** Writes a generation's counts in deflated chunks; how many (0: none). */
async function writeCounts(models: Pick<Models, 'EvidenceSnapshotBucket'>, generation: string, image: Buffer | null): Promise<number> {
  if (!image) return 0;
  let chunks = 0;
  for (let start = 0; start < image.length; start += COUNTS_CHUNK_BYTES) {
    // Each chunk deflated alone: a chunk is read (and could be checked) by itself.
    await models.EvidenceSnapshotBucket.collection.insertOne({ _id: countsId(generation, chunks) as never, d: deflateRawSync(image.subarray(start, start + COUNTS_CHUNK_BYTES), { level: 1 }) });
    chunks += 1;
  }
  return chunks;
}

async function removeBuckets(models: Pick<Models, 'EvidenceSnapshotBucket'>, generation: string, buckets: number, counts = 0): Promise<void> {
  // By _id one by one: the only filter the embedded engine answers from an index.
  for (let index = 0; index < buckets; index++) await models.EvidenceSnapshotBucket.deleteOne({ _id: bucketId(generation, index) });
  for (let index = 0; index < counts; index++) await models.EvidenceSnapshotBucket.deleteOne({ _id: countsId(generation, index) });
}

/**
 * Removes the pointers before the last two (and the build claims on them),
 * and the buckets of generations neither names: those of a build that lost
 * its switch or died, once older than a build takes. The last generation but
 * one is kept for loads that began before the switch, and the claims on the
 * last two for builders that read the pointer before the switch.
 */
async function removeUnnamed(models: Pick<Models, 'EvidenceSnapshot' | 'EvidenceSnapshotBucket'>): Promise<void> {
  const state = await snapshotState(models);
  const pointers = state.pointers.sort((a, b) => (a._id < b._id ? 1 : -1));
  const kept = new Set(pointers.slice(0, 2).flatMap((p) => (p.g ? [p.g] : [])));
  const old = [...pointers.slice(2).map((p) => p._id), ...state.claims.filter((c) => claimSequence(c._id) < state.sequence - 1).map((c) => c._id)];
  if (old.length > 0) await models.EvidenceSnapshot.deleteMany({ _id: { $in: old } });
  // Bucket documents are read whole to list them (~16 ms each): a few hundred, in the background.
  const abandoned = Date.now() - ABANDONED_AFTER_MS;
  for await (const bucket of models.EvidenceSnapshotBucket.find({}, { _id: 1 }).lean().cursor({ batchSize: 50 })) {
    const generation = String(bucket._id).split(':')[0]!;
    if (!kept.has(generation) && Types.ObjectId.isValid(generation) && new Types.ObjectId(generation).getTimestamp().getTime() < abandoned) {
      await models.EvidenceSnapshotBucket.deleteOne({ _id: bucket._id });
    }
  }
}

// ---------------------------------------------------------------------------
// Erasure

/**
 * Removes erased records from the snapshot, then their ids from the journal:
 * the one way an erasure or a retention purge forgets records in the
 * evidence. A new generation without them is switched to (every other
 * record kept, the same journal position), then every bucket still holding
 * one of them is deleted, whichever generation it belongs to. Erasures are
 * rare; reading every bucket costs ~16 ms a bucket.
 *
 * Even when the snapshot does not hold them a new pointer is switched to: a
 * build that read these records before their removal then loses its switch.
 */
export async function eraseFromEvidence(models: SnapshotModels, ids: readonly Types.ObjectId[]): Promise<void> {
  if (ids.length === 0) return;
  const erased = new Set(ids.map(String));
  const isErased = (line: string) => erased.has(line.slice(0, line.indexOf('\t')));
  /** The generation whose counts the new pointer names. */
  let kept: string | undefined;
  for (;;) {
    const { sequence, pointer } = await currentSnapshot(models);
    let next: Omit<SnapshotPointer, '_id' | 'at'> = {};
    let written: { id: string; buckets: number } | undefined;
    if (pointer?.g) {
      const lines: string[] = [];
      let holds = false;
      const whole = await readSnapshot(models, pointer, (doc) => {
        const line = packRecord(doc);
        if (isErased(line)) holds = true;
        else lines.push(line);
      });
      // The same generation (and its counts) under a new pointer when it holds none of them; none at all when it could not be read whole.
      if (whole && !holds) next = { g: pointer.g, f: pointer.f, h: pointer.h, records: pointer.records, buckets: pointer.buckets, ...(pointer.c ? { c: pointer.c } : {}) };
      else if (whole) {
        written = await writeGeneration(models, lines);
        next = { g: written.id, f: pointer.f, h: pointer.h, records: lines.length, buckets: written.buckets };
      }
    }
    if (await switchPointer(models, sequence, next)) {
      kept = next.c ? next.g : undefined;
      break;
    }
    if (written) await removeBuckets(models, written.id, written.buckets);
  }
  for await (const bucket of models.EvidenceSnapshotBucket.find({}).lean().cursor({ batchSize: 10 })) {
    // Counts hold their records' ids too: only those of the generation now named, which holds none of them, stay (a load without them counts the records).
    const remove = isCounts(bucket._id) ? bucket._id.split(':')[0] !== kept : unpackBucket(bucket.d).some(isErased);
    if (remove) await models.EvidenceSnapshotBucket.deleteOne({ _id: bucket._id });
  }
  await scrubJournal(models, ids);
}
