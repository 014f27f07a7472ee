import { describe, expect, it } from 'vitest';
import { auditCounts, CountAudit, differingCells, type AuditInput } from '../../server/evidence/count-audit.ts';
import { indexLines, type AnswerCounts } from '../../server/evidence/count-suppression.ts';
import { seededRandom } from '../seeded-random.ts';

/**
 * The outsider's audit kept between decisions (count-audit.ts CountAudit)
 * against the audit from scratch (auditCounts), on a chain of groups: group
 * x0 … x6, each pair of neighbours adding up to a published total t0 … t5,
 * two answer categories. A change at one end of the chain can pin counts at
 * the other, through every relation between; a kept audit that looked again
 * only near the change would miss them.
 */

const GROUPS = 7;
const ids = [...Array.from({ length: GROUPS }, (_, i) => `x${i}`), ...Array.from({ length: GROUPS - 1 }, (_, i) => `t${i}`)];
const lattice = indexLines(
  ids,
  Array.from({ length: GROUPS - 1 }, (_, i) => ({ total: `t${i}`, members: [`x${i}`, `x${i + 1}`] })),
);
const n = ids.length;
const at = (id: string) => ids.indexOf(id);

/** The counts of both categories in the groups, and the totals as their sums. */
function chainCounts(groups: ReadonlyArray<readonly number[]>, listed = false, minRange = 1): AnswerCounts {
  const counts = groups.map((values) => {
    const count = new Int32Array(n);
    values.forEach((value, i) => (count[i] = value));
    for (let i = 0; i < GROUPS - 1; i++) count[at(`t${i}`)] = count[i]! + count[i + 1]!;
    return count;
  });
  return { counts, sumOf: [0, 0], ...(listed ? { listed } : {}), ...(minRange > 1 ? { minRange } : {}) };
}

/** The audit's input; `lists`: with the hidden counts by cell too (AuditInput.hiddenIn), as a count decision gives them. */
function inputOf(answers: AnswerCounts, cellHidden: Uint8Array, countHidden: Uint8Array, lists = false): AuditInput {
  const input: AuditInput = { lattice, answers, cellHidden, countHidden: (k, c) => countHidden[k * n + c] === 1, forcesWhole: () => false };
  if (!lists) return input;
  const hiddenIn = new Map<number, number[]>();
  for (let c = 0; c < n; c++) {
    const categories = answers.counts.flatMap((_, k) => (countHidden[k * n + c] === 1 ? [k] : []));
    if (categories.length > 0) hiddenIn.set(c, categories);
  }
  return { ...input, hiddenIn };
}

const cellsOf = (countHidden: Uint8Array) => [...new Set([...countHidden.keys()].filter((i) => countHidden[i] === 1).map((i) => i % n))];

/**
 * 20 random runs over the chain, each a kept audit taken through 12 steps:
 * at each step its finding is compared with the audit from scratch's,
 * `looked` is called, and then one group's count (a new `count()`) or
 * hidden flag changes. The groups start at `first()`, each hidden with
 * probability `hidden`, some totals' counts hidden too; `sumOf` gives the
 * run's categories' sums. Returns how many steps pinned counts.
 */
function randomChainRuns(
  random: () => number,
  { first, count, hidden, sumOf, looked }: { first: () => number; count: () => number; hidden: number; sumOf?: (run: number) => number[]; looked: (kept: CountAudit, answers: AnswerCounts, where: string) => void },
): number {
  let pinnedSteps = 0;
  for (let run = 0; run < 20; run++) {
    const groups = [0, 1].map(() => Array.from({ length: GROUPS }, first));
    const answers = chainCounts(groups);
    if (sumOf) answers.sumOf = sumOf(run);
    const cellHidden = Uint8Array.from(ids, (id) => (id.startsWith('x') && random() < hidden ? 1 : 0));
    const countHidden = new Uint8Array(2 * n);
    for (let i = 0; i < GROUPS - 1; i++) if (random() < 0.3) for (let k = 0; k < 2; k++) countHidden[k * n + at(`t${i}`)] = 1;
    const kept = new CountAudit(lattice, answers);
    for (let step = 0; step < 12; step++) {
      const input = inputOf(answers, cellHidden, countHidden);
      const fromScratch = auditCounts(input);
      expect(kept.audit(input, cellsOf(countHidden)), `run ${run}, step ${step}`).toEqual(fromScratch);
      if (fromScratch.pinned.length > 0) pinnedSteps += 1;
      looked(kept, answers, `run ${run}, step ${step}`);
      const k = Math.floor(random() * 2);
      const i = Math.floor(random() * GROUPS);
      if (random() < 0.8) {
        groups[k]![i] = count();
        answers.counts[k]!.set(chainCounts(groups).counts[k]!);
        kept.countsChanged([i, ...(i > 0 ? [at(`t${i - 1}`)] : []), ...(i < GROUPS - 1 ? [at(`t${i}`)] : [])]);
      } else cellHidden[i] = 1 - cellHidden[i]!;
    }
  }
  return pinnedSteps;
}

describe('the audit kept between decisions', () => {
  it('when the group at one end of a chain is published, finds the counts pinned at the other end, as the audit from scratch does', () => {
    const answers = chainCounts([
      [1, 2, 3, 2, 1, 2, 2],
      [1, 1, 0, 3, 2, 0, 0],
    ]);
    // Every group hidden; in the totals t0, t2 and t4 both categories' counts hidden (their valid answers published).
    const cellHidden = Uint8Array.from(ids, (id) => (id.startsWith('x') ? 1 : 0));
    const countHidden = new Uint8Array(2 * n);
    for (const id of ['t0', 't2', 't4']) for (let k = 0; k < 2; k++) countHidden[k * n + at(id)] = 1;
    const kept = new CountAudit(lattice, answers);
    expect(kept.audit(inputOf(answers, cellHidden, countHidden), cellsOf(countHidden)).pinned).toEqual([]);

    const published = cellHidden.slice();
    published[at('x0')] = 0;
    const input = inputOf(answers, published, countHidden);
    const fromScratch = auditCounts(input);
    // The only counts pinned are five and six lines away from x0.
    expect(fromScratch.pinned.map((v) => `${Math.floor(v / n)} at ${ids[v % n]}`)).toEqual(['0 at x5', '0 at x6']);
    expect(kept.audit(input, cellsOf(countHidden))).toEqual(fromScratch);
  });

  // Listed: a hidden count that is not 0 starts at 1 (the groups of a number of responses, which views list).
  // A protection width of 2: a count narrowed to two values is pinned too, in the kept audit as from scratch.
  // With the hidden counts by cell, the kept audit tells from them which cells' hidden counts changed.
  it.each([
    [false, 1, false],
    [true, 1, false],
    [false, 2, false],
    [true, 2, false],
    [false, 1, true],
    [true, 1, true],
  ])('after random changes of counts and of what is hidden, finds what the audit from scratch finds (listed cells: %s, protection width %i, hidden counts by cell: %s)', (listed, minRange, lists) => {
    const random = seededRandom(20261202);
    let pinnedSteps = 0;
    let narrowSteps = 0;
    let steps = 0;
    for (let run = 0; run < 40; run++) {
      // Mostly as the rule leaves it: groups hidden, some totals with both counts hidden (one alone would be its valid answers minus the other).
      const groups = [0, 1].map(() => Array.from({ length: GROUPS }, () => 1 + Math.floor(random() * 4)));
      const answers = chainCounts(groups, listed, minRange);
      const cellHidden = Uint8Array.from(ids, (id) => (id.startsWith('x') && random() < 0.95 ? 1 : 0));
      const countHidden = new Uint8Array(2 * n);
      const flipTotal = (i: number) => {
        for (let k = 0; k < 2; k++) countHidden[k * n + at(`t${i}`)] = 1 - countHidden[k * n + at(`t${i}`)]!;
      };
      for (let i = 0; i < GROUPS - 1; i++) if (random() < 0.3) flipTotal(i);
      const kept = new CountAudit(lattice, answers);
      for (let step = 0; step < 12; step++) {
        const input = inputOf(answers, cellHidden, countHidden, lists);
        const fromScratch = auditCounts(input);
        expect(kept.audit(input, cellsOf(countHidden)), `run ${run}, step ${step}`).toEqual(fromScratch);
        steps += 1;
        if (fromScratch.pinned.length > 0) pinnedSteps += 1;
        // Counts narrowed to a range below the width but not to one value.
        if (fromScratch.pinned.length > auditCounts({ ...input, answers: { ...answers, minRange: 1 } }).pinned.length) narrowSteps += 1;
        // One change: a group's count (and the totals beside it), a group hidden or published, or a total's counts hidden or shown.
        const change = random();
        const i = Math.floor(random() * GROUPS);
        if (change < 0.5) {
          const k = Math.floor(random() * 2);
          groups[k]![i] = Math.floor(random() * 5);
          answers.counts[k]!.set(chainCounts(groups).counts[k]!);
          kept.countsChanged([i, ...(i > 0 ? [at(`t${i - 1}`)] : []), ...(i < GROUPS - 1 ? [at(`t${i}`)] : [])]);
        } else if (change < 0.65) {
          cellHidden[i] = 1 - cellHidden[i]!;
        } else if (change < 0.8) {
          // One category's count of a total hidden or shown, or, where one alone is hidden, the other one instead (as many hidden counts there, other ones).
          const t = at(`t${i % (GROUPS - 1)}`);
          if (countHidden[t] !== countHidden[n + t]) ((countHidden[t] = 1 - countHidden[t]!), (countHidden[n + t] = 1 - countHidden[n + t]!));
          else {
            const k = Math.floor(random() * 2);
            countHidden[k * n + t] = 1 - countHidden[k * n + t]!;
          }
        } else {
          flipTotal(i % (GROUPS - 1));
        }
      }
    }
    // Not vacuous: some steps had pinned counts, most had none.
    expect(pinnedSteps).toBeGreaterThan(10);
    expect(pinnedSteps).toBeLessThan(steps);
    if (minRange > 1) expect(narrowSteps).toBeGreaterThan(0);
  });

  // AnswerCounts.respondentsAtMost: the groups' published numbers of responses bound their hidden respondents, which the audit then protects too.
  it('with the groups\' numbers of responses bounding their respondents, after random changes of counts, bounds and what is hidden, finds what the audit from scratch finds', () => {
    const random = seededRandom(20261206);
    let steps = 0;
    let pinnedByBounds = 0;
    let respondentsPinned = 0;
    for (let run = 0; run < 40; run++) {
      const groups = [0, 1].map(() => Array.from({ length: GROUPS }, () => Math.floor(random() * 4)));
      const answers = chainCounts(groups);
      const respondents = new Int32Array(n);
      const atMost = new Int32Array(n);
      const figure = () => {
        for (let c = 0; c < n; c++) respondents[c] = answers.counts[0]![c]! + answers.counts[1]![c]!;
      };
      figure();
      // Some groups where everyone answered (the bound is the value), more where some did not (room), some numbers of responses hidden (-1).
      const boundAt = (c: number) => {
        const draw = random();
        atMost[c] = draw < 0.2 ? -1 : respondents[c]! + (draw < 0.85 ? 1 + Math.floor(random() * 4) : 0);
      };
      for (let c = 0; c < n; c++) boundAt(c);
      Object.assign(answers, { respondents, dontKnow: new Int32Array(n), respondentsAtMost: atMost });
      const cellHidden = Uint8Array.from(ids, (id) => (random() < (id.startsWith('x') ? 0.8 : 0.3) ? 1 : 0));
      const countHidden = new Uint8Array(2 * n);
      const kept = new CountAudit(lattice, answers);
      for (let step = 0; step < 12; step++) {
        const input = inputOf(answers, cellHidden, countHidden);
        const fromScratch = auditCounts(input);
        expect(kept.audit(input, cellsOf(countHidden)), `run ${run}, step ${step}`).toEqual(fromScratch);
        steps += 1;
        // Beside what the audit pins with no number of responses published (the respondents protected all the same).
        if (fromScratch.pinned.length > auditCounts({ ...input, answers: { ...answers, respondentsAtMost: new Int32Array(n).fill(-1) } }).pinned.length) pinnedByBounds += 1;
        if (fromScratch.pinned.some((v) => v >= 2 * n + n)) respondentsPinned += 1;
        const change = random();
        const i = Math.floor(random() * GROUPS);
        const around = [i, ...(i > 0 ? [at(`t${i - 1}`)] : []), ...(i < GROUPS - 1 ? [at(`t${i}`)] : [])];
        if (change < 0.4) {
          const k = Math.floor(random() * 2);
          groups[k]![i] = Math.floor(random() * 4);
          answers.counts[k]!.set(chainCounts(groups).counts[k]!);
          figure();
          for (const c of around) atMost[c] = atMost[c]! < 0 ? -1 : Math.max(atMost[c]!, respondents[c]!);
          kept.countsChanged(around);
        } else if (change < 0.7) {
          // A number of responses published, hidden or changed: the caller names the cell.
          const c = around[Math.floor(random() * around.length)]!;
          boundAt(c);
          kept.countsChanged([c]);
        } else {
          const c = random() < 0.7 ? i : at(`t${i % (GROUPS - 1)}`);
          cellHidden[c] = 1 - cellHidden[c]!;
        }
      }
    }
    // Not vacuous: the bounds pin what the audit without them does not, respondents among them, and not at every step.
    expect(pinnedByBounds).toBeGreaterThan(10);
    expect(respondentsPinned).toBeGreaterThan(0);
    expect(pinnedByBounds).toBeLessThan(steps);
  });

  it('finds what the audit from scratch finds when counts grow past what 16-bit bounds hold (such bounds are kept in a map beside the bytes)', () => {
    // Every group hidden, the totals published; category 0: x1 = 65,535, the rest 0, so t0 = t1 = 65,535 (what no
    // upper bound is in 16 bits) and x1 is pinned (x0 + x1 = x1 + x2 = 65,535, x2 = 0 by t2); category 1 pins nothing.
    const answers = chainCounts([
      [0, 65_535, 0, 0, 0, 0, 0],
      [2, 3, 2, 3, 2, 3, 2],
    ]);
    answers.sumOf = [0, 1];
    const cellHidden = Uint8Array.from(ids, (id) => (id.startsWith('x') ? 1 : 0));
    const input = inputOf(answers, cellHidden, new Uint8Array(2 * n));
    const fromScratch = auditCounts(input);
    expect(fromScratch.pinned.map((v) => `${Math.floor(v / n)} at ${ids[v % n]}`)).toEqual(['0 at x1']);
    expect(new CountAudit(lattice, answers).audit(input, [])).toEqual(fromScratch);

    // Counts growing past 16 bits between audits, and back.
    const random = seededRandom(20261203);
    // A group's count: mostly small, sometimes ~40,000, so that the totals of two such pass 65,535.
    const count = () => (random() < 0.3 ? 40_000 : 0) + Math.floor(random() * 5);
    let large = 0;
    const pinnedSteps = randomChainRuns(random, {
      first: () => 1 + Math.floor(random() * 4),
      count,
      hidden: 0.95,
      looked: (_, answers) => {
        if (answers.counts.some((values) => values.some((value) => value > 0xffff))) large += 1;
      },
    });
    // Not vacuous: counts past 16 bits were audited, and some audits pinned counts.
    expect(large).toBeGreaterThan(20);
    expect(pinnedSteps).toBeGreaterThan(5);
  });

  it('keeps bounds that hold the true counts, and finds what the audit from scratch finds, as bounds cross what a byte holds and back', () => {
    // A bound from 0 to 252 is kept in a byte, a larger one in a map beside: counts of 0–600 make totals and bounds on
    // both sides, and sometimes ~40,000 past 16 bits. A bound lost on the way (an early version wrote some into arrays
    // that were then replaced as they grew) shows as a true count outside its kept bounds, though the findings stay
    // the same (kept bounds that pin fall back to the audit from scratch).
    const random = seededRandom(20261206);
    const count = () => (random() < 0.05 ? 40_000 : 0) + Math.floor(random() * 600);
    let checked = 0;
    let wide = 0;
    const pinnedSteps = randomChainRuns(random, {
      first: count,
      count,
      hidden: 0.9,
      sumOf: (run) => [0, run % 2],
      looked: (kept, answers, where) => {
        // Quantities at q × n + c: both categories' counts, then the sums.
        const sums = Math.max(...answers.sumOf) + 1;
        for (let q = 0; q < 2 + sums; q++) {
          for (let c = 0; c < n; c++) {
            const truth = q < 2 ? answers.counts[q]![c]! : answers.counts.reduce((total, values, k) => total + (answers.sumOf[k] === q - 2 ? values[c]! : 0), 0);
            const [low, high] = kept.bounds(q * n + c);
            expect(low <= truth && truth <= high, `${where}: quantity ${q} at ${ids[c]} is ${truth}, kept as [${low}, ${high}]`).toBe(true);
            checked += 1;
            if (low > 252 || (high > 252 && high !== Infinity)) wide += 1;
          }
        }
      },
    });
    // Not vacuous: bounds past a byte were kept, and some audits pinned counts.
    expect(wide).toBeGreaterThan(checked / 10);
    expect(pinnedSteps).toBeGreaterThan(5);
  });

  it('keeps the bounds of published counts of 252 and more as the counts themselves, not in the maps of wide bounds', () => {
    // Every group and total published but x1 and x2 (their counts and their sum hidden): the chain pins them. Counts
    // of 100–1,600, so that most bounds, the published ones' and the hidden ones', are past what a byte holds.
    const answers = chainCounts([
      [400, 100, 200, 500, 600, 700, 800],
      [1, 2, 3, 4, 5, 6, 7],
    ]);
    const cellHidden = Uint8Array.from(ids, (id) => (id === 'x1' || id === 'x2' ? 1 : 0));
    const input = inputOf(answers, cellHidden, new Uint8Array(2 * n));
    const kept = new CountAudit(lattice, answers);
    // Quantities at q × n + c: both categories' counts, then their sum.
    const truth = (q: number, c: number) => (q < 2 ? answers.counts[q]![c]! : answers.counts[0]![c]! + answers.counts[1]![c]!);
    const wideHiddenBounds = () => {
      let wide = 0;
      for (let q = 0; q < 3; q++) {
        for (const id of ['x1', 'x2']) {
          const [low, high] = kept.bounds(q * n + at(id));
          wide += (low > 251 ? 1 : 0) + (high > 251 && high !== Infinity ? 1 : 0);
        }
      }
      return wide;
    };
    for (let step = 0; step < 2; step++) {
      expect(kept.audit(input, []), `step ${step}`).toEqual(auditCounts(input));
      for (let q = 0; q < 3; q++) {
        for (let c = 0; c < n; c++) if (cellHidden[c] === 0) expect(kept.bounds(q * n + c), `step ${step}: quantity ${q} at ${ids[c]}`).toEqual([truth(q, c), truth(q, c)]);
      }
      // Only hidden quantities' wide bounds are in the maps (the sums' too, read in the maps: a sum is not added up at
      // every look); the published counts' are read from the answers.
      const publishedWideSums = ids.filter((id, c) => cellHidden[c] === 0 && truth(2, c) > 251).length;
      expect(kept.boundsInMaps, `step ${step}`).toBe(wideHiddenBounds() + 2 * publishedWideSums);
      // A published count that changes (with its total) is read as it now is once its cell has started again.
      answers.counts[0]![at('x6')] = 900;
      answers.counts[0]![at('t5')] = 1600;
      kept.countsChanged([at('x6'), at('t5')]);
    }
  });

  it('tells every cell whose hidden flag changed, four cells at a time and in the cells past the last four, and in arrays that start off a four-byte boundary', () => {
    const random = seededRandom(7);
    for (let round = 0; round < 200; round++) {
      const length = round % 14;
      const offset = round % 3 === 0 ? 1 : 0;
      const a = new Uint8Array(length + offset).subarray(offset);
      const b = new Uint8Array(length);
      for (let c = 0; c < length; c++) {
        a[c] = random() < 0.3 ? 1 : 0;
        b[c] = random() < 0.15 ? 1 - a[c]! : a[c]!;
      }
      const expected = [...a.keys()].filter((c) => a[c] !== b[c]);
      expect(differingCells(a, b)).toEqual(expected);
    }
  });
});
