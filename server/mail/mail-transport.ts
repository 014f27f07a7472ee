import type { Readable } from 'node:stream';
import nodemailer, { type SendMailOptions, type Transporter } from 'nodemailer';

/** How long the sender waits for the relay (SEND_CONNECT_TIMEOUT_SECONDS, SEND_REPLY_TIMEOUT_SECONDS). */
export interface SmtpTimeouts {
  /** To open the connection and get the greeting. */
  connectMs: number;
  /** For any answer once connected, the one to the end of the message's data included. */
  replyMs: number;
}

/**
 * RFC 5321 (4.5.3.2) asks a client to wait 10 minutes for the answer to the
 * end of the data: a relay that scans messages before accepting them can be
 * slow, and giving up early is what makes an unknown outcome.
 */
export const DEFAULT_SMTP_TIMEOUTS: SmtpTimeouts = { connectMs: 30_000, replyMs: 600_000 };

export interface TransportSettings {
  /** smtp://user:pass@host:port or smtps://... */
  url: string;
  ratePerSecond: number;
  maxConnections: number;
  timeouts?: SmtpTimeouts;
}

/**
 * Follows one message through the transport: `dataStarted` turns true when
 * the relay has accepted the envelope and the message's data starts flowing
 * to it. From then on an error without an SMTP answer (a timeout, a dropped
 * connection) leaves the outcome unknown: the relay may have taken the
 * message, and sending it again could deliver a second copy.
 */
export interface DeliveryTracker {
  readonly dataStarted: boolean;
}

/** What the transport's stream step fills in: the message stream as the connection will read it. */
interface StreamTracker extends DeliveryTracker {
  stream?: Readable;
}

/** The message options with a tracker that the transport's stream step sets. */
export function withTracker(mail: SendMailOptions): { mail: SendMailOptions; tracker: DeliveryTracker } {
  const tracker: StreamTracker = {
    stream: undefined,
    // nodemailer pipes the message into the connection only once the relay has answered DATA
    // with 354, and nothing reads the stream before: its first read is the data starting (the
    // pool itself asks the same of the stream before it requeues a message).
    get dataStarted() {
      return this.stream?.readableDidRead === true;
    },
  };
  return { mail: { ...mail, deliveryTracker: tracker } as SendMailOptions, tracker };
}

/**
 * A pooled SMTP transport: a few connections kept open and reused, and at
 * most `ratePerSecond` messages handed over per second, so a large campaign
 * neither floods the relay nor opens a connection per message. Timeouts are
 * the relay's, configured; they have nothing to do with the sender's lease
 * (a live sender's claims are kept alive by its heartbeat, however long a send takes).
 */
export function createMailTransport(settings: TransportSettings): Transporter {
  const timeouts = settings.timeouts ?? DEFAULT_SMTP_TIMEOUTS;
  const transport = nodemailer.createTransport({
    url: settings.url,
    pool: true,
    maxConnections: settings.maxConnections,
    maxMessages: 1000,
    rateDelta: 1000,
    rateLimit: settings.ratePerSecond,
    connectionTimeout: timeouts.connectMs,
    greetingTimeout: timeouts.connectMs,
    socketTimeout: timeouts.replyMs,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  transport.use('stream', (mail, done) => {
    const tracker = (mail.data as { deliveryTracker?: StreamTracker }).deliveryTracker;
    // The stream itself is kept, not wrapped: a stream more per message cost the sender about
    // as much CPU as composing the message.
    if (tracker)
      mail.message.processFunc((input: Readable) => {
        tracker.stream = input;
        return input;
      });
    done();
  });
  return transport;
}
