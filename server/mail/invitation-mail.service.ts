import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { isLanguage } from '../shared/languages.ts';
import { canMail, enqueueMessages, insertIgnoringDuplicates, type MessageToEnqueue } from './outbox.service.ts';

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
  const added = await enqueueMessages(deps, 'invitation', 0, recipients);
  await insertIgnoringDuplicates(deps.models.ReminderRound.collection, [
    { campaign: campaignId, round: 0, startedAt: deps.now(), startedBy: actor, enqueuedAt: deps.now(), recipients: recipients.length },
  ]);
  const total = await deps.models.Outbox.countDocuments({ campaign: campaignId, kind: 'invitation' });
  return { added, total };
}

/** The campaign's invitations whose contact may be mailed, with the address and language. */
async function eligibleRecipients(models: Models, campaignId: Types.ObjectId): Promise<MessageToEnqueue[]> {
  const invitations = await models.Invitation.find({ campaign: campaignId, revokedAt: { $exists: false } }, { contact: 1, language: 1 }).lean();
  const contacts = new Map(
    (await models.Contact.find({ _id: { $in: invitations.map((i) => i.contact) } }, { email: 1, active: 1, unsubscribedAt: 1 }).lean()).map((c) => [String(c._id), c]),
  );
  const suppressed = new Set((await models.Suppression.find({}, { email: 1 }).lean()).map((s) => s.email));
  const recipients: MessageToEnqueue[] = [];
  for (const invitation of invitations) {
    const contact = contacts.get(String(invitation.contact));
    if (!contact || !canMail(contact, suppressed)) continue;
    recipients.push({
      campaign: campaignId,
      contact: contact._id,
      invitation: invitation._id,
      to: contact.email,
      language: isLanguage(invitation.language) ? invitation.language : 'en',
    });
  }
  return recipients;
}
