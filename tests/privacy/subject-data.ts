import { mongo } from 'mongoose';
import type { TestPlatform } from '../helpers/test-platform.ts';

/**
 * Every document of every collection of the test database whose stored form
 * contains one of the needles (an address, a name, an id): an independent
 * search, not the platform's own, so that a collection the platform forgot
 * is found too.
 */
export async function searchEveryCollection(platform: TestPlatform, needles: string[]): Promise<Array<{ collection: string; id: string; needle: string }>> {
  const db = platform.models.Contact.db.db!;
  const hits: Array<{ collection: string; id: string; needle: string }> = [];
  for (const { name } of await db.listCollections().toArray()) {
    for (const doc of await db.collection(name).find({}).toArray()) {
      const text = mongo.BSON.EJSON.stringify(doc, { relaxed: true });
      const needle = needles.find((n) => text.includes(n));
      if (needle) hits.push({ collection: name, id: String(doc._id), needle });
    }
  }
  return hits;
}

/** Every stored document, in every collection, whose stored form contains the needle, with that stored form. */
export async function documentsHolding(platform: TestPlatform, needle: string): Promise<Array<{ collection: string; id: string; text: string }>> {
  const db = platform.models.Contact.db.db!;
  const found: Array<{ collection: string; id: string; text: string }> = [];
  for (const { name } of await db.listCollections().toArray()) {
    for (const doc of await db.collection(name).find({}).toArray()) {
      const text = mongo.BSON.EJSON.stringify(doc, { relaxed: true });
      if (text.includes(needle)) found.push({ collection: name, id: String(doc._id), text });
    }
  }
  return found;
}
