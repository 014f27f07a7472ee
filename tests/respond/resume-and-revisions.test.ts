import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { bootOf, respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

async function invited(language: 'en' | 'fr' | 'de' = 'en') {
  const { path, invitation } = await createInvitedContact(platform, { language });
  return { path, invitation, r: respondent(platform, path, invitation.tokenHash) };
}

describe('stop and resume', () => {
  it('when a respondent saves on page 3 and reopens the link, the page resumes there with the answers', async () => {
    const { path, invitation, r } = await invited();
    const partial = { P1: 'AT', P2: 'ivet_dual', S1_2a: 3 };
    await r.saveDraft({ data: partial, pageNo: 3, baseRevision: 0, language: 'de' }).expect(200);

    const boot = bootOf((await request(platform.app).get(path).expect(200)).text);
    expect(boot.pageNo).toBe(3);
    expect(boot.data).toEqual(partial);
    expect(boot.language).toBe('de');
    const stored = await platform.models.Invitation.findById(invitation._id).lean();
    expect(stored?.startedAt).toBeInstanceOf(Date);
    expect(stored?.completedAt).toBeUndefined();
  });

  it('when a draft carries keys that are not questions, they are not kept', async () => {
    const { path, r } = await invited();
    await r.saveDraft({ data: { P1: 'FR', 'x.y': 1, $set: { a: 1 }, nonsense: true }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
    const boot = bootOf((await request(platform.app).get(path)).text);
    expect(boot.data).toEqual({ P1: 'FR' });
  });

  it('when a draft is saved again, the later one counts', async () => {
    const { path, r } = await invited();
    await r.saveDraft({ data: { P1: 'FR' }, pageNo: 1, baseRevision: 0, language: 'en' }).expect(200);
    await r.saveDraft({ data: { P1: 'IT', P2: 'cvet_adult' }, pageNo: 2, baseRevision: 0, language: 'en' }).expect(200);
    const boot = bootOf((await request(platform.app).get(path)).text);
    expect(boot).toMatchObject({ pageNo: 2, data: { P1: 'IT', P2: 'cvet_adult' } });
  });
});

describe('idempotent submission', () => {
  it('when the same submission arrives ten times at once (double clicks, retries, tabs), exactly one response is stored', async () => {
    const { invitation, r } = await invited();
    const body = { data: completeAnswers(), baseRevision: 0, language: 'en' };
    const results = await Promise.all(Array.from({ length: 10 }, () => r.submit(body)));
    expect(results.map((res) => res.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(results.map((res) => res.body.revision))).toEqual(new Set([1]));
    expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(1);
    expect(await platform.models.Response.countDocuments({ invitation: invitation._id })).toBe(1);
  });

  it('when a stale tab submits different answers, it is told in its language that newer answers exist and nothing is dropped silently', async () => {
    const { invitation, r } = await invited('de');
    await r.submit({ data: completeAnswers({ S1_5: 5 }), baseRevision: 0, language: 'de' }).expect(201);
    const stale = await r.submit({ data: completeAnswers({ S1_5: 1 }), baseRevision: 0, language: 'de' }).expect(409);
    expect(stale.body).toMatchObject({ conflict: 'newer-submission', latestRevision: 1, submittedAt: expect.any(String) });
    expect(stale.body.error).toContain('bereits Antworten übermittelt');
    const current = await platform.models.Response.findOne({ invitation: invitation._id }).lean();
    expect((current!.data as Record<string, unknown>).S1_5).toBe(5);

    // The respondent chooses to send the stale tab's answers: they become the next revision.
    const mine = await r.submit({ data: completeAnswers({ S1_5: 1 }), baseRevision: stale.body.latestRevision, language: 'de' }).expect(201);
    expect(mine.body).toMatchObject({ revision: 2, duplicate: false });
    const now = await platform.models.Response.findOne({ invitation: invitation._id }).lean();
    expect(now).toMatchObject({ revision: 2 });
    expect((now!.data as Record<string, unknown>).S1_5).toBe(1);
  });

  it('when a tab two revisions behind submits, the conflict names the latest revision', async () => {
    const { r } = await invited();
    await r.submit({ data: completeAnswers({ S1_5: 5 }), baseRevision: 0, language: 'en' }).expect(201);
    await r.submit({ data: completeAnswers({ S1_5: 4 }), baseRevision: 1, language: 'en' }).expect(201);
    const stale = await r.submit({ data: completeAnswers({ S1_5: 1 }), baseRevision: 0, language: 'en' }).expect(409);
    expect(stale.body).toMatchObject({ conflict: 'newer-submission', latestRevision: 2 });
    expect(stale.body.error).toMatch(/already submitted from another window/);
  });

  it('when the same answers are submitted again (a double click, a retry), it is a harmless duplicate', async () => {
    const { r } = await invited();
    await r.submit({ data: completeAnswers({ S1_5: 5 }), baseRevision: 0, language: 'en' }).expect(201);
    // Key order and the page's language do not make answers different.
    const reordered = Object.fromEntries(Object.entries(completeAnswers({ S1_5: 5 })).reverse());
    const again = await r.submit({ data: reordered, baseRevision: 0, language: 'fr' }).expect(200);
    expect(again.body).toMatchObject({ revision: 1, duplicate: true });
  });
});

describe('correcting answers after submission', () => {
  it('when the link is reopened after submission, it shows a confirmation; correcting creates revision 2 and keeps revision 1', async () => {
    const { path, invitation, r } = await invited();
    await r.submit({ data: completeAnswers({ S1_5: 2 }), baseRevision: 0, language: 'en' }).expect(201);

    const confirmation = await request(platform.app).get(path).expect(200);
    expect(confirmation.text).toContain('Thank you');
    expect(confirmation.text).toContain('Correct my answers');
    expect(confirmation.text).not.toContain('id="boot"');

    const edit = bootOf((await request(platform.app).get(`${path}?edit=1`).expect(200)).text);
    expect(edit.revision).toBe(1);
    expect(edit.data.S1_5).toBe(2);

    await r.submit({ data: completeAnswers({ S1_5: 4 }), baseRevision: 1, language: 'en' }).expect(201);
    const revisions = await platform.models.ResponseRevision.find({ invitation: invitation._id }).sort({ revision: 1 }).lean();
    expect(revisions.map((rev) => [rev.revision, (rev.data as Record<string, unknown>).S1_5])).toEqual([
      [1, 2],
      [2, 4],
    ]);
    const current = await platform.models.Response.find({ invitation: invitation._id }).lean();
    expect(current).toHaveLength(1);
    expect(current[0]!.revision).toBe(2);
    expect((current[0]!.data as Record<string, unknown>).S1_5).toBe(4);
    const stored = await platform.models.Invitation.findById(invitation._id).lean();
    expect(stored?.revision).toBe(2);
  });

  it('when a correction fails validation, the submitted revision stays as it was', async () => {
    const { invitation, r } = await invited();
    await r.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
    await r.submit({ data: { ...completeAnswers(), P1: 'nowhere' }, baseRevision: 1, language: 'en' }).expect(422);
    expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(1);
    expect((await platform.models.Response.findOne({ invitation: invitation._id }).lean())?.revision).toBe(1);
  });

  it('when a stale tab saves a draft after the answers were submitted elsewhere, it is told so in its language (409) and can carry on from the latest revision', async () => {
    const { r } = await invited();
    await r.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
    const res = await r.saveDraft({ data: { P1: 'FR' }, pageNo: 1, baseRevision: 0, language: 'fr' }).expect(409);
    expect(res.body).toMatchObject({ conflict: 'newer-submission', latestRevision: 1 });
    expect(res.body.error).toContain('depuis une autre fenêtre');
    // Carrying on from the latest revision saves the page's answers as a correction.
    await r.saveDraft({ data: { P1: 'FR' }, pageNo: 1, baseRevision: res.body.latestRevision, language: 'fr' }).expect(200);
  });

  it('when a submission claims a revision that does not exist yet, it is refused (409)', async () => {
    const { invitation, r } = await invited();
    await r.submit({ data: completeAnswers(), baseRevision: 3, language: 'en' }).expect(409);
    expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(0);
  });

  it('when the process died after storing a revision but before updating the invitation, reopening the link repairs it', async () => {
    const { path, invitation, r } = await invited();
    await r.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
    // Simulate the crash window: the current response and invitation are behind the stored revision.
    await platform.models.Response.deleteOne({ invitation: invitation._id });
    await platform.models.Invitation.updateOne({ _id: invitation._id }, { $set: { revision: 0 }, $unset: { completedAt: 1 } });

    const page = await request(platform.app).get(path).expect(200);
    expect(page.text).toContain('Thank you');
    const repaired = await platform.models.Invitation.findById(invitation._id).lean();
    expect(repaired).toMatchObject({ revision: 1 });
    expect(repaired?.completedAt).toBeInstanceOf(Date);
    expect((await platform.models.Response.findOne({ invitation: invitation._id }).lean())?.revision).toBe(1);
  });
});
