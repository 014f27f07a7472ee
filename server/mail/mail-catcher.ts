import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface CaughtMessage {
  id: string;
  to: string[];
  subject: string;
  receivedAt: string;
}

/**
 * The mail catcher of the embedded default: with no SMTP_URL the platform
 * sends to this SMTP server on 127.0.0.1, which keeps every message as
 * DATA_DIR/mail/<id>.eml with one line per message in index.jsonl, so a new
 * user can try invite → answer → remind offline and read the emails at /admin/mail.
 */
export async function startMailCatcher(options: { dataDir: string; port: number }) {
  const dir = join(options.dataDir, 'mail');
  mkdirSync(dir, { recursive: true });
  const indexFile = join(dir, 'index.jsonl');
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 5 * 1024 * 1024,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const id = `${Date.now()}-${randomBytes(4).toString('hex')}`;
        writeFileSync(join(dir, `${id}.eml`), raw);
        const subject = subjectOf(raw.subarray(0, 16384).toString('latin1'));
        const entry: CaughtMessage = { id, to: session.envelope.rcptTo.map((r) => r.address), subject, receivedAt: new Date().toISOString() };
        appendFileSync(indexFile, `${JSON.stringify(entry)}\n`);
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    view: catcherView(dir),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Reads what the catcher stored (also usable without the server, e.g. by a second instance). */
export function catcherView(dir: string) {
  const indexFile = join(dir, 'index.jsonl');
  return {
    /** The newest messages first, subjects decoded (entries written before decoding are decoded here). */
    list(limit = 200): CaughtMessage[] {
      if (!existsSync(indexFile)) return [];
      const lines = readFileSync(indexFile, 'utf8').trim().split('\n').filter(Boolean);
      return lines
        .slice(-limit)
        .reverse()
        .map((line) => JSON.parse(line) as CaughtMessage)
        .map((entry) => ({ ...entry, subject: decodeEncodedWords(entry.subject) }));
    },
    /** One message, parsed: its headers and plain text. */
    async read(id: string) {
      if (!/^\d+-[0-9a-f]{8}$/.test(id)) return undefined;
      const file = join(dir, `${id}.eml`);
      if (!existsSync(file)) return undefined;
      const parsed = await simpleParser(readFileSync(file));
      return {
        id,
        subject: parsed.subject ?? '',
        from: parsed.from?.text ?? '',
        to: Array.isArray(parsed.to) ? parsed.to.map((t) => t.text).join(', ') : (parsed.to?.text ?? ''),
        date: parsed.date,
        // mailparser turns List-* headers into objects: show the line as sent, unfolded.
        listUnsubscribe: rawHeader(parsed.headerLines, 'list-unsubscribe'),
        listUnsubscribePost: rawHeader(parsed.headerLines, 'list-unsubscribe-post'),
        text: parsed.text ?? '',
        html: typeof parsed.html === 'string' ? parsed.html : undefined,
      };
    },
  };
}

function rawHeader(lines: ReadonlyArray<{ key: string; line: string }>, key: string): string {
  const line = lines.find((l) => l.key === key)?.line ?? '';
  return line.replace(/^[^:]*:\s*/, '').replace(/\r?\n[ \t]+/g, ' ').trim();
}

/** The Subject header of a raw message's head, unfolded and decoded. */
function subjectOf(head: string): string {
  const headers = head.split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  const raw = /^Subject:[ \t]*(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
  return decodeEncodedWords(raw);
}

/**
 * RFC 2047 encoded words (=?UTF-8?Q?...?= and =?UTF-8?B?...?=) back to text.
 * The blanks between two adjacent encoded words belong to neither (§6.2), and
 * a character may be split across two words, so a run is decoded as one.
 */
export function decodeEncodedWords(value: string): string {
  const word = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
  const run = /=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=(?:\s*=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)*/g;
  return value.replace(run, (whole) => {
    const words = [...whole.matchAll(word)];
    const charset = words[0]![1]!.split('*')[0]!.toLowerCase();
    const bytes = Buffer.concat(
      words.map(([, , encoding, text]) =>
        encoding!.toUpperCase() === 'B'
          ? Buffer.from(text!, 'base64')
          : Buffer.from(text!.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1'),
      ),
    );
    try {
      return new TextDecoder(charset).decode(bytes);
    } catch {
      return whole;
    }
  });
}
