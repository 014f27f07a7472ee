import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signIn } from '../helpers/accounts.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

// The error middleware logs only faults of the server at "error"; a client's
// mistake is answered and its request line logged at "warn", with no stack trace.
afterEach(() => {
  expect(platform.log.errors()).toEqual([]);
  expect(platform.log.text()).not.toMatch(/"stack"/);
});

const BAD_PERCENT = '%E0%A4%A';

describe('malformed requests are the client’s error: a 4xx with a clear message, nothing logged', () => {
  it('when a personal link, an unsubscribe link or a setup link has a malformed percent-encoding, the answer is 400', async () => {
    const page = await request(platform.app).get(`/s/${BAD_PERCENT}`).expect(400);
    expect(page.text).toContain('malformed percent-encoding');
    expect(page.text).not.toMatch(/URIError|at .*\.js:\d+/);
    const draft = await request(platform.app).put(`/s/${BAD_PERCENT}/draft`).send({}).expect(400);
    expect(draft.body.error).toMatch(/malformed percent-encoding/);
    await request(platform.app).post(`/s/${BAD_PERCENT}/submit`).send({}).expect(400);
    await request(platform.app).get(`/u/${BAD_PERCENT}`).expect(400);
    await request(platform.app).post(`/u/${BAD_PERCENT}`).expect(400);
    await request(platform.app).get(`/setup/${BAD_PERCENT}`).expect(400);
  });

  it('when a draft comes in an unsupported character set or content encoding, the answer is 415 and says what to send', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const r = respondent(platform, path, invitation.tokenHash);
    const body = JSON.stringify({ data: {}, pageNo: 0, baseRevision: 0, language: 'en' });
    const charset = await r.saveDraft(body).set('Content-Type', 'application/json; charset=koi8-r').expect(415);
    expect(charset.body.error).toMatch(/character set .* UTF-8/);
    const encoding = await r.saveDraft(body).set('Content-Encoding', 'x-unknown').expect(415);
    expect(encoding.body.error).toMatch(/content encoding/);
    // Announced as gzip but not compressed.
    await r.saveDraft(body).set('Content-Encoding', 'gzip').expect(400);
    expect((await platform.models.Invitation.findById(invitation._id).lean())?.draft).toBeUndefined();
  });

  it('when a draft or a submission is nested thousands of levels deep, the answer is 400 and nothing is stored', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const r = respondent(platform, path, invitation.tokenHash);
    const deepArray = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const deepObject = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    for (const deep of [deepArray, deepObject]) {
      const draft = await r.saveDraft(`{"data":{"P1":${deep}},"pageNo":0,"baseRevision":0,"language":"en"}`).expect(400);
      expect(draft.body.error).toMatch(/nested more than \d+ levels/);
      await r.submit(`{"data":{"P1":${deep}},"baseRevision":0,"language":"en"}`).expect(400);
    }
    const stored = await platform.models.Invitation.findById(invitation._id).lean();
    expect(stored?.draft?.json).toBeUndefined();
    expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(0);
  });

  it('when a coordinator’s mail page gets a malformed campaign or message id, the answer is 404; a bad choice is 400', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    await agent.post('/admin/campaigns/not-an-id/send').type('form').send({ _csrf: csrf }).expect(404);
    expect((await agent.get('/admin/campaigns/not-an-id/sending').expect(404)).text).toContain('This campaign does not exist.');
    await agent.get('/admin/campaigns/not-an-id/sending.json').expect(404);
    await agent.post('/admin/mail/unknown/not-an-id').type('form').send({ _csrf: csrf, resolution: 'sent' }).expect(404);
    // A browser's form post is answered with a page that says what is wrong; a client asking for JSON gets JSON.
    const choice = await agent.post(`/admin/mail/unknown/${'a'.repeat(24)}:1`).type('form').send({ _csrf: csrf, resolution: 'drop' }).expect(400).expect('Content-Type', /text\/html/);
    expect(choice.text).toMatch(/<h1>[^<]*resend .* or record it as sent/);
    const asJson = await agent.post(`/admin/mail/unknown/${'a'.repeat(24)}:1`).type('form').set('Accept', 'application/json').send({ _csrf: csrf, resolution: 'drop' }).expect(400);
    expect(asJson.body.error).toMatch(/resend .* or record it as sent/);
    await agent.get(`/admin/institutions/${BAD_PERCENT}`).expect(400);
    await agent.post('/admin/institutions/import').set('Content-Type', 'application/x-www-form-urlencoded; charset=koi8-r').send('text=a').expect(415);
  });
});

