import { isIP } from 'node:net';
import { z } from 'zod';

/** 1, true, 0, false (unset: 0). */
const flag = z
  .enum(['0', '1', 'true', 'false'])
  .default('0')
  .transform((v) => v === '1' || v === 'true');

/** The address ranges express names (proxy-addr's presets). */
const PROXY_PRESETS = ['loopback', 'linklocal', 'uniquelocal'];

function isAddressOrRange(entry: string): boolean {
  const [address = '', bits, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128);
}

/**
 * Express's "trust proxy", limited to what makes sense in production: which
 * proxies may tell the platform the client's address and scheme
 * (X-Forwarded-For, X-Forwarded-Proto).
 */
const trustProxy = z
  .string()
  .trim()
  .transform((value, ctx): boolean | number | string => {
    if (value === 'true') return true;
    if (value === 'false') return false;
    // A number of proxies in front of the platform (hops).
    if (/^[1-9]\d?$/.test(value)) return Number(value);
    const entries = value.split(',').map((entry) => entry.trim());
    if (entries.every((entry) => PROXY_PRESETS.includes(entry) || isAddressOrRange(entry))) return entries.join(',');
    ctx.addIssue({
      code: 'custom',
      message:
        'must be the number of proxies in front of the platform (1, 2, …), loopback, linklocal, uniquelocal, ' +
        'a comma-separated list of IP addresses or CIDR ranges (e.g. 10.0.0.5,192.168.1.0/24), true or false',
    });
    return z.NEVER;
  });

/**
 * The platform's settings, read from the environment exactly once. A bad value
 * stops the process at start with a message that names the variable.
 */
const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** The address respondents and the coordinator reach, used in emails and printed links. */
  PUBLIC_URL: z.url().optional(),
  /**
   * The reverse proxies whose X-Forwarded-Proto and X-Forwarded-For are believed
   * (unset: none). Behind a TLS-terminating proxy this makes https requests
   * secure, so that the session cookie (Secure with an https PUBLIC_URL) is sent.
   */
  TRUST_PROXY: trustProxy.optional(),
  /** Production: a MongoDB server. Unset: the embedded FerretDB under DATA_DIR. */
  MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
    .optional(),
  DATA_DIR: z.string().min(1).default('data'),
  /** Port of the embedded database engine on 127.0.0.1 (0: any free port). */
  ENGINE_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** Unset: a local mail catcher keeps messages under DATA_DIR and shows them to the coordinator. */
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://')
    .optional(),
  /** Production without SMTP_URL: keep every email in the local mail catcher on purpose. */
  MAIL_CATCHER: flag,
  MAIL_FROM: z.string().min(3).default('VET mobility survey <survey@localhost>'),
  /** Messages handed to the SMTP server per second, at most (the pooled transport's rate limit). */
  SEND_RATE_PER_SECOND: z.coerce.number().int().min(1).max(10_000).default(50),
  /** How long an outcome of sending waits at most for the rest of its batch before it is written (a page shows it that much later). */
  SEND_OUTCOME_WAIT_MS: z.coerce.number().int().min(0).max(3_600_000).default(100),
  /** SMTP connections the sender keeps open at once. */
  SEND_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(50).default(5),
  /** Claims of one message before it is recorded as failed (temporary errors are retried with backoff). */
  SEND_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  /** The first wait after a temporary error, doubled at each attempt; also how long a relay error pauses a campaign. */
  SEND_BACKOFF_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  /** A message claimed by a sender that has given no sign of life (heartbeat) for this long becomes "unknown". */
  SEND_LEASE_SECONDS: z.coerce.number().int().min(1).default(120),
  /** How long to wait for the relay to accept a connection and greet. */
  SEND_CONNECT_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /**
   * The longest wait for any answer of the relay, the one to the end of a message's data included, and the wait
   * until the relay has answered a message (RFC 5321: 10 minutes).
   */
  SEND_REPLY_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(600),
  /**
   * The shortest wait for an answer, however fast the relay has been: 60 by default, or
   * SEND_REPLY_TIMEOUT_SECONDS when that is less (a configuration from before this existed keeps working).
   */
  SEND_REPLY_TIMEOUT_MIN_SECONDS: z.coerce.number().int().min(1).max(3600).optional(),
  /** Once the relay has answered, the wait is this many times its slowest of the last 20 acceptances of a message. */
  SEND_REPLY_TIMEOUT_FACTOR: z.coerce.number().min(1).max(1000).default(10),
  /** Port of the local mail catcher used when SMTP_URL is unset (0: any free port). */
  MAIL_CATCHER_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** Signs session cookies. Unset in development: a random secret kept under DATA_DIR. */
  SESSION_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Derives personal link tokens (64 hex characters). Unset outside production: kept under DATA_DIR. */
  TOKEN_KEY: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 hexadecimal characters (openssl rand -hex 32)')
    .optional(),
  /**
   * Seals the per-campaign secrets of institution tags in the database (64 hex characters), so that a copy of
   * the database alone cannot link an anonymous record to its institution. Unset outside production: kept under DATA_DIR.
   */
  INSTITUTION_TAG_KEY: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 hexadecimal characters (openssl rand -hex 32)')
    .optional(),
  /** Requests per personal link (opening, saving, submitting), and per unsubscribe link, per minute. */
  TOKEN_RATE_LIMIT: z.coerce.number().int().min(1).default(120),
  /** Unknown link tokens per client address per 15 minutes; valid links from that address still work. */
  UNKNOWN_TOKEN_LIMIT: z.coerce.number().int().min(1).default(10),
  /** Largest accepted request body, in bytes. */
  BODY_LIMIT: z.coerce.number().int().min(1024).default(256 * 1024),
  /** Log level: fatal, error, warn, info, debug, trace or silent. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One JSON object per line (json) or human-readable lines (pretty); default pretty in development, json otherwise. */
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  /** Threads that validate submissions beside the event loop (default: one less than the CPU count, at least 1). */
  VALIDATION_THREADS: z.coerce.number().int().min(1).max(64).optional(),
  /** Disclosure control: cells with fewer institutions or respondents are suppressed. */
  MIN_CELL_INSTITUTIONS: z.coerce.number().int().min(1).default(5),
  MIN_CELL_RESPONDENTS: z.coerce.number().int().min(1).default(10),
  /** Disclosure control: the narrowest range an outsider may derive for a hidden answer count or number of responses (1: none pinned to one value). */
  DISCLOSURE_MIN_RANGE: z.coerce.number().int('must be a whole number of at least 1').min(1, 'must be a whole number of at least 1').default(1),
  /**
   * Disclosure control: open quantities up to which a question's answer counts are also audited by linear programming
   * (0: none; count-equalities.ts UnknownBounds.solveUpTo). 6,000 by default: what the auditor's solver test passes with,
   * on small campaigns, where a solver pinned counts that propagation leaves open; larger audits are not solved.
   */
  DISCLOSURE_SOLVE_UNKNOWNS: z.coerce.number().int('must be a whole number, 0 or more').min(0, 'must be a whole number, 0 or more').max(100_000, 'must be at most 100000').default(6000),
  /** How often the evidence looks for responses stored by other processes (another instance, the CLI, seed:demo), in ms. */
  EVIDENCE_POLL_MS: z.coerce.number().int().min(100).max(60_000).default(500),
  /** The least time from one disclosure decision's start to the next taken ahead of pages, in ms (a page waiting for its own response never waits for it). */
  EVIDENCE_DECISION_GAP_MS: z.coerce.number().int().min(0).max(60_000).default(500),
  /** Skip the demo campaign that an empty embedded database gets on first start. */
  NO_DEMO: flag,
});

export type Config = Readonly<z.infer<typeof schema>>;

/** How to make a missing key (see Production in the README). */
const HOW_TO_MAKE: Partial<Record<keyof Config, string>> = {
  SESSION_SECRET: ' (openssl rand -base64 48)',
  TOKEN_KEY: ' (openssl rand -hex 32)',
  INSTITUTION_TAG_KEY: ' (openssl rand -hex 32; back it up apart from the database, see Production in the README)',
};

/** SEND_REPLY_TIMEOUT_MIN_SECONDS when it is not set (and SEND_REPLY_TIMEOUT_SECONDS is not less). */
const DEFAULT_REPLY_TIMEOUT_MIN_SECONDS = 60;

/** The relay timeouts of the configuration, for createMailTransport. */
export function smtpTimeouts(config: Config) {
  return {
    connectMs: config.SEND_CONNECT_TIMEOUT_SECONDS * 1000,
    replyMs: config.SEND_REPLY_TIMEOUT_SECONDS * 1000,
    replyMinMs: (config.SEND_REPLY_TIMEOUT_MIN_SECONDS ?? Math.min(DEFAULT_REPLY_TIMEOUT_MIN_SECONDS, config.SEND_REPLY_TIMEOUT_SECONDS)) * 1000,
    replyFactor: config.SEND_REPLY_TIMEOUT_FACTOR,
  };
}

export class ConfigError extends Error {}

/** Parses the given environment; throws a ConfigError naming every bad variable. */
export function parseConfig(env: NodeJS.ProcessEnv): Config {
  const result = schema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid environment:\n${lines.join('\n')}`);
  }
  if ((result.data.SEND_REPLY_TIMEOUT_MIN_SECONDS ?? 0) > result.data.SEND_REPLY_TIMEOUT_SECONDS) {
    throw new ConfigError(
      `Invalid environment:\n  SEND_REPLY_TIMEOUT_MIN_SECONDS: must not be more than SEND_REPLY_TIMEOUT_SECONDS (${result.data.SEND_REPLY_TIMEOUT_SECONDS}), the longest wait`,
    );
  }
  if (result.data.NODE_ENV === 'production') {
    const missing = (['SESSION_SECRET', 'TOKEN_KEY', 'INSTITUTION_TAG_KEY', 'MONGODB_URI', 'PUBLIC_URL'] as const).filter((k) => !result.data[k]);
    if (missing.length > 0) {
      throw new ConfigError(`Invalid environment:\n${missing.map((k) => `  ${k}: required in production${HOW_TO_MAKE[k] ?? ''}`).join('\n')}`);
    }
  }
  return Object.freeze(result.data);
}

/**
 * What the running web platform needs beyond valid values (the command-line
 * tool and scripts do not serve pages or send on their own). Throws a
 * ConfigError naming every variable that would leave it broken; returns the
 * warnings to print at start.
 */
export function checkPlatformConfig(config: Config): string[] {
  const problems: string[] = [];
  const warnings: string[] = [];
  const production = config.NODE_ENV === 'production';
  const https = config.PUBLIC_URL?.startsWith('https:') ?? false;
  // Every request reaches the platform over plain HTTP: only a trusted proxy's
  // X-Forwarded-Proto makes it secure, and without that the Secure session cookie is never sent.
  const trustsNoProxy = config.TRUST_PROXY === undefined || config.TRUST_PROXY === false;
  if (https && trustsNoProxy) {
    const text =
      'TRUST_PROXY: PUBLIC_URL is https, so the session cookie is Secure, but no proxy is trusted to say a request came over https: ' +
      'nobody could sign in. Set TRUST_PROXY to the TLS-terminating proxy (loopback when it runs on this machine; see Production in the README)';
    if (production) problems.push(`${text}.`);
    else warnings.push(`${text}.`);
  }
  if (production && !config.SMTP_URL && !config.MAIL_CATCHER) {
    problems.push('SMTP_URL: required in production (or MAIL_CATCHER=1 to keep every email in the local mail catcher on purpose).');
  }
  if (config.SMTP_URL && config.MAIL_CATCHER) {
    problems.push('MAIL_CATCHER: set either SMTP_URL (emails are sent) or MAIL_CATCHER=1 (emails are kept), not both.');
  }
  warnings.push(...sendingWarnings(config, { servesPages: true }));
  if (problems.length > 0) throw new ConfigError(`Invalid environment:\n${problems.map((line) => `  ${line}`).join('\n')}`);
  return warnings;
}

/**
 * What a process that sends email warns of at start (the platform, and the
 * command-line tool's campaign:send and scripts/run-sender.ts, which send on
 * their own): in production an http:// PUBLIC_URL puts a one-click
 * unsubscribe link in every email that RFC 8058 requires to be https.
 */
export function sendingWarnings(config: Config, options: { servesPages?: boolean } = {}): string[] {
  if (config.NODE_ENV !== 'production' || !config.PUBLIC_URL?.startsWith('http:')) return [];
  const what = 'the one-click unsubscribe link of every email (RFC 8058)';
  // The platform, which serves pages, has its session cookie to say too, and the proxy's part in it.
  return [
    options.servesPages
      ? `PUBLIC_URL is http://: ${what} and the Secure session cookie need https. Put the platform behind a TLS-terminating proxy, set PUBLIC_URL=https://… and TRUST_PROXY.`
      : `PUBLIC_URL is http://: ${what} needs https: set PUBLIC_URL=https://… (the address of the platform behind its TLS-terminating proxy).`,
  ];
}
