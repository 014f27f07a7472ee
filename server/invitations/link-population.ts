import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { KeptValues, stampOf } from '../shared/change-stamp.ts';
import { readCampaignLinkEntries } from './link-copy.store.ts';

export interface CampaignLinks {
  /** Every personal link made for the campaign, revoked ones included. */
  total: number;
  /** The links that still work, counted per institution id. */
  liveByInstitution: ReadonlyMap<string, number>;
}

type LinkModels = Pick<Models, 'Invitation' | 'ChangeStamp' | 'LinkChange' | 'LinkCopy'>;

const kept = new KeptValues<CampaignLinks>();

/**
 * A campaign's personal links as the evidence's response rate and the
 * campaign page count them. The evidence page is loaded far more often than
 * links change, and reading a campaign's invitations costs a document each on
 * the embedded engine (50,000 invitations: tens of seconds), so the counts are
 * kept per campaign and read again only when the campaign's "links" stamp
 * moved (change-stamp.ts: one look-up by _id per page), and then from the
 * campaign's compact copy of its links (link-copy.store.ts).
 */
export async function campaignLinks(models: LinkModels, campaign: Types.ObjectId | string): Promise<CampaignLinks> {
  const stamp = await stampOf(models, 'links', campaign);
  return kept.get(models, String(campaign), stamp, () => countLinks(models, campaign));
}

/** Keeps the counts of links another reader has just read whole (the campaign page's audience), `stamp` being the campaign's "links" stamp read before. */
export function keepCampaignLinkCounts(models: LinkModels, campaign: Types.ObjectId | string, stamp: string, invitations: ReadonlyArray<{ institution: Types.ObjectId; revoked: boolean }>): void {
  kept.put(models, String(campaign), stamp, countsOf(invitations));
}

async function countLinks(models: LinkModels, campaign: Types.ObjectId | string): Promise<CampaignLinks> {
  return countsOf(await readCampaignLinkEntries(models, campaign));
}

function countsOf(invitations: ReadonlyArray<{ institution: Types.ObjectId; revoked: boolean }>): CampaignLinks {
  const liveByInstitution = new Map<string, number>();
  for (const invitation of invitations) {
    if (invitation.revoked) continue;
    const institution = String(invitation.institution);
    liveByInstitution.set(institution, (liveByInstitution.get(institution) ?? 0) + 1);
  }
  return { total: invitations.length, liveByInstitution };
}
