import mongoose from 'mongoose';
import { inject } from 'vitest';
import { defineModels } from '../../server/db/models.ts';
import type { TestPlatform } from './test-platform.ts';

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
