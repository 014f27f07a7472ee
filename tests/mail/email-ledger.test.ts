import { describe, expect, it } from 'vitest';
import { EmailLedger } from '../../server/mail/email-ledger.ts';
import { OUTBOX_STATES, type OutboxState } from '../../server/mail/outbox.model.ts';
import type { OutboxCounts, RoundCounts } from '../../server/mail/outbox.service.ts';

/** A small deterministic random source (mulberry32), so that a failing sequence can be replayed by its seed. */
function randomSource(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const messageOf = (id: string) => id.slice(0, id.indexOf(':'));

/**
 * The figures from scratch, as the sending page counted them before the ledger: each message in its round's total,
 * claims and outcomes of known messages by round, a retry settling its attempt only, sending = claimed − settled,
 * queued the rest.
 */
function countsFromScratch(messages: ReadonlyMap<string, number>, claims: ReadonlySet<string>, outcomes: ReadonlyMap<string, string>): RoundCounts {
  type Raw = OutboxCounts & { claims: number; settled: number };
  const empty = (): Raw => ({ ...(Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])) as OutboxCounts), total: 0, claims: 0, settled: 0 });
  const byRound = new Map<number, Raw>();
  const of = (round: number) => byRound.get(round) ?? byRound.set(round, empty()).get(round)!;
  for (const round of messages.values()) of(round).total += 1;
  for (const claim of claims) if (messages.has(messageOf(claim))) of(messages.get(messageOf(claim))!).claims += 1;
  for (const [id, state] of outcomes) {
    if (!messages.has(messageOf(id))) continue;
    const raw = of(messages.get(messageOf(id))!);
    raw.settled += 1;
    if (state !== 'retry') raw[state as OutboxState] += 1;
  }
  const finish = ({ claims: claimed, settled, ...counts }: Raw): OutboxCounts => ({ ...counts, sending: claimed - settled, queued: counts.total - counts.sent - counts.failed - counts.skipped - counts.unknown - (claimed - settled) });
  const all = empty();
  for (const raw of byRound.values()) for (const key of Object.keys(all) as Array<keyof Raw>) all[key] += raw[key];
  return { all: finish(all), rounds: [...byRound].sort(([a], [b]) => a - b).map(([round, raw]) => ({ round, counts: finish(raw) })) };
}

/** Each message's state from scratch, by statusesOf's rules: what the sending follower computed on every change before. */
function statesFromScratch(messages: ReadonlyMap<string, number>, claims: ReadonlySet<string>, outcomes: ReadonlyMap<string, string>, round: number) {
  const lastAttempt = new Map<string, number>();
  for (const claim of claims) {
    const attempt = Number(claim.slice(messageOf(claim).length + 1));
    if (attempt > (lastAttempt.get(messageOf(claim)) ?? -1)) lastAttempt.set(messageOf(claim), attempt);
  }
  const states = new Map<string, OutboxState>();
  for (const [message, ofRound] of messages) {
    if (ofRound !== round) continue;
    const attempt = lastAttempt.get(message);
    const outcome = attempt === undefined ? undefined : outcomes.get(`${message}:${attempt}`);
    states.set(message, attempt === undefined || outcome === 'retry' ? 'queued' : ((outcome as OutboxState | undefined) ?? 'sending'));
  }
  return states;
}

describe('the sending follower keeps its figures as entries come', () => {
  it('gives, after every step of random sequences, the figures and states a count from scratch gives', () => {
    const OUTCOMES = ['sent', 'failed', 'unknown', 'skipped', 'retry'];
    for (let seed = 1; seed <= 40; seed++) {
      const random = randomSource(seed);
      const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
      const ids = Array.from({ length: 12 }, (_, i) => `m${i}`);
      const ledger = new EmailLedger();
      const messages = new Map<string, number>();
      const claims = new Set<string>();
      const outcomes = new Map<string, string>();
      for (let step = 0; step < 120; step++) {
        const message = pick(ids);
        const attempt = Math.floor(random() * 3);
        const kind = random();
        // Claims and outcomes may come before their message, and outcomes before their claim (entries of other writers).
        if (kind < 0.25) {
          const round = messages.get(message) ?? Math.floor(random() * 3);
          messages.set(message, round);
          ledger.addMessage(message, round);
        } else if (kind < 0.6) {
          claims.add(`${message}:${attempt}`);
          ledger.addClaim(`${message}:${attempt}`);
        } else {
          const state = pick(OUTCOMES);
          outcomes.set(`${message}:${attempt}`, state);
          ledger.setOutcome(`${message}:${attempt}`, state);
        }
        expect(ledger.counts(), `seed ${seed}, step ${step}`).toEqual(countsFromScratch(messages, claims, outcomes));
        for (const round of [0, 1, 2]) expect(new Map(ledger.roundStates(round)), `seed ${seed}, step ${step}, round ${round}`).toEqual(statesFromScratch(messages, claims, outcomes, round));
      }
      // Built at once from the same sets, as a whole read or a checkpoint builds it.
      const whole = new EmailLedger(messages, claims, outcomes);
      expect(whole.counts()).toEqual(ledger.counts());
    }
  });
});
