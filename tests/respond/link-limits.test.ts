import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/config.ts';
import { unsubscribeToken } from '../../server/mail/unsubscribe-token.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

// The limits a platform gets when nothing is set.
const defaults = parseConfig({});
const opened: TestPlatform[] = [];
async function platformWith(options: Parameters<typeof startTestPlatform>[0] = {}) {
  const platform = await startTestPlatform({ tokenRateLimit: defaults.TOKEN_RATE_LIMIT, unknownTokenLimit: defaults.UNKNOWN_TOKEN_LIMIT, trustProxy: 1, ...options });
  opened.push(platform);
  return platform;
}
afterEach(async () => {
  for (const platform of opened.splice(0)) await platform.close();
});

const SCHOOL = '198.51.100.7';
const unknownToken = (i: number) => `/s/${'0'.repeat(24)}${String(i).padStart(43, 'x')}`;
const draft = (language: string, n: number) => ({ data: {}, pageNo: n % 5, baseRevision: 0, language });

describe('limits on personal links', () => {
  it('respondents behind one school address save drafts every second for a minute and are never limited, while unknown tokens from that address are', async () => {
    const platform = await platformWith();
    const respondents = [await createInvitedContact(platform), await createInvitedContact(platform), await createInvitedContact(platform)];
    const holders = respondents.map(({ path, invitation }) => respondent(platform, path, invitation.tokenHash));
    const statuses: number[] = [];
    const unknown: number[] = [];
    for (let second = 0; second < 60; second += 1) {
      for (const [i, holder] of holders.entries()) {
        statuses.push((await holder.saveDraft(draft('en', second)).set('X-Forwarded-For', SCHOOL)).status);
        if (second === 0) statuses.push((await request(platform.app).get(respondents[i]!.path).set('X-Forwarded-For', SCHOOL)).status);
      }
      if (second % 3 === 0) unknown.push((await request(platform.app).get(unknownToken(second)).set('X-Forwarded-For', SCHOOL)).status);
      platform.clock.advance(1000);
    }
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(statuses).toHaveLength(3 * 61);
    // Unknown tokens: a friendly 404 at first, then 429 for the rest of the window.
    expect(unknown.slice(0, defaults.UNKNOWN_TOKEN_LIMIT)).toEqual(Array(defaults.UNKNOWN_TOKEN_LIMIT).fill(404));
    expect(unknown.slice(defaults.UNKNOWN_TOKEN_LIMIT)).toEqual(Array(20 - defaults.UNKNOWN_TOKEN_LIMIT).fill(429));
    // And a link that was never used before opens from that address too.
    const late = await createInvitedContact(platform);
    await request(platform.app).get(late.path).set('X-Forwarded-For', SCHOOL).expect(200);
  });

  it('a link used faster than its per-minute limit gets 429 with Retry-After, whatever the address, while other links from the same address still open', async () => {
    const platform = await platformWith({ tokenRateLimit: 5 });
    const { path, invitation } = await createInvitedContact(platform);
    const other = await createInvitedContact(platform);
    const holder = respondent(platform, path, invitation.tokenHash);
    for (let i = 0; i < 5; i += 1) {
      await holder.saveDraft(draft('en', i)).set('X-Forwarded-For', `203.0.113.${i + 1}`).expect(200);
    }
    const limited = await request(platform.app).get(path).set('X-Forwarded-For', '203.0.113.99').expect(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    await request(platform.app).get(other.path).set('X-Forwarded-For', '203.0.113.1').expect(200);
    // The next minute the link works again.
    platform.clock.advance(60_000);
    await request(platform.app).get(path).set('X-Forwarded-For', '203.0.113.99').expect(200);
  });

  it('a burst of parallel requests on one link, from many addresses, lets exactly the limit through', async () => {
    const platform = await platformWith({ tokenRateLimit: 10 });
    const { path, invitation } = await createInvitedContact(platform);
    const holder = respondent(platform, path, invitation.tokenHash);
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => holder.saveDraft(draft('en', i)).set('X-Forwarded-For', `203.0.113.${i + 1}`)));
    const statuses = burst.map((response) => response.status).sort();
    expect(statuses).toEqual([...Array(10).fill(200), ...Array(10).fill(429)]);
  });

  it('a German respondent over the limit is told so in German, on the page and when saving', async () => {
    const platform = await platformWith({ tokenRateLimit: 2 });
    const { path, invitation } = await createInvitedContact(platform, { language: 'de' });
    const holder = respondent(platform, path, invitation.tokenHash);
    await holder.open().expect(200);
    await holder.saveDraft(draft('de', 1)).expect(200);
    const save = await holder.saveDraft(draft('de', 2)).expect(429);
    expect(save.body.error).toMatch(/^Zu viele Anfragen über diesen Link in kurzer Zeit\. Bitte warten Sie \d+ Sekunden/);
    const page = await holder.open().expect(429);
    expect(page.text).toContain('<html lang="de">');
    expect(page.text).toContain('Bitte warten Sie');
    expect(page.text).not.toContain('Too many');
  });

  it('the limit of a link holds across two platform instances on one database', async () => {
    const platform = await platformWith({ tokenRateLimit: 6 });
    const second = platform.anotherInstance();
    const { path } = await createInvitedContact(platform);
    for (let i = 0; i < 3; i += 1) {
      await request(platform.app).get(path).expect(200);
      await request(second).get(path).expect(200);
    }
    await request(second).get(path).expect(429);
    await request(platform.app).get(path).expect(429);
  });

  it('unknown tokens are counted per client address behind the proxy, across instances, and their windows are deleted once over', async () => {
    const platform = await platformWith({ unknownTokenLimit: 4 });
    const second = platform.anotherInstance();
    for (let i = 0; i < 4; i += 1) {
      await request(i % 2 ? second : platform.app).get(unknownToken(i)).set('X-Forwarded-For', '192.0.2.1').expect(404);
    }
    const refused = await request(platform.app).get(unknownToken(9)).set('X-Forwarded-For', '192.0.2.1').set('Accept-Language', 'fr-CH, fr;q=0.9').expect(429);
    expect(refused.text).toContain('Trop de liens ont été essayés');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Another client behind the same proxy is not affected.
    await request(second).get(unknownToken(10)).set('X-Forwarded-For', '192.0.2.2').expect(404);
    expect(await platform.models.RateLimitWindow.countDocuments()).toBeGreaterThan(0);
    platform.clock.advance(16 * 60_000);
    await request(platform.app).get(unknownToken(11)).set('X-Forwarded-For', '192.0.2.1').expect(404);
    // Only the window just opened is left: expired ones are swept, so the collection stays small.
    expect(await platform.models.RateLimitWindow.countDocuments()).toBe(1);
  });

  it('an unsubscribe link is limited per link, in the contact’s language, and unknown tokens do not block it', async () => {
    const platform = await platformWith({ tokenRateLimit: 3, unknownTokenLimit: 2 });
    const { contact } = await createInvitedContact(platform, { language: 'de' });
    const path = `/u/${unsubscribeToken(platform.tokenKey, String(contact._id))}`;
    for (let i = 0; i < 4; i += 1) await request(platform.app).get(`/u/${'0'.repeat(24)}.${String(i).padStart(43, 'x')}`).set('X-Forwarded-For', SCHOOL);
    await request(platform.app).get(`/u/${'0'.repeat(24)}.${'z'.repeat(43)}`).set('X-Forwarded-For', SCHOOL).expect(429);
    for (let i = 0; i < 3; i += 1) await request(platform.app).get(path).set('X-Forwarded-For', SCHOOL).expect(200);
    const limited = await request(platform.app).post(path).set('X-Forwarded-For', '203.0.113.5').expect(429);
    expect(limited.text).toContain('Bitte warten Sie');
    expect((await platform.models.Contact.findById(contact._id).lean())?.unsubscribedAt).toBeUndefined();
  });
});
