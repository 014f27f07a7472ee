import { Router, type NextFunction, type Request, type Response } from 'express';
import { isLanguage, type Language } from '../shared/languages.ts';
import { noStore } from '../shared/no-store.ts';
import { browserLanguage, pageText } from '../shared/page-text.ts';
import { tokenLinkLimits, type Refusal } from '../shared/rate-limit.ts';
import type { RateLimitWindows } from '../shared/rate-limit.store.ts';
import { findUnsubscribeContact, unsubscribe, type UnsubscribeDeps } from './unsubscribe.service.ts';

type FoundContact = Awaited<ReturnType<typeof findUnsubscribeContact>>;

/**
 * One-click unsubscribe (RFC 8058). GET shows a page with a button; POST
 * unsubscribes, from that button or straight from the mail client
 * ("List-Unsubscribe=One-Click").
 *
 * The POST carries no CSRF token, on purpose: mail clients cannot send one,
 * and none is needed. The token in the address is the credential (an HMAC
 * only the platform can make, naming one contact), there is no session
 * another site could ride on, and the action is idempotent and harmless: at
 * worst a forged request unsubscribes a contact whose link the forger
 * already holds. Like personal links, a valid link is rate-limited per
 * link and unknown tokens per client address (see tokenLinkLimits).
 */
export function unsubscribeRoutes(
  deps: UnsubscribeDeps & { windows: RateLimitWindows },
  options: { requestsPerLinkPerMinute: number; unknownTokensPerAddress: number },
): Router {
  const router = Router();
  const findContact = async (req: Request, res: Response, next: NextFunction) => {
    res.locals.contact = await findUnsubscribeContact(deps, req.params.token);
    next();
  };
  const limits = tokenLinkLimits(
    deps,
    { name: 'unsubscribe', perLinkPerMinute: options.requestsPerLinkPerMinute, unknownPerAddress: options.unknownTokensPerAddress },
    (_req, res) => {
      const contact = res.locals.contact as FoundContact;
      return contact ? { key: String(contact._id), language: contactLanguage(contact) } : undefined;
    },
    tooMany,
  );

  // Every page here is in the contact's language; for a link that names nobody, in the browser's.
  router.get('/u/:token', noStore, findContact, limits, (req, res) => {
    const contact = res.locals.contact as FoundContact;
    if (!contact) return renderPage(res.status(404), browserLanguage(req), { invalid: true });
    renderPage(res, contactLanguage(contact), { done: Boolean(contact.unsubscribedAt), email: contact.email, action: `/u/${req.params.token}` });
  });

  router.post('/u/:token', noStore, findContact, limits, async (req, res) => {
    const contact = res.locals.contact as FoundContact;
    if (!contact || !(await unsubscribe(deps, req.params.token))) return renderPage(res.status(404), browserLanguage(req), { invalid: true });
    renderPage(res, contactLanguage(contact), { done: true });
  });
  return router;
}

function tooMany(_req: Request, res: Response, { reason, language, seconds }: Refusal) {
  const text = pageText(language, { seconds: String(seconds) });
  const message = reason === 'link' ? text.tooManyRequests : text.tooMany;
  res.status(429).render('respond/unavailable', { title: text.tooManyTitle, lang: language, text, heading: text.tooManyTitle, message });
}

function contactLanguage(contact: { language?: string | null }): Language {
  return isLanguage(contact.language) ? contact.language : 'en';
}

function renderPage(res: Response, language: Language, data: { invalid?: boolean; done?: boolean; email?: string; action?: string }) {
  const text = pageText(language, { email: data.email ?? '' });
  const title = data.invalid ? text.unsubscribeInvalidTitle : data.done ? text.unsubscribedTitle : text.unsubscribeTitle;
  res.render('mail/unsubscribe', { title, lang: language, text, ...data });
}
