import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootOf, respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform?.close());

describe('when a response counts as started', () => {
  it('a respondent who only changed the language has not started: the draft keeps the language, the invitation stays unstarted', async () => {
    // createInvitedContact's institution: Germany, school-based IVET, pre-filled as P1 and P2.
    const { path, invitation } = await createInvitedContact(platform);
    const r = respondent(platform, path, invitation.tokenHash);
    const prefilled = bootOf((await r.open()).text).data;
    expect(prefilled).toEqual({ P1: 'DE', P2: 'ivet_school' });
    // What the page sends when the language selector changes: the pre-filled answers only.
    await r.saveDraft({ data: prefilled, pageNo: 0, baseRevision: 0, language: 'fr' }).expect(200);
    await r.saveDraft({ data: {}, pageNo: 0, baseRevision: 0, language: 'de' }).expect(200);
    const stored = await platform.models.Invitation.findById(invitation._id).lean();
    expect(stored?.startedAt).toBeUndefined();
    expect(stored?.draft?.json).toContain('"__language":"de"');
  });

  it('an answer of the respondent’s own, or a pre-filled answer changed, starts it', async () => {
    const first = await createInvitedContact(platform);
    await respondent(platform, first.path, first.invitation.tokenHash).saveDraft({ data: { P1: 'DE', P2: 'ivet_school', P3: 'public' }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
    expect((await platform.models.Invitation.findById(first.invitation._id).lean())?.startedAt).toBeInstanceOf(Date);

    const second = await createInvitedContact(platform);
    await respondent(platform, second.path, second.invitation.tokenHash).saveDraft({ data: { P1: 'AT', P2: 'ivet_school' }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
    expect((await platform.models.Invitation.findById(second.invitation._id).lean())?.startedAt).toBeInstanceOf(Date);
  });
});
