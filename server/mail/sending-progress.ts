import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { KEPT_MAX_AGE_MS, KeptValues, stampOf } from '../shared/change-stamp.ts';
import { emailStamp, readEmailChanges, type EmailChangeEntry } from './email-changes.ts';
import type { OutboxMessage, OutboxOutcome } from './outbox.model.ts';
import { statusesOf, tallyByRound, unknownOf, type MessageStatus, type RoundCounts, type UnknownMessage } from './outbox.service.ts';

/**
 * The sending page's figures, kept per campaign until its emails change.
 *
 * A campaign's messages, claims and outcomes can only be found by a filter,
 * which on the embedded engine reads every campaign's: with four campaigns
 * of 3,000 emails each, a read of the three collections costs the database
 * about 2 s of CPU.
 *
 * - The page's counts and lists come from one read of each (sendingFigures),
 *   kept until a stamp of the campaign's emails moves (its rounds, its
 *   emails' claims and outcomes, its test sends; change-stamp.ts): a load
 *   with nothing changed reads three stamps.
 * - The progress the page polls every 2 s while the campaign sends
 *   (polledCounts) follows the campaign's email journal (email-changes.ts):
 *   it keeps the ids of the campaign's messages, claims and outcomes, and a
 *   poll reads the entries written since the last, by _id. It reads the
 *   collections again only when the rounds stamp moved (new messages), when
 *   the emails stamp moved without an entry (an erasure, a purge, an older
 *   version's sender), and every KEPT_MAX_AGE_MS. Such a read is reused for
 *   POLL_GAP_MS, or four times as long as it took, so that a page left open
 *   takes at most a fifth of the database's time from the sender it watches.
 */
export interface SendingProgressDeps {
  models: Models;
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
 * outcomes and claims looked up by _id.
 */
export async function sendingFigures(deps: SendingProgressDeps, campaign: Types.ObjectId): Promise<SendingProblems & { counts: RoundCounts }> {
  const { models } = deps;
  const key = String(campaign);
  const [rounds, emails, tests] = await Promise.all([stampOf(models, 'rounds', campaign), emailStamp(models, campaign), stampOf(models, 'tests', campaign)]);
  return keptProblems.get(models, key, [rounds, emails.v, tests].join('|'), async () => {
    const follower = followerOf(models, key);
    const counts = await follower.counts(campaign, { fresh: true });
    const listed = [...follower.outcomesIn('failed'), ...follower.outcomesIn('unknown')];
    const outcomes = (await Promise.all(listed.map((id) => models.OutboxOutcome.findById(id, { sentEmail: 0, sentEmailBase: 0 }).lean<OutboxOutcome & { _id: string }>()))).flatMap((o) => (o ? [o] : []));
    const [messages, claims] = await Promise.all([
      Promise.all([...new Set(outcomes.map((o) => String(o.message)))].map((id) => models.Outbox.findById(id).lean<OutboxMessage>())),
      Promise.all(outcomes.map((o) => models.OutboxClaim.findById(o._id, { message: 1, attempt: 1, at: 1, messageId: 1 }).lean())),
    ]);
    const found = messages.flatMap((m) => (m ? [m] : []));
    const foundClaims = claims.flatMap((c) => (c ? [c] : []));
    const byMessage = new Map(found.map((m) => [String(m._id), m]));
    const claimById = new Map(foundClaims.map((c) => [c._id, c]));
    const failed = outcomes
      .filter((o) => o.state === 'failed' && byMessage.has(String(o.message)))
      .sort((a, b) => (String(a.message) < String(b.message) ? -1 : 1))
      .map((o): MessageStatus => ({ message: byMessage.get(String(o.message))!, state: 'failed', attempts: o.attempt + 1, last: o, claimedAt: claimById.get(o._id)?.at }));
    return { counts, failed, unknown: unknownOf(outcomes, found, foundClaims) };
  });
}

/** The campaign's emails by state, by round and in all (countByRound), for the page's progress poll. */
export async function polledCounts(deps: SendingProgressDeps, campaign: Types.ObjectId): Promise<RoundCounts> {
  return followerOf(deps.models, String(campaign)).counts(campaign);
}

const followers = new WeakMap<object, Map<string, EmailFollower>>();

function followerOf(models: Models, key: string): EmailFollower {
  let byCampaign = followers.get(models);
  if (!byCampaign) followers.set(models, (byCampaign = new Map()));
  let follower = byCampaign.get(key);
  if (!follower) byCampaign.set(key, (follower = new EmailFollower(models, key)));
  return follower;
}

/** How many of the stamp values last applied are remembered: a writer can set the stamp after a later writer did. */
const VALUES_KEPT = 64;

/** One campaign's messages, claims and outcomes, as ids, followed through its email journal. */
class EmailFollower {
  private rounds = '';
  /** The number of the last entry applied, and the stamp values of the entries last applied. */
  private applied = 0;
  private values: string[] = [];
  private readAt = Number.NEGATIVE_INFINITY;
  private readTook = 0;
  private messages: Array<{ _id: Types.ObjectId; round: number }> = [];
  private claims = new Set<string>();
  private outcomes = new Map<string, string>();
  private tally: RoundCounts | undefined;
  /** One poll at a time: a second waits for the first's counts. */
  private polling: Promise<RoundCounts> | undefined;

  constructor(
    private readonly models: Models,
    private readonly key: string,
  ) {}

  /** `fresh`: never a whole read's counts older than the stamps (the page; the poll may have them for its gap). */
  async counts(campaign: Types.ObjectId, { fresh = false } = {}): Promise<RoundCounts> {
    if (fresh) {
      // After the poll under way, so that the two do not read the same entries side by side.
      await this.polling?.catch(() => undefined);
      return this.poll(campaign, true);
    }
    this.polling ??= this.poll(campaign, false).finally(() => (this.polling = undefined));
    return this.polling;
  }

  /** The outcomes now in this state, by id (test sends' included). */
  outcomesIn(state: string): string[] {
    return [...this.outcomes].flatMap(([id, s]) => (s === state ? [id] : []));
  }

  /** Starts over from a whole read, its stamps read before it. */
  start(
    at: { rounds: string; emails: { v: string; n: number }; took: number },
    messages: ReadonlyArray<{ _id: Types.ObjectId; round: number }>,
    claims: ReadonlyArray<{ _id: string }>,
    outcomes: ReadonlyArray<{ _id: string; state: string }>,
  ): void {
    this.rounds = at.rounds;
    this.applied = at.emails.n;
    this.values = [at.emails.v];
    this.readAt = Date.now();
    this.readTook = at.took;
    this.messages = messages.map(({ _id, round }) => ({ _id, round }));
    this.claims = new Set(claims.map((c) => c._id));
    this.outcomes = new Map(outcomes.map((o) => [o._id, o.state]));
    this.tally = undefined;
  }

  private async poll(campaign: Types.ObjectId, fresh: boolean): Promise<RoundCounts> {
    const [rounds, emails] = await Promise.all([stampOf(this.models, 'rounds', campaign), emailStamp(this.models, campaign)]);
    const age = Date.now() - this.readAt;
    const current = rounds === this.rounds && age < KEPT_MAX_AGE_MS;
    if (current && !this.values.includes(emails.v)) {
      const entries = await readEmailChanges(this.models, this.key, this.applied, emails.n);
      if (entries) this.apply(entries);
    }
    if (!current || !this.values.includes(emails.v)) {
      // A change no entry names, or nothing to follow from: read whole, unless the last whole read is young.
      if (!fresh && this.tally && rounds === this.rounds && age < Math.max(POLL_GAP_MS, 4 * this.readTook)) return this.tally;
      await this.readWhole(campaign, rounds, emails);
    }
    this.tally ??= tallyByRound(
      this.messages,
      [...this.claims].map((id) => ({ message: messageOf(id) })),
      [...this.outcomes].map(([id, state]) => ({ message: messageOf(id), state })),
    );
    return this.tally;
  }

  private apply(entries: readonly EmailChangeEntry[]): void {
    for (const entry of entries) {
      this.values.push(entry.v);
      // Entries a whole read made meanwhile already holds (start) are not applied over it.
      const sequence = Number(entry._id.slice(this.key.length + 1));
      if (sequence <= this.applied) continue;
      this.applied = sequence;
      for (const id of entry.c?.split(',') ?? []) this.claims.add(id);
      for (const pair of entry.o?.split(',') ?? []) {
        const at = pair.lastIndexOf('=');
        this.outcomes.set(pair.slice(0, at), pair.slice(at + 1));
      }
      if (entry.c || entry.o) this.tally = undefined;
    }
    this.values.splice(0, this.values.length - VALUES_KEPT);
  }

  private async readWhole(campaign: Types.ObjectId, rounds: string, emails: { v: string; n: number }): Promise<void> {
    const start = performance.now();
    const [messages, claims, outcomes] = await Promise.all([
      this.models.Outbox.find({ campaign, kind: { $ne: 'test' } }, { _id: 1, round: 1 }).lean(),
      this.models.OutboxClaim.find({ campaign }, { _id: 1 }).lean(),
      this.models.OutboxOutcome.find({ campaign }, { _id: 1, state: 1 }).lean(),
    ]);
    this.start({ rounds, emails, took: performance.now() - start }, messages, claims, outcomes);
  }
}

/** A claim's or outcome's message: its id is "<message id>:<attempt>". */
const messageOf = (id: string) => id.slice(0, id.indexOf(':'));
