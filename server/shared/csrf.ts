import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * CSRF tokens bound to a subject (a session id, or a personal link's hash):
 * HMAC(secret, purpose + subject). A page embeds the token; every request that
 * changes state must send it back (form field `_csrf` or header `X-CSRF-Token`).
 * Another site can neither read it nor forge it.
 */
export function csrfToken(secret: string, subject: string): string {
  return createHmac('sha256', secret).update(`csrf:${subject}`).digest('base64url');
}

export function csrfTokenMatches(secret: string, subject: string, candidate: unknown): boolean {
  if (typeof candidate !== 'string') return false;
  const expected = Buffer.from(csrfToken(secret, subject));
  const given = Buffer.from(candidate);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
