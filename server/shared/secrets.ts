import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Secrets {
  /** Derives personal link tokens; losing it breaks every link already sent. */
  tokenKey: Buffer;
  /** Signs session cookies and CSRF tokens. */
  sessionSecret: string;
}

/**
 * Secrets come from the environment in production (TOKEN_KEY as 64 hex
 * characters, SESSION_SECRET); elsewhere they are generated once with the
 * cryptographic generator and kept in DATA_DIR/secrets.json (mode 0600).
 */
export function loadSecrets(options: { dataDir: string; tokenKeyHex?: string; sessionSecret?: string }): Secrets {
  const file = join(options.dataDir, 'secrets.json');
  const stored: { tokenKey?: string; sessionSecret?: string } = existsSync(file)
    ? JSON.parse(readFileSync(file, 'utf8'))
    : {};
  if (!stored.tokenKey || !stored.sessionSecret) {
    stored.tokenKey ??= randomBytes(32).toString('hex');
    stored.sessionSecret ??= randomBytes(32).toString('base64url');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(stored, null, 2), { mode: 0o600 });
  }
  return {
    tokenKey: Buffer.from(options.tokenKeyHex ?? stored.tokenKey, 'hex'),
    sessionSecret: options.sessionSecret ?? stored.sessionSecret,
  };
}
