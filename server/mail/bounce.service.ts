import { recordAudit } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { insertIgnoringDuplicates } from './outbox.service.ts';
import { noteContactsChange } from '../shared/contact-changes.ts';

export interface BounceDeps {
  models: Pick<Models, 'Contact' | 'Suppression' | 'AuditEntry' | 'AuditChange' | 'ChangeStamp' | 'ContactChange'>;
  now: () => Date;
}

/** The reason a recorded bounce gives on the suppression list. */
export const BOUNCE_REASON = 'bounce';

const ADDRESS = /[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+/g;

/**
 * The addresses in a list of bounces as the coordinator has it: one per line,
 * a column of a CSV, or a relay's report pasted whole. Every address found,
 * lower-cased, once each, in the order met.
 */
export function bouncedAddresses(text: string): string[] {
  return [...new Set((text.match(ADDRESS) ?? []).map((a) => a.toLowerCase()))];
}

export interface BouncePreview {
  /** Contacts' addresses that are put on the suppression list. */
  toSuppress: string[];
  /** Already on it (bounced before, refused by the relay, or unsubscribed): left as they are. */
  alreadySuppressed: string[];
  /** No contact has them: nothing was mailed there by this platform, so they are left out. */
  notContacts: string[];
}

/**
 * What recording these bounces would do. Reads the contacts' addresses and
 * the suppression list once each (on FerretDB a filter reads them whole anyway).
 */
export async function previewBounces(deps: Pick<BounceDeps, 'models'>, addresses: readonly string[]): Promise<BouncePreview> {
  const [contacts, suppressed] = await Promise.all([deps.models.Contact.find({}, { email: 1 }).lean(), deps.models.Suppression.find({}, { email: 1 }).lean()]);
  const known = new Set(contacts.map((c) => c.email.toLowerCase()));
  const already = new Set(suppressed.map((s) => s.email));
  const preview: BouncePreview = { toSuppress: [], alreadySuppressed: [], notContacts: [] };
  for (const address of addresses) {
    if (already.has(address)) preview.alreadySuppressed.push(address);
    else if (!known.has(address)) preview.notContacts.push(address);
    else preview.toSuppress.push(address);
  }
  return preview;
}

/**
 * Records hard bounces the relay reported after accepting messages (a bounce
 * is, like a 5xx to RCPT TO, about that recipient): each contact's address
 * goes on the suppression list with the reason "bounce", so it is never mailed
 * again until a coordinator lifts it, and the audit log says who recorded how
 * many. Idempotent: an address already on the list keeps its entry. Returns
 * the preview it acted on and how many addresses it added.
 */
export async function recordBounces(deps: BounceDeps, addresses: readonly string[], actor: string): Promise<BouncePreview & { added: number }> {
  const preview = await previewBounces(deps, addresses);
  const at = deps.now();
  const added = (await insertIgnoringDuplicates(deps.models.Suppression.collection, preview.toSuppress.map((email) => ({ email, reason: BOUNCE_REASON, at })))).size;
  await noteContactsChange(deps.models, { suppressions: true });
  await recordAudit(deps.models, {
    actor,
    action: 'mail.bounces',
    target: 'suppressions',
    details: { added, alreadySuppressed: preview.alreadySuppressed.length, notContacts: preview.notContacts.length },
    at,
  });
  return { ...preview, added };
}
