import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { bootOf, respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform?.close());

describe('answers known from the institution record', () => {
  it('when a fresh questionnaire opens, country and institution type come from the contact’s institution, and nothing is stored', async () => {
    // createInvitedContact's institution: Germany, school-based IVET.
    const { path, invitation } = await createInvitedContact(platform, { language: 'fr' });
    const boot = bootOf((await request(platform.app).get(path).expect(200)).text);
    expect(boot.data).toEqual({ P1: 'DE', P2: 'ivet_school' });
    const stored = await platform.models.Invitation.findById(invitation._id).lean();
    expect(stored?.draft).toBeUndefined();
    expect(stored?.startedAt).toBeUndefined();
  });

  it('when the respondent changed them in a draft, the draft is kept as it is', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const r = respondent(platform, path, invitation.tokenHash);
    await r.saveDraft({ data: { P1: 'AT' }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
    expect(bootOf((await r.open()).text).data).toEqual({ P1: 'AT' });
  });

  it('when answers were submitted, the correction starts from them, not from the institution record', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const r = respondent(platform, path, invitation.tokenHash);
    await r.submit({ data: completeAnswers({ P1: 'FR', P2: 'cvet_adult' }), baseRevision: 0, language: 'en' }).expect(201);
    expect(bootOf((await r.open('?edit=1')).text).data).toMatchObject({ P1: 'FR', P2: 'cvet_adult' });
  });

  it('when the institution record holds a code the questionnaire does not offer, that answer is left empty', async () => {
    const { path, institution } = await createInvitedContact(platform);
    await platform.models.Institution.updateOne({ _id: institution._id }, { $set: { type: 'unknown_kind' } });
    expect(bootOf((await request(platform.app).get(path)).text).data).toEqual({ P1: 'DE' });
  });
});

describe('a copy of the submitted answers', () => {
  it('when a French respondent has submitted, their link serves their answers in French, printable, never cached', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'fr' });
    const r = respondent(platform, path, invitation.tokenHash);
    await r.submit({ data: completeAnswers({ S1_6: 'Un pool de remplaçants <b>régional</b>' }), baseRevision: 0, language: 'fr' }).expect(201);
    const copy = await request(platform.app).get(`${path}/answers`).expect(200);
    expect(copy.headers['cache-control']).toBe('no-store');
    expect(copy.text).toContain('<html lang="fr">');
    expect(copy.text).toContain('Vos réponses');
    expect(copy.text).toContain('Dans quel pays votre établissement est-il situé ?');
    expect(copy.text).toContain('Autriche');
    expect(copy.text).toContain('Obstacle majeur');
    // Free text is escaped, never markup.
    expect(copy.text).toContain('Un pool de remplaçants &lt;b&gt;régional&lt;/b&gt;');
    expect(copy.text).toContain('@media print');

    const download = await request(platform.app).get(`${path}/answers?download=1`).expect(200);
    expect(download.headers['content-disposition']).toMatch(/^attachment; filename=.*\.html/);
  });

  it('when two respondents have submitted, each link shows only its own answers', async () => {
    const first = await createInvitedContact(platform, { language: 'en' });
    const second = await createInvitedContact(platform, { language: 'en' });
    await respondent(platform, first.path, first.invitation.tokenHash).submit({ data: completeAnswers({ S1_6: 'First school’s remark' }), baseRevision: 0, language: 'en' }).expect(201);
    await respondent(platform, second.path, second.invitation.tokenHash).submit({ data: completeAnswers({ P1: 'FI', S1_6: 'Second school’s remark' }), baseRevision: 0, language: 'en' }).expect(201);
    const copy = (await request(platform.app).get(`${second.path}/answers`).expect(200)).text;
    expect(copy).toContain('Second school');
    expect(copy).toContain('Finland');
    expect(copy).not.toContain('First school');
    expect(copy).not.toContain('Austria');
  });

  it('when nothing was submitted yet, or the token is unknown, there is no copy', async () => {
    const { path } = await createInvitedContact(platform, { language: 'de' });
    const none = await request(platform.app).get(`${path}/answers`).expect(404);
    expect(none.text).toContain('Über diesen Link wurden noch keine Antworten übermittelt');
    await request(platform.app).get(`/s/${'A'.repeat(43)}/answers`).expect(404);
  });
});
