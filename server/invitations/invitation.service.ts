import { Types } from 'mongoose';
import { lookUpAll } from '../shared/look-ups.ts';
import { recordAudit } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { KeptValues, noteChange, stampOf } from '../shared/change-stamp.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { HttpError } from '../shared/http-error.ts';
import { deriveToken, hashToken, linkToken } from './invitation-token.ts';
import { beginLinkChanges, editsByCampaign, finishLinkChanges, readCampaignLinkEntries, readLinksAfresh, touchLinkChanges, type LinkEdits, type LinkEntry, type LinkWriter } from './link-copy.store.ts';

export interface InvitationDeps {
  models: Models;
  tokenKey: Buffer;
  publicUrl: string;
}

/** A personal link as created: what the queueing of its invitation email needs. */
export interface CreatedLink {
  _id: Types.ObjectId;
  contact: Types.ObjectId;
  institution: Types.ObjectId;
  language: string;
}

/**
 * Creates one invitation (one personal link) per contact for a campaign.
 * Idempotent: (campaign, contact) is unique, so inviting the same contacts
 * again creates nothing new. Returns how many were created. With `onStep`,
 * the links are written `step` at a time (the first step `firstStep`, so that
 * its emails can leave at once) and each step's links are handed over as soon
 * as they are written, so that campaign:send can queue their emails while it
 * makes the rest. The campaign's existing links are read once, unless the
 * caller read them already (`existing`: the contacts that have one).
 */
export async function createInvitations(
  deps: InvitationDeps,
  campaignId: Types.ObjectId,
  contacts: ReadonlyArray<{ _id: Types.ObjectId; institution: Types.ObjectId; language?: string | null }>,
  options: { step?: number; firstStep?: number; existing?: ReadonlySet<string>; onStep?: (links: CreatedLink[], left: number) => Promise<void> } = {},
): Promise<number> {
  const campaign = String(campaignId);
  // Claimed before the links are read: what is read after it is a base for the campaign's copy of its links (link-copy.store.ts).
  const writer = await beginLinkChanges(deps.models, [campaignId]);
  let read: LinkEntry[] | undefined;
  const added: CreatedLink[] = [];
  let finished = false;
  try {
    if (!options.existing) read = await readLinksAfresh(deps.models, campaignId);
    const existing = options.existing ?? new Set(read!.map((l) => String(l.contact)));
    const fresh = contacts.filter((contact) => !existing.has(String(contact._id)));
    const step = options.onStep ? Math.max(1, options.step ?? 500) : Math.max(1, fresh.length);
    for (let start = 0, size = Math.max(1, Math.min(step, options.firstStep ?? step)); start < fresh.length; start += size, size = step) {
      // Each step's tokens are derived when it is written, so that the first step waits for its own only.
      const links = await insertLinks(
        deps.models,
        fresh.slice(start, start + size).map((contact) => {
          const _id = new Types.ObjectId();
          return {
            _id,
            campaign: campaignId,
            contact: contact._id,
            institution: contact.institution,
            language: contact.language ?? 'en',
            tokenGeneration: 0,
            tokenHash: hashToken(deriveToken(deps.tokenKey, String(_id), 0)),
          };
        }),
      );
      added.push(...links);
      // Pages loaded meanwhile (campaign:send's long runs) count the links made so far; the change is still at work.
      await noteChange(deps.models, 'links', [campaignId]);
      await touchLinkChanges(deps.models, writer);
      await options.onStep?.(links, Math.max(0, fresh.length - start - size));
    }
    finished = true;
  } finally {
    // A run that failed half-way says nothing of what it wrote: the next reader reads the links.
    await finishLinkChanges(deps.models, writer, finished ? new Map([[campaign, { added }]]) : undefined, read ? new Map([[campaign, read]]) : undefined);
  }
  return added.length;
}

/** Inserts new links; those another process created for the same contacts at the same moment stand instead. Returns the links written. */
async function insertLinks<T extends CreatedLink>(models: Models, links: T[]): Promise<T[]> {
  try {
    await models.Invitation.insertMany(links, { ordered: false });
    return links;
  } catch (error) {
    const result = error as { code?: number; insertedDocs?: Array<{ _id: unknown }>; writeErrors?: Array<{ code?: number }> };
    const onlyDuplicates = (result.writeErrors ?? [{ code: result.code }]).every((e) => e.code === 11000);
    if (!onlyDuplicates) throw error;
    const written = new Set((result.insertedDocs ?? []).map((doc) => String(doc._id)));
    return links.filter((link) => written.has(String(link._id)));
  }
}

/**
 * Writes links of these campaigns as one change (link-copy.store.ts): claimed
 * before `write`, done after it, with what `write` says it did per campaign
 * (nothing when it failed, so the next reader reads the links afresh).
 */
export async function changingLinks(models: Models, campaigns: Iterable<Types.ObjectId | string>, write: () => Promise<ReadonlyMap<string, LinkEdits>>): Promise<void> {
  const writer: LinkWriter = await beginLinkChanges(models, campaigns);
  let edits: ReadonlyMap<string, LinkEdits> | undefined;
  try {
    edits = await write();
  } finally {
    await finishLinkChanges(models, writer, edits);
  }
}

/** The personal link of an invitation, derived again from the token key (it is stored nowhere). */
export function personalLink(deps: Pick<InvitationDeps, 'tokenKey' | 'publicUrl'>, invitation: { _id: unknown; tokenGeneration?: number | null }): string {
  const token = linkToken(deps.tokenKey, String(invitation._id), invitation.tokenGeneration ?? 0);
  return `${deps.publicUrl.replace(/\/$/, '')}/s/${token}`;
}

export type RevokeReason = 'coordinator' | 'contact-deactivated' | 'institution-deactivated';
const REVOKE_REASON_LABELS: Record<RevokeReason, string> = {
  coordinator: 'by a coordinator',
  'contact-deactivated': 'the contact was deactivated',
  'institution-deactivated': 'the institution was deactivated',
};

/**
 * Stops one personal link: it then answers 410 "no longer valid". The answers
 * already submitted stay counted and the draft is kept, so a new link made
 * later resumes them. Repeating it changes nothing ($min keeps the first date).
 */
export async function revokeLink(deps: { models: Models; now: () => Date }, invitationId: Types.ObjectId, actor: string): Promise<{ institution: Types.ObjectId }> {
  const invitation = await deps.models.Invitation.findById(invitationId, { revokedAt: 1, institution: 1, campaign: 1 }).lean();
  if (!invitation) throw new HttpError(404, 'This personal link does not exist.');
  if (invitation.revokedAt) return { institution: invitation.institution };
  const at = deps.now();
  await changingLinks(deps.models, [invitation.campaign], async () => {
    await deps.models.Invitation.updateOne({ _id: invitationId }, { $min: { revokedAt: at }, $set: { revokedReason: 'coordinator' } });
    return new Map([[String(invitation.campaign), { revoked: [invitationId] }]]);
  });
  await recordAudit(deps.models, { actor, action: 'invitation.revoke', target: `invitation:${invitationId}`, at });
  return { institution: invitation.institution };
}

/**
 * Revokes every link of a contact or of an institution that still works (on
 * deactivation). Not a hot path: the filter reads the whole collection on
 * FerretDB v1, the updates are by _id. Returns how many links were revoked.
 */
export async function revokeOpenLinks(
  deps: { models: Models; now: () => Date },
  owner: { contact: Types.ObjectId } | { institution: Types.ObjectId },
  reason: Exclude<RevokeReason, 'coordinator'>,
): Promise<number> {
  const open = await deps.models.Invitation.find({ ...owner, revokedAt: { $exists: false } }, { _id: 1, campaign: 1 }).lean();
  const at = deps.now();
  await changingLinks(deps.models, open.map((i) => i.campaign), async () => {
    for (const { _id } of open) await deps.models.Invitation.updateOne({ _id }, { $min: { revokedAt: at }, $set: { revokedReason: reason } });
    return editsByCampaign(open, 'revoked');
  });
  return open.length;
}

/**
 * Replaces a personal link by a new one: the generation in the token's HMAC
 * input goes up, so the old link no longer matches the stored hash (it then
 * answers 410 "replaced") while the new one opens the same invitation, with
 * its answers and draft. A revoked link is reinstated this way, unless its
 * contact or institution is inactive.
 *
 * The form names the generation it replaces, and replacing a generation is
 * claimed by a unique insert: a double click, or two coordinators at once,
 * make one new link, not two (FerretDB v1 has no atomic conditional update).
 */
export async function regenerateLink(
  deps: InvitationDeps & { now: () => Date },
  invitationId: Types.ObjectId,
  replacing: number,
  actor: string,
): Promise<{ link: string; generation: number; institution: Types.ObjectId }> {
  const { models } = deps;
  const invitation = await models.Invitation.findById(invitationId, { contact: 1, institution: 1, campaign: 1, tokenGeneration: 1, revokedAt: 1 }).lean();
  if (!invitation) throw new HttpError(404, 'This personal link does not exist.');
  const current = invitation.tokenGeneration ?? 0;
  if (replacing !== current) {
    // The second click of a double click: the link it asked for is the current one.
    if (replacing === current - 1) return { link: personalLink(deps, invitation), generation: current, institution: invitation.institution };
    throw new HttpError(409, 'This link was changed in the meantime. Please reload the page.');
  }
  const [contact, institution] = await Promise.all([
    models.Contact.findById(invitation.contact, { active: 1 }).lean(),
    models.Institution.findById(invitation.institution, { active: 1 }).lean(),
  ]);
  if (contact?.active === false || institution?.active === false) {
    throw new HttpError(409, 'The contact or the institution is inactive: reactivate it before making a new link.');
  }
  const at = deps.now();
  const generation = current + 1;
  const won = await claimOnce(models, `link-regenerate:${invitationId}:${replacing}`, at);
  // The loser of a double click applies the same update again: harmless, and it
  // completes the step if the winner crashed between its claim and its update.
  // A change of the links even when this link was not revoked as read: a revocation elsewhere meanwhile is undone by it.
  await changingLinks(models, [invitation.campaign], async () => {
    await models.Invitation.updateOne(
      { _id: invitationId },
      {
        $max: { tokenGeneration: generation },
        $set: { tokenHash: hashToken(deriveToken(deps.tokenKey, String(invitationId), generation)) },
        $unset: { revokedAt: 1, revokedReason: 1 },
      },
    );
    return new Map([[String(invitation.campaign), { reissued: [{ _id: invitationId, generation }] }]]);
  });
  if (won) {
    await recordAudit(models, { actor, action: 'invitation.regenerate', target: `invitation:${invitationId}`, details: { generation, wasRevoked: Boolean(invitation.revokedAt) }, at });
  }
  return { link: personalLink(deps, { _id: invitationId, tokenGeneration: generation }), generation, institution: invitation.institution };
}

/** Each campaign's links as its copy holds them, per connection. */
const keptCopies = new KeptValues<LinkEntry[]>();

/**
 * The personal links of some contacts (an institution's), per campaign, for
 * the institution's page. Which links they have comes from each campaign's
 * compact copy of its links (link-copy.store.ts), kept until the campaign's
 * "links" stamp moves; then each of those links is looked up by _id for its
 * progress. On the embedded engine a filter on the contacts read every link
 * of every campaign on every load.
 */
export async function linksOfContacts(models: Models, contactIds: Types.ObjectId[]) {
  if (contactIds.length === 0) return new Map<string, never[]>();
  const wanted = new Set(contactIds.map(String));
  const campaigns = await models.Campaign.find({}, { name: 1 }).lean();
  const copies = await Promise.all(
    campaigns.map(async (campaign) => keptCopies.get(models, String(campaign._id), await stampOf(models, 'links', campaign._id), () => readCampaignLinkEntries(models, campaign._id))),
  );
  const ids = copies.flat().filter((link) => wanted.has(String(link.contact))).map((link) => link._id);
  const lookUp = (id: Types.ObjectId) => models.Invitation.findById(id, { campaign: 1, contact: 1, tokenGeneration: 1, revokedAt: 1, revokedReason: 1, openedAt: 1, completedAt: 1, revision: 1 }).lean();
  const invitations = (await lookUpAll(ids, lookUp)).flatMap((invitation) => (invitation ? [invitation] : []));
  const names = new Map(campaigns.map((c) => [String(c._id), c.name]));
  const byContact = new Map<string, Array<(typeof invitations)[number] & { campaignName: string; generation: number; revokedReasonLabel?: string }>>();
  for (const invitation of invitations) {
    const key = String(invitation.contact);
    const shown = {
      ...invitation,
      campaignName: names.get(String(invitation.campaign)) ?? '',
      generation: invitation.tokenGeneration ?? 0,
      revokedReasonLabel: invitation.revokedReason ? REVOKE_REASON_LABELS[invitation.revokedReason as RevokeReason] : undefined,
    };
    byContact.set(key, [...(byContact.get(key) ?? []), shown]);
  }
  return byContact;
}
