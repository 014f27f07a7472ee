import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { readCampaignLinkEntries, type LinkEntry } from '../invitations/link-copy.store.ts';
import { keepCampaignLinkCounts } from '../invitations/link-population.ts';
import { CONTACT_LIST, KeptValues, stampOf } from '../shared/change-stamp.ts';

/**
 * What the campaign page's audience and the confirmation page's dry run both
 * read whole: the contact list (every contact's address and state, every
 * institution's country and type, the suppression list) and a campaign's
 * links. Each is kept per connection until its change stamp moves (or ten
 * minutes pass), whichever of the two read it: the confirmation page, shown
 * after the campaign page, then reads no contact, institution or link again.
 * On the embedded engine each of those reads costs a document per contact
 * (seconds at thousands, more under a busy sender); the links come from the
 * campaign's compact copy of them (link-copy.store.ts: a few look-ups by _id)
 * rather than from the invitations collection, which every filter reads
 * whole, every campaign's links with it.
 */
export interface ContactListState {
  contacts: ReadonlyMap<string, { _id: Types.ObjectId; email: string; active?: boolean | null; unsubscribedAt?: Date | null }>;
  institutions: ReadonlyMap<string, { country: string; type: string }>;
  suppressed: ReadonlySet<string>;
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

/** The contact list as kept, or read now when its stamp moved. */
export async function contactListState(models: StateModels): Promise<ContactListState> {
  const stamp = await stampOf(models, 'contacts', CONTACT_LIST);
  return keptContactList.get(models, CONTACT_LIST, stamp, async () => {
    const [institutions, contacts, suppressions] = await Promise.all([
      models.Institution.find({}, { country: 1, type: 1 }).lean(),
      models.Contact.find({}, { email: 1, active: 1, unsubscribedAt: 1 }).lean(),
      models.Suppression.find({}, { email: 1 }).lean(),
    ]);
    return {
      contacts: new Map(contacts.map((c) => [String(c._id), c])),
      institutions: new Map(institutions.map((i) => [String(i._id), i])),
      suppressed: new Set(suppressions.map((s) => s.email)),
    };
  });
}

/** Keeps the contact list another reader has just read, `stamp` being the contact list's stamp read before. */
export function keepContactList(models: StateModels, stamp: string, state: ContactListState): void {
  keptContactList.put(models, CONTACT_LIST, stamp, state);
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
