import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord, flattenerOf, type AnalyticRecordDoc } from '../../server/evidence/analytic-record.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { bootOf, questionsOf, respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let questions: Array<Record<string, any>>;

beforeAll(async () => {
  platform = await startTestPlatform();
  const { path } = await createInvitedContact(platform);
  questions = questionsOf(bootOf((await request(platform.app).get(path)).text).json);
});
afterAll(async () => platform.close());

const first = (predicate: (q: Record<string, any>) => boolean) => {
  const found = questions.find(predicate);
  if (!found) throw new Error('no question of that kind in the definitions');
  return found;
};

/** Submits answers as a fresh respondent; returns the response and whether anything was stored. */
async function submitAs(data: unknown, language: 'en' | 'fr' | 'de' = 'en') {
  const { path, invitation } = await createInvitedContact(platform, { language });
  const res = await respondent(platform, path, invitation.tokenHash).submit({ data, baseRevision: 0, language });
  const revisions = await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id });
  const current = await platform.models.Response.findOne({ invitation: invitation._id }).lean();
  const after = await platform.models.Invitation.findById(invitation._id).lean();
  return { res, revisions, current, invitation: after };
}

async function expectRejected(data: unknown, question: string) {
  const { res, revisions, current, invitation } = await submitAs(data);
  expect(res.status).toBe(422);
  expect(res.body.errors[question]?.[0]).toEqual(expect.any(String));
  expect(revisions).toBe(0);
  expect(current).toBeNull();
  expect(invitation?.completedAt).toBeUndefined();
  return res.body.errors[question][0] as string;
}

/** The closed answers as the evidence counts them: from the response's analytic record. */
async function countedItems(invitationId: unknown) {
  const doc = await platform.models.AnalyticRecord.findById(invitationId).lean<AnalyticRecordDoc>();
  return doc ? decodeRecord(doc, flattenerOf(buildCatalogue(loadSurveyLibrary()))).items : [];
}

describe('server-side validation of a submission', () => {
  it('when every answer is valid, the response is stored with its profile and definition version, and its analytic record with its items', async () => {
    const { res, revisions, current, invitation } = await submitAs(completeAnswers());
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ revision: 1, duplicate: false });
    expect(revisions).toBe(1);
    expect(current?.revision).toBe(1);
    expect(current?.definitionVersion).toMatch(/^[0-9a-f]{16,64}$/);
    expect(current?.profile.country).toBe(completeAnswers().P1);
    expect((await countedItems(current?._id)).some((item) => item.question === 'S1_2a' && item.strand === 'S1')).toBe(true);
    expect(invitation?.completedAt).toBeInstanceOf(Date);
    expect(invitation?.revision).toBe(1);
  });

  it('when a scale answer (agreement, barrier, maturity) is outside its scale, it is rejected', async () => {
    await expectRejected({ ...completeAnswers(), S1_5: 99 }, 'S1_5');
    await expectRejected({ ...completeAnswers(), S1_2a: 0 }, 'S1_2a');
    await expectRejected({ ...completeAnswers(), S1_2a: '4' }, 'S1_2a');
  });

  it('when a single choice is not one of the options, it is rejected', async () => {
    await expectRejected({ ...completeAnswers(), P1: 'Atlantis' }, 'P1');
  });

  it('when a checkbox answer is a string instead of a list, it is rejected', async () => {
    const checkbox = first((q) => q.type === 'checkbox');
    await expectRejected({ ...completeAnswers(), [checkbox.name]: String(checkbox.choices[0].value ?? checkbox.choices[0]) }, checkbox.name);
  });

  it('when more choices are picked than allowed, it is rejected', async () => {
    const capped = first((q) => q.type === 'checkbox' && q.maxSelectedChoices > 0 && q.choices.length > q.maxSelectedChoices);
    const all = capped.choices.map((c: any) => c.value ?? c);
    await expectRejected({ ...completeAnswers(), [capped.name]: all }, capped.name);
  });

  it('when a yes/no question gets "maybe", it is rejected', async () => {
    const yesNo = first((q) => q.type === 'boolean' || (q.type === 'radiogroup' && q.choices?.length === 2));
    await expectRejected({ ...completeAnswers(), [yesNo.name]: 'maybe' }, yesNo.name);
  });

  it('when a text is longer than its maximum, it is rejected', async () => {
    const text = first((q) => (q.type === 'comment' || (q.type === 'text' && !q.inputType)) && q.maxLength > 0);
    const message = await expectRejected({ ...completeAnswers(), [text.name]: 'x'.repeat(text.maxLength + 1) }, text.name);
    expect(message).toContain(String(text.maxLength));
  });

  it('when a text answer is an object such as {"$gt": 1}, it is rejected', async () => {
    const text = first((q) => q.type === 'comment' || (q.type === 'text' && !q.inputType));
    await expectRejected({ ...completeAnswers(), [text.name]: { $gt: 1 } }, text.name);
  });

  it('when a number is not a whole number or out of range, it is rejected', async () => {
    await expectRejected({ ...completeAnswers(), S2_9a: 2.5 }, 'S2_9a');
    await expectRejected({ ...completeAnswers(), S2_9a: -1 }, 'S2_9a');
    await expectRejected({ ...completeAnswers(), S2_9a: '12' }, 'S2_9a');
  });

  it('when a cross-check fails (more long-term learners than outgoing learners), it is rejected on that question', async () => {
    const answers = completeAnswers();
    await expectRejected({ ...answers, S2_10a: Number(answers.S2_9a) + 1 }, 'S2_10a');
  });

  it('when the funding shares do not add up to 100, it is rejected', async () => {
    const errors = (await submitAs({ ...completeAnswers(), S4_6b: 50, S4_6c: 30, S4_6d: 30 })).res.body.errors;
    expect(Object.keys(errors).some((name) => name.startsWith('S4_6'))).toBe(true);
  });

  it('when a required answer is missing, it is rejected', async () => {
    const required = first((q) => q.isRequired && q.name.startsWith('P'));
    const answers: Record<string, unknown> = completeAnswers();
    delete answers[required.name];
    await expectRejected(answers, required.name);
  });

  it('when the respondent answers in French, the messages are in French', async () => {
    const rating = first((q) => q.type === 'radiogroup');
    const { res } = await submitAs({ ...completeAnswers(), [rating.name]: 99 }, 'fr');
    expect(res.status).toBe(422);
    expect(res.body.errors[rating.name][0]).toMatch(/Veuillez/);
  });

  it('when the answers contain unknown keys, they are dropped and the rest is stored', async () => {
    const { res, current } = await submitAs({ ...completeAnswers(), extra: 'x', 'a.b': 1, $where: 'sleep(1000)', __proto__x: 1 });
    expect(res.status).toBe(201);
    expect(Object.keys(current!.data as object)).not.toEqual(expect.arrayContaining(['extra']));
    expect(current!.data).not.toHaveProperty(['a.b']);
    expect(current!.data).not.toHaveProperty('$where');
  });

  it('when answers are given to questions hidden by visibleIf, they are dropped', async () => {
    const hiddenStrand2 = { ...completeAnswers(), P11: false };
    const { res, current } = await submitAs(hiddenStrand2);
    expect(res.status).toBe(201);
    const keys = Object.keys(current!.data as object);
    expect(keys.filter((k) => k.startsWith('S2_'))).toEqual([]);
    expect((await countedItems(current!._id)).filter((i) => i.strand === 'S2')).toEqual([]);
  });

  it('when answers fail checks of every tier on several pages, the 422 lists every one of them at once, in questionnaire order', async () => {
    const answers = completeAnswers({
      P1: 'Atlantis', // not an offered option (type check)
      P3: undefined, // required answer missing (survey-core)
      S1_5: '5', // wrong type: a string for a scale (type check)
      S2_10a: 9999, // more long-term learners than outgoing ones (survey-core cross-check)
      S3_1: { $gt: 1 }, // an object where a scale answer goes (type check)
    });
    const { res, revisions } = await submitAs(answers, 'de');
    expect(res.status).toBe(422);
    expect(Object.keys(res.body.errors)).toEqual(['P1', 'P3', 'S1_5', 'S2_10a', 'S3_1']);
    expect(res.body.errors.P1[0]).toBe('Bitte wählen Sie eine der angebotenen Optionen.');
    expect(res.body.errors.S1_5[0]).toBe('Bitte wählen Sie eine der angebotenen Optionen.');
    expect(res.body.errors.P3[0]).toEqual(expect.any(String));
    expect(res.body.errors.S2_10a[0]).toEqual(expect.any(String));
    expect(revisions).toBe(0);
  });

  it('when the answers are not an object at all, the submission gets 422', async () => {
    for (const data of [[1, 2], 'answers', 42, null]) {
      const { res, revisions } = await submitAs(data);
      expect(res.status).toBe(422);
      expect(revisions).toBe(0);
    }
  });
});

describe('malformed requests', () => {
  it('when the body is not JSON, the answer is 400, not 500', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const r = respondent(platform, path, invitation.tokenHash);
    const res = await r.submit('{"data": {').expect(400);
    expect(res.body.error).toMatch(/not valid JSON/);
  });

  it('when the body is larger than the limit, the answer is 413 and nothing is stored', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const r = respondent(platform, path, invitation.tokenHash);
    await r.submit({ data: { S1_6: 'x'.repeat(300 * 1024) }, baseRevision: 0, language: 'en' }).expect(413);
    expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(0);
  });

  it('when the body has the wrong shape (no revision, unknown language), the answer is 400 naming the field', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const r = respondent(platform, path, invitation.tokenHash);
    const res = await r.submit({ data: completeAnswers(), language: 'xx' }).expect(400);
    expect(res.body.error).toMatch(/baseRevision/);
    expect(res.body.error).toMatch(/language/);
  });

  it('when the CSRF token is missing or wrong, the submission is refused with 403 and nothing is stored', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    await request(platform.app).post(`${path}/submit`).send({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(403);
    await request(platform.app)
      .post(`${path}/submit`)
      .set('X-CSRF-Token', 'forged')
      .send({ data: completeAnswers(), baseRevision: 0, language: 'en' })
      .expect(403);
    expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(0);
  });
});
