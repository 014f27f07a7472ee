import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { defineModels } from '../../server/db/models.ts';
import type { EvidenceService } from '../../server/evidence/indicator.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn } from '../helpers/accounts.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
/** Instance B: its own app, database connection and evidence, on the same database as instance A (the platform's). */
let connectionB: mongoose.Connection;
let appB: ReturnType<typeof createApp>;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 1, minCellRespondents: 1 });
  connectionB = await mongoose.createConnection(`${inject('mongoUri')}/${platform.models.Response.db.name}`).asPromise();
  appB = createApp({
    models: defineModels(connectionB),
    questionnaires: platform.questionnaires,
    secrets: { tokenKey: platform.tokenKey, sessionSecret: platform.sessionSecret, tagKey: platform.tagKey },
    now: platform.clock.now,
    options: { bodyLimit: 256 * 1024, tokenRateLimit: 10_000, cacheViews: true, minCellInstitutions: 1, minCellRespondents: 1 },
  });
});
afterAll(async () => {
  await (appB.locals.evidence as EvidenceService).close();
  await connectionB.close();
  await platform.close();
});

describe('two instances of the platform on one database', () => {
  it("a response submitted through instance A's link shows in A's evidence at once and in B's once B's follower polled", async () => {
    const first = await createInvitedContact(platform);
    await respondent(platform, first.path, first.invitation.tokenHash).submit({ data: completeAnswers({ P1: 'AT' }), baseRevision: 0, language: 'en' }).expect(201);
    const reviewerA = await signIn(platform, 'reviewer');
    const reviewerB = await signIn({ ...platform, app: appB }, 'reviewer');
    const url = `/evidence/indicators.json?campaign=${first.campaignId}&by=country`;
    const responsesIn = async (agent: typeof reviewerA.agent) => (await agent.get(url).expect(200)).body.responses as number;
    // Both have loaded their records and follow the journal (B polls every 0.5 s by itself; its pages show what it has followed).
    expect(await responsesIn(reviewerA.agent)).toBe(1);
    expect(await responsesIn(reviewerB.agent)).toBe(1);

    const second = await createInvitedContact(platform, { campaignId: first.campaignId });
    await respondent(platform, second.path, second.invitation.tokenHash).submit({ data: completeAnswers({ P1: 'DE' }), baseRevision: 0, language: 'en' }).expect(201);
    expect(await responsesIn(reviewerA.agent)).toBe(2);
    // B's reviewer reloads until B's follower has brought it in (within a poll and its reads).
    await expect.poll(() => responsesIn(reviewerB.agent)).toBe(2);
    const seenByB = (await reviewerB.agent.get(url).expect(200)).body;
    expect(seenByB).toEqual((await reviewerA.agent.get(url).expect(200)).body);

    // A new revision through A moves B's figures as well.
    await respondent(platform, second.path, second.invitation.tokenHash).submit({ data: completeAnswers({ P1: 'FR' }), baseRevision: 1, language: 'en' }).expect(201);
    await expect.poll(async () => JSON.stringify((await reviewerB.agent.get(url).expect(200)).body)).toContain('"FR"');
    const afterRevision = (await reviewerB.agent.get(url).expect(200)).body;
    expect(afterRevision).toEqual((await reviewerA.agent.get(url).expect(200)).body);
    expect(JSON.stringify(afterRevision)).toContain('"FR"');
    expect(JSON.stringify(afterRevision)).not.toContain('"DE"');
  });
});
