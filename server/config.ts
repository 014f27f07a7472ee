import { z } from 'zod';

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
  /** Production: a MongoDB server. Unset: the embedded FerretDB under DATA_DIR. */
  MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
    .optional(),
  DATA_DIR: z.string().min(1).default('data'),
  /** Unset: a local mail catcher keeps messages under DATA_DIR and shows them to the coordinator. */
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://')
    .optional(),
  MAIL_FROM: z.string().min(3).default('VET mobility survey <survey@localhost>'),
  /** Messages handed to the SMTP server per second, at most (the pooled transport's rate limit). */
  SEND_RATE_PER_SECOND: z.coerce.number().int().min(1).max(10_000).default(50),
  /** SMTP connections the sender keeps open at once. */
  SEND_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(50).default(5),
  /** Claims of one message before it is recorded as failed (temporary errors are retried with backoff). */
  SEND_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  /** A message claimed by a sender that has given no sign of life (heartbeat) for this long becomes "unknown". */
  SEND_LEASE_SECONDS: z.coerce.number().int().min(1).default(120),
  /** How long to wait for the relay to accept a connection and greet. */
  SEND_CONNECT_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /** How long to wait for any answer of the relay, the one to the end of a message's data included (RFC 5321: 10 minutes). */
  SEND_REPLY_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(600),
  /** Port of the local mail catcher used when SMTP_URL is unset (0: any free port). */
  MAIL_CATCHER_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** Signs session cookies. Unset in development: a random secret kept under DATA_DIR. */
  SESSION_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Derives personal link tokens (64 hex characters). Unset outside production: kept under DATA_DIR. */
  TOKEN_KEY: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 hexadecimal characters (openssl rand -hex 32)')
    .optional(),
  /** Token link look-ups allowed per client address per minute. */
  TOKEN_RATE_LIMIT: z.coerce.number().int().min(1).default(30),
  /** Largest accepted request body, in bytes. */
  BODY_LIMIT: z.coerce.number().int().min(1024).default(256 * 1024),
  /** Disclosure control: cells with fewer institutions or respondents are suppressed. */
  MIN_CELL_INSTITUTIONS: z.coerce.number().int().min(1).default(5),
  MIN_CELL_RESPONDENTS: z.coerce.number().int().min(1).default(10),
  /** Skip the demo campaign that an empty embedded database gets on first start. */
  NO_DEMO: z
    .enum(['0', '1', 'true', 'false'])
    .default('0')
    .transform((v) => v === '1' || v === 'true'),
});

export type Config = Readonly<z.infer<typeof schema>>;

/** The relay timeouts of the configuration, for createMailTransport. */
export function smtpTimeouts(config: Config) {
  return { connectMs: config.SEND_CONNECT_TIMEOUT_SECONDS * 1000, replyMs: config.SEND_REPLY_TIMEOUT_SECONDS * 1000 };
}

export class ConfigError extends Error {}

/** Parses the given environment; throws a ConfigError naming every bad variable. */
export function parseConfig(env: NodeJS.ProcessEnv): Config {
  const result = schema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid environment:\n${lines.join('\n')}`);
  }
  if (result.data.NODE_ENV === 'production') {
    const missing = (['SESSION_SECRET', 'TOKEN_KEY', 'MONGODB_URI', 'PUBLIC_URL'] as const).filter((k) => !result.data[k]);
    if (missing.length > 0) {
      throw new ConfigError(`Invalid environment:\n${missing.map((k) => `  ${k}: required in production`).join('\n')}`);
    }
  }
  return Object.freeze(result.data);
}
