import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { connect } from '../../server/db/connection.ts';
import { defineModels } from '../../server/db/models.ts';
import { redactUrl } from '../../server/shared/logger.ts';
import { QuestionnaireRegistry } from '../../server/surveys/questionnaire-registry.ts';
import { signIn } from '../helpers/accounts.ts';
import { captureLog } from '../helpers/log-capture.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { inject } from 'vitest';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

const tokenOf = (path: string) => path.split('/').pop()!;

describe('the log', () => {
  it('has one JSON line per request with a request id that the response carries, and never a personal link token', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const opened = await request(platform.app).get(path).expect(200);
    const id = opened.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const line = platform.log.lines.find((l) => l.req?.id === id);
    expect(line).toMatchObject({ msg: 'request completed', req: { method: 'GET', url: '/s/[redacted]' }, res: { statusCode: 200 } });
    await respondent(platform, path, invitation.tokenHash).saveDraft({ data: {}, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
    await request(platform.app).get(`${path}/../unsubscribe-probe`).expect(404);
    await request(platform.app).get(`/u/${tokenOf(path)}`);
    expect(platform.log.text()).not.toContain(tokenOf(path));
  });

  it('never contains a password, a session cookie or a CSRF token, even of a failed sign-in', async () => {
    const { agent, password, csrf, user } = await signIn(platform, 'coordinator');
    await agent.get('/admin/users').expect(200);
    const login = await request(platform.app).get('/login');
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    await request(platform.app).post('/login').set('Cookie', cookie).type('form').send({ email: user.email, password: 'not the password 42', _csrf: 'x' });
    const text = platform.log.text();
    expect(text).not.toContain(password);
    expect(text).not.toContain('not the password 42');
    expect(text).not.toContain(csrf);
    expect(text).not.toContain(cookie.split('=')[1]!.slice(0, 24));
  });

  it('a client error is a "warn" request line without a stack trace; a server fault is one "error" line with the error and the request', async () => {
    await request(platform.app).get('/s/%E0%A4%A').expect(400);
    const clientLine = [...platform.log.lines].reverse().find((l) => l.res?.statusCode === 400)!;
    expect(clientLine.level).toBe(40);
    expect(JSON.stringify(clientLine)).not.toContain('stack');

    // A platform whose database went away: every look-up fails. Format characters in the URL stay data.
    const { path } = await createInvitedContact(platform);
    const log = captureLog();
    const connection = await connect(`${inject('mongoUri')}/logging_db_away`);
    const app = createApp({
      logger: log.logger,
      models: defineModels(connection),
      questionnaires: new QuestionnaireRegistry(),
      secrets: { tokenKey: Buffer.alloc(32, 1), sessionSecret: 'x'.repeat(32), tagKey: Buffer.alloc(32, 2) },
      now: () => new Date(),
      options: { bodyLimit: 262144, tokenRateLimit: 100, cacheViews: true },
    });
    await connection.close();
    const page = await request(app).get(`${path}?edit=%25s%25d%25j`).set('Accept', 'text/html');
    expect(page.status).toBe(500);
    expect(page.text).not.toMatch(/at .*\.ts:\d+|MongoNotConnected|Error:/);
    const faults = log.errors().filter((l) => l.req?.id === page.headers['x-request-id']);
    expect(faults).toHaveLength(1);
    const [fault] = faults;
    expect(fault).toMatchObject({ msg: 'request failed', req: { url: '/s/[redacted]?[query]' }, res: { statusCode: 500 }, err: { type: 'MongoNotConnectedError', stack: expect.any(String) } });
  });

  it('redacts the secret segment of every link kind and keeps query values out', () => {
    expect(redactUrl('/s/abc.def')).toBe('/s/[redacted]');
    expect(redactUrl('/s/abc/draft')).toBe('/s/[redacted]/draft');
    expect(redactUrl('/u/tok?x=1')).toBe('/u/[redacted]?[query]');
    expect(redactUrl('/setup/tok')).toBe('/setup/[redacted]');
    expect(redactUrl('/password-reset/tok')).toBe('/password-reset/[redacted]');
    expect(redactUrl('/admin/privacy/records')).toBe('/admin/privacy/records');
    expect(redactUrl('/evidence?country=AT')).toBe('/evidence?[query]');
    expect(redactUrl('/admin/campaigns/1')).toBe('/admin/campaigns/1');
  });
});
