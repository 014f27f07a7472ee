import type { Models } from '../db/models.ts';
import { lookUpAll } from '../shared/look-ups.ts';
import { journalHead, journalId, type JournalEntry } from '../evidence/analytic-record.ts';
import { KEPT_MAX_AGE_MS } from '../shared/change-stamp.ts';
import { followedStateTestHooks, newFollowedState, nextLoad, readWholeBeside, type FollowedState } from '../shared/followed-state.ts';

/**
 * The answers each campaign holds, as the personal-data page counts them:
 * its current responses, identified and anonymous, and their revisions.
 * Kept per connection and followed through the evidence journal
 * (analytic-record.ts), whose every entry names a response's record and the
 * revision it is brought to, written after the response and its revision
 * are stored. Counting them again after each submission read every response
 * and revision (~0.4 s for 1,000 of each on the embedded engine, and
 * growing with them); a submission now costs a read of its journal entry and,
 * for a first one, its completion mark, by _id.
 *
 * What an entry can say for sure is applied: the first revision of a response
 * this state has not seen (an identified one: its completion mark is there),
 * or the revision after the last one it saw. Anything else (a removal, a
 * record of an anonymous response, an entry naming no revision or whose
 * record was blanked, a revision that skips one, entries compacted away or
 * too many to follow) reads the answers whole, as does the first load. Once
 * the last whole read is KEPT_MAX_AGE_MS old, it is read whole again beside
 * a load (a writer that crashed between its revision and its entry shows
 * then), and the load is answered from the state followed so far.
 *
 * Memory: an entry per identified response (its campaign and last revision
 * seen), ~100 bytes each.
 */
export interface HeldAnswers {
  identifiedResponses: number;
  anonymousResponses: number;
  revisions: number;
}

interface Seen {
  campaign: string;
  /** The highest revision counted. */
  revision: number;
  /** Counted as a current identified response. */
  identified: boolean;
}

interface State {
  /** By campaign id. */
  counts: Map<string, HeldAnswers>;
  /** Identified responses and those with revisions, by id. */
  seen: Map<string, Seen>;
  /** Every journal entry up to this number is counted. */
  upTo: number;
  readWholeAt: number;
}

type AnswerModels = Pick<Models, 'Response' | 'ResponseRevision' | 'Completion' | 'EvidenceJournal' | 'EvidenceFollower'>;

/** Entries followed in one load; further behind, the answers are read whole. */
const FOLLOWED_AT_MOST = 500;

const holders = new WeakMap<object, FollowedState<State>>();
const reads = new WeakMap<object, { whole: number; entries: number }>();

/** How often this connection read the answers whole, and how many journal entries it applied instead. */
export function heldAnswerReads(models: object): { whole: number; entries: number } {
  return { ...(reads.get(models) ?? { whole: 0, entries: 0 }) };
}

/** Lets a test make the kept answers as old as it likes, and wait for a read in the background. */
export const heldAnswersTestHooks = {
  age: (models: object, ms: number) => followedStateTestHooks.age(holders.get(models), ms),
  refreshed: (models: object) => followedStateTestHooks.refreshed(holders.get(models)),
};

/** The answers every campaign holds now, by campaign id: followed from what this connection keeps, or read whole. */
export async function heldAnswers(models: AnswerModels): Promise<ReadonlyMap<string, Readonly<HeldAnswers>>> {
  let holder = holders.get(models);
  if (!holder) holders.set(models, (holder = newFollowedState()));
  const own = holder;
  const state = await nextLoad(own, () => follow(models, own));
  return new Map([...state.counts].map(([campaign, counts]) => [campaign, { ...counts }]));
}

async function follow(models: AnswerModels, holder: FollowedState<State>): Promise<State> {
  const state = holder.state;
  if (!state) return (holder.state = await readWhole(models));
  if (Date.now() - state.readWholeAt >= KEPT_MAX_AGE_MS) readWholeBeside(holder, () => readWhole(models));
  const head = await journalHead(models, state.upTo);
  if (head === state.upTo) return state;
  if (head - state.upTo > FOLLOWED_AT_MOST) return (holder.state = await readWhole(models));
  const entries = await lookUpAll(
    Array.from({ length: head - state.upTo }, (_, i) => state.upTo + 1 + i),
    (sequence) => models.EvidenceJournal.findById(journalId(sequence)).lean<JournalEntry>(),
  );
  // Applied on a copy: an entry this state cannot apply leaves it as it was, and the answers are read whole.
  const counts = new Map([...state.counts].map(([campaign, own]) => [campaign, { ...own }]));
  const changed = new Map<string, Seen>();
  for (const entry of entries) {
    if (!entry || !entry.r || entry.x || !entry.v) return (holder.state = await readWhole(models));
    const id = String(entry.r);
    const before = changed.get(id) ?? state.seen.get(id);
    const seen: Seen = { campaign: before?.campaign ?? '', revision: before?.revision ?? 0, identified: before?.identified ?? false };
    if (!seen.identified) {
      // A response not counted as identified yet: one only if its completion mark is there (an anonymous one has none).
      const mark = await models.Completion.findById(entry.r, { campaign: 1 }).lean();
      if (!mark) return (holder.state = await readWhole(models));
      seen.campaign = String(mark.campaign);
      seen.identified = true;
      countsOf(counts, seen.campaign).identifiedResponses += 1;
    }
    if (entry.v > seen.revision) {
      // A revision skipped is one this state cannot vouch for.
      if (entry.v !== seen.revision + 1) return (holder.state = await readWhole(models));
      seen.revision = entry.v;
      countsOf(counts, seen.campaign).revisions += 1;
    }
    changed.set(id, seen);
  }
  for (const [id, seen] of changed) state.seen.set(id, seen);
  state.counts = counts;
  state.upTo = head;
  tally(models).entries += entries.length;
  return state;
}

function countsOf(counts: Map<string, HeldAnswers>, campaign: unknown): HeldAnswers {
  const key = String(campaign);
  return counts.get(key) ?? counts.set(key, { identifiedResponses: 0, anonymousResponses: 0, revisions: 0 }).get(key)!;
}

/**
 * Every response and revision. The journal's head first: an entry is written
 * after its response and revision, so every entry up to it is in what the
 * reads find, and an entry after it that they found too is recognised by
 * its revision.
 */
async function readWhole(models: AnswerModels): Promise<State> {
  const readWholeAt = Date.now();
  const upTo = await journalHead(models);
  // The engine reads each whole document whatever the projection: this is what the following spares.
  const [responses, revisions] = await Promise.all([
    // `anonymous` is not in the response's schema: the anonymised copies are written as documents of their own (privacy.service.ts).
    models.Response.find({}, { campaign: 1, anonymous: 1 }).lean<Array<{ _id: unknown; campaign: unknown; anonymous?: boolean }>>(),
    models.ResponseRevision.find({}, { campaign: 1, invitation: 1, revision: 1 }).lean(),
  ]);
  const counts = new Map<string, HeldAnswers>();
  const seen = new Map<string, Seen>();
  const seenOf = (id: unknown, campaign: unknown) => {
    const key = String(id);
    return seen.get(key) ?? seen.set(key, { campaign: String(campaign), revision: 0, identified: false }).get(key)!;
  };
  for (const response of responses) {
    if (response.anonymous) countsOf(counts, response.campaign).anonymousResponses += 1;
    else {
      countsOf(counts, response.campaign).identifiedResponses += 1;
      seenOf(response._id, response.campaign).identified = true;
    }
  }
  for (const revision of revisions) {
    countsOf(counts, revision.campaign).revisions += 1;
    const own = seenOf(revision.invitation, revision.campaign);
    own.revision = Math.max(own.revision, revision.revision);
  }
  tally(models).whole += 1;
  return { counts, seen, upTo, readWholeAt };
}

function tally(models: object) {
  let own = reads.get(models);
  if (!own) reads.set(models, (own = { whole: 0, entries: 0 }));
  return own;
}
