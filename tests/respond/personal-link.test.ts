import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootOf, respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

describe('personal links', () => {
  it('when a contact opens the link, the questionnaire is shown in the invitation language and the opening is recorded', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'fr' });
    const res = await request(platform.app).get(path).expect(200);
    expect(res.text).toContain('<html lang="fr">');
    const boot = bootOf(res.text);
    expect(boot.language).toBe('fr');
    expect(boot.revision).toBe(0);
    expect(boot.json.pages.length).toBeGreaterThan(4);
    expect(boot.version).toMatch(/^[0-9a-f]{16,64}$/);
    const stored = await platform.models.Invitation.findById(invitation._id);
    expect(stored?.openedAt).toBeInstanceOf(Date);
  });

  it('when a token is unknown or malformed, a friendly page says what to do and nothing is revealed', async () => {
    const unknown = await request(platform.app).get(`/s/${'A'.repeat(43)}`).expect(404);
    expect(unknown.text).toContain('This link does not work');
    expect(unknown.text).toContain('ask the survey coordinator');
    await request(platform.app).get('/s/short').expect(404);
    await request(platform.app).get('/s/%7B%22%24gt%22%3A%22%22%7D').expect(404);
  });

  it('when a link was revoked, the page says it is no longer valid and answers are refused', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'de' });
    await platform.models.Invitation.updateOne({ _id: invitation._id }, { $set: { revokedAt: platform.clock.now() } });
    const res = await request(platform.app).get(path).expect(410);
    expect(res.text).toContain('Dieser Link ist nicht mehr gültig');
    const r = respondent(platform, path, invitation.tokenHash);
    await r.saveDraft({ data: {}, pageNo: 0, baseRevision: 0, language: 'de' }).expect(410);
  });

  it('when the campaign has closed, the link shows the closing date and refuses drafts and submissions', async () => {
    const { path, invitation } = await createInvitedContact(platform, { closesInDays: 1 });
    platform.clock.advance(2 * 86_400_000);
    try {
      const res = await request(platform.app).get(path).expect(410);
      expect(res.text).toContain('This survey is closed');
      const r = respondent(platform, path, invitation.tokenHash);
      await r.submit({ data: {}, baseRevision: 0, language: 'en' }).expect(410);
      expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(0);
    } finally {
      platform.clock.advance(-2 * 86_400_000);
    }
  });
});
