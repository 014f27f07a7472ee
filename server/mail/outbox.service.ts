import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import type { Language } from '../shared/languages.ts';
import { OUTBOX_STATES, type MessageKind, type OutboxState } from './outbox.model.ts';

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
      state: 'queued' as OutboxState,
      attempts: 0,
      nextAttemptAt: now,
      permanent: false,
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

/** Messages by state, for one campaign (and kind) or the whole outbox: the progress shown while sending runs. */
export async function countByState(
  deps: Pick<OutboxDeps, 'models'>,
  filter: { campaign?: Types.ObjectId; kind?: MessageKind; round?: number } = {},
): Promise<OutboxCounts> {
  const match: Record<string, unknown> = {};
  if (filter.campaign) match.campaign = filter.campaign;
  if (filter.kind) match.kind = filter.kind;
  if (filter.round !== undefined) match.round = filter.round;
  const rows = await deps.models.Outbox.aggregate<{ _id: OutboxState; n: number }>([
    { $match: match },
    { $group: { _id: '$state', n: { $sum: 1 } } },
  ]);
  const counts = Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])) as OutboxCounts;
  counts.total = 0;
  for (const row of rows) {
    counts[row._id] = row.n;
    counts.total += row.n;
  }
  return counts;
}

/**
 * Messages claimed by a worker that never recorded the outcome (it crashed or
 * was killed) become "unknown". They are not resent by themselves: the SMTP
 * server may have accepted them just before the crash, and a contact must
 * not get the same email twice without a person deciding so. The lease is
 * longer than the transport's socket timeout, so a live worker's send has
 * always ended before its claim counts as abandoned.
 */
export async function markAbandonedAsUnknown(deps: OutboxDeps, leaseMs: number): Promise<number> {
  const cutoff = new Date(deps.now().getTime() - leaseMs);
  const result = await deps.models.Outbox.updateMany(
    { state: 'sending', claimedAt: { $lt: cutoff } },
    { $set: { state: 'unknown', lastError: 'The sending worker stopped before recording whether the SMTP server accepted this message.' } },
  );
  return result.modifiedCount;
}

/** Messages whose outcome is unknown, for the coordinator to resolve. */
export async function listUnknown(deps: Pick<OutboxDeps, 'models'>, filter: { campaign?: Types.ObjectId } = {}, limit = 500) {
  return deps.models.Outbox.find({ state: 'unknown', ...(filter.campaign ? { campaign: filter.campaign } : {}) })
    .sort({ claimedAt: 1 })
    .limit(limit)
    .lean();
}

export type Resolution = 'resend' | 'sent';

/**
 * The coordinator's decision on an unknown message: send it again (after
 * checking, e.g. in the SMTP server's log, that it did not leave), or record
 * it as sent. Only a message still unknown changes.
 */
export async function resolveUnknown(deps: OutboxDeps, messageId: Types.ObjectId, resolution: Resolution, actor: string): Promise<boolean> {
  const update =
    resolution === 'resend'
      ? { $set: { state: 'queued', nextAttemptAt: deps.now(), resolvedBy: `${actor}: resend` }, $unset: { claimedBy: 1, claimedAt: 1 } }
      : { $set: { state: 'sent', sentAt: deps.now(), resolvedBy: `${actor}: marked as sent` } };
  const result = await deps.models.Outbox.updateOne({ _id: messageId, state: 'unknown' }, update);
  return result.modifiedCount === 1;
}
