import { createHash } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrfOf, signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform.close();
});

/** A fresh browser that signs in through the form; returns it with its new session's CSRF token. */
async function signInAs(email: string, password: string) {
  const agent = request.agent(platform.app);
  const login = await agent.get('/login').expect(200);
  const response = await agent.post('/login').type('form').send({ email, password, _csrf: csrfOf(login.text) });
  return { agent, response };
}

async function csrfFrom(agent: ReturnType<typeof request.agent>, path: string) {
  return csrfOf((await agent.get(path).expect(200)).text);
}

describe('passwords people choose', () => {
  it('a common or breached password is refused with a message saying what to do, and no account is made', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    for (const password of ['Password123!', 'qwertyuiop12', 'iloveyou2024']) {
      const response = await agent.post('/admin/users').type('form').send({ name: 'Weak Choice', email: 'weak@board.example', role: 'reviewer', password, _csrf: csrf });
      expect(response.status).toBe(400);
      expect(response.text).toContain('The password is too easy to guess');
      expect(response.text).toContain('Choose a passphrase of four or more unrelated words');
    }
    expect(await platform.models.User.exists({ email: 'weak@board.example' })).toBeNull();
  });

  it('the first coordinator cannot pick a common password on the setup link either', async () => {
    const { createSetupToken } = await import('../../server/accounts/user.service.ts');
    const token = await createSetupToken({ models: platform.models, now: platform.clock.now });
    const agent = request.agent(platform.app);
    const csrf = await csrfFrom(agent, `/setup/${token}`);
    const weak = await agent.post(`/setup/${token}`).type('form').send({ name: 'First One', email: 'first.one@board.example', password: 'password1234', confirm: 'password1234', _csrf: csrf });
    expect(weak.status).toBe(400);
    expect(weak.text).toContain('too easy to guess');
    expect(await platform.models.User.exists({ email: 'first.one@board.example' })).toBeNull();
  });
});

describe('a password a coordinator set', () => {
  it('works for the first sign-in only: the user must set their own before reaching any other page', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const first = 'violet tractor sings under copper rain';
    await agent.post('/admin/users').type('form').send({ name: 'Nora Field', email: 'nora@board.example', role: 'reviewer', password: first, _csrf: csrf }).expect(200);
    expect((await platform.models.User.findOne({ email: 'nora@board.example' }).lean())?.passwordExpired).toBe(true);

    const nora = await signInAs('nora@board.example', first);
    expect(nora.response.status).toBe(303);
    // There, and then on to the page asked for.
    for (const [path, location] of [['/admin', '/admin/password'], ['/evidence', '/admin/password?next=%2Fevidence'], ['/admin/users', '/admin/password?next=%2Fadmin%2Fusers']]) {
      const page = await nora.agent.get(path!).set('Accept', 'text/html');
      expect(page.status).toBe(303);
      expect(page.headers.location).toBe(location);
    }
    const form = await nora.agent.get('/admin/password').expect(200);
    expect(form.text).toContain('Please set your own now');
    const noraCsrf = csrfOf(form.text);
    // Any other request is refused, not only pages.
    expect((await nora.agent.post('/admin/users').type('form').send({ name: 'X', email: 'x2@board.example', role: 'reviewer', _csrf: noraCsrf })).status).toBe(403);

    const wrongCurrent = await nora.agent.post('/admin/password').type('form').send({ current: 'not it at all, no', password: 'amber kettle drifts past seven owls', confirm: 'amber kettle drifts past seven owls', _csrf: noraCsrf });
    expect(wrongCurrent.status).toBe(400);
    expect(wrongCurrent.text).toContain('The current password is wrong');
    const same = await nora.agent.post('/admin/password').type('form').send({ current: first, password: first, confirm: first, _csrf: noraCsrf });
    expect(same.status).toBe(400);
    expect(same.text).toContain('must differ');

    const changed = await nora.agent.post('/admin/password').type('form').send({ current: first, password: 'amber kettle drifts past seven owls', confirm: 'amber kettle drifts past seven owls', _csrf: noraCsrf });
    expect(changed.status).toBe(303);
    // A reviewer's work is the evidence.
    expect(changed.headers.location).toBe('/evidence');
    await nora.agent.get('/evidence').expect(200);
    expect((await platform.models.User.findOne({ email: 'nora@board.example' }).lean())?.passwordExpired).toBeUndefined();
    expect(await platform.models.AuditEntry.exists({ action: 'user.password-change', actor: 'nora@board.example' })).not.toBeNull();
    expect((await signInAs('nora@board.example', first)).response.status).toBe(401);
  });
});

describe('changing one\'s own password', () => {
  it('needs the current password and a new one that is not too easy to guess; the old one stops working', async () => {
    const { agent, user, password } = await signIn(platform, 'coordinator');
    const csrf = await csrfFrom(agent, '/admin/password');
    expect((await agent.post('/admin/password').type('form').send({ current: password, password: 'new password', confirm: 'new password', _csrf: csrf })).status).toBe(400);
    const common = await agent.post('/admin/password').type('form').send({ current: password, password: 'Password1234', confirm: 'Password1234', _csrf: csrf });
    expect(common.text).toContain('too easy to guess');
    const differ = await agent.post('/admin/password').type('form').send({ current: password, password: 'quiet lanterns fold the morning map', confirm: 'quiet lanterns fold the evening map', _csrf: csrf });
    expect(differ.text).toContain('The two passwords differ');
    expect((await agent.post('/admin/password').type('form').send({ current: password, password: 'quiet lanterns fold the morning map', confirm: 'quiet lanterns fold the morning map' })).status).toBe(403);

    const elsewhere = await signInAs(user.email, password);
    platform.clock.advance(1000);
    const done = await agent.post('/admin/password').type('form').send({ current: password, password: 'quiet lanterns fold the morning map', confirm: 'quiet lanterns fold the morning map', _csrf: csrf });
    expect(done.status).toBe(303);
    expect((await agent.get(done.headers.location!)).text).toContain('Your password was changed');
    // The session that changed it goes on; the user's other sessions end.
    await agent.get('/admin').expect(200);
    expect((await elsewhere.agent.get('/admin').set('Accept', 'text/html')).headers.location).toBe('/login?next=%2Fadmin');
    expect((await signInAs(user.email, password)).response.status).toBe(401);
    expect((await signInAs(user.email, 'quiet lanterns fold the morning map')).response.status).toBe(303);
  });
});

describe('guessing the current password on the change page', () => {
  it('is throttled like sign-in: after five wrong ones even the right one must wait', async () => {
    const { agent, password } = await signIn(platform, 'coordinator');
    const csrf = await csrfFrom(agent, '/admin/password');
    const change = (current: string) =>
      agent.post('/admin/password').type('form').send({ current, password: 'seven herons borrow a velvet ladder', confirm: 'seven herons borrow a velvet ladder', _csrf: csrf });
    for (let attempt = 1; attempt <= 5; attempt += 1) expect((await change(`guess number ${attempt}`)).status).toBe(400);
    const refused = await change(password);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(refused.text).toContain('Too many wrong passwords from your address');
  });
});

describe('a password reset link', () => {
  it('is made by a coordinator, stored only as a hash, works once, and is audited', async () => {
    const coordinator = await signIn(platform, 'coordinator');
    const reviewer = await signIn(platform, 'reviewer');
    const page = await coordinator.agent.post('/admin/users/reset-link').type('form').send({ email: reviewer.user.email, _csrf: coordinator.csrf });
    expect(page.status).toBe(200);
    const path = /https?:\/\/[^/]+(\/password-reset\/[A-Za-z0-9_-]{43})/.exec(page.text)?.[1];
    expect(path).toBeDefined();
    const token = path!.split('/').pop()!;
    const stored = await platform.models.PasswordReset.find().lean();
    expect(stored.map((r) => r._id)).toContain(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(stored)).not.toContain(token);
    expect(await platform.models.AuditEntry.exists({ action: 'user.password-reset-link', target: reviewer.user.email, actor: coordinator.user.email })).not.toBeNull();

    const browser = request.agent(platform.app);
    const form = await browser.get(path!).expect(200);
    expect(form.text).toContain(reviewer.user.email);
    const csrf = csrfOf(form.text);
    expect((await browser.post(path!).type('form').send({ password: 'copper whales hum beneath the pier', confirm: 'copper whales hum beneath the pier' })).status).toBe(403);
    const weak = await browser.post(path!).type('form').send({ password: 'letmein12345', confirm: 'letmein12345', _csrf: csrf });
    expect(weak.status).toBe(400);
    expect(weak.text).toContain('too easy to guess');

    platform.clock.advance(1000);
    // Two tabs submit the same link at once: exactly one sets the password.
    const other = request.agent(platform.app);
    const otherCsrf = csrfOf((await other.get(path!).expect(200)).text);
    const [a, b] = await Promise.all([
      browser.post(path!).type('form').send({ password: 'copper whales hum beneath the pier', confirm: 'copper whales hum beneath the pier', _csrf: csrf }),
      other.post(path!).type('form').send({ password: 'granite swallows nest in tin cups', confirm: 'granite swallows nest in tin cups', _csrf: otherCsrf }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 404]);
    const winner = a.status === 200 ? 'copper whales hum beneath the pier' : 'granite swallows nest in tin cups';
    expect((await signInAs(reviewer.user.email, winner)).response.status).toBe(303);
    expect((await signInAs(reviewer.user.email, reviewer.password)).response.status).toBe(401);
    expect((await browser.get(path!)).status).toBe(404);
    // Whoever was signed in with the old password is signed out.
    expect((await reviewer.agent.get('/evidence').set('Accept', 'text/html')).headers.location).toBe('/login?next=%2Fevidence');
    expect(await platform.models.AuditEntry.countDocuments({ action: 'user.password-reset', target: reviewer.user.email })).toBe(1);
  });

  it('expires after 24 hours, and a newer link replaces the older one', async () => {
    const coordinator = await signIn(platform, 'coordinator');
    const reviewer = await signIn(platform, 'reviewer');
    const make = async () => {
      const page = await coordinator.agent.post('/admin/users/reset-link').type('form').send({ email: reviewer.user.email, _csrf: coordinator.csrf }).expect(200);
      return /https?:\/\/[^/]+(\/password-reset\/[A-Za-z0-9_-]{43})/.exec(page.text)![1]!;
    };
    const older = await make();
    const newer = await make();
    expect((await request(platform.app).get(older)).status).toBe(404);
    await request(platform.app).get(newer).expect(200);
    platform.clock.advance(24 * 3600_000 + 1000);
    expect((await request(platform.app).get(newer)).status).toBe(404);
  });

  it('a reviewer can neither make reset links nor enable users', async () => {
    const target = await signIn(platform, 'reviewer');
    const { agent, csrf } = await signIn(platform, 'reviewer');
    expect((await agent.post('/admin/users/reset-link').type('form').send({ email: target.user.email, _csrf: csrf })).status).toBe(403);
    expect((await agent.post('/admin/users/enable').type('form').send({ email: target.user.email, _csrf: csrf })).status).toBe(403);
    expect(await platform.models.PasswordReset.exists({ user: target.user.id })).toBeNull();
  });
});

describe('a disabled user', () => {
  it('can be enabled again by a coordinator, signs in again, and both steps are audited', async () => {
    const coordinator = await signIn(platform, 'coordinator');
    const reviewer = await signIn(platform, 'reviewer');
    await coordinator.agent.post('/admin/users/disable').type('form').send({ email: reviewer.user.email, _csrf: coordinator.csrf }).expect(303);
    expect((await signInAs(reviewer.user.email, reviewer.password)).response.status).toBe(401);
    const list = await coordinator.agent.get('/admin/users').expect(200);
    expect(list.text).toContain(`Enable ${reviewer.user.email} again`);
    expect((await coordinator.agent.post('/admin/users/enable').type('form').send({ email: reviewer.user.email })).status).toBe(403);
    await coordinator.agent.post('/admin/users/enable').type('form').send({ email: reviewer.user.email, _csrf: coordinator.csrf }).expect(303);
    expect((await signInAs(reviewer.user.email, reviewer.password)).response.status).toBe(303);
    expect(await platform.models.AuditEntry.exists({ action: 'user.enable', target: reviewer.user.email, actor: coordinator.user.email })).not.toBeNull();
    expect((await coordinator.agent.post('/admin/users/enable').type('form').send({ email: reviewer.user.email, _csrf: coordinator.csrf })).status).toBe(409);
  });
});
