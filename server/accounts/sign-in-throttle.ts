import { addressKey } from '../shared/rate-limit.ts';
import type { RateLimitWindows } from '../shared/rate-limit.store.ts';

export interface SignInLimits {
  /** Failed sign-ins to one account from one address before delays start. */
  freeFailuresPerAccountAndAddress: number;
  /** Failed sign-ins from one address, to any accounts, before delays start. */
  freeFailuresPerAddress: number;
}

export const DEFAULT_SIGN_IN_LIMITS: SignInLimits = { freeFailuresPerAccountAndAddress: 5, freeFailuresPerAddress: 20 };

/**
 * Failures are counted in fixed windows of an hour, so each count starts
 * afresh on the hour, a delay running then included: at worst the free
 * failures again, every hour. The longest delay is a quarter of the window.
 */
const WINDOW_MS = 3600_000;
const FIRST_DELAY_MS = 1000;
const LONGEST_DELAY_MS = 15 * 60_000;

/** What a throttle holds against an address: how long to wait, and which count caused it. */
export interface Delay {
  seconds: number;
  by: 'account and address' | 'address';
}

/**
 * Growing delays after failed sign-ins, per (account, client address) and
 * per client address, never per account alone: a wrong password typed
 * somewhere else must never keep the owner out (an account lock-out is
 * something anyone could cause to anyone). After the free failures of a
 * count, each further failure doubles the wait before the next attempt from
 * there (1 s, 2 s, 4 s ... at most 15 minutes); a successful sign-in clears
 * the (account, address) count. While a delay runs, even the right password
 * is refused from that address, so waiting is the only way to try again.
 *
 * The counts live in the shared rate-limit windows, so they hold across
 * instances. Within one process, sign-ins from one address are handled one
 * at a time, so that a burst of parallel guesses cannot all pass the check
 * before the first failure is counted.
 */
export class SignInThrottle {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly deps: { windows: RateLimitWindows; now: () => Date },
    private readonly limits: SignInLimits = DEFAULT_SIGN_IN_LIMITS,
  ) {}

  /** Runs the attempt after the others from the same address in this process. */
  async oneAtATime<T>(address: string, attempt: () => Promise<T>): Promise<T> {
    const key = addressKey(address);
    const previous = this.queues.get(key) ?? Promise.resolve();
    const run = previous.then(attempt, attempt);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(key, settled);
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    });
    return run;
  }

  /** The delay still running against this account at this address, if any. */
  async delayFor(email: string, address: string): Promise<Delay | undefined> {
    const [pair, whole] = await Promise.all([
      this.deps.windows.read('sign-in', pairKey(email, address), WINDOW_MS),
      this.deps.windows.read('sign-in-address', addressKey(address), WINDOW_MS),
    ]);
    return this.longest([
      { count: pair, free: this.limits.freeFailuresPerAccountAndAddress, by: 'account and address' },
      { count: whole, free: this.limits.freeFailuresPerAddress, by: 'address' },
    ]);
  }

  /** Counts a failure; returns the delay it starts, if it starts one, and both counts. */
  async failed(email: string, address: string): Promise<{ delay?: Delay; failures: { accountAndAddress: number; address: number } }> {
    const [pair, whole] = await Promise.all([
      this.deps.windows.hit('sign-in', pairKey(email, address), WINDOW_MS, { keepLast: true }),
      this.deps.windows.hit('sign-in-address', addressKey(address), WINDOW_MS, { keepLast: true }),
    ]);
    const delay = this.longest([
      { count: pair, free: this.limits.freeFailuresPerAccountAndAddress, by: 'account and address' },
      { count: whole, free: this.limits.freeFailuresPerAddress, by: 'address' },
    ]);
    return { delay, failures: { accountAndAddress: pair.hits, address: whole.hits } };
  }

  /** The owner got in from there: their earlier typing errors are forgiven (the address's count is not). */
  async succeeded(email: string, address: string): Promise<void> {
    await this.deps.windows.forget('sign-in', pairKey(email, address), WINDOW_MS);
  }

  private longest(counts: Array<{ count: { hits: number; last?: Date }; free: number; by: Delay['by'] }>): Delay | undefined {
    const now = this.deps.now().getTime();
    let longest: Delay | undefined;
    for (const { count, free, by } of counts) {
      if (count.hits < free || !count.last) continue;
      const until = count.last.getTime() + Math.min(LONGEST_DELAY_MS, FIRST_DELAY_MS * 2 ** (count.hits - free));
      const seconds = Math.ceil((until - now) / 1000);
      if (seconds > 0 && seconds > (longest?.seconds ?? 0)) longest = { seconds, by };
    }
    return longest;
  }
}

function pairKey(email: string, address: string): string {
  return `${email}\n${addressKey(address)}`;
}
