import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { stampOf } from '../shared/change-stamp.ts';

/** Read again after this long even when the stamp did not move (a writer that crashed before setting it). */
const MAX_AGE_MS = 10 * 60_000;

export interface CampaignLinks {
  /** Every personal link made for the campaign, revoked ones included. */
  total: number;
  /** The links that still work, counted per institution id. */
  liveByInstitution: ReadonlyMap<string, number>;
}

type LinkModels = Pick<Models, 'Invitation' | 'ChangeStamp'>;

/** What each connection's processes computed, per campaign: kept with the models they were read through. */
const keptByModels = new WeakMap<LinkModels, Map<string, { stamp: string; at: number; links: CampaignLinks }>>();

/**
 * A campaign's personal links as the evidence's response rate and the
 * campaign page count them. The evidence page is loaded far more often than
 * links change, and reading a campaign's invitations costs a document each on
 * the embedded engine (50,000 invitations: tens of seconds), so the counts are
 * kept per campaign and read again only when the campaign's "links" stamp
 * moved (change-stamp.ts: one look-up by _id per page).
 */
export async function campaignLinks(models: LinkModels, campaign: Types.ObjectId | string): Promise<CampaignLinks> {
  let kept = keptByModels.get(models);
  if (!kept) keptByModels.set(models, (kept = new Map()));
  const stamp = await stampOf(models, 'links', campaign);
  const entry = kept.get(String(campaign));
  if (entry && entry.stamp === stamp && Date.now() - entry.at < MAX_AGE_MS) return entry.links;
  const invitations = await models.Invitation.find({ campaign }, { institution: 1, revokedAt: 1 }).lean<Array<{ institution: Types.ObjectId; revokedAt?: Date | null }>>();
  const liveByInstitution = new Map<string, number>();
  for (const invitation of invitations) {
    if (invitation.revokedAt) continue;
    const institution = String(invitation.institution);
    liveByInstitution.set(institution, (liveByInstitution.get(institution) ?? 0) + 1);
  }
  const links = { total: invitations.length, liveByInstitution };
  kept.set(String(campaign), { stamp, at: Date.now(), links });
  return links;
}
