import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config.ts';

export interface Secrets {
  /** Derives personal link tokens; losing it breaks every link already sent. */
  tokenKey: Buffer;
  /** Signs session cookies and CSRF tokens. */
  sessionSecret: string;
  /** Seals the campaigns' institution tag secrets in the database; losing it stops tagging in campaigns whose secret exists. */
  tagKey: Buffer;
}

/**
 * Secrets come from the environment in production (TOKEN_KEY and
 * INSTITUTION_TAG_KEY as 64 hex characters, SESSION_SECRET); elsewhere they
 * are generated once with the cryptographic generator and kept in
 * DATA_DIR/secrets.json (mode 0600), a file beside the database, not in it.
 */
export function loadSecrets(options: { dataDir: string; tokenKeyHex?: string; sessionSecret?: string; tagKeyHex?: string }): Secrets {
  const file = join(options.dataDir, 'secrets.json');
  const stored: { tokenKey?: string; sessionSecret?: string; tagKey?: string } = existsSync(file)
    ? JSON.parse(readFileSync(file, 'utf8'))
    : {};
  if (!stored.tokenKey || !stored.sessionSecret || !stored.tagKey) {
    stored.tokenKey ??= randomBytes(32).toString('hex');
    stored.sessionSecret ??= randomBytes(32).toString('base64url');
    // A file of an earlier version gets the key added: its database's secrets are sealed with it at the next start.
    stored.tagKey ??= randomBytes(32).toString('hex');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(stored, null, 2), { mode: 0o600 });
  }
  return {
    tokenKey: Buffer.from(options.tokenKeyHex ?? stored.tokenKey, 'hex'),
    sessionSecret: options.sessionSecret ?? stored.sessionSecret,
    tagKey: Buffer.from(options.tagKeyHex ?? stored.tagKey, 'hex'),
  };
}

/** The secrets of the configuration: every process of the platform (server, command-line tool, scripts) takes them this way. */
export function secretsOf(config: Pick<Config, 'DATA_DIR' | 'TOKEN_KEY' | 'SESSION_SECRET' | 'INSTITUTION_TAG_KEY'>): Secrets {
  return loadSecrets({ dataDir: config.DATA_DIR, tokenKeyHex: config.TOKEN_KEY, sessionSecret: config.SESSION_SECRET, tagKeyHex: config.INSTITUTION_TAG_KEY });
}
