import { Router, type Response } from 'express';
import { z } from 'zod';
import { formatDateTime } from '../shared/dates.ts';
import { HttpError } from '../shared/http-error.ts';
import type { RateLimitWindows } from '../shared/rate-limit.store.ts';
import { listAudit } from './audit.service.ts';
import { csrfProtection, OWN_PASSWORD_PATH, requireRole, safeNext, signInSession, signOutSession } from './auth.middleware.ts';
import { SignInThrottle, type SignInLimits } from './sign-in-throttle.ts';
import {
  changeOwnPassword,
  chosenPasswordProblems,
  createPasswordResetLink,
  createUser,
  disableUser,
  enableUser,
  generatePassword,
  listUsers,
  newUserInputSchema,
  newUserSchema,
  passwordResetUser,
  redeemPasswordReset,
  redeemSetupToken,
  setupTokenIsValid,
  WrongCurrentPassword,
  signInWithPassword,
  type AccountDeps,
  type SignedInUser,
} from './user.service.ts';
import { ROLES } from './user.model.ts';

const loginBody = z.object({ email: z.string().max(300), password: z.string().max(300), next: z.string().max(500).optional() });
const setupBody = z.object({ name: z.string(), email: z.string(), password: z.string(), confirm: z.string() });
const addUserBody = z.object({ name: z.string(), email: z.string(), role: z.enum(ROLES), password: z.string().optional() });
const userBody = z.object({ email: z.string().max(300) });
const ownPasswordBody = z.object({ current: z.string().max(300), password: z.string().max(300), confirm: z.string().max(300), next: z.string().max(500).optional() });
const resetBody = z.object({ password: z.string().max(300), confirm: z.string().max(300) });
const auditQuery = z.object({
  page: z.coerce.number().int().min(1).max(100_000).catch(1),
  action: z.string().regex(/^[a-z]+([.:-][a-z]+)*$/).max(100).optional().catch(undefined),
});

/** Sign-in, sign-out, the first-coordinator setup link, the dashboard, users and the audit log. */
export function accountRoutes(deps: AccountDeps & { windows: RateLimitWindows; publicUrl?: string }, signInLimits?: SignInLimits): Router {
  const router = Router();
  const throttle = new SignInThrottle(deps, signInLimits);

  router.get('/login', csrfProtection, (req, res) => {
    if (res.locals.user) return res.redirect(303, safeNext(req.query.next) ?? homeOf(res.locals.user as SignedInUser));
    res.render('accounts/login', { title: 'Sign in', next: safeNext(req.query.next) });
  });

  router.post('/login', csrfProtection, async (req, res) => {
    const body = loginBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Please enter your email address and password.');
    const email = body.data.email.trim().toLowerCase();
    // req.ip is the client's address when the app trusts its reverse proxy ("trust proxy").
    const outcome = await signInWithPassword(deps, throttle, { email, password: body.data.password, address: req.ip ?? 'unknown' });
    if (outcome.kind === 'throttled') return tooManyAttempts(res, outcome.seconds, email, body.data.next);
    if (outcome.kind === 'failed') {
      return res.status(401).render('accounts/login', {
        title: 'Sign in',
        error: 'The email address or the password is wrong, or the account is disabled.',
        email,
        next: safeNext(body.data.next),
      });
    }
    const { user } = outcome;
    await signInSession(req, user, deps.now());
    res.redirect(303, safeNext(body.data.next) ?? homeOf(user));
  });

  router.post('/logout', csrfProtection, async (req, res) => {
    await signOutSession(req);
    res.clearCookie('vet.sid', { path: '/' });
    res.redirect(303, '/login');
  });

  router.get('/setup/:token', csrfProtection, async (req, res) => {
    if (!(await setupTokenIsValid(deps, String(req.params.token)))) throw new HttpError(404, 'This setup link is not valid any more.');
    res.render('accounts/setup', { title: 'Create the first coordinator' });
  });

  router.post('/setup/:token', csrfProtection, async (req, res) => {
    const body = setupBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Please fill in every field.');
    const identity = newUserSchema.omit({ role: true, password: true }).safeParse(body.data);
    const problems = [
      ...(identity.success ? [] : identity.error.issues.map((issue) => `${fieldLabel(issue.path[0])} ${issue.message}`)),
      ...chosenPasswordProblems(body.data.password, body.data.confirm, [body.data.name, body.data.email]),
    ];
    if (problems.length > 0) {
      return res.status(400).render('accounts/setup', { title: 'Create the first coordinator', problems, values: { name: body.data.name, email: body.data.email } });
    }
    const user = await redeemSetupToken(deps, String(req.params.token), body.data);
    await signInSession(req, user, deps.now());
    res.redirect(303, '/admin');
  });

  router.get('/admin', requireRole('coordinator', 'reviewer'), csrfProtection, (_req, res) => {
    res.render('accounts/dashboard', { title: 'Dashboard', coordinator: (res.locals.user as SignedInUser).role === 'coordinator' });
  });

  router.get('/admin/users', requireRole('coordinator'), csrfProtection, async (_req, res) => {
    await renderUsers(res, 200, {});
  });

  async function renderUsers(res: Response, status: number, data: Record<string, unknown>) {
    const self = (res.locals.user as SignedInUser).email;
    const users = (await listUsers(deps)).map((user) => ({ ...user, self: user.email === self }));
    res.status(status).render('accounts/users', { title: 'Users', users, roles: ROLES, ...data });
  }

  router.post('/admin/users', requireRole('coordinator'), csrfProtection, async (req, res) => {
    const body = addUserBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Please fill in the name, the email address and the role.');
    const generated = body.data.password ? undefined : generatePassword();
    const input = { ...body.data, password: body.data.password || generated! };
    const parsed = newUserInputSchema.safeParse(input);
    if (!parsed.success) {
      return renderUsers(res, 400, {
        problems: parsed.error.issues.map((issue) => `${fieldLabel(issue.path[0])} ${issue.message}`),
        values: { name: body.data.name, email: body.data.email, role: body.data.role },
      });
    }
    // The coordinator chose or saw this password: it works for the first sign-in only.
    const user = await createUser(deps, parsed.data, actorOf(res), { passwordExpired: true });
    await renderUsers(res, 200, { created: { email: user.email, password: generated } });
  });

  router.post('/admin/users/enable', requireRole('coordinator'), csrfProtection, async (req, res) => {
    const body = userBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Which user?');
    await enableUser(deps, body.data.email, actorOf(res));
    res.redirect(303, '/admin/users');
  });

  router.post('/admin/users/reset-link', requireRole('coordinator'), csrfProtection, async (req, res) => {
    const body = userBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Which user?');
    const { token, expiresAt } = await createPasswordResetLink(deps, body.data.email, actorOf(res));
    const origin = deps.publicUrl ? deps.publicUrl.replace(/\/$/, '') : `${req.protocol}://${req.get('host')}`;
    await renderUsers(res, 200, { resetLink: { email: body.data.email.trim().toLowerCase(), url: `${origin}/password-reset/${token}`, expiresAt } });
  });

  router.get(OWN_PASSWORD_PATH, requireRole('coordinator', 'reviewer'), csrfProtection, (req, res) => {
    res.render('accounts/password', { title: 'Your password', expired: (res.locals.user as SignedInUser).passwordExpired, changed: req.query.changed === '1', next: safeNext(req.query.next) });
  });

  router.post(OWN_PASSWORD_PATH, requireRole('coordinator', 'reviewer'), csrfProtection, async (req, res) => {
    const body = ownPasswordBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Please fill in every field.');
    const user = res.locals.user as SignedInUser;
    const problems = chosenPasswordProblems(body.data.password, body.data.confirm, [user.name, user.email]);
    // Guessing the current password from a signed-in session is throttled like guessing it at sign-in.
    const address = req.ip ?? 'unknown';
    const running = await throttle.delayFor(user.email, address);
    if (running) {
      res.set('Retry-After', String(running.seconds));
      const wait = running.seconds < 90 ? `${running.seconds} second${running.seconds === 1 ? '' : 's'}` : `${Math.ceil(running.seconds / 60)} minutes`;
      return res.status(429).render('accounts/password', { title: 'Your password', expired: user.passwordExpired, next: safeNext(body.data.next), problems: [`Too many wrong passwords from your address. Please wait ${wait} and try again.`] });
    }
    if (problems.length === 0) {
      try {
        const changed = await changeOwnPassword(deps, user.id, { current: body.data.current, password: body.data.password });
        // Other sessions of this user end; this one goes on under a new session id.
        await signInSession(req, changed, deps.now());
        return res.redirect(303, user.passwordExpired ? (safeNext(body.data.next) ?? homeOf(user)) : `${OWN_PASSWORD_PATH}?changed=1`);
      } catch (error) {
        if (!(error instanceof HttpError) || error.status !== 400) throw error;
        if (error instanceof WrongCurrentPassword) await throttle.failed(user.email, address);
        problems.push(error.message);
      }
    }
    res.status(400).render('accounts/password', { title: 'Your password', expired: user.passwordExpired, next: safeNext(body.data.next), problems });
  });

  router.get('/password-reset/:token', csrfProtection, async (req, res) => {
    const user = await passwordResetUser(deps, String(req.params.token));
    if (!user) throw new HttpError(404, 'This password reset link is not valid any more: it was used, replaced or has expired. Ask a coordinator for a new one.');
    res.render('accounts/reset', { title: 'Set a new password', account: user });
  });

  router.post('/password-reset/:token', csrfProtection, async (req, res) => {
    const token = String(req.params.token);
    const user = await passwordResetUser(deps, token);
    if (!user) throw new HttpError(404, 'This password reset link is not valid any more: it was used, replaced or has expired. Ask a coordinator for a new one.');
    const body = resetBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Please fill in both fields.');
    const problems = chosenPasswordProblems(body.data.password, body.data.confirm, [user.name, user.email]);
    if (problems.length > 0) return res.status(400).render('accounts/reset', { title: 'Set a new password', account: user, problems });
    await redeemPasswordReset(deps, token, body.data.password);
    res.render('accounts/reset', { title: 'Your password is set', account: user, done: true });
  });

  router.post('/admin/users/disable', requireRole('coordinator'), csrfProtection, async (req, res) => {
    const body = userBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Which user?');
    if (body.data.email.trim().toLowerCase() === (res.locals.user as SignedInUser).email) {
      throw new HttpError(400, 'You cannot disable your own account.');
    }
    await disableUser(deps, body.data.email, actorOf(res));
    res.redirect(303, '/admin/users');
  });

  router.get('/admin/audit', requireRole('coordinator'), csrfProtection, async (req, res) => {
    const { page, action } = auditQuery.parse(req.query);
    const result = await listAudit(deps.models, { page, perPage: 50, action });
    const params = (p: number) => new URLSearchParams({ ...(action ? { action } : {}), page: String(p) }).toString();
    res.render('accounts/audit', {
      title: 'Audit log',
      action,
      actions: result.actions,
      entries: result.entries.map((entry) => ({ ...entry, at: formatDateTime(entry.at) })),
      page,
      pages: result.pages,
      previous: page > 1 ? params(page - 1) : undefined,
      next: page < result.pages ? params(page + 1) : undefined,
    });
  });

  return router;
}

/** The signed-in user's email, as it appears in the audit log. */
export function actorOf(res: Response): string {
  return (res.locals.user as SignedInUser).email;
}

/** Only a path inside the admin pages may follow the sign-in: never another site. */

/** Where a user goes after signing in when no page was asked for: a reviewer's work is the evidence, the dashboard has nothing else for them. */
function homeOf(user: { role: string }): string {
  return user.role === 'reviewer' ? '/evidence' : '/admin';
}

function tooManyAttempts(res: Response, seconds: number, email: string, next: string | undefined) {
  res.set('Retry-After', String(seconds));
  const wait = seconds < 90 ? `${seconds} second${seconds === 1 ? '' : 's'}` : `${Math.ceil(seconds / 60)} minutes`;
  res.status(429).render('accounts/login', {
    title: 'Sign in',
    error: `Too many failed sign-ins from your address. Please wait ${wait} and try again.`,
    email,
    next: safeNext(next),
  });
}

function fieldLabel(key: unknown): string {
  return ({ name: 'The name', email: 'The email address', role: 'The role', password: 'The password' } as Record<string, string>)[String(key)] ?? 'A field';
}

