import { Router, type Request, type Response } from 'express';
import { RateLimiter } from '../shared/rate-limit.ts';
import { findUnsubscribeContact, unsubscribe, type UnsubscribeDeps } from './unsubscribe.service.ts';

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
 * already holds. Look-ups are rate-limited per address like personal links.
 */
export function unsubscribeRoutes(deps: UnsubscribeDeps, options: { lookupsPerMinute: number }): Router {
  const router = Router();
  const lookups = new RateLimiter(options.lookupsPerMinute, 60_000);
  const limit = (req: Request, res: Response, next: () => void) => {
    const wait = lookups.hit(req.ip ?? '');
    if (wait > 0) {
      res.set('Retry-After', String(wait)).status(429).render('error', { title: 'Too many requests', lang: 'en', status: 429, message: 'Too many requests. Please try again in a minute.' });
      return;
    }
    next();
  };

  router.get('/u/:token', limit, async (req, res) => {
    const contact = await findUnsubscribeContact(deps, req.params.token);
    if (!contact) return res.status(404).render('mail/unsubscribe', { title: 'Unsubscribe', lang: 'en', invalid: true });
    res.render('mail/unsubscribe', { title: 'Unsubscribe', lang: 'en', done: Boolean(contact.unsubscribedAt), email: contact.email, action: `/u/${req.params.token}` });
  });

  router.post('/u/:token', limit, async (req, res) => {
    if (!(await unsubscribe(deps, req.params.token))) return res.status(404).render('mail/unsubscribe', { title: 'Unsubscribe', lang: 'en', invalid: true });
    res.render('mail/unsubscribe', { title: 'Unsubscribed', lang: 'en', done: true });
  });
  return router;
}
