import { createHash, randomBytes } from 'node:crypto';
import { Types } from 'mongoose';
import type { Collection } from 'mongodb';
import type { Models } from '../db/models.ts';
import type { Language } from '../shared/languages.ts';
import { OUTBOX_STATES, type MessageKind, type OutboxDue, type OutboxIntent, type OutboxMessage, type OutboxOutcome, type OutboxState, type OutcomeState } from './outbox.model.ts';
import { EmailChanges, journalEmailChanges } from './email-changes.ts';
import { EmailLedger } from './email-ledger.ts';
import { noteChange } from '../shared/change-stamp.ts';
import { noteContactsChange } from '../shared/contact-changes.ts';

export interface OutboxDeps {
  models: Models;
  now: () => Date;
}

export interface MessageToEnqueue {
  campaign: Types.ObjectId;
  contact: Types.ObjectId;
  invitation: Types.ObjectId;
  to: string;
  language: Language;
}

/**
 * Puts one message per recipient in the outbox. Idempotent: the unique
 * (campaign, contact, kind, round) index refuses a second copy, so enqueueing
 * the same round twice, or from two processes at once, adds nothing.
 * Returns how many messages were new.
 */
/**
 * Whether a contact may get any email: active, not unsubscribed, and not on
 * the suppression list (bounced or unsubscribed address).
 */
export function canMail(
  contact: { active?: boolean | null; unsubscribedAt?: Date | null; email: string },
  suppressed: ReadonlySet<string>,
): boolean {
  return contact.active !== false && !contact.unsubscribedAt && !suppressed.has(contact.email);
}

export async function enqueueMessages(deps: OutboxDeps, kind: MessageKind, round: number, recipients: readonly MessageToEnqueue[]): Promise<number> {
  const now = deps.now();
  let added = 0;
  // Chunks keep each insert command well under the wire limits for tens of thousands of contacts.
  for (let start = 0; start < recipients.length; start += 1000) {
    const docs = recipients.slice(start, start + 1000).map((r) => ({
      _id: new Types.ObjectId(),
      campaign: r.campaign,
      contact: r.contact,
      invitation: r.invitation,
      kind,
      round,
      to: r.to.toLowerCase(),
      language: r.language,
      nextAttemptAt: now,
      createdAt: now,
      updatedAt: now,
    }));
    added += await insertMessages(deps, docs);
  }
  if (added > 0) await signalOutboxChange(deps);
  // Pages that keep what they computed from a campaign's emails (the confirmation's count) look at its "rounds" stamp; test sends are not counted there.
  if (added > 0 && kind !== 'test') await noteChange(deps.models, 'rounds', recipients.map((r) => r.campaign));
  return added;
}

type NewMessage = Omit<OutboxMessage, 'invitation' | 'createdAt' | 'updatedAt'> & { invitation?: Types.ObjectId | null; createdAt: Date; updatedAt: Date };

/**
 * Writes new messages to the outbox, the unique index refusing copies, and
 * then the due entries of those it wrote (never of a refused copy, which
 * would be a second message) and their campaigns' email journal entries
 * (test sends apart), under an intent naming them, so that a crash between
 * the writes is repaired (repairIntents). Returns how many were new.
 */
export async function insertMessages(deps: { models: Pick<Models, 'Outbox' | 'OutboxDue' | 'OutboxIntent' | 'ChangeStamp' | 'EmailChange'>; now: () => Date }, docs: NewMessage[]): Promise<number> {
  if (docs.length === 0) return 0;
  return withIntent(deps, { messages: docs.map((doc) => doc._id) }, async () => {
    const inserted = await insertIgnoringDuplicates(deps.models.Outbox.collection, docs);
    const written = docs.filter((_, index) => inserted.has(index));
    await insertIgnoringDuplicates(deps.models.OutboxDue.collection, dueBatchEntries(written));
    await journalMessages(deps.models, written);
    return inserted.size;
  });
}

/** Messages queued, in their campaigns' email journals (email-changes.ts): the sending page counts them from there. Test sends are never counted. */
async function journalMessages(models: Pick<Models, 'ChangeStamp' | 'EmailChange'>, messages: ReadonlyArray<Pick<OutboxMessage, '_id' | 'campaign' | 'kind' | 'round'>>): Promise<void> {
  const changes = new EmailChanges();
  for (const m of messages) if (m.kind !== 'test') changes.add(m.campaign, { message: [String(m._id), m.round] });
  if (changes.size > 0) await journalEmailChanges(models, changes);
}

/**
 * Runs writes that the due view must follow under an intent (OutboxIntent):
 * written before them, removed after them. A write that fails or a crash
 * leaves the intent, and a sender finishes the due entries from it.
 */
async function withIntent<T>(
  deps: { models: Pick<Models, 'OutboxIntent'>; now: () => Date },
  what: { messages?: Types.ObjectId[]; retries?: string[] },
  write: () => Promise<T>,
): Promise<T> {
  const _id = new Types.ObjectId().toHexString();
  await deps.models.OutboxIntent.create({ _id, at: deps.now(), ...what });
  const result = await write();
  await deps.models.OutboxIntent.deleteOne({ _id });
  return result;
}

/** An intent younger than this is a writer at work, not a crash: it is left to its writer. */
export const INTENT_GRACE_MS = 120_000;
/**
 * An intent naming writes still not found this long after it is given up:
 * they were never made (the crash came first) or were refused (a copy of a
 * message already queued); no writer stalls this long between two writes.
 */
const INTENT_HORIZON_MS = 3_600_000;

/** The intents a repair would look at now: older than the grace period, and not looked at within it. */
export async function intentsToRepair(deps: { models: Pick<Models, 'OutboxIntent'>; now: () => Date }, graceMs = INTENT_GRACE_MS): Promise<OutboxIntent[]> {
  const before = deps.now().getTime() - graceMs;
  // The collection holds one document per batch being written (and those a crash left): it is read whole.
  return (await deps.models.OutboxIntent.find({}).lean<OutboxIntent[]>()).filter((intent) => (intent.checkedAt ?? intent.at).getTime() <= before);
}

/**
 * Puts back the due entries a crash kept from being written, from the
 * intents it left (OutboxIntent): a message that was written and never
 * claimed gets its first attempt's entry, an attempt whose outcome a
 * coordinator turned into a retry gets the next attempt's entry unless that
 * is claimed already. Each by _id look-ups of what the intent names (on
 * FerretDB those come from the index), never a read of the outbox. An entry
 * put back twice (two senders, or the writer still at work) is refused by
 * its unique _id, and an entry is a guide, never the judge (see OutboxDue):
 * nothing is sent twice. What the intent names and is not written yet keeps
 * it (narrowed to those) until INTENT_HORIZON_MS. Returns how many entries
 * were put back.
 */
export async function repairIntents(deps: OutboxDeps, graceMs = INTENT_GRACE_MS): Promise<number> {
  const intents = await intentsToRepair(deps, graceMs);
  let added = 0;
  for (const intent of intents) {
    const [messages, retries] = await Promise.all([dueOfMessages(deps.models, intent.messages ?? []), dueOfRetries(deps.models, intent.retries ?? [])]);
    added += (await insertIgnoringDuplicates(deps.models.OutboxDue.collection, [...messages.entries, ...retries.entries])).size;
    // The writer may have stopped before its journal entry too: what is written is journalled (again: an entry read twice changes nothing).
    await journalMessages(deps.models, messages.found);
    const changed = retries.found.reduce((changes, o) => changes.add(o.campaign, { outcome: [o._id, o.state] }), new EmailChanges());
    if (changed.size > 0) await journalEmailChanges(deps.models, changed);
    const settled = messages.missing.length === 0 && retries.missing.length === 0;
    if (settled || intent.at.getTime() <= deps.now().getTime() - INTENT_HORIZON_MS) await deps.models.OutboxIntent.deleteOne({ _id: intent._id });
    else await deps.models.OutboxIntent.updateOne({ _id: intent._id }, { $set: { messages: messages.missing, retries: retries.missing, checkedAt: deps.now() } });
  }
  if (added > 0) await signalOutboxChange(deps);
  return added;
}

/** Look-ups by _id, a hundred at a time. */
async function byIds<T, R>(ids: readonly T[], look: (id: T) => Promise<R>): Promise<R[]> {
  const found: R[] = [];
  for (let start = 0; start < ids.length; start += 100) found.push(...(await Promise.all(ids.slice(start, start + 100).map(look))));
  return found;
}

/** Messages an intent names: the first attempt's entry of those written and never claimed; those not written are missing. */
async function dueOfMessages(models: Pick<Models, 'Outbox' | 'OutboxClaim'>, ids: readonly Types.ObjectId[]) {
  const found = await byIds(ids, (id) =>
    Promise.all([models.Outbox.findById(id).lean<OutboxMessage>(), models.OutboxClaim.findById(`${id}:0`, { _id: 1 }).lean()]),
  );
  const entries: OutboxDue[] = [];
  const missing: Types.ObjectId[] = [];
  found.forEach(([message, claimed], index) => {
    if (!message) missing.push(ids[index]!);
    else if (!claimed) entries.push(dueEntry(message, 0, message.nextAttemptAt));
  });
  return { entries, missing, found: found.flatMap(([message]) => (message ? [message] : [])) };
}

/**
 * Attempts an intent names as turned into retries: the next attempt's entry
 * of those whose outcome says retry; one still failed or unknown is missing
 * (the change is not written yet, or never will be).
 */
async function dueOfRetries(models: Pick<Models, 'Outbox' | 'OutboxClaim' | 'OutboxOutcome'>, ids: readonly string[]) {
  const found = await byIds(ids, async (id) => {
    const outcome = await models.OutboxOutcome.findById(id, { message: 1, campaign: 1, attempt: 1, state: 1, at: 1, nextAttemptAt: 1 }).lean();
    if (outcome?.state !== 'retry') return { id, outcome };
    const [message, claimed] = await Promise.all([
      models.Outbox.findById(outcome.message).lean<OutboxMessage>(),
      models.OutboxClaim.findById(`${outcome.message}:${outcome.attempt + 1}`, { _id: 1 }).lean(),
    ]);
    return { id, outcome, entry: message && !claimed ? dueEntry(message, outcome.attempt + 1, outcome.nextAttemptAt ?? outcome.at) : undefined };
  });
  return {
    entries: found.flatMap((f) => (f.entry ? [f.entry] : [])),
    missing: found.filter((f) => f.outcome?.state === 'failed' || f.outcome?.state === 'unknown').map((f) => f.id),
    found: found.flatMap((f) => (f.outcome ? [{ ...f.outcome, _id: f.id }] : [])),
  };
}

/** A message with the attempt number it is due for. */
export interface DueMessage {
  message: OutboxMessage;
  attempt: number;
  /** The batch entry that holds this first attempt (see OutboxDue), and how many messages it names. */
  batch?: { id: string; size: number };
}

type DueFields = Pick<NewMessage, '_id' | 'campaign' | 'contact' | 'invitation' | 'kind' | 'round' | 'to' | 'language' | 'testWording' | 'recipientName'>;

/** A message's own fields as a due entry keeps them. */
function packed({ contact, invitation, kind, round, to, language, testWording, recipientName }: DueFields) {
  return { contact, invitation, kind, round, to, language, testWording, recipientName };
}

/** The due entry of a message's attempt (see OutboxDue): the message's own fields packed into one string. */
function dueEntry(message: DueFields, attempt: number, at: Date): OutboxDue {
  return { _id: `${message._id}:${attempt}`, campaign: message.campaign, at, message: JSON.stringify(packed(message)) };
}

const BATCH_ENTRY = 'batch:';

/**
 * The due entries of new messages' first attempts: one batch entry for the
 * messages of a campaign due at the same moment (a few for a campaign's
 * thousands of invitations), one entry of its own for a message alone. On
 * FerretDB each entry costs its insert, and above all its removal (a delete
 * takes about 0.7 ms of the engine's CPU and its write lock): per message,
 * they were a fifth of the database's work of sending.
 */
function dueBatchEntries(docs: readonly (DueFields & { nextAttemptAt: Date })[]): OutboxDue[] {
  const groups = new Map<string, (typeof docs)[number][]>();
  for (const doc of docs) {
    const key = `${doc.campaign}:${doc.nextAttemptAt.getTime()}`;
    const group = groups.get(key);
    if (group) group.push(doc);
    else groups.set(key, [doc]);
  }
  return [...groups.values()].map((group) =>
    group.length === 1
      ? dueEntry(group[0]!, 0, group[0]!.nextAttemptAt)
      : { _id: `${BATCH_ENTRY}${new Types.ObjectId()}`, campaign: group[0]!.campaign, at: group[0]!.nextAttemptAt, messages: JSON.stringify(group.map((m) => ({ _id: m._id, ...packed(m) }))) },
  );
}

type Packed = ReturnType<typeof packed> & { contact: string; invitation?: string | null };

/** The messages and attempts a due entry stands for, as the sender needs them: one, or a batch's first attempts. */
export function unpackDue(entry: OutboxDue): DueMessage[] {
  const unpack = (id: string, fields: Packed) =>
    ({
      ...fields,
      _id: new Types.ObjectId(id),
      campaign: entry.campaign,
      contact: new Types.ObjectId(fields.contact),
      invitation: fields.invitation ? new Types.ObjectId(fields.invitation) : undefined,
      nextAttemptAt: entry.at,
    }) as OutboxMessage;
  if (entry.messages) {
    const messages = JSON.parse(entry.messages) as Array<Packed & { _id: string }>;
    const batch = { id: entry._id, size: messages.length };
    return messages.map(({ _id, ...fields }) => ({ message: unpack(_id, fields), attempt: 0, batch }));
  }
  const [id, attempt] = entry._id.split(':');
  return [{ message: unpack(id!, JSON.parse(entry.message!) as Packed), attempt: Number(attempt) }];
}

/** The ids "<message id>:<attempt>" of the attempts a due entry stands for. */
function attemptsOf(entry: Pick<OutboxDue, '_id' | 'messages'>): string[] {
  return entry.messages ? (JSON.parse(entry.messages) as Array<{ _id: string }>).map((m) => `${m._id}:0`) : [entry._id];
}

/**
 * Moves the due entries on once attempts have their outcomes: the attempt's
 * entry goes, and a retry first puts in the next attempt's, due at its time
 * (at once for a relay error: the campaign's pause holds it). Each write
 * touches only the entries of these attempts: a coordinator's retry decided
 * meanwhile (the next attempt's entry) is never removed. `removeLater` takes
 * the removals to make them in bulk (the sender's pass, see SettledDue).
 */
export async function settleDue(
  models: Pick<Models, 'OutboxDue'>,
  settled: ReadonlyArray<{ message: DueMessage['message']; attempt: number; batch?: DueMessage['batch']; state: OutcomeState; at: Date; nextAttemptAt?: Date | null }>,
  options: { removeLater?: SettledDue } = {},
): Promise<void> {
  const retries = settled.filter((s) => s.state === 'retry');
  if (retries.length > 0) await insertIgnoringDuplicates(models.OutboxDue.collection, retries.map((s) => dueEntry(s.message, s.attempt + 1, s.nextAttemptAt ?? s.at)));
  // A batch's attempts have no entry of their own: the batch entry goes once they are all claimed (DueBatches).
  const ids = settled.filter((s) => !s.batch).map((s) => `${s.message._id}:${s.attempt}`);
  if (options.removeLater) options.removeLater.add(ids);
  else await removeDue(models, ids);
}

/**
 * The due entries of attempts settled during a sender's pass, removed
 * behind the sending a few hundred at a time instead of with every write of
 * outcomes: one command instead of dozens. The engine still removes them one
 * by one (about 0.7 ms of its CPU each, `npm run bench:db-writes`): a removal
 * by `$in` reads the whole view, and holds the database's write lock the
 * while, which stalls the claims and outcomes behind it. Leaving an entry a
 * while after its outcome is safe: a stale entry sends nothing (see
 * OutboxDue), and one that a crash leaves behind is removed when met.
 */
export class SettledDue {
  private pending: string[] = [];
  private removing: Promise<void> | undefined;

  constructor(private readonly models: Pick<Models, 'OutboxDue'>) {}

  add(ids: readonly string[]): void {
    this.pending.push(...ids);
    if (this.removing || this.pending.length < REMOVALS_PER_COMMAND) return;
    // A failure leaves the entries waiting: the flush tries again and reports it.
    this.removing = this.remove()
      .catch(() => undefined)
      .finally(() => (this.removing = undefined));
  }

  /** Removes what is waiting (at the end of the pass). */
  async flush(): Promise<void> {
    while (this.removing) await this.removing;
    await this.remove();
  }

  private async remove(): Promise<void> {
    const ids = this.pending.splice(0);
    try {
      await removeDue(this.models, ids);
    } catch (error) {
      this.pending.push(...ids);
      throw error;
    }
  }
}

const REMOVALS_PER_COMMAND = 200;

async function removeDue(models: Pick<Models, 'OutboxDue'>, ids: readonly string[]): Promise<void> {
  for (let start = 0; start < ids.length; start += 1000) {
    // The driver types _id as an ObjectId; these are strings, as in the claims.
    await (models.OutboxDue.collection as unknown as Collection<{ _id: string }>).bulkWrite(ids.slice(start, start + 1000).map((id) => ({ deleteOne: { filter: { _id: id } } })), { ordered: false });
  }
}

/** Removes the due entries of messages that are deleted (erasure, retention, demo data); a batch entry keeps its other messages. Reads the entries: the view is small. */
export async function forgetDue(models: Pick<Models, 'OutboxDue'>, messageIds: readonly Types.ObjectId[]): Promise<void> {
  if (messageIds.length === 0) return;
  const gone = new Set(messageIds.map(String));
  const entries = await models.OutboxDue.find({}, { _id: 1, messages: 1 }).lean();
  await removeDue(models, entries.map((e) => e._id).filter((id) => gone.has(id.split(':')[0]!)));
  for (const entry of entries) if (entry.messages) await keepInBatch(models, entry._id, (id) => !gone.has(id));
}

/** Rewrites a batch entry with those of its messages that `keep` says, or removes it when none is left. */
async function keepInBatch(models: Pick<Models, 'OutboxDue'>, id: string, keep: (messageId: string) => boolean): Promise<void> {
  const entry = await models.OutboxDue.findById(id, { messages: 1 }).lean();
  if (!entry?.messages) return;
  const messages = JSON.parse(entry.messages) as Array<{ _id: string }>;
  const kept = messages.filter((m) => keep(m._id));
  if (kept.length === messages.length) return;
  // The collection is small: neither write scans much, and each is by _id.
  if (kept.length === 0) await models.OutboxDue.deleteOne({ _id: id });
  else await models.OutboxDue.updateOne({ _id: id }, { $set: { messages: JSON.stringify(kept) } });
}

/**
 * The batch entries of a sender's pass (see OutboxDue): an entry is removed
 * once the first attempt of each of its messages has been claimed, by this
 * sender or another (a claim lost is one another sender holds), and an
 * entry some of whose messages the pass did not claim (it was stopped, or
 * their campaign paused) keeps only those. Removing an attempt from the view
 * once it is claimed is safe: the claim gets an outcome, or is declared
 * unknown, and a retry gets an entry of its own. Two senders rewriting the
 * same entry each drop only what they claimed, so what neither claimed
 * stays whoever writes last; what one of them claimed may stay, and a stale
 * entry sends nothing (see OutboxDue).
 */
export class DueBatches {
  private readonly claimed = new Map<string, { size: number; ids: Set<string> }>();
  private removals: Promise<unknown>[] = [];

  constructor(private readonly models: Pick<Models, 'OutboxDue'>) {}

  /** Attempts whose claims were inserted (won or lost); a batch whose messages are all claimed is removed now. */
  note(items: readonly DueMessage[]): void {
    for (const { message, batch } of items) {
      if (!batch) continue;
      let seen = this.claimed.get(batch.id);
      if (!seen) this.claimed.set(batch.id, (seen = { size: batch.size, ids: new Set() }));
      if (seen.ids.size === seen.size) continue;
      seen.ids.add(String(message._id));
      // Its failure is reported by the flush.
      if (seen.ids.size === seen.size) this.removals.push(this.models.OutboxDue.deleteOne({ _id: batch.id }).then(() => undefined, (error: unknown) => error));
    }
  }

  /** Waits for the removals, and narrows the batches claimed in part to what is left of them (at the end of the pass). */
  async flush(): Promise<void> {
    const failures = (await Promise.all(this.removals.splice(0))).filter((error) => error !== undefined);
    if (failures.length > 0) throw failures[0];
    for (const [id, seen] of this.claimed) if (seen.ids.size < seen.size) await keepInBatch(this.models, id, (messageId) => !seen.ids.has(messageId));
  }
}

/**
 * The due view as it stands: every entry, unpacked. The collection holds only
 * what is left to send, so it is read whole (on FerretDB a filter would read
 * it whole anyway).
 */
export async function readDueView(models: Pick<Models, 'OutboxDue'>): Promise<DueMessage[]> {
  return (await models.OutboxDue.find({}).lean<OutboxDue[]>()).flatMap(unpackDue);
}

/**
 * The attempts that may be claimed: a first attempt always (its claim's
 * unique insert decides), a later one only when the previous attempt's
 * outcome asks for a retry. An entry whose previous attempt settled for good
 * is stale and removed. Reads one outcome by _id per retry.
 */
export async function retriesAllowed(models: Pick<Models, 'OutboxOutcome' | 'OutboxDue'>, items: readonly DueMessage[]): Promise<DueMessage[]> {
  const retries = items.filter((i) => i.attempt > 0);
  if (retries.length === 0) return [...items];
  const previous = await Promise.all(retries.map((i) => models.OutboxOutcome.findById(`${i.message._id}:${i.attempt - 1}`, { state: 1 }).lean()));
  const refused = new Set<DueMessage>();
  const stale: string[] = [];
  retries.forEach((item, index) => {
    const state = previous[index]?.state;
    if (state === 'retry') return;
    refused.add(item);
    // Without an outcome the previous attempt is still in flight (or becomes unknown once its sender is silent).
    if (state) stale.push(`${item.message._id}:${item.attempt}`);
  });
  await removeDue(models, stale);
  return items.filter((i) => !refused.has(i));
}

/**
 * After losing the claim of an attempt: if that attempt already has its
 * outcome, its entry is stale (a crash came between the outcome and the
 * entry's update) and is moved on as the outcome says; without an outcome
 * another sender has it in hand and moves it on itself.
 */
export async function repairLostClaims(models: Pick<Models, 'OutboxOutcome' | 'OutboxDue'>, lost: readonly DueMessage[]): Promise<void> {
  if (lost.length === 0) return;
  const outcomes = await Promise.all(lost.map((i) => models.OutboxOutcome.findById(`${i.message._id}:${i.attempt}`, { state: 1, at: 1, nextAttemptAt: 1 }).lean()));
  await settleDue(
    models,
    lost.flatMap((item, index) => {
      const outcome = outcomes[index];
      return outcome ? [{ message: item.message, attempt: item.attempt, batch: item.batch, state: outcome.state as OutcomeState, at: outcome.at, nextAttemptAt: outcome.nextAttemptAt }] : [];
    }),
  );
}

/**
 * Puts back the due entry of every queued message of the open campaigns that
 * has none, once per database: on its first start on this version, for what
 * a version without intents (or without the view) left without an entry.
 * From then on every write that could leave a gap leaves an intent
 * (repairIntents), and the marker it writes says so. One full read of those
 * campaigns' outbox, claims and outcomes (messageStatuses); entries already
 * there are left as they are. Returns how many were put back.
 */
export async function rebuildDueView(deps: OutboxDeps): Promise<number> {
  const open = await deps.models.Campaign.find({ closedAt: { $exists: false }, closesAt: { $gt: deps.now() } }, { _id: 1 }).lean();
  let added = 0;
  if (open.length > 0) {
    const [statuses, entries] = await Promise.all([
      messageStatuses(deps, { campaign: open.length === 1 ? open[0]!._id : { $in: open.map((c) => c._id) } }, { compact: true }),
      deps.models.OutboxDue.find({}, { _id: 1, messages: 1 }).lean(),
    ]);
    const known = new Set(entries.flatMap(attemptsOf));
    const missing = statuses.filter((s) => s.state === 'queued' && !known.has(`${s.message._id}:${s.attempts}`));
    added = (
      await insertIgnoringDuplicates(
        deps.models.OutboxDue.collection,
        missing.map((s) => dueEntry(s.message, s.attempts, s.last?.relayError ? s.last.at : (s.dueAt ?? deps.now()))),
      )
    ).size;
  }
  // Inserted, not upserted: two senders starting at once both get here, and FerretDB applies an upsert as a read then a write.
  await insertIgnoringDuplicates(deps.models.OutboxSignal.collection, [{ _id: DUE_VIEW_COMPLETE, token: 'complete', at: deps.now() }]);
  return added;
}

/** The marker of rebuildDueView ("due-view-built", written by the versions before intents, does not say the view is complete). */
const DUE_VIEW_COMPLETE = 'due-view-complete';

/** Whether the due view was built on this database by a version that writes intents, so that intents cover any gap since. */
export async function dueViewComplete(deps: { models: Pick<Models, 'OutboxSignal'> }): Promise<boolean> {
  return Boolean(await deps.models.OutboxSignal.findById(DUE_VIEW_COMPLETE, { _id: 1 }).lean());
}

/** Tells idle senders, in this process or another, to read the outbox again (see OutboxSignal). */
export async function signalOutboxChange(deps: { models: Pick<Models, 'OutboxSignal'>; now: () => Date }): Promise<void> {
  try {
    await deps.models.OutboxSignal.updateOne({ _id: 'outbox' }, { $set: { token: randomBytes(8).toString('hex'), at: deps.now() } }, { upsert: true });
  } catch (error) {
    // Two first signals at once (FerretDB applies an upsert as a read then a write): the other one's token is as new.
    if ((error as { code?: number }).code !== 11000) throw error;
  }
}

/** The current token of the outbox signal (undefined before anything was ever enqueued). */
export async function outboxSignalToken(deps: { models: Pick<Models, 'OutboxSignal'> }): Promise<string | undefined> {
  return (await deps.models.OutboxSignal.findById('outbox', { token: 1 }).lean())?.token;
}

/**
 * Inserts the documents, letting the unique indexes refuse those that exist
 * already. Returns the positions of the documents this call inserted.
 */
export async function insertIgnoringDuplicates(
  collection: { insertMany(docs: object[], options: { ordered: boolean }): Promise<unknown> },
  docs: object[],
): Promise<Set<number>> {
  const inserted = new Set(docs.map((_, index) => index));
  if (docs.length === 0) return inserted;
  try {
    await collection.insertMany(docs, { ordered: false });
  } catch (error) {
    const writeErrors = writeErrorsOf(error);
    if (!writeErrors || writeErrors.some((e) => e.code !== 11000)) throw error;
    for (const e of writeErrors) inserted.delete(e.index);
  }
  return inserted;
}

function writeErrorsOf(error: unknown): Array<{ index: number; code: number }> | undefined {
  const e = error as { code?: number; writeErrors?: unknown; index?: number };
  if (Array.isArray(e.writeErrors)) {
    return e.writeErrors.map((w: { index?: number; code?: number; err?: { index?: number; code?: number } }) => ({
      index: w.index ?? w.err?.index ?? -1,
      code: w.code ?? w.err?.code ?? 0,
    }));
  }
  if (e.writeErrors && typeof e.writeErrors === 'object') return writeErrorsOf({ writeErrors: [e.writeErrors] });
  if (e.code === 11000) return [{ index: e.index ?? 0, code: 11000 }];
  return undefined;
}

export type OutboxCounts = Record<OutboxState, number> & { total: number };

/**
 * Messages by state, for one campaign (and kind) or the whole outbox: the
 * progress shown while sending runs. Every claim has at most one outcome, so
 * the messages being sent are the claims without one, and the queued ones
 * (new, or waiting for a retry) are what remains.
 */
export async function countByState(
  deps: Pick<OutboxDeps, 'models'>,
  filter: { campaign?: Types.ObjectId; kind?: MessageKind; round?: number } = {},
): Promise<OutboxCounts> {
  const { Outbox, OutboxClaim, OutboxOutcome } = deps.models;
  const match: Record<string, unknown> = filter.campaign ? { campaign: filter.campaign } : {};
  // Test sends are never counted with the campaign's emails.
  const which: Record<string, unknown> = { ...match, kind: filter.kind ?? { $ne: 'test' }, ...(filter.round !== undefined ? { round: filter.round } : {}) };
  // The campaign's claims and outcomes, matched to its messages here: on FerretDB an $in of
  // thousands of ids is compared with every document, value by value.
  const [messages, claims, outcomes] = await Promise.all([
    Outbox.find(which, { _id: 1 }).lean(),
    OutboxClaim.find(match, { message: 1 }).lean(),
    OutboxOutcome.find(match, { message: 1, state: 1 }).lean(),
  ]);
  const ours = new Set(messages.map((m) => String(m._id)));
  const total = ours.size;
  const counts = Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])) as OutboxCounts;
  let settled = 0;
  for (const outcome of outcomes) {
    if (!ours.has(String(outcome.message))) continue;
    settled += 1;
    if (outcome.state !== 'retry') counts[outcome.state as OutboxState] += 1;
  }
  const claimed = claims.filter((c) => ours.has(String(c.message))).length;
  counts.total = total;
  counts.sending = claimed - settled;
  counts.queued = total - counts.sent - counts.failed - counts.skipped - counts.unknown - counts.sending;
  return counts;
}

/**
 * A campaign's emails by state, the invitations (round 0) apart from each
 * reminder round, and all of them together. One read of the campaign's
 * messages, claims and outcomes (compact documents: ids, round, state),
 * grouped here; test sends are left out.
 */
export async function countByRound(
  deps: Pick<OutboxDeps, 'models'>,
  campaign: Types.ObjectId,
): Promise<RoundCounts> {
  const { Outbox, OutboxClaim, OutboxOutcome } = deps.models;
  const [messages, claims, outcomes] = await Promise.all([
    Outbox.find({ campaign, kind: { $ne: 'test' } }, { _id: 1, round: 1 }).lean(),
    OutboxClaim.find({ campaign }, { _id: 1 }).lean(),
    OutboxOutcome.find({ campaign }, { _id: 1, state: 1 }).lean(),
  ]);
  // Claims and outcomes are named "<message>:<attempt>": the ledger the sending page follows counts them by the same rules.
  return new EmailLedger(
    messages.map((m) => [String(m._id), m.round] as const),
    claims.map((c) => c._id),
    outcomes.map((o) => [o._id, o.state] as const),
  ).counts();
}

export interface RoundCounts {
  all: OutboxCounts;
  rounds: Array<{ round: number; counts: OutboxCounts }>;
}

export interface MessageStatus {
  message: OutboxMessage;
  state: OutboxState;
  /** Attempts claimed so far. */
  attempts: number;
  /** The outcome of the last attempt, when it has one. */
  last?: OutboxOutcome;
  claimedAt?: Date;
  /** When the message may be claimed next (queued messages only). */
  dueAt?: Date;
}

/**
 * The state of every message matching the filter, derived from its claims
 * and outcomes. Reads the three collections once each; `compact` leaves out
 * what only pages show (the servers' replies), for the sender's pass.
 */
export async function messageStatuses(
  deps: Pick<OutboxDeps, 'models'>,
  filter: Record<string, unknown> = {},
  options: { compact?: boolean } = {},
): Promise<MessageStatus[]> {
  const { Outbox, OutboxClaim, OutboxOutcome } = deps.models;
  const scoped = filter.campaign ? { campaign: filter.campaign } : {};
  const [messages, claims, outcomes] = await Promise.all([
    Outbox.find(filter, options.compact ? { createdAt: 0, updatedAt: 0, __v: 0 } : undefined).lean<OutboxMessage[]>(),
    OutboxClaim.find(scoped, { message: 1, attempt: 1, at: 1 }).lean(),
    // The sender needs only what decides the state, not the servers' replies; no page needs the emails as sent.
    OutboxOutcome.find(scoped, options.compact ? { state: 1, nextAttemptAt: 1, relayError: 1, at: 1 } : { sentEmail: 0, sentEmailBase: 0 }).lean<OutboxOutcome[]>(),
  ]);
  return statusesOf(messages, claims, outcomes);
}

/** messageStatuses' derivation, from messages and their campaigns' claims and outcomes read elsewhere. */
export function statusesOf(
  messages: readonly OutboxMessage[],
  claims: ReadonlyArray<{ message: Types.ObjectId; attempt: number; at: Date }>,
  outcomes: readonly OutboxOutcome[],
): MessageStatus[] {
  const lastClaim = new Map<string, { attempt: number; at: Date }>();
  for (const claim of claims) {
    const key = String(claim.message);
    const known = lastClaim.get(key);
    if (!known || claim.attempt > known.attempt) lastClaim.set(key, { attempt: claim.attempt, at: claim.at });
  }
  const outcomeById = new Map(outcomes.map((o) => [o._id, o]));
  return messages.map((message) => {
    const claim = lastClaim.get(String(message._id));
    if (!claim) return { message, state: 'queued', attempts: 0, dueAt: message.nextAttemptAt };
    const last = outcomeById.get(`${message._id}:${claim.attempt}`);
    const attempts = claim.attempt + 1;
    if (!last) return { message, state: 'sending', attempts, claimedAt: claim.at };
    if (last.state === 'retry') return { message, state: 'queued', attempts, last, dueAt: last.nextAttemptAt ?? last.at };
    return { message, state: last.state, attempts, last, claimedAt: claim.at };
  });
}

/**
 * Claims that never got an outcome and whose worker has given no sign of
 * life for the lease (it crashed or was killed) get the outcome "unknown".
 * They are not resent by themselves: the SMTP server may have accepted them
 * just before the crash, and a contact must not get the same email twice
 * without a person deciding so. A live worker keeps its claims by its
 * heartbeat (outbox_workers), however long a slow relay makes a send take,
 * so an idle second sender never declares them unknown.
 */
export async function markAbandonedAsUnknown(deps: OutboxDeps, leaseMs: number, options: { everyClaim?: boolean } = {}): Promise<number> {
  const cutoff = new Date(deps.now().getTime() - leaseMs);
  const { OutboxClaim, OutboxOutcome } = deps.models;
  // Only a busy worker that has gone silent can have left claims behind (a sender beats before
  // it claims): without one, no claim is read. A database's first start on this version reads
  // every claim and outcome (everyClaim), for claims of older versions' workers that left no
  // heartbeat.
  const silent = await silentWorkers(deps, leaseMs);
  if (silent.length === 0 && !options.everyClaim) return 0;
  const fields = { _id: 1, message: 1, campaign: 1, attempt: 1, worker: 1, at: 1, messageId: 1 };
  // The silent workers' claims since they became busy, and those claims' outcomes by _id: what
  // is sent is a few claims, not the history (the engine still scans the claims for the filter).
  // A worker of an older version, without `since`, has every claim and outcome read.
  const oldest = silent.every((w) => w.since) ? Math.min(...silent.map((w) => w.since!.getTime())) : undefined;
  const claims = await OutboxClaim.find(
    options.everyClaim || oldest === undefined ? {} : { worker: { $in: silent.map((w) => w._id) }, at: { $gte: new Date(oldest) } },
    fields,
  ).lean();
  // Only the silent workers' own claims are journalled again (below): only theirs need their outcomes' states.
  const ownClaims = !options.everyClaim && oldest !== undefined;
  const outcomeFields = ownClaims ? { _id: 1, state: 1 } : { _id: 1 };
  const [settled, workers] = await Promise.all([
    !ownClaims || claims.length > OUTCOMES_BY_ID
      ? OutboxOutcome.find({}, outcomeFields).lean<Array<{ _id: string; state?: string }>>()
      : byIds(claims.map((c) => c._id), (id) => OutboxOutcome.findById(id, outcomeFields).lean<{ _id: string; state?: string }>()),
    deps.models.OutboxWorker.find({}).lean(),
  ]);
  const stateOf = new Map(settled.flatMap((o) => (o ? [[o._id, o.state ?? ''] as const] : [])));
  const done = new Set(stateOf.keys());
  const beats = new Map(workers.map((w) => [w._id, w.at]));
  const open = claims.filter((c) => !done.has(c._id));
  const isAbandoned = (c: (typeof open)[number]) => c.at < cutoff && (beats.get(c.worker) ?? c.at) < cutoff;
  const abandoned = open
    .filter(isAbandoned)
    .map((c) => ({
      _id: c._id,
      message: c.message,
      campaign: c.campaign,
      attempt: c.attempt,
      state: 'unknown',
      at: deps.now(),
      messageId: c.messageId,
      smtpCommand: 'CONN',
      error: `The sending worker ${c.worker} stopped before recording whether the SMTP server accepted this message.`,
    }));
  const inserted = await insertIgnoringDuplicates(OutboxOutcome.collection, abandoned);
  const marked = inserted.size;
  // The silent workers may have died between their writes and their journal entries: their claims since they became
  // busy and those claims' outcomes are journalled with the unknown ones, once: a worker killed with claims younger
  // than the lease stays silent for several passes, and a pass journals its claims only when they are not as the
  // last pass journalled them (the fingerprint on the worker; two passes at once may both journal, which is harmless).
  const changes = new EmailChanges();
  const fingerprints = new Map<string, string>();
  if (ownClaims) {
    for (const worker of silent) {
      const own = claims.filter((c) => c.worker === worker._id);
      const fingerprint = createHash('sha256').update(own.map((c) => `${c._id}=${stateOf.get(c._id) ?? ''}`).sort().join(',')).digest('base64url');
      if (worker.journalled === fingerprint) continue;
      fingerprints.set(worker._id, fingerprint);
      for (const c of own) changes.add(c.campaign, { claim: c._id, ...(stateOf.get(c._id) && { outcome: [c._id, stateOf.get(c._id)!] }) });
    }
  }
  for (const [index, a] of abandoned.entries()) if (inserted.has(index)) changes.add(a.campaign, { outcome: [a._id, 'unknown'] });
  if (changes.size > 0) await journalEmailChanges(deps.models, changes);
  // A claim does not say whether its message is a test: the campaigns' test sends are read again too (this is rare).
  if (marked > 0) await noteChange(deps.models, 'tests', abandoned.map((a) => a.campaign));
  // A worker whose claims are all settled now is no longer looked after; a worker that was only
  // stalled marks itself busy again when it sends. One killed just after claiming has claims
  // younger than the lease: it stays busy, so that a later pass declares them too (marked idle
  // here, they stayed "sending" for good, and `run-sender --until-idle` waited for ever).
  const leftOpen = new Set(open.filter((c) => !isAbandoned(c)).map((c) => c.worker));
  for (const worker of silent) {
    if (!leftOpen.has(worker._id)) await deps.models.OutboxWorker.updateOne({ _id: worker._id, at: worker.at }, { $set: { busy: false }, $unset: { since: 1, journalled: 1 } });
    else if (fingerprints.has(worker._id)) await deps.models.OutboxWorker.updateOne({ _id: worker._id, at: worker.at }, { $set: { journalled: fingerprints.get(worker._id) } });
  }
  return marked;
}

/** Beyond this many claims to look at, the outcomes' ids are read whole rather than one by one. */
const OUTCOMES_BY_ID = 2000;

/** Workers with claims in flight that have not beaten for the lease (crashed or killed). Reads the few worker documents. */
export async function silentWorkers(deps: OutboxDeps, leaseMs: number) {
  const cutoff = deps.now().getTime() - leaseMs;
  return (await deps.models.OutboxWorker.find({}).lean()).filter((w) => w.busy && w.at.getTime() < cutoff);
}

/** A sender's sign of life, busy while it has messages in flight (see markAbandonedAsUnknown). */
export async function recordHeartbeat(deps: OutboxDeps, workerId: string, busy = true): Promise<void> {
  const at = deps.now();
  // `since` stays at the first beat of a busy stretch ($min), and goes when the worker is idle.
  await deps.models.OutboxWorker.updateOne({ _id: workerId }, busy ? { $set: { at, busy }, $min: { since: at } } : { $set: { at, busy }, $unset: { since: 1 } }, { upsert: true });
}

/**
 * Messages whose outcome is unknown, for the coordinator to resolve, with
 * the Message-ID to look up in the relay's log and when the message was
 * claimed (handed to the relay at about that time).
 */
export async function listUnknown(deps: Pick<OutboxDeps, 'models'>, filter: { campaign?: Types.ObjectId } = {}) {
  const outcomes = await deps.models.OutboxOutcome.find({ state: 'unknown', ...(filter.campaign ? { campaign: filter.campaign } : {}) }).sort({ at: 1 }).limit(UNKNOWN_LISTED).lean();
  const [messages, claims] = await Promise.all([
    deps.models.Outbox.find({ _id: { $in: outcomes.map((o) => o.message) } }).lean<OutboxMessage[]>(),
    // By _id, one each: FerretDB answers those from its index.
    Promise.all(outcomes.map((o) => deps.models.OutboxClaim.findById(o._id, { at: 1, messageId: 1 }).lean())),
  ]);
  return unknownOf(outcomes, messages, claims.flatMap((claim) => (claim ? [claim] : [])));
}

/** At most this many unknown outcomes are listed, the oldest first. */
const UNKNOWN_LISTED = 1000;

export interface UnknownMessage {
  outcome: OutboxOutcome & { _id: string };
  message: OutboxMessage;
  claimedAt?: Date;
  /** The Message-ID to look the message up under in the relay's log (recorded with the claim). */
  messageId: string;
}

/** listUnknown's list, from outcomes, messages and claims read elsewhere (any superset of those it lists). */
export function unknownOf(
  outcomes: ReadonlyArray<OutboxOutcome & { _id: string }>,
  messages: readonly OutboxMessage[],
  claims: ReadonlyArray<{ _id: string; at: Date; messageId?: string | null }>,
): UnknownMessage[] {
  const unknown = outcomes.filter((o) => o.state === 'unknown').sort((a, b) => a.at.getTime() - b.at.getTime()).slice(0, UNKNOWN_LISTED);
  const messageById = new Map(messages.map((m) => [String(m._id), m]));
  const claimById = new Map(claims.map((c) => [c._id, c]));
  return unknown.flatMap((outcome) => {
    const message = messageById.get(String(outcome.message));
    const claim = claimById.get(outcome._id);
    return message ? [{ outcome, message, claimedAt: claim?.at, messageId: outcome.messageId ?? claim?.messageId ?? `<${message._id}@…>` }] : [];
  });
}

export type Resolution = 'resend' | 'sent';

/**
 * The coordinator's decision on an unknown attempt: send the message again
 * (after checking, e.g. in the SMTP server's log under its Message-ID, that
 * it did not leave), or record it as sent. Only an outcome still unknown changes.
 */
export async function resolveUnknown(deps: OutboxDeps, outcomeId: string, resolution: Resolution, actor: string): Promise<boolean> {
  if (resolution === 'sent') {
    // Under an intent too: a crash between the outcome's change and its journal entry is repaired (no attempt is due).
    return withIntent(deps, { retries: [outcomeId] }, async () => {
      const result = await deps.models.OutboxOutcome.updateOne({ _id: outcomeId, state: 'unknown' }, { $set: { state: 'sent', resolvedBy: `${actor}: marked as sent` } });
      if (result.modifiedCount === 1) await noteOutcomeChange(deps, outcomeId);
      return result.modifiedCount === 1;
    });
  }
  // Under an intent: a crash between the outcome's change and the next attempt's entry (or its journal entry) is repaired.
  return withIntent(deps, { retries: [outcomeId] }, async () => {
    const result = await deps.models.OutboxOutcome.updateOne({ _id: outcomeId, state: 'unknown' }, { $set: { state: 'retry', nextAttemptAt: deps.now(), resolvedBy: `${actor}: resend` } });
    if (result.modifiedCount === 1) {
      await noteOutcomeChange(deps, outcomeId);
      await dueAgain(deps, outcomeId);
    }
    return result.modifiedCount === 1;
  });
}

/**
 * The coordinator's "retry" of a failed message (e.g. after lifting the
 * suppression of its address, or once the relay is fixed): the failed
 * attempt becomes a retry due now. Only an outcome still failed changes.
 */
export async function retryFailed(deps: OutboxDeps, outcomeId: string, actor: string): Promise<boolean> {
  // Under an intent: a crash between the outcome's change and the next attempt's entry is repaired.
  return withIntent(deps, { retries: [outcomeId] }, async () => {
    const result = await deps.models.OutboxOutcome.updateOne(
      { _id: outcomeId, state: 'failed' },
      { $set: { state: 'retry', nextAttemptAt: deps.now(), resolvedBy: `${actor}: retry` } },
    );
    if (result.modifiedCount === 1) {
      await noteOutcomeChange(deps, outcomeId);
      await dueAgain(deps, outcomeId);
    }
    return result.modifiedCount === 1;
  });
}

/** A coordinator changed an outcome (of a test send perhaps): its campaign's emails and test sends are read again. */
async function noteOutcomeChange(deps: OutboxDeps, outcomeId: string): Promise<void> {
  const outcome = await deps.models.OutboxOutcome.findById(outcomeId, { campaign: 1, state: 1 }).lean();
  if (!outcome) return;
  await journalEmailChanges(deps.models, new EmailChanges().add(outcome.campaign, { outcome: [outcomeId, outcome.state] }));
  await noteChange(deps.models, 'tests', [outcome.campaign]);
}

/** A coordinator turned an attempt's outcome into a retry: the message is due again now, for its next attempt. */
async function dueAgain(deps: OutboxDeps, outcomeId: string): Promise<void> {
  const outcome = await deps.models.OutboxOutcome.findById(outcomeId, { message: 1, attempt: 1 }).lean();
  const message = outcome && (await deps.models.Outbox.findById(outcome.message).lean<OutboxMessage>());
  if (message) await insertIgnoringDuplicates(deps.models.OutboxDue.collection, [dueEntry(message, outcome.attempt + 1, deps.now())]);
  await signalOutboxChange(deps);
}

/** The suppression list, newest first, for the coordinator's page. */
export async function listSuppressions(deps: Pick<OutboxDeps, 'models'>) {
  return (await deps.models.Suppression.find({}).lean()).sort((a, b) => b.at.getTime() - a.at.getTime());
}

export type LiftResult = { lifted: true; email: string; reason: string } | { lifted: false; why: string };

/**
 * Takes an address off the suppression list, so that it can be mailed
 * again (the coordinator judged the refusal wrong, e.g. a relay error that
 * an older version took for a refused recipient). An unsubscription is the
 * person's wish and is not lifted here.
 */
export async function liftSuppression(deps: Pick<OutboxDeps, 'models'>, id: Types.ObjectId): Promise<LiftResult> {
  const suppression = await deps.models.Suppression.findById(id).lean();
  if (!suppression) return { lifted: false, why: 'This address is not on the suppression list (any more).' };
  if (suppression.reason === 'unsubscribed') return { lifted: false, why: `${suppression.email} unsubscribed: that is the person's choice, and it is not lifted here.` };
  await deps.models.Suppression.deleteOne({ _id: id });
  await noteContactsChange(deps.models, { suppressions: true });
  return { lifted: true, email: suppression.email, reason: suppression.reason };
}
