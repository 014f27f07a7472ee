import { ChangeSignal } from '../shared/change-signal.ts';
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

/** A failure slot taken before a password check: in the counts, and in this process's attempts in flight. */
interface Reservation {
  email: string;
  address: string;
  /** The windows the slots were counted in, for giving them back after the hour turned. */
  at: Date;
}

export type SignInAttempt<T> =
  | { kind: 'passed'; user: T }
  | { kind: 'failed'; delay?: Delay; failures: { accountAndAddress: number; address: number } }
  | { kind: 'throttled'; delay: Delay };

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
 * instances. An attempt takes a failure slot in both counts before its
 * password is checked (given back if it succeeds), so attempts from one
 * address, for one account or many (an office behind one NAT address), run
 * side by side while their counts stay exact: a burst of parallel guesses
 * cannot all pass the check before the first failure is counted. Within one
 * process, taking the slots is one at a time per address, and an attempt
 * whose admission depends on how the attempts in flight end (had they all
 * failed, a delay would run) waits for them instead of guessing either way:
 * the outcome is the one the attempts would have had one after the other.
 * Other instances see the slots taken in the shared counts; what they cannot
 * see is whether those will fail, so across instances a burst can pass the
 * free failures by about one attempt per instance, as before.
 */
export class SignInThrottle {
  /** Per address: the admission running (reading the counts and taking the slots). */
  private readonly admissions = new Map<string, Promise<unknown>>();
  /** Per count key: attempts of this process that hold a slot and are not settled yet. */
  private readonly inFlight = new Map<string, number>();
  /** Resolved, and replaced, whenever an attempt in flight settles. */
  private readonly settled = new ChangeSignal();

  constructor(
    private readonly deps: { windows: RateLimitWindows; now: () => Date },
    private readonly limits: SignInLimits = DEFAULT_SIGN_IN_LIMITS,
  ) {}

  /**
   * One sign-in attempt: refused while a delay runs, otherwise `check` (the
   * password check: the user, or undefined when it fails) runs with a
   * failure slot held, and a failure is counted.
   */
  async attempt<T>(email: string, address: string, check: () => Promise<T | undefined>): Promise<SignInAttempt<T>> {
    const admitted = await this.admit(email, address);
    if ('delay' in admitted) return { kind: 'throttled', delay: admitted.delay };
    const reservation = admitted.reservation;
    let user: T | undefined;
    try {
      user = await check();
    } catch (error) {
      // No answer is no failure: both slots go back, and nothing is forgiven.
      await this.settle(reservation, this.giveBack(reservation, { forgive: false }));
      throw error;
    }
    if (user !== undefined) {
      await this.settle(reservation, this.giveBack(reservation, { forgive: true }));
      return { kind: 'passed', user };
    }
    const [pair, whole] = await this.settle(reservation, this.countFailure(reservation));
    const delay = this.longest([
      { count: pair, free: this.limits.freeFailuresPerAccountAndAddress, by: 'account and address' },
      { count: whole, free: this.limits.freeFailuresPerAddress, by: 'address' },
    ]);
    return { kind: 'failed', delay, failures: { accountAndAddress: pair.hits, address: whole.hits } };
  }

  /** Waits until the attempt may go ahead (and takes its slots) or is refused. */
  private async admit(email: string, address: string): Promise<{ reservation: Reservation } | { delay: Delay }> {
    for (;;) {
      // Taken before the counts are read, so that a settling in between is not missed.
      const settling = this.settled.next;
      const verdict = await this.oneAtATime(addressKey(address), async () => {
        const [pair, whole] = await this.countsOf(email, address);
        const counts = [
          { count: pair, inFlight: this.inFlight.get(pairKey(email, address)) ?? 0, free: this.limits.freeFailuresPerAccountAndAddress, by: 'account and address' as const },
          { count: whole, inFlight: this.inFlight.get(addressKey(address)) ?? 0, free: this.limits.freeFailuresPerAddress, by: 'address' as const },
        ];
        // Had every attempt in flight succeeded (their slots given back): a delay that runs anyway.
        const regardless = this.longest(counts.map(({ count, inFlight, free, by }) => ({ count: { ...count, hits: Math.max(0, count.hits - inFlight) }, free, by })));
        if (regardless) return { delay: regardless };
        // Had they all failed just now: a delay that would run, so their outcome decides.
        const now = this.deps.now();
        if (this.longest(counts.map(({ count, inFlight, free, by }) => ({ count: inFlight > 0 ? { hits: count.hits, last: now } : count, free, by })))) return 'wait' as const;
        const reservation = { email, address, at: now };
        await this.reserve(reservation);
        return { reservation };
      });
      if (verdict !== 'wait') return verdict;
      await settling;
    }
  }

  /** Counts the attempt as a failure in both counts before its check; this process knows it is in flight. */
  private async reserve(reservation: Reservation): Promise<void> {
    const { email, address, at } = reservation;
    for (const key of [pairKey(email, address), addressKey(address)]) this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    try {
      await Promise.all([
        this.deps.windows.change('sign-in', pairKey(email, address), WINDOW_MS, { amount: 1, at }),
        this.deps.windows.change('sign-in-address', addressKey(address), WINDOW_MS, { amount: 1, at }),
      ]);
    } catch (error) {
      this.release(reservation);
      throw error;
    }
  }

  /** The check failed: the slots stay, and the failure's time starts the delays. */
  private countFailure({ email, address, at }: Reservation) {
    return Promise.all([
      this.deps.windows.change('sign-in', pairKey(email, address), WINDOW_MS, { amount: 0, keepLast: true, at }),
      this.deps.windows.change('sign-in-address', addressKey(address), WINDOW_MS, { amount: 0, keepLast: true, at }),
    ]);
  }

  /** The check passed (the owner's typing errors from there are forgiven too) or could not be made: the slots go back. */
  private async giveBack({ email, address, at }: Reservation, { forgive }: { forgive: boolean }): Promise<void> {
    await Promise.all([
      this.deps.windows.change('sign-in-address', addressKey(address), WINDOW_MS, { amount: -1, at }),
      forgive ? this.deps.windows.forget('sign-in', pairKey(email, address), WINDOW_MS) : this.deps.windows.change('sign-in', pairKey(email, address), WINDOW_MS, { amount: -1, at }),
    ]);
  }

  /** Runs the write that settles an attempt, then tells the attempts waiting on it. */
  private async settle<T>(reservation: Reservation, write: Promise<T>): Promise<T> {
    try {
      return await write;
    } finally {
      this.release(reservation);
    }
  }

  private release({ email, address }: Reservation): void {
    for (const key of [pairKey(email, address), addressKey(address)]) {
      const left = (this.inFlight.get(key) ?? 1) - 1;
      if (left > 0) this.inFlight.set(key, left);
      else this.inFlight.delete(key);
    }
    this.settled.notify();
  }

  /** Runs the step after the others of the same address in this process. */
  private async oneAtATime<T>(address: string, step: () => Promise<T>): Promise<T> {
    const previous = this.admissions.get(address) ?? Promise.resolve();
    const run = previous.then(step, step);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.admissions.set(address, settled);
    void settled.then(() => {
      if (this.admissions.get(address) === settled) this.admissions.delete(address);
    });
    return run;
  }

  private countsOf(email: string, address: string) {
    return Promise.all([this.deps.windows.read('sign-in', pairKey(email, address), WINDOW_MS), this.deps.windows.read('sign-in-address', addressKey(address), WINDOW_MS)]);
  }

  /** The delay still running against this account at this address, if any. */
  async delayFor(email: string, address: string): Promise<Delay | undefined> {
    const [pair, whole] = await this.countsOf(email, address);
    return this.longest([
      { count: pair, free: this.limits.freeFailuresPerAccountAndAddress, by: 'account and address' },
      { count: whole, free: this.limits.freeFailuresPerAddress, by: 'address' },
    ]);
  }

  /** Counts a failure checked outside attempt() (the current password on the password page); returns the delay it starts, if it starts one, and both counts. */
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
