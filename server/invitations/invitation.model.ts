import { Schema, type Connection, type InferSchemaType, type Model, type Types } from 'mongoose';
import { LANGUAGES } from '../shared/languages.ts';

/**
 * One contact's participation in one campaign, reached through a personal link.
 * The link's token is never stored: only its SHA-256 hash, for look-up
 * (see invitation-token.ts for how the token is derived).
 */
const invitationSchema = new Schema(
  {
    campaign: { type: Schema.Types.ObjectId, ref: 'Campaign', required: true },
    contact: { type: Schema.Types.ObjectId, ref: 'Contact', required: true },
    institution: { type: Schema.Types.ObjectId, ref: 'Institution', required: true },
    tokenHash: { type: String, required: true, unique: true },
    /** Raising it re-derives the token: the old link stops working. */
    tokenGeneration: { type: Number, default: 0 },
    language: { type: String, enum: LANGUAGES, default: 'en' },
    /** Set once the link stops working; the answers already given are kept. */
    revokedAt: { type: Date },
    /** Why: the coordinator revoked it, or the contact or the institution was deactivated. */
    revokedReason: { type: String, enum: ['coordinator', 'contact-deactivated', 'institution-deactivated'] },
    openedAt: { type: Date },
    startedAt: { type: Date },
    /** First submission; later corrections keep it. */
    completedAt: { type: Date },
    /** Number of submitted revisions; the response with this revision counts. */
    revision: { type: Number, default: 0 },
    /**
     * Unsubmitted progress. The answers are kept as a JSON string: a draft is
     * not yet validated, and its keys must never reach the database as field names.
     */
    draft: {
      json: { type: String },
      pageNo: { type: Number },
      savedAt: { type: Date },
      /** The revision the draft corrects (0 before the first submission). */
      baseRevision: { type: Number },
    },
    demo: { type: Boolean, default: false },
  },
  { timestamps: true },
);
invitationSchema.index({ campaign: 1, contact: 1 }, { unique: true });
invitationSchema.index({ campaign: 1, completedAt: 1 });

export type Invitation = InferSchemaType<typeof invitationSchema> & {
  campaign: Types.ObjectId;
  contact: Types.ObjectId;
  institution: Types.ObjectId;
};
export type InvitationModel = Model<Invitation>;

export function defineInvitationModel(connection: Connection): InvitationModel {
  return connection.model('Invitation', invitationSchema, 'invitations');
}
