import { hostname } from 'node:os';
import { formatDateTime } from '../shared/dates.ts';
import { plural } from '../shared/plural.ts';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Types } from 'mongoose';
import { recordAudit } from '../accounts/audit.service.ts';
import { readAudience, type AudienceRead } from '../campaigns/audience.service.ts';
import { getCampaign, inviteCampaign } from '../campaigns/campaign.service.ts';
import type { Models } from '../db/models.ts';
import { freshRecipients, noteInvitationEmailsToCome, recipientsOf, recordInvitationRound, type InvitationRecipient } from '../mail/invitation-mail.service.ts';
import { canMail, enqueueMessages } from '../mail/outbox.service.ts';
import { createMailTransport, type SmtpTimeouts } from '../mail/mail-transport.ts';
import { OUTBOX_STATES, type MessageKind } from '../mail/outbox.model.ts';
import {
  DEFAULT_POLICY,
  findDueMessages,
  sendingWindows,
  sendMessages,
  type KnownRecipients,
  type Outcome,
  type SenderDeps,
  type SenderPolicy,
} from '../mail/outbox-sender.service.ts';
import { listUnknown, messageStatuses, type OutboxCounts } from '../mail/outbox.service.ts';
import type { SendingPause } from '../mail/outbox.model.ts';
import { activePauses, explainPause, resumeCampaign } from '../mail/sending-pause.service.ts';
import { polledCounts } from '../mail/sending-progress.ts';
import { completeRoundEnqueueing, latestReminderRound, startReminderRound } from '../reminders/reminder.service.ts';
import { HttpError } from '../shared/http-error.ts';
import { ChangeSignal } from '../shared/change-signal.ts';
import { CONTACT_LIST, stampOf } from '../shared/change-stamp.ts';

/** The sending settings of the configuration (server/config.ts) that the command needs. */
export interface CliMailSettings {
  smtpUrl?: string;
  from: string;
  ratePerSecond: number;
  maxConnections: number;
  maxAttempts: number;
  leaseMs: number;
  /** The first wait after a temporary error (SEND_BACKOFF_SECONDS); the default policy's when unset. */
  backoffMs?: number;
  /** How long an outcome waits at most for its batch (SEND_OUTCOME_WAIT_MS); the default policy's when unset. */
  outcomeWaitMs?: number;
  timeouts: SmtpTimeouts;
}

/** Where the progress goes (stderr in the real tool): redrawn in place on a terminal, else a line every 5 %. */
export interface ProgressOutput {
  write(text: string): void;
  isTTY: boolean;
}

export interface CampaignSendDeps {
  models: Models;
  now: () => Date;
  tokenKey: Buffer;
  publicUrl: string;
  print: (line: string) => void;
  mail: CliMailSettings;
  progress: ProgressOutput;
  /** Aborted on Ctrl-C: sending stops after the batch in flight. */
  stop?: AbortSignal;
  /** Links made and emails queued per step of the queueing (500 unless set; the first step at most FIRST_STEP). */
  queueStep?: number;
  /** Hears each step of the queueing once it is written (and claimable); the next step waits for it. */
  onQueued?: (queued: number) => Promise<void> | void;
}

/** Which reminder round the command sends: the one in progress, or a new one named by its number. */
export type ReminderChoice = { continue: true } | { newRound: number };

/**
 * campaign:send — creates the personal links and enqueues the invitations (or
 * starts or continues a reminder round), then sends the campaign's queued
 * messages from this process until none is left, drawing the progress. Every
 * step is idempotent and the outbox records each message's outcome, so
 * running the command again, or after Ctrl-C or a crash, sends nothing twice.
 *
 * Reminders: `{ continue }` finishes the latest round and never starts one;
 * `{ newRound: n }` starts round n (the number the dry run named), and when
 * round n exists already it continues it, so the same command run twice is
 * one round. Returns the exit code for the round this run is about: 0 when
 * every message of it was sent or skipped (whatever an older round did), 1
 * when some failed or their outcome is unknown, or no round could be sent,
 * 130 when stopped by Ctrl-C.
 */
export async function sendCampaign(
  deps: CampaignSendDeps,
  campaignId: Types.ObjectId,
  options: { reminder?: ReminderChoice; actor: string; /** The campaign's audience as just read to print it (readAudience). */ audience?: AudienceRead },
): Promise<number> {
  if (!(await deps.models.Campaign.exists({ _id: campaignId }))) throw new HttpError(404, 'This campaign does not exist (see campaign:list).');
  let filter: RoundFilter;
  let queueing: Queueing | undefined;
  if (options.reminder) {
    const round = await reminderRoundToSend(deps, campaignId, options.reminder, options.actor);
    if (round === undefined) return 1;
    filter = { campaign: campaignId, kind: 'reminder', round };
  } else {
    filter = { campaign: campaignId, kind: 'invitation', round: 0 };
    queueing = queueInvitations(deps, filter, options.actor, options.audience);
    if (!deps.mail.smtpUrl) await queueing.done;
  }

  if (!deps.mail.smtpUrl) {
    deps.print(
      'Not sending from the command line: SMTP_URL is not set.\n' +
        "The running platform's sender sends the queued messages (to its local mail catcher when it has no SMTP_URL either).\n" +
        `Follow the sending at ${deps.publicUrl}/admin/campaigns/${campaignId}/sending`,
    );
    return 0;
  }

  const transport = createMailTransport({ url: deps.mail.smtpUrl, ratePerSecond: deps.mail.ratePerSecond, maxConnections: deps.mail.maxConnections, timeouts: deps.mail.timeouts });
  const sender: SenderDeps = {
    models: deps.models,
    transport,
    tokenKey: deps.tokenKey,
    publicUrl: deps.publicUrl,
    from: deps.mail.from,
    now: deps.now,
    workerId: `${hostname()}:${process.pid}:cli-${randomBytes(3).toString('hex')}`,
    // The coordinator reads the command's output, not a log.
    logger: { warn: (fields, message) => deps.print(`Warning: ${message} (${JSON.stringify(fields)})`) },
  };
  const policy: SenderPolicy = { ...DEFAULT_POLICY, maxAttempts: deps.mail.maxAttempts, leaseMs: deps.mail.leaseMs, backoffMs: deps.mail.backoffMs ?? DEFAULT_POLICY.backoffMs, ...sendingWindows(deps.mail.maxConnections), outcomeWaitMs: deps.mail.outcomeWaitMs };
  const bar = progressBar(deps.progress);
  // Running the command again is the coordinator's "try again now" for a campaign the relay's failures paused.
  if (await resumeCampaign(deps, campaignId, options.actor)) {
    await recordAudit(deps.models, { actor: options.actor, action: 'mail.resume-sending', target: `campaign:${campaignId}`, at: deps.now() });
    deps.print('Sending was paused after errors of the mail server: trying again now.');
  }
  let counts: OutboxCounts;
  let pause: SendingPause | undefined;
  try {
    ({ counts, pause } = await sendUntilDone(sender, policy, filter, deps.stop, bar, queueing));
    // A queueing that failed while a pass was sending is not waited on by the sending: its error is the run's.
    await queueing?.done;
  } finally {
    transport.close();
    // Sending failed: the queueing is not left running on a database about to close (its error, if any, is the second one).
    await queueing?.stop();
  }
  bar.draw(counts);
  bar.end(counts);

  const what = filter.kind === 'reminder' ? `reminder round ${filter.round}` : 'invitations';
  if (deps.stop?.aborted) {
    const again = filter.kind === 'reminder' ? `campaign:send --campaign ${campaignId} --reminder-round --yes` : 'the same command';
    deps.print(`Stopped after the batch in flight: ${counts.queued + counts.sending} messages of the ${what} not sent yet. Run ${again} to finish; nothing is sent twice.`);
    return 130;
  }
  if (pause) {
    deps.print(`Sending is paused: ${explainPause(pause)}`);
    deps.print(`The mail server answered: ${pause.error}${pause.smtpCommand ? ` (at ${pause.smtpCommand})` : ''}.`);
    deps.print(
      `${counts.queued} messages of the ${what} wait; no address was suppressed. Run the command again after fixing it` +
        ` (or let the platform's sender retry from ${formatDateTime(pause.until)}).`,
    );
    return 1;
  }
  deps.print(`Done${filter.kind === 'reminder' ? ` (${what})` : ''}: ${counts.sent} sent, ${counts.skipped} skipped, ${counts.failed} failed, ${counts.unknown} unknown, of ${counts.total}.`);
  if (counts.failed + counts.unknown === 0) return 0;
  await printProblems(deps, filter);
  return 1;
}

type RoundFilter = { campaign: Types.ObjectId; kind: MessageKind; round: number };

/**
 * The reminder round this run sends, after saying which it is; undefined
 * (with the reason printed) when there is none to send.
 */
async function reminderRoundToSend(deps: CampaignSendDeps, campaignId: Types.ObjectId, choice: ReminderChoice, actor: string): Promise<number | undefined> {
  const latest = await latestReminderRound(deps, campaignId);
  const wanted = 'newRound' in choice ? choice.newRound : latest?.round;
  if (latest && wanted === latest.round) {
    await completeRoundEnqueueing(deps, latest);
    deps.print(`Reminder round ${latest.round} was started on ${formatDateTime(latest.startedAt)} by ${latest.startedBy}: finishing it (nothing is sent twice).`);
    return latest.round;
  }
  if (!('newRound' in choice)) {
    deps.print('No reminder round has been started, so there is none to finish. Run with --reminder-round alone for the dry run of the next round, then start it with --new-round <n>.');
    return undefined;
  }
  const started = await startReminderRound(deps, campaignId, actor, choice.newRound);
  if (!started.started) {
    deps.print(`Reminder round ${choice.newRound} was not started: ${started.reason}`);
    return undefined;
  }
  await recordAudit(deps.models, { actor, action: 'mail.send-round', target: `campaign:${campaignId}`, details: started, at: deps.now() });
  deps.print(`Reminder round ${started.round} started: ${plural(started.recipients, 'contact has', 'contacts have')} not completed.`);
  return started.round;
}

/** The queueing of the invitations beside the sending (see queueInvitations). */
interface Queueing {
  finished: boolean;
  /** Steps written so far. */
  steps: number;
  /** Resolves when a step after `step` is written or the queueing has ended; rejects with its error. */
  after(step: number): Promise<void>;
  /** The round's counts, read before the first step was written and moved on by each step. */
  counts: Promise<OutboxCounts>;
  /** Emails still to queue, as far as known (links not yet made count as one each): for the progress bar. */
  pending: number;
  done: Promise<void>;
  /** Ends the queueing after the step in progress (a later run queues the rest). */
  stop(): Promise<void>;
  /** The audience's contacts and institutions as the queueing read them, while the contact list has not changed since. */
  known(): Promise<KnownRecipients | undefined>;
}

/** The first step of the queueing is small, so that the sending starts at once. */
const FIRST_STEP = 50;

/**
 * Makes the campaign's personal links and queues their invitation emails,
 * `queueStep` at a time (the first step smaller) beside the sending: each step
 * is claimable as soon as it is written, so the first emails leave seconds
 * after the start, as the platform's background queue does. Then queues the
 * emails of links an earlier run made and did not queue (it was cut short),
 * records round 0 and writes the audit entry. Each step is idempotent (the
 * outbox's unique index, the links' unique (campaign, contact)), so a run
 * killed at any point and run again neither loses nor doubles an invitation.
 * Ctrl-C ends it after its step.
 *
 * The audience (every contact and institution, and the campaign's links) is
 * read once, or not at all when the command has read it to print it: the
 * links, the emails' addresses and the sender's context (known()) come from
 * it, and the sender's passes read no contact or institution again while the
 * contact list's change stamp has not moved.
 */
function queueInvitations(deps: CampaignSendDeps, filter: RoundFilter, actor: string, audienceRead?: AudienceRead): Queueing {
  const campaignId = filter.campaign;
  const step = Math.max(1, deps.queueStep ?? 500);
  const halt = new AbortController();
  const stopped = () => halt.signal.aborted || Boolean(deps.stop?.aborted);
  const wake = new ChangeSignal();
  const notify = () => wake.notify();
  const audience = audienceRead ? Promise.resolve(audienceRead) : getCampaign(deps, campaignId).then((campaign) => readAudience(deps.models, campaign));
  // Read before anything is queued, so that what each step adds is counted exactly once. A campaign
  // without links has no invitation emails (they are written after their links and removed before
  // them), so its round starts from nothing and the outbox's history is not read.
  const counts = audience.then((read) => (read.linked.size === 0 ? noMessages() : roundCounts(deps, filter)));
  counts.catch(() => undefined);
  let known: KnownRecipients | undefined;
  let added = 0;
  const queueing: Queueing = {
    finished: false,
    steps: 0,
    pending: 0,
    counts,
    done: Promise.resolve(),
    async after(seen) {
      while (queueing.steps <= seen && !queueing.finished) await wake.next;
      if (queueing.finished) await queueing.done;
    },
    async stop() {
      halt.abort();
      await queueing.done.catch(() => undefined);
    },
    async known() {
      const read = await audience.catch(() => undefined);
      if (!read || !known) return undefined;
      // A contact edited, deactivated or unsubscribed since the audience was read: from now on the sender reads them.
      if ((await stampOf(deps.models, 'contacts', CONTACT_LIST)) !== read.contactListStamp) known = undefined;
      return known;
    },
  };
  let emailsNoted = false;
  const enqueue = async (recipients: InvitationRecipient[], leftAfter: number) => {
    const before = await counts;
    if (recipients.length > 0 && !emailsNoted) {
      await noteInvitationEmailsToCome(deps.models, campaignId);
      emailsNoted = true;
    }
    for (let start = 0; start < recipients.length && !stopped(); start += step) {
      const part = recipients.slice(start, start + step);
      const written = await enqueueMessages(deps, 'invitation', 0, part.map(({ institution: _, ...r }) => r));
      added += written;
      before.total += written;
      before.queued += written;
      queueing.pending = leftAfter + Math.max(0, recipients.length - start - step);
      queueing.steps += 1;
      notify();
      await deps.onQueued?.(added);
    }
  };
  queueing.done = (async () => {
    const read = await audience;
    const suppressions = deps.models.Suppression.find({}, { email: 1 }).lean().exec();
    suppressions.catch(() => undefined);
    known = {
      contacts: new Map(read.members.map((m) => [String(m._id), { _id: m._id, name: m.name, institution: m.institution }])),
      institutions: new Map(read.members.map((m) => [String(m.institution), { name: m.institutionName }])),
    };
    // The members are active and not unsubscribed contacts of active institutions: only the suppression list is left to check.
    const mailable = suppressions.then((list) => {
      const suppressed = new Set(list.map((s) => s.email));
      return new Map(read.members.filter((m) => canMail(m, suppressed)).map((m) => [String(m._id), m]));
    });
    let recipientCount = 0;
    const links = await inviteCampaign(deps, campaignId, actor, {
      step,
      firstStep: Math.min(step, FIRST_STEP),
      audience: read,
      onLinks: async (created, left) => {
        queueing.pending = left + created.length;
        if (stopped()) return;
        const recipients = recipientsOf(campaignId, created, await mailable);
        recipientCount += recipients.length;
        await enqueue(recipients, left);
      },
    });
    if (stopped()) return;
    let queued = { added, total: recipientCount };
    // A campaign that had no links before this run, and got every link it asked for, has no
    // link without its email; else links made by an earlier run cut short are queued now.
    const asked = read.members.filter((m) => !read.linked.has(String(m._id))).length;
    if (read.linked.size > 0 || links.created !== asked) {
      const { recipients, fresh, alreadyQueued } = await freshRecipients(deps.models, campaignId);
      await enqueue(fresh, 0);
      if (stopped()) return;
      recipientCount = recipients.length;
      queued = { added, total: alreadyQueued + fresh.length };
    }
    await recordInvitationRound(deps, campaignId, actor, recipientCount);
    await recordAudit(deps.models, { actor, action: 'mail.send-invitations', target: `campaign:${campaignId}`, details: queued, at: deps.now() });
    deps.print(`${plural(links.created, 'personal link', 'personal links')} created (${links.total} in all); ${plural(added, 'invitation', 'invitations')} queued (${queued.total} in all).`);
  })().finally(() => {
    queueing.finished = true;
    notify();
  });
  queueing.done.catch(() => undefined);
  return queueing;
}

/**
 * The round's emails by state, from the campaign's email journal as the
 * sending page follows it (sending-progress.ts): the first count of a run
 * starts from the campaign's checkpoint (or reads its emails whole when it
 * has none), and each later one reads only the entries written since, by
 * _id. A count by a filter (countByState) read every campaign's emails,
 * claims and outcomes on the embedded engine, at every pass of a run that
 * waits for retries.
 */
async function roundCounts(deps: Pick<CampaignSendDeps, 'models'>, filter: RoundFilter): Promise<OutboxCounts> {
  const byRound = await polledCounts({ models: deps.models }, filter.campaign);
  const round = byRound.rounds.find((r) => r.round === filter.round)?.counts;
  const counts = noMessages();
  if (round) for (const key of Object.keys(counts) as Array<keyof OutboxCounts>) counts[key] = round[key];
  return counts;
}

/** A round with no message yet. */
function noMessages(): OutboxCounts {
  return { ...(Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])) as Record<(typeof OUTBOX_STATES)[number], number>), total: 0 };
}

/** Lists the failed messages with the server's reason, and the unknown ones the coordinator must resolve. */
async function printProblems(deps: CampaignSendDeps, filter: RoundFilter) {
  const failed = (await messageStatuses(deps, filter)).filter((s) => s.state === 'failed');
  for (const status of failed) deps.print(`  failed   ${status.message.to}: ${status.last?.error ?? 'no reason recorded'}`);
  const unknown = (await listUnknown(deps, { campaign: filter.campaign })).filter(({ message }) => message.kind === filter.kind && message.round === filter.round);
  for (const { message, outcome, messageId, claimedAt } of unknown) {
    deps.print(`  unknown  ${message.to} (Message-ID ${messageId}, claimed ${claimedAt ? formatDateTime(claimedAt) : '?'}): ${outcome.error ?? ''}`);
  }
  if (failed.length + unknown.length > 0) deps.print(`Retry the failed messages and resolve the unknown ones at ${deps.publicUrl}/admin/campaigns/${filter.campaign}/sending`);
}

/**
 * Sends the campaign's due messages until none is queued or being sent, or
 * the relay's failures paused the campaign; waits while only retries not yet
 * due, or claims of another sender, remain. Other campaigns' messages are
 * left to the platform's sender. The progress is counted from the
 * campaign's email journal (roundCounts) at the start of a pass and after a
 * pass with outcomes, and in between from this sender's own outcomes as
 * they come. While `queueing` runs, each pass sends what its steps have
 * written so far and the next waits for a further step; the counts are its
 * own (read before its first step and moved on by each), up to the first
 * count after it has ended.
 */
async function sendUntilDone(
  sender: SenderDeps,
  policy: SenderPolicy,
  filter: RoundFilter,
  stop: AbortSignal | undefined,
  bar: ReturnType<typeof progressBar>,
  queueing?: Queueing,
): Promise<{ counts: OutboxCounts; pause?: SendingPause }> {
  const campaignId = filter.campaign;
  // What the queueing read of the audience serves every pass of this run, not only those beside it.
  const known = queueing?.known;
  for (;;) {
    const alongside = queueing && !queueing.finished ? queueing : undefined;
    const stepsSeen = alongside?.steps ?? 0;
    // Abandoned claims are looked for only when a busy sender has gone silent (the platform's sender looks at every claim once at its start).
    // The count of what the round held before (from the email journal) is not waited for:
    // the first messages go while it is read, and their outcomes are added to it when it comes.
    const counting = queueing ? queueing.counts : roundCounts(sender, filter);
    counting.catch(() => undefined);
    const { due: ours, nextDueAt, context } = await findDueMessages(sender, policy, { campaign: campaignId, known });
    let outcomes: Outcome[] = [];
    /** The round's counts before this pass, moved on by this sender's outcomes (the queueing's own, while it runs). */
    let counts: OutboxCounts | undefined;
    /** What the bar shows: while queueing, the emails it has still to write count as queued. */
    const shown = (c: OutboxCounts) => (alongside ? { ...c, total: c.total + alongside.pending, queued: c.queued + alongside.pending } : c);
    if (ours.length > 0 && !stop?.aborted) {
      const early: Outcome[] = [];
      const count = (outcome: Outcome) => {
        if (outcome === 'retry') return;
        if (!counts) return void early.push(outcome);
        counts.queued -= 1;
        counts[outcome] += 1;
      };
      void counting.then((before) => {
        counts = queueing ? before : { ...before };
        for (const outcome of early.splice(0)) count(outcome);
        bar.draw(shown(counts));
      }, () => undefined);
      const redraw = setInterval(() => counts && bar.draw(shown(counts)), 500);
      try {
        // Ctrl-C stops the claiming: the messages already claimed are sent and get their outcomes recorded.
        outcomes = await sendMessages(sender, policy, ours, context!, { stopped: () => Boolean(stop?.aborted), onOutcome: count });
      } finally {
        clearInterval(redraw);
      }
    }
    const before = await counting;
    if (alongside) {
      // Nothing left of what was written when this pass read: wait for the queueing's next step (or its end).
      if (ours.length === 0 || stop?.aborted) await alongside.after(stepsSeen);
      continue;
    }
    // A retry or an unknown outcome (which pauses the campaign) changes what is due: read it again.
    if (outcomes.some((o) => o === 'retry' || o === 'unknown') && !stop?.aborted) continue;
    // When this sender's own final outcomes leave nothing of the round queued, and no other
    // sender had any of it in hand, the round is done: no second count.
    if (counts && before.sending === 0 && counts.queued === 0) return { counts };
    const [after, pause] = await Promise.all([outcomes.length > 0 ? roundCounts(sender, filter) : before, activePauses(sender).then((paused) => paused.get(String(campaignId)))]);
    counts = after;
    // From here on the round is counted from the journal at each pass, as another sender may have moved it.
    queueing = undefined;
    bar.draw(counts);
    if (stop?.aborted || counts.queued + counts.sending === 0) return { counts };
    // The relay fails for every message: waiting here would only hide that; the platform's sender (or a later run) retries.
    if (pause && counts.sending === 0) return { counts, pause };
    const waitMs = Math.max(250, Math.min(5000, nextDueAt ? nextDueAt.getTime() - sender.now().getTime() : 1000));
    await sleep(waitMs, undefined, { signal: stop }).catch(() => undefined);
  }
}

const BAR_WIDTH = 30;

/**
 * The progress line `[#####-----] 512/2000 sent · 3 failed · 0 unknown · 210 msg/s`.
 * The bar fills with every message that has an outcome (sent, skipped,
 * failed, unknown); the rate is messages settled per second over the last
 * few seconds.
 */
export function progressBar(output: ProgressOutput, clock: () => number = Date.now) {
  const samples: Array<{ at: number; settled: number }> = [];
  let lastStep = -1;
  let lastLine = '';
  let printedLine = '';

  function line(counts: OutboxCounts): string {
    const settled = counts.sent + counts.skipped + counts.failed + counts.unknown;
    const at = clock();
    samples.push({ at, settled });
    while (samples.length > 2 && at - samples[0]!.at > 5000) samples.shift();
    const first = samples[0]!;
    const rate = at > first.at ? ((settled - first.settled) * 1000) / (at - first.at) : 0;
    const filled = counts.total === 0 ? BAR_WIDTH : Math.round((settled / counts.total) * BAR_WIDTH);
    const skipped = counts.skipped > 0 ? ` · ${counts.skipped} skipped` : '';
    return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${counts.sent}/${counts.total} sent · ${counts.failed} failed · ${counts.unknown} unknown${skipped} · ${Math.round(rate)} msg/s`;
  }

  return {
    draw(counts: OutboxCounts) {
      const text = line(counts);
      if (output.isTTY) {
        output.write(`\r${text}\x1b[K`);
      } else {
        // Without a terminal, a line at every 5 % step keeps logs short.
        const settled = counts.sent + counts.skipped + counts.failed + counts.unknown;
        const step = counts.total === 0 ? 20 : Math.floor((settled / counts.total) * 20);
        if (step > lastStep) {
          output.write(`${text}\n`);
          printedLine = text;
        }
        lastStep = Math.max(lastStep, step);
      }
      lastLine = text;
    },
    end(counts: OutboxCounts) {
      if (output.isTTY) {
        output.write('\n');
        return;
      }
      // Where sending stopped, even between two 5 % steps.
      if (lastLine !== printedLine) output.write(`${lastLine}\n`);
    },
  };
}
