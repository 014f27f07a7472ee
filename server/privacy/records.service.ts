import { recordAudit } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { plural } from '../shared/plural.ts';
import { csvHeader, csvLine, type CsvSeparator } from '../shared/csv.ts';
import { LAWFUL_BASIS_NAMES, type LawfulBasis } from './privacy-notice.ts';
import { heldByCampaign, retentionPlan } from './retention.service.ts';

/** The categories of personal data every campaign processes, and where each is kept. */
export const DATA_CATEGORIES = [
  'Contact identity: name, work email address, language, institution (contacts, institutions)',
  'Participation: personal link (only its hash), opened, started, completed, revoked (invitations)',
  'Unsubmitted answers: drafts (invitations)',
  'Answers: submitted revisions and the current response, free text included (response_revisions, responses)',
  'Consent: notice version and time (consents, and with each response)',
  'Decisions on free-text answers as quotes: approved or hidden, by whom (quote_reviews)',
  'Emails: recipient, kind, round, sending attempts, outcome and Message-ID, SMTP replies (outbox, outbox_claims, outbox_outcomes); each email as sent, headers and bodies with the personal link (in its outcome; sent_emails for older ones)',
  'Suppression: unsubscribed or refused addresses; erased ones as a keyed hash only (suppressions)',
  'Audit log entries naming contacts (audit_entries)',
] as const;

export const PURPOSE = 'Survey of the preconditions and barriers to transnational learning mobility of VET staff; aggregate indicators for the European working group and the European Commission.';

export interface ProcessingRecord {
  campaign: string;
  name: string;
  opensAt: Date;
  closesAt: Date;
  purpose: string;
  lawfulBasis: string;
  categories: readonly string[];
  retention: string;
  purgeDueAt: Date;
  purgedAt?: Date;
  recipients: string;
  heldNow: { contacts: number; personalLinks: number; drafts: number; identifiedResponses: number; anonymousResponses: number; revisions: number; emails: number; consents: number };
}

/**
 * The records of processing (GDPR Art. 30) per campaign: categories,
 * purpose, basis, retention, recipients and what is held now.
 */
export async function recordsOfProcessing(deps: { models: Models; now: () => Date }): Promise<ProcessingRecord[]> {
  const { models } = deps;
  const users = await models.User.find({ active: { $ne: false } }, { role: 1 }).lean();
  const reviewers = users.filter((u) => u.role === 'reviewer').length;
  const coordinators = users.filter((u) => u.role === 'coordinator').length;
  const recipients = `Coordinators (${count(coordinators, 'account', 'accounts')}): everything. Reviewers of the working group (${count(reviewers, 'account', 'accounts')}): aggregate evidence only, small cells suppressed, no names. The mail server (SMTP) that delivers the emails.`;
  const out: ProcessingRecord[] = [];
  const campaigns = await models.Campaign.find().sort({ opensAt: 1 }).lean();
  const held = await heldByCampaign(models, campaigns);
  for (const campaign of campaigns) {
    const plan = await retentionPlan(deps, campaign, held);
    const { anonymousResponses } = held.of(campaign._id);
    out.push({
      campaign: String(campaign._id),
      name: campaign.name,
      opensAt: campaign.opensAt,
      closesAt: campaign.closesAt,
      purpose: PURPOSE,
      lawfulBasis: LAWFUL_BASIS_NAMES[(campaign.lawfulBasis ?? 'legitimate-interest') as LawfulBasis],
      categories: DATA_CATEGORIES,
      retention: `${count(plan.retentionMonths, 'month', 'months')} after the close date; then contacts (unless invited later), drafts, personal links, email records (the emails as sent too), quote decisions and consents are removed and answers become anonymous records without free text.`,
      purgeDueAt: plan.dueAt,
      purgedAt: plan.purgedAt,
      recipients,
      heldNow: {
        contacts: plan.counts.contacts,
        personalLinks: plan.counts.invitations,
        drafts: plan.counts.drafts,
        identifiedResponses: plan.counts.responsesToAnonymise,
        anonymousResponses,
        revisions: plan.counts.revisions,
        emails: plan.counts.emails,
        consents: plan.counts.consents,
      },
    });
  }
  return out;
}

/** The records for an export file; the export is audited. */
export async function exportRecordsOfProcessing(deps: { models: Models; now: () => Date }, format: 'json' | 'csv', actor: string): Promise<ProcessingRecord[]> {
  const records = await recordsOfProcessing(deps);
  await recordAudit(deps.models, { actor, action: 'export.records-of-processing', details: { format }, at: deps.now() });
  return records;
}

const HELD = ['contacts', 'personalLinks', 'drafts', 'identifiedResponses', 'anonymousResponses', 'revisions', 'emails', 'consents'] as const;
const day = (date: Date) => date.toISOString().slice(0, 10);
const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** The records as CSV, one line per campaign (formulas neutralised by csvLine). */
export function recordsCsv(records: ProcessingRecord[], separator: CsvSeparator): string {
  let out = csvHeader(['campaign', 'name', 'opens', 'last_day', 'purpose', 'lawful_basis', 'categories', 'retention', 'purge_due', 'purged', 'recipients', ...HELD], separator);
  for (const r of records) {
    out += csvLine([r.campaign, r.name, day(r.opensAt), day(new Date(r.closesAt.getTime() - 1)), r.purpose, r.lawfulBasis, r.categories.join(' | '), r.retention, day(r.purgeDueAt), r.purgedAt ? day(r.purgedAt) : '', r.recipients, ...HELD.map((k) => r.heldNow[k])], separator);
  }
  return out;
}
