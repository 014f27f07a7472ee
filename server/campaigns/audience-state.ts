import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { readCampaignLinkEntries, type LinkEntry } from '../invitations/link-copy.store.ts';
import { keepCampaignLinkCounts } from '../invitations/link-population.ts';
import { CONTACT_LIST, KEPT_MAX_AGE_MS, KeptValues, onChangeNoted, stampOf } from '../shared/change-stamp.ts';

/**
 * What the campaign page's audience and the confirmation page's dry run both
 * read whole: the contact list (every contact's address, state, name,
 * language and tags, every institution's name, country, type and state, the
 * suppression list) and a campaign's links. Each is kept per connection until its change stamp moves (or ten
 * minutes pass), whichever of the two read it: the confirmation page, shown
 * after the campaign page, then reads no contact, institution or link again.
 * The platform's process also reads the contact list in the background at
 * start and after each change (followContactList), so that a first load
 * finds it kept whatever page came before.
 * On the embedded engine each of those reads costs a document per contact
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

/** What the audience and the dry run read of an institution. */
export interface InstitutionListEntry {
  name: string;
  country: string;
  type: string;
  active?: boolean | null;
  demo?: boolean | null;
}

export interface CampaignLinksState {
  /** The links that still work. */
  live: ReadonlyArray<{ _id: Types.ObjectId; contact: Types.ObjectId; institution: Types.ObjectId; language?: string | null }>;
  /** The contacts with a link, revoked ones included. */
  contacts: ReadonlySet<string>;
}

type StateModels = Pick<Models, 'Contact' | 'Institution' | 'Suppression' | 'Invitation' | 'ChangeStamp' | 'LinkChange' | 'LinkCopy'>;

const keptContactList = new KeptValues<ContactListState>();
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
export async function contactListWithStamp(models: StateModels): Promise<{ state: ContactListState; stamp: string }> {
  const stamp = await stampOf(models, 'contacts', CONTACT_LIST);
  return { state: await keptContactList.get(models, CONTACT_LIST, stamp, () => readContactList(models)), stamp };
}

/**
 * Reads the contact list now. The contacts' names, languages and tags come
 * with it although only the audience uses them: on the embedded engine a
 * projection saves nothing (the whole document is decoded first), and one
 * read then serves the campaign page as well as the confirmation page.
 */
export async function readContactList(models: StateModels): Promise<ContactListState> {
  const [institutions, contacts, suppressions] = await Promise.all([
    models.Institution.find({}, { name: 1, country: 1, type: 1, active: 1, demo: 1 }).lean(),
    models.Contact.find({}, { name: 1, institution: 1, email: 1, language: 1, active: 1, unsubscribedAt: 1, tags: 1, demo: 1 }).lean(),
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
    const stamp = await stampOf(models, 'contacts', CONTACT_LIST);
    await keptContactList.get(models, CONTACT_LIST, stamp, () => readContactList(models), FOLLOWER_MAX_AGE_MS);
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
  return { live: links.filter((l) => !l.revoked), contacts: new Set(links.map((l) => String(l.contact))) };
}
