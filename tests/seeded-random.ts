/**
 * A seeded random number generator for tests that draw their own data: the
 * same seed gives the same numbers in [0, 1) on every run, so a failure can
 * be replayed (a linear congruential generator; nothing here needs more).
 */
export function seededRandom(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}
