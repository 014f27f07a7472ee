import fc from 'fast-check';
import * as highsPackage from 'highs';
import type { Highs } from 'highs';
import { Types } from 'mongoose';
import { beforeAll, describe, expect, it } from 'vitest';
import { auditCounts } from '../../server/evidence/count-audit.ts';
import { ELIMINATION_BUDGET, equalityPins, OpenRelationList, Witnesses } from '../../server/evidence/count-equalities.ts';
import { indexLines, unitDecision } from '../../server/evidence/count-suppression.ts';
import { DEFAULT_THRESHOLDS, hiddenCells } from '../../server/evidence/disclosure.ts';
import type { EvidenceRecord } from '../../server/evidence/evidence-record.ts';
import { cube, cubeSizes, latticeOf, pinnedCells, randomSizes, solveAll } from './auditor.ts';
import { publish, records } from './demo-like-campaign.ts';
import { responseArbitrary, toResponses } from './evidence-data.ts';
import { seededRandom } from '../seeded-random.ts';

let highs: Highs;
beforeAll(async () => {
  // The package's types are read as CommonJS's, where the loader is not the default export; in its ES module it is.
  highs = await (highsPackage as unknown as { default: () => Promise<Highs> }).default();
});

/** Three hidden cells published only in pairs: a + b, b + c and a + c. */
const PAIRS = {
  cells: ['a+b', 'b+c', 'a+c', 'a', 'b', 'c'],
  lines: [
    { total: 'a+b', members: ['a', 'b'] },
    { total: 'b+c', members: ['b', 'c'] },
    { total: 'a+c', members: ['a', 'c'] },
  ],
};

describe('the auditor with a linear-programming solver', () => {
  it('pins three hidden cells published only in pairs, which interval propagation leaves open', () => {
    // a + b = 5, b + c = 7, a + c = 6: each line has two unknowns, yet a = (5 − 7 + 6) / 2.
    const { cells, lines } = PAIRS;
    const size = new Map([['a+b', 5], ['b+c', 7], ['a+c', 6], ['a', 2], ['b', 3], ['c', 4]]);
    const hidden = new Set(['a', 'b', 'c']);
    expect(pinnedCells(cells, lines, size, hidden)).toEqual([]);
    expect(pinnedCells(cells, lines, size, hidden, false, 1, highs)).toEqual(['a', 'b', 'c']);
  });

  it("the mechanism's audit of the number of responses pins those three cells too, by eliminating the lines together", () => {
    const { cells, lines } = PAIRS;
    const counts = Int32Array.from([5, 7, 6, 2, 3, 4]);
    const question = { counts: [counts], sumOf: [0], respondents: counts, dontKnow: new Int32Array(cells.length), listed: true };
    const cellHidden = Uint8Array.from(cells, (c) => (c.length === 1 ? 1 : 0));
    const finding = auditCounts({ lattice: indexLines(cells, lines), answers: question, cellHidden, countHidden: () => false, forcesWhole: () => true });
    expect(finding.pinned.map((v) => cells[v % cells.length]).sort()).toEqual(['a', 'b', 'c']);
    // Each repair is a published pair, whose hiding breaks the combination.
    expect(finding.repairs.map((v) => cells[v % cells.length]!).every((c) => c.includes('+'))).toBe(true);
  });

  it("the mechanism's audit of answer counts pins those three cells too, where few enough quantities are open to solve (DISCLOSURE_SOLVE_UNKNOWNS), and not without", () => {
    const { cells, lines } = PAIRS;
    // One answer category, counted in every cell; not the number of responses, which was the only figure these steps audited.
    const counts = Int32Array.from([5, 7, 6, 2, 3, 4]);
    const question = { counts: [counts], sumOf: [0], respondents: counts, dontKnow: new Int32Array(cells.length) };
    const cellHidden = Uint8Array.from(cells, (c) => (c.length === 1 ? 1 : 0));
    const input = { lattice: indexLines(cells, lines), answers: question, cellHidden, countHidden: () => false, forcesWhole: () => true };
    expect(auditCounts(input).pinned).toEqual([]);
    const solved = { ...input, answers: { ...question, solveUnknowns: 6_000 } };
    expect(auditCounts(solved).pinned.map((v) => cells[v % cells.length]).sort()).toEqual(['a', 'b', 'c']);
  });

  /**
   * a + b = 5, b + c = 7, a + c = 6 (a = 2, b = 3, c = 4, quantities 0–2), and
   * 200 pairs p + q = 3 with no upper bound known: open, and enough to leave
   * elimination out.
   */
  const triangleAndPairs = () => {
    const list = OpenRelationList.cleared();
    const relation = (terms: number[], constant: number) => list.add(Int32Array.from(terms), terms.length, constant, list.relations.count);
    relation([0, 1], 5);
    relation([1, 2], 7);
    relation([0, 2], 6);
    const pairs = 200;
    for (let i = 0; i < pairs; i++) relation([3 + 2 * i, 4 + 2 * i], 3);
    return { list, pairs, U: 3 + 2 * pairs };
  };

  it('solves a system beyond the elimination budget as a linear program: it pins the three cells and leaves open the unknowns without an upper bound', () => {
    const { list, pairs, U } = triangleAndPairs();
    const R = 3 + pairs;
    expect(U * R * (U + R)).toBeGreaterThan(ELIMINATION_BUDGET);
    const bounds = { lo: () => 0, hi: (v: number) => (v < 3 ? 10 : Infinity), minRange: 1 };
    expect(equalityPins(list.relations, U, bounds).size).toBe(0);
    // Solved only up to the unknowns asked for.
    expect(equalityPins(list.relations, U, { ...bounds, solveUpTo: U - 1 }).size).toBe(0);
    const pins = equalityPins(list.relations, U, { ...bounds, solveUpTo: U });
    expect([...pins.keys()].sort((x, y) => x - y)).toEqual([0, 1, 2]);
    // Each pin comes with the relations that give it: the three pairs of cells.
    expect(new Set(pins.get(0))).toEqual(new Set([0, 1, 2]));
  });

  it('keeps the solutions it found as moves from the true values, each one a solution, and does not trust a move that no longer is one', () => {
    // The true values: a = 2, b = 3, c = 4; each pair p = 1, q = 2.
    const { list, pairs, U } = triangleAndPairs();
    const truth = (v: number) => (v < 3 ? [2, 3, 4][v]! : (v - 3) % 2 === 0 ? 1 : 2);
    const witnesses = new Witnesses();
    const bounds = { lo: () => 0, hi: (v: number) => (v < 3 ? 10 : Infinity), minRange: 1, solveUpTo: U, truth, witnesses };
    expect([...equalityPins(list.relations, U, bounds).keys()].sort((x, y) => x - y)).toEqual([0, 1, 2]);
    expect(witnesses.moves.length).toBeGreaterThan(0);
    const { start, terms, constants } = list.relations;
    for (const move of witnesses.moves) {
      const x = Array.from({ length: U }, (_, v) => truth(v));
      move.quantities.forEach((v, i) => (x[v]! += move.by[i]!));
      // Every relation and bound holds, and the pinned cells are where they are.
      for (let r = 0; r < list.relations.count; r++) {
        let sum = 0;
        for (let t = start[r]!; t < start[r + 1]!; t++) sum += terms[t]! >= 0 ? x[terms[t]!]! : -x[~terms[t]!]!;
        expect(sum).toBeCloseTo(constants[r]!, 9);
      }
      expect(x.every((value) => value >= -1e-9)).toBe(true);
      expect(x.slice(0, 3)).toEqual([2, 3, 4]);
    }
    // Together they show every pair open, so a second audit of the same system needs no solve for them.
    const moved = new Set(witnesses.moves.flatMap((move) => [...move.quantities]));
    expect(Array.from({ length: 2 * pairs }, (_, i) => 3 + i).every((v) => moved.has(v))).toBe(true);
    // A move that breaks a + b = 5 would show a open: it is dropped, and the three cells are pinned still.
    const broken = { quantities: Int32Array.of(0, 3), by: Float32Array.of(1, 1) };
    witnesses.moves.push(broken);
    expect([...equalityPins(list.relations, U, bounds).keys()].sort((x, y) => x - y)).toEqual([0, 1, 2]);
    expect(witnesses.moves).not.toContain(broken);
    expect(witnesses.moves.length).toBeGreaterThan(0);
    // Moves of quantities that went are dropped when the audit is renumbered.
    expect(witnesses.renumbered((v) => (v === 3 ? -1 : v)).moves.every((move) => !move.quantities.includes(3))).toBe(true);
  });

  /**
   * One of the 100 random tables below, hidden as the mechanism hid it before
   * its audit bounded what elimination leaves open by linear programming:
   * ten cells published, groups 21* and 210 (1 response each) pinned by the
   * solver through the bounds of several combinations of lines at once
   * (a listed group has at least 1 response), which neither elimination nor
   * the bounds over its rows find.
   */
  it("the mechanism's audit of the number of responses pins what only the bounds of several combinations give, and its repairs leave the solver nothing", () => {
    const { cells, lines, inner } = cube();
    const responses = new Map(inner.map((c) => [c, ({ '000': 3, '010': 1, '021': 2, '101': 5, '200': 1, '201': 1, '210': 1, '221': 2 } as Record<string, number>)[c] ?? 0]));
    const size = cubeSizes(cells, inner, responses);
    const published = new Set(['***', '**0', '**1', '*0*', '0**', '1**', '1*1', '10*', '101', '2**']);
    const hidden = new Set(cells.filter((c) => !published.has(c)));
    expect(pinnedCells(cells, lines, size, hidden, true)).toEqual([]);
    expect(pinnedCells(cells, lines, size, hidden, true, 1, highs)).toEqual(['21*', '210']);

    const index = indexLines(cells, lines);
    const counts = Int32Array.from(cells, (c) => size.get(c)!);
    const question = { counts: [counts], sumOf: [0], respondents: counts, dontKnow: new Int32Array(cells.length), listed: true };
    const cellHidden = Uint8Array.from(cells, (c) => (hidden.has(c) ? 1 : 0));
    const finding = auditCounts({ lattice: index, answers: question, cellHidden, countHidden: () => false, forcesWhole: () => true });
    expect(finding.pinned.map((v) => cells[v % cells.length]).sort()).toEqual(['21*', '210']);
    expect(finding.repairs.length).toBeGreaterThan(0);

    const figure = { size: (c: string) => size.get(c)!, tooSmall: (c: string) => size.get(c)! < 3 };
    const decision = unitDecision(cells, lines, index, [figure], [question]);
    expect(pinnedCells(cells, lines, size, decision.hidden, true, 1, highs)).toEqual([]);
  });

  it('leaves open the four hidden cells of a rectangle, whose values can move together', () => {
    // A 2 × 2 table whose four groups are hidden and whose margins are published: +1, −1, −1, +1 keeps every margin.
    const { cells, lines, inner } = cube([2, 2]);
    const size = new Map([['00', 2], ['01', 3], ['10', 4], ['11', 1]]);
    for (const c of cells.filter((c) => c.includes('*'))) {
      size.set(c, inner.filter((x) => [...c].every((ch, i) => ch === '*' || ch === x[i])).reduce((t, x) => t + size.get(x)!, 0));
    }
    expect(pinnedCells(cells, lines, size, new Set(inner), false, 1, highs)).toEqual([]);
    // The move t runs from −1 (cell 11 at 0) to 3 (cell 01 at 0): every cell's range is 4 wide, open at a width of 4, not of 5.
    expect(pinnedCells(cells, lines, size, new Set(inner), false, 4, highs)).toEqual([]);
    expect(pinnedCells(cells, lines, size, new Set(inner), false, 5, highs)).toEqual(['00', '01', '10', '11']);
  });

  /**
   * Two lines give a hidden group only together, as at the demo wave's size
   * (count-equalities.ts): here group 010 (1 response) of a 2 × 3 × 2 table,
   * after secondary suppression, where every line holds two unknowns or
   * more. Propagation leaves it open; the solver pins it; the audit of the
   * number of responses now pins it too, and the mechanism hides more.
   */
  it('pins a hidden group that two lines give only together, and the mechanism no longer publishes what gives it', () => {
    const { cells, lines, inner } = cube([2, 3, 2]);
    const responses = new Map(inner.map((c) => [c, ({ '000': 4, '010': 1, '011': 2, '020': 2, '110': 2 } as Record<string, number>)[c] ?? 0]));
    const size = cubeSizes(cells, inner, responses);
    const figure = { size: (c: string) => size.get(c)!, tooSmall: (c: string) => size.get(c)! < 3 };
    const index = indexLines(cells, lines);
    const counts = Int32Array.from(cells, (c) => size.get(c)!);
    const question = { counts: [counts], sumOf: [0], respondents: counts, dontKnow: new Int32Array(cells.length), listed: true };

    const secondary = hiddenCells(cells, lines, [figure]);
    expect(pinnedCells(cells, lines, size, secondary, true)).toEqual([]);
    expect(pinnedCells(cells, lines, size, secondary, true, 1, highs)).toContain('010');
    const cellHidden = Uint8Array.from(cells, (c) => (secondary.has(c) ? 1 : 0));
    const finding = auditCounts({ lattice: index, answers: question, cellHidden, countHidden: () => false, forcesWhole: () => true });
    expect(finding.pinned.map((v) => cells[v % cells.length])).toContain('010');

    const { hidden } = unitDecision(cells, lines, index, [figure], [question]);
    expect(pinnedCells(cells, lines, size, hidden, true, 1, highs)).toEqual([]);
  });

  /**
   * The mechanism's secondary suppression narrows bounds one line at a time.
   * Its audit of the number of responses takes the lines together as well:
   * in the cheap steps of count-equalities.ts, then, for a system of a few
   * hundred unknowns, by eliminating them whole, narrowing bounds over the
   * eliminated rows and bounding what is left open by linear programming.
   * On 100 random 3 × 3 × 2 tables a solver that takes every line at once
   * pins 115 groups after secondary suppression alone, and, after the
   * mechanism's decision, 69 with an audit by propagation only, 55 with the
   * cheap steps, 2 (in one table) with elimination, and none with the
   * audit's own linear programming.
   */
  it("pins none of the hidden groups of 100 random tables after the mechanism's decision (115 after secondary suppression alone)", () => {
    const { cells, lines, inner } = cube();
    const index = indexLines(cells, lines);
    const random = seededRandom(7);
    let byPropagation = 0;
    let bySolver = 0;
    let secondaryOnly = 0;
    for (let run = 0; run < 100; run++) {
      const size = randomSizes(cells, inner, random);
      const figure = { size: (c: string) => size.get(c)!, tooSmall: (c: string) => size.get(c)! < 3 };
      const responses = Int32Array.from(cells, (c) => size.get(c)!);
      const { hidden } = unitDecision(cells, lines, index, [figure], [{ counts: [responses], sumOf: [0], respondents: responses, dontKnow: new Int32Array(cells.length), listed: true }]);
      byPropagation += pinnedCells(cells, lines, size, hidden, true).length;
      bySolver += pinnedCells(cells, lines, size, hidden, true, 1, highs).length;
      // Secondary suppression alone, without the listed groups' lower bound of 1.
      const cellsOnly = hiddenCells(cells, lines, [figure]);
      byPropagation += pinnedCells(cells, lines, size, cellsOnly).length;
      secondaryOnly += pinnedCells(cells, lines, size, cellsOnly, false, 1, highs).length;
    }
    expect(byPropagation).toBe(0);
    expect([secondaryOnly, bySolver]).toEqual([115, 0]);
  });

  /**
   * On a campaign made like the demo data at the demo wave's size (150
   * institutions, 435 responses, the real thresholds), every view up to three
   * dimensions: the solver pins none of the ~2,880 hidden numbers of
   * responses that are not 0. Before the audit took the lines' equalities
   * together it pinned 2 (count-equalities.ts tells how).
   */
  it('pins no hidden number of responses on a campaign made like the demo data', () => {
    const { looked, pinned } = solverPins(records(150));
    expect(looked).toBeGreaterThan(2500);
    expect(pinned.slice(0, 5)).toEqual([]);
  });

  /**
   * A smaller campaign made the same way (30 institutions, 92 responses).
   * Its systems (some 3,800 unknowns in 7,400 relations) are beyond the
   * mechanism's ELIMINATION_BUDGET. While views listed a group whose number
   * of responses is hidden, as a suppressed column, the solver took each
   * listed group as at least 1 and pinned 37 hidden numbers of responses,
   * all in one country's chamber-sector groups. Views no longer list such
   * groups, and a filter on a value nobody has reads as a suppressed one
   * (disclosure-and-exports.test.ts), so an outsider knows neither that a
   * hidden group has a response nor that an unlisted one has none.
   */
  it('pins no hidden number of responses of a campaign of 30 institutions made like the demo data (37 while views listed hidden groups)', () => {
    const { looked, pinned } = solverPins(records(30));
    expect(looked).toBeGreaterThan(1200);
    expect(pinned).toEqual([]);
  });

  /**
   * The random waves the other evidence tests use (evidence-data.ts: 40
   * responses of 8 institutions, every profile dimension drawn for each
   * response, so an institution answers from several countries, as real
   * data cannot) are sparse far beyond that: nearly every group is below
   * the institution threshold. While views listed hidden groups, the solver
   * derived 576 of the 703 hidden numbers of responses from the overall
   * total, the listed groups (at least 1) and the empty ones (0), among
   * them France's 13; the mechanism's own model, solved whole, pinned most
   * of them too, and repairing them one published number at a time withheld
   * the wave's total.
   */
  it("pins none of the evidence tests' random wave's hidden numbers of responses (576 of 703 while views listed hidden groups)", () => {
    const raw = toResponses(fc.sample(responseArbitrary, { numRuns: 40, seed: 11 }), new Types.ObjectId());
    const wave: EvidenceRecord[] = raw.map((r, i) => ({ id: String(i), campaign: 'wave', institution: String(r.institution), revision: 1, submittedAt: r.submittedAt, profile: r.profile, items: r.items as EvidenceRecord['items'] }));
    const { looked, pinned } = solverPins(wave);
    expect(looked).toBeGreaterThanOrEqual(703);
    expect(pinned).toEqual([]);
  });
});

/**
 * What the solver derives of the hidden numbers of responses of a wave's
 * records (`all`), every view up to three dimensions at the real
 * thresholds: how many it looked at (not published, not 0) and those it
 * pinned. It knows the published numbers, the lines between cells, and
 * that a group a view lists with its number hidden has a response (a
 * figure is published there); of a group no view lists it knows neither
 * whether it has a response nor that it is empty. Every true value must
 * lie within its bounds.
 */
function solverPins(all: EvidenceRecord[]): { looked: number; pinned: string[] } {
  const publication = publish(all, DEFAULT_THRESHOLDS, true);
  // The model's premise: a group listed with its number of responses hidden has a published figure (which says more than that it exists).
  const figures = [...publication.published].filter(([figure]) => figure !== 'responses').map(([, cells]) => cells);
  const bare = [...publication.listedHidden].filter((cell) => !figures.some((cells) => cells.has(cell)));
  expect(bare.slice(0, 5), 'groups listed with nothing published').toEqual([]);
  const open = publish(all, { minInstitutions: 1, minRespondents: 1 }, false);
  const lattice = latticeOf(open, 3);
  const responsesOnly = { quantities: (figure: string) => figure === 'responses', unlisted: true };
  const truth = solveAll(open, lattice, (figure, cell) => open.hidden.get(figure)?.has(cell) ?? false, responsesOnly).get('responses')!;
  const valueOf = (cell: string) => truth.get(cell)?.get('responses')?.lo ?? 0;
  const shown = publication.published.get('responses')!;
  const hidden = (cell: string) => !shown.has(cell) && valueOf(cell) > 0;
  const bounds = solveAll(publication, lattice, () => false, { ...responsesOnly, linearProgramming: { highs, targets: (_, cell) => hidden(cell) } }).get('responses')!;
  const pinned: string[] = [];
  let looked = 0;
  for (const [cell, quantities] of bounds) {
    if (!hidden(cell)) continue;
    looked += 1;
    const { lo, hi } = quantities.get('responses')!;
    expect(valueOf(cell), cell).toBeGreaterThanOrEqual(lo);
    expect(valueOf(cell), cell).toBeLessThanOrEqual(hi);
    if (hi - lo < 1) pinned.push(`"${cell}" (${valueOf(cell)}) pinned to [${lo}, ${hi}]`);
  }
  return { looked, pinned };
}
