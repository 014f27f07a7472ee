import type { Line } from '../../server/evidence/disclosure.ts';

/**
 * The outside auditor: what someone holding every published table of a
 * campaign can derive about its hidden cells. Per figure and additive
 * quantity (respondents, valid answers, "don't know", each answer's count,
 * sums), every cell is an interval: a published cell is its value, a hidden
 * cell without answers (known to be empty, as routing makes it) is 0, any
 * other hidden cell is [0, ∞). Bounds are propagated over every line (its
 * members add up to its total) until nothing narrows any more.
 */
export interface Interval {
  lo: number;
  hi: number;
}

export function deriveBounds(cells: readonly string[], lines: readonly Line[], known: ReadonlyMap<string, number>, empty: ReadonlySet<string>): Map<string, Interval> {
  const bounds = new Map<string, Interval>(
    cells.map((cell) => {
      const value = known.get(cell);
      if (value !== undefined) return [cell, { lo: value, hi: value }];
      return [cell, empty.has(cell) ? { lo: 0, hi: 0 } : { lo: 0, hi: Infinity }];
    }),
  );
  const tighten = (cell: string, lo: number, hi: number) => {
    const b = bounds.get(cell)!;
    // Half a unit of slack: published shares and means are rounded back to counts.
    let changed = false;
    if (lo > b.lo + 0.5) ((b.lo = lo), (changed = true));
    if (hi < b.hi - 0.5) ((b.hi = hi), (changed = true));
    return changed;
  };
  for (let changed = true, rounds = 0; changed && rounds < 50; rounds++) {
    changed = false;
    for (const line of lines) {
      const members = line.members.map((m) => bounds.get(m)!);
      const total = bounds.get(line.total)!;
      const sumLo = members.reduce((t, b) => t + b.lo, 0);
      const finiteHi = members.reduce((t, b) => t + (b.hi === Infinity ? 0 : b.hi), 0);
      const infinite = members.filter((b) => b.hi === Infinity).length;
      changed = tighten(line.total, sumLo, infinite > 0 ? Infinity : finiteHi) || changed;
      line.members.forEach((m, i) => {
        const b = members[i]!;
        const othersHi = infinite - (b.hi === Infinity ? 1 : 0) > 0 ? Infinity : finiteHi - (b.hi === Infinity ? 0 : b.hi);
        changed = tighten(m, total.lo - othersHi, total.hi - (sumLo - b.lo)) || changed;
      });
    }
  }
  return bounds;
}
