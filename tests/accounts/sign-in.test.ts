import argon2 from 'argon2';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeExpiredSessions } from '../../server/accounts/auth.middleware.ts';
import { createSetupToken, createUser } from '../../server/accounts/user.service.ts';
import { csrfOf, signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform.close();
});

const deps = () => ({ models: platform.models, now: platform.clock.now });
const sessionCookie = (response: request.Response) =>
  ([] as string[]).concat(response.headers['set-cookie'] ?? []).find((c) => c.startsWith('vet.sid='))?.split(';')[0];

async function loginForm(agent: ReturnType<typeof request.agent>) {
  const page = await agent.get('/login').expect(200);
  return { csrf: csrfOf(page.text), cookie: sessionCookie(page) };
}

describe('signing in', () => {
  it('with the right password the user reaches the dashboard under a new session id', async () => {
    await createUser(deps(), { name: 'Maria Rossi', email: 'Maria.Rossi@Board.example', role: 'coordinator', password: 'correct horse battery' }, 'test');
    const agent = request.agent(platform.app);
    const before = await loginForm(agent);
    expect(before.cookie).toBeDefined();
    const response = await agent.post('/login').type('form').send({ email: 'maria.rossi@board.example', password: 'correct horse battery', _csrf: before.csrf });
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe('/admin');
    const after = sessionCookie(response);
    expect(after).toBeDefined();
    expect(after).not.toBe(before.cookie);
    const dashboard = await agent.get('/admin').expect(200);
    expect(dashboard.text).toContain('Maria Rossi');
    expect(dashboard.text).toContain('href="/admin/users"');
    // The session lives in the database, not in the process.
    const stored = await platform.models.User.db.collection('sessions').findOne({ _id: decodeURIComponent(after!).slice('vet.sid=s:'.length).split('.')[0] } as never);
    expect(stored).not.toBeNull();
  });

  it('the stored password is an Argon2id hash, never the password', async () => {
    const user = await platform.models.User.findOne({ email: 'maria.rossi@board.example' }).lean();
    expect(user?.passwordHash).toMatch(/^\$argon2id\$/);
    expect(JSON.stringify(user)).not.toContain('correct horse battery');
  });

  it('a hash made with older settings is replaced at the next sign-in, and still signs in', async () => {
    await createUser(deps(), { name: 'Ana Silva', email: 'ana@board.example', role: 'reviewer', password: 'an older hash here' }, 'test');
    const older = await argon2.hash('an older hash here', { type: argon2.argon2id }); // the library's defaults: 64 MiB, t=3, p=4
    await platform.models.User.updateOne({ email: 'ana@board.example' }, { $set: { passwordHash: older } });
    const agent = request.agent(platform.app);
    const { csrf } = await loginForm(agent);
    await agent.post('/login').type('form').send({ email: 'ana@board.example', password: 'an older hash here', _csrf: csrf }).expect(303);
    const stored = (await platform.models.User.findOne({ email: 'ana@board.example' }).lean())!.passwordHash;
    expect(stored).not.toBe(older);
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    const again = request.agent(platform.app);
    const form = await loginForm(again);
    await again.post('/login').type('form').send({ email: 'ana@board.example', password: 'an older hash here', _csrf: form.csrf }).expect(303);
  });

  it('with a wrong password the sign-in is refused and the session stays anonymous', async () => {
    await createUser(deps(), { name: 'Jan Novak', email: 'jan@board.example', role: 'reviewer', password: 'the right password' }, 'test');
    const agent = request.agent(platform.app);
    const { csrf } = await loginForm(agent);
    const response = await agent.post('/login').type('form').send({ email: 'jan@board.example', password: 'a wrong password', _csrf: csrf });
    expect(response.status).toBe(401);
    expect(response.text).toContain('The email address or the password is wrong');
    const admin = await agent.get('/admin').set('Accept', 'text/html');
    expect(admin.status).toBe(303);
    expect(admin.headers.location).toMatch(/^\/login/);
  });

  it('after five failures for one account from one address, even the right password is refused there for a while', async () => {
    await createUser(deps(), { name: 'Eva Berg', email: 'eva@board.example', role: 'coordinator', password: 'eva has a long password' }, 'test');
    const agent = request.agent(platform.app);
    const { csrf } = await loginForm(agent);
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 6; attempt += 1) {
      const response = await agent.post('/login').type('form').send({ email: 'eva@board.example', password: `guess ${attempt}`, _csrf: csrf });
      statuses.push(response.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    const blocked = await agent.post('/login').type('form').send({ email: 'eva@board.example', password: 'eva has a long password', _csrf: csrf });
    expect(blocked.status).toBe(429);
    expect(blocked.headers['retry-after']).toBeDefined();
  });

  it('a sign-in without the CSRF token of the login page is refused', async () => {
    const response = await request(platform.app).post('/login').type('form').send({ email: 'maria.rossi@board.example', password: 'correct horse battery' });
    expect(response.status).toBe(403);
  });

  it('a disabled user cannot sign in, and their open session ends', async () => {
    const { agent } = await signIn(platform, 'reviewer', { email: 'leaving@board.example' });
    const coordinator = await signIn(platform, 'coordinator');
    await coordinator.agent.post('/admin/users/disable').type('form').send({ email: 'leaving@board.example', _csrf: coordinator.csrf }).expect(303);
    const after = await agent.get('/admin').set('Accept', 'text/html');
    expect(after.status).toBe(303);
    const user = await platform.models.User.findOne({ email: 'leaving@board.example' });
    expect(user?.disabledAt).toBeInstanceOf(Date);
  });

  it('signing out ends the session', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    await agent.post('/logout').type('form').send({ _csrf: csrf }).expect(303);
    const after = await agent.get('/admin').set('Accept', 'text/html');
    expect(after.status).toBe(303);
  });
});

describe('the first coordinator', () => {
  it('is created through the one-time setup link, which then stops working', async () => {
    const token = await createSetupToken(deps());
    const agent = request.agent(platform.app);
    const page = await agent.get(`/setup/${token}`).expect(200);
    const form = { name: 'First Coordinator', email: 'first@board.example', password: 'a very long first password', confirm: 'a very long first password', _csrf: csrfOf(page.text) };
    const created = await agent.post(`/setup/${token}`).type('form').send(form);
    expect(created.status).toBe(303);
    expect(created.headers.location).toBe('/admin');
    const user = await platform.models.User.findOne({ email: 'first@board.example' }).lean();
    expect(user?.role).toBe('coordinator');
    await agent.get('/admin/users').expect(200);

    const again = request.agent(platform.app);
    expect((await again.get(`/setup/${token}`)).status).toBe(404);
    const csrf = csrfOf((await again.get('/login')).text);
    const second = await again.post(`/setup/${token}`).type('form').send({ ...form, email: 'intruder@board.example', _csrf: csrf });
    expect(second.status).toBe(404);
    expect(await platform.models.User.exists({ email: 'intruder@board.example' })).toBeNull();
  });

  it('two submissions of the same setup link at once create one coordinator', async () => {
    const token = await createSetupToken(deps());
    const agents = [request.agent(platform.app), request.agent(platform.app)];
    const tokens = await Promise.all(agents.map(async (agent) => csrfOf((await agent.get(`/setup/${token}`).expect(200)).text)));
    const results = await Promise.all(
      agents.map((agent, i) =>
        agent.post(`/setup/${token}`).type('form').send({ name: `Racer ${i}`, email: `racer${i}@board.example`, password: 'a long racing password', confirm: 'a long racing password', _csrf: tokens[i] }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([303, 404]);
    expect(await platform.models.User.countDocuments({ email: /^racer/ })).toBe(1);
  });

  it('an expired setup link does not work', async () => {
    const token = await createSetupToken(deps());
    platform.clock.advance(25 * 3600_000);
    expect((await request(platform.app).get(`/setup/${token}`)).status).toBe(404);
  });
});

describe('users page', () => {
  it('a coordinator adds a reviewer; the password is generated, shown once, and the addition is in the audit log', async () => {
    const { agent, csrf, user } = await signIn(platform, 'coordinator');
    const response = await agent.post('/admin/users').type('form').send({ name: 'Rev <b>Iewer</b>', email: 'Reviewer.One@board.example', role: 'reviewer', _csrf: csrf });
    expect(response.status).toBe(200);
    expect(response.text).toContain('Rev &lt;b&gt;Iewer&lt;/b&gt;');
    const password = /<code>([^<]+)<\/code>/.exec(response.text)?.[1];
    expect(password).toBeDefined();
    const stored = await platform.models.User.findOne({ email: 'reviewer.one@board.example' }).lean();
    expect(stored?.role).toBe('reviewer');
    const entry = await platform.models.AuditEntry.findOne({ action: 'user.add', target: 'reviewer.one@board.example' }).lean();
    expect(entry?.actor).toBe(user.email);
    const audit = await agent.get('/admin/audit').expect(200);
    expect(audit.text).toContain('reviewer.one@board.example');
    const onlyDisables = await agent.get('/admin/audit?action=user.disable').expect(200);
    expect(onlyDisables.text).not.toContain('reviewer.one@board.example');
  });

  it('without the CSRF token nothing is written', async () => {
    const { agent } = await signIn(platform, 'coordinator');
    const before = await platform.models.User.countDocuments();
    const response = await agent.post('/admin/users').type('form').send({ name: 'Sneaky', email: 'sneaky@board.example', role: 'coordinator' });
    expect(response.status).toBe(403);
    expect(await platform.models.User.countDocuments()).toBe(before);
    const wrong = await agent.post('/admin/users').type('form').send({ name: 'Sneaky', email: 'sneaky@board.example', role: 'coordinator', _csrf: 'forged' });
    expect(wrong.status).toBe(403);
    expect(await platform.models.User.exists({ email: 'sneaky@board.example' })).toBeNull();
  });

  it('a reviewer is refused the users page, the audit log and adding users', async () => {
    const { agent, csrf } = await signIn(platform, 'reviewer');
    expect((await agent.get('/admin/users')).status).toBe(403);
    expect((await agent.get('/admin/audit')).status).toBe(403);
    const response = await agent.post('/admin/users').type('form').send({ name: 'X', email: 'x@board.example', role: 'coordinator', _csrf: csrf });
    expect(response.status).toBe(403);
    expect(await platform.models.User.exists({ email: 'x@board.example' })).toBeNull();
  });

  it('an anonymous request to an admin page is sent to the sign-in page, an API call gets 401', async () => {
    const page = await request(platform.app).get('/admin/users').set('Accept', 'text/html');
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/login?next=%2Fadmin%2Fusers');
    const api = await request(platform.app).post('/admin/users').type('form').send({});
    expect([401, 403]).toContain(api.status);
  });
});

describe('going on to the page asked for', () => {
  const page = '/evidence/questions?campaign=6b13d40a76a1fb85153c0192&by=country';
  /** The page a form carries on to, as the browser reads its hidden field. */
  const hiddenNext = (html: string) => /name="next" value="([^"]+)"/.exec(html)?.[1]?.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');

  it('a reviewer sent to sign in from an evidence page lands on that page, filter and breakdown kept', async () => {
    await createUser(deps(), { name: 'Rita Reviewer', email: 'rita@board.example', role: 'reviewer', password: 'amber tractor violin harbour' }, 'test');
    const agent = request.agent(platform.app);
    const asked = await agent.get(page).set('Accept', 'text/html').expect(303);
    expect(asked.headers.location).toBe(`/login?next=${encodeURIComponent(page)}`);
    const form = await agent.get(asked.headers.location!).expect(200);
    expect(hiddenNext(form.text)).toBe(page);
    const signedIn = await agent.post('/login').type('form').send({ email: 'rita@board.example', password: 'amber tractor violin harbour', next: page, _csrf: csrfOf(form.text) });
    expect(signedIn.headers.location).toBe(page);
  });

  it('a user who must first set their own password goes on to the page asked for once it is set', async () => {
    await createUser(deps(), { name: 'New Reviewer', email: 'new.reviewer@board.example', role: 'reviewer', password: 'chosen by a coordinator' }, 'test', { passwordExpired: true });
    const agent = request.agent(platform.app);
    const form = await agent.get(`/login?next=${encodeURIComponent(page)}`).expect(200);
    const signedIn = await agent.post('/login').type('form').send({ email: 'new.reviewer@board.example', password: 'chosen by a coordinator', next: page, _csrf: csrfOf(form.text) });
    expect(signedIn.headers.location).toBe(page);
    const sent = await agent.get(page).set('Accept', 'text/html').expect(303);
    expect(sent.headers.location).toBe(`/admin/password?next=${encodeURIComponent(page)}`);
    const passwordPage = await agent.get(sent.headers.location!).expect(200);
    const changed = await agent
      .post('/admin/password')
      .type('form')
      .send({ current: 'chosen by a coordinator', password: 'my own harbour violin', confirm: 'my own harbour violin', next: hiddenNext(passwordPage.text), _csrf: csrfOf(passwordPage.text) });
    expect(changed.headers.location).toBe(page);
  });

  it('without a page asked for, a reviewer lands on the evidence and a coordinator on the dashboard', async () => {
    const reviewer = await signIn(platform, 'reviewer');
    const coordinator = await signIn(platform, 'coordinator');
    for (const [who, home] of [[reviewer, '/evidence'], [coordinator, '/admin']] as const) {
      const agent = request.agent(platform.app);
      const form = await agent.get('/login').expect(200);
      const signedIn = await agent.post('/login').type('form').send({ email: who.user.email, password: who.password, _csrf: csrfOf(form.text) });
      expect(signedIn.headers.location, who.user.role).toBe(home);
      await agent.get(home).expect(200);
    }
  });

  it('never to another site or outside the signed-in pages', async () => {
    await createUser(deps(), { name: 'Careful User', email: 'careful@board.example', role: 'reviewer', password: 'amber tractor violin harbour' }, 'test');
    for (const next of ['//evil.example/admin', 'https://evil.example/admin', '/admin/../../evil', '/evidence//evil.example', '/s/some-link', '/admin\\evil', 'javascript:alert(1)']) {
      const agent = request.agent(platform.app);
      const form = await agent.get('/login').expect(200);
      const signedIn = await agent.post('/login').type('form').send({ email: 'careful@board.example', password: 'amber tractor violin harbour', next, _csrf: csrfOf(form.text) });
      expect(signedIn.headers.location, next).toBe('/evidence');
    }
  });
});

describe('expired sessions', () => {
  it('are removed with an acknowledged delete, and live ones stay signed in', async () => {
    const { agent } = await signIn(platform, 'reviewer');
    const sessions = platform.models.User.db.collection('sessions');
    await sessions.insertOne({ _id: 'expired-session' as never, expires: new Date(platform.clock.current.getTime() - 1000), session: '{}' });
    const removed = await removeExpiredSessions(deps());
    expect(removed).toBe(1);
    expect(await sessions.findOne({ _id: 'expired-session' as never })).toBeNull();
    await agent.get('/evidence').expect(200);
  });
});
