import type { Transporter } from 'nodemailer';
import { setTimeout as sleep } from 'node:timers/promises';
import { Types } from 'mongoose';
import { contactListState, keptContactListIfCurrent, readContactList } from '../campaigns/audience-state.ts';
import { hasCompleted } from '../respond/respond.service.ts';
import type { Models } from '../db/models.ts';
import { personalLink } from '../invitations/invitation.service.ts';
import { linksChangedAfter, readCampaignLinks } from '../invitations/link-copy.store.ts';
import { HASHED_ADDRESS, suppressionHash } from '../privacy/subject.store.ts';
import { ChangeSignal } from '../shared/change-signal.ts';
import { noteTestSendChange } from '../shared/change-stamp.ts';
import { contactListStamp, MAX_JOURNALLED_IDS, noteContactsChange } from '../shared/contact-changes.ts';
import { isLanguage } from '../shared/languages.ts';
import { composeMessage, type ComposedMessage } from './mail-message.ts';
import { readyMessage, type MailWarnings } from './raw-message.ts';
import type { OutboxMessage } from './outbox.model.ts';
import { withTracker } from './mail-transport.ts';
import {
  DueBatches,
  dueViewComplete,
  insertIgnoringDuplicates,
  intentsToRepair,
  markAbandonedAsUnknown,
  outboxSignalToken,
  readDueView,
  rebuildDueView,
  recordHeartbeat,
  repairIntents,
  repairLostClaims,
  retriesAllowed,
  settleDue,
  SettledDue,
  silentWorkers,
  type DueMessage,
} from './outbox.service.ts';
import { EmailChanges, journalEmailChanges } from './email-changes.ts';
import { activePauses, pauseCampaign } from './sending-pause.service.ts';
import { emailText, sentEmailPacker, type PackedEmail } from './sent-email.store.ts';
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
  /** The platform's log (index.ts, run-sender.ts) or the command's output (campaign:send): a wording whose ready-built email fails its check (raw-message.ts) is told there. */
  logger?: MailWarnings;
}

export interface SenderPolicy {
  /** Claims of one message before a temporary failure becomes final. */
  maxAttempts: number;
  /** See markAbandonedAsUnknown. */
  leaseMs: number;
  /** Messages claimed in one insert (the window). */
  batchSize: number;
  /** Messages handed to the pool at once (it spreads them over its connections); a window's worth (batchSize) unless set. */
  relayWindow?: number;
  /** First retry delay; it doubles with each attempt (capped at six hours). */
  backoffMs: number;
  /** How often a sender with messages in flight records its heartbeat; a quarter of the lease unless set. */
  heartbeatMs?: number;
  /** How often at most a pass moves its campaigns' "emails" change stamp behind its outcomes (see EmailStamps); 250 ms unless set. */
  stampIntervalMs?: number;
  /** How old the pauses, the suppression list and the look-up of link changes read for a window may be for the next window (see FACTS_MAX_AGE_MS); 250 ms unless set. */
  factsMaxAgeMs?: number;
  /** Outcomes written together (see sendMessages); a window's worth (batchSize) unless set. */
  outcomeBatch?: number;
  /** How long at most an outcome waits for the rest of its batch (see OUTCOME_WAIT_MS); 100 ms unless set. */
  outcomeWaitMs?: number;
}

export const DEFAULT_POLICY: SenderPolicy = { maxAttempts: 8, leaseMs: 120_000, batchSize: 20, backoffMs: 60_000 };

/**
 * Claims a sender may hold without an outcome per SMTP connection: what a
 * sender killed mid-send leaves unknown (see sendMessages).
 */
export const CLAIMS_WITHOUT_OUTCOME_PER_CONNECTION = 6;

/**
 * The windows of a sender for a pool of this many connections, within
 * CLAIMS_WITHOUT_OUTCOME_PER_CONNECTION: one message per connection in the
 * pool's hands (the next is handed over from the claims ahead as soon as the
 * answer to the last is in, the database never in between), and the rest split
 * between the claims ahead and the outcomes being gathered. Each insert of
 * claims or outcomes costs the embedded engine about 1.8 ms of CPU besides
 * 0.1 ms per document (bench:db-writes), so 2.5 rather than 2 messages per
 * connection in each saves a fifth of those inserts.
 */
export function sendingWindows(maxConnections: number): Required<Pick<SenderPolicy, 'batchSize' | 'relayWindow' | 'outcomeBatch'>> {
  const connections = Math.max(1, maxConnections);
  const rest = (CLAIMS_WITHOUT_OUTCOME_PER_CONNECTION - 1) * connections;
  return { relayWindow: connections, batchSize: Math.ceil(rest / 2), outcomeBatch: Math.floor(rest / 2) };
}

export type { DueMessage };

/**
 * Reads what is left to send (the due view, not the outbox's history): the
 * attempts of the open campaigns due now, and when the next retry (or the end
 * of a campaign's pause) falls due. On the way, the claims of a sender silent
 * for the lease (see markAbandonedAsUnknown) are recorded as unknown, what
 * the email journal refused in this worker's failed pass is journalled, and the
 * due entries a crash kept from being written are put back from the intents
 * it left (repairIntents): the start of a sender is a pass like any other,
 * and reads no history. Only a database's first start on this version builds
 * the view from the outbox and reads every claim (rebuildDueView), for what
 * older versions left without an entry or a heartbeat.
 * `campaign` keeps to that campaign's messages (the command line's sender);
 * `known` gives what the caller holds of their recipients (KnownRecipients).
 */
export async function findDueMessages(
  deps: SenderDeps,
  policy: SenderPolicy,
  options: { campaign?: Types.ObjectId; known?: () => Promise<KnownRecipients | undefined> } = {},
): Promise<{ due: DueMessage[]; nextDueAt?: Date; context?: Context }> {
  const now = deps.now();
  const complete = await dueViewComplete(deps);
  await journalLeftOver(deps);
  await markAbandonedAsUnknown(deps, policy.leaseMs, { everyClaim: !complete });
  if (!complete) await rebuildDueView(deps);
  await repairIntents(deps);
  const [entries, paused] = await Promise.all([readDueView(deps.models), activePauses(deps)]);
  // Only the campaigns with entries, by _id: a filter on them would read every campaign ever run.
  const mine = options.campaign ? entries.filter((e) => String(e.message.campaign) === String(options.campaign)) : entries;
  const campaigns = await readCampaigns(deps.models, [...new Set(mine.map((e) => String(e.message.campaign)))]);
  const open = new Map(campaigns.filter((c) => !c.closedAt && c.closesAt > now).map((c) => [String(c._id), c]));
  let due: DueMessage[] = [];
  let nextDueAt: Date | undefined;
  for (const entry of mine) {
    const campaign = String(entry.message.campaign);
    if (!open.has(campaign)) continue;
    // A paused campaign's messages wait for the end of the pause (a retry after a relay error is
    // due at once, so it goes as soon as the pause ends or a coordinator ends it).
    const pausedUntil = paused.get(campaign)?.until;
    let dueAt = entry.message.nextAttemptAt;
    if (pausedUntil && pausedUntil > dueAt) dueAt = pausedUntil;
    if (dueAt <= now) due.push(entry);
    else if (!nextDueAt || dueAt < nextDueAt) nextDueAt = dueAt;
  }
  due = await retriesAllowed(deps.models, due);
  if (due.length === 0) return { due, nextDueAt };
  // Two workers reading the same list start at different places and rarely contend for a claim.
  for (let i = due.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [due[i], due[j]] = [due[j]!, due[i]!];
  }
  return { due, nextDueAt, context: await loadContext(deps.models, due, open, await options.known?.()) };
}

/**
 * Claims the messages for this worker by inserting "<message id>:<attempt>"
 * into outbox_claims: the unique _id lets exactly one worker win each
 * attempt, even when two processes hold the same list (a conditional update
 * is not enough on FerretDB, which applies it as a read followed by a write).
 */
export async function claim(deps: SenderDeps, items: readonly DueMessage[]): Promise<DueMessage[]> {
  const at = deps.now();
  const claims = items.map(({ message, attempt }) => ({
    _id: `${message._id}:${attempt}`,
    message: message._id,
    campaign: message.campaign,
    attempt,
    worker: deps.workerId,
    at,
    messageId: messageIdFor(message._id, deps.from),
  }));
  const won = await insertIgnoringDuplicates(deps.models.OutboxClaim.collection, claims);
  await repairLostClaims(deps.models, items.filter((_, index) => !won.has(index)));
  // A test message now shows as being sent.
  await noteTestSendChange(deps.models, items.map((i) => i.message));
  return items.filter((_, index) => won.has(index));
}

export type Outcome = 'sent' | 'retry' | 'failed' | 'skipped' | 'unknown';

interface Recorded extends Partial<PackedEmail> {
  _id: string;
  message: Types.ObjectId;
  campaign: Types.ObjectId;
  attempt: number;
  state: Outcome;
  at: Date;
  messageId?: string;
  error?: string;
  permanent?: boolean;
  smtpCommand?: string;
  relayError?: boolean;
  nextAttemptAt?: Date;
  skipReason?: string;
}

/**
 * Claims, sends and records the messages as one stream, so that the relay
 * is never left waiting for the database: `batchSize` messages (the window)
 * are in the pooled transport at any time (it spreads them over its
 * connections and keeps to the rate limit), the next window is claimed while
 * the relay has the previous one, and outcomes are written behind the
 * sending. Every message is claimed before it is handed over, and every
 * message handed over gets its outcome before the pass returns. After a
 * relay error (or an unknown outcome) the campaign's messages not yet
 * handed over are held back as retries for the pause; `stopped` (Ctrl-C,
 * shutdown) ends the claiming, and the messages already claimed are sent.
 * `onOutcome` hears each outcome as it is known (the command line's
 * progress, counted without reading the outbox again).
 */
export async function sendMessages(
  deps: SenderDeps,
  policy: SenderPolicy,
  items: readonly DueMessage[],
  passContext: Context,
  options: { stopped?: () => boolean; onOutcome?: (outcome: Outcome) => void } = {},
): Promise<Outcome[]> {
  const startedAt = deps.now();
  const window = Math.max(1, policy.batchSize);
  const outcomeBatch = Math.max(1, policy.outcomeBatch ?? window);
  const relayWindow = Math.max(1, policy.relayWindow ?? window);
  // The bound on what a sender killed at any moment leaves without an outcome: a window of
  // claims, the relay's window and a batch of outcomes (6 × SEND_MAX_CONNECTIONS, see
  // sendingWindows). A message counts against it from its claim until its outcome is written:
  // claimed and waiting, in the relay's hands, or answered and not yet recorded. The relay
  // holds at most its window; a whole window is claimed in one insert once the rest fits
  // beside it, so the claim of the next window overlaps the sending of earlier ones; the outcomes gathered for the next write have a batch of their own,
  // so that gathering them never holds up the claims, and the database's writes lagging
  // behind the relay take from the claims ahead, not from the relay's window.
  const bound = window + relayWindow + outcomeBatch;
  /** Campaigns whose messages are not handed over: paused by another sender, or by a relay error in this pass. */
  const held = new Set<string>();
  const outcomes: Outcome[] = [];
  let unwritten: Unwritten[] = [];
  /** The first error that stops the pass (the database away, a message that cannot be composed): no more claims. */
  let failure: unknown;
  /** Due entries of attempts with an outcome, removed in bulk behind the sending. */
  const settledDue = new SettledDue(deps.models);
  /** Batch entries, removed once their messages are claimed. */
  const dueBatches = new DueBatches(deps.models);
  const packEmails = sentEmailPacker(deps.models);
  /** The bases of the emails kept in this pass, by campaign, kind and language (see baseFor). */
  const bases = new Map<string, string>();
  const emailStamps = new EmailStamps(deps.models, policy.stampIntervalMs ?? STAMP_INTERVAL_MS);
  /** Something changed that the claiming or the handing over waits for. */
  const changed = new ChangeSignal();
  const notify = () => changed.notify();
  // Outcomes are written a batch at a time, one write after the other: on the embedded engine an
  // insert of one costs the database several times what each of an insert of ten does, and
  // the sender a round trip. A batch goes when it is full, when its first outcome has waited
  // OUTCOME_WAIT_MS (a slow relay), at once when it holds what others must hear of soon (a
  // relay error's pause, a refused address), and at the end of the pass. Until it is written
  // its messages are claimed without an outcome: a crash leaves them unknown, never resent.
  let writing: Promise<void> | undefined;
  let beingWritten = 0;
  let gathering: ReturnType<typeof setTimeout> | undefined;
  /** No outcome is coming that the batch could wait for: the pass is ending. */
  let draining = false;
  /** Claims tried (less those lost) and outcomes written in this pass: a failed pass that leaves a difference keeps its worker busy. */
  let claimedCount = 0;
  let recordedCount = 0;
  const write = (waited = false) => {
    if (writing || unwritten.length === 0) return;
    const urgent = unwritten.some(({ outcome }) => outcome.relayError || outcome.state === 'unknown' || outcome.state === 'failed');
    if (!waited && !draining && !urgent && unwritten.length < outcomeBatch) {
      gathering ??= setTimeout(() => {
        gathering = undefined;
        write(true);
      }, policy.outcomeWaitMs ?? OUTCOME_WAIT_MS);
      return;
    }
    clearTimeout(gathering);
    gathering = undefined;
    const chunk = unwritten;
    unwritten = [];
    beingWritten = chunk.length;
    // The emails the relay accepted are written in their outcomes (sent-email.store.ts).
    const sent = chunk.map(({ item, mail }) => {
      const campaign = passContext.campaigns.get(String(item.message.campaign));
      return mail && campaign ? { mail, base: baseFor(deps, item.message, campaign, bases) } : undefined;
    });
    writing = packEmails(sent)
      .then((packed) => {
        packed.forEach((email, index) => {
          if (email) Object.assign(chunk[index]!.outcome, email);
        });
        return recordOutcomes(deps, policy, chunk, startedAt, settledDue);
      })
      .then((written) => emailStamps.note(written))
      .then(() => {
        recordedCount += chunk.length;
      })
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => {
        writing = undefined;
        beingWritten = 0;
        notify();
        write();
      });
  };
  /** Claimed and not handed over yet, with the facts read for their claim. */
  const ahead: Array<{ item: DueMessage; context: Context }> = [];
  /** Messages being claimed (counted before the claim is sent). */
  let claiming = 0;
  const inFlight = new Set<Promise<void>>();
  /** Claims without a written outcome. */
  const outstanding = () => claiming + ahead.length + inFlight.size + unwritten.length + beingWritten;
  let next = 0;
  let claimsOver = false;
  /** The pauses and the suppression list as last read for a window. */
  let facts: { readAt: number; paused: Awaited<ReturnType<typeof activePauses>>; context: Context } | undefined;
  /** Claims window after window, each once it fits within the bound, until none is left. */
  const claimAll = async () => {
    try {
      while (next < items.length && !options.stopped?.() && failure === undefined) {
        if (outstanding() + window > bound) {
          await changed.next;
          continue;
        }
        const chunk = items.slice(next, next + window);
        next += window;
        claiming = chunk.length;
        // A campaign paused since the pass began (by this sender or another) waits; the facts are
        // read before the claim, in one round trip with the pauses, unless read within
        // FACTS_MAX_AGE_MS (a window goes out every few tens of milliseconds at full speed).
        const fresh = facts && performance.now() - facts.readAt < (policy.factsMaxAgeMs ?? FACTS_MAX_AGE_MS) ? facts : undefined;
        const readAt = performance.now();
        const [paused, context] = await Promise.all([fresh?.paused ?? activePauses(deps), refreshContext(deps.models, passContext, chunk, fresh?.context, facts?.context)]);
        if (!fresh) facts = { readAt, paused, context };
        for (const campaign of paused.keys()) held.add(campaign);
        const toClaim = chunk.filter((i) => !held.has(String(i.message.campaign)));
        // Counted before the claim: one that fails after its insert may still have won some.
        claimedCount += toClaim.length;
        const mine = await claim(deps, toClaim);
        // A pass that found the contact list not kept reads it whole from now on (readListMeanwhile).
        passContext.readingList?.readWhole();
        dueBatches.note(toClaim);
        emailStamps.note(mine.reduce((changes, { message, attempt }) => changes.add(message.campaign, { claim: `${message._id}:${attempt}` }), new EmailChanges()));
        // Those lost to another sender are not this one's to record.
        recordedCount += toClaim.length - mine.length;
        claiming = 0;
        for (const item of mine) ahead.push({ item, context });
        notify();
      }
    } catch (error) {
      // The messages in the relay's hands still get their outcomes before the error is reported.
      failure ??= error;
    } finally {
      claiming = 0;
      claimsOver = true;
      notify();
    }
  };
  const handOver = ({ item, context }: { item: DueMessage; context: Context }) => {
    const campaign = String(item.message.campaign);
    const task = (held.has(campaign) ? Promise.resolve(holdBack(deps, item)) : deliver(deps, policy, item, context)).then(
      ({ mail, ...outcome }: Recorded & { mail?: SentMail }) => {
        if (outcome.relayError || outcome.state === 'unknown') held.add(campaign);
        outcomes.push(outcome.state);
        options.onOutcome?.(outcome.state);
        unwritten.push({ item, outcome, mail });
        write();
      },
      (error: unknown) => {
        failure ??= error;
      },
    );
    inFlight.add(task);
    void task.finally(() => {
      inFlight.delete(task);
      notify();
    });
  };
  // Claims a failed pass left open were declared unknown once another sender found this one
  // silent, which then marked it idle: it may go idle again after its passes.
  if (leftClaimsOpen.has(deps.workerId) && !(await deps.models.OutboxWorker.findById(deps.workerId, { busy: 1 }).lean())?.busy) leftClaimsOpen.delete(deps.workerId);
  // The heartbeat comes before the claims, so that no claim of a live sender looks abandoned.
  await recordHeartbeat(deps, deps.workerId);
  const beating = setInterval(() => void recordHeartbeat(deps, deps.workerId).catch(() => undefined), policy.heartbeatMs ?? policy.leaseMs / 4);
  try {
    const claimed = claimAll();
    for (;;) {
      if (ahead.length > 0 && inFlight.size < relayWindow) {
        handOver(ahead.shift()!);
        continue;
      }
      if (claimsOver && ahead.length === 0) break;
      await changed.next;
    }
    await claimed;
    await Promise.all(inFlight);
    draining = true;
    write();
    while (writing) await writing;
    // Even after a failure: the outcomes written so far are shown.
    await emailStamps.flush().catch((error: unknown) => {
      failure ??= error;
    });
    // What a failed pass leaves in the view is repaired when met; only a pass without failure tidies it now.
    if (failure === undefined) {
      await settledDue.flush();
      await dueBatches.flush();
    }
  } finally {
    clearInterval(beating);
    clearTimeout(gathering);
  }
  // A message claimed but without an outcome (it could not be composed, or its outcome not
  // written) becomes unknown once the heartbeat is silent: the worker stays busy, even after
  // later passes succeed, until another sender has declared them, for a silent busy worker is
  // the only sign that has the claims read.
  if (failure !== undefined) {
    if (claimedCount > recordedCount) leftClaimsOpen.add(deps.workerId);
    // The worker is still busy: if it dies before its next pass journals these, another sender's repair does.
    if (emailStamps.left.size > 0) unjournalled.set(deps.workerId, (unjournalled.get(deps.workerId) ?? new EmailChanges()).addAll(emailStamps.left));
    throw failure;
  }
  if (!leftClaimsOpen.has(deps.workerId)) await recordHeartbeat(deps, deps.workerId, false);
  return outcomes;
}

/** Workers of this process whose failed pass left claims without an outcome (see above). */
const leftClaimsOpen = new Set<string>();

/**
 * What the email journal refused in a failed pass of a worker of this
 * process (the database briefly away), which its next pass journals first
 * (findDueMessages): written claims and outcomes that no entry names are
 * shown only by a page's whole read, and no repair looks for them while the
 * worker lives on.
 */
const unjournalled = new Map<string, EmailChanges>();

async function journalLeftOver(deps: SenderDeps): Promise<void> {
  const left = unjournalled.get(deps.workerId);
  if (!left) return;
  await journalEmailChanges(deps.models, left);
  if (unjournalled.get(deps.workerId) === left) unjournalled.delete(deps.workerId);
}

type Unwritten = { item: DueMessage; outcome: Recorded; mail?: SentMail };

/**
 * How long an outcome waits at most for the rest of its batch before it is
 * written: at full speed a batch fills in a few tens of milliseconds; a slow
 * relay's outcomes are written this late (a page shows them that much later).
 */
const OUTCOME_WAIT_MS = 100;

const HELD_BACK = 'Not handed to the mail server: sending of the campaign was paused after an error of the mail server.';

/** A claimed message not handed over because its campaign was paused meanwhile: due again when the pause ends. */
function holdBack(deps: SenderDeps, { message, attempt }: DueMessage): Recorded {
  return {
    _id: `${message._id}:${attempt}`,
    message: message._id,
    campaign: message.campaign,
    attempt,
    state: 'retry',
    relayError: true,
    at: deps.now(),
    error: HELD_BACK,
  };
}

/**
 * Writes the outcomes of messages the relay has answered (or not): the
 * outcomes first, so that whatever happens next every message handed to
 * the relay has one; then, side by side, the pause a relay error calls for
 * (before the retries' due entries, so that a retry of a relay error is
 * never due before the pause holds it) and the addresses the relay refused.
 * The attempts' own due entries are removed later, in bulk (SettledDue); the
 * emails as sent are in their outcomes (sentEmailPacker).
 */
async function recordOutcomes(deps: SenderDeps, policy: SenderPolicy, chunk: Unwritten[], passStartedAt: Date, settledDue: SettledDue): Promise<EmailChanges> {
  const written = new EmailChanges();
  if (chunk.length === 0) return written;
  const recorded = chunk.map((c) => c.outcome);
  const inserted = await insertIgnoringDuplicates(deps.models.OutboxOutcome.collection, recorded);
  const settled = chunk.map(({ item, outcome }, index) => ({
    message: item.message,
    attempt: item.attempt,
    batch: item.batch,
    state: inserted.has(index) ? outcome.state : ('unknown' as const),
    at: outcome.at,
    nextAttemptAt: outcome.nextAttemptAt,
  }));
  // Only the relay's refusal of this recipient (5xx to RCPT TO) suppresses an address.
  const refused = chunk.flatMap(({ item, outcome }) =>
    outcome.state === 'failed' && outcome.permanent && outcome.smtpCommand === 'RCPT TO' ? [{ email: item.message.to, reason: outcome.error!, at: outcome.at, campaign: item.message.campaign }] : [],
  );
  await Promise.all([
    pauseForRelayErrors(deps, policy, recorded, passStartedAt).then(() => settleDue(deps.models, settled, { removeLater: settledDue })),
    refused.length > 0 ? insertIgnoringDuplicates(deps.models.Suppression.collection, refused).then(() => noteContactsChange(deps.models, { suppressions: true })) : undefined,
  ]);
  // An attempt already declared unknown (this worker was too slow) keeps that outcome,
  // with a note of what really happened for the coordinator who resolves it (and the email, when the relay took it).
  for (const [index, outcome] of recorded.entries()) {
    if (inserted.has(index)) continue;
    const note = `Late report from ${deps.workerId}: ${outcome.state}${outcome.messageId ? ` as ${outcome.messageId}` : ''}${outcome.error ? ` (${outcome.error})` : ''}`;
    const email = outcome.sentEmail ? { sentEmail: outcome.sentEmail, sentEmailBase: outcome.sentEmailBase } : {};
    await deps.models.OutboxOutcome.updateOne({ _id: outcome._id, state: 'unknown' }, { $set: { error: note, ...email } });
  }
  // After every outcome of the chunk is written, so a page that sees the new stamp sees them all.
  await noteTestSendChange(deps.models, chunk.map((c) => c.item.message));
  // An outcome not inserted stays the unknown another worker wrote (and journalled); its late note moves the stamp.
  for (const [index, outcome] of recorded.entries()) written.add(outcome.campaign, inserted.has(index) ? { outcome: [outcome._id, outcome.state] } : {});
  return written;
}

/**
 * The campaigns' "emails" change stamps (the fieldwork page reads their
 * outcomes again when one moves), moved behind the writes of claims and
 * outcomes with an entry of the campaign's email journal naming them
 * (email-changes.ts; the sending page's poll follows it): after each write,
 * but at most once an interval (STAMP_INTERVAL_MS unless
 * the policy says otherwise) and at once at the end of the pass, the campaigns
 * of the writes in between together. Each write of outcomes is followed by a
 * stamp begun after it, so a page that sees the stamp sees those outcomes;
 * a page shows the sending at most that much late. One stamp per write was
 * a round trip per four messages (an upsert: a read and a write for the engine).
 */
class EmailStamps {
  private pending = new EmailChanges();
  private stamping: Promise<void> | undefined;
  private lastAt = Number.NEGATIVE_INFINITY;
  private flushing = false;
  /** Ends the wait for the interval (the flush does not wait for it). */
  private wake: (() => void) | undefined;
  private failure: unknown;

  constructor(
    private readonly models: SenderDeps['models'],
    private readonly intervalMs: number,
  ) {}

  /** What a write of claims or outcomes changed (journalled with the stamp, email-changes.ts). */
  note(changes: EmailChanges): void {
    this.pending.addAll(changes);
    this.stamping ??= this.stamp().finally(() => (this.stamping = undefined));
  }

  /** What the journal refused, after a flush that threw. */
  get left(): EmailChanges {
    return this.pending;
  }

  /** Moves what is waiting now (at the end of the pass); throws what a stamp failed with. */
  async flush(): Promise<void> {
    this.flushing = true;
    this.wake?.();
    while (this.stamping) await this.stamping;
    if (this.pending.size > 0) await this.stamp();
    if (this.failure !== undefined) throw this.failure;
  }

  private async stamp(): Promise<void> {
    while (this.pending.size > 0) {
      const wait = this.lastAt + this.intervalMs - performance.now();
      if (wait > 0 && !this.flushing) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
      const changes = this.pending;
      this.pending = new EmailChanges();
      this.lastAt = performance.now();
      try {
        await journalEmailChanges(this.models, changes);
      } catch (error) {
        // Tried again by the next stamp or the flush, which reports it (an entry written twice changes nothing).
        this.pending.addAll(changes);
        this.failure = error;
        if (!this.flushing) return;
        throw error;
      }
      this.failure = undefined;
    }
  }
}

const STAMP_INTERVAL_MS = 250;

/**
 * The relay failed for reasons that are not about one recipient (connection,
 * login, sender, message): the campaign pauses, and those messages (retries
 * marked relayError) are due again when the pause ends, without counting
 * against them. A relay that
 * left a message's outcome unknown (no answer after its data) pauses it too,
 * so that it does not leave the next messages unknown as well.
 */
async function pauseForRelayErrors(deps: SenderDeps, policy: SenderPolicy, recorded: Recorded[], batchStartedAt: Date) {
  const paused = new Set<string>();
  for (const outcome of recorded) {
    if ((!outcome.relayError && outcome.state !== 'unknown') || outcome.error === HELD_BACK || paused.has(String(outcome.campaign))) continue;
    paused.add(String(outcome.campaign));
    await pauseCampaign({ ...deps, by: deps.workerId }, outcome.campaign, { error: outcome.error ?? 'relay error', smtpCommand: outcome.smtpCommand }, policy.backoffMs, batchStartedAt);
  }
}

/**
 * One pass of the sender: reads what is due and sends it (sendMessages).
 * Returns the outcomes (empty when nothing was due). Tests and the benchmark
 * drive the sender with this; the background loop is startOutboxSender.
 */
export async function sendDueMessages(deps: SenderDeps, policy: SenderPolicy = DEFAULT_POLICY): Promise<Outcome[]> {
  const { due, context } = await findDueMessages(deps, policy);
  return due.length === 0 ? [] : sendMessages(deps, policy, due, context!);
}

/**
 * What the caller already holds of its messages' recipients, by id: the
 * command line's queueing has just read the audience (the contacts and their
 * institutions) to make the links, and says it is still current (the contact
 * list's change stamp has not moved) or gives undefined. A pass whose
 * messages are all invitations to these contacts reads none of the contacts
 * and institutions, and the links of each window by _id when it is claimed
 * (see refreshContext), instead of the whole collections.
 */
export interface KnownRecipients {
  contacts: ReadonlyMap<string, ContextContact>;
  institutions: ReadonlyMap<string, { name: string }>;
}

type ContextContact = { _id: Types.ObjectId; name: string; institution: Types.ObjectId; active?: boolean | null; unsubscribedAt?: Date | null };
/** What a pass knows of a link; startedAt and `answered` only as read by _id for a window (refreshContext), as every reminder's link is. */
type ContextLink = { _id: Types.ObjectId; tokenGeneration: number; revoked: boolean; startedAt?: Date | null; answered?: boolean };
/** What a window reads of a link by _id. */
const LINK_FIELDS = { tokenGeneration: 1, revokedAt: 1, startedAt: 1, completedAt: 1 } as const;

interface Context {
  campaigns: Map<string, CampaignOfContext>;
  contacts: ReadonlyMap<string, ContextContact>;
  /** The links read so far in the pass; refreshContext adds (or replaces) those of each window it reads. */
  invitations: Map<string, ContextLink>;
  /**
   * The campaigns whose links the pass took from their copy, with the change it is up to, while no
   * change came after it: their invitations go by the copy. Any other invitation's link is read by _id
   * in its window (refreshContext), and so is every reminder's.
   */
  linkCopies: Map<string, number>;
  institutions: ReadonlyMap<string, { name: string }>;
  /**
   * While the contact list is read whole for the pass (a fresh process's first pass, see
   * loadContext): the recipients and institutions its windows have read by _id meanwhile, which
   * `contacts` and `institutions` are until the whole list is in; `readWhole` starts that read
   * (once), which the pass does when its first window is claimed, and `whole` settles with it.
   */
  readingList?: { contacts: Map<string, ContextContact>; institutions: Map<string, { name: string }>; readWhole: () => void; whole?: Promise<void> };
  suppressed: Set<string>;
  /** Whether the list holds an erased person's address (a keyed hash): only then is each address hashed to look it up. */
  suppressedHashes: boolean;
  /** When a window read the suppression list (performance.now()), and the contact list's stamp read before it (see suppressionsNow). */
  suppressionsRead?: { at: number; stamp: string };
}

type Suppressions = Pick<Context, 'suppressed' | 'suppressedHashes' | 'suppressionsRead'>;

/** Campaigns by _id, one look-up each (a filter, `$in` included, reads every campaign ever run on the embedded engine); deleted ones are left out. */
async function readCampaigns(models: Models, ids: readonly string[]) {
  const campaigns = await Promise.all(ids.map((id) => models.Campaign.findById(id).lean()));
  return campaigns.filter((campaign) => campaign !== null);
}
type CampaignOfContext = Awaited<ReturnType<typeof readCampaigns>>[number];

/**
 * What the pass's messages need, read once per pass, besides their open
 * campaigns (`campaigns`, read by _id). On FerretDB a filter on
 * anything but _id reads the whole collection, so whole collections are
 * read once rather than filtered per batch, unless the caller knows every
 * message's recipient already (`known`). The contacts and institutions are
 * the contact list the platform keeps (audience-state.ts; the server's
 * process follows it in the background), read again only when their stamp moved.
 * The links are their campaigns' compact copies (link-copy.store.ts: a few
 * documents by _id, trusted only while no change of the links came after
 * them), so a pass reads its own campaigns' links, not every link of every
 * campaign ever run; a copy a writer has made untrusted is read afresh.
 * Whether a reminder's contact has completed is looked up for its window
 * (refreshContext), not read here for every response to the campaigns.
 * When this process does not keep the contact list current (its first pass,
 * or a change it has not read yet), the first window reads its recipients by
 * _id and goes out while the list is read (readListMeanwhile): the first
 * message does not wait for thousands of contacts.
 */
async function loadContext(models: Models, items: readonly DueMessage[], campaigns: Map<string, CampaignOfContext>, known?: KnownRecipients): Promise<Context> {
  const campaignIds = [...new Set(items.map((i) => String(i.message.campaign)))];
  if (known && items.every((i) => i.message.kind === 'invitation' && known.contacts.has(String(i.message.contact)))) {
    const suppressed = await models.Suppression.find({}, { email: 1 }).lean();
    return {
      campaigns,
      contacts: known.contacts,
      invitations: new Map(),
      linkCopies: new Map(),
      institutions: known.institutions,
      ...suppressionList(suppressed.map((d) => d.email)),
    };
  }
  const [contactList, invitations] = await Promise.all([
    // The contacts, institutions and suppression list as the platform keeps them (checked by their
    // stamp, which every change of a contact, an institution or a suppression moves), if kept
    // current. Each window reads the suppression list again (refreshContext).
    keptContactListIfCurrent(models),
    Promise.all(campaignIds.map((id) => readCampaignLinks(models, id))),
  ]);
  const links = {
    invitations: new Map(invitations.flatMap((read) => read.links).map((l) => [String(l._id), { _id: l._id, tokenGeneration: l.generation, revoked: l.revoked }])),
    // Links read while a writer was at work may lack some of its writes: those campaigns' links are read by _id in each window.
    linkCopies: new Map(campaignIds.flatMap((id, index) => (invitations[index]!.upTo === undefined ? [] : [[id, invitations[index]!.upTo!] as const]))),
  };
  if (!contactList) return readListMeanwhile(models, items, campaigns, links);
  // A recipient the kept list lacks is read afresh, never skipped as deleted on the kept list's word
  // (a contact written by a path that did not move the stamp would otherwise lose its message).
  const fresh = lacksRecipients(contactList.contacts, items) ? await readContactList(models) : contactList;
  return { campaigns, contacts: fresh.contacts, ...links, institutions: fresh.institutions, ...suppressionList(fresh.suppressed) };
}

function lacksRecipients(contacts: ReadonlyMap<string, unknown>, items: readonly DueMessage[]): boolean {
  return items.some((i) => i.message.kind !== 'test' && !contacts.has(String(i.message.contact)));
}

/**
 * The pass's context while the contact list is not kept: its first window
 * reads its recipients by _id (refreshContext) and goes to the relay; once it
 * is claimed the list is read whole, which the next windows wait for, then go
 * by it, unless it lacks one of the pass's recipients (a contact written by a
 * path that did not move the stamp), which is then never skipped as deleted
 * on its word: the windows read theirs by _id. Should the read fail, they
 * read by _id too; the list is kept for the next pass.
 * A pass with few recipients (a round continued near its end, a few retries)
 * never reads the list whole: its windows read theirs by _id, as the
 * journal's readers do below the same bound (MAX_JOURNALLED_IDS contacts and
 * institutions), where one by one costs less than the whole list of a few
 * thousand contacts.
 */
async function readListMeanwhile(
  models: Models,
  items: readonly DueMessage[],
  campaigns: Map<string, CampaignOfContext>,
  links: Pick<Context, 'invitations' | 'linkCopies'>,
): Promise<Context> {
  // A recipient and its institution are two look-ups by _id.
  const fewRecipients = 2 * new Set(items.filter((i) => i.message.kind !== 'test').map((i) => String(i.message.contact))).size <= MAX_JOURNALLED_IDS;
  // Begun once the first window is claimed (sendMessages), and waited for by the next windows: windows
  // reading their recipients by _id beside it waited far longer for their look-ups in the database
  // (tens of milliseconds each, bench:mail) and made the read itself slower.
  const readWhole = () => {
    if (fewRecipients) return;
    readingList.whole ??= contactListState(models).then(
      (list) => {
        if (lacksRecipients(list.contacts, items)) return;
        pass.contacts = list.contacts;
        pass.institutions = list.institutions;
        pass.readingList = undefined;
      },
      () => undefined,
    );
  };
  const readingList: NonNullable<Context['readingList']> = { contacts: new Map<string, ContextContact>(), institutions: new Map<string, { name: string }>(), readWhole };
  // No suppression list of the pass's own: every window reads it, or goes by one a window read within
  // FACTS_MAX_AGE_MS (refreshContext), and the first window has none before it. A read here was one more
  // whole read of the list, beside the first window's and the contact list's.
  const pass: Context = { campaigns, contacts: readingList.contacts, ...links, institutions: readingList.institutions, readingList, ...suppressionList([]) };
  return pass;
}

/** What a window reads of its recipients by _id while the contact list is read whole (see readListMeanwhile). */
const RECIPIENT_FIELDS = { name: 1, institution: 1, active: 1, unsubscribedAt: 1 } as const;

/** The window's recipients not read yet, and their institutions, by _id, into the pass's readingList, unless the whole list is being read (then it is waited for). */
async function readRecipients(models: Models, pass: Context, items: readonly DueMessage[]): Promise<void> {
  const reading = pass.readingList;
  if (!reading) return;
  if (reading.whole) {
    await reading.whole;
    if (!pass.readingList) return;
  }
  const contactIds = [...new Set(items.filter((i) => i.message.kind !== 'test').map((i) => String(i.message.contact)))].filter((id) => !reading.contacts.has(id));
  const contacts = await Promise.all(contactIds.map((id) => models.Contact.findById(id, RECIPIENT_FIELDS).lean<ContextContact>()));
  for (const contact of contacts) if (contact) reading.contacts.set(String(contact._id), contact);
  const institutionIds = [...new Set(contacts.flatMap((c) => (c ? [String(c.institution)] : [])))].filter((id) => !reading.institutions.has(id));
  const institutions = await Promise.all(institutionIds.map((id) => models.Institution.findById(id, { name: 1 }).lean<{ _id: Types.ObjectId; name: string }>()));
  for (const institution of institutions) if (institution) reading.institutions.set(String(institution._id), { name: institution.name });
}

/**
 * Fresh facts for one batch, so that what happened a moment ago stops a
 * message: the suppression list (bounces, and unsubscribes, which also
 * suppress the address) and, for reminders, whether the contact has just
 * completed (the link's completedAt and its completion mark, both by _id:
 * the mark is written first, and stands alone after a crash between the two).
 * A contact deactivated or a campaign closed during a pass is seen at the next pass.
 * `recent` is the suppression list read for an earlier window within
 * FACTS_MAX_AGE_MS, used instead of reading it again; past that, `earlier`
 * (the last one read) stands while its stamp does (suppressionsNow). So that a link revoked
 * or issued again is seen, an invitation goes by its campaign's copy only
 * while no change of the campaign's links came after it, looked up by _id
 * per campaign of the window along with the suppression list (so at most
 * FACTS_MAX_AGE_MS late); from the first change on, and for the links the
 * pass did not read (see KnownRecipients), the window's links are read here, by _id.
 */
async function refreshContext(models: Models, pass: Context, items: readonly DueMessage[], recent?: Suppressions, earlier?: Suppressions): Promise<Context> {
  const readLinks = async () => {
    const copied = recent ? [] : [...new Set(items.filter((i) => i.message.kind === 'invitation').map((i) => String(i.message.campaign)))].filter((c) => pass.linkCopies.has(c));
    const changed = await Promise.all(copied.map((c) => linksChangedAfter(models, c, pass.linkCopies.get(c)!)));
    for (const [index, campaign] of copied.entries()) if (changed[index]) pass.linkCopies.delete(campaign);
    const toRead = items.filter((i) => i.message.kind === 'reminder' || (i.message.kind === 'invitation' && !pass.linkCopies.has(String(i.message.campaign))));
    return Promise.all(
      toRead.map(async ({ message }) => {
        const [link, answered] = await Promise.all([models.Invitation.findById(message.invitation, LINK_FIELDS).lean(), message.kind === 'reminder' && hasCompleted(models, message.invitation!)]);
        return { id: String(message.invitation), link, answered };
      }),
    );
  };
  const [suppressions, invitations] = await Promise.all([recent ?? suppressionsNow(models, earlier), readLinks(), readRecipients(models, pass, items)]);
  // Fresher than the pass's copy, so it replaces it for the rest of the pass (copying the map per batch cost more than the sending);
  // a link deleted meanwhile (an erasure) leaves its message "deleted".
  for (const { id, link, answered } of invitations) {
    if (link) pass.invitations.set(id, { _id: link._id, tokenGeneration: link.tokenGeneration ?? 0, revoked: Boolean(link.revokedAt), startedAt: link.startedAt, answered: Boolean(link.completedAt) || answered });
    else pass.invitations.delete(id);
  }
  return { ...pass, suppressed: suppressions.suppressed, suppressedHashes: suppressions.suppressedHashes, suppressionsRead: suppressions.suppressionsRead };
}

/**
 * The suppression list for a window: the one an earlier window read, while
 * the contact list's stamp (which every writer of the list moves after its
 * write) is where it was before that read and the read is younger than
 * SUPPRESSIONS_MAX_AGE_MS; else read whole again. A suppression is then seen
 * within FACTS_MAX_AGE_MS of its writer's stamp, and within
 * SUPPRESSIONS_MAX_AGE_MS of its write even if the stamp never moves (a writer
 * that crashed in between, an erasure still at work). Read whole for every
 * window, the list cost the database 20 ms at 300 addresses, four times a second.
 */
async function suppressionsNow(models: Models, earlier?: Suppressions): Promise<Suppressions> {
  const { v: stamp } = await contactListStamp(models);
  const read = earlier?.suppressionsRead;
  if (read && read.stamp === stamp && performance.now() - read.at < SUPPRESSIONS_MAX_AGE_MS) return earlier!;
  const at = performance.now();
  const list = await models.Suppression.find({}, { email: 1 }).lean();
  return { ...suppressionList(list.map((d) => d.email)), suppressionsRead: { at, stamp } };
}

/** How long a pass goes by a suppression list whose stamp has not moved (see suppressionsNow). */
const SUPPRESSIONS_MAX_AGE_MS = 5000;

/**
 * How old the pauses and the suppression list read for a window may be for
 * the next window to go by them: a pause or a suppression written elsewhere
 * stops this sender's messages within this time (and a relay error of its
 * own at once). Read for each window, they were a quarter of the sender's
 * round trips. A link revoked or replaced is seen within this time too (the
 * look-up of its campaign's next link change: once a window, it was a third
 * more round trips and 15 % more of the sender's CPU in bench:mail).
 */
const FACTS_MAX_AGE_MS = 250;

/** The suppression list as the sender looks addresses up in it. */
function suppressionList(emails: Iterable<string>): Pick<Context, 'suppressed' | 'suppressedHashes'> {
  const suppressed = new Set(emails);
  return { suppressed, suppressedHashes: [...suppressed].some((email) => email.startsWith(HASHED_ADDRESS)) };
}

/** Why a claimed message must not go out now, or undefined when it may. */
function reasonToSkip(deps: SenderDeps, message: OutboxMessage, context: Context): string | undefined {
  if (message.kind === 'test') {
    const campaign = context.campaigns.get(String(message.campaign));
    if (!campaign) return 'deleted';
    return context.suppressed.has(message.to) ? 'suppressed' : undefined;
  }
  const contact = context.contacts.get(String(message.contact));
  const invitation = context.invitations.get(String(message.invitation));
  const campaign = context.campaigns.get(String(message.campaign));
  if (!contact || !invitation || !campaign) return 'deleted';
  // Unsubscribed and bounced contacts are never mailed, whenever they left.
  if (contact.unsubscribedAt) return 'unsubscribed';
  // An erased person's address is on the list only as a keyed hash (privacy/subject.store.ts).
  if (context.suppressed.has(message.to) || (context.suppressedHashes && context.suppressed.has(suppressionHash(deps.tokenKey, message.to)))) return 'suppressed';
  if (contact.active === false) return 'inactive';
  if (invitation.revoked) return 'revoked';
  if (campaign.closedAt || campaign.closesAt <= deps.now()) return 'campaign closed';
  // A reminder is never sent to a contact whose response is complete.
  if (message.kind === 'reminder' && invitation.answered) return 'completed';
  return undefined;
}

/** A message as handed to the relay, kept with its outcome for access requests (sent-email.store.ts). */
type SentMail = ComposedMessage;

async function deliver(deps: SenderDeps, policy: SenderPolicy, item: DueMessage, context: Context): Promise<Recorded & { mail?: SentMail }> {
  const { message, attempt } = item;
  const base = { _id: `${message._id}:${attempt}`, message: message._id, campaign: message.campaign, attempt };
  const skip = reasonToSkip(deps, message, context);
  if (skip) return { ...base, state: 'skipped', skipReason: skip, at: deps.now() };
  const campaign = context.campaigns.get(String(message.campaign))!;
  const mail = message.kind === 'test' ? composeTest(deps, message, campaign) : composeForContact(deps, message, campaign, context);
  // Handed over ready-built (raw-message.ts): the same bytes at half nodemailer's CPU.
  const { mail: tracked, tracker } = withTracker(await readyMessage(mail, deps.logger));
  try {
    const info = await deps.transport.sendMail(tracked);
    return { ...base, state: 'sent', at: deps.now(), messageId: info.messageId ?? mail.messageId, mail };
  } catch (error) {
    if (tracker.dataStarted && typeof (error as { responseCode?: unknown }).responseCode !== 'number') {
      // The relay had the message and never said whether it took it: sending it again could deliver a second copy.
      const smtp = error as { code?: string; message?: string };
      return {
        ...base,
        state: 'unknown',
        at: deps.now(),
        messageId: mail.messageId,
        smtpCommand: 'DATA',
        error:
          `${smtp.code ?? 'ERROR'}: ${smtp.message ?? String(error)} — the mail server received the message but did not answer whether it accepted it; ` +
          `it may have been delivered. Look for Message-ID ${mail.messageId} in its log.`,
      };
    }
    return { ...base, ...classifyFailure(deps, policy, attempt, error) };
  }
}

function composeForContact(deps: SenderDeps, message: OutboxMessage, campaign: CampaignOfContext, context: Context) {
  const contact = context.contacts.get(String(message.contact))!;
  const invitation = context.invitations.get(String(message.invitation))!;
  return composeMessage({
    campaign,
    kind: message.kind,
    language: isLanguage(message.language) ? message.language : 'en',
    from: deps.from,
    to: message.to,
    messageId: messageIdFor(message._id, deps.from),
    privacyLink: `${deps.publicUrl.replace(/\/$/, '')}/privacy/${campaign._id}?lang=${isLanguage(message.language) ? message.language : 'en'}`,
    values: {
      contactName: contact.name,
      institutionName: context.institutions.get(String(contact.institution))?.name ?? '',
      link: personalLink(deps, invitation),
      unsubscribeLink: unsubscribeLink(deps, String(contact._id)),
      started: Boolean(invitation.startedAt),
    },
  });
}

/** A test: the invitation or reminder text with the coordinator's name and example links (a test has no personal link). */
function composeTest(deps: SenderDeps, message: OutboxMessage, campaign: CampaignOfContext) {
  const base = deps.publicUrl.replace(/\/$/, '');
  return composeMessage({
    campaign,
    kind: 'test',
    testOf: message.testWording === 'reminder' || message.testWording === 'reminder-started' ? 'reminder' : 'invitation',
    language: isLanguage(message.language) ? message.language : 'en',
    from: deps.from,
    to: message.to,
    messageId: messageIdFor(message._id, deps.from),
    privacyLink: `${base}/privacy/${campaign._id}?lang=${isLanguage(message.language) ? message.language : 'en'}`,
    values: {
      contactName: message.recipientName ?? 'Test',
      institutionName: 'Example Vocational College',
      link: `${base}/s/EXAMPLE-PERSONAL-LINK`,
      unsubscribeLink: `${base}/u/EXAMPLE`,
      started: message.testWording === 'reminder-started',
    },
  });
}

/**
 * The base that the emails of this message's campaign, kind and language are
 * kept against (sent-email.store.ts): that email composed with example
 * values, so that it holds nothing of any contact's. Composed once per pass
 * for each of them (`bases`).
 */
function baseFor(deps: SenderDeps, message: OutboxMessage, campaign: CampaignOfContext, bases: Map<string, string>): string {
  const language = isLanguage(message.language) ? message.language : 'en';
  const key = `${String(campaign._id)}:${message.kind}:${message.testWording ?? ''}:${language}`;
  let base = bases.get(key);
  if (base === undefined) {
    const url = deps.publicUrl.replace(/\/$/, '');
    const example = composeMessage({
      campaign,
      kind: message.kind,
      testOf: message.testWording === 'reminder' || message.testWording === 'reminder-started' ? 'reminder' : 'invitation',
      language,
      from: deps.from,
      to: 'contact@example.invalid',
      messageId: messageIdFor(new Types.ObjectId('000000000000000000000000'), deps.from),
      privacyLink: `${url}/privacy/${campaign._id}?lang=${language}`,
      values: { contactName: 'Example', institutionName: 'Example Vocational College', link: `${url}/s/EXAMPLE`, unsubscribeLink: `${url}/u/EXAMPLE`, started: false },
    });
    base = emailText(example);
    bases.set(key, base);
  }
  return base;
}

/**
 * A refusal at RCPT TO that is about the relay or the platform, not the
 * recipient: a relay that does not relay for this machine ("554 5.7.1
 * <…>: Relay access denied", Postfix's answer when no login was given),
 * wants a login (530, 5.7.0, Exchange's 5.7.57 "Client was not
 * authenticated") or refuses the sender address there ("Sender address
 * rejected", Postfix's sender restrictions). Every recipient would get the
 * same answer, and taking it for the address's suppressed the whole contact
 * list.
 */
const RELAY_REFUSAL = /relay(ing)?\s+(access\s+)?(is\s+)?(denied|not\s+(allowed|permitted))|authenticat(ion|e)\s+(is\s+)?required|must\s+(first\s+)?(be\s+)?authenticat|not\s+authenticated|authenticate\s+first|sender\s+(address\s+)?rejected/i;
const RELAY_STATUS = /(?:^|\s)[45]\.7\.(0|8|11|57)(?:\s|$)/;

function refusesTheRelay(responseCode: number, response: string): boolean {
  return responseCode === 530 || RELAY_REFUSAL.test(response) || RELAY_STATUS.test(response);
}

/**
 * What an SMTP error means for the message. Only the relay's answer to RCPT
 * TO is about this recipient: 5xx fails the message for good (and suppresses
 * the address), 4xx is retried with doubling delays until maxAttempts; unless
 * the answer says it is about the relay (refusesTheRelay). Anything else —
 * the connection, the login, the sender at MAIL FROM, the message at DATA —
 * is the relay's problem, not the address's: the message is retried after
 * the campaign's pause (relayError), never failed or suppressed.
 */
function classifyFailure(deps: SenderDeps, policy: SenderPolicy, attempt: number, error: unknown): Omit<Recorded, '_id' | 'message' | 'campaign' | 'attempt'> {
  const smtp = error as { responseCode?: number; response?: string; code?: string; command?: string; message?: string };
  const reason = `${smtp.code ?? 'ERROR'}: ${(smtp.response ?? smtp.message ?? String(error)).slice(0, 1000)}`;
  const at = deps.now();
  const smtpCommand = smtp.code === 'EAUTH' ? 'AUTH' : (smtp.command ?? 'CONN');
  if (smtpCommand === 'RCPT TO' && typeof smtp.responseCode === 'number' && !refusesTheRelay(smtp.responseCode, smtp.response ?? smtp.message ?? '')) {
    if (smtp.responseCode >= 500) return { state: 'failed', permanent: true, smtpCommand, error: reason, at };
    if (attempt + 1 >= policy.maxAttempts) return { state: 'failed', permanent: false, smtpCommand, error: reason, at };
    const delay = Math.min(policy.backoffMs * 2 ** attempt, 6 * 3600_000);
    return { state: 'retry', smtpCommand, error: reason, at, nextAttemptAt: new Date(at.getTime() + delay) };
  }
  // Due again when the campaign's pause ends (see findDueMessages), not at a time of its own.
  return { state: 'retry', relayError: true, smtpCommand, error: reason, at };
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
  /** Looks for due messages now (after enqueueing) instead of at the next poll. */
  wake(): void;
  /** Ends the loop after the batch in progress; resolves when it has ended. */
  stop(): Promise<void>;
}

/**
 * The sender's background loop: reads what is due, sends it (sendMessages),
 * then idles until the next due time it knows of (a retry, the end of a
 * pause). While idle it reads only three small things every `idleMs`: the
 * outbox signal (by _id), which changes when anything is enqueued, retried
 * or resumed, in this process or another, the few worker heartbeats (a busy
 * worker gone silent left claims to declare unknown) and the few intents (a
 * writer that crashed left due entries to put back); the due view is read
 * again only when one of them asks for it. wake() (called
 * after enqueueing in this process) ends the idling at once, and stop()
 * returns as soon as the messages already claimed, if any, have their outcomes.
 * Errors of one pass (e.g. the database briefly away) are logged and the loop goes on.
 */
export function startOutboxSender(deps: SenderDeps, policy: SenderPolicy = DEFAULT_POLICY, options: { idleMs?: number; onError?: (error: unknown) => void } = {}): RunningSender {
  const idleMs = options.idleMs ?? 5000;
  const onError = options.onError ?? ((error: unknown) => console.error('Sending emails failed, retrying shortly:', error));
  let running = true;
  let wake: AbortController | undefined;
  let woken = false;
  /** The outbox signal when the outbox was last read, and the next due time that read found. */
  let lastRead: { token: string | undefined; nextDueAt?: Date } | undefined;
  /** The loop is reading the outbox (or the idle check), not sending. */
  let reading = false;
  const sleepFor = async (ms: number) => {
    if (woken || !running) return;
    wake = new AbortController();
    await sleep(ms, undefined, { signal: wake.signal }).catch(() => undefined);
  };
  const loop = (async () => {
    while (running) {
      try {
        if (lastRead && !woken) {
          // An intent older than its grace period is a writer that crashed: the read puts its entries back.
          const [token, silent, intents] = await Promise.all([outboxSignalToken(deps), silentWorkers(deps, policy.leaseMs), intentsToRepair(deps)]);
          const untilDue = lastRead.nextDueAt ? lastRead.nextDueAt.getTime() - deps.now().getTime() : Number.POSITIVE_INFINITY;
          if (token === lastRead.token && silent.length === 0 && intents.length === 0 && untilDue > 0) {
            await sleepFor(Math.min(idleMs, untilDue));
            continue;
          }
        }
        woken = false;
        // Read before the outbox: whatever is enqueued during the read changes it and brings another read.
        const token = await outboxSignalToken(deps);
        reading = true;
        const { due, nextDueAt, context } = await findDueMessages(deps, policy);
        reading = false;
        // Stopped during the read: nothing is claimed.
        if (!running) break;
        const outcomes = due.length > 0 ? await sendMessages(deps, policy, due, context!, { stopped: () => !running }) : [];
        // Final outcomes leave nothing due that this read did not know of, so the sender idles
        // without reading the outbox again; a retry or an unknown outcome (which pauses the
        // campaign) has a due time of its own, and brings a read at once.
        lastRead = outcomes.some((o) => o === 'retry' || o === 'unknown') ? undefined : { token, nextDueAt };
      } catch (error) {
        reading = false;
        if (!running) break;
        onError(error);
        lastRead = undefined;
        await sleepFor(Math.min(idleMs, 5000));
      }
    }
  })();
  return {
    wake() {
      woken = true;
      wake?.abort();
    },
    async stop() {
      running = false;
      wake?.abort();
      // A read of the outbox claims nothing: the loop ends after it by itself, and stopping does
      // not wait for it (the read fails quietly if the database closes first). Messages being
      // sent are waited for, so that each has its outcome.
      if (!reading) await loop;
    },
  };
}
