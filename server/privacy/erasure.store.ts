import { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { insertIgnoringDuplicates } from '../mail/outbox.service.ts';

/**
 * An erasure under way, _id the keyed hash of the address and the mode. It is
 * inserted before the first change (a unique insert: a second run, or a
 * second instance, reads the same plan) and deleted after the last, so a
 * crash in between is finished by running the erasure again with the same
 * anonymous ids: an anonymous record is never made twice.
 */
export interface ErasurePlan {
  _id: string;
  mode: 'forget' | 'delete';
  /** Invitation id → the id of its anonymous record (forget mode). */
  anonymous: Array<{ invitation: string; record: string }>;
  /** The address, names and ids to blank out, kept until the erasure is done (a re-run may no longer find them all). */
  identifiers: string[];
  startedAt: Date;
}

export async function startPlan(models: Models, plan: ErasurePlan): Promise<ErasurePlan> {
  await insertIgnoringDuplicates(models.ErasurePlan.collection, [plan]);
  return (await models.ErasurePlan.findById(plan._id).lean<ErasurePlan>())!;
}

export async function findPlan(models: Models, id: string): Promise<ErasurePlan | null> {
  return models.ErasurePlan.findById(id).lean<ErasurePlan>();
}

export async function finishPlan(models: Models, id: string): Promise<void> {
  await models.ErasurePlan.deleteOne({ _id: id });
}

export function newRecordId(): string {
  return new Types.ObjectId().toHexString();
}
