import mongoose, { type Types } from 'mongoose';
import { inject } from 'vitest';
import { defineModels } from '../../server/db/models.ts';
import type { SignedInAgent } from './accounts.ts';
import type { TestPlatform } from './test-platform.ts';

/** The confirmation page before "Send the invitations": its count of emails and its text (the tables by country, type, language). */
export async function confirmationPage(coordinator: SignedInAgent, campaignId: Types.ObjectId) {
  const page = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/send`).expect(200)).text;
  return { emails: Number(/name="expected" value="(\d+)"/.exec(page)?.[1] ?? 0), page };
}

/**
 * Another process: a connection of its own to the test platform's database,
 * which records the collections it reads (to show that a kept page reads only
 * its change stamps). Its models are kept apart from the app's, as another
 * process's would be.
 */
export async function otherConnection(platform: Pick<TestPlatform, 'models'>) {
  const connection = await mongoose.createConnection(`${inject('mongoUri')}/${platform.models.Invitation.db.name}`, { monitorCommands: true }).asPromise();
  const read: string[] = [];
  connection.getClient().on('commandStarted', (event) => {
    if (['find', 'aggregate', 'count'].includes(event.commandName)) read.push(String(event.command[event.commandName]));
  });
  return { models: defineModels(connection), read, close: () => connection.close() };
}
