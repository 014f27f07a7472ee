import type { RequestHandler } from 'express';

/**
 * Pages with personal data — a signed-in session's, a respondent's answers —
 * are kept by no cache: not the browser's (the back button on a shared
 * computer), not a proxy's.
 */
export const noStore: RequestHandler = (_req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
};
