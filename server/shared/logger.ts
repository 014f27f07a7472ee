import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino, type DestinationStream, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import pretty from 'pino-pretty';

export type { Logger };

/**
 * Path prefixes whose next segment is a secret (a personal link, an
 * unsubscribe link, a one-time setup or reset link): it never reaches a log line.
 */
const SECRET_SEGMENT_AFTER = new Set(['s', 'u', 'setup', 'password-reset']);

/** The URL as it may be logged: secret path segments replaced, the query string kept only for named, harmless keys. */
export function redactUrl(url: string): string {
  const [path = '', query] = url.split('?', 2);
  const segments = path.split('/');
  for (let i = 1; i < segments.length - 1; i += 1) {
    if (SECRET_SEGMENT_AFTER.has(segments[i]!)) {
      segments[i + 1] = '[redacted]';
      break;
    }
  }
  return segments.join('/') + (query === undefined ? '' : '?[query]');
}

export interface LoggerOptions {
  level: string;
  /** Human-readable lines (development) instead of one JSON object per line. */
  pretty: boolean;
  /** Where lines go; standard output by default. Tests pass a stream they read. */
  destination?: DestinationStream;
}

/**
 * The platform's structured log. Passwords, tokens, cookies and CSRF tokens
 * are redacted wherever they appear in a logged object; request URLs go
 * through redactUrl, and are fields, never part of a message's format string.
 */
export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? (options.pretty ? pretty({ sync: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }) : pino.destination({ sync: false }));
  return pino(
    {
      level: options.level,
      redact: {
        paths: [
          'password',
          '*.password',
          '*.newPassword',
          '*.currentPassword',
          'token',
          '*.token',
          'req.headers.cookie',
          'req.headers.authorization',
          'req.headers["x-csrf-token"]',
          'res.headers["set-cookie"]',
        ],
        censor: '[redacted]',
      },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}

/**
 * One log line per request, with a request id (also sent as X-Request-Id) that
 * every line logged through req.log carries. Server errors log at "error",
 * client errors at "warn" without a stack trace, static files not at all.
 */
export function requestLogger(logger: Logger) {
  return pinoHttp({
    logger,
    genReqId: (_req: IncomingMessage, res: ServerResponse) => {
      const id = randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    customSuccessMessage: () => 'request completed',
    customErrorMessage: () => 'request failed',
    autoLogging: { ignore: (req) => /^\/(static|vendor)\/|^\/healthz$/.test(req.url ?? '') },
    serializers: {
      req: (req: { id: string; method: string; url: string; raw?: { originalUrl?: string }; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.raw?.originalUrl ?? req.url),
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}
