import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { KEPT_MAX_AGE_MS, KeptValues, stampOf } from '../shared/change-stamp.ts';
import { CHECKPOINT_MAX_BYTES, emailStamp, readEmailChanges, readEmailCheckpoint, storeEmailCheckpoint, type EmailChangeEntry } from './email-changes.ts';
import type { OutboxMessage, OutboxOutcome, OutboxState } from './outbox.model.ts';
import { EmailLedger } from './email-ledger.ts';
import { unknownOf, type MessageStatus, type RoundCounts, type UnknownMessage } from './outbox.service.ts';

/**
 * The sending page's figures, kept per campaign until its emails change.
 *
 * A campaign's messages, claims and outcomes can only be found by a filter,
 * which on the embedded engine reads every campaign's: with four campaigns
 * of 3,000 emails each, a read of the three collections costs the database
 * about 2 s of CPU.
 *
 * - The page's counts and lists (sendingFigures) are kept until a stamp of
 *   the campaign's emails moves (its rounds, its emails' claims and
 *   outcomes, its test sends; change-stamp.ts): a load with nothing changed
 *   reads three stamps.
 * - The page's counts and the progress it polls every 2 s while the
 *   campaign sends (polledCounts) follow the campaign's email journal
 *   (email-changes.ts): a follower keeps the ids of the campaign's messages,
 *   claims and outcomes, and reads the entries written since it last looked,
 *   by _id. A follower just made (the first load after a start) begins from
 *   the campaign's checkpoint and the entries after it (when the checkpoint's
 *   own whole read is older than KEPT_MAX_AGE_MS, it answers that load and
 *   reads whole at once after it: catchUp), and stores a
 *   checkpoint of its own after a whole read and every CHECKPOINT_EVERY
 *   entries, unless it would be larger than CHECKPOINT_MAX_BYTES (a campaign
 *   of some 140,000 emails): the campaign then has none, and a follower just
 *   made reads whole. It reads the collections whole only without a
 *   checkpoint, when the emails stamp moved without an entry (an older
 *   version's sender) or an entry is gone, when the campaign's `erasures`
 *   stamp moved since its state was made (an erasure, a purge or the
 *   removal of demo data, however many entries followed), and once the
 *   whole read its state comes from, in this process or through a
 *   checkpoint in another, is KEPT_MAX_AGE_MS old (a write no repair
 *   journalled, an older version's write hidden by a journalled one after
 *   it). Such a read is reused for POLL_GAP_MS, or four
 *   times as long as it took, so that a page left open takes at most a fifth
 *   of the database's time from the sender it watches.
 */
export interface SendingProgressDeps {
  models: Models;
  /** The largest checkpoint stored (CHECKPOINT_MAX_BYTES unless a test says otherwise). */
  checkpointMaxBytes?: number;
}

/** Failed messages (test sends included) and those whose outcome is unknown. */
interface SendingProblems {
  failed: MessageStatus[];
  unknown: UnknownMessage[];
}

/** A poll reuses counts of a whole read at least this young. */
export const POLL_GAP_MS = 2_000;

const keptProblems = new KeptValues<SendingProblems & { counts: RoundCounts }>();

/**
 * The sending page's counts (as countByRound), failed messages (test sends
 * included) and those whose outcome is unknown: the counts from the poll's
 * follower, never older than the stamps, and the listed messages with their
 * outcomes (and the unknown ones' claims) looked up by _id, once each while
 * the follower follows (EmailFollower.listed).
 */
export async function sendingFigures(deps: SendingProgressDeps, campaign: Types.ObjectId): Promise<SendingProblems & { counts: RoundCounts }> {
  const { models } = deps;
  const key = String(campaign);
  const follower = followerOf(deps, key);
  await follower.caughtUp();
  const [rounds, emails, tests] = await Promise.all([stampOf(models, 'rounds', campaign), emailStamp(models, campaign), stampOf(models, 'tests', campaign)]);
  // A whole read can change what the stamps say nothing of (a write no entry names).
  const figures = await keptProblems.get(models, key, [rounds, emails.v, tests, follower.wholeReads].join('|'), async () => {
    const counts = await follower.counts(campaign, { fresh: true });
    const listed = await follower.listed();
    const outcomes = listed.map((l) => l.outcome);
    const found = listed.map((l) => l.message);
    const claims = listed.flatMap((l) => (l.claim ? [l.claim] : []));
    const failed = listed
      .filter((l) => l.outcome.state === 'failed')
      .sort((a, b) => (String(a.message._id) < String(b.message._id) ? -1 : 1))
      .map(({ outcome, message }): MessageStatus => ({ message, state: 'failed', attempts: outcome.attempt + 1, last: outcome }));
    return { counts, failed, unknown: unknownOf(outcomes, found, claims) };
  });
  follower.catchUp(campaign, figures.counts);
  return figures;
}

/** The campaign's emails by state, by round and in all (countByRound), for the page's progress poll. */
export async function polledCounts(deps: SendingProgressDeps, campaign: Types.ObjectId): Promise<RoundCounts> {
  const follower = followerOf(deps, String(campaign));
  const counts = await follower.counts(campaign);
  follower.catchUp(campaign, counts);
  return counts;
}

/**
 * The state of each of the campaign's emails of `round` (0: the invitations),
 * by message id, as statusesOf derives it, from the follower of the
 * campaign's email journal (never older than the stamps), with a version that
 * moves whenever they may have changed, and the links of the messages its
 * whole reads met (a caller adds those it looks up): what the fieldwork page and the
 * reminders' dry run show of the invitations' delivery, without reading the
 * outbox again while the invitations go out.
 */
export async function followedEmailStates(
  deps: SendingProgressDeps,
  campaign: Types.ObjectId,
  round: number,
): Promise<{ states: ReadonlyMap<string, OutboxState>; version: string; linkOf: Map<string, string> }> {
  const follower = followerOf(deps, String(campaign));
  await follower.caughtUp();
  await follower.counts(campaign, { fresh: true });
  return follower.roundStates(round);
}

const followers = new WeakMap<object, Map<string, EmailFollower>>();

function followerOf(deps: SendingProgressDeps, key: string): EmailFollower {
  let byCampaign = followers.get(deps.models);
  if (!byCampaign) followers.set(deps.models, (byCampaign = new Map()));
  let follower = byCampaign.get(key);
  if (!follower) byCampaign.set(key, (follower = new EmailFollower(deps.models, key, deps.checkpointMaxBytes ?? CHECKPOINT_MAX_BYTES)));
  return follower;
}

/** A listed outcome, its message and, for an unknown one, its claim. */
interface Listed {
  outcome: OutboxOutcome & { _id: string };
  message: OutboxMessage;
  claim?: { _id: string; at: Date; messageId?: string | null };
}

/** How many of the stamp values last applied are remembered: a writer can set the stamp after a later writer did. */
const VALUES_KEPT = 64;

/** A follower stores a checkpoint once it has applied this many entries after the last one it knows of. */
const CHECKPOINT_EVERY = 100;

/** One campaign's messages, claims and outcomes, as ids, followed through its email journal. */
class EmailFollower {
  /** The number of the last entry applied, its stamp value, and the stamp values of the entries last applied. */
  private applied = 0;
  private appliedValue = '';
  private values: string[] = [];
  /** The campaign's `erasures` stamp before the whole read or checkpoint its state comes from. */
  private erasures = '';
  /** The number of the newest checkpoint this follower began from or stored. */
  private checkpointed = 0;
  /** When the whole read its state comes from began (in this process or, through a checkpoint, in another). */
  private readAt = Number.NEGATIVE_INFINITY;
  /** Begun from a checkpoint whose whole read is older than KEPT_MAX_AGE_MS: the history is read as soon as that first answer is out. */
  private wholeDue = false;
  /** The read of the history behind an old checkpoint, while under way. */
  private catchingUp: Promise<RoundCounts> | undefined;
  /** How many whole reads its state has come from: a page's kept figures hold for one (sendingFigures). */
  wholeReads = 0;
  private readTook = 0;
  /** When its state was last started (a whole read ended, a checkpoint read): what a poll may reuse counts from (POLL_GAP_MS). */
  private startedAt = Number.NEGATIVE_INFINITY;
  /** The messages, claims and outcomes, with each round's figures and each message's state kept as they come (email-ledger.ts). */
  private ledger = new EmailLedger();
  private tally: RoundCounts | undefined;
  /** What listed() looked up, by outcome id. */
  private looked = new Map<string, Listed>();
  /** One poll at a time: a second waits for the first's counts. */
  private polling: Promise<RoundCounts> | undefined;
  /** Moves whenever the messages, claims or outcomes may have changed; unique across followers. */
  private version = 0;
  private static versions = 0;
  /**
   * Each message's link, as its whole reads found them and its callers looked
   * them up (a message never changes its link; checkpoints do not hold them).
   */
  readonly linkOf = new Map<string, string>();

  constructor(
    private readonly models: Models,
    private readonly key: string,
    private readonly checkpointMaxBytes: number,
  ) {}

  /** `fresh`: never a whole read's counts older than the stamps (the page; the poll may have them for its gap). */
  async counts(campaign: Types.ObjectId, { fresh = false } = {}): Promise<RoundCounts> {
    if (fresh) {
      // After the poll under way, so that the two do not read the same entries side by side.
      await this.polling?.catch(() => undefined);
      return this.poll(campaign, true);
    }
    return this.polling ?? this.queue(() => this.poll(campaign, false));
  }

  /**
   * Each message of `round` with its state as it stands in what the follower holds (statusesOf's rules), and the
   * follower's version. The states are the ledger's, changed in place as entries are applied: a caller that keeps what
   * it makes of them keeps it under the version.
   */
  roundStates(round: number): { states: ReadonlyMap<string, OutboxState>; version: string; linkOf: Map<string, string> } {
    return { states: this.ledger.roundStates(round), version: String(this.version), linkOf: this.linkOf };
  }

  /**
   * Once a load's answer is out (`answered`, its counts): when that answer
   * came from a checkpoint whose whole read is old, reads the history now,
   * as the poll under way, which the next load or poll waits for.
   */
  catchUp(campaign: Types.ObjectId, answered: RoundCounts): void {
    if (!this.wholeDue) return;
    this.wholeDue = false;
    const waiting = this.polling;
    const catchingUp = this.queue(async () => {
      await waiting?.catch(() => undefined);
      // A read that fails leaves the state as old as it was: the next poll reads whole.
      return this.poll(campaign, true).catch(() => answered);
    });
    this.catchingUp = catchingUp;
    void catchingUp.then(() => {
      if (this.catchingUp === catchingUp) this.catchingUp = undefined;
    });
  }

  /** Waits for the read of the history behind an old checkpoint, if one is under way. */
  async caughtUp(): Promise<void> {
    await this.catchingUp;
  }

  /** Runs `poll` as the poll under way, which later polls share and fresh ones wait for. */
  private queue(poll: () => Promise<RoundCounts>): Promise<RoundCounts> {
    const polling: Promise<RoundCounts> = poll().finally(() => {
      if (this.polling === polling) this.polling = undefined;
    });
    this.polling = polling;
    return polling;
  }

  /**
   * The failed and unknown outcomes (test sends' included) with their
   * messages, and the unknown ones' claims (when the message was claimed,
   * its Message-ID), looked up by _id. Kept until a whole read, or an entry
   * that names no change (a note added to an outcome): an outcome leaves
   * these states only with an entry, and a message or a claim never changes.
   */
  async listed(): Promise<Listed[]> {
    const wanted = [...this.ledger.outcomes].filter(([, state]) => state === 'failed' || state === 'unknown');
    const found = await Promise.all(
      wanted.map(async ([id, state]) => {
        const kept = this.looked.get(id);
        if (kept?.outcome.state === state) return kept;
        // Side by side: the outcome's id names its message and its claim.
        const [outcome, message, claim] = await Promise.all([
          this.models.OutboxOutcome.findById(id, { sentEmail: 0, sentEmailBase: 0 }).lean<OutboxOutcome & { _id: string }>(),
          kept?.message ?? this.models.Outbox.findById(messageOf(id)).lean<OutboxMessage>(),
          state === 'unknown' ? this.models.OutboxClaim.findById(id, { at: 1, messageId: 1 }).lean() : undefined,
        ]);
        if (!outcome || !message) return undefined;
        const looked = { outcome, message, ...(claim && { claim }) };
        this.looked.set(id, looked);
        return looked;
      }),
    );
    return found.flatMap((l) => (l ? [l] : []));
  }

  private async poll(campaign: Types.ObjectId, fresh: boolean): Promise<RoundCounts> {
    const [emails, erasures] = await Promise.all([emailStamp(this.models, campaign), stampOf(this.models, 'erasures', campaign)]);
    // Nothing to follow from yet: the checkpoint, if there is one.
    const begins = this.readAt === Number.NEGATIVE_INFINITY;
    if (begins) await this.fromCheckpoint(erasures);
    const age = Date.now() - this.readAt;
    // A checkpoint whose whole read is old answers this first load all the same (a whole read would make it take seconds), and the history is read right after it (catchUp).
    if (begins && Number.isFinite(this.readAt) && age >= KEPT_MAX_AGE_MS) this.wholeDue = true;
    // An erasure since its state was made: the erased emails are in it, whatever entries follow.
    const current = (age < KEPT_MAX_AGE_MS || this.wholeDue) && erasures === this.erasures;
    if (current && !this.values.includes(emails.v)) {
      const entries = await readEmailChanges(this.models, this.key, this.applied, emails.n);
      if (entries) this.apply(entries);
    }
    if (!current || !this.values.includes(emails.v)) {
      // A change no entry names, or nothing to follow from: read whole, unless the last whole read is young.
      if (!fresh && this.tally && Date.now() - this.startedAt < Math.max(POLL_GAP_MS, 4 * this.readTook)) return this.tally;
      await this.readWhole(campaign, emails, erasures);
      await this.storeCheckpoint();
    } else if (this.applied - this.checkpointed >= CHECKPOINT_EVERY) await this.storeCheckpoint();
    this.tally ??= this.ledger.counts();
    return this.tally;
  }

  /** Starts over from a state read whole or from a checkpoint, with the stamps it is up to (read before it) and when its whole read began. */
  private start(at: { v: string; n: number; erasures: string; readAt: number; took: number }): void {
    this.erasures = at.erasures;
    this.applied = at.n;
    this.appliedValue = at.v;
    this.values = [at.v];
    this.readAt = at.readAt;
    this.startedAt = Date.now();
    this.readTook = at.took;
    this.tally = undefined;
    this.looked.clear();
    this.version = ++EmailFollower.versions;
  }

  private async fromCheckpoint(erasures: string): Promise<void> {
    const begun = performance.now();
    const checkpoint = await readEmailCheckpoint(this.models, this.key, erasures);
    if (!checkpoint) return;
    this.ledger = new EmailLedger(
      pairs(checkpoint.m).map(([id, round]) => [id, Number(round)] as const),
      checkpoint.c ? checkpoint.c.split(',') : [],
      pairs(checkpoint.o),
    );
    this.checkpointed = checkpoint.n;
    this.start({ v: checkpoint.v, n: checkpoint.n, erasures, readAt: checkpoint.w?.getTime() ?? 0, took: performance.now() - begun });
  }

  /**
   * Stores what it holds as the campaign's checkpoint; a failure costs the
   * next new follower more entries, not this page. One too large is not
   * stored (storeEmailCheckpoint), and not tried again before another
   * CHECKPOINT_EVERY entries.
   */
  private async storeCheckpoint(): Promise<void> {
    const n = this.applied;
    const checkpoint = {
      n,
      v: this.appliedValue,
      e: this.erasures,
      w: new Date(this.readAt),
      m: [...this.ledger.messages].map(([id, round]) => `${id}=${round}`).join(','),
      c: [...this.ledger.claims].join(','),
      o: [...this.ledger.outcomes].map(([id, state]) => `${id}=${state}`).join(','),
    };
    await storeEmailCheckpoint(this.models, this.key, checkpoint, this.checkpointMaxBytes).then(
      () => (this.checkpointed = Math.max(this.checkpointed, n)),
      () => undefined,
    );
  }

  private apply(entries: readonly EmailChangeEntry[]): void {
    for (const entry of entries) {
      this.values.push(entry.v);
      // Entries a whole read made meanwhile already holds (start) are not applied over it.
      const sequence = Number(entry._id.slice(this.key.length + 1));
      if (sequence <= this.applied) continue;
      this.applied = sequence;
      this.appliedValue = entry.v;
      for (const [id, round] of pairs(entry.m)) this.ledger.addMessage(id, Number(round));
      for (const id of entry.c?.split(',') ?? []) this.ledger.addClaim(id);
      for (const [id, state] of pairs(entry.o)) this.ledger.setOutcome(id, state);
      if (entry.m || entry.c || entry.o) {
        this.tally = undefined;
        this.version = ++EmailFollower.versions;
      } else this.looked.clear();
    }
    this.values.splice(0, this.values.length - VALUES_KEPT);
  }

  private async readWhole(campaign: Types.ObjectId, emails: { v: string; n: number }, erasures: string): Promise<void> {
    const [readAt, begun] = [Date.now(), performance.now()];
    const [messages, claims, outcomes] = await Promise.all([
      // The link too: on the embedded engine a projection costs nothing, and the fieldwork page need not read the emails again for it.
      this.models.Outbox.find({ campaign, kind: { $ne: 'test' } }, { _id: 1, round: 1, invitation: 1 }).lean(),
      this.models.OutboxClaim.find({ campaign }, { _id: 1 }).lean(),
      this.models.OutboxOutcome.find({ campaign }, { _id: 1, state: 1 }).lean(),
    ]);
    this.ledger = new EmailLedger(
      messages.map((m) => [String(m._id), m.round] as const),
      claims.map((c) => c._id),
      outcomes.map((o) => [o._id, o.state] as const),
    );
    for (const message of messages) if (message.invitation) this.linkOf.set(String(message._id), String(message.invitation));
    this.start({ ...emails, erasures, readAt, took: performance.now() - begun });
    this.wholeDue = false;
    this.wholeReads++;
  }
}

/** "<id>=<value>" pairs, comma-separated, as entries and checkpoints hold them. */
function pairs(list: string | undefined): Array<[string, string]> {
  if (!list) return [];
  return list.split(',').map((pair) => {
    const at = pair.lastIndexOf('=');
    return [pair.slice(0, at), pair.slice(at + 1)];
  });
}

/** A claim's or outcome's message: its id is "<message id>:<attempt>". */
const messageOf = (id: string) => id.slice(0, id.indexOf(':'));
