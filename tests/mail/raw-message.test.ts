import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SendMailOptions, Transporter } from 'nodemailer';
import { composeMessage, type MessageInput } from '../../server/mail/mail-message.ts';
import { createMailTransport } from '../../server/mail/mail-transport.ts';
import { readyMessage } from '../../server/mail/raw-message.ts';
import { captureLog } from '../helpers/log-capture.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

let sink: SmtpSink;
let transport: Transporter;

beforeAll(async () => {
  sink = await startSmtpSink();
  transport = createMailTransport({ url: sink.url, ratePerSecond: 1000, maxConnections: 2 });
});
afterAll(async () => {
  transport.close();
  await sink.close();
});

let sequence = 0;

/** One contact's email, with what varies between the platform's emails: wording, language, sender name, reply-to, the contact's values. */
function email(options: { campaignName?: string; kind?: MessageInput['kind']; language?: MessageInput['language']; senderName?: string; replyTo?: string; name?: string; institution?: string; to?: string; started?: boolean }) {
  sequence += 1;
  const language = options.language ?? 'en';
  return composeMessage({
    campaign: { name: options.campaignName ?? `Mobilité ${sequence}`, closesAt: new Date('2031-06-30T12:00:00Z'), senderName: options.senderName, replyTo: options.replyTo, templates: [] } as unknown as MessageInput['campaign'],
    kind: options.kind ?? 'invitation',
    language,
    from: 'Survey <survey@survey.test>',
    to: options.to ?? `contact${sequence}@school.example`,
    messageId: `<raw${sequence}0000000000000000@survey.test>`,
    privacyLink: `https://survey.test/privacy/c${sequence}?lang=${language}`,
    values: {
      contactName: options.name ?? 'Ann Lee',
      institutionName: options.institution ?? 'Example College',
      link: `https://survey.test/s/${'A'.repeat(40)}${sequence}`,
      unsubscribeLink: `https://survey.test/u/${'B'.repeat(60)}${sequence}`,
      started: options.started ?? false,
    },
  });
}

/** Sends the options and returns the message as the relay received it, with its envelope and the Message-ID the transport reported. */
async function received(options: SendMailOptions) {
  const before = sink.messages.length;
  const info = await transport.sendMail(options);
  await expect.poll(() => sink.messages.length).toBe(before + 1);
  const message = sink.messages[before]!;
  return {
    envelope: { from: message.from, to: message.to },
    messageId: info.messageId,
    // The date and the multipart boundary are made anew for every message, whoever builds it.
    raw: message.raw.replace(/^Date: .*$/m, 'Date: (date)').replace(/--_NmP-[0-9a-f]{16}-Part_1/g, '(boundary)'),
  };
}

describe('an email handed to the relay ready-built', () => {
  it('arrives byte for byte as nodemailer composes it: headers, RFC 8058 one-click, UTF-8, line lengths, Message-ID and envelope', async () => {
    const cases = [
      email({}),
      email({ language: 'fr', name: 'Zoë Müller', institution: 'École professionnelle — Lycée des métiers' }),
      email({ language: 'de', senderName: 'Bundesinstitut für Berufsbildung', replyTo: 'team@survey.test', name: 'Jürgen Groß' }),
      email({ kind: 'reminder', language: 'fr', started: true, replyTo: 'team@survey.test' }),
      email({ kind: 'reminder', language: 'de' }),
      email({ kind: 'test', senderName: 'Survey team', name: 'Coordinator' }),
      // A name long enough to make a line longer than 76 in the text (quoted-printable, soft breaks), and one with '=' and a trailing space.
      email({ name: 'A'.repeat(90), institution: 'Name = value ' }),
      email({ language: 'fr', name: 'Ελένη Παπαδοπούλου', institution: 'Εθνικό Ίδρυμα Επαγγελματικής Κατάρτισης' }),
    ];
    for (const mail of cases) {
      const ready = await readyMessage(mail);
      // Built here, not composed by nodemailer (else this compares nodemailer with itself).
      expect(ready.raw, mail.subject).toBeTypeOf('string');
      const [composed, built] = [await received(mail), await received(ready)];
      expect(built.raw, mail.subject).toBe(composed.raw);
      expect(built.envelope).toEqual(composed.envelope);
      expect(built.messageId).toBe(mail.messageId);
      expect(composed.messageId).toBe(mail.messageId);
      expect(built.raw).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
      // The body's lines keep to 76 characters (7bit only when they do, else quoted-printable with soft breaks).
      const body = built.raw.slice(built.raw.indexOf('\r\n\r\n'));
      expect(body.split('\r\n').filter((line) => line.length > 76)).toEqual([]);
    }
  });

  it('goes to the pool as it is, nodemailer composing nothing: the relay gets it with its envelope, and the transport reports its Message-ID', async () => {
    // A transport of its own, whose compile step (nodemailer's, before it composes a message) notes each message it composes.
    const own = createMailTransport({ url: sink.url, ratePerSecond: 1000, maxConnections: 1 });
    const composedByNodemailer: unknown[] = [];
    own.use('compile', (mail, done) => {
      composedByNodemailer.push(mail.data.messageId);
      done();
    });
    try {
      const mail = email({ campaignName: 'Handed over as it is' });
      const ready = await readyMessage(mail);
      expect(ready.raw).toBeTypeOf('string');
      const before = sink.messages.length;
      const info = await own.sendMail(ready);
      await expect.poll(() => sink.messages.length).toBe(before + 1);
      expect(composedByNodemailer).toEqual([]);
      expect(info.messageId).toBe(mail.messageId);
      // As SMTP carries it: every line ending CRLF.
      expect(sink.messages[before]).toMatchObject({ from: 'survey@survey.test', to: [mail.to], messageId: mail.messageId, raw: String(ready.raw).replace(/\r?\n/g, '\r\n') });
      // An email as options to compose still goes through nodemailer.
      await own.sendMail(mail);
      expect(composedByNodemailer).toEqual([mail.messageId]);
    } finally {
      own.close();
    }
  });

  it('an address nodemailer would rewrite (capitals in its domain) goes to nodemailer, and arrives as it writes it; the next email of the wording is ready-built', async () => {
    const mail = email({ campaignName: 'Shared wording', to: 'Mixed.Case@School.Example' });
    const ready = await readyMessage(mail);
    expect(ready.raw).toBeUndefined();
    const [composed, built] = [await received(mail), await received(ready)];
    expect(built.raw).toBe(composed.raw);
    expect(built.raw).toMatch(/^To: Mixed\.Case@school\.example\r$/m);
    // That email said nothing of its wording: the next one is compared with nodemailer's composition and built here.
    const next = email({ campaignName: 'Shared wording' });
    const nextReady = await readyMessage(next);
    expect(nextReady.raw).toBeTypeOf('string');
    expect((await received(nextReady)).raw).toBe((await received(next)).raw);
  });

  it("a wording whose ready-built email differs from nodemailer's is composed by nodemailer, arrives as it writes it, and is logged once as a structured warning", async () => {
    // No template makes this (a body holds at most 20,000 characters): a text of over 64 KB with spaces at line ends,
    // which nodemailer's quoted-printable encoder wraps slice by slice (64 KB), unlike the one-go encoding here.
    const log = captureLog('warn');
    const long = (mail: ReturnType<typeof email>) => ({ ...mail, text: 'Grüße aus der Schule, danke! \n'.repeat(8000) });
    const mail = long(email({ campaignName: 'Very long text' }));
    const ready = await readyMessage(mail, log.logger);
    expect(ready.raw).toBeUndefined();
    const [composed, sent] = [await received(mail), await received(ready)];
    expect(sent.raw).toBe(composed.raw);
    const next = long(email({ campaignName: 'Very long text' }));
    expect((await readyMessage(next, log.logger)).raw).toBeUndefined();
    const warnings = log.lines.filter((line) => line.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ subject: mail.subject, msg: expect.stringContaining('composed by nodemailer') });
    expect(warnings[0]!.differsAt).toBeGreaterThan(0);
    expect(log.text()).not.toContain(mail.to);
  });
});
