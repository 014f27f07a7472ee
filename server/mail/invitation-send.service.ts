import type { Types } from 'mongoose';
import { recordAuditOnce } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { freshRecipients, noteInvitationEmailsToCome } from './invitation-mail.service.ts';
import type { InvitationSend } from './outbox.model.ts';
import { enqueueMessages, insertIgnoringDuplicates } from './outbox.service.ts';
import { noteChange } from '../shared/change-stamp.ts';

export interface InvitationSendDeps {
  models: Models;
  now: () => Date;
}

/** Messages queued per step; the progress is written after each. */
const DEFAULT_CHUNK = 500;
/** An unfinished decision without progress for this long has lost its process: any instance resumes it. */
const DEFAULT_STALE_MS = 60_000;

/** A campaign's decisions to send the invitations, oldest first. The collection holds one document per decision: read whole. */
async function sendsOf(models: Pick<Models, 'InvitationSend'>, campaign: Types.ObjectId): Promise<InvitationSend[]> {
  return (await models.InvitationSend.find({ campaign }).lean<InvitationSend[]>()).sort((a, b) => a.n - b.n);
}

/**
 * What the confirmation and sending pages need: the number the next
 * decision takes (the form carries it, so that a second click is the same
 * decision) and the latest decision, with its progress.
 */
export async function invitationSendState(deps: Pick<InvitationSendDeps, 'models'>, campaign: Types.ObjectId) {
  const sends = await sendsOf(deps.models, campaign);
  const latest = sends.at(-1);
  return { nextNo: sends.length + 1, latest, queueing: latest && !latest.finishedAt ? latest : undefined };
}

export type SendDecision = 'recorded' | 'already' | 'stale' | 'busy';

/**
 * Records the coordinator's "send the invitations" (campaign, n-th decision,
 * the count confirmed, who, when) by a unique insert, and nothing more: the
 * messages are queued in the background (startInvitationQueue). A second
 * click or another instance with the same n finds it recorded ('already').
 * A form from before a later decision is 'stale'; a new decision while the
 * previous one is still being queued is 'busy'.
 */
export async function recordInvitationSend(
  deps: InvitationSendDeps,
  campaign: Types.ObjectId,
  decision: { n: number; expected: number; by: string },
): Promise<SendDecision> {
  const sends = await sendsOf(deps.models, campaign);
  if (sends.some((s) => s.n === decision.n)) return 'already';
  if (decision.n !== sends.length + 1) return 'stale';
  if (sends.some((s) => !s.finishedAt)) return 'busy';
  const inserted = await insertIgnoringDuplicates(deps.models.InvitationSend.collection, [
    { _id: `${campaign}:${decision.n}`, campaign, n: decision.n, expected: decision.expected, by: decision.by, at: deps.now(), queued: 0 },
  ]);
  return inserted.size === 1 ? 'recorded' : 'already';
}

/**
 * The audit entry of a decision, written once (recordAuditOnce): by the
 * request that records it and again by the queueing, so a crash between the
 * decision and its entry leaves no send unaudited.
 */
export function auditInvitationSend(models: Pick<Models, 'AuditEntry' | 'AuditChange' | 'ChangeStamp'>, send: Pick<InvitationSend, 'campaign' | 'n' | 'expected' | 'by' | 'at'>): Promise<void> {
  return recordAuditOnce(models, `invitation-send:${send.campaign}:${send.n}`, {
    actor: send.by,
    action: 'mail.send-invitations',
    target: `campaign:${send.campaign}`,
    details: { confirmed: send.expected, send: send.n },
    at: send.at,
  });
}

/**
 * Queues the invitation emails of one decision, in steps, writing the
 * progress after each (by _id). Safe to run again after a crash, or in two
 * processes at once: the outbox's unique (campaign, contact, kind, round)
 * index refuses a second copy, and a run starts from the recipients that have
 * no invitation email yet. The count confirmed is checked once, before
 * anything is queued: if it changed, nothing is queued and the decision says
 * why. Ends by recording round 0, from which the reminders count.
 */
export async function queueInvitationSend(
  deps: InvitationSendDeps & { onQueued?: () => void },
  id: string,
  options: { chunk?: number; stopped?: () => boolean; onChunk?: (queued: number) => void } = {},
): Promise<void> {
  const { InvitationSend } = deps.models;
  const send = await InvitationSend.findById(id).lean<InvitationSend>();
  if (!send || send.finishedAt) return;
  await auditInvitationSend(deps.models, send);
  const found = await freshRecipients(deps.models, send.campaign);
  const { recipients } = found;
  let fresh = found.fresh;
  if (send.checkedAt) {
    // Resumed: only the links counted at the check, never one created since. ObjectIds grow
    // with their creation time (to the second, then by process and counter), so those are the
    // ones not above the newest link counted.
    const newest = send.newestLink ?? '';
    fresh = fresh.filter((r) => String(r.invitation) <= newest);
  } else {
    if (fresh.length !== send.expected) {
      const refused = `The number of emails changed since the confirmation page was shown (now ${fresh.length}, not ${send.expected}). Nothing was sent: please confirm again.`;
      await InvitationSend.updateOne({ _id: id }, { $set: { refused, finishedAt: deps.now(), progressAt: deps.now() } });
      return;
    }
    const newestLink = fresh.reduce((newest, r) => (String(r.invitation) > newest ? String(r.invitation) : newest), '');
    await InvitationSend.updateOne({ _id: id }, { $set: { checkedAt: deps.now(), newestLink, progressAt: deps.now() } });
  }
  // After a crash, what the decision queued before is what is no longer fresh.
  const before = Math.max(0, send.expected - fresh.length);
  const chunk = options.chunk ?? DEFAULT_CHUNK;
  if (fresh.length > 0) await noteInvitationEmailsToCome(deps.models, send.campaign);
  let queued = 0;
  for (let start = 0; start < fresh.length; start += chunk) {
    if (options.stopped?.()) return;
    await enqueueMessages(deps, 'invitation', 0, fresh.slice(start, start + chunk).map(({ institution: _, ...r }) => r));
    queued = Math.min(start + chunk, fresh.length);
    await InvitationSend.updateOne({ _id: id }, { $set: { queued: before + queued, progressAt: deps.now() } });
    deps.onQueued?.();
    options.onChunk?.(before + queued);
  }
  if (options.stopped?.()) return;
  await insertIgnoringDuplicates(deps.models.ReminderRound.collection, [
    { campaign: send.campaign, round: 0, startedAt: send.at, startedBy: send.by, enqueuedAt: deps.now(), recipients: recipients.length },
  ]);
  await noteChange(deps.models, 'rounds', [send.campaign]);
  await InvitationSend.updateOne({ _id: id }, { $set: { queued: before + queued, finishedAt: deps.now(), progressAt: deps.now() } });
}

export interface InvitationQueue {
  /** Queues the decision just recorded (and any other left unfinished) now, in the background. */
  request(): void;
  /** Resolves when no queueing is under way in this process. */
  idle(): Promise<void>;
  /** Stops after the step in progress; what is left is resumed by the next start (here or in another instance). */
  stop(): Promise<void>;
}

/**
 * The background queueing of the coordinator's decisions, in this process.
 * At start it takes every unfinished decision (a crash interrupted it); then
 * each request takes the unfinished ones, and every `resumeEveryMs` it takes
 * those no process has moved for `staleMs` (another instance died). One
 * decision at a time; errors are reported and the decision is taken again on
 * the next pass.
 */
export function startInvitationQueue(
  deps: InvitationSendDeps & { onQueued?: () => void; onError?: (error: unknown) => void },
  options: { resumeEveryMs?: number; staleMs?: number; chunk?: number; onChunk?: (id: string, queued: number) => void } = {},
): InvitationQueue {
  const onError = deps.onError ?? ((error: unknown) => console.error('Queueing the invitations failed; it is resumed shortly:', error));
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  let stopping = false;
  /** What the next pass takes: every unfinished decision, or only those without recent progress. */
  let pending: 'all' | 'stale' | undefined = 'all';
  let running: Promise<void> | undefined;
  const pass = async (which: 'all' | 'stale') => {
    const cutoff = deps.now().getTime() - staleMs;
    // A handful of documents, one per decision: read whole.
    const unfinished = (await deps.models.InvitationSend.find({ finishedAt: { $exists: false } }).lean<InvitationSend[]>())
      .filter((s) => which === 'all' || (s.progressAt ?? s.at).getTime() < cutoff)
      .sort((a, b) => a.at.getTime() - b.at.getTime());
    for (const send of unfinished) {
      if (stopping) return;
      await queueInvitationSend(deps, send._id, { chunk: options.chunk, stopped: () => stopping, onChunk: (queued) => options.onChunk?.(send._id, queued) });
    }
  };
  const run = () => {
    if (running || stopping || !pending) return;
    running = (async () => {
      while (pending && !stopping) {
        const which = pending;
        pending = undefined;
        try {
          await pass(which);
        } catch (error) {
          onError(error);
        }
      }
      running = undefined;
    })();
  };
  const timer = options.resumeEveryMs
    ? setInterval(() => {
        pending ??= 'stale';
        run();
      }, options.resumeEveryMs)
    : undefined;
  timer?.unref();
  run();
  return {
    request() {
      pending = 'all';
      run();
    },
    async idle() {
      while (running) await running;
    },
    async stop() {
      stopping = true;
      if (timer) clearInterval(timer);
      while (running) await running;
    },
  };
}
