import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import type { Language } from '../shared/languages.ts';
import { OUTBOX_STATES, type MessageKind, type OutboxMessage, type OutboxOutcome, type OutboxState, type OutcomeState } from './outbox.model.ts';

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
    added += (await insertIgnoringDuplicates(deps.models.Outbox.collection, docs)).size;
  }
  return added;
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
export async function countByState(deps: Pick<OutboxDeps, 'models'>, filter: { campaign?: Types.ObjectId; kind?: MessageKind } = {}): Promise<OutboxCounts> {
  const { Outbox, OutboxClaim, OutboxOutcome } = deps.models;
  const match: Record<string, unknown> = filter.campaign ? { campaign: filter.campaign } : {};
  // Test sends are never counted with the campaign's emails.
  const byKind: Record<string, unknown> = { ...match, kind: filter.kind ?? { $ne: 'test' } };
  const messageIds = (await Outbox.find(byKind, { _id: 1 }).lean()).map((m) => m._id);
  const scoped = { ...match, message: { $in: messageIds } };
  const [total, claims, outcomes] = await Promise.all([
    messageIds.length,
    OutboxClaim.countDocuments(scoped),
    OutboxOutcome.aggregate<{ _id: OutcomeState; n: number }>([{ $match: scoped }, { $group: { _id: '$state', n: { $sum: 1 } } }]),
  ]);
  const counts = Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])) as OutboxCounts;
  let settled = 0;
  for (const row of outcomes) {
    settled += row.n;
    if (row._id !== 'retry') counts[row._id] = row.n;
  }
  counts.total = total;
  counts.sending = claims - settled;
  counts.queued = total - counts.sent - counts.failed - counts.skipped - counts.unknown - counts.sending;
  return counts;
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
 * and outcomes. Reads the three collections once each.
 */
export async function messageStatuses(deps: Pick<OutboxDeps, 'models'>, filter: Record<string, unknown> = {}): Promise<MessageStatus[]> {
  const { Outbox, OutboxClaim, OutboxOutcome } = deps.models;
  const scoped = filter.campaign ? { campaign: filter.campaign } : {};
  const [messages, claims, outcomes] = await Promise.all([
    Outbox.find(filter).lean<OutboxMessage[]>(),
    OutboxClaim.find(scoped, { message: 1, attempt: 1, at: 1 }).lean(),
    OutboxOutcome.find(scoped).lean(),
  ]);
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
 * Claims that never got an outcome (their worker crashed or was killed) get
 * the outcome "unknown". They are not resent by themselves: the SMTP server
 * may have accepted them just before the crash, and a contact must not get
 * the same email twice without a person deciding so. The lease is longer
 * than the transport's socket timeout, so a live worker's send has always
 * ended before its claim counts as abandoned.
 */
export async function markAbandonedAsUnknown(deps: OutboxDeps, leaseMs: number): Promise<number> {
  const cutoff = new Date(deps.now().getTime() - leaseMs);
  const { OutboxClaim, OutboxOutcome } = deps.models;
  const [claims, settled] = await Promise.all([
    OutboxClaim.find({ at: { $lt: cutoff } }).lean(),
    OutboxOutcome.find({}, { _id: 1 }).lean(),
  ]);
  const done = new Set(settled.map((o) => o._id));
  const abandoned = claims
    .filter((c) => !done.has(c._id))
    .map((c) => ({
      _id: c._id,
      message: c.message,
      campaign: c.campaign,
      attempt: c.attempt,
      state: 'unknown',
      at: deps.now(),
      error: `The sending worker ${c.worker} stopped before recording whether the SMTP server accepted this message.`,
    }));
  return (await insertIgnoringDuplicates(OutboxOutcome.collection, abandoned)).size;
}

/** Messages whose outcome is unknown, for the coordinator to resolve. */
export async function listUnknown(deps: Pick<OutboxDeps, 'models'>, filter: { campaign?: Types.ObjectId } = {}) {
  const outcomes = await deps.models.OutboxOutcome.find({ state: 'unknown', ...(filter.campaign ? { campaign: filter.campaign } : {}) }).sort({ at: 1 }).limit(1000).lean();
  const messages = new Map(
    (await deps.models.Outbox.find({ _id: { $in: outcomes.map((o) => o.message) } }).lean()).map((m) => [String(m._id), m]),
  );
  return outcomes.flatMap((outcome) => {
    const message = messages.get(String(outcome.message));
    return message ? [{ outcome, message }] : [];
  });
}

export type Resolution = 'resend' | 'sent';

/**
 * The coordinator's decision on an unknown attempt: send the message again
 * (after checking, e.g. in the SMTP server's log under its Message-ID, that
 * it did not leave), or record it as sent. Only an outcome still unknown changes.
 */
export async function resolveUnknown(deps: OutboxDeps, outcomeId: string, resolution: Resolution, actor: string): Promise<boolean> {
  const update =
    resolution === 'resend'
      ? { $set: { state: 'retry', nextAttemptAt: deps.now(), resolvedBy: `${actor}: resend` } }
      : { $set: { state: 'sent', resolvedBy: `${actor}: marked as sent` } };
  const result = await deps.models.OutboxOutcome.updateOne({ _id: outcomeId, state: 'unknown' }, update);
  return result.modifiedCount === 1;
}
