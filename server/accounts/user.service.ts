import argon2 from 'argon2';
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Models } from '../db/models.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { HttpError } from '../shared/http-error.ts';
import { recordAudit } from './audit.service.ts';
import type { SignInThrottle } from './sign-in-throttle.ts';
import { ROLES, type Role } from './user.model.ts';
import type { Logger } from '../shared/logger.ts';

export interface AccountDeps {
  models: Models;
  now: () => Date;
  /** Where refused and throttled sign-ins are logged (the web app passes its logger). */
  logger?: Logger;
}

/** What the rest of the platform knows about a signed-in user. */
export interface SignedInUser {
  id: string;
  name: string;
  email: string;
  role: Role;
}

export const emailSchema = z.string().trim().toLowerCase().pipe(z.email('is not a valid email address').max(254));
export const passwordSchema = z.string().min(12, 'must have at least 12 characters').max(200, 'must have at most 200 characters');
export const newUserSchema = z.object({
  name: z.string().trim().min(1, 'is required').max(200),
  email: emailSchema,
  role: z.enum(ROLES),
  password: passwordSchema,
});
export type NewUser = z.infer<typeof newUserSchema>;

const SETUP_LINK_HOURS = 24;
// Verified against when the email is unknown, so that an unknown address takes as long as a wrong password.
let dummyHash: Promise<string> | undefined;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id });
}

/** A readable random password (about 120 bits), shown once to whoever creates the account. */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}

/**
 * Creates a user with an Argon2id password hash. An address already in use
 * is refused with a 409 HttpError. Recorded in the audit log.
 */
export async function createUser(deps: AccountDeps, input: NewUser, actor: string): Promise<SignedInUser> {
  const data = newUserSchema.parse(input);
  if (await deps.models.User.exists({ email: data.email })) {
    throw new HttpError(409, `A user with the address ${data.email} already exists.`);
  }
  let user;
  try {
    user = await deps.models.User.create({ name: data.name, email: data.email, role: data.role, passwordHash: await hashPassword(data.password) });
  } catch (error) {
    if ((error as { code?: number }).code === 11000) throw new HttpError(409, `A user with the address ${data.email} already exists.`);
    throw error;
  }
  await recordAudit(deps.models, { actor, action: 'user.add', target: data.email, details: { role: data.role }, at: deps.now() });
  return toSignedInUser(user);
}

/** Disables a user: they can no longer sign in, and their sessions end at the next request. */
export async function disableUser(deps: AccountDeps, email: string, actor: string): Promise<void> {
  const address = emailSchema.parse(email);
  const result = await deps.models.User.updateOne({ email: address, disabledAt: { $exists: false } }, { $set: { disabledAt: deps.now() } });
  if (result.matchedCount === 0) {
    const exists = await deps.models.User.exists({ email: address });
    throw new HttpError(exists ? 409 : 404, exists ? `${address} is already disabled.` : `There is no user with the address ${address}.`);
  }
  await recordAudit(deps.models, { actor, action: 'user.disable', target: address, at: deps.now() });
}

/** The user whose email and password match and who is not disabled; otherwise undefined. Only behind the sign-in throttle. */
async function authenticate(deps: AccountDeps, email: string, password: string): Promise<SignedInUser | undefined> {
  const address = emailSchema.safeParse(email);
  const user = address.success ? await deps.models.User.findOne({ email: address.data }) : null;
  if (!user) {
    dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
    await argon2.verify(await dummyHash, password).catch(() => false);
    return undefined;
  }
  const matches = await argon2.verify(user.passwordHash, password).catch(() => false);
  if (!matches || user.disabledAt) return undefined;
  return toSignedInUser(user);
}

export type SignInOutcome = { kind: 'signed-in'; user: SignedInUser } | { kind: 'failed' } | { kind: 'throttled'; seconds: number };

/**
 * A sign-in through the form, from a client address. While a delay runs
 * against the account at that address or against the address (see
 * SignInThrottle), it is refused without checking the password; otherwise
 * the password is checked and a failure counted. Sign-ins, failures and the
 * delays failures start go to the audit log, which they cannot flood: the
 * delays bound them. Attempts refused during a delay are only logged. The
 * password is never recorded anywhere.
 */
export async function signInWithPassword(
  deps: AccountDeps,
  throttle: SignInThrottle,
  attempt: { email: string; password: string; address: string },
): Promise<SignInOutcome> {
  const { email, address } = attempt;
  return throttle.oneAtATime(address, async () => {
    const running = await throttle.delayFor(email, address);
    if (running) {
      deps.logger?.warn({ account: email, address, ...running }, 'sign-in refused during a delay');
      return { kind: 'throttled', seconds: running.seconds };
    }
    const user = await authenticate(deps, email, attempt.password);
    if (user) {
      await throttle.succeeded(email, address);
      await recordAudit(deps.models, { actor: user.email, action: 'sign-in', target: user.email, details: { address }, at: deps.now() });
      return { kind: 'signed-in', user };
    }
    const { delay, failures } = await throttle.failed(email, address);
    const target = email.slice(0, 254);
    await recordAudit(deps.models, { actor: 'sign-in form', action: 'sign-in.failed', target, details: { address, failures }, at: deps.now() });
    if (delay) {
      deps.logger?.warn({ account: target, address, ...delay }, 'sign-in failures from an address: delay started');
      await recordAudit(deps.models, { actor: 'sign-in form', action: 'sign-in.throttled', target, details: { address, ...delay }, at: deps.now() });
    }
    return { kind: 'failed' };
  });
}

/** The signed-in user for a session's user id, unless the account was removed or disabled. */
export async function findActiveUser(deps: Pick<AccountDeps, 'models'>, id: string): Promise<SignedInUser | undefined> {
  if (!/^[0-9a-f]{24}$/.test(id)) return undefined;
  const user = await deps.models.User.findOne({ _id: id, disabledAt: { $exists: false } });
  return user ? toSignedInUser(user) : undefined;
}

export async function listUsers(deps: Pick<AccountDeps, 'models'>) {
  return deps.models.User.find({}, { passwordHash: 0 }).sort({ disabledAt: 1, name: 1 }).lean();
}

export async function hasUsers(deps: Pick<AccountDeps, 'models'>): Promise<boolean> {
  return (await deps.models.User.countDocuments({})) > 0;
}

/**
 * Creates a one-time link token for setting up the first coordinator (random
 * 32 bytes; only its hash is stored; valid 24 hours, once). Earlier unused
 * setup tokens are withdrawn. Returns the token for the path /setup/<token>.
 */
export async function createSetupToken(deps: AccountDeps): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const now = deps.now();
  await deps.models.SetupToken.deleteMany({ usedAt: { $exists: false } });
  await deps.models.SetupToken.create({ tokenHash: hashSetupToken(token), expiresAt: new Date(now.getTime() + SETUP_LINK_HOURS * 3600_000) });
  return token;
}

/** True while the setup token is unused and not expired. */
export async function setupTokenIsValid(deps: AccountDeps, token: string): Promise<boolean> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return false;
  return Boolean(await deps.models.SetupToken.exists({ tokenHash: hashSetupToken(token), usedAt: { $exists: false }, expiresAt: { $gt: deps.now() } }));
}

/**
 * Creates the first coordinator through a setup link. The token is claimed by
 * a unique insert, so two submissions of the same link create one user.
 */
export async function redeemSetupToken(deps: AccountDeps, token: string, input: Omit<NewUser, 'role'>): Promise<SignedInUser> {
  const data = newUserSchema.omit({ role: true }).parse(input);
  if (!(await setupTokenIsValid(deps, token))) throw new HttpError(404, 'This setup link is not valid any more.');
  if (await deps.models.User.exists({ email: data.email })) throw new HttpError(409, `A user with the address ${data.email} already exists.`);
  // The unique claim makes the link single-use even when two submissions race.
  if (!(await claimOnce(deps.models, `setup:${hashSetupToken(token)}`, deps.now()))) throw new HttpError(404, 'This setup link is not valid any more.');
  await deps.models.SetupToken.updateOne({ tokenHash: hashSetupToken(token) }, { $set: { usedAt: deps.now() } });
  return createUser(deps, { ...data, role: 'coordinator' }, 'setup link');
}

function hashSetupToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function toSignedInUser(user: { _id: unknown; name: string; email: string; role: string }): SignedInUser {
  return { id: String(user._id), name: user.name, email: user.email, role: user.role as Role };
}
