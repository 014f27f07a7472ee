import type { Types } from 'mongoose';
import { answeredInvitations } from '../respond/respond.service.ts';
import type { Models } from '../db/models.ts';
import { csvHeader, csvLine, type CsvSeparator } from '../shared/csv.ts';
import { countryLabel, institutionTypeLabel } from '../institutions/institution-codes.ts';
import { messageStatuses } from '../mail/outbox.service.ts';
import { CONTACT_LIST, KeptValues, stampOf } from '../shared/change-stamp.ts';

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

/** What the page is made of, each part read from its collections and kept until its stamps move. */
interface Parts extends CampaignProgress {
  institutions: ReadonlyMap<string, { name: string; country: string; type: string }>;
  contacts: ReadonlyMap<string, { name: string; email: string; unsubscribed: boolean }>;
}

const kept = {
  links: new KeptValues<LiveLink[]>(),
  delivery: new KeptValues<Parts['delivery']>(),
  directory: new KeptValues<Pick<Parts, 'institutions' | 'contacts'>>(),
  fieldwork: new KeptValues<Fieldwork>(),
};

/**
 * Where a campaign's fieldwork stands: invited, delivered, failed, opened,
 * started and completed; the response rate by country × institution type with
 * the lagging segments marked; and who has not answered.
 *
 * On FerretDB v1 any filter other than an exact _id reads the whole
 * collection, and the page is loaded far more often than its data changes,
 * so it is made of three parts kept per campaign, each read again only when
 * one of its change stamps moved (change-stamp.ts: one look-up by _id each)
 * or after ten minutes: the personal links with the respondents' progress
 * (links, responses, completions), the invitation emails' states (rounds,
 * emails) and the institutions' and contacts' details (links, contacts). A
 * load with nothing changed reads six stamps; while the invitations go out,
 * only the emails are read again. Other processes (the sender, the command
 * line, a second instance) set the same stamps, so their changes show at the
 * next load. A revoked link is not counted as invited. An invitation counts
 * as completed when it has completedAt or a completion mark (written with its
 * first revision), so a response whose invitation update was lost still counts.
 */
export async function campaignFieldwork(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<Fieldwork> {
  const { models } = deps;
  const key = String(campaignId);
  // The stamps before the collections: a change written meanwhile moves a stamp this load did not see.
  const [{ links, delivery, stamps }, contacts] = await Promise.all([keptProgress(deps, campaignId), stampOf(models, 'contacts', CONTACT_LIST)]);
  const directory = await kept.directory.get(models, key, `${stamps.links}|${contacts}`, () => directoryOf(models, links));
  return kept.fieldwork.get(models, key, `${stamps.all}|${contacts}`, async () => fieldworkOf({ links, delivery, ...directory }));
}

/**
 * A campaign's live links and invitation emails' states as the fieldwork page
 * keeps them (read again only when their stamps moved), for the reminders'
 * dry run, which is made of the same parts.
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
  const [{ links, stamps }, [rounds, emails]] = await Promise.all([
    keptLinks(models, campaignId),
    Promise.all([stampOf(models, 'rounds', campaignId), stampOf(models, 'emails', campaignId)]),
  ]);
  const delivery = await kept.delivery.get(models, String(campaignId), `${rounds}|${emails}`, () => deliveryStates(deps, campaignId));
  return { links, delivery, stamps: { links: stamps.links, all: `${stamps.all}|${rounds}|${emails}` } };
}

async function keptLinks(models: Models, campaignId: Types.ObjectId) {
  // The stamps before the collections: a change written meanwhile moves a stamp this read did not see.
  const [links, responses, completions] = await Promise.all((['links', 'responses', 'completions'] as const).map((kind) => stampOf(models, kind, campaignId)));
  const live = await kept.links.get(models, String(campaignId), `${links}|${responses}|${completions}`, () => liveLinks(models, campaignId));
  return { links: live, stamps: { links, all: `${links}|${responses}|${completions}` } };
}

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

async function directoryOf(models: Models, links: readonly LiveLink[]): Promise<Pick<Parts, 'institutions' | 'contacts'>> {
  const [institutions, contacts] = await Promise.all([
    models.Institution.find({ _id: { $in: [...new Set(links.map((l) => l.institution))] } }, { name: 1, country: 1, type: 1 }).lean(),
    // Every live link's contact, not only those who have not answered: then only a link or a contact's change calls for reading them again.
    models.Contact.find({ _id: { $in: links.map((l) => l.contact) } }, { name: 1, email: 1, unsubscribedAt: 1 }).lean(),
  ]);
  return {
    institutions: new Map(institutions.map((i) => [String(i._id), { name: i.name, country: i.country, type: i.type }])),
    contacts: new Map(contacts.map((c) => [String(c._id), { name: c.name, email: c.email, unsubscribed: Boolean(c.unsubscribedAt) }])),
  };
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
        unsubscribed: contact?.unsubscribed ?? false,
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
