/**
 * A state a process keeps per connection and follows through a journal
 * (a campaign's links' progress, the audit log's index), with the loads that
 * read it queued one after another, so that a load never sees less than the
 * one before it.
 */
export interface FollowedState<S extends { readWholeAt: number }> {
  state?: S;
  /** The loads, one after another. */
  queue: Promise<unknown>;
  /** The whole read under way beside the loads, if any. */
  refreshing?: Promise<unknown>;
}

/**
 * Reads the state whole beside the loads (once at a time), for a state read
 * whole long ago: the loads meanwhile are answered from what was followed.
 * The state read takes over at the next turn of the queue, unless one read
 * whole later took over meanwhile (an entry that said so), and is followed
 * from the stamp it read. A failed read is left to the next load past the age.
 */
export function readWholeBeside<S extends { readWholeAt: number }>(holder: FollowedState<S>, read: () => Promise<S>): void {
  if (holder.refreshing) return;
  holder.refreshing = read()
    .then((fresh) => {
      const takeOver = holder.queue.then(() => {
        if (!holder.state || holder.state.readWholeAt < fresh.readWholeAt) holder.state = fresh;
      });
      holder.queue = takeOver.catch(() => undefined);
      return takeOver;
    })
    .catch(() => undefined)
    .finally(() => (holder.refreshing = undefined));
}

/** A holder with no state yet. */
export function newFollowedState<S extends { readWholeAt: number }>(): FollowedState<S> {
  return { queue: Promise.resolve() };
}

/** Runs a load after the holder's loads before it: one that came during another's read follows on from it. */
export function nextLoad<S extends { readWholeAt: number }, T>(holder: FollowedState<S>, load: () => Promise<T>): Promise<T> {
  const run = holder.queue.then(load);
  holder.queue = run.catch(() => undefined);
  return run;
}

/** What the tests of a followed state use: make its whole read as old as they like, and wait for a read beside a load. */
export const followedStateTestHooks = {
  age(holder: FollowedState<{ readWholeAt: number }> | undefined, ms: number): void {
    if (holder?.state) holder.state.readWholeAt -= ms;
  },
  async refreshed(holder: FollowedState<{ readWholeAt: number }> | undefined): Promise<void> {
    await holder?.refreshing;
  },
};
