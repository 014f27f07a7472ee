import type { Types } from 'mongoose';
import { answeredInvitations } from '../respond/respond.service.ts';
import type { Models } from '../db/models.ts';
import { csvHeader, csvLine, type CsvSeparator } from '../shared/csv.ts';
import { countryLabel, institutionTypeLabel } from '../institutions/institution-codes.ts';
import { messageStatuses } from '../mail/outbox.service.ts';

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

/**
 * Where a campaign's fieldwork stands: invited, delivered, failed, opened,
 * started and completed; the response rate by country × institution type with
 * the lagging segments marked; and who has not answered.
 *
 * On FerretDB v1 any filter other than an exact _id reads the whole
 * collection, so each collection is read once (lean, projected) and joined
 * here. A revoked link is not counted as invited. An invitation counts as
 * completed when it has completedAt or a completion mark (written with its
 * first revision), so a response whose invitation update was lost still counts.
 */
export async function campaignFieldwork(deps: FieldworkDeps, campaignId: Types.ObjectId): Promise<Fieldwork> {
  const { models } = deps;
  const [invitations, responses, statuses] = await Promise.all([
    models.Invitation.find({ campaign: campaignId }, { contact: 1, institution: 1, revokedAt: 1, openedAt: 1, startedAt: 1, completedAt: 1 }).lean(),
    answeredInvitations(models, [campaignId]),
    messageStatuses(deps, { campaign: campaignId, kind: 'invitation' }),
  ]);
  const live = invitations.filter((i) => !i.revokedAt);
  const answered = responses;
  const isCompleted = (i: (typeof live)[number]) => Boolean(i.completedAt) || answered.has(String(i._id));
  const liveIds = new Set(live.map((i) => String(i._id)));
  // One invitation email per invitation (round 0): its state is the delivery state.
  const delivery = statuses.filter((s) => liveIds.has(String(s.message.invitation)));

  const [institutions, contacts] = await Promise.all([
    models.Institution.find({ _id: { $in: [...new Set(live.map((i) => String(i.institution)))] } }, { name: 1, country: 1, type: 1 }).lean(),
    models.Contact.find({ _id: { $in: live.filter((i) => !isCompleted(i)).map((i) => i.contact) } }, { name: 1, email: 1, unsubscribedAt: 1 }).lean(),
  ]);
  const institutionById = new Map(institutions.map((i) => [String(i._id), i]));
  const contactById = new Map(contacts.map((c) => [String(c._id), c]));

  const cells = new Map<string, { country: string; institutionType: string; invited: number; completed: number }>();
  const nonrespondents: Nonrespondent[] = [];
  let completed = 0;
  for (const invitation of live) {
    const institution = institutionById.get(String(invitation.institution));
    const country = institution?.country ?? '?';
    const institutionType = institution?.type ?? '?';
    const key = `${country}|${institutionType}`;
    const cell = cells.get(key) ?? { country, institutionType, invited: 0, completed: 0 };
    cell.invited += 1;
    if (isCompleted(invitation)) {
      cell.completed += 1;
      completed += 1;
    } else {
      const contact = contactById.get(String(invitation.contact));
      nonrespondents.push({
        institutionName: institution?.name ?? '(institution removed)',
        contactName: contact?.name ?? '(contact removed)',
        email: contact?.email ?? '',
        country,
        institutionType,
        opened: Boolean(invitation.openedAt),
        started: Boolean(invitation.startedAt),
        unsubscribed: Boolean(contact?.unsubscribedAt),
      });
    }
    cells.set(key, cell);
  }

  const rate = live.length === 0 ? 0 : completed / live.length;
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

  return {
    invited: live.length,
    delivered: delivery.filter((s) => s.state === 'sent').length,
    failed: delivery.filter((s) => s.state === 'failed').length,
    // The funnel never narrows backwards: whoever completed began answering, and whoever began opened the link.
    opened: live.filter((i) => i.openedAt || i.startedAt || isCompleted(i)).length,
    started: live.filter((i) => i.startedAt || isCompleted(i)).length,
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
