import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
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
 * institution.
 *
 * The secrets are stored sealed (AES-256-GCM) with the institution tag key,
 * which is never in the database (INSTITUTION_TAG_KEY in production): a copy
 * of the database alone cannot recompute a tag, so it cannot test which
 * institution a forgotten person's record belongs to. The running platform,
 * which holds the key, can, until the retention purge drops the campaign's
 * sealed secret; after that no record of the campaign leads to an institution
 * any more, whoever holds the key.
 *
 * One secret per campaign, _id the campaign's id, made on first use by a
 * unique insert (every process reads the one that won).
 */
const institutionSecretSchema = new Schema(
  {
    _id: { type: Schema.Types.ObjectId, required: true },
    /** The campaign's 32 random bytes sealed with the institution tag key (sealSecret), base64. */
    sealed: { type: String },
    /** The secret in the clear, as stored before sealing: sealInstitutionSecrets replaces it by `sealed`. */
    secret: { type: String },
  },
  { versionKey: false },
);

export interface InstitutionSecretDoc {
  _id: Types.ObjectId;
  sealed?: string;
  secret?: string;
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
 * A tagger that reads (or makes) each campaign's secret once, opening it with
 * the institution tag key. Keep one for a task (a submission, an erasure, a
 * purge, an export), not for the process: a secret dropped by a purge in
 * another process must not live on here.
 */
export function institutionTagger(models: SecretModels, tagKey: Buffer): InstitutionTagger {
  const secrets = new Map<string, Promise<Buffer>>();
  return async (campaign, institution) => {
    const id = String(campaign);
    let secret = secrets.get(id);
    if (!secret) secrets.set(id, (secret = campaignSecret(models, tagKey, id)));
    return tagWith(await secret, String(institution));
  };
}

async function campaignSecret(models: SecretModels, tagKey: Buffer, campaign: string): Promise<Buffer> {
  const _id = new Types.ObjectId(campaign);
  let stored = await models.InstitutionSecret.findById(_id).lean();
  if (!stored) {
    try {
      await models.InstitutionSecret.collection.insertOne({ _id, sealed: sealSecret(tagKey, campaign, randomBytes(32)) });
    } catch (error) {
      // Another process made it first: theirs is the one.
      if ((error as { code?: unknown }).code !== 11000) throw error;
    }
    stored = await models.InstitutionSecret.findById(_id).lean();
  }
  // Written in the clear by a process of the earlier version still running during an update: sealed now.
  if (stored!.secret !== undefined) return sealInPlace(models, tagKey, stored!);
  // A secret that does not open is never replaced: a new one would give the campaign's institutions second tags.
  return openSecret(tagKey, campaign, stored!.sealed ?? '');
}

/**
 * The key given does not open the institution secrets stored in the
 * database: it is not the key they were sealed with (changed, lost, or
 * another instance's). Nothing can be tagged then.
 */
export class InstitutionTagKeyError extends Error {
  constructor(campaign: string) {
    super(
      `The institution tag key does not open the institution secrets of this database (${campaign === KEY_CHECK ? 'its key check' : `campaign ${campaign}`}): it is not the key they were sealed with.\n` +
        '  Start the platform with the key this database was used with: INSTITUTION_TAG_KEY (in development, "tagKey" in DATA_DIR/secrets.json).\n' +
        '  No new secrets are made, as they would count each institution of a running campaign twice in the evidence. See "Production" in the README.',
    );
  }
}

/**
 * A sealed value under an id no campaign has (ObjectIds are never all zero),
 * stored by the first start: it tells a key that is not the database's at
 * start even before any campaign has a secret (a second instance given
 * another key would otherwise start, and fail only at its first tag).
 */
const KEY_CHECK = '000000000000000000000000';

const SEAL_IV_BYTES = 12;
const SEAL_AUTH_TAG_BYTES = 16;

/** The campaign id as associated data: a sealed secret moved to another campaign's document does not open. */
function associatedData(campaign: string): Buffer {
  return Buffer.from(`institution-secret:${campaign}`);
}

/** AES-256-GCM of a campaign's secret with the institution tag key: base64 of nonce, ciphertext and authentication tag. */
export function sealSecret(tagKey: Buffer, campaign: string, secret: Buffer): string {
  const iv = randomBytes(SEAL_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', tagKey, iv, { authTagLength: SEAL_AUTH_TAG_BYTES });
  cipher.setAAD(associatedData(campaign));
  return Buffer.concat([iv, cipher.update(secret), cipher.final(), cipher.getAuthTag()]).toString('base64');
}

/** The campaign's secret from its sealed form; an InstitutionTagKeyError if the key (or the campaign) is not the one it was sealed with. */
export function openSecret(tagKey: Buffer, campaign: string, sealed: string): Buffer {
  const bytes = Buffer.from(sealed, 'base64');
  try {
    const decipher = createDecipheriv('aes-256-gcm', tagKey, bytes.subarray(0, SEAL_IV_BYTES), { authTagLength: SEAL_AUTH_TAG_BYTES });
    decipher.setAAD(associatedData(campaign));
    decipher.setAuthTag(bytes.subarray(bytes.length - SEAL_AUTH_TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(SEAL_IV_BYTES, bytes.length - SEAL_AUTH_TAG_BYTES)), decipher.final()]);
  } catch {
    throw new InstitutionTagKeyError(campaign);
  }
}

/** Replaces a secret stored in the clear by its sealed form, in one update of the document; returns the secret. */
async function sealInPlace(models: SecretModels, tagKey: Buffer, stored: InstitutionSecretDoc): Promise<Buffer> {
  const secret = Buffer.from(stored.secret!, 'base64');
  await models.InstitutionSecret.collection.updateOne({ _id: stored._id }, { $set: { sealed: sealSecret(tagKey, String(stored._id), secret) }, $unset: { secret: 1 } });
  return secret;
}

/**
 * Run before anything tags (every start of the platform, and the scripts that
 * tag records): checks that the institution tag key opens every sealed secret
 * of the database (and its key check, stored at the first start), then
 * seals the secrets still stored in the clear (a database of the earlier
 * version). Throws an InstitutionTagKeyError, having
 * changed nothing, if the key is not the one the secrets were sealed with.
 * Idempotent: a start cut short half-way is completed by the next one, and
 * the secrets, so the tags, stay the same. Returns how many it sealed.
 */
export async function sealInstitutionSecrets(models: SecretModels, tagKey: Buffer): Promise<number> {
  // One document per campaign: few, read whole.
  const stored = await models.InstitutionSecret.find({}).lean();
  for (const doc of stored) if (doc.secret === undefined) openSecret(tagKey, String(doc._id), doc.sealed ?? '');
  if (!stored.some((doc) => String(doc._id) === KEY_CHECK)) {
    try {
      await models.InstitutionSecret.collection.insertOne({ _id: new Types.ObjectId(KEY_CHECK), sealed: sealSecret(tagKey, KEY_CHECK, randomBytes(32)) });
    } catch (error) {
      // Another process started at the same moment and stored its check first: it must open with this key too.
      if ((error as { code?: unknown }).code !== 11000) throw error;
      openSecret(tagKey, KEY_CHECK, (await models.InstitutionSecret.findById(new Types.ObjectId(KEY_CHECK)).lean())!.sealed ?? '');
    }
  }
  const clear = stored.filter((doc) => doc.secret !== undefined);
  for (const doc of clear) await sealInPlace(models, tagKey, doc);
  return clear.length;
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
  tagKey: Buffer,
  now: () => Date,
  onProgress?: (done: number, of: number) => void,
): Promise<number> {
  if (await models.Claim.exists({ _id: INSTITUTION_TAGS_MIGRATION })) return 0;
  const tagOf = institutionTagger(models, tagKey);
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
