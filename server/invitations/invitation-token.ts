import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Personal link tokens.
 *
 * A token is HMAC-SHA256(tokenKey, "<invitation id>:<generation>"), 256 bits,
 * written base64url. The token key is 32 bytes from the operating system's
 * cryptographic generator (see secrets.ts), so tokens cannot be guessed, and the
 * database holds only SHA-256(token): a copy of the database alone opens no
 * link. Deriving instead of storing lets the sender put the same link in the
 * invitation and in every reminder without keeping it anywhere; raising the
 * generation revokes a link and issues a new one.
 */
export function deriveToken(tokenKey: Buffer, invitationId: string, generation: number): string {
  return createHmac('sha256', tokenKey).update(`${invitationId}:${generation}`).digest('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Only strings that look like a token are looked up. */
export function isWellFormedToken(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{43}$/.test(value);
}

export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
