import { Schema, type Connection, type Model, type Types } from 'mongoose';
import type { SendMailOptions } from 'nodemailer';
import { insertIgnoringDuplicates } from './outbox.service.ts';

/**
 * An email as it was sent: its headers and its text and HTML bodies, _id the
 * outbox message's id. Kept apart from the outbox because the sender reads
 * the outbox in bulk (on FerretDB the cost of a bulk read grows with the
 * values per document) while these are read only by _id: by an access
 * request, and removed by an erasure or a retention purge. Written once,
 * after the relay accepted the message (a unique insert: the first copy stays).
 * The headers and bodies are kept as one JSON string (`email`), since nothing
 * ever filters on them: on FerretDB v1 the cost of an insert grows with the
 * fields of the document, and one string of the same email cost the engine
 * 0.30 ms where headers, text and HTML as fields cost 0.43–0.51 ms (20 per
 * insert, 3,000 emails), the largest share of the database's work per
 * message sent. Emails kept by older versions have the fields; both are read.
 */
const sentEmailSchema = new Schema(
  {
    _id: { type: Schema.Types.ObjectId, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    sentAt: { type: Date, required: true },
    /** Header name → value as handed to the relay: From, To, Reply-To, Subject, Message-ID and the extra headers. */
    /** JSON of { headers, text, html } (see above). */
    email: { type: String },
    /** Older versions' fields, read as they are. */
    headers: { type: Schema.Types.Mixed },
    text: { type: String },
    html: { type: String },
  },
  { versionKey: false, minimize: false },
);

/** An email as sent, as its readers see it. */
export interface SentEmail {
  _id: Types.ObjectId;
  campaign: Types.ObjectId;
  sentAt: Date;
  headers: Record<string, string>;
  text?: string;
  html?: string;
}

/** As stored: the headers and bodies in `email`, or (older versions) as fields. */
type StoredSentEmail = Omit<SentEmail, 'headers'> & { email?: string; headers?: Record<string, string> };

export function defineSentEmailModel(connection: Connection) {
  return { SentEmail: connection.model('SentEmail', sentEmailSchema, 'sent_emails') as Model<StoredSentEmail> };
}

type SentEmailModels = { SentEmail: Model<StoredSentEmail> };

type AddressInput = string | { name?: string; address: string } | undefined | readonly AddressInput[];

/** An address header as text: "Name" <address>, several joined by commas. */
function addresses(value: unknown): string {
  const input = value as AddressInput;
  if (!input) return '';
  if (typeof input === 'string') return input;
  if (Array.isArray(input)) return input.map(addresses).join(', ');
  const one = input as { name?: string; address: string };
  return one.name ? `"${one.name.replace(/"/g, "'")}" <${one.address}>` : one.address;
}

/** The headers of a composed message as the relay received them. */
export function headersOf(mail: SendMailOptions & { messageId: string }): Record<string, string> {
  const extra = mail.headers && !Array.isArray(mail.headers) ? Object.entries(mail.headers).map(([name, value]) => [name, String(typeof value === 'object' && value && 'value' in value ? value.value : value)]) : [];
  return {
    From: addresses(mail.from),
    To: addresses(mail.to),
    ...(mail.replyTo ? { 'Reply-To': addresses(mail.replyTo) } : {}),
    Subject: String(mail.subject ?? ''),
    'Message-ID': mail.messageId,
    ...Object.fromEntries(extra),
  };
}

/**
 * Keeps the messages the relay has just accepted, together (the sender writes
 * them with the outcomes, behind the sending). Never throws: the messages
 * have gone, and a failure here must not turn one into a retry (a second
 * copy); the failure is logged and the access export then lacks these bodies.
 */
export async function keepSentEmails(
  models: SentEmailModels,
  sent: ReadonlyArray<{ message: { _id: Types.ObjectId; campaign: Types.ObjectId }; mail: SendMailOptions & { messageId: string }; sentAt: Date }>,
): Promise<void> {
  if (sent.length === 0) return;
  try {
    await insertIgnoringDuplicates(
      models.SentEmail.collection,
      sent.map(({ message, mail, sentAt }) => ({
        _id: message._id,
        campaign: message.campaign,
        sentAt,
        email: JSON.stringify({
          headers: headersOf(mail),
          text: typeof mail.text === 'string' ? mail.text : undefined,
          html: typeof mail.html === 'string' ? mail.html : undefined,
        }),
      })),
    );
  } catch (error) {
    console.error(`The sent emails ${sent.map((s) => String(s.message._id)).join(', ')} could not be kept for access requests:`, error);
  }
}

type Sent = Parameters<typeof keepSentEmails>[1][number];

/**
 * Keeps the emails of a sender's pass in batches of `batch`, behind the
 * sending, and the rest at the end of the pass (flush). On the embedded
 * engine a batched insert costs per document about half of what inserts of
 * a few cost (0.40 ms a document in hundreds, 0.70 ms in fives:
 * `npm run bench:db-writes`), and these are the largest documents the
 * sender writes. They are no part of any outcome: a sender killed before the
 * flush leaves up to two batches of its sent messages without their text for
 * the access export, as a failed write does; 20 keeps that loss to what one
 * window of a default sender holds, for most of the saving.
 */
export function sentEmailKeeper(models: SentEmailModels, batch = 20) {
  let waiting: Sent[] = [];
  let keeping: Promise<void> = Promise.resolve();
  const keep = () => {
    const sent = waiting;
    waiting = [];
    // One write at a time, so that at most two batches are held in memory.
    keeping = keeping.then(() => keepSentEmails(models, sent));
  };
  return {
    add(sent: readonly Sent[]) {
      waiting.push(...sent);
      if (waiting.length >= batch) keep();
    },
    async flush() {
      if (waiting.length > 0) keep();
      await keeping;
    },
  };
}

/** The kept emails of these outbox messages (read by _id, the one index-backed look-up on FerretDB v1). */
export async function findSentEmails(models: SentEmailModels, messageIds: readonly Types.ObjectId[]): Promise<SentEmail[]> {
  if (messageIds.length === 0) return [];
  const stored = await models.SentEmail.find({ _id: { $in: messageIds } }).lean<StoredSentEmail[]>();
  return stored.map(({ email, headers, text, html, ...rest }) => ({ ...rest, ...(email ? (JSON.parse(email) as Pick<SentEmail, 'headers' | 'text' | 'html'>) : { headers: headers ?? {}, text, html }) }));
}

/** Removes the kept emails of these outbox messages (erasure, retention). */
export async function removeSentEmails(models: SentEmailModels, messageIds: readonly Types.ObjectId[]): Promise<void> {
  if (messageIds.length) await models.SentEmail.deleteMany({ _id: { $in: messageIds } });
}
