import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { KeptValues, stampOf } from '../shared/change-stamp.ts';
import { countByRound, listUnknown, messageStatuses } from './outbox.service.ts';

/**
 * The sending page's figures, kept per campaign until its emails change.
 *
 * A campaign's messages, claims and outcomes can only be found by a filter,
 * which on the embedded engine reads every campaign's: with four campaigns
 * of 3,000 emails each of the page's three reads costs the database about
 * 2 s of CPU. So they are kept until a stamp of the campaign's emails moves
 * (its rounds, its emails' outcomes, its test sends; change-stamp.ts), and a
 * load with nothing changed reads three stamps.
 *
 * While the campaign sends, the sender moves its `emails` stamp every 250 ms,
 * and the page polls its counts every 2 s: a poll then reuses counts younger
 * than POLL_GAP_MS, or four times as long as the last read of them took, so
 * that a page left open takes at most a fifth of the database's time from
 * the sender it watches, however long the email history.
 */
export interface SendingProgressDeps {
  models: Models;
}

type Counts = Awaited<ReturnType<typeof countByRound>>;
type Failed = Awaited<ReturnType<typeof messageStatuses>>;
type Unknown = Awaited<ReturnType<typeof listUnknown>>;

/** A poll reuses counts at least this young. */
export const POLL_GAP_MS = 2_000;

const kept = {
  counts: new KeptValues<Counts>(),
  failed: new KeptValues<Failed>(),
  unknown: new KeptValues<Unknown>(),
};
/** How long the last read of each campaign's counts took, per connection. */
const lastReadMs = new WeakMap<object, Map<string, number>>();

/** The campaign's emails by state, by round and in all (countByRound); `polled`: the page's progress poll, which may get counts up to a few seconds old. */
export async function sendingCounts(deps: SendingProgressDeps, campaign: Types.ObjectId, { polled }: { polled: boolean }): Promise<Counts> {
  const { models } = deps;
  const key = String(campaign);
  let took = lastReadMs.get(models);
  if (!took) lastReadMs.set(models, (took = new Map()));
  const grace = polled ? Math.max(POLL_GAP_MS, 4 * (took.get(key) ?? 0)) : 0;
  return kept.counts.get(models, key, await basisOf(models, campaign), async () => {
    const start = performance.now();
    const counts = await countByRound(deps, campaign);
    took.set(key, performance.now() - start);
    return counts;
  }, undefined, grace);
}

/** The campaign's failed messages (test sends included) and those whose outcome is unknown, as the sending page lists them. */
export async function sendingProblems(deps: SendingProgressDeps, campaign: Types.ObjectId): Promise<{ failed: Failed; unknown: Unknown }> {
  const { models } = deps;
  const key = String(campaign);
  const basis = await basisOf(models, campaign);
  const [failed, unknown] = await Promise.all([
    kept.failed.get(models, key, basis, async () => (await messageStatuses(deps, { campaign })).filter((s) => s.state === 'failed')),
    kept.unknown.get(models, key, basis, () => listUnknown(deps, { campaign })),
  ]);
  return { failed, unknown };
}

/** Read before the collections: a change written meanwhile moves a stamp this basis does not have. */
async function basisOf(models: Models, campaign: Types.ObjectId): Promise<string> {
  return (await Promise.all((['rounds', 'emails', 'tests'] as const).map((kind) => stampOf(models, kind, campaign)))).join('|');
}
