import { describe, expect, it } from 'vitest';
import { IntMap } from '../../server/evidence/int-map.ts';
import { seededRandom } from '../seeded-random.ts';

describe('IntMap', () => {
  it('after random sets, overwrites and deletes, holds what a Map holds', () => {
    const random = seededRandom(20261206);
    for (let run = 0; run < 20; run++) {
      const map = new IntMap();
      const reference = new Map<number, number>();
      // Keys from a small range (so that sets hit held keys and deleted slots) or a large one (spread over the slots).
      const range = run % 2 === 0 ? 64 : 0x7fffffff;
      for (let step = 0; step < 3000; step++) {
        const key = Math.floor(random() * range);
        const roll = random();
        if (roll < 0.55) {
          const value = Math.floor(random() * 2 ** 31) - 2 ** 30;
          map.set(key, value);
          reference.set(key, value);
        } else if (roll < 0.9) expect(map.delete(key)).toBe(reference.delete(key));
        else if (roll < 0.905) {
          map.clear();
          reference.clear();
        }
        expect(map.get(key)).toBe(reference.get(key));
        expect(map.size).toBe(reference.size);
      }
      for (const [key, value] of reference) expect(map.get(key)).toBe(value);
      expect([...map.values()].sort((a, b) => a - b)).toEqual([...reference.values()].sort((a, b) => a - b));
    }
  });

  it('gives its room back once most entries are deleted, and holds what a Map holds through growing and shrinking', () => {
    // A kept audit's wide bounds: most of a question's upper bounds pass through the map during an audit from scratch, a few stay.
    const map = new IntMap();
    const reference = new Map<number, number>();
    const slots = () => (map as unknown as { keys: Int32Array }).keys.length;
    for (let round = 0; round < 3; round++) {
      for (let key = 0; key < 20_000; key++) {
        map.set(key * 7, key);
        reference.set(key * 7, key);
      }
      const peak = slots();
      expect(peak).toBeGreaterThanOrEqual(32_768);
      for (let key = 0; key < 20_000; key++) if (key % 1000 !== 0) expect(map.delete(key * 7)).toBe(reference.delete(key * 7));
      expect(map.size).toBe(20);
      expect(slots()).toBeLessThanOrEqual(8 * map.size);
      for (let key = 0; key < 20_000; key++) expect(map.get(key * 7)).toBe(reference.get(key * 7));
    }
  });

  it('refuses a key or a value it cannot hold, saying which', () => {
    const map = new IntMap();
    expect(() => map.set(-1, 0)).toThrow('not -1');
    expect(() => map.set(2 ** 31, 0)).toThrow(/from 0 to 2\^31 - 1/);
    expect(() => map.set(1.5, 0)).toThrow('not 1.5');
    expect(() => map.set(1, 2 ** 31)).toThrow('32-bit whole numbers, not 2147483648');
    expect(map.size).toBe(0);
  });
});
