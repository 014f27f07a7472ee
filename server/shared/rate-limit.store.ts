import { createHash } from 'node:crypto';
import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';
import type { RateLimitWindowModel } from './rate-limit-window.model.ts';
import type { Logger } from './logger.ts';

/** How often a process deletes the windows that are over. */
const SWEEP_EVERY_MS = 60_000;

export interface WindowCount {
  /** Hits of the key in the window, the one just counted included. */
  hits: number;
  /** When the window ends and a new count starts. */
  until: Date;
  /** The latest hit, for counters that keep it. */
  last?: Date;
}

interface Batch {
  hits: number;
  keepLast: boolean;
  /** The window is forgotten first: what came before in the batch was wiped with it. */
  reset: boolean;
  /** The window after the batch's write. */
  written: Promise<{ hits: number; last?: Date }>;
}

/**
 * The rate-limit counters in the database, shared by every instance of the
 * platform: one small document per (limit, key, fixed window), read and
 * written by _id only (see rate-limit-window.model.ts).
 *
 * Can concurrent hits be lost? On MongoDB, no: $inc is atomic. On FerretDB
 * v1, yes: it applies an update as a read followed by a write, so two
 * updates of one window at the same moment can both read n and both write
 * n + k (100 parallel upserting $inc of one _id on the embedded engine left
 * hits = 3, 13 of them failing as duplicate inserts). Within one process
 * this never happens: hits of a window arriving
 * while its write is in flight are gathered into the next single $inc, so a
 * process has at most one write per window in flight. What can still be
 * lost are the hits of one instance overlapping those of another, at most
 * one batch per instance per overlap: a client spreading a burst over k
 * instances could get up to about k times its limit. That is accepted: a
 * limit is a brake on probing and floods, not an exactly-once invariant
 * (those are decided by unique inserts, see claim.model.ts), and it never
 * counts a hit twice, so it never refuses a client early. Counting by
 * inserting one document per hit would be exact but would need a non-_id
 * query (a full scan on FerretDB) to count, and a large collection.
 *
 * Windows that are over are deleted with an acknowledged deleteMany, at most
 * once a minute per process (FerretDB v1 has no TTL index; an unacknowledged
 * w:0 write would leave the driver's pooled connection out of step with
 * FerretDB's replies). The sweep reads the whole collection on FerretDB,
 * which stays small: one document per active key per window.
 */
export class RateLimitWindows {
  private lastSweep = Number.NEGATIVE_INFINITY;
  /** Per window id: hits waiting for the write in flight to finish. */
  private readonly waiting = new Map<string, Batch>();
  /** Per window id: the write in flight. */
  private readonly writing = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: { models: { RateLimitWindow: RateLimitWindowModel }; now: () => Date; logger?: Logger }) {}

  /** Counts one hit of the key in the limit's current window; keepLast also records when. */
  async hit(limit: string, key: string, windowMs: number, options: { keepLast?: boolean } = {}): Promise<WindowCount> {
    return this.change(limit, key, windowMs, { amount: 1, keepLast: options.keepLast ?? false });
  }

  /**
   * Changes the key's count in the window that held `at` (default: now) by
   * `amount` (a hit taken back: -1; 0 with keepLast only records when;
   * reset forgets the window first), through the same one-write-per-window
   * queue as hits, so that it never races them on FerretDB's read-then-write.
   */
  async change(limit: string, key: string, windowMs: number, options: { amount: number; keepLast?: boolean; at?: Date; reset?: boolean }): Promise<WindowCount> {
    await this.sweepWhenDue();
    const { id, until } = this.window(limit, key, windowMs, options.at);
    let batch = this.waiting.get(id);
    if (!batch) {
      const next: Batch = { hits: 0, keepLast: false, reset: false, written: Promise.resolve({ hits: 0 }) };
      const previous = this.writing.get(id) ?? Promise.resolve();
      next.written = previous.then(() => {
        // From here on, new hits form the batch after this one.
        this.waiting.delete(id);
        return this.add(id, next.hits, until, next.keepLast, next.reset);
      });
      const settled = next.written.then(
        () => undefined,
        () => undefined,
      );
      this.writing.set(id, settled);
      void settled.then(() => {
        if (this.writing.get(id) === settled) this.writing.delete(id);
      });
      this.waiting.set(id, next);
      batch = next;
    }
    if (options.reset) Object.assign(batch, { hits: 0, keepLast: false, reset: true });
    batch.hits += options.amount;
    batch.keepLast ||= options.keepLast ?? false;
    const position = batch.hits;
    const joined = batch;
    const written = await joined.written;
    // Each hit of a batch gets its own place in the count, as if they had been written one by one.
    return { hits: written.hits - joined.hits + position, until, last: written.last };
  }

  /** The key's count in the limit's current window (0 hits when it has none). */
  async read(limit: string, key: string, windowMs: number): Promise<WindowCount> {
    const { id, until } = this.window(limit, key, windowMs);
    const found = await this.deps.models.RateLimitWindow.findOne({ _id: id }).lean();
    return { hits: found?.hits ?? 0, until, last: found?.last ?? undefined };
  }

  /** Takes one hit back (express-rate-limit's decrement, only ever after an increment). */
  async takeBack(limit: string, key: string, windowMs: number): Promise<void> {
    await this.change(limit, key, windowMs, { amount: -1 });
  }

  /** Forgets the key's current window, e.g. after a successful sign-in. */
  async forget(limit: string, key: string, windowMs: number): Promise<void> {
    // In the window's queue, not beside it: a hit being written at the same moment must not bring the count back.
    await this.change(limit, key, windowMs, { amount: 0, reset: true });
  }

  private window(limit: string, key: string, windowMs: number, at: Date = this.deps.now()) {
    const start = Math.floor(at.getTime() / windowMs) * windowMs;
    // Hashed: every id has the same short length, and the collection holds no address or email in clear.
    const hashed = createHash('sha256').update(key).digest('base64url').slice(0, 22);
    return { id: `${limit}:${hashed}:${start}`, until: new Date(start + windowMs) };
  }

  /** Adds hits to a window, creating it if needed; returns its count after the addition. */
  private async add(id: string, hits: number, until: Date, keepLast: boolean, reset: boolean): Promise<{ hits: number; last?: Date }> {
    if (reset) {
      await this.deps.models.RateLimitWindow.deleteOne({ _id: id });
      if (hits === 0 && !keepLast) return { hits: 0 };
    }
    const update = { $inc: { hits }, $max: keepLast ? { until, last: this.deps.now() } : { until } };
    try {
      await this.deps.models.RateLimitWindow.updateOne({ _id: id }, update, { upsert: true });
    } catch (error) {
      // Another instance created the window between this upsert's read and its insert: add to theirs.
      if ((error as { code?: number }).code !== 11000) throw error;
      await this.deps.models.RateLimitWindow.updateOne({ _id: id }, update);
    }
    const found = await this.deps.models.RateLimitWindow.findOne({ _id: id }).lean();
    return { hits: found?.hits ?? hits, last: found?.last ?? undefined };
  }

  private async sweepWhenDue() {
    const now = this.deps.now().getTime();
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    try {
      await this.deps.models.RateLimitWindow.deleteMany({ until: { $lte: new Date(now) } });
    } catch (error) {
      // A missed sweep only leaves the collection larger until the next one.
      this.deps.logger?.error({ err: error }, 'deleting expired rate-limit windows failed');
    }
  }
}

/**
 * express-rate-limit's Store on the shared counters: one instance per
 * limiter, its prefix naming the limit. Windows are fixed and follow the
 * platform's clock.
 */
export class DatabaseStore implements Store {
  readonly localKeys = false;
  private windowMs = 60_000;

  constructor(
    private readonly windows: RateLimitWindows,
    readonly prefix: string,
  ) {}

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const count = await this.windows.read(this.prefix, key, this.windowMs);
    return count.hits > 0 ? { totalHits: count.hits, resetTime: count.until } : undefined;
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    const count = await this.windows.hit(this.prefix, key, this.windowMs);
    return { totalHits: count.hits, resetTime: count.until };
  }

  async decrement(key: string): Promise<void> {
    await this.windows.takeBack(this.prefix, key, this.windowMs);
  }

  async resetKey(key: string): Promise<void> {
    await this.windows.forget(this.prefix, key, this.windowMs);
  }
}
