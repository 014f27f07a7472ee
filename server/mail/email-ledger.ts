import { OUTBOX_STATES, type OutboxState } from './outbox.model.ts';
import type { OutboxCounts, RoundCounts } from './outbox.service.ts';

/** What one message adds to its round's figures: its round once the message is known, its claims and its outcomes by attempt. */
interface MessageRecord {
  round?: number;
  /** Attempts claimed, and the highest of them (-1: none). */
  claims: number;
  lastAttempt: number;
  outcomes?: Map<number, string>;
}

type RawCounts = OutboxCounts & { total: number; claims: number; settled: number };

/**
 * A campaign's emails as the sending follower holds them (their ids, rounds,
 * claims and outcomes), with each round's figures and each
 * message's state (statusesOf's rules) kept up to date as they are added:
 * an outcome costs the figures of its one message, not a count of every
 * message, claim and outcome again (at 50,000 invitations, each outcome made
 * the sending page's poll and the fieldwork page count ~150,000 ids again).
 * Messages, claims and outcomes are only ever added or, for an outcome, set
 * anew (a retry, a resolution); what takes one away starts a new ledger.
 */
export class EmailLedger {
  /** Each message's round, by message id. */
  readonly messages = new Map<string, number>();
  /** Claim ids, "<message>:<attempt>". */
  readonly claims = new Set<string>();
  /** Each outcome's state, by outcome id (its claim's). */
  readonly outcomes = new Map<string, string>();
  private readonly records = new Map<string, MessageRecord>();
  private readonly rounds = new Map<number, RawCounts>();
  private readonly states = new Map<number, Map<string, OutboxState>>();

  constructor(messages: Iterable<readonly [string, number]> = [], claims: Iterable<string> = [], outcomes: Iterable<readonly [string, string]> = []) {
    for (const [id, round] of messages) this.addMessage(id, round);
    for (const id of claims) this.addClaim(id);
    for (const [id, state] of outcomes) this.setOutcome(id, state);
  }

  addMessage(id: string, round: number): boolean {
    if (this.messages.has(id)) return false;
    this.messages.set(id, round);
    this.change(id, (record) => (record.round = round));
    return true;
  }

  addClaim(id: string): boolean {
    if (this.claims.has(id)) return false;
    this.claims.add(id);
    const attempt = Number(id.slice(id.indexOf(':') + 1));
    this.change(messageOf(id), (record) => {
      record.claims += 1;
      record.lastAttempt = Math.max(record.lastAttempt, attempt);
    });
    return true;
  }

  setOutcome(id: string, state: string): boolean {
    if (this.outcomes.get(id) === state) return false;
    this.outcomes.set(id, state);
    const attempt = Number(id.slice(id.indexOf(':') + 1));
    this.change(messageOf(id), (record) => (record.outcomes ??= new Map()).set(attempt, state));
    return true;
  }

  /**
   * Each round's figures and all rounds': every message counts in its round's total; its claims not settled are
   * sending, its outcomes count by state (a retry settles its attempt only), and the rest is queued. Claims and
   * outcomes of a message not known yet count once it is.
   */
  counts(): RoundCounts {
    const all = emptyCounts();
    for (const raw of this.rounds.values()) for (const key of Object.keys(all) as Array<keyof RawCounts>) all[key] += raw[key];
    const rounds = [...this.rounds].sort(([a], [b]) => a - b).map(([round, raw]) => ({ round, counts: finished(raw) }));
    return { all: finished(all), rounds };
  }

  /** The state of each message of `round`, by message id: a live view, changed in place as the ledger is. */
  roundStates(round: number): ReadonlyMap<string, OutboxState> {
    return this.states.get(round) ?? new Map();
  }

  /** Takes the message's part out of its round's figures, changes it, and puts it back. */
  private change(message: string, edit: (record: MessageRecord) => void): void {
    let record = this.records.get(message);
    if (!record) this.records.set(message, (record = { claims: 0, lastAttempt: -1 }));
    this.add(record, -1);
    edit(record);
    this.add(record, 1);
    if (record.round === undefined) return;
    let states = this.states.get(record.round);
    if (!states) this.states.set(record.round, (states = new Map()));
    states.set(message, stateOf(record));
  }

  private add(record: MessageRecord, sign: 1 | -1): void {
    if (record.round === undefined) return;
    let raw = this.rounds.get(record.round);
    if (!raw) this.rounds.set(record.round, (raw = emptyCounts()));
    raw.total += sign;
    raw.claims += sign * record.claims;
    for (const state of record.outcomes?.values() ?? []) {
      raw.settled += sign;
      if (state !== 'retry') raw[state as OutboxState] += sign;
    }
  }
}

/** statusesOf's rule: queued until claimed or after a retry, then the last attempt's outcome, or sending while it has none. */
function stateOf(record: MessageRecord): OutboxState {
  if (record.lastAttempt < 0) return 'queued';
  const outcome = record.outcomes?.get(record.lastAttempt);
  return outcome === 'retry' ? 'queued' : ((outcome as OutboxState | undefined) ?? 'sending');
}

function emptyCounts(): RawCounts {
  return { ...(Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])) as OutboxCounts), total: 0, claims: 0, settled: 0 };
}

function finished({ claims, settled, ...raw }: RawCounts): OutboxCounts {
  const counts = { ...raw };
  counts.sending = claims - settled;
  counts.queued = counts.total - counts.sent - counts.failed - counts.skipped - counts.unknown - counts.sending;
  return counts;
}

const messageOf = (id: string) => id.slice(0, id.indexOf(':'));
