import { describe, expect, it } from 'vitest';
import { CountSuppression, hiddenCounts, indexLines, type AnswerCounts, type CountDecision } from '../../server/evidence/count-suppression.ts';
import { cube } from './auditor.ts';
import { seededRandom } from '../seeded-random.ts';

/**
 * The decision of a question's answer counts kept between decisions
 * (count-suppression.ts CountSuppression) against the decision from scratch
 * (hiddenCounts), after each of many small changes: mostly a response more
 * or less in a group whose counts stay above 0 (where the kept decision
 * reuses its last run when every tie on cost still falls the same way),
 * sometimes a count to or from 0 or a group hidden or published. Small
 * counts, so that sizes often tie and a change of one flips a choice.
 */

const { cells, lines, inner } = cube();
const lattice = indexLines(cells, lines);
const n = cells.length;
/** Per inner group, the cells whose counts include it (itself and every coarser cell over it). */
const over = new Map(inner.map((x) => [x, cells.flatMap((c, i) => ([...c].every((ch, a) => ch === '*' || ch === x[a]) ? [i] : []))]));

function sameDecision(a: CountDecision, b: CountDecision): boolean {
  const list = (d: CountDecision) => JSON.stringify([[...d.hidden].sort(([x], [y]) => x - y), d.wholeCells]);
  return list(a) === list(b);
}

describe('the answer-count decision kept between decisions', () => {
  it('after random changes of counts and of hidden groups, hides exactly the counts the decision from scratch hides', () => {
    const random = seededRandom(20261203);
    const pick = <T,>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
    let steps = 0;
    let withHiddenCounts = 0;
    for (let run = 0; run < 60; run++) {
      // Six categories in two sums of three (a grid's two rows), one figure splitting them (an indicator counting every other one).
      const counts = Array.from({ length: 6 }, () => new Int32Array(n));
      const add = (k: number, group: string, by: number) => {
        for (const c of over.get(group)!) counts[k]![c]! += by;
      };
      for (const group of inner) for (let k = 0; k < 6; k++) if (random() < 0.6) add(k, group, 1 + Math.floor(random() * 3));
      const answers: AnswerCounts = { counts, sumOf: [0, 0, 0, 1, 1, 1], sides: [Int32Array.from([0, 1, 0, 1, 0, 1])] };
      const cellHidden = Uint8Array.from(cells, (c) => (!c.includes('*') && random() < 0.35 ? 1 : 0));
      const kept = new CountSuppression(lattice, answers);
      expect(sameDecision(kept.decide(cellHidden, []), hiddenCounts(lattice, cellHidden, answers))).toBe(true);
      for (let step = 0; step < 15; step++) {
        const changed = new Set<number>();
        const group = pick(inner);
        const k = Math.floor(random() * 6);
        const value = counts[k]![cells.indexOf(group)]!;
        const roll = random();
        if (roll < 0.1) cellHidden[cells.indexOf(group)] = 1 - cellHidden[cells.indexOf(group)]!;
        else if (roll < 0.25 || value <= 1) add(k, group, value === 0 ? 1 : -value);
        else add(k, group, random() < 0.5 ? 1 : -1);
        for (const c of over.get(group)!) changed.add(c);
        const decision = kept.decide(cellHidden, changed);
        const fromScratch = hiddenCounts(lattice, cellHidden, answers);
        expect(sameDecision(decision, fromScratch), `run ${run}, step ${step}`).toBe(true);
        steps += 1;
        if (fromScratch.hidden.size > 0) withHiddenCounts += 1;
      }
    }
    // Most steps must have counts to hide, or the comparison says little.
    expect(withHiddenCounts).toBeGreaterThan(steps / 2);
  });

  it('when counts go to or from 0 and groups are hidden or published, near the counts it hid or far from them, hides exactly the counts the decision from scratch hides', () => {
    // A larger, sparser cube: many lines the run never takes up, where such a change leaves its last run standing, and many it does.
    const big = cube([5, 4, 3]);
    const bigLattice = indexLines(big.cells, big.lines);
    const m = big.cells.length;
    const bigOver = new Map(big.inner.map((x) => [x, big.cells.flatMap((c, i) => ([...c].every((ch, a) => ch === '*' || ch === x[a]) ? [i] : []))]));
    const random = seededRandom(20261202);
    const pick = <T,>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
    let steps = 0;
    let withHiddenCounts = 0;
    for (let run = 0; run < 40; run++) {
      // Four categories in one sum (a single answer), one figure splitting them in two.
      const counts = Array.from({ length: 4 }, () => new Int32Array(m));
      const add = (k: number, group: string, by: number) => {
        for (const c of bigOver.get(group)!) counts[k]![c]! += by;
      };
      for (const group of big.inner) for (let k = 0; k < 4; k++) if (random() < 0.3) add(k, group, 1 + Math.floor(random() * 4));
      const answers: AnswerCounts = { counts, sumOf: [0, 0, 0, 0], sides: [Int32Array.from([0, 0, 1, 1])] };
      const cellHidden = Uint8Array.from(big.cells, (c) => (!c.includes('*') && random() < 0.2 ? 1 : 0));
      const kept = new CountSuppression(bigLattice, answers);
      kept.decide(cellHidden, []);
      for (let step = 0; step < 40; step++) {
        const group = pick(big.inner);
        const at = big.cells.indexOf(group);
        const k = Math.floor(random() * 4);
        const roll = random();
        if (roll < 0.35) cellHidden[at] = 1 - cellHidden[at]!;
        else if (roll < 0.8) add(k, group, counts[k]![at] === 0 ? 1 : -counts[k]![at]!);
        else add(k, group, 1);
        const decision = kept.decide(cellHidden, bigOver.get(group)!);
        const fromScratch = hiddenCounts(bigLattice, cellHidden, answers);
        expect(sameDecision(decision, fromScratch), `run ${run}, step ${step}`).toBe(true);
        steps += 1;
        if (fromScratch.hidden.size > 0) withHiddenCounts += 1;
      }
    }
    expect(withHiddenCounts).toBeGreaterThan(steps / 2);
  });

  it('hands out one frozen list for every cell that hides the same categories, in one decision and from one decision to the next', () => {
    const random = seededRandom(20261206);
    const arrays = new Map<string, readonly number[]>();
    let shared = 0;
    const look = (decision: CountDecision) => {
      const cellsOf = new Map<readonly number[], number>();
      for (const list of decision.hidden.values()) {
        expect(Object.isFrozen(list)).toBe(true);
        const key = list.join(',');
        // The same categories: the same array, whatever cell, decision or question hid them.
        expect(arrays.get(key) ?? list).toBe(list);
        arrays.set(key, list);
        cellsOf.set(list, (cellsOf.get(list) ?? 0) + 1);
      }
      for (const cells of cellsOf.values()) if (cells > 1) shared += cells;
    };
    for (let run = 0; run < 10; run++) {
      const counts = Array.from({ length: 6 }, () => new Int32Array(n));
      for (const group of inner) for (let k = 0; k < 6; k++) if (random() < 0.6) for (const c of over.get(group)!) counts[k]![c]! += 1 + Math.floor(random() * 3);
      const answers: AnswerCounts = { counts, sumOf: [0, 0, 0, 1, 1, 1], sides: [Int32Array.from([0, 1, 0, 1, 0, 1])] };
      const cellHidden = Uint8Array.from(cells, (c) => (!c.includes('*') && random() < 0.35 ? 1 : 0));
      const kept = new CountSuppression(lattice, answers);
      look(kept.decide(cellHidden, []));
      // One group hidden or published: the next decision's lists.
      const group = cells.indexOf(inner[run % inner.length]!);
      cellHidden[group] = 1 - cellHidden[group]!;
      look(kept.decide(cellHidden, [group]));
      look(hiddenCounts(lattice, cellHidden, answers));
    }
    // Not vacuous: cells shared lists.
    expect(shared).toBeGreaterThan(20);
  });
});

describe('what hiding a count withholds, counted over splits as bits', () => {
  it('hides exactly the counts that looking at each split in turn hides, with splits of two sides and of more', () => {
    // The run counts splits as bits when there are at most 31 (count-suppression.ts splitMasks); splits whose categories all
    // lie on one side never withhold anything, so 30 of them added make the same decision with every split looked at in turn.
    const random = seededRandom(20261204);
    const unsplit = Array.from({ length: 30 }, () => new Int32Array(6));
    let decisions = 0;
    let splitsChose = 0;
    for (let run = 0; run < 40; run++) {
      const counts = Array.from({ length: 6 }, () => new Int32Array(n));
      for (const group of inner) for (let k = 0; k < 6; k++) if (random() < 0.6) for (const c of over.get(group)!) counts[k]![c]! += 1 + Math.floor(random() * 3);
      // One to five splits, each of two sides or (one in three) of three, as an indicator's weights and a mean's make them.
      const sides = Array.from({ length: 1 + Math.floor(random() * 5) }, () => {
        const classes = random() < 1 / 3 ? 3 : 2;
        return Int32Array.from({ length: 6 }, () => Math.floor(random() * classes));
      });
      const sumOf = [0, 0, 0, 1, 1, 1];
      for (let round = 0; round < 5; round++) {
        const cellHidden = Uint8Array.from(cells, (c) => (!c.includes('*') && random() < 0.35 ? 1 : 0));
        const asBits = hiddenCounts(lattice, cellHidden, { counts, sumOf, sides });
        const inTurn = hiddenCounts(lattice, cellHidden, { counts, sumOf, sides: [...sides, ...unsplit] });
        expect(sameDecision(asBits, inTurn), `run ${run}, round ${round}`).toBe(true);
        decisions += 1;
        if (!sameDecision(asBits, hiddenCounts(lattice, cellHidden, { counts, sumOf }))) splitsChose += 1;
      }
    }
    // The splits must decide often, or the comparison says little.
    expect(splitsChose).toBeGreaterThan(decisions / 4);
  });
});
