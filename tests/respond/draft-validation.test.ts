import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
const choiceValue = (choice: any) => choice.value ?? choice;

/** Saves a draft as a fresh respondent; returns the response and the draft stored, if any. */
async function saveAs(data: unknown, language: 'en' | 'fr' | 'de' = 'en') {
  const { path, invitation } = await createInvitedContact(platform, { language });
  const res = await respondent(platform, path, invitation.tokenHash).saveDraft({ data, pageNo: 1, baseRevision: 0, language });
  const stored = await platform.models.Invitation.findById(invitation._id).lean();
  return { res, draft: stored?.draft?.json ? JSON.parse(stored.draft.json) : undefined, startedAt: stored?.startedAt };
}

async function expectRefused(data: Record<string, unknown>, question: string, language: 'en' | 'fr' | 'de' = 'en') {
  const { res, draft, startedAt } = await saveAs({ P1: 'AT', ...data }, language);
  expect(res.status).toBe(422);
  expect(res.body.errors[question]?.[0]).toEqual(expect.any(String));
  expect(draft).toBeUndefined();
  expect(startedAt).toBeUndefined();
  return res.body;
}

describe('server-side validation of a draft', () => {
  it('when a text answer is an operator object such as {"$gt": ""}, the draft is refused with a message in the respondent language', async () => {
    const text = first((q) => q.type === 'comment' || (q.type === 'text' && !q.inputType));
    const body = await expectRefused({ [text.name]: { $gt: '' } }, text.name, 'fr');
    expect(body.error).toContain('n’ont pas pu être enregistrées');
    expect(body.errors[text.name][0]).toBe('Veuillez saisir du texte.');
  });

  it('when a text is 100,000 characters long, the draft is refused naming the maximum', async () => {
    const text = first((q) => q.type === 'comment' && q.maxLength > 0);
    const body = await expectRefused({ [text.name]: 'x'.repeat(100_000) }, text.name);
    expect(body.errors[text.name][0]).toContain(String(text.maxLength));
  });

  it('when answers have the wrong type (a number for a choice, a string for a list, text for a number), the draft is refused', async () => {
    const checkbox = first((q) => q.type === 'checkbox');
    await expectRefused({ P1: 42 }, 'P1');
    await expectRefused({ [checkbox.name]: String(choiceValue(checkbox.choices[0])) }, checkbox.name);
    await expectRefused({ S2_9a: '12' }, 'S2_9a');
    await expectRefused({ P1: 'Atlantis' }, 'P1');
  });

  it('when more choices are picked than allowed, the draft is refused', async () => {
    const capped = first((q) => q.type === 'checkbox' && q.maxSelectedChoices > 0 && q.choices.length > q.maxSelectedChoices);
    await expectRefused({ [capped.name]: capped.choices.map(choiceValue) }, capped.name);
  });

  it('when a draft is incomplete (required answers missing, a number not yet in range), it is saved as it is', async () => {
    const capped = first((q) => q.type === 'checkbox' && q.maxSelectedChoices > 0);
    const data = { P1: 'AT', S2_9a: -1, [capped.name]: [choiceValue(capped.choices[0])] };
    const { res, draft } = await saveAs(data);
    expect(res.status).toBe(200);
    expect(draft).toEqual({ __language: 'en', ...data });
  });
});
