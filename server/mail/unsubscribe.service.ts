import { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { insertIgnoringDuplicates } from './outbox.service.ts';
import { contactOfUnsubscribeToken } from './unsubscribe-token.ts';
import { noteContactsChange } from '../shared/contact-changes.ts';

export interface UnsubscribeDeps {
  models: Models;
  tokenKey: Buffer;
  now: () => Date;
}

/** The contact an unsubscribe link names, or undefined for a malformed or forged token. */
export async function findUnsubscribeContact(deps: UnsubscribeDeps, token: unknown) {
  const contactId = contactOfUnsubscribeToken(deps.tokenKey, token);
  if (!contactId) return undefined;
  return (await deps.models.Contact.findById(new Types.ObjectId(contactId), { name: 1, email: 1, language: 1, unsubscribedAt: 1 }).lean()) ?? undefined;
}

/**
 * Unsubscribes the contact the token names: sets unsubscribedAt (kept when
 * already set) and puts the address on the suppression list, which the
 * sender reads before every batch, so no message still queued goes out.
 * Idempotent. Returns false for an invalid token.
 */
export async function unsubscribe(deps: UnsubscribeDeps, token: unknown): Promise<boolean> {
  const contact = await findUnsubscribeContact(deps, token);
  if (!contact) return false;
  if (!contact.unsubscribedAt) await deps.models.Contact.updateOne({ _id: contact._id }, { $set: { unsubscribedAt: deps.now() } });
  await insertIgnoringDuplicates(deps.models.Suppression.collection, [{ email: contact.email, reason: 'unsubscribed', at: deps.now() }]);
  await noteContactsChange(deps.models, { contacts: [contact._id], suppressions: true });
  return true;
}
