import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startValidationPool, type ValidationPool } from '../../server/respond/validation-pool.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let pool: ValidationPool;
let platform: TestPlatform;
beforeAll(async () => {
  pool = startValidationPool({ threads: 1 });
  platform = await startTestPlatform({ appDeps: { validateSubmission: pool.validate } });
});
afterAll(async () => {
  await platform.close();
  await pool.close();
});

describe('submissions validated in a worker thread', () => {
  it('are stored exactly as the validator in the process would store them', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const sent = { ...completeAnswers(), not_a_question: 'dropped' };
    const res = await respondent(platform, path, invitation.tokenHash).submit({ data: sent, baseRevision: 0, language: 'en' });
    expect(res.status).toBe(201);
    const stored = await platform.models.ResponseRevision.findOne({ invitation: invitation._id }).lean();
    const inProcess = platform.questionnaires.forStrands(['S1', 'S2', 'S3', 'S4']).validator.validate(sent, 'en');
    expect(inProcess.ok).toBe(true);
    expect(stored?.data).toEqual(inProcess.ok && inProcess.data);
    expect(stored?.data).not.toHaveProperty('not_a_question');
  });

  it('when answers are invalid, the respondent gets the same messages in their language and nothing is stored', async () => {
    const { path, invitation } = await createInvitedContact(platform, { language: 'de' });
    const sent = { ...completeAnswers(), S1_2a: 99 };
    const res = await respondent(platform, path, invitation.tokenHash).submit({ data: sent, baseRevision: 0, language: 'de' });
    expect(res.status).toBe(422);
    const inProcess = platform.questionnaires.forStrands(['S1', 'S2', 'S3', 'S4']).validator.validate(sent, 'de');
    expect(inProcess.ok).toBe(false);
    expect(res.body.errors).toEqual(!inProcess.ok && inProcess.errors);
    expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(0);
  });
});
