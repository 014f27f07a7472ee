import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regenerateLink } from '../../server/invitations/invitation.service.ts';
import { unsubscribeToken } from '../../server/mail/unsubscribe-token.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let limited: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
  limited = await startTestPlatform({ tokenRateLimit: 1 });
});
afterAll(async () => {
  await platform?.close();
  await limited?.close();
});

const DAY = 86_400_000;
/** The whole page, layout included, is in that language: html lang, skip link, header. */
function expectPageIn(html: string, language: 'fr' | 'de') {
  expect(html).toContain(`<html lang="${language}">`);
  expect(html).toContain(language === 'fr' ? 'Aller au contenu' : 'Zum Inhalt springen');
  expect(html).toContain(language === 'fr' ? 'Enquête sur la mobilité du personnel de l’EFP' : 'Umfrage zur Mobilität des Berufsbildungspersonals');
  expect(html).not.toContain('Skip to content');
}

describe('every page a respondent can reach is in their language', () => {
  it('when a link is unknown, the page follows the browser’s Accept-Language among en/fr/de', async () => {
    const fr = await request(platform.app).get(`/s/${'A'.repeat(43)}`).set('Accept-Language', 'fr-BE,fr;q=0.9,en;q=0.5').expect(404);
    expectPageIn(fr.text, 'fr');
    expect(fr.text).toContain('Ce lien ne fonctionne pas');
    const de = await request(platform.app).get('/s/short').set('Accept-Language', 'de').expect(404);
    expectPageIn(de.text, 'de');
    expect(de.text).toContain('Dieser Link funktioniert nicht');
    const other = await request(platform.app).get('/s/short').set('Accept-Language', 'pt').expect(404);
    expect(other.text).toContain('This link does not work');
  });

  it('when the campaign has closed or not opened yet, the page is in the invitation’s language whatever the browser says', async () => {
    const closed = await createInvitedContact(platform, { language: 'fr', closesInDays: 1 });
    platform.clock.advance(2 * DAY);
    try {
      const res = await request(platform.app).get(closed.path).set('Accept-Language', 'en').expect(410);
      expectPageIn(res.text, 'fr');
      expect(res.text).toContain('Cette enquête est close');
    } finally {
      platform.clock.advance(-2 * DAY);
    }
    const later = await createInvitedContact(platform, { language: 'de' });
    await platform.models.Campaign.updateOne({ _id: later.campaignId }, { $set: { opensAt: new Date(platform.clock.current.getTime() + DAY) } });
    const res = await request(platform.app).get(later.path).set('Accept-Language', 'en').expect(403);
    expectPageIn(res.text, 'de');
    expect(res.text).toContain('Diese Umfrage ist noch nicht geöffnet');
  });

  it('when a link was revoked or replaced, the page is in the invitation’s language', async () => {
    const revoked = await createInvitedContact(platform, { language: 'fr' });
    await platform.models.Invitation.updateOne({ _id: revoked.invitation._id }, { $set: { revokedAt: platform.clock.now() } });
    expectPageIn((await request(platform.app).get(revoked.path).expect(410)).text, 'fr');

    const replaced = await createInvitedContact(platform, { language: 'de' });
    await regenerateLink({ models: platform.models, now: platform.clock.now, tokenKey: platform.tokenKey, publicUrl: '' }, replaced.invitation._id, 0, 'coordinator@example.org');
    const res = await request(platform.app).get(replaced.path).expect(410);
    expectPageIn(res.text, 'de');
    expect(res.text).toContain('Dieser Link wurde ersetzt');
  });

  it('when a link is used too often, the refusal page is in the invitation’s language', async () => {
    const { path } = await createInvitedContact(limited, { language: 'fr' });
    await request(limited.app).get(path).expect(200);
    const res = await request(limited.app).get(path).expect(429);
    expectPageIn(res.text, 'fr');
    expect(res.text).toContain('Trop de tentatives');
  });

  it('when the answers are submitted, the thank-you page is in the respondent’s language with their download link', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'de' });
    await respondent(platform, path, invitation.tokenHash).submit({ data: completeAnswers(), baseRevision: 0, language: 'de' }).expect(201);
    const res = await request(platform.app).get(path).expect(200);
    expectPageIn(res.text, 'de');
    expect(res.text).toContain('Vielen Dank');
    expect(res.text).toContain('Eine Kopie Ihrer Antworten herunterladen');
  });

  it('when the respondent switched language and submitted, the thank-you page is in the language they answered in', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'en' });
    await respondent(platform, path, invitation.tokenHash).submit({ data: completeAnswers(), baseRevision: 0, language: 'fr' }).expect(201);
    const res = await request(platform.app).get(path).expect(200);
    expectPageIn(res.text, 'fr');
    expect(res.text).toContain('Merci');
  });

  it('when a request on a personal link fails, the error is in the respondent’s language', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'fr' });
    const forged = await request(platform.app).post(`${path}/submit`).set('X-CSRF-Token', 'forged').send({ data: {}, baseRevision: 0, language: 'fr' }).expect(403);
    expect(forged.body.error).toBe('Cette page a expiré. Veuillez la recharger.');
    const invalid = await respondent(platform, path, invitation.tokenHash).submit({ data: { ...completeAnswers(), P1: 'XX' }, baseRevision: 0, language: 'fr' }).expect(422);
    expect(invalid.body.error).toBe('Certaines réponses ne sont pas valides.');
    const malformed = await request(platform.app).get('/s/%E0%A4%A').set('Accept-Language', 'de').expect(400);
    expectPageIn(malformed.text, 'de');
    expect(malformed.text).toContain('Fehler 400');
    const missing = await request(platform.app).get(`${path}/nothing-here`).set('Accept-Language', 'fr').expect(404);
    expectPageIn(missing.text, 'fr');
    expect(missing.text).toContain('Cette page n’existe pas');
  });
});

describe('unsubscribe pages are in the contact’s language', () => {
  it('when a French contact opens and confirms the unsubscribe link, both pages are in French', async () => {
    const { contact } = await createInvitedContact(platform, { language: 'fr' });
    const path = `/u/${unsubscribeToken(platform.tokenKey, String(contact._id))}`;
    const page = await request(platform.app).get(path).set('Accept-Language', 'en').expect(200);
    expectPageIn(page.text, 'fr');
    expect(page.text).toContain('Me désinscrire');
    expect(page.headers['cache-control']).toBe('no-store');
    const done = await request(platform.app).post(path).expect(200);
    expectPageIn(done.text, 'fr');
    expect(done.text).toContain('Vous êtes désinscrit(e)');
    expect((await platform.models.Contact.findById(contact._id).lean())?.unsubscribedAt).toBeInstanceOf(Date);
  });

  it('when a German contact opens the link, it is in German; a link naming nobody follows the browser', async () => {
    const { contact } = await createInvitedContact(platform, { language: 'de' });
    const page = await request(platform.app).get(`/u/${unsubscribeToken(platform.tokenKey, String(contact._id))}`).expect(200);
    expectPageIn(page.text, 'de');
    expect(page.text).toContain('Keine E-Mails zur Umfrage');
    const invalid = await request(platform.app).get(`/u/${'0'.repeat(24)}.${'x'.repeat(43)}`).set('Accept-Language', 'de').expect(404);
    expectPageIn(invalid.text, 'de');
    expect(invalid.text).toContain('Dieser Abmeldelink funktioniert nicht');
  });
});
