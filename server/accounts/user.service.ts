import argon2 from 'argon2';
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Models } from '../db/models.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { HttpError } from '../shared/http-error.ts';
import { recordAudit } from './audit.service.ts';
import { passwordWeakness } from './password-policy.ts';
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
  /** The password was chosen by someone else: the user must set their own before anything else. */
  passwordExpired: boolean;
  /** When the password was last set (ms; 0 if never changed): sessions from before it end. */
  passwordChangedAt: number;
}

export const emailSchema = z.string().trim().toLowerCase().pipe(z.email('is not a valid email address').max(254));
export const passwordSchema = z.string().min(12, 'must have at least 12 characters').max(200, 'must have at most 200 characters');
export const newUserSchema = z.object({
  name: z.string().trim().min(1, 'is required').max(200),
  email: emailSchema,
  role: z.enum(ROLES),
  password: passwordSchema,
});
/** A new user with a password that is not too easy to guess (their own name and address included). */
export const newUserInputSchema = newUserSchema.superRefine((user, context) => {
  const weakness = passwordWeakness(user.password, [user.name, user.email]);
  if (weakness) context.addIssue({ code: 'custom', path: ['password'], message: weakness });
});
export type NewUser = z.infer<typeof newUserSchema>;

/**
 * What is wrong with a password someone chooses for themselves (setup link,
 * password change, reset link), as sentences for the form; empty when fine.
 */
export function chosenPasswordProblems(password: string, confirm: string, personal: string[]): string[] {
  const length = passwordSchema.safeParse(password);
  const problems = length.success ? [] : length.error.issues.map((issue) => `The password ${issue.message}.`);
  if (length.success) {
    const weakness = passwordWeakness(password, personal);
    if (weakness) problems.push(`The password ${weakness}`);
  }
  if (password !== confirm) problems.push('The two passwords differ.');
  return problems;
}

const SETUP_LINK_HOURS = 24;
const RESET_LINK_HOURS = 24;
// Verified against when the email is unknown, so that an unknown address takes as long as a wrong password.
let dummyHash: Promise<string> | undefined;

/**
 * Argon2id at OWASP's Password Storage Cheat Sheet's first setting (19 MiB,
 * two passes, one lane). The library's default (64 MiB, three passes, four
 * lanes) took 0.5–0.9 s a check on this 2-core machine under load, eight at
 * once 4.3–4.7 s, so a room signing in at 9:00 waited in line; this one
 * 30–120 ms and 0.2–0.5 s. Hashes made before are upgraded at their next
 * sign-in (rehashIfOld).
 */
const PASSWORD_HASH = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, PASSWORD_HASH);
}

/** After a successful check: a hash made with other settings is replaced by one made with PASSWORD_HASH (the password is at hand only now). */
async function rehashIfOld(deps: AccountDeps, user: { _id: unknown; passwordHash: string }, password: string): Promise<void> {
  if (!argon2.needsRehash(user.passwordHash, PASSWORD_HASH)) return;
  await deps.models.User.updateOne({ _id: user._id, passwordHash: user.passwordHash }, { $set: { passwordHash: await hashPassword(password) } });
}

/** A readable random password (about 120 bits), shown once to whoever creates the account. */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}

/**
 * Creates a user with an Argon2id password hash. An address already in use
 * is refused with a 409 HttpError; a password too easy to guess with a 400.
 * With `passwordExpired` (a coordinator chose the password) the user must set
 * their own at the first sign-in. Recorded in the audit log.
 */
export async function createUser(deps: AccountDeps, input: NewUser, actor: string, options: { passwordExpired?: boolean } = {}): Promise<SignedInUser> {
  const parsed = newUserInputSchema.safeParse(input);
  if (!parsed.success) throw new HttpError(400, parsed.error.issues.map((issue) => `${String(issue.path[0] ?? 'input')} ${issue.message}`).join('\n'));
  const data = parsed.data;
  if (await deps.models.User.exists({ email: data.email })) {
    throw new HttpError(409, `A user with the address ${data.email} already exists.`);
  }
  let user;
  try {
    user = await deps.models.User.create({
      name: data.name,
      email: data.email,
      role: data.role,
      passwordHash: await hashPassword(data.password),
      ...(options.passwordExpired ? { passwordExpired: true } : {}),
    });
  } catch (error) {
    if ((error as { code?: number }).code === 11000) throw new HttpError(409, `A user with the address ${data.email} already exists.`);
    throw error;
  }
  await recordAudit(deps.models, { actor, action: 'user.add', target: data.email, details: { role: data.role, passwordExpired: Boolean(options.passwordExpired) }, at: deps.now() });
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

/** Lets a disabled user sign in again (with their old password, or a reset link's new one). */
export async function enableUser(deps: AccountDeps, email: string, actor: string): Promise<void> {
  const address = emailSchema.parse(email);
  const result = await deps.models.User.updateOne({ email: address, disabledAt: { $exists: true } }, { $unset: { disabledAt: 1 } });
  if (result.matchedCount === 0) {
    const exists = await deps.models.User.exists({ email: address });
    throw new HttpError(exists ? 409 : 404, exists ? `${address} is not disabled.` : `There is no user with the address ${address}.`);
  }
  await recordAudit(deps.models, { actor, action: 'user.enable', target: address, at: deps.now() });
}

/**
 * Changes the signed-in user's own password: the current one must be given,
 * the new one must differ and not be too easy to guess (the route checks that
 * first, to list every problem at once). Ends an expired initial password, and
 * every session signed in before (the caller renews its own). Returns the user as now.
 */
export async function changeOwnPassword(deps: AccountDeps, userId: string, input: { current: string; password: string }): Promise<SignedInUser> {
  const user = await deps.models.User.findById(userId);
  if (!user || user.disabledAt) throw new HttpError(401, 'Please sign in first.');
  if (!(await argon2.verify(user.passwordHash, input.current).catch(() => false))) throw new WrongCurrentPassword();
  if (input.current === input.password) throw new HttpError(400, 'The new password must differ from the current one.');
  await setPassword(deps, user._id, input.password);
  await recordAudit(deps.models, { actor: user.email, action: 'user.password-change', target: user.email, details: { wasExpired: Boolean(user.passwordExpired) }, at: deps.now() });
  const changed = await deps.models.User.findById(user._id);
  return toSignedInUser(changed!);
}

/** The current password given to a change is wrong: counted by the sign-in throttle like a failed sign-in. */
export class WrongCurrentPassword extends HttpError {
  constructor() {
    super(400, 'The current password is wrong.');
  }
}

async function setPassword(deps: AccountDeps, userId: unknown, password: string) {
  await deps.models.User.updateOne({ _id: userId }, { $set: { passwordHash: await hashPassword(password), passwordChangedAt: deps.now() }, $unset: { passwordExpired: 1 } });
}

/**
 * Makes a one-time link with which another user sets a new password
 * (random 32 bytes; only its SHA-256 hash is stored; valid 24 hours, once).
 * Earlier links of that user stop working. Returns the token for
 * /password-reset/<token>. A disabled user must be re-enabled first.
 */
export async function createPasswordResetLink(deps: AccountDeps, email: string, actor: string): Promise<{ token: string; expiresAt: Date }> {
  const address = emailSchema.parse(email);
  const user = await deps.models.User.findOne({ email: address }, { _id: 1, disabledAt: 1 }).lean();
  if (!user) throw new HttpError(404, `There is no user with the address ${address}.`);
  if (user.disabledAt) throw new HttpError(409, `${address} is disabled: enable the account first.`);
  const now = deps.now();
  // Both filters read the whole (small) collection on FerretDB v1; making a link is rare.
  await deps.models.PasswordReset.deleteMany({ $or: [{ user: user._id }, { expiresAt: { $lte: now } }] });
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + RESET_LINK_HOURS * 3600_000);
  await deps.models.PasswordReset.create({ _id: hashToken(token), user: user._id, expiresAt, createdBy: actor });
  await recordAudit(deps.models, { actor, action: 'user.password-reset-link', target: address, details: { expiresAt }, at: now });
  return { token, expiresAt };
}

/** The user a reset link is for, while it is unused and unexpired and the account enabled; otherwise undefined. */
export async function passwordResetUser(deps: AccountDeps, token: string): Promise<{ name: string; email: string } | undefined> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
  const reset = await deps.models.PasswordReset.findById(hashToken(token)).lean();
  if (!reset || reset.expiresAt <= deps.now()) return undefined;
  const user = await deps.models.User.findById(reset.user, { name: 1, email: 1, disabledAt: 1 }).lean();
  return user && !user.disabledAt ? { name: user.name, email: user.email } : undefined;
}

/**
 * Sets a new password through a reset link, once: the link's document is
 * deleted by its _id and only the request whose delete removed it goes on.
 * The password must already have been checked (chosenPasswordProblems).
 */
export async function redeemPasswordReset(deps: AccountDeps, token: string, password: string): Promise<void> {
  const gone = new HttpError(404, 'This password reset link is not valid any more: it was used, replaced or has expired. Ask a coordinator for a new one.');
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) throw gone;
  const reset = await deps.models.PasswordReset.findById(hashToken(token)).lean();
  if (!reset || reset.expiresAt <= deps.now()) throw gone;
  const user = await deps.models.User.findById(reset.user, { email: 1, disabledAt: 1 }).lean();
  if (!user || user.disabledAt) throw gone;
  const { deletedCount } = await deps.models.PasswordReset.deleteOne({ _id: reset._id });
  if (deletedCount !== 1) throw gone;
  await setPassword(deps, reset.user, password);
  await recordAudit(deps.models, { actor: 'password reset link', action: 'user.password-reset', target: user.email, details: { linkBy: reset.createdBy }, at: deps.now() });
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
  await rehashIfOld(deps, user, password);
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
  const result = await throttle.attempt(email, address, () => authenticate(deps, email, attempt.password));
  if (result.kind === 'throttled') {
    deps.logger?.warn({ account: email, address, ...result.delay }, 'sign-in refused during a delay');
    return { kind: 'throttled', seconds: result.delay.seconds };
  }
  if (result.kind === 'passed') {
    await recordAudit(deps.models, { actor: result.user.email, action: 'sign-in', target: result.user.email, details: { address }, at: deps.now() });
    return { kind: 'signed-in', user: result.user };
  }
  const { delay, failures } = result;
  const target = email.slice(0, 254);
  await recordAudit(deps.models, { actor: 'sign-in form', action: 'sign-in.failed', target, details: { address, failures }, at: deps.now() });
  if (delay) {
    deps.logger?.warn({ account: target, address, ...delay }, 'sign-in failures from an address: delay started');
    await recordAudit(deps.models, { actor: 'sign-in form', action: 'sign-in.throttled', target, details: { address, ...delay }, at: deps.now() });
  }
  return { kind: 'failed' };
}

/** The signed-in user for a session's user id, unless the account was removed or disabled. */
export async function findActiveUser(deps: Pick<AccountDeps, 'models'>, id: string): Promise<SignedInUser | undefined> {
  if (!/^[0-9a-f]{24}$/.test(id)) return undefined;
  // By _id alone: on FerretDB v1 any other filter reads the whole collection, on every request.
  const user = await deps.models.User.findById(id);
  return user && !user.disabledAt ? toSignedInUser(user) : undefined;
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
  await deps.models.SetupToken.create({ tokenHash: hashToken(token), expiresAt: new Date(now.getTime() + SETUP_LINK_HOURS * 3600_000) });
  return token;
}

/** True while the setup token is unused and not expired. */
export async function setupTokenIsValid(deps: AccountDeps, token: string): Promise<boolean> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return false;
  return Boolean(await deps.models.SetupToken.exists({ tokenHash: hashToken(token), usedAt: { $exists: false }, expiresAt: { $gt: deps.now() } }));
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
  if (!(await claimOnce(deps.models, `setup:${hashToken(token)}`, deps.now()))) throw new HttpError(404, 'This setup link is not valid any more.');
  await deps.models.SetupToken.updateOne({ tokenHash: hashToken(token) }, { $set: { usedAt: deps.now() } });
  return createUser(deps, { ...data, role: 'coordinator' }, 'setup link');
}

/** Links (setup, password reset) are stored only as the SHA-256 hash of their token. */
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function toSignedInUser(user: { _id: unknown; name: string; email: string; role: string; passwordExpired?: boolean | null; passwordChangedAt?: Date | null }): SignedInUser {
  return {
    id: String(user._id),
    name: user.name,
    email: user.email,
    role: user.role as Role,
    passwordExpired: Boolean(user.passwordExpired),
    passwordChangedAt: user.passwordChangedAt?.getTime() ?? 0,
  };
}
