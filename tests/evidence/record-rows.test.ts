import { Types } from 'mongoose';
import { describe, expect, it } from 'vitest';
import { RecordRows } from '../../server/evidence/record-rows.ts';
import { seededRandom } from '../seeded-random.ts';

describe('RecordRows', () => {
  it('after random sets, moves and deletes of ObjectId and other ids, holds what a Map holds, row by row', () => {
    const random = seededRandom(20261207);
    for (let run = 0; run < 10; run++) {
      const rows = new RecordRows();
      const reference = new Map<string, number>();
      // Ids from a small pool (so that sets and deletes hit held ids and removed slots): ObjectIds' hex, ids that only
      // look like one (upper case, 23 or 25 digits, a letter past f) and free names, as tests give them.
      const pool = Array.from({ length: run % 2 === 0 ? 40 : 4000 }, (_, i) => {
        const hex = new Types.ObjectId().toHexString();
        return [hex, hex, hex, hex.toUpperCase(), hex.slice(1), `${hex}0`, `${hex.slice(0, 23)}g`, `own:${i}`][i % 8]!;
      });
      const freeRows: number[] = [];
      let end = 0;
      for (let step = 0; step < 6000; step++) {
        const id = pool[Math.floor(random() * pool.length)]!;
        const roll = random();
        if (roll < 0.6) {
          // A new revision: the old row goes, a free row (or a new one) takes the id, as CampaignCounts.apply does.
          const old = reference.get(id);
          if (old !== undefined) {
            expect(rows.delete(id)).toBe(true);
            reference.delete(id);
            freeRows.push(old);
          }
          const row = freeRows.pop() ?? end++;
          rows.set(id, row);
          reference.set(id, row);
        } else {
          const row = reference.get(id);
          expect(rows.delete(id)).toBe(reference.delete(id));
          if (row !== undefined) freeRows.push(row);
        }
        expect(rows.get(id)).toBe(reference.get(id));
        expect(rows.has(id)).toBe(reference.has(id));
        expect(rows.size).toBe(reference.size);
      }
      for (const [id, row] of reference) expect(rows.get(id), id).toBe(row);
      // Listed in their rows' order, ids and rows in step.
      const byRow = [...reference].sort((a, b) => a[1] - b[1]);
      expect([...rows.values()]).toEqual(byRow.map(([, row]) => row));
      expect([...rows.keys()]).toEqual(byRow.map(([id]) => id));
    }
  });

  it('refuses a row that holds another record, and a row that is not a whole number', () => {
    const rows = new RecordRows();
    const a = new Types.ObjectId().toHexString();
    rows.set(a, 3);
    expect(() => rows.set(new Types.ObjectId().toHexString(), 3)).toThrow(/row 3 holds another record/);
    expect(() => rows.set('free name', 3)).toThrow(/row 3 holds another record/);
    expect(() => rows.set('free name', -1)).toThrow(RangeError);
    // The id moves: its old row is free again.
    rows.set(a, 5);
    expect(rows.get(a)).toBe(5);
    rows.set('free name', 3);
    expect([...rows.keys()]).toEqual(['free name', a]);
  });

  it('keeps 50,000 ObjectId records in far fewer bytes than a Map of their ids', () => {
    const rows = new RecordRows();
    for (let row = 0; row < 50_000; row++) rows.set(new Types.ObjectId().toHexString(), row);
    expect(rows.size).toBe(50_000);
    // 13 bytes a row and at most 8 slots of 4 bytes for 5 entries' worth of a power of two: under 40 bytes a record.
    expect(rows.bytes() / 50_000).toBeLessThan(40);
  });
});
