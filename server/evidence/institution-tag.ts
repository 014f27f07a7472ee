import { createHmac, randomBytes } from 'node:crypto';
import { Schema, Types, type Connection, type Model } from 'mongoose';
import type { Models } from '../db/models.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { appendJournal } from './analytic-record.ts';
import { invalidateSnapshot } from './record-snapshot.ts';

/**
 * How the evidence names an institution: a tag per campaign, an HMAC-SHA256
 * of the institution's id with a random secret of that campaign, never the
 * id. Every analytic record carries it (S4's once-per-institution rule and
 * the institution counts of disclosure control compare tags only), and so
 * does an anonymous response in place of the institution's id. Forgetting
 * a person therefore leaves their anonymous record counted as the same
 * institution as their colleagues' records, while the record names no
 * institution; whoever holds the campaign's secret can test a guess until
 * the retention purge drops the secret, after which no record of the
 * campaign leads to an institution any more.
 *
 * One secret per campaign, _id the campaign's id, made on first use by a
 * unique insert (every process reads the one that won).
 */
const institutionSecretSchema = new Schema(
  {
    _id: { type: Schema.Types.ObjectId, required: true },
    /** 32 random bytes, base64. */
    secret: { type: String, required: true },
  },
  { versionKey: false },
);

export interface InstitutionSecretDoc {
  _id: Types.ObjectId;
  secret: string;
}

export function defineInstitutionSecretModel(connection: Connection) {
  return { InstitutionSecret: connection.model('InstitutionSecret', institutionSecretSchema, 'institution_secrets') as unknown as Model<InstitutionSecretDoc> };
}

type SecretModels = Pick<Models, 'InstitutionSecret'>;

const TAG_PREFIX = 't:';

/** True for an institution tag, false for an institution id (stored before tags). */
export function isInstitutionTag(value: unknown): boolean {
  return typeof value === 'string' && value.startsWith(TAG_PREFIX);
}

function tagWith(secret: Buffer, institution: string): string {
  return TAG_PREFIX + createHmac('sha256', secret).update(`institution:${institution}`).digest('base64url').slice(0, 22);
}

/** The institution's tag in a campaign, from its id; each campaign's secret is read once per tagger. */
export type InstitutionTagger = (campaign: unknown, institution: unknown) => Promise<string>;

/**
 * A tagger that reads (or makes) each campaign's secret once. Keep one for a
 * task (a submission, an erasure, a purge, an export), not for the process:
 * a secret dropped by a purge in another process must not live on here.
 */
export function institutionTagger(models: SecretModels): InstitutionTagger {
  const secrets = new Map<string, Promise<Buffer>>();
  return async (campaign, institution) => {
    const id = String(campaign);
    let secret = secrets.get(id);
    if (!secret) secrets.set(id, (secret = campaignSecret(models, id)));
    return tagWith(await secret, String(institution));
  };
}

async function campaignSecret(models: SecretModels, campaign: string): Promise<Buffer> {
  const _id = new Types.ObjectId(campaign);
  let stored = await models.InstitutionSecret.findById(_id).lean();
  if (!stored) {
    try {
      await models.InstitutionSecret.collection.insertOne({ _id, secret: randomBytes(32).toString('base64') });
    } catch (error) {
      // Another process made it first: theirs is the one.
      if ((error as { code?: unknown }).code !== 11000) throw error;
    }
    stored = await models.InstitutionSecret.findById(_id).lean();
  }
  return Buffer.from(stored!.secret, 'base64');
}

/** Drops a campaign's secret (its retention purge, or the campaign's removal): its tags can no longer be linked to an institution. */
export async function dropInstitutionSecret(models: SecretModels, campaign: Types.ObjectId | string): Promise<void> {
  await models.InstitutionSecret.deleteOne({ _id: new Types.ObjectId(String(campaign)) });
}

// ---------------------------------------------------------------------------
// Migration

export const INSTITUTION_TAGS_MIGRATION = 'migration:institution-tags-v1';

/**
 * Replaces institution ids by institution tags where they were stored before
 * tags existed: in analytic records (each change journalled, so every
 * process's evidence takes the record again) and in anonymous responses
 * (the id is removed). Then drops the secrets of campaigns already purged.
 * Once per database (a marker records it), idempotent and resumable: only
 * values still in the old form are changed. Returns how many documents it changed.
 */
export async function migrateInstitutionTags(
  models: Pick<Models, 'InstitutionSecret' | 'AnalyticRecord' | 'EvidenceJournal' | 'EvidenceFollower' | 'EvidenceSnapshot' | 'Response' | 'RetentionRun' | 'Claim'>,
  now: () => Date,
  onProgress?: (done: number, of: number) => void,
): Promise<number> {
  if (await models.Claim.exists({ _id: INSTITUTION_TAGS_MIGRATION })) return 0;
  const tagOf = institutionTagger(models);
  let changed = 0;
  // The records are compact: their ids and institutions are read first, then changed one by one.
  const records = (await models.AnalyticRecord.find({}, { campaign: 1, institution: 1 }).lean()).filter((r) => !isInstitutionTag(r.institution));
  const anonymous = await models.Response.find({ anonymous: true, institution: { $exists: true } }, { campaign: 1, institution: 1 }).lean();
  const total = records.length + anonymous.length;
  for (let start = 0; start < records.length; start += 500) {
    const batch = records.slice(start, start + 500);
    for (const r of batch) {
      // By _id alone (the filter the embedded engine's index serves): a submission that replaced the
      // record meanwhile wrote the same tag, as a record's institution never changes; a record gone
      // meanwhile (an erasure) is not brought back, as nothing is upserted.
      await models.AnalyticRecord.updateOne({ _id: r._id }, { $set: { institution: await tagOf(r.campaign, r.institution) } });
    }
    await appendJournal(models, batch.map((r) => r._id));
    changed += batch.length;
    onProgress?.(changed, total);
  }
  for (const r of anonymous) {
    await models.Response.collection.updateOne({ _id: r._id }, { $set: { institutionTag: await tagOf(r.campaign, r.institution) }, $unset: { institution: 1 } });
    changed += 1;
    if (changed % 500 === 0) onProgress?.(changed, total);
  }
  // A campaign already purged keeps no secret: its records keep their tags and are counted, and lead nowhere.
  const purged = new Set((await models.RetentionRun.find({ finishedAt: { $exists: true } }, { campaign: 1 }).lean()).map((run) => String(run.campaign)));
  for (const campaign of purged) await dropInstitutionSecret(models, campaign);
  // Every record changed is journalled, but following that many entries one by one is slower than reading every record: no snapshot until the next build.
  await invalidateSnapshot(models);
  await claimOnce(models, INSTITUTION_TAGS_MIGRATION, now());
  return changed;
}
