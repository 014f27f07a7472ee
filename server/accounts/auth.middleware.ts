import MongoStore from 'connect-mongo';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import session from 'express-session';
import { randomBytes } from 'node:crypto';
import type { Models } from '../db/models.ts';
import { csrfToken, csrfTokenMatches } from '../shared/csrf.ts';
import { HttpError } from '../shared/http-error.ts';
import { navigationFor } from './navigation.ts';
import { findActiveUser, type SignedInUser } from './user.service.ts';
import type { Role } from './user.model.ts';

declare module 'express-session' {
  interface SessionData {
    userId?: string;
    /** Random per session; CSRF tokens are an HMAC of it, so a new session (sign-in) gets new tokens. */
    csrfSecret?: string;
    /** When the user signed in (the platform's clock, ms): a later password change ends the session. */
    signedInAt?: number;
  }
}

/** The paths that carry a signed-in session. Respondent links (/s/...) never do. */
export const SESSION_PATHS = ['/admin', '/login', '/logout', '/setup', '/password-reset', '/evidence'];

/** Where a user whose password expired must go first; signing out stays possible. */
export const OWN_PASSWORD_PATH = '/admin/password';

/**
 * A page of this platform to return to after signing in (or setting one's
 * own password): a path under /admin or /evidence with a plain query, never
 * another site ("//host", a scheme) nor a path with dots.
 */
export function safeNext(value: unknown): string | undefined {
  return typeof value === 'string' && /^\/(admin|evidence)(\/[A-Za-z0-9_-][A-Za-z0-9/_.-]*)?(\?[A-Za-z0-9=&_%.,[\]-]*)?$/.test(value) && !value.includes('//') && !value.includes('..')
    ? value
    : undefined;
}

export interface SessionOptions {
  models: Models;
  secret: string;
  /** Sets the Secure flag on the cookie (when the platform is reached over https). */
  secureCookies: boolean;
  /** Largest form body on admin pages in general, in bytes. */
  bodyLimit: number;
  /** Paths that accept a larger form body (CSV uploads), with their limit in bytes. */
  largeBodies?: ReadonlyArray<{ path: string; limit: number }>;
  now: () => Date;
}

const SESSION_HOURS = 8;

const SESSIONS_COLLECTION = 'sessions';

/**
 * The middleware chain for signed-in pages: the session (kept in MongoDB by
 * connect-mongo), the form body parsers, and the signed-in user. FerretDB has
 * no TTL indexes, so expired sessions are removed by removeExpiredSessions,
 * which index.ts runs on a timer.
 */
export function accountSession(options: SessionOptions): RequestHandler[] {
  const connection = options.models.User.db;
  const store = MongoStore.create({
    // Mongoose ships its own copy of the driver: the client is the same at run time.
    client: connection.getClient() as unknown as NonNullable<Parameters<typeof MongoStore.create>[0]['client']>,
    dbName: connection.name,
    collectionName: SESSIONS_COLLECTION,
    // Not 'interval': connect-mongo's clean-up is an unacknowledged write (w: 0), which FerretDB v1
    // answers anyway; the driver then reads every later reply on that pooled connection one step late.
    autoRemove: 'disabled',
    ttl: SESSION_HOURS * 3600,
    touchAfter: 60,
  });
  const sessions = session({
    name: 'vet.sid',
    secret: options.secret,
    store,
    resave: false,
    saveUninitialized: false,
    rolling: true,
    cookie: { httpOnly: true, sameSite: 'lax', secure: options.secureCookies, maxAge: SESSION_HOURS * 3600_000, path: '/' },
  });
  const large = (options.largeBodies ?? []).map((entry) => ({
    path: entry.path,
    parse: express.urlencoded({ extended: false, limit: entry.limit, parameterLimit: 1000 }),
  }));
  const form = express.urlencoded({ extended: false, limit: options.bodyLimit, parameterLimit: 1000 });
  const json = express.json({ limit: options.bodyLimit });
  const parseBody: RequestHandler = (req, res, next) => {
    // Large bodies only for signed-in users: an anonymous request gets the ordinary limit.
    const path = req.originalUrl.split('?')[0];
    const special = res.locals.user ? large.find((entry) => path === entry.path) : undefined;
    if (special) return special.parse(req, res, next);
    form(req, res, (error?: unknown) => (error ? next(error) : json(req, res, next)));
  };
  const loadUser: RequestHandler = async (req, res, next) => {
    const userId = req.session.userId;
    if (userId) {
      const found = await findActiveUser(options, userId);
      // A password set after this sign-in (a reset, or a change in another session) ends the session.
      const user = found && found.passwordChangedAt <= (req.session.signedInAt ?? 0) ? found : undefined;
      if (user) {
        res.locals.user = user;
        res.locals.nav = navigationFor(user.role, req.originalUrl.split('?')[0] ?? '');
      } else {
        // The account was disabled or removed, or its password changed since: the session ends here.
        delete req.session.userId;
      }
    }
    if (req.session.csrfSecret) res.locals.csrf = csrfToken(req.session.csrfSecret, 'forms');
    next();
  };
  return [sessions, loadUser, ownPasswordFirst, parseBody];
}

/**
 * A password chosen by someone else (see createUser) opens one door only:
 * the page where the user sets their own. Every other signed-in page sends
 * them there, and any other request is refused.
 */
const ownPasswordFirst: RequestHandler = (req, res, next) => {
  const user = res.locals.user as SignedInUser | undefined;
  const path = req.originalUrl.split('?')[0];
  if (!user?.passwordExpired || path === OWN_PASSWORD_PATH || path === '/logout') return next();
  if (req.method === 'GET' || req.method === 'HEAD') {
    // The page asked for is kept, to go on to once the password is set.
    const asked = safeNext(req.originalUrl);
    return res.redirect(303, asked && asked !== '/admin' ? `${OWN_PASSWORD_PATH}?next=${encodeURIComponent(asked)}` : OWN_PASSWORD_PATH);
  }
  next(new HttpError(403, 'Please set your own password first.'));
}

/**
 * Deletes the sessions that have expired, with an acknowledged write. Returns how many.
 * Invariant: the platform never sends an unacknowledged (w: 0) write, see scripts/ferretdb/wireguard.go.
 */
export async function removeExpiredSessions(deps: { models: Models; now: () => Date }): Promise<number> {
  const result = await deps.models.User.db.collection(SESSIONS_COLLECTION).deleteMany({ expires: { $lt: deps.now() } });
  return result.deletedCount;
}

/** Starts a fresh session for the user: a new session id (no fixation) and new CSRF tokens. */
export function signInSession(req: Request, user: SignedInUser, at: Date): Promise<void> {
  return new Promise((resolve, reject) => {
    req.session.regenerate((error) => {
      if (error) return reject(error);
      req.session.userId = user.id;
      req.session.signedInAt = at.getTime();
      req.session.csrfSecret = randomBytes(32).toString('base64url');
      req.session.save((saveError) => (saveError ? reject(saveError) : resolve()));
    });
  });
}

export function signOutSession(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.destroy((error) => (error ? reject(error) : resolve())));
}

/**
 * Lets through only signed-in users with one of the roles. Not signed in: a
 * page request goes to /login, anything else gets 401. Wrong role: 403.
 */
export function requireRole(...roles: Role[]): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const user = res.locals.user as SignedInUser | undefined;
    if (!user) {
      if (req.method === 'GET' && req.accepts(['html', 'json']) === 'html') {
        return res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
      }
      return next(new HttpError(401, 'Please sign in first.'));
    }
    if (!roles.includes(user.role)) return next(new HttpError(403, 'Your role does not allow this.'));
    next();
  };
}

/**
 * Every request that is not GET/HEAD must carry the session's CSRF token in
 * the `_csrf` form field or the `X-CSRF-Token` header; otherwise 403 and
 * nothing happens. Also makes the token available to views as `csrf`.
 */
export const csrfProtection: RequestHandler = (req, res, next) => {
  if (!req.session) return next(new Error('csrfProtection needs the session middleware (mount the route under /admin)'));
  if (!req.session.csrfSecret) req.session.csrfSecret = randomBytes(32).toString('base64url');
  res.locals.csrf = csrfToken(req.session.csrfSecret, 'forms');
  if (req.method === 'GET' || req.method === 'HEAD') return next();
  const body = req.body as Record<string, unknown> | undefined;
  const candidate = req.get('X-CSRF-Token') ?? (body && typeof body === 'object' ? body._csrf : undefined);
  if (!csrfTokenMatches(req.session.csrfSecret, 'forms', candidate)) {
    return next(new HttpError(403, 'The form has expired or did not come from this site. Please reload the page and try again.'));
  }
  next();
};
