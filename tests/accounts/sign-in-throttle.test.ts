import request from 'supertest';
import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignInThrottle } from '../../server/accounts/sign-in-throttle.ts';
import { createUser } from '../../server/accounts/user.service.ts';
import { RateLimitWindows } from '../../server/shared/rate-limit.store.ts';
import { csrfOf } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  // Behind one reverse proxy: the client address comes from X-Forwarded-For.
  platform = await startTestPlatform({ trustProxy: 1 });
});
afterAll(async () => {
  await platform.close();
});

let counter = 0;
async function account() {
  counter += 1;
  const email = `owner${counter}@board.example`;
  const password = `the real password number ${counter}`;
  await createUser({ models: platform.models, now: platform.clock.now }, { name: `Owner ${counter}`, email, role: 'coordinator', password }, 'test');
  return { email, password };
}

/** A browser at one client address with the sign-in form open. */
async function browserAt(address: string, app: Express = platform.app) {
  const agent = request.agent(app);
  const csrf = csrfOf((await agent.get('/login').set('X-Forwarded-For', address).expect(200)).text);
  return (email: string, password: string) => agent.post('/login').set('X-Forwarded-For', address).type('form').send({ email, password, _csrf: csrf });
}

describe('throttling failed sign-ins', () => {
  it('wrong passwords from one address do not stop the right password from another address', async () => {
    const { email, password } = await account();
    const attacker = await browserAt('203.0.113.66');
    const statuses: number[] = [];
    for (let i = 0; i < 30; i += 1) {
      statuses.push((await attacker(email, `guess ${i}`)).status);
      platform.clock.advance(1000);
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses).toContain(429);
    // Even the right password is refused to the throttled address...
    expect((await attacker(email, password)).status).toBe(429);
    // ...while the owner, elsewhere, signs in at once.
    const owner = await browserAt('198.51.100.20');
    const signedIn = await owner(email, password);
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.location).toBe('/admin');
  });

  it('the attacker’s address waits longer after each further failure', async () => {
    const { email } = await account();
    const attacker = await browserAt('203.0.113.77');
    for (let i = 0; i < 5; i += 1) expect((await attacker(email, `guess ${i}`)).status).toBe(401);
    const waits: number[] = [];
    for (let round = 0; round < 4; round += 1) {
      const refused = await attacker(email, 'one more guess');
      expect(refused.status).toBe(429);
      expect(refused.text).toContain('Too many failed sign-ins');
      const wait = Number(refused.headers['retry-after']);
      waits.push(wait);
      platform.clock.advance(wait * 1000);
      expect((await attacker(email, `late guess ${round}`)).status).toBe(401);
    }
    expect(waits).toEqual([1, 2, 4, 8]);
  });

  it('a burst of parallel guesses from one address gets only the free failures checked', async () => {
    const { email } = await account();
    const attacker = await browserAt('203.0.113.55');
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => attacker(email, `parallel guess ${i}`)));
    const statuses = burst.map((response) => response.status).sort();
    expect(statuses).toEqual([...Array(5).fill(401), ...Array(7).fill(429)]);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'sign-in.failed', target: email })).toBe(5);
  });

  it('one address trying many accounts is throttled for every account, other addresses are not', async () => {
    const accounts = await Promise.all(Array.from({ length: 21 }, () => account()));
    const sprayer = await browserAt('203.0.113.88');
    const statuses: number[] = [];
    for (const { email } of accounts.slice(0, 20)) statuses.push((await sprayer(email, 'Winter2026!')).status);
    expect(statuses).toEqual(Array(20).fill(401));
    const last = accounts[20]!;
    expect((await sprayer(last.email, last.password)).status).toBe(429);
    expect((await (await browserAt('198.51.100.21'))(last.email, last.password)).status).toBe(303);
  });

  it('failures counted by one platform instance throttle the same address at another', async () => {
    const { email } = await account();
    const first = await browserAt('203.0.113.99');
    const second = await browserAt('203.0.113.99', platform.anotherInstance());
    for (let i = 0; i < 5; i += 1) await (i % 2 ? second : first)(email, `guess ${i}`).expect(401);
    expect((await second(email, 'another guess')).status).toBe(429);
    expect((await first(email, 'another guess')).status).toBe(429);
  });

  it('sign-ins, failures and throttling are in the audit log with the client address, never with a password', async () => {
    const { email, password } = await account();
    const attacker = await browserAt('203.0.113.111');
    for (let i = 0; i < 5; i += 1) await attacker(email, `secret guess ${i}`);
    await (await browserAt('198.51.100.22'))(email, password);
    const entries = await platform.models.AuditEntry.find({ target: email }).sort({ at: 1, _id: 1 }).lean();
    expect(entries.map((entry) => entry.action)).toEqual([
      'user.add',
      'sign-in.failed',
      'sign-in.failed',
      'sign-in.failed',
      'sign-in.failed',
      'sign-in.failed',
      'sign-in.throttled',
      'sign-in',
    ]);
    expect(JSON.parse(entries[1]!.details!)).toMatchObject({ address: '203.0.113.111' });
    expect(JSON.parse(entries[6]!.details!)).toMatchObject({ address: '203.0.113.111', by: 'account and address', seconds: 1 });
    expect(entries[7]!.actor).toBe(email);
    expect(JSON.parse(entries[7]!.details!)).toMatchObject({ address: '198.51.100.22' });
    const everything = JSON.stringify(await platform.models.AuditEntry.find({}).lean());
    expect(everything).not.toContain('secret guess');
    expect(everything).not.toContain(password);
  });

  it('sign-ins to different accounts from one address have their password checks run side by side', async () => {
    const throttle = new SignInThrottle({ windows: new RateLimitWindows({ models: platform.models, now: platform.clock.now }), now: platform.clock.now });
    const address = '203.0.113.121';
    const events: string[] = [];
    let secondStarted!: () => void;
    const second = new Promise<void>((resolve) => (secondStarted = resolve));
    // Only a guard, so that checks taken one after the other end the test with a wrong order instead of hanging.
    const guard = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
    const [first, other] = await Promise.all([
      throttle.attempt('first@office.example', address, async () => {
        events.push('first check starts');
        await Promise.race([second, guard]);
        events.push('first check ends');
        return undefined;
      }),
      throttle.attempt('second@office.example', address, async () => {
        events.push('second check starts');
        secondStarted();
        events.push('second check ends');
        return { name: 'second' };
      }),
    ]);
    expect(events).toEqual(['first check starts', 'second check starts', 'second check ends', 'first check ends']);
    expect(first).toMatchObject({ kind: 'failed', failures: { accountAndAddress: 1, address: 1 } });
    expect(other).toEqual({ kind: 'passed', user: { name: 'second' } });
  });

  it('a burst of wrong passwords for many accounts from one address stops at the address’s free failures', async () => {
    const accounts = await Promise.all(Array.from({ length: 30 }, () => account()));
    const sprayer = await browserAt('203.0.113.122');
    const burst = await Promise.all(accounts.map(({ email }) => sprayer(email, 'Spring2027!')));
    const statuses = burst.map((response) => response.status).sort();
    expect(statuses).toEqual([...Array(20).fill(401), ...Array(10).fill(429)]);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'sign-in.failed', target: { $in: accounts.map((a) => a.email) } })).toBe(20);
    // The right password from there waits too; elsewhere it passes.
    expect((await sprayer(accounts[0]!.email, accounts[0]!.password)).status).toBe(429);
    expect((await (await browserAt('198.51.100.23'))(accounts[0]!.email, accounts[0]!.password)).status).toBe(303);
  });

  it('sign-ins that succeed side by side give back the failure slots they held', async () => {
    const accounts = await Promise.all(Array.from({ length: 26 }, () => account()));
    const office = await browserAt('203.0.113.123');
    for (const { email } of accounts.slice(0, 19)) expect((await office(email, 'typo')).status).toBe(401);
    // Six colleagues sign in at once: each held a slot while its password was checked.
    const colleagues = await Promise.all(accounts.slice(19, 25).map(() => browserAt('203.0.113.123')));
    const signedIn = await Promise.all(accounts.slice(19, 25).map(({ email, password }, i) => colleagues[i]!(email, password)));
    expect(signedIn.map((response) => response.status)).toEqual(Array(6).fill(303));
    // So the address has used 19 of its 20 free failures, not 25.
    expect((await office(accounts[25]!.email, 'typo')).status).toBe(401);
    expect((await office(accounts[25]!.email, accounts[25]!.password)).status).toBe(429);
  });
});
