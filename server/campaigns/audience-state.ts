import type { Types } from 'mongoose';
import { lookUpAll } from '../shared/look-ups.ts';
import type { Models } from '../db/models.ts';
import { readCampaignLinkEntries, type LinkEntry } from '../invitations/link-copy.store.ts';
import { keepCampaignLinkCounts } from '../invitations/link-population.ts';
import { KEPT_MAX_AGE_MS, KeptValues, onChangeNoted, stampOf } from '../shared/change-stamp.ts';
import { contactListStamp, MAX_JOURNALLED_IDS, readContactChanges, type ContactChangeEntry } from '../shared/contact-changes.ts';

/**
 * What the campaign page's audience and the confirmation page's dry run both
 * read whole: the contact list (every contact's address, state, name,
 * language and tags, every institution's name, country, type, Erasmus+ ID and
 * state, the suppression list; the institutions page and the reminders' dry
 * run read it too) and a campaign's links. Each is kept per connection until its change stamp moves (or ten
 * minutes pass), whichever of the two read it: the confirmation page, shown
 * after the campaign page, then reads no contact, institution or link again.
 * When the contact list's stamp moves, only the contacts and institutions the
 * contact list's journal names since the last read are read again, by _id
 * (contact-changes.ts); the whole list is read at start, when the journal
 * cannot tell (a change it names "all", one it does not name, entries
 * removed), and once it is ten minutes old.
 * The platform's process also reads the contact list in the background at
 * start and after each change (followContactList), so that a first load
 * finds it kept whatever page came before.
 * On the embedded engine a whole read costs a document per contact
 * (seconds at thousands, more under a busy sender); the links come from the
 * campaign's compact copy of them (link-copy.store.ts: a few look-ups by _id)
 * rather than from the invitations collection, which every filter reads
 * whole, every campaign's links with it.
 */
export interface ContactListState {
  contacts: ReadonlyMap<string, ContactListEntry>;
  institutions: ReadonlyMap<string, InstitutionListEntry>;
  suppressed: ReadonlySet<string>;
}

/** What the audience (audience.service.ts) and the dry run read of a contact. */
export interface ContactListEntry {
  _id: Types.ObjectId;
  name: string;
  institution: Types.ObjectId;
  email: string;
  language?: string | null;
  active?: boolean | null;
  unsubscribedAt?: Date | null;
  tags?: string[] | null;
  demo?: boolean | null;
}

/** What the audience, the dry run and the institutions page read of an institution. */
export interface InstitutionListEntry {
  name: string;
  country: string;
  type: string;
  erasmusId?: string | null;
  active?: boolean | null;
  demo?: boolean | null;
}

/**
 * A link that still works, with its ids also as text: written out once when
 * the links are read (an ObjectId's hex costs ~1.6 µs, and the fieldwork page
 * and its timeline keyed every link by three of them on each change of any
 * link's progress: ~0.25 s each at 50,000 links).
 */
export interface LiveLinkEntry {
  _id: Types.ObjectId;
  contact: Types.ObjectId;
  institution: Types.ObjectId;
  language?: string | null;
  /** String(_id), String(contact), String(institution). */
  id: string;
  contactId: string;
  institutionId: string;
}

export interface CampaignLinksState {
  /** The links that still work. */
  live: ReadonlyArray<LiveLinkEntry>;
  /** The contacts with a link, revoked ones included. */
  contacts: ReadonlySet<string>;
}

type StateModels = Pick<Models, 'Contact' | 'Institution' | 'Suppression' | 'Invitation' | 'ChangeStamp' | 'ContactChange' | 'LinkChange' | 'LinkCopy'>;

const keptLinks = new KeptValues<CampaignLinksState>();

/**
 * The contact list as kept, or read now when its stamp moved (when the
 * platform follows it, see followContactList, that read is usually done
 * already, or under way and shared).
 */
export async function contactListState(models: StateModels): Promise<ContactListState> {
  return (await contactListWithStamp(models)).state;
}

/** The contact list as contactListState gives it, with the stamp it was checked against (what a reader that keeps using it compares later). */
export async function contactListWithStamp(models: StateModels): Promise<{ state: ContactListState; stamp: string; institutionsStamp: string }> {
  return keptContactList(models, KEPT_MAX_AGE_MS);
}

/**
 * The contact list if this connection keeps it current (its stamp has not
 * moved and its last whole read is young), after one look-up of the stamp;
 * else undefined, and nothing is read: for a reader that can do with a few
 * contacts by _id while the whole list is read (the sender's first pass).
 */
export async function keptContactListIfCurrent(models: StateModels): Promise<ContactListState | undefined> {
  const stamp = await contactListStamp(models);
  const kept = keptLists.get(models)?.kept;
  return kept && Date.now() - kept.readWholeAt < KEPT_MAX_AGE_MS && kept.stamp === stamp.v ? kept.state : undefined;
}

/** The contact list as kept in one connection, and how it came to be. */
interface KeptList {
  /** The contact list's stamp, read before what the list was read from. */
  stamp: string;
  state: ContactListState;
  /**
   * Moves only when `state.institutions` is another map (a whole read, a change that names an institution): what a
   * page made from the institutions alone is kept under (the fieldwork page's order of links), so that a contact's
   * edit does not make it again.
   */
  institutionsStamp: string;
  /** Every change journalled up to this number is in `state`. */
  upTo: number;
  /** The stamp values the latest changes in `state` set (newest last): a stamp among them says nothing else changed. */
  applied: string[];
  /** When the whole list was last read (Date.now()). */
  readWholeAt: number;
  /** The order in which the reads began: a read that began earlier never replaces a later one's list. */
  order: number;
}

/** Stamp values a kept list remembers. */
const APPLIED_KEPT = 64;

const keptLists = new WeakMap<object, { kept?: KeptList; reading?: { stamp: string; value: Promise<KeptList> }; reads: number }>();
const readCounts = new WeakMap<object, { whole: number; changes: number }>();

/** How often this connection's kept contact list was read whole, and how often only its changes were. */
export function contactListReads(models: object): { whole: number; changes: number } {
  return { ...(readCounts.get(models) ?? { whole: 0, changes: 0 }) };
}

/**
 * The contact list as kept while its stamp has not moved and its last whole
 * read is younger than `maxAgeMs`; else its changes read now (or the whole
 * list when they cannot be), a read under way for the same stamp shared.
 */
async function keptContactList(models: StateModels, maxAgeMs: number): Promise<{ state: ContactListState; stamp: string; institutionsStamp: string }> {
  const stamp = await contactListStamp(models);
  let slot = keptLists.get(models);
  if (!slot) keptLists.set(models, (slot = { reads: 0 }));
  const kept = slot.kept;
  const young = kept !== undefined && Date.now() - kept.readWholeAt < maxAgeMs;
  if (kept && young && kept.stamp === stamp.v) return kept;
  if (slot.reading?.stamp === stamp.v) return slot.reading.value;
  const order = ++slot.reads;
  const value = (async () => {
    const list = (young ? await readChanges(models, kept, stamp, order) : undefined) ?? (await readWhole(models, stamp, order));
    if (!slot.kept || slot.kept.order < list.order) slot.kept = list;
    return list;
  })();
  slot.reading = { stamp: stamp.v, value };
  try {
    return await value;
  } finally {
    if (slot.reading?.value === value) slot.reading = undefined;
  }
}

async function readWhole(models: StateModels, stamp: { v: string; n: number }, order: number): Promise<KeptList> {
  // The stamp's own entry and any written since (before the list is read, so the list holds their changes).
  const tail = (await readContactChanges(models, Math.max(0, stamp.n - 1), stamp.n)) ?? [];
  const state = await readContactList(models);
  count(models, 'whole');
  return {
    stamp: stamp.v,
    state,
    institutionsStamp: `${stamp.v}:${order}`,
    upTo: Math.max(stamp.n, sequenceOf(tail.at(-1))),
    applied: [stamp.v, ...tail.map((e) => e.v)].slice(-APPLIED_KEPT),
    readWholeAt: Date.now(),
    order,
  };
}

/**
 * The kept list with the journal's changes since it applied: each contact and
 * institution named looked up by _id (one gone is removed), the suppression
 * list read again when it changed. `undefined` when the journal cannot say
 * what changed (the caller reads the whole list).
 */
async function readChanges(models: StateModels, kept: KeptList, stamp: { v: string; n: number }, order: number): Promise<KeptList | undefined> {
  const entries = await readContactChanges(models, kept.upTo, stamp.n);
  if (!entries || entries.some((e) => e.all)) return undefined;
  const applied = [...kept.applied, ...entries.map((e) => e.v)].slice(-APPLIED_KEPT);
  // A stamp set by no change in the list: a change the journal does not name.
  if (!applied.includes(stamp.v)) return undefined;
  const contactIds = new Set(entries.flatMap((e) => (e.c ?? []).map(String)));
  const institutionIds = new Set(entries.flatMap((e) => (e.i ?? []).map(String)));
  if (contactIds.size + institutionIds.size > MAX_JOURNALLED_IDS) return undefined;
  // New maps only for what changed: with no institution named, the same map, and what is kept under its stamp stays.
  const contacts = contactIds.size > 0 ? new Map(kept.state.contacts) : undefined;
  const institutions = institutionIds.size > 0 ? new Map(kept.state.institutions) : undefined;
  const [suppressed] = await Promise.all([
    entries.some((e) => e.s) ? models.Suppression.find({}, { email: 1 }).lean().then((list) => new Set(list.map((s) => s.email))) : kept.state.suppressed,
    lookUpAll([...contactIds], async (id) => {
      const contact = await models.Contact.findById(id, CONTACT_FIELDS).lean();
      if (contact) contacts!.set(id, contact);
      else contacts!.delete(id);
    }),
    lookUpAll([...institutionIds], async (id) => {
      const institution = await models.Institution.findById(id, INSTITUTION_FIELDS).lean();
      if (institution) institutions!.set(id, institution);
      else institutions!.delete(id);
    }),
  ]);
  count(models, 'changes');
  return {
    stamp: stamp.v,
    state: { contacts: contacts ?? kept.state.contacts, institutions: institutions ?? kept.state.institutions, suppressed },
    institutionsStamp: institutions ? `${stamp.v}:${order}` : kept.institutionsStamp,
    upTo: Math.max(kept.upTo, sequenceOf(entries.at(-1))),
    applied,
    readWholeAt: kept.readWholeAt,
    order,
  };
}

const sequenceOf = (entry: ContactChangeEntry | undefined) => (entry ? Number(entry._id) : 0);

function count(models: object, kind: 'whole' | 'changes'): void {
  let counts = readCounts.get(models);
  if (!counts) readCounts.set(models, (counts = { whole: 0, changes: 0 }));
  counts[kind] += 1;
}

const CONTACT_FIELDS = { name: 1, institution: 1, email: 1, language: 1, active: 1, unsubscribedAt: 1, tags: 1, demo: 1 };
const INSTITUTION_FIELDS = { name: 1, country: 1, type: 1, erasmusId: 1, active: 1, demo: 1 };

/**
 * Reads the contact list now. The contacts' names, languages and tags come
 * with it although only the audience uses them: on the embedded engine a
 * projection saves nothing (the whole document is decoded first), and one
 * read then serves the campaign page as well as the confirmation page.
 */
export async function readContactList(models: StateModels): Promise<ContactListState> {
  const [institutions, contacts, suppressions] = await Promise.all([
    models.Institution.find({}, INSTITUTION_FIELDS).lean(),
    models.Contact.find({}, CONTACT_FIELDS).lean(),
    models.Suppression.find({}, { email: 1 }).lean(),
  ]);
  return {
    contacts: new Map(contacts.map((c) => [String(c._id), c])),
    institutions: new Map(institutions.map((i) => [String(i._id), i])),
    suppressed: new Set(suppressions.map((s) => s.email)),
  };
}

/** The least time between the end of a background read and the next. */
const READ_GAP_MS = 1000;

/** The background reads the kept contact list again this long before a page would (KEPT_MAX_AGE_MS). */
const FOLLOWER_MAX_AGE_MS = KEPT_MAX_AGE_MS - 2 * 60_000;

export interface ContactListFollower {
  /** Settles once the first read (at start) is kept. */
  ready(): Promise<void>;
  /** Stops following at once, without waiting for a read under way. */
  stop(): Promise<void>;
}

/**
 * Keeps the contact list read in the background of the platform's process,
 * so that the confirmation page's first load (after a start, an import, a new
 * campaign) finds it kept instead of reading every contact, institution and
 * suppression on the request: it reads it once at start, again at once after
 * a change this process notes (onChangeNoted; at most once a second), after
 * another process's within `everyMs` (its stamp, one look-up by _id), and
 * before it is old enough for a page to read it itself. A page still
 * compares the stamp: one loaded before the background has read a change
 * waits for that same read (KeptValues shares it), or reads it itself, and
 * never counts from the list as it was.
 */
export function followContactList(models: StateModels, options: { everyMs?: number; onError?: (error: unknown) => void } = {}): ContactListFollower {
  const everyMs = options.everyMs ?? 2000;
  let stopped = false;
  // After stop, a read under way is not waited for: it ends, or fails once the connection closes, unreported.
  const onError = (error: unknown) => {
    if (!stopped) options.onError?.(error);
  };
  let changed = false;
  let wake: (() => void) | undefined;
  let waiting = false;
  const unlisten = onChangeNoted(models, (kind) => {
    if (kind !== 'contacts') return;
    changed = true;
    if (waiting) wake?.();
  });
  const read = async () => {
    await keptContactList(models, FOLLOWER_MAX_AGE_MS);
  };
  const first = read();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => (wake = undefined));
  void (async () => {
    await first.catch(onError);
    let lastRead = performance.now();
    while (!stopped) {
      if (!changed) {
        waiting = true;
        await pause(everyMs);
        waiting = false;
      }
      // A burst of changes (a sender's refusals, pass after pass) is read again once a second at most.
      const since = performance.now() - lastRead;
      if (!stopped && since < READ_GAP_MS) await pause(READ_GAP_MS - since);
      changed = false;
      if (!stopped) await read().catch(onError);
      lastRead = performance.now();
    }
  })();
  return {
    ready: () => first,
    async stop() {
      stopped = true;
      unlisten();
      wake?.();
    },
  };
}

/** The campaign's links as kept, or read now when its "links" stamp moved. */
export async function campaignLinksState(models: StateModels, campaignId: Types.ObjectId): Promise<CampaignLinksState> {
  const stamp = await stampOf(models, 'links', campaignId);
  return keptLinks.get(models, String(campaignId), stamp, () => readCampaignLinks(models, campaignId));
}

/** Reads the campaign's links now and keeps them, under its "links" stamp read first. */
export async function readAndKeepCampaignLinks(models: StateModels, campaignId: Types.ObjectId): Promise<CampaignLinksState> {
  const stamp = await stampOf(models, 'links', campaignId);
  const links = await readLinks(models, campaignId);
  const state = linksState(links);
  keptLinks.put(models, String(campaignId), stamp, state);
  // The same read gives the campaign page its count of links (link-population.ts), which would read them all again.
  keepCampaignLinkCounts(models, campaignId, stamp, links);
  return state;
}

async function readCampaignLinks(models: StateModels, campaignId: Types.ObjectId): Promise<CampaignLinksState> {
  return linksState(await readLinks(models, campaignId));
}

function readLinks(models: StateModels, campaignId: Types.ObjectId): Promise<LinkEntry[]> {
  return readCampaignLinkEntries(models, campaignId);
}

function linksState(links: LinkEntry[]): CampaignLinksState {
  const live = links
    .filter((l) => !l.revoked)
    .map((l) => ({ ...l, id: String(l._id), contactId: String(l.contact), institutionId: String(l.institution) }));
  return { live, contacts: new Set(links.map((l) => String(l.contact))) };
}
