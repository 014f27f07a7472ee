import type { Types } from 'mongoose';
import { lookUpAll } from '../shared/look-ups.ts';
import { answeredInvitations } from '../respond/respond.service.ts';
import type { Models } from '../db/models.ts';
import { csvHeader, csvLine, type CsvSeparator } from '../shared/csv.ts';
import { countryLabel, institutionTypeLabel } from '../institutions/institution-codes.ts';
import { messageStatuses } from '../mail/outbox.service.ts';
import { followedEmailStates } from '../mail/sending-progress.ts';
import { KeptValues, stampOf } from '../shared/change-stamp.ts';
import { campaignLinksState, contactListWithStamp, type CampaignLinksState } from '../campaigns/audience-state.ts';
import { COMPLETED, linkProgress, OPENED, STARTED } from './link-progress.ts';

export interface FieldworkDeps {
  models: Models;
}

/**
 * A segment lags when its response rate is more than LAG_POINTS percentage
 * points below the campaign's overall rate, or below half of it (the second
 * rule matters when the overall rate is still low, early in the fieldwork).
 * A segment with fewer than LAG_MIN_INVITED invitations is not judged: one
 * answer more or less moves its rate by 20 points or more.
 */
export const LAG_POINTS = 10;
export const LAG_MIN_INVITED = 5;
export const LAG_RULE = `more than ${LAG_POINTS} percentage points below the campaign's overall rate, or below half of it`;

export interface Segment {
  country: string;
  institutionType: string;
  institutionTypeLabel: string;
  invited: number;
  completed: number;
  /** completed ÷ invited, 0..1. */
  rate: number;
  lagging: boolean;
  /** Fewer than LAG_MIN_INVITED invitations: not judged. */
  tooSmall: boolean;
}

export interface Nonrespondent {
  institutionName: string;
  contactName: string;
  email: string;
  country: string;
  institutionType: string;
  opened: boolean;
  started: boolean;
  unsubscribed: boolean;
}

export interface Fieldwork {
  invited: number;
  delivered: number;
  failed: number;
  opened: number;
  started: number;
  completed: number;
  rate: number;
  segments: Segment[];
  nonrespondentCount: number;
  /** Who has not answered, by country, institution type and institution name: the first `limit`, or all. */
  nonrespondents(limit?: number): Nonrespondent[];
}

/** A live personal link as the fieldwork (and the reminders' dry run) counts it. */
export interface LiveLink {
  id: string;
  contact: string;
  institution: string;
  language?: string | null;
  opened: boolean;
  started: boolean;
  completed: boolean;
}

/** A campaign's live links with their respondents' progress, and the state of each invitation email (round 0) by invitation id. */
export interface CampaignProgress {
  links: readonly LiveLink[];
  delivery: Delivery;
}

/** The state of an invitation's email (round 0), by invitation id. */
export interface Delivery {
  get(invitation: string): string | undefined;
}

/** What the page is made of: the links with their progress, the emails' states, and the contact list as the process keeps it. */
interface Parts extends CampaignProgress {
  institutions: ReadonlyMap<string, { name: string; country: string; type: string }>;
  contacts: ReadonlyMap<string, { name: string; email: string; unsubscribedAt?: Date | null }>;
}

const kept = {
  links: new KeptValues<LiveLink[]>(),
  layout: new KeptValues<LinkLayout>(),
  fieldwork: new KeptValues<Fieldwork>(),
};

/**
 * Where a campaign's fieldwork stands: invited, delivered, failed, opened,
 * started and completed; the response rate by country × institution type with
 * the lagging segments marked; and who has not answered.
 *
 * On FerretDB v1 any filter other than an exact _id reads the whole
 * collection (every campaign's invitations, drafts included), and the page is
 * loaded far more often than its data changes, so nothing here reads the
 * invitations or the contacts by a filter on a load:
 * - the live links come from the campaign's compact copy of them
 *   (link-copy.store.ts), kept until its "links" stamp moves;
 * - each link's progress (opened, begun, answered) is followed through the
 *   campaign's progress journal (link-progress.ts): after a respondent's
 *   first opening or submission, a load reads that entry by _id;
 * - the invitation emails' states come from the follower of the campaign's
 *   email journal that the sending page polls (sending-progress.ts): while
 *   the invitations go out, a load reads the entries written since, by _id,
 *   and looks up by _id the link of an email it has not met before;
 * - names, addresses and institutions come from the contact list the process
 *   keeps current (audience-state.ts).
 * The links are laid out once for the page (layoutOf) until the links or the
 * institutions change; a respondent's step or an email's outcome then costs
 * one pass over them (fieldworkOf).
 * A load with nothing changed reads six stamps. Other processes (the sender,
 * the command line, a second instance) set the same stamps and journals, so
 * their changes show at the next load. A revoked link is not counted as
 * invited. An invitation counts as completed when it has completedAt or a
 * completion mark (written with its first revision), so a response whose
 * invitation update was lost still counts.
 */
export async function campaignFieldwork(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<Fieldwork> {
  const { models } = deps;
  const key = String(campaignId);
  // The stamp before the links: a change written meanwhile moves a stamp this basis does not have.
  const [stamp, progress, { delivery, version: emails }, { state: contactList, stamp: contacts, institutionsStamp }] = await Promise.all([
    stampOf(models, 'links', campaignId),
    linkProgress(models, campaignId),
    keptDelivery(deps, campaignId),
    contactListWithStamp(models),
  ]);
  // Made of the institutions only: a contact's edit leaves it as it is.
  const layout = await kept.layout.get(models, key, `${stamp}|${institutionsStamp}`, async () => layoutOf((await campaignLinksState(models, campaignId)).live, contactList.institutions));
  return kept.fieldwork.get(models, key, `${stamp}|${contacts}|${progress.version}|${emails}`, async () => fieldworkOf(layout, progress.steps, delivery, contactList.contacts));
}

/**
 * A campaign's live links and invitation emails' states as the fieldwork page
 * keeps them, for the reminders' dry run, which is made of the same parts,
 * with a version that moves whenever either may have changed (what the dry
 * run is kept under).
 */
export async function campaignProgress(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<CampaignProgress & { version: string }> {
  return keptProgress(deps, campaignId);
}

/** The same read now, whatever is kept: what a reminder round is queued from. */
export async function readCampaignProgress(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<CampaignProgress> {
  const [links, delivery] = await Promise.all([liveLinks(deps.models, campaignId), deliveryStates(deps, campaignId)]);
  return { links, delivery };
}

/** A campaign's live links with their respondents' progress, as the fieldwork page keeps them (the close page counts them too). */
export async function campaignLiveLinks(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<readonly LiveLink[]> {
  return (await keptLinks(deps.models, campaignId)).links;
}

async function keptProgress(deps: FieldworkDeps, campaignId: Types.ObjectId) {
  const [{ links, basis }, { delivery, version }] = await Promise.all([keptLinks(deps.models, campaignId), keptDelivery(deps, campaignId)]);
  return { links, delivery, version: `${basis}|${version}` };
}

/** Each invitation's email, by invitation id, for a follower's map of states: made again when the map has more messages. */
const emailsOfInvitations = new WeakMap<ReadonlyMap<string, string>, { size: number; messageOf: Map<string, string> }>();

/**
 * The state of each invitation email by invitation id, followed through the
 * campaign's email journal, and its version: a view of the follower's states
 * through each invitation's email, which changes only when emails are added
 * (an outcome used to make a map of every invitation's state again, ~0.1 s at
 * 50,000). Read it at once: the states change in place as the follower goes on.
 */
async function keptDelivery(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<{ delivery: Delivery; version: string }> {
  const emails = await followedEmailStates(deps, campaignId, 0);
  const { states } = emails;
  let emailsOf = emailsOfInvitations.get(states);
  if (emailsOf?.size !== states.size) {
    // A follower's messages are only ever added (another set is another map): the count tells whether any came.
    const messages = [...states.keys()];
    const invitationOf = await messageInvitations(deps.models, campaignId, messages, emails.linkOf);
    const messageOf = new Map<string, string>();
    for (const message of messages) if (invitationOf.has(message)) messageOf.set(invitationOf.get(message)!, message);
    emailsOfInvitations.set(states, (emailsOf = { size: messages.length, messageOf }));
  }
  const { messageOf } = emailsOf;
  return {
    delivery: { get: (invitation) => (messageOf.has(invitation) ? states.get(messageOf.get(invitation)!) : undefined) },
    version: emails.version,
  };
}

/** Messages looked up by _id (lookUpAll); more than this missing read the campaign's invitation emails at once. */
const LOOKUPS_AT_MOST = 200;

/**
 * The link of each of these invitation emails: from `known` (the email
 * follower's, from its whole reads), else looked up and added to it.
 */
async function messageInvitations(models: Models, campaignId: Types.ObjectId, messages: readonly string[], known: Map<string, string>): Promise<ReadonlyMap<string, string>> {
  const missing = messages.filter((id) => !known.has(id));
  if (missing.length > LOOKUPS_AT_MOST) {
    for (const message of await models.Outbox.find({ campaign: campaignId, kind: 'invitation' }, { invitation: 1 }).lean()) {
      if (message.invitation) known.set(String(message._id), String(message.invitation));
    }
  } else {
    for (const message of await lookUpAll(missing, (id) => models.Outbox.findById(id, { invitation: 1 }).lean())) {
      if (message?.invitation) known.set(String(message._id), String(message.invitation));
    }
  }
  return known;
}

async function keptLinks(models: Models, campaignId: Types.ObjectId) {
  // The stamp before the copy: a change written meanwhile moves a stamp this read did not see.
  const [stamp, progress] = await Promise.all([stampOf(models, 'links', campaignId), linkProgress(models, campaignId)]);
  const basis = `${stamp}|${progress.version}`;
  const live = await kept.links.get(models, String(campaignId), basis, async () => {
    const { live: links } = await campaignLinksState(models, campaignId);
    return links.map((link) => {
      const steps = progress.steps.get(link.id) ?? 0;
      return {
        id: link.id,
        contact: link.contactId,
        institution: link.institutionId,
        language: link.language,
        opened: (steps & OPENED) !== 0,
        started: (steps & STARTED) !== 0,
        completed: (steps & COMPLETED) !== 0,
      };
    });
  });
  return { links: live, basis };
}

/** The links and their progress read from the invitations and completion marks, now. */
async function liveLinks(models: Models, campaignId: Types.ObjectId): Promise<LiveLink[]> {
  const [invitations, answered] = await Promise.all([
    models.Invitation.find({ campaign: campaignId }, { contact: 1, institution: 1, language: 1, revokedAt: 1, openedAt: 1, startedAt: 1, completedAt: 1 }).lean(),
    answeredInvitations(models, [campaignId]),
  ]);
  return invitations
    .filter((i) => !i.revokedAt)
    .map((i) => ({
      id: String(i._id),
      contact: String(i.contact),
      institution: String(i.institution),
      language: i.language,
      opened: Boolean(i.openedAt),
      started: Boolean(i.startedAt),
      completed: Boolean(i.completedAt) || answered.has(String(i._id)),
    }));
}

async function deliveryStates(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<Parts['delivery']> {
  const statuses = await messageStatuses(deps, { campaign: campaignId, kind: 'invitation' });
  // One invitation email per invitation (round 0): its state is the delivery state.
  return new Map(statuses.map((s) => [String(s.message.invitation), s.state]));
}

type InstitutionEntry = { name: string; country: string; type: string };

/**
 * A campaign's live links laid out for the page, made again only when the
 * links or the contact list change: in the order of the list of who has not
 * answered (country, institution type, institution name; links of equal
 * institutions in their own order), each with its segment (country ×
 * institution type). A change of a link's progress or of an email's state
 * then costs one pass over two maps, not the page's objects, sorts and look-ups
 * again: at 50,000 links the page took 0.4-0.6 s after any respondent's step.
 */
interface LinkLayout {
  ids: string[];
  contacts: string[];
  institutions: Array<InstitutionEntry | undefined>;
  segmentOf: Int32Array;
  segments: Array<{ country: string; institutionType: string }>;
}

const REMOVED_INSTITUTION: InstitutionEntry = { name: '(institution removed)', country: '?', type: '?' };

function layoutOf(live: CampaignLinksState['live'], institutions: ReadonlyMap<string, InstitutionEntry>): LinkLayout {
  // Institutions ranked once (equal ones share a rank), then the links by rank: a stable sort keeps each rank's links in their order.
  const byInstitution = new Map<string, InstitutionEntry | undefined>();
  for (const link of live) if (!byInstitution.has(link.institutionId)) byInstitution.set(link.institutionId, institutions.get(link.institutionId));
  const compare = (a: InstitutionEntry, b: InstitutionEntry) => a.country.localeCompare(b.country) || a.type.localeCompare(b.type) || a.name.localeCompare(b.name);
  const ranked = [...byInstitution].sort(([, a], [, b]) => compare(a ?? REMOVED_INSTITUTION, b ?? REMOVED_INSTITUTION));
  const rank = new Map<string, number>();
  ranked.forEach(([id, institution], i) => {
    const previous = ranked[i - 1];
    rank.set(id, previous && compare(previous[1] ?? REMOVED_INSTITUTION, institution ?? REMOVED_INSTITUTION) === 0 ? rank.get(previous[0])! : i);
  });
  const order = live.map((link, i) => ({ i, rank: rank.get(link.institutionId)! })).sort((a, b) => a.rank - b.rank);

  const segmentIndex = new Map<string, number>();
  const segments: LinkLayout['segments'] = [];
  const layout: LinkLayout = { ids: [], contacts: [], institutions: [], segmentOf: new Int32Array(live.length), segments };
  order.forEach(({ i }, at) => {
    const link = live[i]!;
    const institution = byInstitution.get(link.institutionId);
    const { country, type } = institution ?? REMOVED_INSTITUTION;
    const key = `${country}|${type}`;
    let segment = segmentIndex.get(key);
    if (segment === undefined) {
      segment = segments.push({ country, institutionType: type }) - 1;
      segmentIndex.set(key, segment);
    }
    layout.ids.push(link.id);
    layout.contacts.push(link.contactId);
    layout.institutions.push(institution);
    layout.segmentOf[at] = segment;
  });
  return layout;
}

/**
 * The page's figures from the layout, each link's steps and each email's
 * state, in one pass. The list of who has not answered is made when asked
 * for, from the steps as they were in that pass.
 */
function fieldworkOf(layout: LinkLayout, steps: ReadonlyMap<string, number>, delivery: Parts['delivery'], contacts: Parts['contacts']): Fieldwork {
  const n = layout.ids.length;
  const invitedIn = new Int32Array(layout.segments.length);
  const completedIn = new Int32Array(layout.segments.length);
  const stepsAt = new Uint8Array(n);
  let [completed, opened, started, delivered, failed] = [0, 0, 0, 0, 0];
  for (let at = 0; at < n; at++) {
    const id = layout.ids[at]!;
    const own = steps.get(id) ?? 0;
    stepsAt[at] = own;
    const segment = layout.segmentOf[at]!;
    invitedIn[segment]! += 1;
    if (own & COMPLETED) {
      completedIn[segment]! += 1;
      completed += 1;
    }
    // The funnel never narrows backwards: whoever completed began answering, and whoever began opened the link.
    if (own & (OPENED | STARTED | COMPLETED)) opened += 1;
    if (own & (STARTED | COMPLETED)) started += 1;
    const state = delivery.get(id);
    if (state === 'sent') delivered += 1;
    else if (state === 'failed') failed += 1;
  }

  const rate = n === 0 ? 0 : completed / n;
  const segments = layout.segments
    .map(({ country, institutionType }, segment) => {
      const [invited, done] = [invitedIn[segment]!, completedIn[segment]!];
      const segmentRate = done / invited;
      const tooSmall = invited < LAG_MIN_INVITED;
      return { country, institutionType, invited, completed: done, institutionTypeLabel: institutionTypeLabel(institutionType), rate: segmentRate, tooSmall, lagging: !tooSmall && isLagging(segmentRate, rate) };
    })
    .sort((a, b) => a.country.localeCompare(b.country) || a.institutionType.localeCompare(b.institutionType));

  const nonrespondents = (limit = Number.POSITIVE_INFINITY): Nonrespondent[] => {
    const listed: Nonrespondent[] = [];
    for (let at = 0; at < n && listed.length < limit; at++) {
      const own = stepsAt[at]!;
      if (own & COMPLETED) continue;
      const institution = layout.institutions[at];
      const contact = contacts.get(layout.contacts[at]!);
      listed.push({
        institutionName: institution?.name ?? REMOVED_INSTITUTION.name,
        contactName: contact?.name ?? '(contact removed)',
        email: contact?.email ?? '',
        country: institution?.country ?? REMOVED_INSTITUTION.country,
        institutionType: institution?.type ?? REMOVED_INSTITUTION.type,
        opened: (own & OPENED) !== 0,
        started: (own & STARTED) !== 0,
        unsubscribed: Boolean(contact?.unsubscribedAt),
      });
    }
    return listed;
  };
  return { invited: n, delivered, failed, opened, started, completed, rate, segments, nonrespondentCount: n - completed, nonrespondents };
}

/** The lagging rule (LAG_RULE): both rates are fractions 0..1. */
export function isLagging(segmentRate: number, overallRate: number): boolean {
  if (overallRate === 0) return false;
  return segmentRate < overallRate - LAG_POINTS / 100 || segmentRate < overallRate / 2;
}

const CSV_HEADER = ['institution', 'contact', 'email', 'country', 'institution_type', 'opened', 'started', 'unsubscribed'];

/** The non-respondents as CSV, formula-neutralised like every export of the platform. */
export function nonrespondentsCsv(nonrespondents: readonly Nonrespondent[], separator: CsvSeparator = ','): string {
  const yesNo = (value: boolean) => (value ? 'yes' : 'no');
  return [
    csvHeader(CSV_HEADER, separator),
    ...nonrespondents.map((n) =>
      csvLine([n.institutionName, n.contactName, n.email, countryLabel(n.country), institutionTypeLabel(n.institutionType), yesNo(n.opened), yesNo(n.started), yesNo(n.unsubscribed)], separator),
    ),
  ].join('');
}
