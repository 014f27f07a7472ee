import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Unsubscribe tokens: "<contact id>.<HMAC-SHA256(tokenKey, 'unsubscribe:' + contact id)>".
 *
 * Like personal link tokens they are derived from the token key, never
 * stored; a different purpose string keeps them from ever equalling a link
 * token. The contact id travels in clear because the token must name whom to
 * unsubscribe without a stored look-up; it reveals nothing and the MAC makes
 * it unforgeable. One token per contact, the same in every campaign.
 */
export function unsubscribeToken(tokenKey: Buffer, contactId: string): string {
  return `${contactId}.${mac(tokenKey, contactId)}`;
}

/** The contact id the token stands for, or undefined when it is malformed or forged. */
export function contactOfUnsubscribeToken(tokenKey: Buffer, token: unknown): string | undefined {
  if (typeof token !== 'string') return undefined;
  const match = /^([0-9a-f]{24})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return undefined;
  const expected = Buffer.from(mac(tokenKey, match[1]!));
  const given = Buffer.from(match[2]!);
  return expected.length === given.length && timingSafeEqual(expected, given) ? match[1] : undefined;
}

export function unsubscribeLink(deps: { tokenKey: Buffer; publicUrl: string }, contactId: string): string {
  return `${deps.publicUrl.replace(/\/$/, '')}/u/${unsubscribeToken(deps.tokenKey, contactId)}`;
}

function mac(tokenKey: Buffer, contactId: string): string {
  return createHmac('sha256', tokenKey).update(`unsubscribe:${contactId}`).digest('base64url');
}
