import { Schema, type Connection, type InferSchemaType, type Model, type Types } from 'mongoose';
import { LANGUAGES } from '../shared/languages.ts';

/**
 * One answered question, flattened (respond/answer-items.ts). Responses stored
 * since the analytic records keep only their free-text items here (the quotes
 * read them); the closed answers are counted from the record
 * (evidence/analytic-record.ts). Older responses hold every item.
 */
const itemSchema = new Schema(
  {
    strand: { type: String, required: true },
    question: { type: String, required: true },
    value: { type: Schema.Types.Mixed, required: true },
    /** Matrix row code. */
    row: { type: String },
    /** Position in a ranking, from 1. */
    rank: { type: Number },
  },
  { _id: false },
);

/** The profile answers (P) copied beside the items: the breakdown dimensions of every aggregate. */
const profileSchema = new Schema(
  {
    country: String,
    institutionType: String,
    ownership: String,
    size: String,
    staffSize: String,
    location: String,
    erasmus: String,
    role: String,
  },
  { _id: false },
);

/** The consent the answers were given under (campaigns whose lawful basis is consent): the notice version and when. */
const consentSchema = new Schema(
  {
    version: { type: String, required: true },
    language: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { _id: false },
);

const responseFields = {
  campaign: { type: Schema.Types.ObjectId, ref: 'Campaign', required: true },
  invitation: { type: Schema.Types.ObjectId, ref: 'Invitation', required: true },
  institution: { type: Schema.Types.ObjectId, ref: 'Institution', required: true },
  revision: { type: Number, required: true, min: 1 },
  /** Content hash of the questionnaire definition that was answered. */
  definitionVersion: { type: String, required: true },
  strands: { type: [String], required: true },
  language: { type: String, enum: LANGUAGES, required: true },
  submittedAt: { type: Date, required: true },
  /** The validated SurveyJS answers, as the questionnaire produced them. */
  data: { type: Schema.Types.Mixed, required: true },
  items: { type: [itemSchema], default: [] },
  profile: { type: profileSchema, required: true },
  consent: { type: consentSchema },
};

/**
 * Every submitted revision, kept for ever. Its _id is "<invitation id>:<revision>",
 * so (invitation, revision) is unique by the primary key, and a revision is
 * found by _id: the only look-up FerretDB v1's SQLite backend answers from an
 * index (any other filter scans the collection).
 */
const revisionSchema = new Schema({ _id: { type: String, required: true }, ...responseFields }, { minimize: false });
revisionSchema.index({ campaign: 1 });

/**
 * The revision that counts, one document per invitation, with the
 * invitation's id as its _id: the evidence reads only this collection. It is
 * written after the revision, and only forward (a lower revision never
 * replaces a higher one).
 */
const responseSchema = new Schema(responseFields, { minimize: false });
responseSchema.index({ campaign: 1 });

export type Response = InferSchemaType<typeof responseSchema> & {
  campaign: Types.ObjectId;
  invitation: Types.ObjectId;
  institution: Types.ObjectId;
};
export type ResponseModel = Model<Response>;
export type ResponseRevisionModel = Model<Response & { _id: string }>;

export function revisionId(invitationId: unknown, revision: number): string {
  return `${String(invitationId)}:${revision}`;
}

/**
 * That an invitation has a stored response, in three fields: written after
 * its first revision and before the current response, never changed. The
 * sender, the reminders and the fieldwork view need only this; on FerretDB a
 * response costs about twenty times as much to read (its answers), and any
 * read of a campaign's responses reads them all.
 */
const completionSchema = new Schema(
  {
    /** The invitation's id. */
    _id: { type: Schema.Types.ObjectId, required: true },
    campaign: { type: Schema.Types.ObjectId, ref: 'Campaign', required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);

export type CompletionModel = Model<InferSchemaType<typeof completionSchema>>;

export function defineResponseModels(connection: Connection): {
  Response: ResponseModel;
  ResponseRevision: ResponseRevisionModel;
  Completion: CompletionModel;
} {
  return {
    Response: connection.model('Response', responseSchema, 'responses') as ResponseModel,
    ResponseRevision: connection.model('ResponseRevision', revisionSchema, 'response_revisions') as unknown as ResponseRevisionModel,
    Completion: connection.model('Completion', completionSchema, 'completions') as CompletionModel,
  };
}
