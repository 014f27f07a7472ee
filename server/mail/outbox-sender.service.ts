import type { Transporter } from 'nodemailer';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { personalLink } from '../invitations/invitation.service.ts';
import { isLanguage } from '../shared/languages.ts';
import { composeMessage } from './mail-message.ts';
import type { OutboxMessage } from './outbox.model.ts';
import { insertIgnoringDuplicates, markAbandonedAsUnknown } from './outbox.service.ts';
import { unsubscribeLink } from './unsubscribe-token.ts';

export interface SenderDeps {
  models: Models;
  transport: Pick<Transporter, 'sendMail'>;
  tokenKey: Buffer;
  publicUrl: string;
  /** The From address (MAIL_FROM); a campaign's sender name replaces its display name. */
  from: string;
  now: () => Date;
  /** Names this process in claims, e.g. "host:pid:random". */
  workerId: string;
}

export interface SenderPolicy {
  /** Claims of one message before a temporary failure becomes final. */
  maxAttempts: number;
  /** See markAbandonedAsUnknown. */
  leaseMs: number;
  /** Messages claimed and sent concurrently per step; the pool spreads them over its connections. */
  batchSize: number;
  /** First retry delay; it doubles with each attempt (capped at six hours). */
  backoffMs: number;
}

export const DEFAULT_POLICY: SenderPolicy = { maxAttempts: 8, leaseMs: 120_000, batchSize: 20, backoffMs: 60_000 };

type Claimed = OutboxMessage & { attempts: number };

/**
 * Claims due messages for this worker. A message is claimed by inserting
 * "<message id>:<attempt>" into outbox_claims: the unique _id lets exactly one
 * worker win each attempt, even when two processes read the same queued
 * message at the same moment (a conditional update is not enough on FerretDB,
 * which applies it as a read followed by a write). Only the winner moves the
 * message to "sending".
 */
export async function claimDueMessages(deps: SenderDeps, limit: number): Promise<Claimed[]> {
  const now = deps.now();
  const candidates = await deps.models.Outbox.find({ state: 'queued', nextAttemptAt: { $lte: now } })
    .sort({ nextAttemptAt: 1 })
    .limit(limit)
    .lean<Claimed[]>();
  if (candidates.length === 0) return [];
  const claims = candidates.map((m) => ({ _id: `${m._id}:${m.attempts}`, message: m._id, worker: deps.workerId, at: now }));
  const won = await insertIgnoringDuplicates(deps.models.OutboxClaim.collection, claims);
  const mine = candidates.filter((_, index) => won.has(index));
  if (mine.length === 0) return [];
  await deps.models.Outbox.updateMany(
    { _id: { $in: mine.map((m) => m._id) } },
    { $set: { state: 'sending', claimedBy: deps.workerId, claimedAt: now }, $inc: { attempts: 1 } },
  );
  return mine.map((m) => ({ ...m, state: 'sending', claimedBy: deps.workerId, claimedAt: now, attempts: m.attempts + 1 }));
}

export type Outcome = 'sent' | 'retry' | 'failed' | 'skipped';

/**
 * One step of the sender: claims a batch, sends each message and records its
 * outcome as soon as it is known. Returns the outcomes (empty when nothing was due).
 */
export async function sendDueMessages(deps: SenderDeps, policy: SenderPolicy = DEFAULT_POLICY): Promise<Outcome[]> {
  const claimed = await claimDueMessages(deps, policy.batchSize);
  if (claimed.length === 0) return [];
  const context = await loadContext(deps.models, claimed);
  return Promise.all(claimed.map((message) => deliver(deps, policy, message, context)));
}

type Context = Awaited<ReturnType<typeof loadContext>>;

/** Everything the batch's messages need, in one query per collection. */
async function loadContext(models: Models, messages: readonly Claimed[]) {
  const ids = <K extends 'campaign' | 'contact' | 'invitation'>(key: K) => [...new Set(messages.map((m) => String(m[key])))];
  const [campaigns, contacts, invitations, suppressed] = await Promise.all([
    models.Campaign.find({ _id: { $in: ids('campaign') } }).lean(),
    models.Contact.find({ _id: { $in: ids('contact') } }).lean(),
    models.Invitation.find({ _id: { $in: ids('invitation') } }, { draft: 0 }).lean(),
    models.Suppression.find({ email: { $in: [...new Set(messages.map((m) => m.to))] } }, { email: 1 }).lean(),
  ]);
  const reminderInvitations = messages.filter((m) => m.kind === 'reminder').map((m) => m.invitation);
  const [institutions, answered] = await Promise.all([
    models.Institution.find({ _id: { $in: [...new Set(contacts.map((c) => String(c.institution)))] } }, { name: 1 }).lean(),
    reminderInvitations.length ? models.Response.find({ invitation: { $in: reminderInvitations } }, { invitation: 1 }).lean() : [],
  ]);
  const byId = <T extends { _id: unknown }>(docs: T[]) => new Map(docs.map((d) => [String(d._id), d]));
  return {
    campaigns: byId(campaigns),
    contacts: byId(contacts),
    invitations: byId(invitations),
    institutions: byId(institutions),
    suppressed: new Set(suppressed.map((s) => s.email)),
    answered: new Set(answered.map((r) => String(r.invitation))),
  };
}

/** Why a claimed message must not go out now, or undefined when it may. */
function reasonToSkip(deps: SenderDeps, message: Claimed, context: Context): string | undefined {
  const contact = context.contacts.get(String(message.contact));
  const invitation = context.invitations.get(String(message.invitation));
  const campaign = context.campaigns.get(String(message.campaign));
  if (!contact || !invitation || !campaign) return 'deleted';
  // Unsubscribed and bounced contacts are never mailed, whenever they left.
  if (contact.unsubscribedAt) return 'unsubscribed';
  if (context.suppressed.has(message.to)) return 'suppressed';
  if (!contact.active) return 'inactive';
  if (invitation.revokedAt) return 'revoked';
  if (campaign.closedAt || campaign.closesAt <= deps.now()) return 'campaign closed';
  // A reminder is never sent to a contact whose response is complete.
  if (message.kind === 'reminder' && (invitation.completedAt || context.answered.has(String(invitation._id)))) return 'completed';
  return undefined;
}

async function deliver(deps: SenderDeps, policy: SenderPolicy, message: Claimed, context: Context): Promise<Outcome> {
  const { Outbox } = deps.models;
  const mine = { _id: message._id, state: 'sending' as const, claimedBy: deps.workerId };
  const skip = reasonToSkip(deps, message, context);
  if (skip) {
    await Outbox.updateOne(mine, { $set: { state: 'skipped', skipReason: skip } });
    return 'skipped';
  }
  const campaign = context.campaigns.get(String(message.campaign))!;
  const contact = context.contacts.get(String(message.contact))!;
  const invitation = context.invitations.get(String(message.invitation))!;
  const mail = composeMessage({
    campaign,
    kind: message.kind,
    language: isLanguage(message.language) ? message.language : 'en',
    from: deps.from,
    to: message.to,
    messageId: messageIdFor(message._id, deps.from),
    values: {
      contactName: contact.name,
      institutionName: context.institutions.get(String(contact.institution))?.name ?? '',
      link: personalLink(deps, invitation),
      unsubscribeLink: unsubscribeLink(deps, String(contact._id)),
      started: Boolean(invitation.startedAt),
    },
  });
  try {
    const info = await deps.transport.sendMail(mail);
    await Outbox.updateOne(mine, {
      $set: { state: 'sent', sentAt: deps.now(), messageId: info.messageId ?? mail.messageId },
      $unset: { lastError: 1 },
    });
    return 'sent';
  } catch (error) {
    return recordFailure(deps, policy, message, error);
  }
}

/**
 * 5xx on the recipient: the address is refused for good, the message fails
 * and the address is suppressed. Any other 5xx fails the message only (the
 * address may be fine). 4xx and connection errors are retried with doubling
 * delays until maxAttempts.
 */
async function recordFailure(deps: SenderDeps, policy: SenderPolicy, message: Claimed, error: unknown): Promise<Outcome> {
  const { Outbox, Suppression } = deps.models;
  const mine = { _id: message._id, state: 'sending' as const, claimedBy: deps.workerId };
  const smtp = error as { responseCode?: number; response?: string; code?: string; message?: string };
  const reason = (smtp.response ?? smtp.message ?? String(error)).slice(0, 1000);
  const permanent = typeof smtp.responseCode === 'number' && smtp.responseCode >= 500 && smtp.responseCode < 600;
  if (permanent) {
    await Outbox.updateOne(mine, { $set: { state: 'failed', permanent: true, lastError: reason } });
    if (smtp.code === 'EENVELOPE') {
      await Suppression.updateOne(
        { email: message.to },
        { $setOnInsert: { email: message.to, reason, at: deps.now() } },
        { upsert: true },
      ).catch((e: { code?: number }) => {
        if (e.code !== 11000) throw e;
      });
    }
    return 'failed';
  }
  if (message.attempts >= policy.maxAttempts) {
    await Outbox.updateOne(mine, { $set: { state: 'failed', permanent: false, lastError: reason } });
    return 'failed';
  }
  const delay = Math.min(policy.backoffMs * 2 ** (message.attempts - 1), 6 * 3600_000);
  await Outbox.updateOne(mine, {
    $set: { state: 'queued', nextAttemptAt: new Date(deps.now().getTime() + delay), lastError: reason },
    $unset: { claimedBy: 1, claimedAt: 1 },
  });
  return 'retry';
}

/**
 * The same Message-ID for every attempt of a message, so that a coordinator
 * resolving an unknown message can look it up in the SMTP server's log.
 */
export function messageIdFor(id: Types.ObjectId, from: string): string {
  const domain = /@([^>\s]+)/.exec(from)?.[1] ?? 'localhost';
  return `<${id}@${domain}>`;
}

export interface RunningSender {
  /** Ends the loop after the step in progress; resolves when it has ended. */
  stop(): Promise<void>;
}

/**
 * The sender's background loop: turns abandoned claims into "unknown", then
 * sends due messages step by step, and waits `idleMs` when nothing is due.
 * Errors of one step (e.g. the database briefly away) are logged and the
 * loop goes on.
 */
export function startOutboxSender(deps: SenderDeps, policy: SenderPolicy = DEFAULT_POLICY, options: { idleMs?: number; onError?: (error: unknown) => void } = {}): RunningSender {
  const idleMs = options.idleMs ?? 1000;
  const onError = options.onError ?? ((error: unknown) => console.error('Sending emails failed, retrying shortly:', error));
  let running = true;
  let wake: AbortController | undefined;
  const loop = (async () => {
    let lastRecovery = 0;
    while (running) {
      try {
        if (Date.now() - lastRecovery >= Math.min(policy.leaseMs / 2, 30_000)) {
          lastRecovery = Date.now();
          await markAbandonedAsUnknown(deps, policy.leaseMs);
        }
        const outcomes = await sendDueMessages(deps, policy);
        if (outcomes.length > 0) continue;
      } catch (error) {
        if (!running) break;
        onError(error);
      }
      wake = new AbortController();
      await sleep(idleMs, undefined, { signal: wake.signal }).catch(() => undefined);
    }
  })();
  return {
    async stop() {
      running = false;
      wake?.abort();
      await loop;
    },
  };
}
