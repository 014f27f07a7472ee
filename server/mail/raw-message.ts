import { randomBytes } from 'node:crypto';
import type { SendMailOptions } from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import { foldLines, hasLongerLines, isPlainText } from 'nodemailer/lib/mime-funcs';
import { encode as encodeQuotedPrintable, wrap as wrapQuotedPrintable } from 'nodemailer/lib/qp';
import type { ComposedMessage } from './mail-message.ts';
import { PLAIN_ADDRESS } from './mail-transport.ts';

/**
 * Where the sender tells what an operator should know: the platform's pino
 * logger (index.ts, run-sender.ts), or the command line's output (campaign:send).
 */
export interface MailWarnings {
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * The composed email (composeMessage) as the MIME text nodemailer would write
 * for it, built in one go and handed to the transport ready (`raw`), with its
 * envelope and Message-ID, which passes it to its pool as it is
 * (mail-transport.ts). nodemailer builds each message as a tree of
 * streams (one per part and encoder), parses its addresses and normalizes
 * every header key again, and writes each piece of the result to the socket
 * on its own: about half of the sender's CPU per message. Here the headers
 * that all the messages of a campaign's wording share (From, Reply-To,
 * Subject, List-Unsubscribe-Post, a test's marker) are taken once from
 * nodemailer's own build of that wording; a message adds its To,
 * List-Unsubscribe, Message-ID, Date and boundary, and its two parts
 * encoded with nodemailer's quoted-printable functions, by nodemailer's
 * rules (7bit when plain and short-lined, else quoted-printable).
 *
 * The bytes are nodemailer's: the first message of each wording is built both
 * ways (with the same date and boundary) and compared, and a wording whose
 * messages differ is composed by nodemailer from then on. A message outside
 * what this builder writes (an address or a link that is not plain ASCII, a
 * part that nodemailer would encode in base64) is composed by nodemailer too.
 * tests/mail/raw-message.test.ts compares messages received by a real SMTP
 * server both ways. A wording that fails the comparison is logged once, as a
 * warning, on `logger` (the sender's).
 */
export async function readyMessage(mail: ComposedMessage, logger?: MailWarnings): Promise<SendMailOptions> {
  const wording = wordingOf(mail);
  const raw = rawMessage(mail, wording);
  // A message outside the builder says nothing of its wording: the next one is checked.
  if (raw === undefined) return mail;
  wording.check ??= sameAsComposed(mail, wording, logger).catch(() => false);
  return (await wording.check) ? { raw, envelope: { from: addressOf(mail.from), to: [mail.to] }, messageId: mail.messageId } : mail;
}

/** A wording's shared headers, in nodemailer's order, and whether its messages are built here. */
interface Wording {
  /** Each header as written, or the name of one that every message writes with its own value. */
  headers: Array<{ line: string } | { own: OwnHeader }>;
  check?: Promise<boolean>;
}

type OwnHeader = 'To' | 'List-Unsubscribe' | 'Message-ID' | 'Date' | 'Content-Type';
const OWN_HEADERS: readonly string[] = ['To', 'List-Unsubscribe', 'Message-ID', 'Date', 'Content-Type'] satisfies OwnHeader[];

/** The wordings seen, by their shared headers' values: a campaign has a few (kinds × languages), a process a few campaigns. */
const wordings = new Map<string, Wording>();

function wordingOf(mail: ComposedMessage): Wording {
  const { 'List-Unsubscribe': _unsubscribe, ...shared } = mail.headers;
  const key = JSON.stringify([mail.from, mail.replyTo ?? '', mail.subject, shared]);
  let wording = wordings.get(key);
  if (wording === undefined) {
    if (wordings.size > 1000) wordings.clear();
    wording = { headers: sharedHeaders(mail) };
    wordings.set(key, wording);
  }
  return wording;
}

/** nodemailer's header block for the wording, split into its headers (a folded header is one). */
function sharedHeaders(mail: ComposedMessage): Wording['headers'] {
  const root = new MailComposer({ ...mail, text: 'x', html: 'x' }).compile() as unknown as { buildHeaders(): string };
  const headers: string[] = [];
  for (const line of root.buildHeaders().split('\r\n')) {
    if (/^[ \t]/.test(line) && headers.length > 0) headers[headers.length - 1] += `\r\n${line}`;
    else headers.push(line);
  }
  return headers.map((line) => {
    const name = line.slice(0, line.indexOf(':'));
    return OWN_HEADERS.includes(name) ? { own: name as OwnHeader } : { line };
  });
}

/** A value written as is by nodemailer: printable ASCII (folded at spaces when long). */
const PLAIN_VALUE = /^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/;

function rawMessage(mail: ComposedMessage, wording: Wording, at: { date?: Date; baseBoundary?: string } = {}): string | undefined {
  const unsubscribe = mail.headers['List-Unsubscribe'];
  if (!PLAIN_ADDRESS.test(mail.to) || !PLAIN_VALUE.test(unsubscribe) || !/^<[\x21-\x3d\x3f-\x7e]+>$/.test(mail.messageId)) return undefined;
  const text = part('text/plain; charset=utf-8', mail.text);
  const html = part('text/html; charset=utf-8', mail.html);
  if (text === undefined || html === undefined) return undefined;
  // As nodemailer makes them: the root node's boundary, and the date at the time of sending.
  const boundary = `--_NmP-${at.baseBoundary ?? randomBytes(8).toString('hex')}-Part_1`;
  const own: Record<OwnHeader, string> = {
    To: mail.to,
    'List-Unsubscribe': unsubscribe,
    'Message-ID': mail.messageId,
    Date: (at.date ?? new Date()).toUTCString().replace(/GMT/, '+0000'),
    'Content-Type': `multipart/alternative; boundary="${boundary}"`,
  };
  const headers = wording.headers.map((header) => ('line' in header ? header.line : foldLines(`${header.own}: ${own[header.own]}`, 76)));
  return `${headers.join('\r\n')}\r\n\r\n--${boundary}\r\n${text}\r\n--${boundary}\r\n${html}\r\n--${boundary}--\r\n`;
}

/** One text part as nodemailer writes it, or undefined when it would write it in base64. */
function part(contentType: string, content: string): string | undefined {
  let encoding: string;
  let body: string;
  if (isPlainText(content) && !hasLongerLines(content, 76)) {
    encoding = '7bit';
    body = content;
  } else if (prefersQuotedPrintable(content)) {
    encoding = 'quoted-printable';
    body = wrapQuotedPrintable(encodeQuotedPrintable(content), 76);
  } else {
    return undefined;
  }
  return `Content-Type: ${contentType}\r\nContent-Transfer-Encoding: ${encoding}\r\n\r\n${body}`;
}

/** nodemailer's choice for a text: quoted-printable when it has more Latin letters than bytes to encode, else base64. */
function prefersQuotedPrintable(value: string): boolean {
  let encoded = 0;
  let latin = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x08 || code === 0x0b || code === 0x0c || (code >= 0x0e && code <= 0x1f) || code >= 0x80) encoded++;
    else if ((code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) latin++;
  }
  return encoded < latin;
}

/** Whether this message built here is, byte for byte, what nodemailer composes (same date and boundary). */
async function sameAsComposed(mail: ComposedMessage, wording: Wording, logger?: MailWarnings): Promise<boolean> {
  const at = { date: new Date(), baseBoundary: randomBytes(8).toString('hex') };
  const raw = rawMessage(mail, wording, at) ?? '';
  const composed = (await new MailComposer({ ...mail, ...at }).compile().build()).toString('latin1');
  if (composed === raw) return true;
  let differsAt = 0;
  while (differsAt < raw.length && raw[differsAt] === composed[differsAt]) differsAt += 1;
  // The subject names the wording (a campaign's, in one language); no address or link of the contact is logged.
  logger?.warn(
    { subject: mail.subject, builtLength: raw.length, composedLength: composed.length, differsAt },
    "emails of this wording are composed by nodemailer: the message built for sending differs from nodemailer's composition",
  );
  return false;
}

/** The address part of a From value: the envelope's sender. */
function addressOf(from: ComposedMessage['from']): string {
  return typeof from === 'string' ? (/<([^>]+)>/.exec(from)?.[1] ?? from.trim()) : from.address;
}

/** For tests: the message as built here (undefined when nodemailer composes it), with the date and boundary given. */
export function rawMessageForTest(mail: ComposedMessage, at: { date: Date; baseBoundary: string }): string | undefined {
  return rawMessage(mail, wordingOf(mail), at);
}
