import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { defineModels } from '../../server/db/models.ts';
import { campaignFieldwork } from '../../server/fieldwork/fieldwork.service.ts';
import { reminderRecipients } from '../../server/reminders/reminder.service.ts';
import { answeredInvitations, backfillCompletions } from '../../server/respond/respond.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

async function submitted(campaignId?: mongoose.Types.ObjectId) {
  const invited = await createInvitedContact(platform, { campaignId });
  await respondent(platform, invited.path, invited.invitation.tokenHash).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
  return invited;
}

describe('completion marks', () => {
  it('a submission marks its invitation completed, and the mark stands when the invitation update was lost', async () => {
    const { invitation, campaignId } = await submitted();
    // A crash between the stored revision and the invitation's update.
    await platform.models.Invitation.updateOne({ _id: invitation._id }, { $unset: { completedAt: 1 } });
    expect(await answeredInvitations(platform.models, [campaignId])).toEqual(new Set([String(invitation._id)]));
    const fieldwork = await campaignFieldwork({ models: platform.models }, campaignId);
    expect(fieldwork.nonrespondents()).toHaveLength(0);
  });

  it('the fieldwork view and the reminders never read the responses, only the compact marks', async () => {
    const { campaignId } = await submitted();
    await submitted(campaignId);
    // A second connection to the same database that records every command it sends.
    const watched = await mongoose.createConnection(`${inject('mongoUri')}/${platform.models.Response.db.name}`, { monitorCommands: true }).asPromise();
    const collections: string[] = [];
    watched.getClient().on('commandStarted', (event) => {
      if (['find', 'aggregate', 'count'].includes(event.commandName)) collections.push(String(event.command[event.commandName]));
    });
    const models = defineModels(watched);
    await campaignFieldwork({ models }, campaignId);
    await reminderRecipients({ models }, campaignId);
    await watched.close();
    expect(collections).toContain('completions');
    expect(collections).not.toContain('responses');
    expect(collections).not.toContain('response_revisions');
  });

  it('responses stored before marks existed are marked once by the backfill, which a second run and a rerun after a cut leave as they are', async () => {
    const { campaignId, invitation } = await submitted();
    const second = await submitted(campaignId);
    // The database as an older version left it: no marks, no record of the backfill.
    await platform.models.Completion.deleteMany({});
    await platform.models.Claim.deleteMany({ _id: 'migration:completions-v1' });
    const now = () => platform.clock.now();
    const total = await platform.models.Response.countDocuments();
    expect(await backfillCompletions(platform.models, now)).toBe(total);
    expect(await answeredInvitations(platform.models, [campaignId])).toEqual(new Set([String(invitation._id), String(second.invitation._id)]));
    expect(await backfillCompletions(platform.models, now)).toBe(0);

    // A backfill cut short: some marks written, the run not recorded. The rerun completes it.
    await platform.models.Completion.deleteOne({ _id: second.invitation._id });
    await platform.models.Claim.deleteMany({ _id: 'migration:completions-v1' });
    expect(await backfillCompletions(platform.models, now)).toBe(1);
    expect(await platform.models.Completion.countDocuments()).toBe(total);
  });
});
