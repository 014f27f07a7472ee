import { describe, expect, it } from 'vitest';
import { bitArray, bitAt, markBit } from '../../server/evidence/bits.ts';

describe('flags kept a bit each (the decisions\' kept flags)', () => {
  it('sets and clears each flag alone, the sign bit of an element and flags across elements included', () => {
    const flags = 70;
    const bits = bitArray(flags);
    expect(bits.length).toBe(3);
    const on = [0, 1, 30, 31, 32, 63, 64, 69];
    for (const i of on) markBit(bits, i, true);
    for (let i = 0; i < flags; i++) expect(bitAt(bits, i)).toBe(on.includes(i) ? 1 : 0);
    markBit(bits, 31, false);
    markBit(bits, 64, false);
    markBit(bits, 2, false);
    for (let i = 0; i < flags; i++) expect(bitAt(bits, i)).toBe(on.includes(i) && i !== 31 && i !== 64 ? 1 : 0);
    markBit(bits, 31, true);
    markBit(bits, 31, true);
    expect(bitAt(bits, 31)).toBe(1);
    expect(bitAt(bits, 30)).toBe(1);
  });
});
