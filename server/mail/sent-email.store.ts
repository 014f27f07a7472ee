import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Schema, mongo, type Connection, type Model, type Types } from 'mongoose';
import type { SendMailOptions } from 'nodemailer';
import type { Models } from '../db/models.ts';
import { insertIgnoringDuplicates } from './outbox.service.ts';

/**
 * The emails as sent, kept for access requests: the headers and the text and
 * HTML bodies the relay received. A sent message's email is written in its
 * outcome (outbox.model.ts: `sentEmail`, `sentEmailBase`), in the same insert:
 * on FerretDB v1 a write costs per command and per document, and a document
 * and a command of their own for the emails were a tenth of the engine's work
 * per message sent. So the text is kept exactly when the outcome "sent" is,
 * and goes with it (erasure, retention, demo data). The headers and bodies,
 * as one JSON text, are compressed (raw deflate) against a base (SentEmailBase):
 * the same campaign's email with example values, so that what is stored per
 * email is mostly what is personal in it (some 120 bytes instead of 2 KB).
 * Pages read the outcomes without it (messageStatuses). Older versions kept
 * each email as a document of its own (`sent_emails`, _id the outbox
 * message's id: packed against a base, one JSON string `email`, or fields);
 * those are read and removed as they are.
 */
/** An email kept apart by an older version, _id the outbox message's id. */
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

/** A base as a packer uses it: its _id, its text as a dictionary, and whether it is written. */
type PreparedBase = { _id: string; dictionary: Buffer; written: boolean };

/** What a sent outcome carries of its email (see outbox.model.ts). */
export interface PackedEmail {
  sentEmail: Buffer;
  sentEmailBase: string;
}

/** An email accepted by the relay and the base (emailText of an example, nothing personal) it is packed against. */
type Sent = { mail: SendMailOptions & { messageId: string }; base: string };

/**
 * Packs the emails the relay has just accepted, for the sender to write in
 * their outcomes: their bases are written first, so that no kept email needs
 * a base that is not there (each base is hashed and written once per packer,
 * a sender's pass). Never throws: the messages have gone, and a failure here
 * must not hold up their outcomes or turn one into a retry (a second copy);
 * it is logged, and those outcomes are written without their email (the
 * access export then lacks these bodies).
 */
export function sentEmailPacker(models: SentEmailModels) {
  const prepared = new Map<string, PreparedBase>();
  return async (sent: ReadonlyArray<Sent | undefined>): Promise<Array<PackedEmail | undefined>> => {
    const some = sent.filter((s): s is Sent => s !== undefined);
    if (some.length === 0) return sent.map(() => undefined);
    try {
      for (const { base } of some) if (!prepared.has(base)) prepared.set(base, { _id: baseIdOf(base), dictionary: Buffer.from(base), written: false });
      const bases = [...new Set(some.map((s) => s.base))].flatMap((text) => (prepared.get(text)!.written ? [] : [{ _id: prepared.get(text)!._id, text }]));
      await insertIgnoringDuplicates(models.SentEmailBase.collection, bases);
      for (const { text } of bases) prepared.get(text)!.written = true;
      return sent.map((s) => {
        if (!s) return undefined;
        const { _id, dictionary } = prepared.get(s.base)!;
        // Level 1: the text is mostly the dictionary's, and the sender's CPU is what limits its rate.
        return { sentEmailBase: _id, sentEmail: deflateRawSync(emailText(s.mail), { level: 1, dictionary }) };
      });
    } catch (error) {
      console.error(`The emails of ${some.map((s) => s.mail.messageId).join(', ')} could not be kept for access requests:`, error);
      return sent.map(() => undefined);
    }
  };
}

/** An outcome as findSentEmails reads its email from it. */
type OutcomeWithEmail = { message: Types.ObjectId; campaign: Types.ObjectId; at: Date; sentEmail?: mongo.Binary | Buffer | null; sentEmailBase?: string | null };

/**
 * The kept emails of these outbox messages: from their outcomes (as the
 * caller read them, with `sentEmail`), and those older versions kept apart
 * (read by _id, the one index-backed look-up on FerretDB v1); with the bases they need.
 */
export async function findSentEmails(models: SentEmailModels, messageIds: readonly Types.ObjectId[], outcomes: readonly OutcomeWithEmail[] = []): Promise<SentEmail[]> {
  if (messageIds.length === 0) return [];
  const stored = await models.SentEmail.find({ _id: { $in: messageIds } }).lean<StoredSentEmail[]>();
  const withEmail = outcomes.filter((o) => o.sentEmail && o.sentEmailBase);
  const baseIds = [...new Set([...stored.flatMap((s) => (s.base ? [s.base] : [])), ...withEmail.map((o) => o.sentEmailBase!)])];
  const bases = new Map((await Promise.all(baseIds.map((id) => models.SentEmailBase.findById(id).lean()))).flatMap((b) => (b ? [[b._id, Buffer.from(b.text)] as const] : [])));
  const unpack = (id: Types.ObjectId, packed: mongo.Binary | Buffer, base: string) => {
    const dictionary = bases.get(base);
    // A base is written before any email that needs it, and never removed while the platform runs.
    if (!dictionary) throw new Error(`The base ${base} of the kept email ${String(id)} is missing.`);
    const bytes = packed instanceof mongo.Binary ? Buffer.from(packed.buffer) : packed;
    return JSON.parse(inflateRawSync(bytes, { dictionary }).toString('utf8')) as Pick<SentEmail, 'headers' | 'text' | 'html'>;
  };
  const older = stored.map(({ packed, base, email, headers, text, html, ...rest }) => {
    if (packed && base) return { ...rest, ...unpack(rest._id, packed, base) };
    return { ...rest, ...(email ? (JSON.parse(email) as Pick<SentEmail, 'headers' | 'text' | 'html'>) : { headers: headers ?? {}, text, html }) };
  });
  return [...older, ...withEmail.map((o) => ({ _id: o.message, campaign: o.campaign, sentAt: o.at, ...unpack(o.message, o.sentEmail!, o.sentEmailBase!) }))];
}

/** How many emails as sent are kept for a campaign (the retention plan's count). */
export async function countSentEmails(models: Pick<Models, 'SentEmail' | 'OutboxOutcome'>, campaign: Types.ObjectId): Promise<number> {
  const [older, inOutcomes] = await Promise.all([
    models.SentEmail.countDocuments({ campaign }),
    models.OutboxOutcome.countDocuments({ campaign, sentEmail: { $exists: true } }),
  ]);
  return older + inOutcomes;
}

/** Removes the emails older versions kept apart for these outbox messages (erasure, retention); those in outcomes go with the outcomes. */
export async function removeSentEmails(models: SentEmailModels, messageIds: readonly Types.ObjectId[]): Promise<void> {
  if (messageIds.length) await models.SentEmail.deleteMany({ _id: { $in: messageIds } });
}
