import type { Types } from 'mongoose';
import { answeredInvitations } from '../respond/respond.service.ts';
import type { Models } from '../db/models.ts';
import { csvHeader, csvLine, type CsvSeparator } from '../shared/csv.ts';
import { countryLabel, institutionTypeLabel } from '../institutions/institution-codes.ts';
import { messageStatuses } from '../mail/outbox.service.ts';
import { followedEmailStates } from '../mail/sending-progress.ts';
import { KeptValues, stampOf } from '../shared/change-stamp.ts';
import { campaignLinksState, contactListWithStamp } from '../campaigns/audience-state.ts';
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
  nonrespondents: Nonrespondent[];
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
  delivery: ReadonlyMap<string, string>;
}

/** What the page is made of: the links with their progress, the emails' states, and the contact list as the process keeps it. */
interface Parts extends CampaignProgress {
  institutions: ReadonlyMap<string, { name: string; country: string; type: string }>;
  contacts: ReadonlyMap<string, { name: string; email: string; unsubscribedAt?: Date | null }>;
}

const kept = {
  links: new KeptValues<LiveLink[]>(),
  delivery: new KeptValues<Parts['delivery']>(),
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
 * A load with nothing changed reads six stamps. Other processes (the sender,
 * the command line, a second instance) set the same stamps and journals, so
 * their changes show at the next load. A revoked link is not counted as
 * invited. An invitation counts as completed when it has completedAt or a
 * completion mark (written with its first revision), so a response whose
 * invitation update was lost still counts.
 */
export async function campaignFieldwork(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<Fieldwork> {
  const { models } = deps;
  const [{ links, delivery, basis }, { state: contactList, stamp: contacts }] = await Promise.all([keptProgress(deps, campaignId), contactListWithStamp(models)]);
  return kept.fieldwork.get(models, String(campaignId), `${basis}|${contacts}`, async () =>
    fieldworkOf({ links, delivery, institutions: contactList.institutions, contacts: contactList.contacts }),
  );
}

/**
 * A campaign's live links and invitation emails' states as the fieldwork page
 * keeps them, for the reminders' dry run, which is made of the same parts.
 */
export async function campaignProgress(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<CampaignProgress> {
  const { links, delivery } = await keptProgress(deps, campaignId);
  return { links, delivery };
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
  const { models } = deps;
  const [{ links, basis }, emails] = await Promise.all([keptLinks(models, campaignId), followedEmailStates(deps, campaignId, 0)]);
  const delivery = await kept.delivery.get(models, String(campaignId), emails.version, async () => {
    const invitationOf = await messageInvitations(models, campaignId, [...emails.states.keys()], emails.linkOf);
    return new Map([...emails.states].flatMap(([message, state]) => (invitationOf.has(message) ? [[invitationOf.get(message)!, state] as const] : [])));
  });
  return { links, delivery, basis: `${basis}|${emails.version}` };
}

/** Messages looked up one by one, side by side; more than this missing read the campaign's invitation emails at once. */
const LOOKUPS_AT_ONCE = 16;
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
    for (let start = 0; start < missing.length; start += LOOKUPS_AT_ONCE) {
      const found = await Promise.all(missing.slice(start, start + LOOKUPS_AT_ONCE).map((id) => models.Outbox.findById(id, { invitation: 1 }).lean()));
      for (const message of found) if (message?.invitation) known.set(String(message._id), String(message.invitation));
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
      const id = String(link._id);
      const steps = progress.steps.get(id) ?? 0;
      return {
        id,
        contact: String(link.contact),
        institution: String(link.institution),
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

/** The page's figures from its parts, in memory. */
function fieldworkOf({ links, delivery, institutions, contacts }: Parts): Fieldwork {
  const cells = new Map<string, { country: string; institutionType: string; invited: number; completed: number }>();
  const nonrespondents: Nonrespondent[] = [];
  let completed = 0;
  for (const link of links) {
    const institution = institutions.get(link.institution);
    const country = institution?.country ?? '?';
    const institutionType = institution?.type ?? '?';
    const key = `${country}|${institutionType}`;
    const cell = cells.get(key) ?? { country, institutionType, invited: 0, completed: 0 };
    cell.invited += 1;
    if (link.completed) {
      cell.completed += 1;
      completed += 1;
    } else {
      const contact = contacts.get(link.contact);
      nonrespondents.push({
        institutionName: institution?.name ?? '(institution removed)',
        contactName: contact?.name ?? '(contact removed)',
        email: contact?.email ?? '',
        country,
        institutionType,
        opened: link.opened,
        started: link.started,
        unsubscribed: Boolean(contact?.unsubscribedAt),
      });
    }
    cells.set(key, cell);
  }

  const rate = links.length === 0 ? 0 : completed / links.length;
  const segments = [...cells.values()]
    .map((cell) => {
      const segmentRate = cell.completed / cell.invited;
      const tooSmall = cell.invited < LAG_MIN_INVITED;
      return { ...cell, institutionTypeLabel: institutionTypeLabel(cell.institutionType), rate: segmentRate, tooSmall, lagging: !tooSmall && isLagging(segmentRate, rate) };
    })
    .sort((a, b) => a.country.localeCompare(b.country) || a.institutionType.localeCompare(b.institutionType));
  nonrespondents.sort(
    (a, b) => a.country.localeCompare(b.country) || a.institutionType.localeCompare(b.institutionType) || a.institutionName.localeCompare(b.institutionName),
  );
  const states = links.map((l) => delivery.get(l.id));
  return {
    invited: links.length,
    delivered: states.filter((s) => s === 'sent').length,
    failed: states.filter((s) => s === 'failed').length,
    // The funnel never narrows backwards: whoever completed began answering, and whoever began opened the link.
    opened: links.filter((l) => l.opened || l.started || l.completed).length,
    started: links.filter((l) => l.started || l.completed).length,
    completed,
    rate,
    segments,
    nonrespondents,
  };
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
