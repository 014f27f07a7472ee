import mongoose from 'mongoose';
import { inject } from 'vitest';
import { defineModels } from '../../server/db/models.ts';
import type { TestPlatform } from './test-platform.ts';

/**
 * Another process: a connection of its own to the test platform's database,
 * which records the collections it reads (to show that a kept page reads only
 * its change stamps), with `wholeReads` those it reads by anything but a
 * single `_id` (the only look-up the embedded engine answers from an index;
 * any other filter reads the whole collection), and how many documents each
 * returned to it (to show that a sender's start reads no history). Its models
 * are kept apart from the app's, as another process's would be.
 */
export async function otherConnection(platform: Pick<TestPlatform, 'models'>) {
  const connection = await mongoose.createConnection(`${inject('mongoUri')}/${platform.models.Invitation.db.name}`, { monitorCommands: true }).asPromise();
  const read: string[] = [];
  const wholeReads: string[] = [];
  const docsRead = new Map<string, number>();
  const collectionOf = new Map<number, string>();
  const client = connection.getClient();
  client.on('commandStarted', (event) => {
    if (event.commandName === 'find') collectionOf.set(event.requestId, String(event.command.find));
    if (event.commandName === 'getMore') collectionOf.set(event.requestId, String(event.command.collection));
    if (!['find', 'aggregate', 'count'].includes(event.commandName)) return;
    const collection = String(event.command[event.commandName]);
    read.push(collection);
    const filter = (event.command.filter ?? event.command.query ?? {}) as Record<string, unknown>;
    const byId = event.commandName === 'find' && Object.keys(filter).length === 1 && filter._id !== undefined && (typeof filter._id !== 'object' || mongoose.isValidObjectId(filter._id));
    if (!byId) wholeReads.push(collection);
  });
  client.on('commandSucceeded', (event) => {
    const collection = collectionOf.get(event.requestId);
    if (!collection) return;
    collectionOf.delete(event.requestId);
    const cursor = (event.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } }).cursor;
    docsRead.set(collection, (docsRead.get(collection) ?? 0) + (cursor?.firstBatch ?? cursor?.nextBatch ?? []).length);
  });
  return { models: defineModels(connection), read, wholeReads, docsRead, close: () => connection.close() };
}
