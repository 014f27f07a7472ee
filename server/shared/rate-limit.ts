import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit, type RateLimitInfo } from 'express-rate-limit';
import type { Language } from './languages.ts';
import { browserLanguage } from './page-text.ts';
import { DatabaseStore, type RateLimitWindows } from './rate-limit.store.ts';

/** Who a link with a valid token belongs to: its counter's key and the holder's language. */
export interface LinkHolder {
  key: string;
  language: Language;
}

export interface Refusal {
  /** "link": this link was used too often; "unknown-tokens": this address tried too many unknown tokens. */
  reason: 'link' | 'unknown-tokens';
  language: Language;
  seconds: number;
}

export interface TokenLinkLimitOptions {
  /** Names the limits in the counters' ids, e.g. "link" or "unsubscribe". */
  name: string;
  /** Requests allowed per valid link per minute. */
  perLinkPerMinute: number;
  /** Unknown tokens allowed per client address per 15 minutes. */
  unknownPerAddress: number;
}

/**
 * The two limits of links that carry a token (personal links, unsubscribe
 * links), to put after the middleware that looks the token up:
 *
 * - a valid link is limited per link, wherever it is used from, so the
 *   dozens of respondents of a school behind one address never slow each
 *   other down, however often their pages save;
 * - an unknown token, what a prober produces, is limited per client address
 *   (req.ip, which follows the app's "trust proxy" setting; IPv6 by /56
 *   network), and only unknown tokens are refused: the same address still
 *   opens valid links.
 *
 * The counters live in the database, so the limits hold across instances.
 * If the counters cannot be reached, requests pass (and the error is logged):
 * a respondent's save must not fail because of its limit's bookkeeping.
 */
export function tokenLinkLimits(
  deps: { windows: RateLimitWindows; now: () => Date },
  options: TokenLinkLimitOptions,
  holderOf: (req: Request, res: Response) => LinkHolder | undefined,
  refuse: (req: Request, res: Response, refusal: Refusal) => void,
): RequestHandler {
  const refusing = (reason: Refusal['reason'], languageOf: (req: Request, res: Response) => Language) => (req: Request, res: Response) => {
    const resetTime = (req as Request & { rateLimit?: RateLimitInfo }).rateLimit?.resetTime;
    const seconds = Math.max(1, Math.ceil(((resetTime?.getTime() ?? 0) - deps.now().getTime()) / 1000));
    res.set('Retry-After', String(seconds));
    refuse(req, res, { reason, language: languageOf(req, res), seconds });
  };
  const common = { legacyHeaders: false, standardHeaders: false, passOnStoreError: true } as const;
  const perLink = rateLimit({
    ...common,
    windowMs: 60_000,
    limit: options.perLinkPerMinute,
    store: new DatabaseStore(deps.windows, `${options.name}`),
    skip: (req, res) => holderOf(req, res) === undefined,
    keyGenerator: (req, res) => holderOf(req, res)!.key,
    handler: refusing('link', (req, res) => holderOf(req, res)!.language),
  });
  const unknownTokens = rateLimit({
    ...common,
    windowMs: 15 * 60_000,
    limit: options.unknownPerAddress,
    store: new DatabaseStore(deps.windows, `${options.name}-unknown`),
    skip: (req, res) => holderOf(req, res) !== undefined,
    keyGenerator: (req) => clientKey(req),
    handler: refusing('unknown-tokens', (req) => browserLanguage(req)),
  });
  return (req, res, next) => perLink(req, res, (error?: unknown) => (error ? next(error) : unknownTokens(req, res, next)));
}

/** The client address as a counter's key: req.ip (behind a trusted proxy, the client's). */
export function clientKey(req: Request): string {
  return addressKey(req.ip);
}

/** A client address as a counter's key: IPv6 addresses by /56 network, which one subscriber usually holds whole. */
export function addressKey(address: string | undefined): string {
  return ipKeyGenerator(address ?? 'unknown');
}
