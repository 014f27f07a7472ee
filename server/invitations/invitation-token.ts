import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Personal link tokens.
 *
 * A link reads /s/<invitation id><secret>: the invitation's id (24 hex
 * characters, not a secret) lets the server find the invitation by its
 * primary key — the only look-up FerretDB v1's SQLite backend answers from an
 * index; any other filter scans the whole collection. The secret is
 * HMAC-SHA256(tokenKey, "<invitation id>:<generation>"), 256 bits, written
 * base64url. The token key is 32 bytes from the operating system's
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

/** The path segment of a personal link: the invitation id followed by its secret. */
export function linkToken(tokenKey: Buffer, invitationId: string, generation: number): string {
  return `${invitationId}${deriveToken(tokenKey, invitationId, generation)}`;
}

/**
 * The generation a link's secret was derived with, from 0 up to the current
 * one, or undefined when it is none of them. A replaced link is recognised this
 * way (its hash is no longer stored), so it can say it was replaced rather than
 * look unknown. Generations only grow by a coordinator's action, so the loop is short.
 */
export function generationOf(tokenKey: Buffer, invitationId: string, secret: string, current: number): number | undefined {
  for (let generation = current; generation >= 0; generation -= 1) {
    if (sameHash(hashToken(deriveToken(tokenKey, invitationId, generation)), hashToken(secret))) return generation;
  }
  return undefined;
}

/** Splits a link token; anything that does not look like one gives undefined and is never looked up. */
export function parseLinkToken(value: unknown): { invitationId: string; secret: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^([0-9a-f]{24})([A-Za-z0-9_-]{43})$/.exec(value);
  return match ? { invitationId: match[1]!, secret: match[2]! } : undefined;
}

/** Constant-time comparison of two token hashes. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
