import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { noteChange } from '../shared/change-stamp.ts';
import type { Consent } from './privacy.model.ts';

/**
 * The consents collection, keyed by invitation id: a look-up by _id (the only
 * one FerretDB v1 answers from an index), and "consented once" is a unique
 * insert, so a double click or two tabs keep the first consent.
 */
export async function findConsent(models: Pick<Models, 'Consent'>, invitationId: Types.ObjectId | string): Promise<Consent | null> {
  return models.Consent.findById(String(invitationId)).lean<Consent>();
}

/**
 * Records a consent unless one exists; returns the stored one (the first
 * given). A new one moves the campaign's 'responses' stamp, which the
 * personal-data page keeps its count of consents under.
 */
export async function recordConsent(
  models: Pick<Models, 'Consent' | 'ChangeStamp'>,
  consent: { campaign: Types.ObjectId; invitation: Types.ObjectId; version: string; language: string; at: Date },
): Promise<Consent> {
  try {
    await models.Consent.create({ _id: String(consent.invitation), ...consent });
    await noteChange(models, 'responses', [consent.campaign]);
  } catch (error) {
    if ((error as { code?: number }).code !== 11000) throw error;
  }
  return (await findConsent(models, consent.invitation))!;
}
