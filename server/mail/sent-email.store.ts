import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Schema, mongo, type Connection, type Model, type Types } from 'mongoose';
import type { SendMailOptions } from 'nodemailer';
import { insertIgnoringDuplicates } from './outbox.service.ts';

/**
 * An email as it was sent: its headers and its text and HTML bodies, _id the
 * outbox message's id. Kept apart from the outbox because the sender reads
 * the outbox in bulk (on FerretDB the cost of a bulk read grows with the
 * values per document) while these are read only by _id: by an access
 * request, and removed by an erasure or a retention purge. Written once,
 * after the relay accepted the message (a unique insert: the first copy stays).
 * The headers and bodies, as one JSON text, are kept compressed (`packed`)
 * against a base (`base`, see SentEmailBase): the same campaign's email with
 * example values, so that what is stored per email is mostly what is
 * personal in it (some 120 bytes instead of 2 KB). Nothing ever filters on
 * them, and on FerretDB v1 the cost of an insert grows with the size of the
 * document: 0.37 ms of the engine's CPU per 2 KB email against 0.09 ms per
 * claim-sized document (20 per insert, `npm run bench:db-writes`), the
 * largest share of the database's work per message sent. Emails kept by
 * older versions (one JSON string `email`, or fields) are read as they are.
 */
const sentEmailSchema = new Schema(
  {
    _id: { type: Schema.Types.ObjectId, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    sentAt: { type: Date, required: true },
    /** The JSON of { headers, text, html } compressed (raw deflate) with the base's text as its dictionary. */
    packed: { type: Buffer },
    /** The _id of the SentEmailBase that `packed` needs. */
    base: { type: String },
    /** Older versions: the JSON of { headers, text, html }, or the headers and bodies as fields. */
    email: { type: String },
    headers: { type: Schema.Types.Mixed },
    text: { type: String },
    html: { type: String },
  },
  { versionKey: false, minimize: false },
);

/**
 * A base of emails as sent: the JSON of a campaign's email (a kind, a
 * language, its texts at the time) composed with example values, never a
 * contact's: it holds nothing personal, so an erasure or a retention purge
 * of the emails leaves it. Its _id is a hash of its text, so the same base
 * written by two senders, or by every pass, is one document (a unique
 * insert), and a base never changes once an email needs it.
 */
const sentEmailBaseSchema = new Schema(
  {
    _id: { type: String, required: true },
    text: { type: String, required: true },
  },
  { versionKey: false },
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

/** As stored: packed against a base, or (older versions) the headers and bodies in `email` or as fields. */
type StoredSentEmail = Omit<SentEmail, 'headers'> & { packed?: mongo.Binary | Buffer; base?: string; email?: string; headers?: Record<string, string> };

export function defineSentEmailModel(connection: Connection) {
  return {
    SentEmail: connection.model('SentEmail', sentEmailSchema, 'sent_emails') as Model<StoredSentEmail>,
    SentEmailBase: connection.model('SentEmailBase', sentEmailBaseSchema, 'sent_email_bases') as Model<{ _id: string; text: string }>,
  };
}

type SentEmailModels = ReturnType<typeof defineSentEmailModel>;

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

/** The headers and bodies of a composed message as one text: what is kept of an email, and what a base is. */
export function emailText(mail: SendMailOptions & { messageId: string }): string {
  return JSON.stringify({
    headers: headersOf(mail),
    text: typeof mail.text === 'string' ? mail.text : undefined,
    html: typeof mail.html === 'string' ? mail.html : undefined,
  });
}

/** A base's _id: a hash of its text (the same text is the same base, whoever writes it). */
function baseIdOf(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

/** An email as sent and the base (emailText of an example, nothing personal) it is kept against. */
type Sent = { message: { _id: Types.ObjectId; campaign: Types.ObjectId }; mail: SendMailOptions & { messageId: string }; sentAt: Date; base: string };

/** A base as a keeper uses it: its _id, its text as a dictionary, and whether it is written. */
type PreparedBase = { _id: string; dictionary: Buffer; written: boolean };

/**
 * Keeps the messages the relay has just accepted, together (the sender writes
 * them with the outcomes, behind the sending): their bases first, so that no
 * kept email needs a base that is not there (`prepared`, a keeper's bases by
 * text, is hashed and written once per pass). Never throws: the messages
 * have gone, and a failure here must not turn one into a retry (a second
 * copy); the failure is logged and the access export then lacks these bodies.
 */
export async function keepSentEmails(models: SentEmailModels, sent: readonly Sent[], prepared: Map<string, PreparedBase> = new Map()): Promise<void> {
  if (sent.length === 0) return;
  try {
    for (const { base } of sent) if (!prepared.has(base)) prepared.set(base, { _id: baseIdOf(base), dictionary: Buffer.from(base), written: false });
    const bases = [...new Set(sent.map((s) => s.base))].flatMap((text) => (prepared.get(text)!.written ? [] : [{ _id: prepared.get(text)!._id, text }]));
    await insertIgnoringDuplicates(models.SentEmailBase.collection, bases);
    for (const { text } of bases) prepared.get(text)!.written = true;
    await insertIgnoringDuplicates(
      models.SentEmail.collection,
      sent.map(({ message, mail, sentAt, base }) => {
        const { _id, dictionary } = prepared.get(base)!;
        // Level 1: the text is mostly the dictionary's, and the sender's CPU is what limits its rate.
        return { _id: message._id, campaign: message.campaign, sentAt, base: _id, packed: deflateRawSync(emailText(mail), { level: 1, dictionary }) };
      }),
    );
  } catch (error) {
    console.error(`The sent emails ${sent.map((s) => String(s.message._id)).join(', ')} could not be kept for access requests:`, error);
  }
}

/**
 * Keeps the emails of a sender's pass in batches of `batch`, behind the
 * sending, and the rest at the end of the pass (flush). On the embedded
 * engine a batched insert costs per document about half of what inserts of
 * a few cost (`npm run bench:db-writes`). They are no part of any outcome: a
 * sender killed before the flush leaves up to two batches of its sent
 * messages without their text for the access export, as a failed write
 * does; 20 keeps that loss to what one window of a default sender holds,
 * for most of the saving. Each base is written once per keeper (a pass).
 */
export function sentEmailKeeper(models: SentEmailModels, batch = 20) {
  let waiting: Sent[] = [];
  let keeping: Promise<void> = Promise.resolve();
  const prepared = new Map<string, PreparedBase>();
  const keep = () => {
    const sent = waiting;
    waiting = [];
    // One write at a time, so that at most two batches are held in memory.
    keeping = keeping.then(() => keepSentEmails(models, sent, prepared));
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

/** The kept emails of these outbox messages (read by _id, the one index-backed look-up on FerretDB v1), and the bases they need. */
export async function findSentEmails(models: SentEmailModels, messageIds: readonly Types.ObjectId[]): Promise<SentEmail[]> {
  if (messageIds.length === 0) return [];
  const stored = await models.SentEmail.find({ _id: { $in: messageIds } }).lean<StoredSentEmail[]>();
  const baseIds = [...new Set(stored.flatMap((s) => (s.base ? [s.base] : [])))];
  const bases = new Map((await Promise.all(baseIds.map((id) => models.SentEmailBase.findById(id).lean()))).flatMap((b) => (b ? [[b._id, Buffer.from(b.text)] as const] : [])));
  return stored.map(({ packed, base, email, headers, text, html, ...rest }) => {
    if (packed && base) {
      const dictionary = bases.get(base);
      // A base is written before any email that needs it, and never removed while the platform runs.
      if (!dictionary) throw new Error(`The base ${base} of the kept email ${String(rest._id)} is missing.`);
      const bytes = packed instanceof mongo.Binary ? Buffer.from(packed.buffer) : packed;
      return { ...rest, ...(JSON.parse(inflateRawSync(bytes, { dictionary }).toString('utf8')) as Pick<SentEmail, 'headers' | 'text' | 'html'>) };
    }
    return { ...rest, ...(email ? (JSON.parse(email) as Pick<SentEmail, 'headers' | 'text' | 'html'>) : { headers: headers ?? {}, text, html }) };
  });
}

/** Removes the kept emails of these outbox messages (erasure, retention). */
export async function removeSentEmails(models: SentEmailModels, messageIds: readonly Types.ObjectId[]): Promise<void> {
  if (messageIds.length) await models.SentEmail.deleteMany({ _id: { $in: messageIds } });
}
