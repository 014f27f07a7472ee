import { createHmac } from 'node:crypto';
import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { findSentEmails } from '../mail/sent-email.store.ts';
import { progressChangesNaming } from '../respond/progress-changes.ts';

/**
 * Everything the platform holds about one person, found from their email
 * address. Filters other than {_id} read whole collections on FerretDB v1;
 * an access or erasure request is rare, so each collection is read once.
 * The one place that knows where a person's data lives: the access export,
 * the erasure and the retention purge all start here.
 */
export interface SubjectData {
  email: string;
  contacts: Array<Record<string, any>>;
  institutions: Array<Record<string, any>>;
  invitations: Array<Record<string, any>>;
  outbox: Array<Record<string, any>>;
  /** The emails as sent (headers and bodies), by outbox message. */
  sentEmails: Array<Record<string, any>>;
  outboxClaims: Array<Record<string, any>>;
  outboxOutcomes: Array<Record<string, any>>;
  responses: Array<Record<string, any>>;
  revisions: Array<Record<string, any>>;
  /** Their current responses' free-text answers, copied for the quotes (quote-text.ts). */
  quoteTexts: Array<Record<string, any>>;
  /** The analytic records of their current responses (closed answers, packed) and the journal entries naming them. */
  analyticRecords: Array<Record<string, any>>;
  journal: Array<Record<string, any>>;
  /** The contact list's journal entries naming their contact (contact-changes.ts). */
  contactChanges: Array<Record<string, any>>;
  /** The email journal's entries naming their emails' claims or outcomes (email-changes.ts). */
  emailChanges: Array<Record<string, any>>;
  /** The progress journal's entries naming their links' first opening, first answers or submission (progress-changes.ts). */
  progressChanges: Array<Record<string, any>>;
  consents: Array<Record<string, any>>;
  completions: Array<Record<string, any>>;
  suppressions: Array<Record<string, any>>;
  claims: Array<Record<string, any>>;
  /** Coordinators' decisions on their free-text answers as quotes (_id "<invitation>:<question>:<hash of the text>"). */
  quoteReviews: Array<Record<string, any>>;
  audit: Array<Record<string, any>>;
  importPreviews: Array<Record<string, any>>;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** How the suppression list marks an erased person's address (suppressionHash). */
export const HASHED_ADDRESS = 'hmac:';

/**
 * The suppression list's entry for an erased address: a keyed hash, so the
 * list cannot be read back into addresses, while the sender can still
 * recognise the address when someone imports it again.
 */
export function suppressionHash(tokenKey: Buffer, email: string): string {
  return `${HASHED_ADDRESS}${createHmac('sha256', tokenKey).update(`suppress:${normaliseEmail(email)}`).digest('hex')}`;
}

/** Strings that identify the person in free text (audit details, import files): address, names and ids. */
export function identifiersOf(data: Pick<SubjectData, 'email' | 'contacts' | 'invitations' | 'outbox'>): string[] {
  const out = new Set<string>([data.email]);
  for (const c of data.contacts) {
    out.add(String(c._id));
    if (c.name) out.add(String(c.name));
  }
  for (const i of data.invitations) out.add(String(i._id));
  for (const m of data.outbox) out.add(String(m._id));
  return [...out].filter((s) => s.length >= 3);
}

const mentions = (text: unknown, identifiers: string[]) => typeof text === 'string' && identifiers.some((id) => text.includes(id));

/**
 * `known` adds identifiers found earlier (an interrupted erasure's plan keeps
 * them): once the invitations are gone, their ids can no longer be found
 * from the address, but audit entries and claims may still name them.
 */
export async function findSubjectData(models: Models, rawEmail: string, known: readonly string[] = []): Promise<SubjectData> {
  const email = normaliseEmail(rawEmail);
  const contacts = await models.Contact.find({ email }).lean();
  const contactIds = contacts.map((c) => c._id);
  const institutions = contactIds.length ? await models.Institution.find({ _id: { $in: contacts.map((c) => c.institution) } }).lean() : [];
  const invitations = contactIds.length ? await models.Invitation.find({ contact: { $in: contactIds } }).lean() : [];
  const invitationIds = invitations.map((i) => i._id as Types.ObjectId);
  const outbox = await models.Outbox.find(contactIds.length ? { $or: [{ contact: { $in: contactIds } }, { to: email }] } : { to: email }).lean();
  const messageIds = outbox.map((m) => m._id);
  const [outboxClaims, outcomesWithEmails, responses, revisions, quoteTexts, analyticRecords, journal, consents, completions, suppressions] = await Promise.all([
    messageIds.length ? models.OutboxClaim.find({ message: { $in: messageIds } }).lean() : [],
    messageIds.length ? models.OutboxOutcome.find({ message: { $in: messageIds } }).lean() : [],
    invitationIds.length ? models.Response.find({ _id: { $in: invitationIds } }).lean() : [],
    invitationIds.length ? models.ResponseRevision.find({ invitation: { $in: invitationIds } }).lean() : [],
    invitationIds.length ? models.QuoteText.find({ _id: { $in: invitationIds } }).lean() : [],
    invitationIds.length ? models.AnalyticRecord.find({ _id: { $in: invitationIds } }).lean() : [],
    invitationIds.length ? models.EvidenceJournal.find({ r: { $in: invitationIds } }).lean() : [],
    invitationIds.length ? models.Consent.find({ _id: { $in: invitationIds.map(String) } }).lean() : [],
    invitationIds.length ? models.Completion.find({ _id: { $in: invitationIds } }).lean() : [],
    models.Suppression.find({ email }).lean(),
  ]);
  // The emails as sent are in their outcomes (sent-email.store.ts): shown once, as emails, not as packed bytes in the outcomes.
  const sentEmails = await findSentEmails(models, messageIds, outcomesWithEmails);
  const outboxOutcomes = outcomesWithEmails.map(({ sentEmail: _packed, sentEmailBase: _base, ...outcome }) => outcome);
  const identifiers = [...new Set([...identifiersOf({ email, contacts, invitations, outbox }), ...known])];
  // Entries name emails by their ids only (an interrupted erasure's plan keeps those of emails already removed).
  const emails = identifiers.filter((id) => /^[0-9a-f]{24}$/.test(id));
  const [contactChanges, emailChanges, progressChanges, claims, quoteReviews, audit, importPreviews] = await Promise.all([
    models.ContactChange.find({}).lean().then((all) => all.filter((e) => e.c?.some((id) => identifiers.includes(String(id))))),
    emails.length ? models.EmailChange.find({}).lean().then((all) => all.filter((e) => mentions(e.m, emails) || mentions(e.c, emails) || mentions(e.o, emails))) : [],
    // By the links' ids, which an interrupted erasure's plan keeps once the invitations are gone.
    progressChangesNaming(models, emails),
    models.Claim.find({}).lean().then((all) => all.filter((c) => mentions(c._id, identifiers))),
    models.QuoteReview.find({}).lean().then((all) => all.filter((q) => mentions(q._id, identifiers))),
    models.AuditEntry.find({}).lean().then((all) => all.filter((a) => mentions(a.target, identifiers) || mentions(a.details, identifiers))),
    models.ImportPreview.find({}).lean().then((all) => all.filter((p) => mentions(p.text, identifiers))),
  ]);
  return { email, contacts, institutions, invitations, outbox, sentEmails, outboxClaims, outboxOutcomes, responses, revisions, quoteTexts, analyticRecords, journal, contactChanges, emailChanges, progressChanges, consents, completions, suppressions, claims, quoteReviews, audit, importPreviews };
}
