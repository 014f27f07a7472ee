import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { insertIgnoringDuplicates } from '../mail/outbox.service.ts';

/**
 * The retention scheduler's state. Each purge of a campaign (for one due
 * date) moves forward by unique inserts into retention_runs, never by a
 * conditional update (FerretDB v1 applies those as read-then-write):
 * "<campaign>:<due>:<attempt>" claims an attempt — one instance wins it —
 * and "<campaign>:<due>:done" records the end. A claim older than the lease
 * without "done" belongs to a process that died: the next check claims the
 * next attempt and finishes the (repeatable) purge.
 */
export function runKey(campaign: Types.ObjectId, dueAt: Date): string {
  return `${campaign}:${dueAt.toISOString()}`;
}

export async function runState(models: Models, key: string): Promise<{ done: boolean; attempts: number; lastStartedAt?: Date }> {
  const done = await models.RetentionRun.findById(`${key}:done`).lean();
  if (done) return { done: true, attempts: 0 };
  let attempts = 0;
  let lastStartedAt: Date | undefined;
  // Attempts are few (one, unless a process died): each is looked up by _id.
  for (let next = await models.RetentionRun.findById(`${key}:1`).lean(); next; next = await models.RetentionRun.findById(`${key}:${attempts + 1}`).lean()) {
    attempts += 1;
    lastStartedAt = next.startedAt;
  }
  return { done: false, attempts, lastStartedAt };
}

/** True for the one instance whose insert of this attempt succeeds. */
export async function claimAttempt(models: Models, key: string, attempt: number, fields: { campaign: Types.ObjectId; dueAt: Date; worker: string; at: Date }): Promise<boolean> {
  const won = await insertIgnoringDuplicates(models.RetentionRun.collection, [{ _id: `${key}:${attempt}`, campaign: fields.campaign, dueAt: fields.dueAt, startedAt: fields.at, worker: fields.worker }]);
  return won.size === 1;
}

export async function markDone(models: Models, key: string, fields: { campaign: Types.ObjectId; dueAt: Date; worker: string; at: Date; people: number }): Promise<void> {
  await insertIgnoringDuplicates(models.RetentionRun.collection, [{ _id: `${key}:done`, campaign: fields.campaign, dueAt: fields.dueAt, startedAt: fields.at, finishedAt: fields.at, worker: fields.worker, people: fields.people }]);
}
