import { Schema, type Connection, type InferSchemaType, type Model, type Types } from 'mongoose';
import { LANGUAGES } from '../shared/languages.ts';

/**
 * A `test` message is a campaign's email sent to the coordinator who asked for
 * it, through the same outbox and transport: it is never an invitation, never
 * counted as one, and carries the coordinator's user id in `contact`.
 */
export const MESSAGE_KINDS = ['invitation', 'reminder', 'test'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/**
 * The state of a message, derived from its claims and outcomes:
 * queued (no claim yet, or a retry is due) → sending (claimed, no outcome)
 * → sent | failed | skipped, or unknown when the worker that claimed it
 * disappeared before recording the outcome. An unknown message is never
 * sent again by itself: the coordinator decides.
 */
export const OUTBOX_STATES = ['queued', 'sending', 'sent', 'failed', 'unknown', 'skipped'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

/**
 * One email to one contact: the invitation (round 0) or the reminder of a
 * round. Written once when enqueued and not changed afterwards: on FerretDB
 * v1 (SQLite) every update scans the whole collection, while an insert stays
 * cheap, so a message moves forward by inserting its claim and its outcome
 * (below), never by updating this document. The subject and body are
 * rendered when the message is sent, and the personal link is derived again
 * then, so no token is ever stored here.
 */
const outboxSchema = new Schema(
  {
    campaign: { type: Schema.Types.ObjectId, ref: 'Campaign', required: true },
    /** The contact; for a test message, the user who asked for it. */
    contact: { type: Schema.Types.ObjectId, required: true },
    /** Absent for a test message: it has no personal link. */
    invitation: { type: Schema.Types.ObjectId, ref: 'Invitation' },
    kind: { type: String, enum: MESSAGE_KINDS, required: true },
    /**
     * 0 for the invitation, 1.. for reminder rounds; for tests, test number × 10
     * + the language's position (+ 3 for the reminder to those who started).
     */
    round: { type: Number, required: true, min: 0 },
    /** A test message's wording: the invitation or one of the reminder's two branches. */
    testWording: { type: String, enum: ['invitation', 'reminder', 'reminder-started'] },
    /** A test message's greeting name (the coordinator's). */
    recipientName: { type: String },
    to: { type: String, required: true, lowercase: true, trim: true },
    language: { type: String, enum: LANGUAGES, default: 'en' },
    /** Due from this moment (enqueue time). */
    nextAttemptAt: { type: Date, required: true },
  },
  { timestamps: true },
);
// The invariant "at most one message per campaign, contact, kind and round" lives in this index.
outboxSchema.index({ campaign: 1, contact: 1, kind: 1, round: 1 }, { unique: true });

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
 * A claim without an outcome is a message being sent.
 */
const outboxClaimSchema = new Schema(
  {
    _id: { type: String, required: true },
    message: { type: Schema.Types.ObjectId, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    attempt: { type: Number, required: true },
    worker: { type: String, required: true },
    at: { type: Date, required: true },
    /** The message's Message-ID, to look it up in the relay's log when the outcome is unknown. */
    messageId: { type: String },
  },
  { versionKey: false },
);

export type OutboxClaim = InferSchemaType<typeof outboxClaimSchema>;

export const OUTCOME_STATES = ['sent', 'retry', 'failed', 'skipped', 'unknown'] as const;
export type OutcomeState = (typeof OUTCOME_STATES)[number];

/**
 * What became of one claimed attempt, _id "<message id>:<attempt>" like its
 * claim. Being unique, the first outcome recorded for an attempt stands: a
 * worker that comes back after its claim was declared unknown cannot
 * silently overwrite that. `retry` (4xx, dropped connection) lets a next
 * attempt be claimed from nextAttemptAt on; the others are final.
 */
const outboxOutcomeSchema = new Schema(
  {
    _id: { type: String, required: true },
    message: { type: Schema.Types.ObjectId, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    attempt: { type: Number, required: true },
    state: { type: String, enum: OUTCOME_STATES, required: true },
    at: { type: Date, required: true },
    /** The Message-ID the SMTP server accepted. */
    messageId: { type: String },
    /** The SMTP server's reply or the connection error. */
    error: { type: String },
    /** The server refused for good (5xx). */
    permanent: { type: Boolean },
    /** The SMTP step that failed: RCPT TO (this address), MAIL FROM (the sender), DATA (the message), AUTH or CONN (the connection). */
    smtpCommand: { type: String },
    /** The relay, not this message, was at fault: the campaign was paused and the attempt does not count as a failure of the message. */
    relayError: { type: Boolean },
    nextAttemptAt: { type: Date },
    /** Why a message was not sent: unsubscribed, suppressed, inactive, completed, revoked, campaign closed. */
    skipReason: { type: String },
    /** Who resolved an unknown outcome, and how. */
    resolvedBy: { type: String },
    /**
     * A sent message's email as the relay received it, for access requests:
     * packed against a base (sent-email.store.ts), whose _id is `sentEmailBase`.
     * Written with the outcome, in its insert; pages never read it.
     */
    sentEmail: { type: Buffer },
    sentEmailBase: { type: String },
  },
  { versionKey: false },
);

export type OutboxOutcome = InferSchemaType<typeof outboxOutcomeSchema>;

/**
 * Addresses never mailed again: the SMTP server refused the recipient with
 * a 5xx to RCPT TO, or the contact unsubscribed. Only a reply about this
 * recipient puts an address here; a relay that refuses the sender, the
 * login or the message pauses the campaign instead (SendingPause). A
 * coordinator can lift a refusal (audited), not an unsubscription.
 */
const suppressionSchema = new Schema(
  {
    email: { type: String, required: true, unique: true, lowercase: true, trim: true },
    reason: { type: String, required: true },
    at: { type: Date, required: true },
    /** The campaign whose message was refused, when a refusal put the address here. */
    campaign: { type: Schema.Types.ObjectId },
  },
  { versionKey: false },
);

export type Suppression = InferSchemaType<typeof suppressionSchema>;

/**
 * Sending of a campaign paused because the relay failed in a way that is
 * not about one recipient (connection, login, sender, message). Insert-only,
 * like everything the sender writes: the newest pause of a campaign (by
 * `at`) decides, until `until`; a coordinator's "try again now" is a pause
 * that ends at once. A few documents per incident, read whole by the sender.
 */
const sendingPauseSchema = new Schema(
  {
    _id: { type: String, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    at: { type: Date, required: true },
    until: { type: Date, required: true },
    /** The relay's answer or the connection error, e.g. "530 5.7.0 Authentication required". */
    error: { type: String, required: true },
    smtpCommand: { type: String },
    /** Pauses in a row without a message getting through; the pause doubles with each. */
    streak: { type: Number, required: true },
    by: { type: String, required: true },
  },
  { versionKey: false },
);

export type SendingPause = InferSchemaType<typeof sendingPauseSchema>;

/**
 * A sender's sign of life, _id its worker id, written (by _id, which
 * FerretDB answers from its index) while it has messages in flight. Another
 * sender declares a claim unknown only when its worker has been silent for
 * the lease, never because a slow relay makes one send take long.
 */
const outboxWorkerSchema = new Schema(
  {
    _id: { type: String, required: true },
    at: { type: Date, required: true },
    /** It has claims whose outcome it has not recorded yet; a busy worker silent for the lease has died. */
    busy: { type: Boolean, required: true },
    /** When it last became busy (absent while idle): every claim it has left without an outcome is as young or younger, for it beats before it claims. */
    since: { type: Date },
    /**
     * Set by another sender's pass while it is silent: the fingerprint of its
     * claims since `since` and their outcomes' states, as that pass journalled
     * them, so that later passes journal them again only when they changed.
     */
    journalled: { type: String },
  },
  { versionKey: false },
);

export type OutboxWorker = InferSchemaType<typeof outboxWorkerSchema>;

/**
 * One document, _id "outbox", whose token changes whenever something may
 * have become due (messages enqueued, a retry or resend decided, a pause
 * lifted). An idle sender reads it by _id instead of the outbox, and reads
 * the outbox again only when it changed or a due time it knows has come.
 */
const outboxSignalSchema = new Schema({ _id: { type: String, required: true }, token: { type: String, required: true }, at: { type: Date, required: true } }, { versionKey: false });

export type OutboxSignal = InferSchemaType<typeof outboxSignalSchema>;

/**
 * What can still be sent: one small document per attempt that is due, _id
 * "<message id>:<attempt>" like the claim that will take it: a message never
 * claimed (attempt 0), or whose last attempt asked for a retry; or, for the
 * first attempts of messages enqueued together, one batch entry (_id
 * "batch:<id>") naming them all, removed once each of them is claimed
 * (DueBatches in outbox.service.ts; older databases' entries of one first
 * attempt each are read as before). On FerretDB
 * any read but by _id scans the whole collection, and the outbox with its
 * claims and outcomes grows with every message ever sent; the sender reads
 * this instead, which holds only what is left to send. It is a guide, never
 * the judge: an attempt is sent only by winning its unique claim, and an
 * attempt after the first only when the previous one's outcome is a retry,
 * so a stale entry (a crash between an outcome and the entry's removal) can
 * never send anything twice; it is removed when found stale. Written after
 * the message (enqueued) or the retry (decided) it stands for, removed after
 * the attempt's outcome (a batch entry: once its attempts are claimed), each
 * by _id. A crash between a message (or a
 * coordinator's retry) and its entry leaves a message without one; the intent
 * written before them (OutboxIntent) lets a sender put it back. The view is
 * built from the outbox once, on a database's first start on this version
 * (rebuildDueView).
 */
const outboxDueSchema = new Schema(
  {
    _id: { type: String, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    /** Due from this moment (and not before the end of the campaign's pause). */
    at: { type: Date, required: true },
    /** The message's own fields (contact, invitation, kind, round, to, language, a test's wording and name) as one JSON string: a read costs per value. */
    message: { type: String },
    /**
     * Instead of `message`, in a batch entry: the first attempts of a batch of
     * messages enqueued together (one campaign, up to a thousand), each with its
     * _id and its own fields, as one JSON string. One entry written and one
     * removed per batch instead of one per message (see DueBatches).
     */
    messages: { type: String },
  },
  { versionKey: false },
);

export type OutboxDue = InferSchemaType<typeof outboxDueSchema> & { campaign: Types.ObjectId };

/**
 * A batch of writes that the due view must follow, written before them and
 * removed once their due entries exist: messages being enqueued (each that
 * was written gets its first attempt's entry) or attempts a coordinator turns
 * into retries (each whose outcome says retry gets the next attempt's entry).
 * A crash in between leaves the intent behind, and a sender puts back the
 * missing entries from it, by _id look-ups of what it names (repairIntents),
 * instead of reading the whole outbox at every start. Only intents older than
 * a grace period are repaired: a younger one is a writer at work. A few
 * documents (one per batch in progress), read whole.
 */
const outboxIntentSchema = new Schema(
  {
    _id: { type: String, required: true },
    at: { type: Date, required: true },
    /** Messages being enqueued (their _ids, chosen before the insert). */
    messages: { type: [Schema.Types.ObjectId], default: undefined },
    /** Attempts being turned into retries (or an unknown one marked as sent), "<message id>:<attempt>" like their outcomes. */
    retries: { type: [String], default: undefined },
    /** When a repair last found some of them not (yet) written: it looks again a grace period later. */
    checkedAt: { type: Date },
  },
  { versionKey: false },
);

export type OutboxIntent = InferSchemaType<typeof outboxIntentSchema> & { messages?: Types.ObjectId[]; retries?: string[] };

/**
 * The coordinator's decision "send the invitations of this campaign", _id
 * "<campaign>:<n>" for the campaign's n-th such decision (the confirmation
 * form names n, so two clicks or two platform instances record it once: a
 * unique insert). The request records it and answers; the invitations are
 * queued in the background (invitation-send.service.ts), which writes the
 * progress here by _id, and any instance resumes a decision left unfinished
 * by a crash: queueing is idempotent per (campaign, contact, kind, round).
 */
const invitationSendSchema = new Schema(
  {
    _id: { type: String, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    n: { type: Number, required: true },
    /** The number of emails the coordinator confirmed. */
    expected: { type: Number, required: true },
    by: { type: String, required: true },
    at: { type: Date, required: true },
    /** When the background found the count still right (checked once: after it, part is queued). */
    checkedAt: { type: Date },
    /** The newest personal link (invitation id) counted at the check: a resumed run queues none newer. */
    newestLink: { type: String },
    /** Invitation emails queued for this decision so far. */
    queued: { type: Number, required: true, default: 0 },
    /** The last sign of progress; a decision unfinished and silent for a while is resumed by any instance. */
    progressAt: { type: Date },
    finishedAt: { type: Date },
    /** Set when nothing was queued because the count had changed since the confirmation. */
    refused: { type: String },
  },
  { versionKey: false },
);

export type InvitationSend = InferSchemaType<typeof invitationSendSchema> & { campaign: Types.ObjectId };

export function defineOutboxModels(connection: Connection) {
  return {
    Outbox: connection.model('Outbox', outboxSchema, 'outbox') as OutboxModel,
    OutboxClaim: connection.model('OutboxClaim', outboxClaimSchema, 'outbox_claims') as Model<OutboxClaim>,
    OutboxOutcome: connection.model('OutboxOutcome', outboxOutcomeSchema, 'outbox_outcomes') as Model<OutboxOutcome>,
    Suppression: connection.model('Suppression', suppressionSchema, 'suppressions') as Model<Suppression>,
    OutboxWorker: connection.model('OutboxWorker', outboxWorkerSchema, 'outbox_workers') as Model<OutboxWorker>,
    OutboxSignal: connection.model('OutboxSignal', outboxSignalSchema, 'outbox_signals') as Model<OutboxSignal>,
    OutboxDue: connection.model('OutboxDue', outboxDueSchema, 'outbox_due') as Model<OutboxDue>,
    OutboxIntent: connection.model('OutboxIntent', outboxIntentSchema, 'outbox_intents') as Model<OutboxIntent>,
    SendingPause: connection.model('SendingPause', sendingPauseSchema, 'sending_pauses') as Model<SendingPause>,
    InvitationSend: connection.model('InvitationSend', invitationSendSchema, 'invitation_sends') as Model<InvitationSend>,
  };
}
