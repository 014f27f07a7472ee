import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import nodemailer, { type SendMailOptions, type SentMessageInfo, type Transporter } from 'nodemailer';

/**
 * How long the sender waits for the relay (SEND_CONNECT_TIMEOUT_SECONDS,
 * SEND_REPLY_TIMEOUT_MIN_SECONDS, SEND_REPLY_TIMEOUT_FACTOR, SEND_REPLY_TIMEOUT_SECONDS).
 * The wait for an answer follows the relay's observed speed: `replyFactor` ×
 * the slowest of its last answers to the end of a message's data, at least
 * `replyMinMs`, at most `replyMs`; before the relay has answered anything, `replyMs`.
 */
export interface SmtpTimeouts {
  /** To open the connection and get the greeting. */
  connectMs: number;
  /** The longest wait for any answer once connected, and the wait before the relay has shown its speed. */
  replyMs: number;
  /** The shortest wait, however fast the relay has been. */
  replyMinMs: number;
  /** How many times the slowest recent acceptance of a message the wait is. */
  replyFactor: number;
}

/**
 * RFC 5321 (4.5.3.2) asks a client to wait 10 minutes for the answer to the
 * end of the data: a relay that scans messages before accepting them can be
 * slow, and giving up early is what makes an unknown outcome. That is the
 * wait until the relay has answered; after that 10 × its slowest recent
 * answer, at least a minute (see Email in the README for why).
 */
export const DEFAULT_SMTP_TIMEOUTS: SmtpTimeouts = { connectMs: 30_000, replyMs: 600_000, replyMinMs: 60_000, replyFactor: 10 };

/** How many of the relay's latest answers to the end of the data the wait follows. */
const OBSERVED_ANSWERS = 20;

/**
 * The wait for the relay's answers, from the slowest of its last
 * OBSERVED_ANSWERS answers to the end of a message's data. Those are the
 * longest silences of a healthy session (RFC 5321 gives them the longest
 * timeout); the other answers (EHLO, MAIL, RCPT, DATA) come faster, so the
 * same wait bounds every phase, and a relay that stalls anywhere is given up
 * after it.
 */
class ReplyWait {
  private readonly answers = new Float64Array(OBSERVED_ANSWERS);
  private observed = 0;
  /** The wait in force, in ms. */
  current: number;

  constructor(private readonly timeouts: SmtpTimeouts) {
    this.current = timeouts.replyMs;
  }

  /** Notes one answer time; returns true when the wait changed. */
  observe(answerMs: number): boolean {
    this.answers[this.observed % OBSERVED_ANSWERS] = answerMs;
    this.observed += 1;
    let slowest = 0;
    for (let i = 0; i < Math.min(this.observed, OBSERVED_ANSWERS); i++) slowest = Math.max(slowest, this.answers[i]!);
    const { replyMs, replyMinMs, replyFactor } = this.timeouts;
    return this.set(Math.min(replyMs, Math.max(replyMinMs, Math.ceil(replyFactor * slowest))));
  }

  /**
   * Notes a wait after the data that ran out: the relay takes at least that
   * long now, so the wait grows to the factor times it (at most the longest
   * wait) instead of giving up on every next message after the same time.
   * Messages in flight together that time out together grow it once.
   */
  outwaited(silentMs: number): boolean {
    const { replyMs, replyFactor } = this.timeouts;
    return this.set(Math.min(replyMs, Math.max(this.current, Math.ceil(replyFactor * silentMs))));
  }

  private set(wait: number): boolean {
    if (wait === this.current) return false;
    this.current = wait;
    return true;
  }
}

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

/** When the connection finished reading a message's data (performance.now()), set by the transport's stream step (or the ready-built message's stream). */
interface AnswerTiming {
  dataEndedAt: number;
}

/**
 * A pooled SMTP transport: a few connections kept open and reused, and at
 * most `ratePerSecond` messages handed over per second, so a large campaign
 * neither floods the relay nor opens a connection per message. Timeouts are
 * the relay's; they have nothing to do with the sender's lease (a live
 * sender's claims are kept alive by its heartbeat, however long a send takes).
 *
 * nodemailer has one inactivity timeout per connection (its socket timeout),
 * not one per command. That one timeout follows the relay: each answer to the
 * end of a message's data is timed, and when the wait (ReplyWait) changes it
 * is given to the connections opened from then on and to the open ones. So
 * no phase waits longer than the relay's own slowest answer justifies, and
 * a message pays two clock reads, not a timer.
 *
 * A message handed over ready-built (raw-message.ts) goes to the pool as it
 * is (see readyBuilt); any other is composed by nodemailer.
 */
export function createMailTransport(settings: TransportSettings): Transporter {
  const timeouts = settings.timeouts ?? DEFAULT_SMTP_TIMEOUTS;
  const wait = new ReplyWait(timeouts);
  const transport = nodemailer.createTransport({
    url: settings.url,
    pool: true,
    maxConnections: settings.maxConnections,
    maxMessages: 1000,
    rateDelta: 1000,
    rateLimit: settings.ratePerSecond,
    connectionTimeout: timeouts.connectMs,
    greetingTimeout: timeouts.connectMs,
    socketTimeout: wait.current,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  transport.use('stream', (mail, done) => {
    const data = mail.data as { deliveryTracker?: StreamTracker; answerTiming?: AnswerTiming };
    const { deliveryTracker: tracker, answerTiming: timing } = data;
    // The stream itself is kept, not wrapped: a stream more per message cost the sender about
    // as much CPU as composing the message.
    mail.message.processFunc((input: Readable) => {
      if (tracker) tracker.stream = input;
      // Read to its end, the message is with the connection, which ends the data: from here
      // the silence is the relay deciding whether to accept it.
      if (timing) input.once('end', () => (timing.dataEndedAt = performance.now()));
      return input;
    });
    done();
  });
  const observe = (timing: AnswerTiming, answered: boolean) => {
    if (timing.dataEndedAt === 0) return;
    const silentMs = performance.now() - timing.dataEndedAt;
    if (answered ? wait.observe(silentMs) : wait.outwaited(silentMs)) applyReplyTimeout(transport, wait.current);
  };
  const sendMail = transport.sendMail.bind(transport) as (mail: SendMailOptions, callback: (error: Error | null, info: SentMessageInfo) => void) => void;
  // nodemailer's pool (an internal of its Mailer): without a `send` of its own, every message goes through sendMail.
  const pool = (transport as unknown as { transporter?: Partial<ReadyBuiltPool> }).transporter;
  const toPool = typeof pool?.send === 'function' ? (pool.send.bind(pool) as ReadyBuiltPool['send']) : undefined;
  transport.sendMail = ((mail: SendMailOptions, callback?: (error: Error | null, info?: SentMessageInfo) => void) => {
    const answerTiming: AnswerTiming = { dataEndedAt: 0 };
    const settle = (resolve: (info: SentMessageInfo) => void, reject: (error: Error) => void) => {
      const answered = (error: Error | null, info: SentMessageInfo) => {
        // An SMTP answer, acceptance or refusal, shows the relay's speed; a timeout after the data
        // shows that it is slower than the wait; a dropped connection shows nothing.
        if (!error || typeof (error as { responseCode?: unknown }).responseCode === 'number') observe(answerTiming, true);
        else if ((error as { code?: unknown }).code === 'ETIMEDOUT') observe(answerTiming, false);
        if (error) reject(error);
        else resolve(info);
      };
      const ready = toPool && readyBuilt(mail);
      if (ready) toPool(readyBuiltMail(ready, answerTiming), answered);
      else sendMail({ ...mail, answerTiming } as SendMailOptions, answered);
    };
    if (callback) return settle((info) => callback(null, info), (error) => callback(error, undefined));
    return new Promise<SentMessageInfo>(settle);
  }) as Transporter['sendMail'];
  return transport;
}

/** The part of nodemailer's pool (SMTPPool) that takes a message: a transport's `send`. */
interface ReadyBuiltPool {
  send(mail: { data: SendMailOptions; message: ReadyBuiltMessage }, callback: (error: Error | null, info: SentMessageInfo) => void): void;
}

/** What the pool reads of a message (nodemailer builds a MimeNode for it; this is the same for a text already built). */
interface ReadyBuiltMessage {
  getHeader(name: string): string | undefined;
  getEnvelope(): { from: string; to: string[] };
  messageId(): string;
  createReadStream(): Readable;
}

type ReadyBuilt = { raw: string; envelope: { from: string; to: string[] }; messageId: string; deliveryTracker?: StreamTracker };

/** An address nodemailer writes as given, in headers and the envelope: ASCII, no display name, no quoting, the domain in lower case (it lowers it). */
export const PLAIN_ADDRESS = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*$/;

/**
 * The message when it is a ready-built text (raw-message.ts: `raw`, `envelope`
 * and `messageId`, nothing else nodemailer acts on) in ASCII, with plain
 * addresses: such a message goes to the pool as it is. Through nodemailer's
 * sendMail it was parsed, wrapped in a MIME node, its envelope's addresses
 * parsed again, and its stream piped through two more streams, for the same
 * bytes: a quarter of the sender's CPU per message (bench:mail, runs
 * alternating: 1.36–1.37 s per 1,000 messages through sendMail, 0.99–1.06 s
 * straight to the pool).
 */
function readyBuilt(mail: SendMailOptions): ReadyBuilt | undefined {
  const { raw, envelope, messageId, deliveryTracker, ...rest } = mail as SendMailOptions & { deliveryTracker?: StreamTracker };
  if (Object.keys(rest).length > 0 || typeof raw !== 'string' || typeof messageId !== 'string' || !/^[\x00-\x7f]*$/.test(raw)) return undefined;
  const from = envelope?.from;
  const to = envelope?.to;
  if (typeof from !== 'string' || !PLAIN_ADDRESS.test(from) || !Array.isArray(to) || to.length === 0 || !to.every((a) => typeof a === 'string' && PLAIN_ADDRESS.test(a))) return undefined;
  return { raw, envelope: { from, to: to as string[] }, messageId, deliveryTracker };
}

/**
 * The ready-built message as the pool takes it. Each connection that sends it
 * reads a stream of its own (the pool hands a message that a closed
 * connection never read to another); the tracker follows the latest, as the
 * stream step follows nodemailer's.
 */
function readyBuiltMail(ready: ReadyBuilt, timing: AnswerTiming): { data: SendMailOptions; message: ReadyBuiltMessage } {
  const bytes = Buffer.from(ready.raw, 'latin1');
  return {
    data: {},
    message: {
      getHeader: (name) => (name.toLowerCase() === 'message-id' ? ready.messageId : undefined),
      getEnvelope: () => ({ from: ready.envelope.from, to: [...ready.envelope.to] }),
      messageId: () => ready.messageId,
      createReadStream: () => {
        const stream = Readable.from([bytes], { objectMode: false });
        if (ready.deliveryTracker) ready.deliveryTracker.stream = stream;
        stream.once('end', () => (timing.dataEndedAt = performance.now()));
        return stream;
      },
    },
  };
}

/**
 * Gives the pool's connections a new inactivity timeout: those opened from now
 * on (nodemailer's connections read it from the pool's options when they
 * connect) and the open ones (their sockets). nodemailer has no public way to
 * do either on a live pool; openConnectionSockets keeps the private part in
 * one place, and tests/mail/reply-timeouts.test.ts fails if it stops working.
 */
function applyReplyTimeout(transport: Transporter, timeoutMs: number) {
  const pool = (transport as unknown as { transporter?: { options?: { socketTimeout?: number } } }).transporter;
  if (pool?.options) pool.options.socketTimeout = timeoutMs;
  for (const socket of openConnectionSockets(transport)) socket.setTimeout(timeoutMs);
}

/**
 * The sockets of the pool's open connections (private to nodemailer: the
 * pool's `_connections`, each a resource whose `connection._socket` is the
 * socket in use, the TLS one after STARTTLS).
 */
export function openConnectionSockets(transport: Transporter): Socket[] {
  const pool = (transport as unknown as { transporter?: { _connections?: unknown } }).transporter;
  const resources = pool?._connections;
  if (!Array.isArray(resources)) return [];
  const sockets: Socket[] = [];
  for (const resource of resources as Array<{ connection?: { _socket?: Socket | false } }>) {
    const socket = resource.connection?._socket;
    if (socket && !socket.destroyed && typeof socket.setTimeout === 'function') sockets.push(socket);
  }
  return sockets;
}
