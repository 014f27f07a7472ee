import { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { deriveToken, hashToken, linkToken } from './invitation-token.ts';

export interface InvitationDeps {
  models: Models;
  tokenKey: Buffer;
  publicUrl: string;
}

/**
 * Creates one invitation (one personal link) per contact for a campaign.
 * Idempotent: (campaign, contact) is unique, so inviting the same contacts
 * again creates nothing new. Returns how many were created.
 */
export async function createInvitations(
  deps: InvitationDeps,
  campaignId: Types.ObjectId,
  contacts: ReadonlyArray<{ _id: Types.ObjectId; institution: Types.ObjectId; language?: string | null }>,
): Promise<number> {
  const existing = new Set(
    (await deps.models.Invitation.find({ campaign: campaignId }, { contact: 1 }).lean()).map((i) => String(i.contact)),
  );
  const fresh = contacts
    .filter((contact) => !existing.has(String(contact._id)))
    .map((contact) => {
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
    });
  if (fresh.length === 0) return 0;
  try {
    const inserted = await deps.models.Invitation.insertMany(fresh, { ordered: false });
    return inserted.length;
  } catch (error) {
    // A second process invited the same contacts at the same moment: theirs stand.
    const result = error as { code?: number; insertedDocs?: unknown[]; writeErrors?: Array<{ code?: number }> };
    const onlyDuplicates = (result.writeErrors ?? [{ code: result.code }]).every((e) => e.code === 11000);
    if (!onlyDuplicates) throw error;
    return result.insertedDocs?.length ?? 0;
  }
}

/** The personal link of an invitation, derived again from the token key (it is stored nowhere). */
export function personalLink(deps: Pick<InvitationDeps, 'tokenKey' | 'publicUrl'>, invitation: { _id: unknown; tokenGeneration?: number | null }): string {
  const token = linkToken(deps.tokenKey, String(invitation._id), invitation.tokenGeneration ?? 0);
  return `${deps.publicUrl.replace(/\/$/, '')}/s/${token}`;
}
