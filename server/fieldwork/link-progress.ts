import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { progressStamp, readProgressChanges, sequenceOf, stepsOf, type ProgressStep } from '../respond/progress-changes.ts';
import { KEPT_MAX_AGE_MS } from '../shared/change-stamp.ts';
import { followedStateTestHooks, newFollowedState, nextLoad, readWholeBeside, type FollowedState } from '../shared/followed-state.ts';

/**
 * How far each personal link of a campaign has come (opened, begun,
 * answered), kept per connection and campaign and followed through the
 * campaign's progress journal (progress-changes.ts): a load reads the
 * `progress` stamp, and when it moved, the entries written since, by _id.
 * The campaign's invitations and completion marks are read whole for the
 * first load, when an entry says so (an erasure, a purge, seed:demo), and
 * when the stamp names no entry this state applied or an entry is gone. Once
 * the last whole read is KEPT_MAX_AGE_MS old, it is read whole again in the
 * background (a writer that crashed between its step and its entry shows
 * then), and the load is answered from the state followed so far: a page
 * loaded every few minutes used to wait for that read every ten (at 10,000
 * links, every invitation of every campaign, drafts included). Loads of one
 * campaign follow one after another, and a state read in the background
 * takes over between two of them, so a load never sees less than the one
 * before it.
 */
export const OPENED = 1;
export const STARTED = 2;
export const COMPLETED = 4;
const BITS: Record<ProgressStep, number> = { opened: OPENED, started: STARTED, completed: COMPLETED };

export interface LinkProgress {
  /** Each link's steps taken (OPENED | STARTED | COMPLETED), by invitation id; a link not here took none. */
  readonly steps: ReadonlyMap<string, number>;
  /** When each completed link (revoked ones too) was first answered, in ms: its completion mark's time, else its invitation's. */
  readonly completedAt: ReadonlyMap<string, number>;
  /** Moves whenever `steps` changes: what a page keeps its figures under. */
  readonly version: string;
  /** Moves whenever `completedAt` changes (a first submission, not an opening): what the timeline keeps its figures under. */
  readonly completedVersion: string;
}

interface State {
  steps: Map<string, number>;
  completedAt: Map<string, number>;
  /** Every entry up to this number is in `steps`. */
  upTo: number;
  /** The stamp values of the latest entries applied (newest last), and the one the whole read began under: a stamp among them says nothing else changed. */
  applied: string[];
  readWholeAt: number;
  /** This state's whole read, and the entries applied after it: its version. */
  read: number;
  changes: number;
  /** The changes among them that added a completion. */
  completions: number;
}

/** Stamp values a state remembers. */
const APPLIED_KEPT = 64;

type Follower = FollowedState<State>;

const followers = new WeakMap<object, Map<string, Follower>>();
const counts = new WeakMap<object, { whole: number; entries: number }>();
let wholeReads = 0;

/** How often this connection read a campaign's progress whole, and how many journal entries it applied instead. */
export function linkProgressReads(models: object): { whole: number; entries: number } {
  return { ...(counts.get(models) ?? { whole: 0, entries: 0 }) };
}

/** The campaign's links' progress now: followed from what this connection keeps, or read whole. */
export async function linkProgress(models: Pick<Models, 'ChangeStamp' | 'ProgressChange' | 'Invitation' | 'Completion'>, campaignId: Types.ObjectId): Promise<LinkProgress> {
  let byCampaign = followers.get(models);
  if (!byCampaign) followers.set(models, (byCampaign = new Map()));
  const key = String(campaignId);
  let follower = byCampaign.get(key);
  if (!follower) byCampaign.set(key, (follower = newFollowedState()));
  const own = follower;
  // One after another: a load that came during another's read still reads the stamp after it.
  const state = await nextLoad(own, () => follow(models, campaignId, own));
  return { steps: state.steps, completedAt: state.completedAt, version: `${state.read}.${state.changes}`, completedVersion: `${state.read}.${state.completions}` };
}

async function follow(models: Parameters<typeof linkProgress>[0], campaignId: Types.ObjectId, follower: Follower): Promise<State> {
  const state = follower.state;
  if (!state) return (follower.state = await readWhole(models, campaignId));
  if (Date.now() - state.readWholeAt >= KEPT_MAX_AGE_MS) readWholeBeside(follower, () => readWhole(models, campaignId));
  const stamp = await progressStamp(models, campaignId);
  if (state.applied.includes(stamp.v)) return state;
  const entries = await readProgressChanges(models, String(campaignId), state.upTo, stamp.n);
  if (!entries || entries.some((entry) => entry.all)) return (follower.state = await readWhole(models, campaignId));
  const completedBefore = state.completedAt.size;
  for (const entry of entries) {
    for (const { id, step, at } of stepsOf(entry)) {
      state.steps.set(id, (state.steps.get(id) ?? 0) | BITS[step]);
      // A link's completion mark is written once: its first entry's time is its time.
      if (step === 'completed' && !state.completedAt.has(id)) state.completedAt.set(id, at.getTime());
    }
    state.upTo = sequenceOf(entry);
    state.applied.push(entry.v);
  }
  if (state.applied.length > APPLIED_KEPT) state.applied.splice(0, state.applied.length - APPLIED_KEPT);
  if (entries.length) state.changes += 1;
  if (state.completedAt.size !== completedBefore) state.completions += 1;
  tally(models).entries += entries.length;
  // A stamp no entry set: a writer that journals nothing changed something.
  if (!state.applied.includes(stamp.v)) return (follower.state = await readWhole(models, campaignId));
  return state;
}

/** Lets a test make a campaign's kept progress as old as it likes, and wait for a read in the background. */
export const linkProgressTestHooks = {
  age: (models: object, campaignId: Types.ObjectId, ms: number) => followedStateTestHooks.age(followers.get(models)?.get(String(campaignId)), ms),
  refreshed: (models: object, campaignId: Types.ObjectId) => followedStateTestHooks.refreshed(followers.get(models)?.get(String(campaignId))),
};

async function readWhole(models: Parameters<typeof linkProgress>[0], campaignId: Types.ObjectId): Promise<State> {
  // The stamp before the collections: every entry up to its number was written after its step.
  const [stamp, readWholeAt] = [await progressStamp(models, campaignId), Date.now()];
  const [invitations, marks] = await Promise.all([
    models.Invitation.find({ campaign: campaignId }, { openedAt: 1, startedAt: 1, completedAt: 1 }).lean(),
    models.Completion.find({ campaign: campaignId }, { at: 1 }).lean(),
  ]);
  // When each link completed: its mark, else the invitation's own date (a mark lost to a crash before the backfill).
  const completedAt = new Map<string, number>();
  for (const invitation of invitations) if (invitation.completedAt) completedAt.set(String(invitation._id), invitation.completedAt.getTime());
  for (const mark of marks) completedAt.set(String(mark._id), mark.at.getTime());
  const steps = new Map<string, number>();
  for (const invitation of invitations) {
    const id = String(invitation._id);
    const bits = (invitation.openedAt ? OPENED : 0) | (invitation.startedAt ? STARTED : 0) | (completedAt.has(id) ? COMPLETED : 0);
    if (bits) steps.set(id, bits);
  }
  tally(models).whole += 1;
  return { steps, completedAt, upTo: stamp.n, applied: [stamp.v], readWholeAt, read: ++wholeReads, changes: 0, completions: 0 };
}

function tally(models: object) {
  let own = counts.get(models);
  if (!own) counts.set(models, (own = { whole: 0, entries: 0 }));
  return own;
}
