import { Types } from 'mongoose';
import { recordAudit } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { anonymousSource, recordOf, removeRecords, writeRecord, type RecordChange } from '../evidence/analytic-record.ts';
import { removeQuoteTexts } from '../evidence/quote-text.ts';
import { eraseFromEvidence } from '../evidence/record-snapshot.ts';
import { institutionTagger } from '../evidence/institution-tag.ts';
import { forgetDue, insertIgnoringDuplicates } from '../mail/outbox.service.ts';
import { removeSentEmails } from '../mail/sent-email.store.ts';
import { forgetErasedEmails } from '../mail/email-changes.ts';
import { forgetErasedProgress } from '../respond/progress-changes.ts';
import { csvHeader, csvLine, type CsvSeparator } from '../shared/csv.ts';
import { HttpError } from '../shared/http-error.ts';
import { LANGUAGES, type Language } from '../shared/languages.ts';
import { changingLinks } from '../invitations/invitation.service.ts';
import { editsByCampaign } from '../invitations/link-copy.store.ts';
import { noticeFor } from './privacy-notice.ts';
import { finishPlan, findPlan, newRecordId, startPlan } from './erasure.store.ts';
import { findSubjectData, identifiersOf, normaliseEmail, suppressionHash, type SubjectData } from './subject.store.ts';
import { noteChange, noteTestSendChange } from '../shared/change-stamp.ts';
import { forgetJournalledContacts, noteContactsChange } from '../shared/contact-changes.ts';

export interface PrivacyDeps {
  models: Models;
  tokenKey: Buffer;
  /** Opens the campaigns' institution tag secrets: an anonymous record keeps its institution's tag. */
  tagKey: Buffer;
  now: () => Date;
  /** Names of the free-text questions: their answers could identify someone and go with the person. */
  textQuestions: ReadonlySet<string>;
  /** Called when responses were anonymised or deleted, with what that did to their analytic records. */
  onResponsesChanged?: (change: RecordChange) => void;
}

/** The free-text questions of a catalogue: their answers go with the person. */
export function textQuestionNames(catalogue: { questions: ReadonlyArray<{ name: string; kind: string }> }): Set<string> {
  return new Set(catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name));
}

/** A campaign's notice in the language asked for, or in its first language when it does not offer that one; 404 for an unknown campaign. */
export async function publicNotice(deps: Pick<PrivacyDeps, 'models'>, campaignId: Types.ObjectId, requested: Language) {
  const campaign = await deps.models.Campaign.findById(campaignId).lean();
  if (!campaign) throw new HttpError(404, 'This page does not exist.');
  const offered = (campaign.languages?.length ? campaign.languages : [...LANGUAGES]) as Language[];
  const language = offered.includes(requested) ? requested : offered[0]!;
  return { campaign, language, offered, notice: noticeFor(campaign, language).text };
}

export const ERASURE_MODES = ['forget', 'delete'] as const;
export type ErasureMode = (typeof ERASURE_MODES)[number];

/** How the audit log and the erasure plans name a person: a keyed hash of the address, never the address. */
export function subjectRef(deps: Pick<PrivacyDeps, 'tokenKey'>, email: string): string {
  return `subject:${suppressionHash(deps.tokenKey, email).slice(5, 29)}`;
}

const SECTIONS = ['contacts', 'institutions', 'invitations', 'outbox', 'sentEmails', 'outboxClaims', 'outboxOutcomes', 'responses', 'revisions', 'quoteTexts', 'analyticRecords', 'journal', 'contactChanges', 'emailChanges', 'progressChanges', 'consents', 'completions', 'suppressions', 'claims', 'quoteReviews', 'audit', 'importPreviews'] as const;
export type Section = (typeof SECTIONS)[number];

export const SECTION_NAMES: Record<Section, string> = {
  contacts: 'Contact records',
  institutions: 'Institutions',
  invitations: 'Invitations (personal links: state, opening, draft)',
  outbox: 'Emails (one per invitation or reminder round)',
  sentEmails: 'Emails as sent (headers, text and HTML bodies)',
  outboxClaims: 'Email sending attempts',
  outboxOutcomes: 'Email outcomes (sent, failed, skipped, with the SMTP Message-ID and reply)',
  responses: 'Current response',
  revisions: 'Submitted revisions',
  quoteTexts: 'Free-text answers of the current response, copied for the quotes page',
  analyticRecords: 'Analytic record of the current response (closed answers, for the evidence)',
  journal: 'Evidence journal entries naming the current response (how other instances learn of changes)',
  contactChanges: 'Contact list journal entries naming the contact record (how other instances learn of changes)',
  emailChanges: 'Email journal entries and checkpoints naming their emails (how other instances follow the sending)',
  progressChanges: 'Progress journal entries naming their personal links (first opening, first answers, submission: how other instances follow the fieldwork)',
  consents: 'Consent records',
  completions: 'Marks that an invitation was answered (when)',
  suppressions: 'Suppression list entries',
  claims: 'Markers of one-time actions (replaced links)',
  quoteReviews: 'Decisions on their free-text answers as quotes',
  audit: 'Audit log entries naming the person',
  importPreviews: 'Uploaded contact files naming the person',
};

/** What is held, per section, as counts: the person page and the erasure preview show these. */
export function countsOf(data: SubjectData): Record<Section, number> {
  return Object.fromEntries(SECTIONS.map((s) => [s, data[s].length])) as Record<Section, number>;
}

export interface AccessReport {
  subject: string;
  generatedAt: Date;
  notes: string[];
  data: Omit<SubjectData, 'email'>;
}

/**
 * Everything held about the person whose address this is (GDPR Art. 15), as
 * stored. Audited under a hash of the address, so the log does not keep a
 * copy of who asked.
 */
export async function accessReport(deps: PrivacyDeps, email: string, actor: string): Promise<AccessReport> {
  const { email: subject, ...data } = await findSubjectData(deps.models, email);
  await recordAudit(deps.models, { actor, action: 'privacy.access', target: subjectRef(deps, subject), details: countsOf({ email: subject, ...data }), at: deps.now() });
  return {
    subject,
    generatedAt: deps.now(),
    notes: [
      'Each email the mail server accepted is kept as sent (headers, text and HTML bodies, under the email\'s id) until the campaign\'s retention runs out; its Message-ID (in the headers and the outcomes) identifies it in the mail server\'s log.',
      'Personal links are stored only as a hash (tokenHash); the link itself appears in the emails as sent.',
    ],
    data,
  };
}

/**
 * The access report as one CSV table a spreadsheet opens: one line per
 * stored value — section, record id, field path (nested fields joined by
 * dots, list items by their position) and value — after the notes. Every
 * value of the JSON export is there, as text.
 */
export function accessReportCsv(report: AccessReport, separator: CsvSeparator): string {
  let out = csvHeader(['section', 'record', 'field', 'value'], separator);
  out += csvLine(['About this export', '', 'subject', report.subject], separator);
  out += csvLine(['About this export', '', 'generatedAt', report.generatedAt.toISOString()], separator);
  for (const [i, note] of report.notes.entries()) out += csvLine(['About this export', '', `note.${i + 1}`, note], separator);
  for (const section of SECTIONS) {
    for (const document of JSON.parse(JSON.stringify(report.data[section])) as Array<Record<string, unknown>>) {
      const record = String(document._id ?? '');
      for (const [field, value] of flatten(document)) out += csvLine([SECTION_NAMES[section], record, field, value], separator);
    }
  }
  return out;
}

/** Leaf values of a JSON document with their paths ("draft.savedAt", "items.3.value"); empty objects and lists kept as {} and []. */
function flatten(value: unknown, path = ''): Array<[string, string]> {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    if (entries.length === 0) return [[path, Array.isArray(value) ? '[]' : '{}']];
    return entries.flatMap(([key, v]) => flatten(v, path ? `${path}.${key}` : key));
  }
  return [[path, value === null || value === undefined ? '' : String(value)]];
}

export interface ErasureResult {
  mode: ErasureMode;
  /** False when nothing was held any more (a second run). */
  changed: boolean;
  counts: Record<Section, number>;
}

/** What is held about the person, as counts per section; the look-up is audited under the hashed reference. */
export async function lookUpPerson(deps: PrivacyDeps, email: string, actor: string): Promise<Record<Section, number>> {
  const counts = countsOf(await findSubjectData(deps.models, email));
  await recordAudit(deps.models, { actor, action: 'privacy.lookup', target: subjectRef(deps, email), at: deps.now() });
  return counts;
}

/**
 * What an erasure would remove, without removing anything, and when an
 * erasure in this mode was started and not finished (a crash): running it
 * again finishes it. Audited.
 */
export async function previewErasure(deps: PrivacyDeps, email: string, mode: ErasureMode, actor: string): Promise<{ counts: Record<Section, number>; interruptedAt?: Date }> {
  const plan = await findPlan(deps.models, `${subjectRef(deps, email)}:${mode}`);
  const counts = countsOf(await findSubjectData(deps.models, email, plan?.identifiers));
  await recordAudit(deps.models, { actor, action: 'privacy.erase-preview', target: subjectRef(deps, email), details: { mode }, at: deps.now() });
  return { counts, interruptedAt: plan?.startedAt };
}

type Step = 'responses' | 'consents' | 'outbox' | 'claims' | 'invitations' | 'audit' | 'importPreviews' | 'suppression' | 'contacts';

/**
 * Erases a person (GDPR Art. 17). "forget": their identity, address, name,
 * drafts, email records (the emails as sent too), consents, quote decisions
 * and free-text answers go; their closed answers stay as an anonymous record
 * (a new id, no invitation, the profile, and in place of the institution's
 * id its tag in the campaign, which every analytic record of the campaign
 * carries: see institution-tag.ts), so no indicator moves. "delete": the
 * response and its revisions go too.
 *
 * Without transactions, the steps run in an order that a re-run can finish:
 * the plan (with the anonymous ids) is written first by a unique insert,
 * the contact — by which the person is found — is removed last, and every
 * step is harmless to repeat. `onStep` lets a test stop the run between steps.
 */
export async function erasePerson(
  deps: PrivacyDeps,
  input: { email: string; mode: ErasureMode; actor: string; reason?: string; onStep?: (step: Step) => void },
): Promise<ErasureResult> {
  const email = normaliseEmail(input.email);
  const planId = `${subjectRef(deps, email)}:${input.mode}`;
  let plan = await findPlan(deps.models, planId);
  const data = await findSubjectData(deps.models, email, plan?.identifiers);
  const counts = countsOf(data);
  const held = counts.contacts + counts.invitations + counts.outbox + counts.sentEmails + counts.responses + counts.revisions + counts.quoteTexts + counts.analyticRecords + counts.journal + counts.contactChanges + counts.emailChanges + counts.progressChanges + counts.consents + counts.completions + counts.suppressions + counts.claims + counts.quoteReviews + counts.audit + counts.importPreviews;
  if (!plan && held === 0) {
    await recordAudit(deps.models, { actor: input.actor, action: 'privacy.erase', target: subjectRef(deps, email), details: { mode: input.mode, changed: false, reason: input.reason }, at: deps.now() });
    return { mode: input.mode, changed: false, counts };
  }
  plan ??= await startPlan(deps.models, {
    _id: planId,
    mode: input.mode,
    anonymous: data.responses.map((r) => ({ invitation: String(r._id), record: newRecordId() })),
    startedAt: deps.now(),
    identifiers: identifiersOf(data),
  });
  const identifiers = [...new Set([...identifiersOf(data), ...plan.identifiers])];
  const step = (name: Step) => input.onStep?.(name);
  const { models } = deps;

  // 1. Answers: an anonymous copy first (forget), then the originals and every revision.
  // The original's analytic record goes before the original itself: a re-run finds the person by the response.
  const change: RecordChange = { written: [], removed: [] };
  const tagOf = institutionTagger(models, deps.tagKey);
  // The free text copied for quotes first: an anonymous response keeps none.
  await removeQuoteTexts(models, data.quoteTexts.map((q) => q._id as Types.ObjectId));
  for (const response of data.responses) {
    if (input.mode === 'forget') {
      const record = plan.anonymous.find((a) => a.invitation === String(response._id))?.record ?? newRecordId();
      const anonymous = anonymousRecord(deps, response, new Types.ObjectId(record), await tagOf(response.campaign, response.institution));
      await insertIgnoringDuplicates(models.Response.collection, [anonymous]);
      change.written.push(await writeRecord(models, recordOf(anonymousSource(response, anonymous), (name) => deps.textQuestions.has(name))));
    }
    await removeRecords(models, [response._id as Types.ObjectId]);
    change.removed.push(String(response._id));
    await models.Response.deleteOne({ _id: response._id });
  }
  if (data.revisions.length) await models.ResponseRevision.deleteMany({ _id: { $in: data.revisions.map((r) => r._id) } });
  if (data.completions.length) {
    await models.Completion.deleteMany({ _id: { $in: data.completions.map((c) => c._id) } });
    await noteChange(models, 'completions', data.completions.map((c) => c.campaign));
  }
  if (data.responses.length) deps.onResponsesChanged?.(change);
  // The snapshot and the journal named the records by the person's invitation ids; followers have the removals or resynchronise.
  // The plan lists them on a re-run too, when the responses are gone already.
  await eraseFromEvidence(models, [...new Set([...data.responses.map((r) => String(r._id)), ...plan.anonymous.map((a) => a.invitation)])].map((id) => new Types.ObjectId(id)));
  step('responses');

  if (data.consents.length) {
    await models.Consent.deleteMany({ _id: { $in: data.consents.map((c) => c._id) } });
    await noteChange(models, 'responses', data.consents.map((c) => c.campaign));
  }
  step('consents');

  // 2. Email records: what is left to send first (nothing more goes to this person), the emails
  // as sent, outcomes and claims before the messages they are found by.
  await forgetDue(models, data.outbox.map((o) => o._id));
  await removeSentEmails(models, data.sentEmails.map((m) => m._id));
  if (data.outboxOutcomes.length) await models.OutboxOutcome.deleteMany({ _id: { $in: data.outboxOutcomes.map((o) => o._id) } });
  if (data.outboxClaims.length) await models.OutboxClaim.deleteMany({ _id: { $in: data.outboxClaims.map((o) => o._id) } });
  if (data.outbox.length) await models.Outbox.deleteMany({ _id: { $in: data.outbox.map((o) => o._id) } });
  // Then the journal's entries naming the emails and their campaigns' checkpoints (a re-run finds the campaigns by those left).
  await forgetErasedEmails(
    models,
    [...data.outbox, ...data.outboxOutcomes].map((o) => String(o.campaign)).concat(data.emailChanges.map((e) => String(e._id).slice(0, String(e._id).indexOf(':')))),
    data.emailChanges.map((e) => String(e._id)),
  );
  if (data.outbox.length + data.outboxOutcomes.length) await noteChange(models, 'emails', [...data.outbox, ...data.outboxOutcomes].map((o) => o.campaign));
  // Test sends to an erased coordinator leave their campaigns' lists.
  await noteTestSendChange(models, data.outbox.map((o) => ({ kind: String(o.kind), campaign: o.campaign as Types.ObjectId })));
  step('outbox');

  if (data.claims.length) await models.Claim.deleteMany({ _id: { $in: data.claims.map((c) => c._id) } });
  if (data.quoteReviews.length) await models.QuoteReview.deleteMany({ _id: { $in: data.quoteReviews.map((q) => q._id) } });
  step('claims');

  // 3. Personal links, drafts included.
  if (data.invitations.length) {
    await changingLinks(models, data.invitations.map((i) => i.campaign), async () => {
      await models.Invitation.deleteMany({ _id: { $in: data.invitations.map((i) => i._id) } });
      return editsByCampaign(data.invitations as Array<{ _id: Types.ObjectId; campaign: Types.ObjectId }>, 'removed');
    });
  }
  // Then the progress journal's entries naming the links; their campaigns' fieldwork is read whole again.
  await forgetErasedProgress(models, data.invitations.map((i) => i.campaign), data.progressChanges.map((e) => String(e._id)));
  step('invitations');

  // 4. The audit log keeps what was done, not to whom: names, address and ids are blanked.
  for (const entry of data.audit) {
    await models.AuditEntry.updateOne({ _id: entry._id }, { $set: { target: redact(entry.target, identifiers), details: redact(entry.details, identifiers) } });
  }
  step('audit');

  for (const preview of data.importPreviews) {
    const text = String(preview.text).split('\n').filter((line) => !identifiers.some((id) => line.includes(id))).join('\n');
    await models.ImportPreview.updateOne({ _id: preview._id }, { $set: { text } });
  }
  step('importPreviews');

  // 5. Never mailed again: the hash goes on the list before the address comes off it.
  await insertIgnoringDuplicates(models.Suppression.collection, [{ email: suppressionHash(deps.tokenKey, email), reason: 'erased', at: deps.now() }]);
  if (data.suppressions.length) await models.Suppression.deleteMany({ _id: { $in: data.suppressions.map((s) => s._id) } });
  step('suppression');

  // The contact list's journal names contacts by id: its entries naming them say "read the whole list" instead.
  await forgetJournalledContacts(models, data.contactChanges.map((e) => e._id));
  if (data.contacts.length) await models.Contact.deleteMany({ _id: { $in: data.contacts.map((c) => c._id) } });
  await noteContactsChange(models);
  step('contacts');

  await finishPlan(models, planId);
  await recordAudit(models, { actor: input.actor, action: 'privacy.erase', target: subjectRef(deps, email), details: { mode: input.mode, changed: true, counts, reason: input.reason }, at: deps.now() });
  return { mode: input.mode, changed: true, counts };
}

/**
 * The closed answers of a response without anything that leads back to the
 * person: a new id in place of the invitation's, the institution's tag in
 * place of its id, and no free-text answer (nor SurveyJS "other" comments).
 */
export function anonymousRecord(deps: Pick<PrivacyDeps, 'textQuestions'>, response: Record<string, any>, id: Types.ObjectId, institutionTag: string) {
  const { _id, __v, institution, ...fields } = response;
  const isText = (name: string) => deps.textQuestions.has(name) || name.endsWith('-Comment');
  const data = Object.fromEntries(Object.entries((fields.data ?? {}) as Record<string, unknown>).filter(([name]) => !isText(name)));
  const items = ((fields.items ?? []) as Array<{ question: string }>).filter((item) => !isText(item.question));
  return { ...fields, _id: id, invitation: id, institutionTag, data, items, anonymous: true };
}

function redact(text: unknown, identifiers: string[]): string | undefined {
  if (typeof text !== 'string') return undefined;
  let out = text;
  for (const id of [...identifiers].sort((a, b) => b.length - a.length)) out = out.split(id).join('[erased]');
  return out;
}
