/**
 * The two halves of a numbered journal (contact-changes.ts, email-changes.ts):
 * entries whose _id holds a sequence number, each number claimed by a unique
 * insert, so that entries have no gaps and a reader goes from the last it
 * applied to the first that does not exist, each by _id (the one look-up
 * the embedded engine answers from an index).
 */

/** Inserts an entry under the first free number from `from` on; returns that number. */
export async function insertNumbered(from: number, insert: (sequence: number) => Promise<unknown>): Promise<number> {
  for (let sequence = from; ; sequence++) {
    try {
      await insert(sequence);
      return sequence;
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
    }
  }
}

/**
 * The entries after `after`, in order, up to the first number that does not
 * exist: those up to `known` (the number a stamp names) side by side, the
 * rest one by one. `undefined` when one up to `known` is missing (removed).
 */
export async function readNumbered<T>(find: (sequence: number) => Promise<T | null>, after: number, known: number): Promise<T[] | undefined> {
  const entries: T[] = [];
  for (let from = after + 1; from <= known; from += 16) {
    const batch = await Promise.all(Array.from({ length: Math.min(16, known - from + 1) }, (_, k) => find(from + k)));
    if (batch.some((e) => !e)) return undefined;
    entries.push(...(batch as T[]));
  }
  for (let sequence = Math.max(after, known) + 1; ; sequence++) {
    const entry = await find(sequence);
    if (!entry) break;
    entries.push(entry);
  }
  return entries;
}
