import type { Types } from 'mongoose';
import { countryLabel } from '../campaigns/audience.service.ts';
import { campaignLinksState, contactListState } from '../campaigns/audience-state.ts';
import type { Models } from '../db/models.ts';
import { institutionTypeLabel } from '../institutions/institution-codes.ts';
import { isLanguage, LANGUAGE_NAMES } from '../shared/languages.ts';
import { canMail, enqueueMessages, insertIgnoringDuplicates, type MessageToEnqueue } from './outbox.service.ts';
import { CONTACT_LIST, KeptValues, noteChange, stampOf } from '../shared/change-stamp.ts';
import type { InvitationSend } from './outbox.model.ts';

export interface InvitationMailDeps {
  models: Models;
  now: () => Date;
}

/**
 * Puts one invitation email per personal link of the campaign in the outbox
 * (links are created first, by inviteCampaign). Idempotent: pressing "Send
 * invitations" again only adds emails for links created since. Contacts who
 * unsubscribed, are inactive or whose address is suppressed get none. Also
 * records round 0, from which the reminder schedule counts.
 * Returns how many emails were added and how many the campaign has in all.
 */
export async function enqueueInvitations(deps: InvitationMailDeps, campaignId: Types.ObjectId, actor: string): Promise<{ added: number; total: number }> {
  const recipients = await eligibleRecipients(deps.models, campaignId);
  await noteInvitationEmailsToCome(deps.models, campaignId);
  const added = await enqueueMessages(deps, 'invitation', 0, recipients.map(({ institution: _, ...r }) => r));
  await recordInvitationRound(deps, campaignId, actor, recipients.length);
  const total = await deps.models.Outbox.countDocuments({ campaign: campaignId, kind: 'invitation' });
  return { added, total };
}

/** Records round 0 (once: later calls change nothing), from which the reminder schedule counts. */
export async function recordInvitationRound(deps: InvitationMailDeps, campaignId: Types.ObjectId, actor: string, recipients: number): Promise<void> {
  await insertIgnoringDuplicates(deps.models.ReminderRound.collection, [
    { campaign: campaignId, round: 0, startedAt: deps.now(), startedBy: actor, enqueuedAt: deps.now(), recipients },
  ]);
  await noteChange(deps.models, 'rounds', [campaignId]);
}

/**
 * Every writer of a campaign's invitation emails calls this before writing
 * them (enqueueMessages notes the same stamp again after): a campaign whose
 * "rounds" stamp was never set then has no invitation email, even after a
 * writer crashed between its emails and its note after them, and
 * freshRecipients need not read the outbox for it.
 */
export function noteInvitationEmailsToCome(models: Pick<Models, 'ChangeStamp'>, campaignId: Types.ObjectId): Promise<void> {
  return noteChange(models, 'rounds', [campaignId]);
}

export type InvitationDryRun = Awaited<ReturnType<typeof computeDryRun>>;

const keptDryRuns = new KeptValues<InvitationDryRun>();

/**
 * What "Send the invitations" would do now, in aggregate, for the
 * confirmation step: how many emails (the campaign's mailable personal links
 * that have no invitation email yet), to how many institutions, by country,
 * institution type and language.
 *
 * Computing it takes the campaign's links and the contact list (every
 * contact, institution and suppression) as the campaign page read and kept
 * them (audience-state.ts), or reads them when their stamps moved since, and
 * reads the campaign's invitation emails if it may have some (seconds at
 * thousands of contacts in all), so it is kept per campaign and computed again only when what
 * it depends on has changed: the campaign's "links" and "rounds" stamps, the
 * contact list's stamp (change-stamp.ts; one look-up by _id each, written by
 * every writer, in any process), or the latest decision to send (`latest`:
 * queued further, finished, or refused because the count it confirmed had
 * changed), and after ten minutes in any case.
 */
export async function invitationDryRun(
  deps: { models: Models },
  campaignId: Types.ObjectId,
  latest?: Pick<InvitationSend, 'n' | 'queued' | 'finishedAt' | 'refused'>,
): Promise<InvitationDryRun> {
  const { models } = deps;
  const stamps = await Promise.all([stampOf(models, 'links', campaignId), stampOf(models, 'rounds', campaignId), stampOf(models, 'contacts', CONTACT_LIST)]);
  const decision = latest ? [latest.n, latest.queued, latest.finishedAt?.getTime() ?? '', latest.refused ? 'refused' : ''] : [];
  const basis = JSON.stringify([stamps, decision]);
  return keptDryRuns.get(models, String(campaignId), basis, () => computeDryRun(models, campaignId));
}

async function computeDryRun(models: Models, campaignId: Types.ObjectId) {
  // The links and the contact list as the campaign page keeps them (audience-state.ts): read again only when their stamps moved.
  const [links, contactList, queued] = await Promise.all([campaignLinksState(models, campaignId), contactListState(models), queuedInvitationEmails(models, campaignId)]);
  const mailable = new Map([...contactList.contacts].filter(([, contact]) => canMail(contact, contactList.suppressed)));
  const already = new Set(queued.map((m) => String(m.contact)));
  // The same selection as freshRecipients, which the queueing reads afresh: the count confirmed is checked against it.
  const fresh = recipientsOf(campaignId, links.live, mailable).filter((r) => !already.has(String(r.contact)));
  const alreadyQueued = queued.length;
  const institutions = contactList.institutions;
  const count = (keyOf: (r: (typeof fresh)[number]) => string) => {
    const counts = new Map<string, number>();
    for (const r of fresh) counts.set(keyOf(r), (counts.get(keyOf(r)) ?? 0) + 1);
    return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([label, n]) => ({ label, count: n }));
  };
  return {
    emails: fresh.length,
    institutions: new Set(fresh.map((r) => String(r.institution))).size,
    alreadyQueued,
    byCountry: count((r) => countryLabel(institutions.get(String(r.institution))?.country ?? '?')),
    byType: count((r) => institutionTypeLabel(institutions.get(String(r.institution))?.type ?? '?')),
    byLanguage: count((r) => LANGUAGE_NAMES[r.language]),
  };
}

/**
 * The campaign's mailable recipients, and those of them who have no
 * invitation email yet (fresh): one read of its invitations, the contacts,
 * the suppressions and its invitation emails. The emails are read only when
 * the campaign may have some (noteInvitationEmailsToCome): the outbox holds
 * every campaign's history, and reading it costs the engine a document each.
 */
export async function freshRecipients(models: Models, campaignId: Types.ObjectId) {
  const [recipients, queued] = await Promise.all([eligibleRecipients(models, campaignId), queuedInvitationEmails(models, campaignId)]);
  const already = new Set(queued.map((m) => String(m.contact)));
  return { recipients, fresh: recipients.filter((r) => !already.has(String(r.contact))), alreadyQueued: queued.length };
}

/** The campaign's invitation emails (their contacts), read only when it may have some (noteInvitationEmailsToCome). */
async function queuedInvitationEmails(models: Models, campaignId: Types.ObjectId): Promise<Array<{ contact: Types.ObjectId }>> {
  if ((await stampOf(models, 'rounds', campaignId)) === '') return [];
  return models.Outbox.find({ campaign: campaignId, kind: 'invitation' }, { contact: 1 }).lean();
}

/** The campaign's invitations whose contact may be mailed, with the address and language. */
async function eligibleRecipients(models: Models, campaignId: Types.ObjectId): Promise<InvitationRecipient[]> {
  const [invitations, mailable] = await Promise.all([
    models.Invitation.find({ campaign: campaignId, revokedAt: { $exists: false } }, { contact: 1, language: 1, institution: 1 }).lean(),
    mailableContacts(models),
  ]);
  return recipientsOf(campaignId, invitations, mailable);
}

export type InvitationRecipient = MessageToEnqueue & { institution: Types.ObjectId };
type MailableContact = { _id: Types.ObjectId; email: string };

/**
 * The contacts that may be mailed now (active, not unsubscribed, address not
 * suppressed), by id: every contact and the suppression list, read once.
 */
export async function mailableContacts(models: Models): Promise<Map<string, MailableContact>> {
  // Every contact, read once: on FerretDB an $in of thousands of ids is matched against every contact anyway, value by value.
  const [contacts, suppressions] = await Promise.all([
    models.Contact.find({}, { email: 1, active: 1, unsubscribedAt: 1 }).lean(),
    models.Suppression.find({}, { email: 1 }).lean(),
  ]);
  const suppressed = new Set(suppressions.map((s) => s.email));
  return new Map(contacts.filter((c) => canMail(c, suppressed)).map((c) => [String(c._id), c]));
}

/** The invitation emails of these links whose contact may be mailed. */
export function recipientsOf(
  campaignId: Types.ObjectId,
  invitations: ReadonlyArray<{ _id: Types.ObjectId; contact: Types.ObjectId; institution: Types.ObjectId; language?: string | null }>,
  mailable: ReadonlyMap<string, MailableContact>,
): InvitationRecipient[] {
  const recipients: InvitationRecipient[] = [];
  for (const invitation of invitations) {
    const contact = mailable.get(String(invitation.contact));
    if (!contact) continue;
    recipients.push({
      campaign: campaignId,
      contact: contact._id,
      invitation: invitation._id,
      institution: invitation.institution,
      to: contact.email,
      language: isLanguage(invitation.language) ? invitation.language : 'en',
    });
  }
  return recipients;
}
