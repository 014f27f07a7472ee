import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { KeptValues, stampOf } from '../shared/change-stamp.ts';
import type { OutboxMessage, OutboxOutcome } from './outbox.model.ts';
import { countByRound, statusesOf, tallyByRound, unknownOf, type MessageStatus, type RoundCounts, type UnknownMessage } from './outbox.service.ts';

/**
 * The sending page's figures, kept per campaign until its emails change.
 *
 * A campaign's messages, claims and outcomes can only be found by a filter,
 * which on the embedded engine reads every campaign's: with four campaigns
 * of 3,000 emails each, a read of the three collections costs the database
 * about 2 s of CPU. So the page's counts and lists come from one read of
 * each (sendingFigures), kept until a stamp of the campaign's emails moves (its rounds, its
 * emails' outcomes, its test sends; change-stamp.ts), and a load with
 * nothing changed reads three stamps.
 *
 * While the campaign sends, the sender moves its `emails` stamp every 250 ms,
 * and the page polls its counts every 2 s: a poll then reuses figures younger
 * than POLL_GAP_MS, or four times as long as the last read of them took, so
 * that a page left open takes at most a fifth of the database's time from
 * the sender it watches, however long the email history.
 */
export interface SendingProgressDeps {
  models: Models;
}

/** Failed messages (test sends included) and those whose outcome is unknown. */
interface SendingProblems {
  failed: MessageStatus[];
  unknown: UnknownMessage[];
}

/** A poll reuses counts at least this young. */
export const POLL_GAP_MS = 2_000;

const kept = { counts: new KeptValues<RoundCounts>(), problems: new KeptValues<SendingProblems>() };
/** How long the last read of each campaign's counts took, per connection. */
const lastReadMs = new WeakMap<object, Map<string, number>>();

/** The campaign's emails by state, by round and in all (countByRound), for the page's progress poll: up to a few seconds old. */
export async function polledCounts(deps: SendingProgressDeps, campaign: Types.ObjectId): Promise<RoundCounts> {
  const { models } = deps;
  const key = String(campaign);
  let took = lastReadMs.get(models);
  if (!took) lastReadMs.set(models, (took = new Map()));
  const grace = Math.max(POLL_GAP_MS, 4 * (took.get(key) ?? 0));
  return kept.counts.get(models, key, await basisOf(models, campaign), async () => {
    const start = performance.now();
    const counts = await countByRound(deps, campaign);
    took.set(key, performance.now() - start);
    return counts;
  }, undefined, grace);
}

/**
 * The sending page's counts (as countByRound), failed messages (test sends
 * included) and those whose outcome is unknown, from one read of each
 * collection (they were three reads of messages, two of claims and three of
 * outcomes); the counts are kept for the poll too, which alone reads only
 * the compact fields.
 */
export async function sendingFigures(deps: SendingProgressDeps, campaign: Types.ObjectId): Promise<SendingProblems & { counts: RoundCounts }> {
  const { models } = deps;
  const key = String(campaign);
  const basis = await basisOf(models, campaign);
  const problems = await kept.problems.get(models, key, basis, async () => {
    const [messages, claims, outcomes] = await Promise.all([
      models.Outbox.find({ campaign }).lean<OutboxMessage[]>(),
      models.OutboxClaim.find({ campaign }, { message: 1, attempt: 1, at: 1, messageId: 1 }).lean(),
      models.OutboxOutcome.find({ campaign }, { sentEmail: 0, sentEmailBase: 0 }).lean<Array<OutboxOutcome & { _id: string }>>(),
    ]);
    kept.counts.put(models, key, basis, tallyByRound(messages.filter((m) => m.kind !== 'test'), claims, outcomes));
    return { failed: statusesOf(messages, claims, outcomes).filter((s) => s.state === 'failed'), unknown: unknownOf(outcomes, messages, claims) };
  });
  // Kept by the read above, unless the lists were kept from before and the counts not.
  const counts = await kept.counts.get(models, key, basis, () => countByRound(deps, campaign));
  return { ...problems, counts };
}

/** Read before the collections: a change written meanwhile moves a stamp this basis does not have. */
async function basisOf(models: Models, campaign: Types.ObjectId): Promise<string> {
  return (await Promise.all((['rounds', 'emails', 'tests'] as const).map((kind) => stampOf(models, kind, campaign)))).join('|');
}
