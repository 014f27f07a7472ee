import { randomBytes } from 'node:crypto';
import { Schema, type Connection, type Model, type Types } from 'mongoose';

/**
 * Change stamps: one tiny document per campaign and kind of change, which
 * every writer of that kind sets to a new random value after its write. A
 * page that keeps what it computed from a campaign's collections reads the
 * stamp (one look-up by _id, the only one the embedded engine answers from an
 * index) and computes again only when the stamp moved, instead of re-reading
 * thousands of invitations or completion marks on every load. Other
 * processes (a second instance, the command line) write the same stamps, so
 * their changes show at the next load too.
 *
 * A new random value rather than a counter: FerretDB v1 applies an update as
 * a read and a write, so two writers incrementing at once could both write
 * the same number; two random values never collide. A writer sets the stamp
 * after its change, so a reader that sees the new stamp also sees the change.
 * A crash between the two leaves the stamp unmoved: readers also recompute
 * after a while (see each reader), so such a change shows late, but it shows.
 * The writers of a campaign's invitation emails and test sends set their
 * stamp before their first write too, so that a stamp never set proves there
 * is none and their readers need not read the outbox at all.
 */
export type ChangeKind =
  /** A campaign's personal links: made, revoked, reinstated, deleted. */
  | 'links'
  /** A campaign's completion marks: a first submission, an erasure, a purge. */
  | 'completions'
  /** A campaign's invitation and reminder rounds, and the emails queued for them. */
  | 'rounds'
  /** A campaign's emails claimed by a sender and their outcomes: sent, failed, unknown, resolved, retried, removed. */
  | 'emails'
  /**
   * What a campaign's respondents leave before they submit, as the personal-data page counts it: a consent given, a link's
   * first draft (the first since its last submission), a draft a submission removed, consents an erasure or a purge removed.
   */
  | 'responses'
  /**
   * A campaign's links' progress as the fieldwork page follows it: a first
   * opening, first answers of the respondent's own, a first submission, each
   * with an entry of the progress journal that names the link, whose value
   * and number the stamp then holds (progress-changes.ts).
   */
  | 'progress'
  /** A campaign's test sends: queued, claimed by a sender, their outcomes and a coordinator's resolution of them. */
  | 'tests'
  /**
   * A campaign's emails removed by a person's erasure, the retention purge or
   * the removal of demo data, which the email journal cannot name: a sending page's follower that finds
   * it moved reads the emails whole, and a checkpoint made before it is
   * neither used nor kept (email-changes.ts).
   */
  | 'erasures'
  /**
   * The contact list, which no campaign owns (noted with noteContactsChange,
   * contact-changes.ts, for every campaign at once, with a journal entry of
   * what changed): institutions, contacts and their details, and the
   * suppression list. Finding the campaigns of a contact's links would
   * read every invitation, and the list changes far less often than pages load.
   */
  | 'contacts'
  /** The audit log, which no campaign owns (one stamp, 'all'): a new entry, with its journal entry (audit-index.ts). */
  | 'audit';

/** `n`: the contact list's stamp also carries the number of its writer's journal entry (contact-changes.ts). */
const changeStampSchema = new Schema({ _id: { type: String, required: true }, v: { type: String, required: true }, n: { type: Number } }, { versionKey: false });

export type ChangeStampModel = Model<{ _id: string; v: string; n?: number }>;

export function defineChangeStampModel(connection: Connection): { ChangeStamp: ChangeStampModel } {
  return { ChangeStamp: connection.model('ChangeStamp', changeStampSchema, 'change_stamps') as unknown as ChangeStampModel };
}

type StampModels = { ChangeStamp: ChangeStampModel };

const keyOf = (kind: ChangeKind, campaign: Types.ObjectId | string) => `${kind}:${String(campaign)}`;

/** Says that these campaigns' `kind` changed: call it after the change is written. `set`: the value to set (the contact list's journal names it), else a new random one. */
export async function noteChange(models: StampModels, kind: ChangeKind, campaigns: Iterable<Types.ObjectId | string>, set?: { v: string; n: number }): Promise<void> {
  for (const campaign of new Set([...campaigns].map(String))) {
    const filter = { _id: keyOf(kind, campaign) };
    const update = { $set: set ?? { v: randomBytes(8).toString('hex') } };
    try {
      await models.ChangeStamp.updateOne(filter, update, { upsert: true });
    } catch (error) {
      // Two first writers at once: the other inserted it; set it again, as an update now.
      if ((error as { code?: number }).code !== 11000) throw error;
      await models.ChangeStamp.updateOne(filter, update);
    }
  }
  for (const listener of listeners.get(models) ?? []) listener(kind);
}

const listeners = new WeakMap<object, Set<(kind: ChangeKind) => void>>();

/**
 * Calls `listener` after each change noted through these models, i.e. by this
 * process on this connection, so that what it keeps can be read again at once;
 * another process's changes show by their stamps only. Returns the unsubscribe.
 */
export function onChangeNoted(models: object, listener: (kind: ChangeKind) => void): () => void {
  let own = listeners.get(models);
  if (!own) listeners.set(models, (own = new Set()));
  own.add(listener);
  return () => own.delete(listener);
}

/** The contact list's stamp is one for all campaigns. */
export const CONTACT_LIST = 'all';

/** Says that these messages' test sends changed (claimed, sent, failed): the other kinds of message move no stamp here. */
export function noteTestSendChange(models: StampModels, messages: Iterable<{ kind: string; campaign: Types.ObjectId }>): Promise<void> {
  return noteChange(models, 'tests', [...messages].filter((m) => m.kind === 'test').map((m) => m.campaign));
}

/** The campaign's stamp of `kind` now ('' before its first change was noted). */
export async function stampOf(models: StampModels, kind: ChangeKind, campaign: Types.ObjectId | string): Promise<string> {
  return (await models.ChangeStamp.findById(keyOf(kind, campaign), { v: 1 }).lean())?.v ?? '';
}

/**
 * A kept value is computed again after this long even when no stamp moved (a
 * writer that crashed between its change and its stamp), beside the load
 * that finds it this old rather than before it.
 */
export const KEPT_MAX_AGE_MS = 10 * 60_000;

/**
 * Values a page computes from whole collections, kept per key (a campaign)
 * until what they were computed from changes: their basis is the stamps they
 * depend on, read BEFORE computing (a change written meanwhile then moves a
 * stamp the basis does not have), plus anything else that changes them. Kept
 * per models object, i.e. per connection, as another process keeps its own.
 */
export class KeptValues<T> {
  private readonly byModels = new WeakMap<object, Map<string, { basis: string; at: number; value: T }>>();
  private readonly computing = new WeakMap<object, Map<string, { basis: string; value: Promise<T> }>>();

  /**
   * The value kept under `basis`, else computed; callers that find it
   * missing at once share one computation. A value kept `maxAgeMs` or longer
   * is still answered, and computed again in the background (once at a
   * time): it is that old only when no stamp moved, and a page loaded every
   * few minutes waited for a whole read every ten (a campaign's fieldwork,
   * its personal data) where it now waits for none. A computation that fails
   * there is tried again by the next load.
   */
  async get(models: object, key: string, basis: string, compute: () => Promise<T>, maxAgeMs = KEPT_MAX_AGE_MS): Promise<T> {
    const entry = this.keptFor(models).get(key);
    if (entry && entry.basis === basis) {
      if (Date.now() - entry.at >= maxAgeMs) this.compute(models, key, basis, compute).catch(() => undefined);
      return entry.value;
    }
    return this.compute(models, key, basis, compute);
  }

  /** The computation under `basis` of this key, shared by whoever asks while it runs; its value is kept. */
  private async compute(models: object, key: string, basis: string, compute: () => Promise<T>): Promise<T> {
    let computing = this.computing.get(models);
    if (!computing) this.computing.set(models, (computing = new Map()));
    const running = computing.get(key);
    if (running?.basis === basis) return running.value;
    const value = compute().then((computed) => {
      this.put(models, key, basis, computed);
      return computed;
    });
    computing.set(key, { basis, value });
    try {
      return await value;
    } finally {
      if (computing.get(key)?.value === value) computing.delete(key);
    }
  }

  /** Keeps a value another reader computed from the same collections, `basis` read before it read them. */
  put(models: object, key: string, basis: string, value: T): void {
    this.keptFor(models).set(key, { basis, at: Date.now(), value });
  }

  private keptFor(models: object): Map<string, { basis: string; at: number; value: T }> {
    let kept = this.byModels.get(models);
    if (!kept) this.byModels.set(models, (kept = new Map()));
    return kept;
  }
}
