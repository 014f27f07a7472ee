import { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';

/**
 * A respondent's consent to a campaign's privacy notice, _id the invitation's
 * id: given once (a unique insert), never changed, so it records the notice
 * version and the moment the respondent first agreed.
 */
const consentSchema = new Schema(
  {
    _id: { type: String, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    invitation: { type: Schema.Types.ObjectId, required: true },
    /** The notice's version (a hash of the text the respondent read) and its language. */
    version: { type: String, required: true },
    language: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);

export type Consent = InferSchemaType<typeof consentSchema>;

/** An erasure under way (erasure.store.ts); it names the person only by a keyed hash and is deleted when done. */
const erasurePlanSchema = new Schema(
  {
    _id: { type: String, required: true },
    mode: { type: String, enum: ['forget', 'delete'], required: true },
    anonymous: { type: [{ _id: false, invitation: String, record: String }], default: [] },
    identifiers: { type: [String], default: [] },
    startedAt: { type: Date, required: true },
  },
  { versionKey: false },
);

/**
 * One retention purge of one campaign, _id "<campaign id>:<close date>:<months>": inserted
 * (a unique insert) by the one instance that does the purge, completed with
 * finishedAt; a purge that crashed is finished by the next check.
 */
const retentionRunSchema = new Schema(
  {
    _id: { type: String, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    dueAt: { type: Date, required: true },
    startedAt: { type: Date, required: true },
    worker: { type: String, required: true },
    finishedAt: { type: Date },
    people: { type: Number },
  },
  { versionKey: false },
);

export type RetentionRun = InferSchemaType<typeof retentionRunSchema>;

export function definePrivacyModels(connection: Connection) {
  return {
    Consent: connection.model('Consent', consentSchema, 'consents') as Model<Consent>,
    ErasurePlan: connection.model('ErasurePlan', erasurePlanSchema, 'erasure_plans'),
    RetentionRun: connection.model('RetentionRun', retentionRunSchema, 'retention_runs') as Model<RetentionRun>,
  };
}
