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

export function definePrivacyModels(connection: Connection) {
  return {
    Consent: connection.model('Consent', consentSchema, 'consents') as Model<Consent>,
  };
}
