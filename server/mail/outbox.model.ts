import { Schema, type Connection, type InferSchemaType, type Model, type Types } from 'mongoose';
import { LANGUAGES } from '../shared/languages.ts';

export const MESSAGE_KINDS = ['invitation', 'reminder'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/**
 * queued → sending → sent | failed | skipped, and sending → unknown when the
 * worker that claimed a message disappeared before recording the outcome.
 * An unknown message is never sent again by itself: the coordinator decides.
 */
export const OUTBOX_STATES = ['queued', 'sending', 'sent', 'failed', 'unknown', 'skipped'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

/**
 * One email to one contact: the invitation (round 0) or the reminder of a
 * round. The subject and body are rendered when the message is sent; the
 * personal link is derived again then, so no token is ever stored here.
 */
const outboxSchema = new Schema(
  {
    campaign: { type: Schema.Types.ObjectId, ref: 'Campaign', required: true },
    contact: { type: Schema.Types.ObjectId, ref: 'Contact', required: true },
    invitation: { type: Schema.Types.ObjectId, ref: 'Invitation', required: true },
    kind: { type: String, enum: MESSAGE_KINDS, required: true },
    /** 0 for the invitation, 1.. for reminder rounds. */
    round: { type: Number, required: true, min: 0 },
    to: { type: String, required: true, lowercase: true, trim: true },
    language: { type: String, enum: LANGUAGES, default: 'en' },
    state: { type: String, enum: OUTBOX_STATES, default: 'queued' },
    /** Claims so far; each claim is also a unique document in outbox_claims. */
    attempts: { type: Number, default: 0 },
    nextAttemptAt: { type: Date, required: true },
    claimedBy: { type: String },
    claimedAt: { type: Date },
    sentAt: { type: Date },
    /** The Message-ID the SMTP server accepted. */
    messageId: { type: String },
    /** The SMTP server's reply or the connection error of the last attempt. */
    lastError: { type: String },
    /** The server refused the address for good (5xx): never retried. */
    permanent: { type: Boolean, default: false },
    /** Why a message was not sent: unsubscribed, suppressed, inactive, completed, revoked. */
    skipReason: { type: String },
    /** Who resolved an unknown message, and how. */
    resolvedBy: { type: String },
  },
  { timestamps: true },
);
// The invariant "at most one message per campaign, contact, kind and round" lives in this index.
outboxSchema.index({ campaign: 1, contact: 1, kind: 1, round: 1 }, { unique: true });
outboxSchema.index({ state: 1, nextAttemptAt: 1 });
outboxSchema.index({ campaign: 1, state: 1 });

export type OutboxMessage = InferSchemaType<typeof outboxSchema> & {
  _id: Types.ObjectId;
  campaign: Types.ObjectId;
  contact: Types.ObjectId;
  invitation: Types.ObjectId;
};
export type OutboxModel = Model<OutboxMessage>;

/**
 * A claim of one attempt of one message: _id is "<message id>:<attempt>".
 * FerretDB v1 applies findOneAndUpdate as a read followed by a write, so two
 * workers could both "win" a conditional update; inserting a document with a
 * unique _id is the one write that can succeed only once, whatever the engine.
 */
const outboxClaimSchema = new Schema(
  {
    _id: { type: String, required: true },
    message: { type: Schema.Types.ObjectId, required: true },
    worker: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);

export type OutboxClaim = InferSchemaType<typeof outboxClaimSchema>;

/** Addresses the SMTP server refused permanently (or that a coordinator blocked): never mailed again. */
const suppressionSchema = new Schema(
  {
    email: { type: String, required: true, unique: true, lowercase: true, trim: true },
    reason: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);

export type Suppression = InferSchemaType<typeof suppressionSchema>;

export function defineOutboxModels(connection: Connection) {
  return {
    Outbox: connection.model('Outbox', outboxSchema, 'outbox') as OutboxModel,
    OutboxClaim: connection.model('OutboxClaim', outboxClaimSchema, 'outbox_claims') as Model<OutboxClaim>,
    Suppression: connection.model('Suppression', suppressionSchema, 'suppressions') as Model<Suppression>,
  };
}
