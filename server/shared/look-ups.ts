/** Look-ups by _id sent side by side, this many at a time, one group after another. */
export const LOOKUPS_AT_ONCE = 16;

/** Each item looked up (by _id, as the embedded engine answers from its index), LOOKUPS_AT_ONCE at a time; the results in the items' order. */
export async function lookUpAll<T, R>(items: readonly T[], lookUp: (item: T) => Promise<R>): Promise<R[]> {
  const found: R[] = [];
  for (let from = 0; from < items.length; from += LOOKUPS_AT_ONCE) found.push(...(await Promise.all(items.slice(from, from + LOOKUPS_AT_ONCE).map(lookUp))));
  return found;
}
