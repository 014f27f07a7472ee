import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signIn } from '../helpers/accounts.ts';
import { bootOf, respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

/** The policy the platform has always sent: only its own origin, inline styles for SurveyJS. */
const POLICY = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'base-uri': ["'none'"],
  'object-src': ["'none'"],
};

function directivesOf(header: string | undefined): Record<string, string[]> {
  return Object.fromEntries(
    (header ?? '')
      .split(';')
      .map((directive) => directive.trim().split(/\s+/))
      .filter(([name]) => name)
      .map(([name, ...values]) => [name, values]),
  );
}

let http: TestPlatform;
let https: TestPlatform;
let linkPath: string;
beforeAll(async () => {
  http = await startTestPlatform();
  https = await startTestPlatform({ https: { secureCookies: true, trustProxy: 'loopback', strictTransportSecurity: true } });
  ({ path: linkPath } = await createInvitedContact(http));
});
afterAll(async () => {
  await http.close();
  await https.close();
});

describe('security headers', () => {
  it('every kind of response carries exactly the old Content-Security-Policy and the other protections', async () => {
    const responses = await Promise.all([
      request(http.app).get('/'),
      request(http.app).get('/login'),
      request(http.app).get(linkPath),
      request(http.app).get('/static/respond.js'),
      request(http.app).get('/no-such-page').set('Accept', 'text/html'),
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 404]);
    for (const response of responses) {
      expect(directivesOf(response.headers['content-security-policy'])).toEqual(POLICY);
      expect(response.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'x-frame-options': 'DENY',
        'cross-origin-opener-policy': 'same-origin',
        // helmet's further defaults: no cross-origin embedding of the platform's resources, no legacy loopholes.
        'cross-origin-resource-policy': 'same-origin',
        'x-permitted-cross-domain-policies': 'none',
      });
      expect(response.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('with an http PUBLIC_URL no response asks for https only (no HSTS)', async () => {
    const response = await request(http.app).get('/');
    expect(response.headers['strict-transport-security']).toBeUndefined();
  });

  it('with an https PUBLIC_URL every response asks browsers to use https only for a year (HSTS)', async () => {
    for (const path of ['/', '/login', '/no-such-page']) {
      const response = await request(https.app).get(path).set('X-Forwarded-Proto', 'https');
      expect(response.headers['strict-transport-security'], path).toBe('max-age=31536000');
    }
  });
});

describe('pages with personal data are not cached', () => {
  it('signed-in pages, the sign-in page and their errors say no-store', async () => {
    const { agent } = await signIn(http, 'coordinator');
    for (const path of ['/admin', '/admin/users', '/evidence', '/admin/no-such-page']) {
      const response = await agent.get(path).set('Accept', 'text/html');
      expect(response.headers['cache-control'], path).toBe('no-store');
    }
    expect((await request(http.app).get('/login')).headers['cache-control']).toBe('no-store');
  });

  it('the questionnaire page and its draft and submit answers say no-store', async () => {
    const { path, invitation } = await createInvitedContact(http, { strands: ['S1'] });
    const person = respondent(http, path, invitation.tokenHash);
    const page = await person.open();
    expect(page.status).toBe(200);
    expect(page.headers['cache-control']).toBe('no-store');
    const boot = bootOf(page.text);
    const draft = await person.saveDraft({ data: {}, pageNo: 0, baseRevision: boot.revision, language: 'en' });
    expect(draft.status).toBe(200);
    expect(draft.headers['cache-control']).toBe('no-store');
    const refused = await person.submit({ data: {}, baseRevision: boot.revision, language: 'en' });
    expect(refused.status).toBe(422);
    expect(refused.headers['cache-control']).toBe('no-store');
  });
});
