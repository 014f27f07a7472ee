import { randomBytes } from 'node:crypto';
import { Schema, type Connection, type Model, type Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { KEPT_MAX_AGE_MS, noteChange, type ChangeStampModel } from '../shared/change-stamp.ts';
import { insertNumbered, readNumbered } from '../shared/numbered-journal.ts';
import { followedStateTestHooks, newFollowedState, nextLoad, readWholeBeside, type FollowedState } from '../shared/followed-state.ts';

/**
 * The audit log's index: when, which action and which entry, for every entry,
 * kept in memory per connection, so that the audit page sorts, filters,
 * counts and pages without reading the log. On the embedded engine every
 * filter, sort, count or distinct reads every entry (the page made three such
 * reads a load, and the log only grows).
 *
 * Each new entry is followed by one of the log's journal (`audit_changes`): a
 * numbered entry (numbered-journal.ts) naming the log entry's id, time and
 * action, after which the writer sets the `audit` stamp to the value and
 * number of its journal entry. A page reads the stamp, and when it moved, the
 * journal entries after the last it applied, by _id. It reads the log whole
 * (its times, actions and ids) at its first load, and when the stamp names
 * no journal entry it applied or one is gone (a writer removes the one
 * AUDIT_CHANGES_KEPT before its own); every KEPT_MAX_AGE_MS it is read whole
 * again beside a load, which the index followed so far answers (a writer
 * that crashed between its entry and its journal entry shows then; at 5,000
 * entries the read takes ~0.7 s, which a load waited for). The entries a page
 * shows are then looked up by _id, so what an erasure or a retention purge
 * blanked in them shows at once; the time, action and id they are indexed by
 * never change. Journal entries name no person.
 */
const auditChangeSchema = new Schema(
  {
    _id: { type: String, required: true },
    v: { type: String, required: true },
    /** The log entry: its id, its time and its action. */
    e: { type: String, required: true },
    at: { type: Date, required: true },
    a: { type: String, required: true },
  },
  { versionKey: false },
);

interface AuditChangeEntry {
  _id: string;
  v: string;
  e: string;
  at: Date;
  a: string;
}

export function defineAuditChangeModel(connection: Connection): { AuditChange: Model<AuditChangeEntry> } {
  return { AuditChange: connection.model('AuditChange', auditChangeSchema, 'audit_changes') as unknown as Model<AuditChangeEntry> };
}

type JournalModels = { ChangeStamp: ChangeStampModel; AuditChange: Model<AuditChangeEntry> };
type IndexModels = JournalModels & Pick<Models, 'AuditEntry'>;

/** Journal entries kept: a page further behind reads the log whole. */
export const AUDIT_CHANGES_KEPT = 1_000;
const STAMP = 'all';
const changeId = (sequence: number) => String(sequence).padStart(10, '0');

async function auditStamp(models: { ChangeStamp: ChangeStampModel }): Promise<{ v: string; n: number }> {
  const stamp = await models.ChangeStamp.findById(`audit:${STAMP}`, { v: 1, n: 1 }).lean();
  return { v: stamp?.v ?? '', n: stamp?.n ?? 0 };
}

/** Journals a log entry just written: call it after the entry. */
export async function journalAuditEntry(models: JournalModels, entry: { _id: Types.ObjectId; at: Date; action: string }): Promise<void> {
  const v = randomBytes(8).toString('hex');
  const sequence = await insertNumbered((await auditStamp(models)).n + 1, (n) =>
    models.AuditChange.collection.insertOne({ _id: changeId(n), v, e: String(entry._id), at: entry.at, a: entry.action } as never),
  );
  if (sequence > AUDIT_CHANGES_KEPT) await models.AuditChange.deleteOne({ _id: changeId(sequence - AUDIT_CHANGES_KEPT) });
  await noteChange(models, 'audit', [STAMP], { v, n: sequence });
}

/** One log entry as the index holds it. */
interface Indexed {
  at: number;
  id: string;
  action: string;
}

interface AuditIndex {
  /** Newest first (time, then id, both descending), as the page lists them. */
  entries: Indexed[];
  ids: Set<string>;
  sorted: boolean;
  upTo: number;
  applied: string[];
  readWholeAt: number;
}

type Holder = FollowedState<AuditIndex>;

const indexes = new WeakMap<object, Holder>();
const reads = new WeakMap<object, { whole: number; entries: number }>();

/** How often this connection read the log whole for its index, and how many journal entries it applied instead. */
export function auditIndexReads(models: object): { whole: number; entries: number } {
  return { ...(reads.get(models) ?? { whole: 0, entries: 0 }) };
}

/** A page of the log, newest first, optionally one action only, with every action the log holds. */
export async function auditPage(models: IndexModels, query: { page: number; perPage: number; action?: string }) {
  let own = indexes.get(models);
  if (!own) indexes.set(models, (own = newFollowedState()));
  const holder = own;
  // One after another: a load never sees less than the one before it.
  const index = await nextLoad(holder, () => follow(models, holder));
  if (!index.sorted) {
    index.entries.sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    index.sorted = true;
  }
  const listed = query.action ? index.entries.filter((e) => e.action === query.action) : index.entries;
  const shown = listed.slice((query.page - 1) * query.perPage, query.page * query.perPage);
  const found = await Promise.all(shown.map((e) => models.AuditEntry.findById(e.id).lean()));
  return {
    entries: found.flatMap((entry) => (entry ? [entry] : [])),
    total: listed.length,
    pages: Math.max(1, Math.ceil(listed.length / query.perPage)),
    actions: [...new Set(index.entries.map((e) => e.action))].sort(),
  };
}

async function follow(models: IndexModels, holder: Holder): Promise<AuditIndex> {
  const index = holder.state;
  if (!index) return (holder.state = await readWhole(models));
  if (Date.now() - index.readWholeAt >= KEPT_MAX_AGE_MS) readWholeBeside(holder, () => readWhole(models));
  const stamp = await auditStamp(models);
  if (index.applied.includes(stamp.v)) return index;
  const entries = await readNumbered((n) => models.AuditChange.findById(changeId(n)).lean<AuditChangeEntry>(), index.upTo, stamp.n);
  if (!entries) return (holder.state = await readWhole(models));
  for (const entry of entries) {
    if (!index.ids.has(entry.e)) {
      index.ids.add(entry.e);
      index.entries.push({ at: entry.at.getTime(), id: entry.e, action: entry.a });
      index.sorted = false;
    }
    index.upTo = Number(entry._id);
    index.applied.push(entry.v);
  }
  index.applied.splice(0, Math.max(0, index.applied.length - 64));
  tally(models).entries += entries.length;
  // A stamp no journal entry set: read whole.
  if (!index.applied.includes(stamp.v)) return (holder.state = await readWhole(models));
  return index;
}

/** Lets a test make the kept index as old as it likes, and wait for a read in the background. */
export const auditIndexTestHooks = {
  age: (models: object, ms: number) => followedStateTestHooks.age(indexes.get(models), ms),
  refreshed: (models: object) => followedStateTestHooks.refreshed(indexes.get(models)),
};

async function readWhole(models: IndexModels): Promise<AuditIndex> {
  // The stamp before the log: every journal entry up to its number names a log entry written before it.
  const [stamp, readWholeAt] = [await auditStamp(models), Date.now()];
  const all = await models.AuditEntry.find({}, { at: 1, action: 1 }).lean();
  tally(models).whole += 1;
  const entries = all.map((e) => ({ at: e.at.getTime(), id: String(e._id), action: e.action }));
  return { entries, ids: new Set(entries.map((e) => e.id)), sorted: false, upTo: stamp.n, applied: [stamp.v], readWholeAt };
}

function tally(models: object) {
  let own = reads.get(models);
  if (!own) reads.set(models, (own = { whole: 0, entries: 0 }));
  return own;
}
