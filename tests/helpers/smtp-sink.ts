import { SMTPServer, type SMTPServerSession } from 'smtp-server';

export interface SunkMessage {
  from: string;
  to: string[];
  messageId: string;
  /** The whole message as received (empty when the sink was started with keepRaw: false). */
  raw: string;
}

type Rule = { kind: 'reply'; code: number; text: string; times: number } | { kind: 'drop'; times: number } | { kind: 'drop-after-data'; times: number };

/**
 * A real SMTP server in the test process that records every message it
 * accepts. It can be told to refuse chosen recipients with a 4xx or 5xx reply,
 * or to drop the connection when they are named, a given number of times.
 * STARTTLS and authentication are off: nodemailer talks plain SMTP to it.
 */
/** `delayMs`: each message's end of data is answered that much later, like a relay that scans or queues slowly. */
export async function startSmtpSink(options: { keepRaw?: boolean; port?: number; delayMs?: number } = {}) {
  const keepRaw = options.keepRaw ?? true;
  const messages: SunkMessage[] = [];
  const rules = new Map<string, Rule>();
  let senderRefusal: { code: number; text: string } | undefined;
  let recipientRefusal: { code: number; text: (email: string) => string } | undefined;
  let dataRefusal: { code: number; text: string } | undefined;
  // While holding, the answer to the end of each message's data waits for release().
  let holding = false;
  const held: Array<() => void> = [];
  const heldListeners: Array<() => void> = [];
  const server: SMTPServer = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    maxClients: 200,
    onMailFrom(_address, _session, callback) {
      if (!senderRefusal) return callback();
      const error = new Error(senderRefusal.text) as Error & { responseCode: number };
      error.responseCode = senderRefusal.code;
      callback(error);
    },
    onRcptTo(address, session, callback) {
      const email = address.address.toLowerCase();
      if (recipientRefusal) {
        const error = new Error(recipientRefusal.text(email)) as Error & { responseCode: number };
        error.responseCode = recipientRefusal.code;
        return callback(error);
      }
      const rule = rules.get(email);
      if (rule && rule.times > 0 && rule.kind !== 'drop-after-data') {
        rule.times -= 1;
        if (rule.kind === 'drop') {
          dropConnection(server, session);
          return;
        }
        const error = new Error(rule.text) as Error & { responseCode: number };
        error.responseCode = rule.code;
        return callback(error);
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        // Headers come first: without keepRaw only the beginning is kept, to find the Message-ID.
        if (keepRaw || chunks.length === 0) chunks.push(chunk);
      });
      stream.on('end', () => {
        if (dataRefusal) {
          const error = new Error(dataRefusal.text) as Error & { responseCode: number };
          error.responseCode = dataRefusal.code;
          return callback(error);
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
          messageId: /^Message-ID:\s*(<[^>]+>)/im.exec(raw)?.[1] ?? '',
          raw: keepRaw ? raw : '',
        });
        const dropRule = session.envelope.rcptTo.map((r) => rules.get(r.address.toLowerCase())).find((r) => r?.kind === 'drop-after-data' && r.times > 0);
        if (dropRule) {
          dropRule.times -= 1;
          // Received, then the connection breaks before the answer: the client cannot know.
          dropConnection(server, session);
          return;
        }
        if (!holding) return options.delayMs ? void setTimeout(() => callback(), options.delayMs) : callback();
        held.push(() => callback());
        for (const listener of heldListeners.splice(0)) listener();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  server.on('error', () => undefined);
  const port = (server.server.address() as { port: number }).port;

  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages,
    /** The next `times` RCPT TO for the address get this reply (e.g. 451 or 550). */
    reply(email: string, code: number, text: string, times = Number.POSITIVE_INFINITY) {
      rules.set(email.toLowerCase(), { kind: 'reply', code, text, times });
    },
    /** Every MAIL FROM gets this reply until acceptSender(), e.g. 530 5.7.0 Authentication required. */
    refuseSender(code: number, text: string) {
      senderRefusal = { code, text };
    },
    acceptSender() {
      senderRefusal = undefined;
    },
    /** Every RCPT TO gets this reply until acceptRecipients(), e.g. 554 5.7.1 <address>: Relay access denied. */
    refuseRecipients(code: number, text: (email: string) => string) {
      recipientRefusal = { code, text };
    },
    acceptRecipients() {
      recipientRefusal = undefined;
    },
    /** The end of every message's data gets this reply until acceptData() (the message is not received), e.g. 554 5.7.1 rejected as spam. */
    refuseData(code: number, text: string) {
      dataRefusal = { code, text };
    },
    acceptData() {
      dataRefusal = undefined;
    },
    /** The next `times` RCPT TO for the address close the connection without a reply. */
    drop(email: string, times = 1) {
      rules.set(email.toLowerCase(), { kind: 'drop', times });
    },
    /**
     * From now on the sink receives each message but answers the end of its
     * data only at release(): a relay slow to accept. A message received is
     * counted as delivered, answered or not, as a real relay would deliver it.
     */
    hold() {
      holding = true;
    },
    /** Answers every held message (a client that gave up meanwhile does not hear it) and stops holding. */
    release() {
      holding = false;
      for (const answer of held.splice(0)) answer();
    },
    /** Answers the `count` messages held longest, and goes on holding the others and the next ones. */
    answer(count: number) {
      for (const answer of held.splice(0, count)) answer();
    },
    /** Resolves once `count` messages are waiting for their answer. */
    async heldMessages(count: number) {
      while (held.length < count) await new Promise<void>((resolve) => heldListeners.push(resolve));
    },
    /** The next `times` messages to the address are received whole, then the connection closes without an answer. */
    dropAfterData(email: string, times = 1) {
      rules.set(email.toLowerCase(), { kind: 'drop-after-data', times });
    },
    /** Messages received per recipient address. */
    countsByRecipient(): Map<string, number> {
      const counts = new Map<string, number>();
      for (const m of messages) for (const to of m.to) counts.set(to, (counts.get(to) ?? 0) + 1);
      return counts;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type SmtpSink = Awaited<ReturnType<typeof startSmtpSink>>;

function dropConnection(server: SMTPServer, session: SMTPServerSession) {
  const connections = (server as unknown as { connections: Set<{ id: string; _socket: { destroy(): void } }> }).connections;
  for (const connection of connections) if (connection.id === session.id) connection._socket.destroy();
}
