/**
 * Values that the audit's equalities give only when taken together (issue 10).
 *
 * Interval propagation (count-audit.ts) narrows one relation at a time. An
 * outsider with a linear-programming solver takes them all at once
 * (tests/evidence/linear-programming.ts), and at the demo wave's size it
 * pinned two hidden groups that propagation left open, both the same way:
 * a line gives the sum of two hidden groups (a country's 27 less its
 * published 19: 8 for two size groups); each of the two answered from rural
 * places only, so each equals its rural cell (its other members are empty,
 * known to be 0); and the country's rural line, 13, holds those two rural
 * cells and one more hidden group, which is therefore 13 − 8 = 5. Every
 * line involved holds two unknowns or more.
 *
 * This step catches such chains with the cheap part of elimination:
 * - a relation between two unknowns, x − y = c (the rest known), makes them
 *   one class up to a constant (union-find with offsets: x = root + offset);
 * - every other relation is rewritten over the classes; one left with a
 *   single class fixes it;
 * - where a relation's classes are another's but one, with the same
 *   coefficients (or all opposite), the difference of the two fixes that one.
 * Repeated while values are found (they are known in the next round), a few
 * rounds at most. Every value it finds follows from the relations, so it
 * never pins what is open. It is not the whole of elimination: a value that
 * needs relations combined otherwise (three cells published only in pairs),
 * or the bounds as well, is left to the standing test with the solver.
 *
 * The audit runs it for the numbers of responses (AnswerCounts.listed), and
 * for a question's answer counts only when asked (AnswerCounts.solveUnknowns) and
 * while at most that many of its quantities are open: on the demo data
 * every value it found was a number of responses, none an answer count,
 * while running it for every question made a decision about four times as
 * costly from scratch and twenty times after a response (bench:disclosure),
 * and a page after a response at 5,000 five times; on sparse data
 * (campaigns of 10–30 responses) a solver pinned answer counts that only
 * the linear programming below, run over systems of thousands of unknowns,
 * finds.
 */

import * as highsPackage from 'highs';
import type { Highs } from 'highs';

/** Relations with two unknown quantities or more, the known ones moved to the constant: Σ ±x = constant. */
export interface OpenRelations {
  /** How many. */
  count: number;
  /** Relation i's terms are terms[start[i]] … terms[start[i + 1] − 1]: v for +x_v, ~v for −x_v. */
  start: Int32Array;
  terms: Int32Array;
  constants: Float64Array;
  /** Each relation's number as its caller knows it (for the chain to break). */
  origins: Int32Array;
}

/**
 * Collects OpenRelations one at a time. One list serves every audit (an
 * audit reads it to its end before the next starts): a list of its own
 * grew its arrays again on every call, thousands of relations each.
 */
export class OpenRelationList {
  private static kept: OpenRelationList | undefined;
  private start: Int32Array = new Int32Array(1025);
  private terms: Int32Array = new Int32Array(4096);
  private constants = new Float64Array(1024);
  private origins: Int32Array = new Int32Array(1024);
  private count = 0;
  private length = 0;

  private constructor() {}

  /** The shared list, emptied. */
  static cleared(): OpenRelationList {
    const list = (OpenRelationList.kept ??= new OpenRelationList());
    list.count = 0;
    list.length = 0;
    return list;
  }

  /** Adds a relation over `unknowns` terms, taken from `from` at 0 … unknowns − 1. */
  add(from: Int32Array, unknowns: number, constant: number, origin: number): void {
    if (this.length + unknowns > this.terms.length) this.terms = grown(this.terms, this.length + unknowns);
    if (this.count + 1 >= this.constants.length) {
      const constants = new Float64Array(2 * this.constants.length);
      constants.set(this.constants);
      this.constants = constants;
      this.origins = grown(this.origins, 2 * this.origins.length);
      this.start = grown(this.start, 2 * this.start.length);
    }
    const terms = this.terms;
    for (let i = 0, at = this.length; i < unknowns; i++, at++) terms[at] = from[i]!;
    this.length += unknowns;
    this.constants[this.count] = constant;
    this.origins[this.count] = origin;
    this.count += 1;
    this.start[this.count] = this.length;
  }

  get relations(): OpenRelations {
    return { count: this.count, start: this.start, terms: this.terms, constants: this.constants, origins: this.origins };
  }
}

function grown(a: Int32Array, least: number): Int32Array {
  const next = new Int32Array(Math.max(least, 2 * a.length));
  next.set(a);
  return next;
}

/** At most this many rounds: each one runs only when the last found a value. */
const MOST_ROUNDS = 4;

/**
 * The unknown quantities (numbered below `quantities`) whose value the
 * relations fix, each with the origins of the relations that fix it: their
 * published quantities are the chain to break.
 */
export function equalityPins(open: OpenRelations, quantities: number, bounds?: UnknownBounds): Map<number, number[]> {
  if (open.count === 0) return new Map();
  const classes = Classes.over(quantities);
  let pins: Map<number, number[]>;
  try {
    pins = pinsWith(open, classes);
  } finally {
    classes.release();
  }
  for (const [v, chain] of eliminationPins(open, bounds)) if (!pins.has(v)) pins.set(v, chain);
  return pins;
}

/** What the audit knows of each unknown's value (Infinity: no upper bound), and the narrowest range that still protects. */
export interface UnknownBounds {
  lo(v: number): number;
  hi(v: number): number;
  minRange: number;
  /** Whether unknown v's true value is not 0: only such a value can be pinned (linearPins bounds only those). All when absent. */
  nonZero?(v: number): boolean;
  /**
   * Unknowns up to which a system beyond ELIMINATION_BUDGET is solved by
   * linear programming (linearPins); 0 when absent: such a system pins
   * nothing. Answer counts pass their AnswerCounts.solveUnknowns
   * (DISCLOSURE_SOLVE_UNKNOWNS), the numbers of responses 0: their systems
   * of that size (3,800–5,600 unknowns on campaigns made like the demo data
   * with 30 and 60 institutions) took 25 s and 184 s of a decision's CPU, and
   * the solver pins none of them there (README).
   *
   * On the linear-programming auditor's sparse seeds (10–30 responses,
   * systems of 410–6,544 unknowns) 6,000 is enough for the solver to pin none
   * of their hidden non-zero counts (35, 44 and 51 without these steps; at
   * 3,000, 7 on one seed). On the demo data a few questions' audits are that
   * small (bench:disclosure: a decision from scratch 3.3 s of CPU against
   * 2.1 s at 3,000; at 10,000 it had not ended after 7 minutes); at 5,000
   * responses a question's largest part alone held 8,172 unknowns or more.
   * It is not the default: on the test suite's small random campaigns, where
   * every response is followed by a decision, two evidence test files had not
   * ended after 17 minutes with 6,000 (the whole suite takes about 22).
   */
  solveUpTo?: number;
  /**
   * The true value of unknown v, and the moves from the true values that
   * earlier solves of this system found (Witnesses): with both, a system
   * beyond the budget first tries the moves, and only targets that none of
   * them shows open are solved for.
   */
  truth?(v: number): number;
  witnesses?: Witnesses;
}

/**
 * Solutions that solving a question's answer counts found, each kept as its
 * move from the true values (x − truth, only where not 0), for the next
 * audit of the same question: after one more response most of them still
 * solve its system (the true values change, the hidden cells and so the
 * relations mostly do not), and a move that does shows open every target it
 * moves by the protection width, without a solve. A move is used only once
 * checked against the system it is used for (every relation, every bound,
 * nothing moved that is known there), so a stale one is dropped, never
 * trusted.
 */
export class Witnesses {
  /** Each move: the quantities it moves, and by how much. */
  moves: Array<{ quantities: Int32Array; by: Float32Array }> = [];

  /** These moves with each quantity v renumbered to `to(v)`; a move with a quantity that has no number (−1) is dropped. */
  renumbered(to: (v: number) => number): Witnesses {
    const next = new Witnesses();
    for (const move of this.moves) {
      const quantities = move.quantities.map(to);
      if (!quantities.includes(-1)) next.moves.push({ quantities, by: move.by });
    }
    return next;
  }
}

/**
 * What linearPins did since the process started, beyond the elimination
 * budget: the solves it ran, and the targets that kept moves showed open
 * without one (bench:disclosure prints them; tests read them).
 */
export const solverWork = { solves: 0, targets: 0, shownByMoves: 0 };

/** Moves kept per question (Witnesses): the first two solves and the random rounds make 18 at most; single targets' solves fill the rest. */
const MOST_WITNESSES = 24;

/**
 * Work (unknowns × relations × (unknowns + relations)) up to which the
 * relations are also eliminated whole (eliminationPins): at the limit (87
 * unknowns in 166 relations) a call took 8.5 ms, both orders and the bounds.
 */
export const ELIMINATION_BUDGET = 4_000_000;
const EPSILON = 1e-9;

/** Marks of the unknowns met while listing them (unknownsOf), kept between calls and all 0 between them. */
let unknownMarks = new Uint8Array(0);

/**
 * The unknowns of the open relations, each once, ascending: marked, then read
 * off in order. A set of them sorted took most of eliminationPins's time for
 * the numbers of responses (tens of thousands of terms), whose system is
 * mostly beyond elimination's budget and needs no more than the list.
 */
function unknownsOf({ count: R, start, terms }: OpenRelations): number[] {
  let most = -1;
  for (let t = 0; t < start[R]!; t++) most = Math.max(most, terms[t]! >= 0 ? terms[t]! : ~terms[t]!);
  if (unknownMarks.length <= most) unknownMarks = new Uint8Array(most + 1);
  for (let t = 0; t < start[R]!; t++) unknownMarks[terms[t]! >= 0 ? terms[t]! : ~terms[t]!] = 1;
  const unknowns: number[] = [];
  for (let v = 0; v <= most; v++) {
    if (unknownMarks[v] === 0) continue;
    unknownMarks[v] = 0;
    unknowns.push(v);
  }
  return unknowns;
}

/**
 * The unknowns that the relations fix when combined in any way, by
 * Gauss-Jordan elimination over all of them, each with the origins of the
 * relations in the combination that fixes it; nothing when the system is
 * beyond ELIMINATION_BUDGET. The cheap steps above miss a value that needs
 * relations combined otherwise than by classes and pairs: three cells
 * published only in pairs, or a table whose hidden groups are tied by
 * several of its lines at once (on 100 random 3 × 3 × 2 tables, 25 hidden
 * groups that a linear-programming solver pinned). It works in floating
 * point: a value is taken only when it comes out whole, and a coefficient
 * rounding left standing can only make a value look open or fixed where
 * exact arithmetic says otherwise, the first as the cheap steps' limit does,
 * the second costing a count hidden that did not need to be.
 */
function eliminationPins(open: OpenRelations, bounds?: UnknownBounds): Map<number, number[]> {
  const pins = new Map<number, number[]>();
  const R = open.count;
  const unknowns = unknownsOf(open);
  const U = unknowns.length;
  if (U * R * (U + R) > ELIMINATION_BUDGET) {
    // Beyond elimination, the solver alone: it pins every non-zero count elimination would, and more.
    if (bounds !== undefined && U <= (bounds.solveUpTo ?? 0)) linearPins(open, unknowns, bounds, pins, true);
    return pins;
  }
  const first = eliminated(open, unknowns);
  // A value the relations fix is a row of its own in any order of elimination.
  for (let i = 0; i < first.rank; i++) {
    const row = i * first.width;
    let others = 0;
    for (let j = 0; j < U && others === 0; j++) if (j !== first.pivotColumn[i] && Math.abs(first.rows[row + j]!) > EPSILON) others += 1;
    if (others > 0) continue;
    const value = first.rows[row + U]!;
    if (Math.abs(value - Math.round(value)) > 1e-6) continue;
    pins.set(unknowns[first.pivotColumn[i]!]!, first.combination(i));
  }
  if (bounds) {
    boundsOverRows([first, eliminated(open, [...unknowns].reverse())], unknowns, bounds, pins);
    linearPins(open, unknowns, bounds, pins);
  }
  return pins;
}

/**
 * HiGHS, loaded with this module (about 0.2 s and 20 MB a process, once): the
 * audit is synchronous. A counting thread (counts-thread.ts) does not load
 * the decision's modules, so not this.
 */
const highs: Highs = await (highsPackage as unknown as { default: () => Promise<Highs> }).default();

/** Simplex iterations a solve may take: far above what systems within the budget take (at most 183, about 10 on average, on random ones at its limit). */
const SOLVE_ITERATIONS = 20_000;
/** Rounds of random signs before the targets left are solved one by one (linearPins): on seed 1's systems 16 left 0–171 targets a system, where 4 left up to 227 (none pinned). */
const SPREAD_ROUNDS = 16;

/**
 * What an outsider with a linear-programming solver derives, for a system
 * within ELIMINATION_BUDGET: each unknown that is not 0 and not yet pinned
 * is minimised and maximised over every relation at once, within the
 * audit's bounds (HiGHS, simplex), and its range rounded inwards (every
 * quantity here is a whole number). Elimination and the bounds over its
 * rows use one combination of relations at a time; a value that needs the
 * bounds of several at once (2 hidden groups of 100 random 3 × 3 × 2 tables,
 * tests/evidence/linear-programming-audit.test.ts) is found only here. A
 * pinned unknown comes with the relations of the solver's certificate: those
 * whose dual value is not 0 at either optimum, the combination that bounds
 * it.
 *
 * Most targets are shown open without solves of their own, by solutions
 * far apart (a target two of them leave `minRange` apart or more is open):
 * every target as low as it can be, then as high, the columns without an
 * upper bound capped just above the first solution (else that solve is
 * unbounded and shows nothing; a capped solution is one of the real
 * system's, the caps only narrow it), then rounds of random signs over the
 * targets still not shown open, while a round shows some. Only the targets
 * left are minimised, and maximised when no solution seen lies `minRange`
 * above their minimum. Beyond ELIMINATION_BUDGET the first solve
 * presolves (`presolve`): from no basis a system of 6,500 unknowns took
 * 9.6 s without, 0.6 s with; the later ones start from the last basis,
 * without. Within the budget it does not: the optimum's duals are not
 * unique, and on the random table of linear-programming-audit.test.ts the
 * ones found after presolving named only published zeros, which no repair
 * can hide. On seed 1's systems of the linear-programming
 * auditor (40 systems of 410–6,544 unknowns, 355 pins) this took 4.4 s
 * against 76 s for every target minimised and maximised after the first two
 * solves, with the same pins.
 *
 * Beyond the budget two more steps cut the work where it is repeated, on
 * campaigns of a few dozen responses (bench:disclosure with
 * BENCH_INSTITUTIONS=10: 53 responses, 114 systems of about 3,200
 * unknowns in three decisions): the system is solved over the classes that
 * two-term relations make (mergedSystem: a sixth of the columns, a seventh
 * of the rows; the solver's time 33 s → 10 s), and the moves of the last
 * audit of the same question that still solve the system show targets open
 * before any solve (Witnesses: after one more response every target of
 * those systems, and no solve at all).
 */
function linearPins(open: OpenRelations, unknowns: readonly number[], bounds: UnknownBounds, pins: Map<number, number[]>, beyondBudget = false): void {
  const targets = unknowns.map((_, j) => j).filter((j) => !pins.has(unknowns[j]!) && (bounds.nonZero?.(unknowns[j]!) ?? true));
  if (targets.length === 0) return;
  const moves = beyondBudget ? new MoveCheck(open, unknowns, bounds) : undefined;
  const shownByMoves = moves?.shownOpen(targets) ?? new Set<number>();
  if (beyondBudget) ((solverWork.targets += targets.length), (solverWork.shownByMoves += shownByMoves.size));
  if (shownByMoves.size === targets.length) {
    moves?.keep();
    return;
  }
  const system = beyondBudget ? mergedSystem(open, unknowns, bounds) : wholeSystem(open, unknowns, bounds);
  const { columns: U, rows: R, columnOf } = system;
  // The columns to bound: those of the targets (a class's members share its range), less those a kept move shows open.
  const targetColumns = [...new Set(targets.filter((j) => !shownByMoves.has(j)).map((j) => columnOf[j]!))].sort((x, y) => x - y);
  const infinite = (x: number) => (x === Infinity ? highs.infinity : x === -Infinity ? -highs.infinity : x);
  highs.withModel((model) => {
    // Primal simplex without presolve: after a change of costs the last basis still fits every relation, so each solve starts from it.
    // An iteration limit (deterministic, unlike a time limit): a solve that reaches it finds nothing, as a system beyond the budget.
    model.options.set({ output_flag: false, presolve: 'off', solver: 'simplex', simplex_strategy: 4, simplex_iteration_limit: SOLVE_ITERATIONS });
    model.passModel({
      numCols: U,
      numRows: R,
      colCost: new Float64Array(U),
      colLower: system.lower.map(infinite),
      colUpper: system.upper.map(infinite),
      rowLower: system.constants,
      rowUpper: system.constants,
      matrix: { format: 'csr', numRows: R, numCols: U, starts: system.starts, indices: system.indices, values: system.values },
    });
    const { optimal } = highs.constants.modelStatus;
    const seenLo = new Float64Array(U).fill(Infinity);
    const seenHi = new Float64Array(U).fill(-Infinity);
    const activeRows = new Set<number>();
    /** The least value of the objective (null: unbounded, or no optimum found), each solution's values noted. */
    const least = (keep: boolean): number | null => {
      try {
        if (beyondBudget) solverWork.solves += 1;
        model.run();
      } catch {
        // A native error of the solver (not an outcome such as unbounded, which is a status): this bound is not found.
        return null;
      }
      if (model.getModelStatus() !== optimal) return null;
      const { colValue, rowDual } = model.getSolution();
      let widened = false;
      for (const c of targetColumns) widened ||= colValue[c]! < seenLo[c]! - 1e-9 || colValue[c]! > seenHi[c]! + 1e-9;
      if (widened) moves?.found((j) => system.valueOf(j, colValue));
      for (let c = 0; c < U; c++) ((seenLo[c] = Math.min(seenLo[c]!, colValue[c]!)), (seenHi[c] = Math.max(seenHi[c]!, colValue[c]!)));
      if (keep) for (let i = 0; i < R; i++) if (Math.abs(rowDual[i]!) > EPSILON) activeRows.add(i);
      return model.getObjectiveValue();
    };
    const shownOpen = (c: number) => Math.floor(seenHi[c]! + 1e-6) - Math.ceil(seenLo[c]! - 1e-6) >= bounds.minRange;
    const costs = (indices: readonly number[], cost: (c: number) => number) => model.changeColsCost({ kind: 'set', indices: Int32Array.from(indices) }, Float64Array.from(indices, cost));
    if (beyondBudget) model.options.set({ presolve: 'on', solver: 'choose' });
    costs(targetColumns, () => 1);
    least(false);
    if (beyondBudget) model.options.set({ presolve: 'off', solver: 'simplex' });
    const unbounded = [...system.upper.keys()].filter((c) => system.upper[c] === Infinity);
    const capped = unbounded.length > 0 && seenLo[0] !== Infinity;
    const capsTo = (upper: (c: number) => number) => model.changeColsBounds({ kind: 'set', indices: Int32Array.from(unbounded) }, Float64Array.from(unbounded, (c) => infinite(system.lower[c]!)), Float64Array.from(unbounded, upper));
    if (capped) capsTo((c) => Math.ceil(seenLo[c]!) + Math.max(1, bounds.minRange) + 1);
    costs(targetColumns, () => -1);
    least(false);
    // Random signs: a line's hidden groups trade against each other, so raising them all together moves none.
    let left = targetColumns.filter((c) => !shownOpen(c));
    let random = 0x9e3779b9;
    for (let round = 0; round < SPREAD_ROUNDS && left.length > 0; round++) {
      costs(targetColumns, () => 0);
      random = (Math.imul(random, 1103515245) + 12345) >>> 0;
      costs(left, (c) => (mixed(random + c) & 1 ? 1 : -1));
      least(false);
      const still = left.filter((c) => !shownOpen(c));
      if (still.length === left.length) break;
      left = still;
    }
    costs(targetColumns, () => 0);
    if (capped) capsTo(() => highs.infinity);
    for (const c of left) {
      if (shownOpen(c)) continue;
      activeRows.clear();
      model.changeColCost(c, 1);
      const lowest = least(true);
      if (lowest !== null && Math.floor(seenHi[c]! + 1e-6) - Math.ceil(lowest - 1e-6) >= bounds.minRange) {
        model.changeColCost(c, 0);
        continue;
      }
      model.changeColCost(c, -1);
      const negatedHighest = least(true);
      model.changeColCost(c, 0);
      if (lowest === null || negatedHighest === null) continue;
      if (Math.floor(-negatedHighest + 1e-6) - Math.ceil(lowest - 1e-6) >= bounds.minRange - 1e-9) continue;
      const certificate = system.certificate(c, activeRows);
      for (const j of targets) if (columnOf[j] === c && !shownByMoves.has(j)) pins.set(unknowns[j]!, certificate);
    }
  });
  moves?.keep();
}

/**
 * The kept moves (UnknownBounds.witnesses) checked against one system: those
 * that still solve it, the targets they show open, and the moves of this
 * system's solves to keep.
 */
class MoveCheck {
  private readonly column: Map<number, number>;
  /** The moves that still solve the system; none when the true values do not (then nothing is kept either). */
  private readonly valid: Array<{ quantities: Int32Array; by: Float32Array }> = [];
  private readonly fresh: Array<{ quantities: Int32Array; by: Float32Array }> = [];
  private readonly truth: Float64Array | undefined;
  /** The relations' terms as places in the unknowns (~j for −x), and the bounds, for checking many moves. */
  private places = new Int32Array(0);
  private lo = new Float64Array(0);
  private hi = new Float64Array(0);

  constructor(
    private readonly open: OpenRelations,
    private readonly unknowns: readonly number[],
    private readonly bounds: UnknownBounds,
  ) {
    this.column = new Map(unknowns.map((v, j) => [v, j]));
    if (!bounds.truth || !bounds.witnesses) return;
    const { count: R, start, terms } = open;
    this.places = Int32Array.from({ length: start[R]! }, (_, t) => (terms[t]! >= 0 ? this.column.get(terms[t]!)! : ~this.column.get(~terms[t]!)!));
    this.lo = Float64Array.from(unknowns, (v) => bounds.lo(v));
    this.hi = Float64Array.from(unknowns, (v) => bounds.hi(v));
    const truth = Float64Array.from(unknowns, (v) => bounds.truth!(v));
    if (!this.solves(truth)) return;
    const at = new Float64Array(unknowns.length);
    this.truth = truth;
    for (const move of bounds.witnesses.moves) {
      at.fill(0);
      let known = true;
      for (let i = 0; i < move.quantities.length && known; i++) {
        const j = this.column.get(move.quantities[i]!);
        if (j === undefined) known = false;
        else at[j] = move.by[i]!;
      }
      if (!known) continue;
      for (let j = 0; j < at.length; j++) at[j]! += truth[j]!;
      if (this.solves(at)) this.valid.push(move);
    }
  }

  /** Whether values (per unknown) satisfy every relation and bound. */
  private solves(values: Float64Array): boolean {
    const { count: R, start, constants } = this.open;
    const { places, lo, hi } = this;
    for (let j = 0; j < values.length; j++) if (values[j]! < lo[j]! - 1e-6 || values[j]! > hi[j]! + 1e-6) return false;
    for (let i = 0; i < R; i++) {
      let sum = 0;
      for (let t = start[i]!; t < start[i + 1]!; t++) sum += places[t]! >= 0 ? values[places[t]!]! : -values[~places[t]!]!;
      if (Math.abs(sum - constants[i]!) > 1e-6) return false;
    }
    return true;
  }

  /** The targets (places in the unknowns) that the true values and a valid move leave `minRange` apart or more. */
  shownOpen(targets: readonly number[]): Set<number> {
    const shown = new Set<number>();
    if (!this.truth || this.valid.length === 0) return shown;
    const lo = Float64Array.from(this.truth);
    const hi = Float64Array.from(this.truth);
    for (const move of this.valid) {
      for (let i = 0; i < move.quantities.length; i++) {
        const j = this.column.get(move.quantities[i]!)!;
        const value = this.truth[j]! + move.by[i]!;
        lo[j] = Math.min(lo[j]!, value);
        hi[j] = Math.max(hi[j]!, value);
      }
    }
    for (const j of targets) if (Math.floor(hi[j]! + 1e-6) - Math.ceil(lo[j]! - 1e-6) >= this.bounds.minRange) shown.add(j);
    return shown;
  }

  /** A solution of this system (its value per unknown's place), kept as a move when the true values are known. */
  found(value: (j: number) => number): void {
    if (!this.truth || this.fresh.length >= MOST_WITNESSES) return;
    const quantities: number[] = [];
    const by: number[] = [];
    for (let j = 0; j < this.unknowns.length; j++) {
      const move = value(j) - this.truth[j]!;
      if (Math.abs(move) > 1e-9) (quantities.push(this.unknowns[j]!), by.push(move));
    }
    if (quantities.length > 0) this.fresh.push({ quantities: Int32Array.from(quantities), by: Float32Array.from(by) });
  }

  /** Keeps this system's new moves and the valid old ones, MOST_WITNESSES at most, for the next audit. */
  keep(): void {
    if (this.bounds.witnesses && this.truth) this.bounds.witnesses.moves = [...this.fresh, ...this.valid].slice(0, MOST_WITNESSES);
  }
}

/** The system linearPins solves: columns with bounds, equality rows (compressed sparse rows), and what stands behind them. */
interface SolverSystem {
  columns: number;
  lower: Float64Array;
  upper: Float64Array;
  rows: number;
  starts: Int32Array;
  indices: Int32Array;
  values: Float64Array;
  constants: Float64Array;
  /** Each unknown's column (by its place in the unknowns given). */
  columnOf: Int32Array;
  /** Unknown j's value in a solution over the columns. */
  valueOf(j: number, columnValues: Float64Array): number;
  /** The origins of the relations that bound column `column` through rows `rows` (those with a dual value other than 0). */
  certificate(column: number, rows: ReadonlySet<number>): number[];
}

/** The relations as they are: a column per unknown, a row per relation. */
function wholeSystem(open: OpenRelations, unknowns: readonly number[], bounds: UnknownBounds): SolverSystem {
  const { count: R, start, terms, constants, origins } = open;
  const column = new Map(unknowns.map((v, j) => [v, j]));
  const indices = new Int32Array(start[R]!);
  const values = new Float64Array(start[R]!);
  for (let t = 0; t < start[R]!; t++) ((indices[t] = column.get(terms[t]! >= 0 ? terms[t]! : ~terms[t]!)!), (values[t] = terms[t]! >= 0 ? 1 : -1));
  return {
    columns: unknowns.length,
    lower: Float64Array.from(unknowns, (v) => bounds.lo(v)),
    upper: Float64Array.from(unknowns, (v) => bounds.hi(v)),
    rows: R,
    starts: start.slice(0, R + 1),
    indices,
    values,
    constants: constants.slice(0, R),
    columnOf: Int32Array.from(unknowns, (_, j) => j),
    valueOf: (j, columnValues) => columnValues[j]!,
    certificate: (_, rows) => [...rows].map((i) => origins[i]!),
  };
}

/**
 * The relations with the unknowns that two-term relations tie taken as one
 * column (x = ±root + offset: a hidden group's count and its one hidden
 * child's, or two hidden groups that make up a known total), the relations
 * rewritten over those columns, and rows that come out the same kept once.
 * A column's bounds are those of all its members, moved onto it. The same
 * system, solved over fewer columns and rows: on campaigns of a few dozen
 * responses (bench:disclosure, BENCH_INSTITUTIONS=10) a sixth of the
 * unknowns and a seventh of the relations. A certificate names, besides the
 * rows' relations (and those of rows that came out the same), every
 * two-term relation of the classes involved.
 */
function mergedSystem(open: OpenRelations, unknowns: readonly number[], bounds: UnknownBounds): SolverSystem {
  const { count: R, start, terms, constants, origins } = open;
  const U = unknowns.length;
  const place = new Map(unknowns.map((v, j) => [v, j]));
  const at = (t: number) => place.get(t >= 0 ? t : ~t)!;
  // x_j = sign[j] · x_parent[j] + offset[j]; a root is its own parent.
  const parent = Int32Array.from({ length: U }, (_, j) => j);
  const sign = new Int8Array(U).fill(1);
  const offset = new Float64Array(U);
  const size = new Int32Array(U).fill(1);
  const path: number[] = [];
  const find = (j: number): number => {
    let root = j;
    while (parent[root] !== root) (path.push(root), (root = parent[root]!));
    for (let k = path.length - 1; k >= 0; k--) {
      const x = path[k]!;
      const up = parent[x]!;
      if (up === root) continue;
      offset[x] = sign[x]! * offset[up]! + offset[x]!;
      sign[x] = sign[x]! * sign[up]!;
      parent[x] = root;
    }
    path.length = 0;
    return root;
  };
  const merged = new Uint8Array(R);
  for (let i = 0; i < R; i++) {
    if (start[i + 1]! - start[i]! !== 2) continue;
    const [ta, tb] = [terms[start[i]!]!, terms[start[i]! + 1]!];
    let [a, b] = [at(ta), at(tb)];
    let [sa, sb] = [ta >= 0 ? 1 : -1, tb >= 0 ? 1 : -1];
    let [ra, rb] = [find(a), find(b)];
    if (ra === rb) continue;
    if (size[ra]! > size[rb]!) [a, b, sa, sb, ra, rb] = [b, a, sb, sa, rb, ra];
    // sa·(σa·ra + oa) + sb·(σb·rb + ob) = c, so ra = ka·(c − sa·oa − sb·ob) − ka·sb·σb·rb with ka = sa·σa = ±1.
    const ka = sa * sign[a]!;
    parent[ra] = rb;
    sign[ra] = -ka * sb * sign[b]!;
    offset[ra] = ka * (constants[i]! - sa * offset[a]! - sb * offset[b]!);
    size[rb]! += size[ra]!;
    merged[i] = 1;
  }
  const columnOf = new Int32Array(U).fill(-1);
  let columns = 0;
  for (let j = 0; j < U; j++) if (find(j) === j) columnOf[j] = columns++;
  for (let j = 0; j < U; j++) if (parent[j] !== j) columnOf[j] = columnOf[parent[j]!]!;
  const lower = new Float64Array(columns).fill(-Infinity);
  const upper = new Float64Array(columns).fill(Infinity);
  for (let j = 0; j < U; j++) {
    const c = columnOf[j]!;
    const [lo, hi] = [bounds.lo(unknowns[j]!), bounds.hi(unknowns[j]!)];
    const [from, to] = sign[j] === 1 ? [lo - offset[j]!, hi - offset[j]!] : [offset[j]! - hi, offset[j]! - lo];
    lower[c] = Math.max(lower[c]!, from);
    upper[c] = Math.min(upper[c]!, to);
  }
  const classOrigins: number[][] = Array.from({ length: columns }, () => []);
  for (let i = 0; i < R; i++) if (merged[i]) classOrigins[columnOf[at(terms[start[i]!]!)]!]!.push(origins[i]!);

  const starts = [0];
  const indices: number[] = [];
  const values: number[] = [];
  const rowConstants: number[] = [];
  const rowOrigins: number[][] = [];
  const known = new Map<string, number>();
  const coefficient = new Float64Array(columns);
  const inRow = new Uint8Array(columns);
  const touched: number[] = [];
  for (let i = 0; i < R; i++) {
    if (merged[i]) continue;
    let constant = constants[i]!;
    for (let t = start[i]!; t < start[i + 1]!; t++) {
      const j = at(terms[t]!);
      const s = terms[t]! >= 0 ? 1 : -1;
      const c = columnOf[j]!;
      if (inRow[c] === 0) (touched.push(c), (inRow[c] = 1));
      coefficient[c]! += s * sign[j]!;
      constant -= s * offset[j]!;
    }
    const row = touched.filter((c) => coefficient[c] !== 0).sort((x, y) => x - y);
    const flip = row.length > 0 && coefficient[row[0]!]! < 0 ? -1 : 1;
    const key = row.map((c) => `${c}:${flip * coefficient[c]!}`).join(' ');
    for (const c of touched) (coefficient[c] = 0), (inRow[c] = 0);
    touched.length = 0;
    // A row left without columns holds of itself (the true values satisfy every relation).
    if (row.length === 0) continue;
    const same = known.get(key);
    if (same !== undefined) {
      rowOrigins[same]!.push(origins[i]!);
      continue;
    }
    known.set(key, rowOrigins.length);
    for (const part of key.split(' ')) {
      const [c, k] = part.split(':');
      indices.push(Number(c));
      values.push(Number(k));
    }
    starts.push(indices.length);
    rowConstants.push(flip * constant);
    rowOrigins.push([origins[i]!]);
  }
  return {
    columns,
    lower,
    upper,
    rows: rowOrigins.length,
    starts: Int32Array.from(starts),
    indices: Int32Array.from(indices),
    values: Float64Array.from(values),
    constants: Float64Array.from(rowConstants),
    columnOf,
    valueOf: (j, columnValues) => sign[j]! * columnValues[columnOf[j]!]! + offset[j]!,
    certificate(column, rows) {
      const chain = new Set<number>(classOrigins[column]);
      for (const i of rows) {
        for (const origin of rowOrigins[i]!) chain.add(origin);
        for (let t = this.starts[i]!; t < this.starts[i + 1]!; t++) for (const origin of classOrigins[this.indices[t]!]!) chain.add(origin);
      }
      return [...chain];
    },
  };
}

/** A well-mixed 32-bit hash of x (murmur3's finaliser): the spread's signs, the same on every run. */
function mixed(x: number): number {
  let h = x | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The relations after Gauss-Jordan elimination, columns in the order given (each a quantity). */
interface Eliminated {
  /** The quantity of each column. */
  columns: readonly number[];
  /** Row i at i × width: the columns' coefficients, the constant, then the weight of each relation in the row. */
  rows: Float64Array;
  width: number;
  rank: number;
  pivotColumn: number[];
  /** The origins of the relations a row combines. */
  combination(row: number): number[];
}

function eliminated(open: OpenRelations, columns: readonly number[]): Eliminated {
  const { count: R, start, terms, constants, origins } = open;
  const U = columns.length;
  const column = new Map(columns.map((v, j) => [v, j]));
  const width = U + 1 + R;
  const rows = new Float64Array(R * width);
  for (let i = 0; i < R; i++) {
    const row = i * width;
    for (let t = start[i]!; t < start[i + 1]!; t++) rows[row + column.get(terms[t]! >= 0 ? terms[t]! : ~terms[t]!)!]! += terms[t]! >= 0 ? 1 : -1;
    rows[row + U] = constants[i]!;
    rows[row + U + 1 + i] = 1;
  }
  const pivotColumn: number[] = [];
  let rank = 0;
  for (let c = 0; c < U && rank < R; c++) {
    let best = -1;
    let largest = EPSILON;
    for (let i = rank; i < R; i++) {
      const a = Math.abs(rows[i * width + c]!);
      if (a > largest) ((largest = a), (best = i));
    }
    if (best < 0) continue;
    if (best !== rank) {
      for (let j = 0; j < width; j++) {
        const x = rows[best * width + j]!;
        rows[best * width + j] = rows[rank * width + j]!;
        rows[rank * width + j] = x;
      }
    }
    const p = rank * width;
    const pivot = rows[p + c]!;
    for (let j = 0; j < width; j++) rows[p + j]! /= pivot;
    for (let i = 0; i < R; i++) {
      if (i === rank) continue;
      const f = rows[i * width + c]!;
      if (Math.abs(f) <= EPSILON) continue;
      for (let j = 0; j < width; j++) rows[i * width + j]! -= f * rows[p + j]!;
      rows[i * width + c] = 0;
    }
    pivotColumn.push(c);
    rank += 1;
  }
  const combination = (i: number): number[] => {
    const chain: number[] = [];
    for (let r = 0; r < R; r++) if (Math.abs(rows[i * width + U + 1 + r]!) > EPSILON) chain.push(origins[r]!);
    return chain;
  };
  return { columns, rows, width, rank, pivotColumn, combination };
}

/** Rounds of narrowing over the eliminated rows at most: each one runs only when the last narrowed a bound. */
const BOUND_ROUNDS = 16;

/**
 * Interval propagation over the eliminated rows (each a combination of
 * relations, which the audit's propagation, one relation at a time, never
 * looks at as one), from the bounds the audit found: a hidden group of a
 * random table is often pinned only by its lower bound (a listed group has
 * at least one response) in such a combination. Adds each unknown
 * (`unknowns`, ascending) whose range comes out narrower than `minRange`,
 * with the relations of the rows that narrowed it and, through them, of the
 * rows that narrowed the bounds those rows read.
 */
function boundsOverRows(bases: readonly Eliminated[], unknowns: readonly number[], bounds: UnknownBounds, pins: Map<number, number[]>): void {
  const U = unknowns.length;
  const index = new Map(unknowns.map((v, j) => [v, j]));
  const lo = Float64Array.from(unknowns, (v) => bounds.lo(v));
  const hi = Float64Array.from(unknowns, (v) => bounds.hi(v));
  // What last narrowed each bound: a basis and a row, as basis × rows + row (-1: the audit's own bounds).
  const most = Math.max(...bases.map((basis) => basis.rank), 1);
  const whyLo = new Int32Array(U).fill(-1);
  const whyHi = new Int32Array(U).fill(-1);
  // Each row's unknowns (by their place in `unknowns`) and coefficients.
  const rowsOf = bases.map((basis) =>
    Array.from({ length: basis.rank }, (_, i) => {
      const at: number[] = [];
      const coefficient: number[] = [];
      for (let j = 0; j < basis.columns.length; j++) {
        const a = basis.rows[i * basis.width + j]!;
        if (Math.abs(a) > EPSILON) (at.push(index.get(basis.columns[j]!)!), coefficient.push(a));
      }
      return { at, coefficient, constant: basis.rows[i * basis.width + basis.columns.length]! };
    }),
  );
  for (let round = 0, moved = true; round < BOUND_ROUNDS && moved; round++) {
    moved = false;
    rowsOf.forEach((rows, b) =>
      rows.forEach(({ at, coefficient, constant }, i) => {
        // Σ a·x = constant: the sum's least and greatest values, the infinite parts counted apart.
        let least = 0;
        let greatest = 0;
        let leastInfinite = 0;
        let greatestInfinite = 0;
        const low = (t: number) => (coefficient[t]! > 0 ? coefficient[t]! * lo[at[t]!]! : coefficient[t]! * hi[at[t]!]!);
        const high = (t: number) => (coefficient[t]! > 0 ? coefficient[t]! * hi[at[t]!]! : coefficient[t]! * lo[at[t]!]!);
        for (let t = 0; t < at.length; t++) {
          const [l, h] = [low(t), high(t)];
          if (l === -Infinity) leastInfinite += 1;
          else least += l;
          if (h === Infinity) greatestInfinite += 1;
          else greatest += h;
        }
        for (let t = 0; t < at.length; t++) {
          const [l, h] = [low(t), high(t)];
          const othersLeast = leastInfinite > (l === -Infinity ? 1 : 0) ? -Infinity : least - (l === -Infinity ? 0 : l);
          const othersGreatest = greatestInfinite > (h === Infinity ? 1 : 0) ? Infinity : greatest - (h === Infinity ? 0 : h);
          // a·x = constant − others, x a whole number.
          const one = (constant - othersGreatest) / coefficient[t]!;
          const other = (constant - othersLeast) / coefficient[t]!;
          const from = Math.ceil(Math.min(one, other) - 1e-6);
          const to = Math.floor(Math.max(one, other) + 1e-6);
          const j = at[t]!;
          if (from > lo[j]!) ((lo[j] = from), (whyLo[j] = b * most + i), (moved = true));
          if (to < hi[j]!) ((hi[j] = to), (whyHi[j] = b * most + i), (moved = true));
        }
      }),
    );
  }
  for (let j = 0; j < U; j++) {
    const v = unknowns[j]!;
    if (pins.has(v) || !(hi[j]! - lo[j]! < bounds.minRange - 1e-9)) continue;
    const chain = new Set<number>();
    const seen = new Set<number>([j]);
    const stack = [j];
    while (stack.length > 0) {
      const x = stack.pop()!;
      for (const why of [whyLo[x]!, whyHi[x]!]) {
        if (why < 0) continue;
        const b = Math.floor(why / most);
        const i = why % most;
        for (const r of bases[b]!.combination(i)) chain.add(r);
        for (const y of rowsOf[b]![i]!.at) if (!seen.has(y)) (seen.add(y), stack.push(y));
      }
    }
    pins.set(v, [...chain]);
  }
}

function pinsWith(open: OpenRelations, classes: Classes): Map<number, number[]> {
  const pins = new Map<number, number[]>();
  const { count, start, terms, constants, origins } = open;
  // Relations between two unknowns of opposite signs: x − y = c. Their quantities are the only ones in classes of two or
  // more, and only a relation that holds one of those (or, later, a quantity whose value is found) can be rewritten into
  // anything new: two relations without one share at most one quantity (two lines of a lattice share at most one cell).
  const identity = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    if (start[i + 1]! - start[i]! !== 2) continue;
    const a = terms[start[i]!]!;
    const b = terms[start[i]! + 1]!;
    if (a >= 0 === b >= 0) continue;
    const [x, y] = a >= 0 ? [a, ~b] : [b, ~a];
    identity[i] = 1;
    classes.union(x, y, constants[i]!);
  }

  // Per root whose value is found: the value, and the relations that found it (one, or two subtracted).
  let fixedCount = 0;
  const foundBy = new Map<number, number[]>();
  const done = new Uint8Array(count);
  const forms = FormList.shared();
  for (let round = 0; round < MOST_ROUNDS; round++) {
    let found = 0;
    forms.clear();
    for (let i = 0; i < count; i++) {
      if (identity[i] || done[i]) continue;
      let touches = false;
      for (let t = start[i]!; t < start[i + 1]! && !touches; t++) touches = classes.marked(terms[t]! >= 0 ? terms[t]! : ~terms[t]!);
      if (!touches) continue;
      const f = forms.add(i, open, classes);
      const size = forms.size(f);
      if (size >= 2) continue;
      forms.drop(f);
      done[i] = 1;
      if (size === 0) continue;
      const root = forms.root(f, 0);
      const value = forms.constant[f]! / forms.coefficient(f, 0);
      if (Number.isInteger(value) && !classes.isFixed(root)) (classes.fix(root, value), foundBy.set(root, [i]), (fixedCount += 1), (found += 1));
    }
    forms.index();
    // A relation b whose classes are a's and one more: b − g·a fixes that one.
    for (let b = 0; b < forms.count; b++) {
      const size = forms.size(b);
      if (size < 3) continue;
      for (let j = 0; j < size; j++) {
        const root = forms.root(b, j);
        if (classes.isFixed(root)) continue;
        // Forms are hashed with their first coefficient made positive: so is b without term j, by its first one's sign f.
        const f = forms.coefficient(b, j === 0 ? 1 : 0) > 0 ? 1 : -1;
        const rest = (Math.imul(forms.sign[b]!, forms.hash[b]!) - Math.imul(rootHash(root), forms.coefficient(b, j))) | 0;
        for (let a = forms.first(Math.imul(f, rest) | 0); a >= 0; a = forms.next[a]!) {
          const g = forms.restFactor(a, b, j);
          if (g === 0) continue;
          // a = g × (b without j), so b − g·a leaves term j alone.
          const value = (forms.constant[b]! - g * forms.constant[a]!) / forms.coefficient(b, j);
          if (!Number.isInteger(value)) continue;
          classes.fix(root, value);
          foundBy.set(root, [forms.relation[b]!, forms.relation[a]!]);
          fixedCount += 1;
          found += 1;
          break;
        }
      }
    }
    if (found === 0) break;
  }
  if (fixedCount === 0) return pins;

  const chains = new Map<number, number[]>();
  const chainOf = (root: number): number[] => {
    let chain = chains.get(root);
    if (chain) return chain;
    // The relations that fixed it, the relations that fixed any class they read as known, and the merges of every class met.
    const relations = new Set<number>();
    const roots = new Set<number>([root]);
    const stack = [root];
    while (stack.length > 0) {
      for (const i of foundBy.get(stack.pop()!) ?? []) {
        if (relations.has(i)) continue;
        relations.add(i);
        for (let t = start[i]!; t < start[i + 1]!; t++) {
          const v = terms[t]! >= 0 ? terms[t]! : ~terms[t]!;
          const r = classes.find(v);
          if (!roots.has(r)) (roots.add(r), stack.push(r));
        }
      }
    }
    for (let i = 0; i < count; i++) if (identity[i] && roots.has(classes.find(terms[start[i]!]! >= 0 ? terms[start[i]!]! : ~terms[start[i]!]!))) relations.add(i);
    chain = [...relations].map((i) => origins[i]!);
    chains.set(root, chain);
    return chain;
  };
  for (let t = 0; t < start[count]!; t++) {
    const v = terms[t]! >= 0 ? terms[t]! : ~terms[t]!;
    if (pins.has(v)) continue;
    const root = classes.find(v);
    if (classes.isFixed(root)) pins.set(v, chainOf(root));
  }
  return pins;
}

/**
 * The relations rewritten over classes in one round (forms), in the order
 * they were made: each one's roots ascending with their coefficients (equal
 * roots added up, zeros dropped) and its constant; `sign` makes the first
 * coefficient positive, and `hash` is of the terms times it. Kept in flat
 * arrays, shared by every audit (one runs at a time), with a hash table from
 * a form's hash to its forms in order: thousands of forms a call, where an
 * object and two arrays each, and a Map of lists, were most of its time.
 */
class FormList {
  private static kept: FormList | undefined;
  count = 0;
  relation: Int32Array = new Int32Array(1024);
  constant = new Float64Array(1024);
  sign = new Int8Array(1024);
  hash: Int32Array = new Int32Array(1024);
  /** The next form with the same hash (-1: none), once indexed. */
  next: Int32Array = new Int32Array(1024);
  private start: Int32Array = new Int32Array(1025);
  private roots: Int32Array = new Int32Array(4096);
  private coefficients: Int32Array = new Int32Array(4096);
  /** Open addressing: a slot's hash, its first and last form (first −1: empty). */
  private slotHash = new Int32Array(0);
  private slotFirst = new Int32Array(0);
  private slotLast = new Int32Array(0);
  private mask = 0;

  static shared(): FormList {
    return (FormList.kept ??= new FormList());
  }

  clear(): void {
    this.count = 0;
    this.start[0] = 0;
  }

  size(f: number): number {
    return this.start[f + 1]! - this.start[f]!;
  }

  root(f: number, j: number): number {
    return this.roots[this.start[f]! + j]!;
  }

  coefficient(f: number, j: number): number {
    return this.coefficients[this.start[f]! + j]!;
  }

  /** Takes back the last form added. */
  drop(f: number): void {
    this.count = f;
  }

  /** Relation i of `open` over the classes, the values found moved to its constant: its form's number. */
  add(i: number, open: OpenRelations, classes: Classes): number {
    const { start, terms } = open;
    const f = this.count;
    const from = this.start[f]!;
    this.reserve(f, from + start[i + 1]! - start[i]!);
    const roots = this.roots;
    const coefficients = this.coefficients;
    let constant = open.constants[i]!;
    let to = from;
    for (let t = start[i]!; t < start[i + 1]!; t++) {
      const sign = terms[t]! >= 0 ? 1 : -1;
      const v = sign > 0 ? terms[t]! : ~terms[t]!;
      const root = classes.find(v);
      constant -= sign * classes.lastOffset;
      if (classes.isFixed(root)) {
        constant -= sign * classes.valueOf(root);
        continue;
      }
      // Few terms: insertion by root, an equal root added to.
      let at = to;
      while (at > from && roots[at - 1]! > root) at -= 1;
      if (at > from && roots[at - 1] === root) {
        coefficients[at - 1]! += sign;
        continue;
      }
      for (let k = to; k > at; k--) ((roots[k] = roots[k - 1]!), (coefficients[k] = coefficients[k - 1]!));
      roots[at] = root;
      coefficients[at] = sign;
      to += 1;
    }
    let kept = from;
    for (let k = from; k < to; k++) {
      if (coefficients[k] === 0) continue;
      roots[kept] = roots[k]!;
      coefficients[kept] = coefficients[k]!;
      kept += 1;
    }
    const sign = kept > from && coefficients[from]! < 0 ? -1 : 1;
    let hash = 0;
    for (let k = from; k < kept; k++) hash = (hash + Math.imul(rootHash(roots[k]!), coefficients[k]! * sign)) | 0;
    this.relation[f] = i;
    this.constant[f] = constant;
    this.sign[f] = sign;
    this.hash[f] = hash;
    this.start[f + 1] = kept;
    this.count = f + 1;
    return f;
  }

  /** Builds the table from hashes to forms (of two roots or more, every form kept here). */
  index(): void {
    let capacity = 16;
    while (capacity < 2 * this.count) capacity *= 2;
    if (this.slotFirst.length < capacity) {
      this.slotHash = new Int32Array(capacity);
      this.slotFirst = new Int32Array(capacity);
      this.slotLast = new Int32Array(capacity);
    }
    this.mask = capacity - 1;
    this.slotFirst.fill(-1, 0, capacity);
    for (let f = 0; f < this.count; f++) {
      const slot = this.slotOf(this.hash[f]!);
      this.next[f] = -1;
      if (this.slotFirst[slot]! < 0) ((this.slotHash[slot] = this.hash[f]!), (this.slotFirst[slot] = f));
      else this.next[this.slotLast[slot]!] = f;
      this.slotLast[slot] = f;
    }
  }

  /** The first form with this hash, −1 when none. */
  first(hash: number): number {
    return this.slotFirst[this.slotOf(hash)]!;
  }

  /** g (±1) when form a's terms are g × form b's without term j, else 0. */
  restFactor(a: number, b: number, j: number): number {
    const size = this.size(b);
    if (this.size(a) !== size - 1) return 0;
    const g = this.coefficient(a, 0) / this.coefficient(b, j === 0 ? 1 : 0);
    if (g !== 1 && g !== -1) return 0;
    for (let k = 0, m = 0; k < size; k++) {
      if (k === j) continue;
      if (this.root(a, m) !== this.root(b, k) || this.coefficient(a, m) !== g * this.coefficient(b, k)) return 0;
      m += 1;
    }
    return g;
  }

  /** The slot holding this hash, or the empty one where it would go. */
  private slotOf(hash: number): number {
    let slot = Math.imul(hash, 0x9e3779b1) >>> 0;
    for (slot &= this.mask; this.slotFirst[slot]! >= 0 && this.slotHash[slot] !== hash; slot = (slot + 1) & this.mask);
    return slot;
  }

  /** Room for form f and its terms up to `end`. */
  private reserve(f: number, end: number): void {
    if (f + 2 > this.relation.length) {
      const size = 2 * (f + 2);
      this.relation = grown(this.relation, size);
      this.next = grown(this.next, size);
      this.hash = grown(this.hash, size);
      this.start = grown(this.start, size + 1);
      const constant = new Float64Array(size);
      constant.set(this.constant);
      this.constant = constant;
      const sign = new Int8Array(size);
      sign.set(this.sign);
      this.sign = sign;
    }
    if (end > this.roots.length) {
      this.roots = grown(this.roots, end);
      this.coefficients = grown(this.coefficients, end);
    }
  }
}

function rootHash(root: number): number {
  let h = Math.imul(root + 1, 0x9e3779b1);
  h ^= h >>> 15;
  return Math.imul(h, 0x85ebca6b) | 1;
}

/**
 * Union-find with offsets over quantities numbered below a bound: every
 * quantity is its class's root plus an offset; quantities in a class of two
 * or more, or whose class's value is found, are marked. One set of arrays
 * serves every audit (an audit runs to its end before the next starts):
 * release() clears what this one set, whatever happened.
 */
class Classes {
  private static shared: { parent: Int32Array; offset: Float64Array; marks: Uint8Array; values: Float64Array } | undefined;
  /** The offset of the quantity the last find was for. */
  lastOffset = 0;
  private readonly set: number[] = [];

  private constructor(
    private readonly parent: Int32Array,
    private readonly offset: Float64Array,
    private readonly marks: Uint8Array,
    private readonly values: Float64Array,
  ) {}

  static over(quantities: number): Classes {
    let arrays = Classes.shared;
    if (!arrays || arrays.parent.length < quantities) {
      const size = Math.max(quantities, 2 * (arrays?.parent.length ?? 0));
      arrays = Classes.shared = { parent: new Int32Array(size).fill(-1), offset: new Float64Array(size), marks: new Uint8Array(size), values: new Float64Array(size) };
    }
    return new Classes(arrays.parent, arrays.offset, arrays.marks, arrays.values);
  }

  /** Quantity v's root; its offset in lastOffset. */
  find(v: number): number {
    let root = v;
    let offset = 0;
    while (this.parent[root]! >= 0) ((offset += this.offset[root]!), (root = this.parent[root]!));
    // Path compression: each quantity on the way points at the root, with its whole offset.
    for (let at = v, left = offset; at !== root; ) {
      const next = this.parent[at]!;
      const step = this.offset[at]!;
      this.parent[at] = root;
      this.offset[at] = left;
      left -= step;
      at = next;
    }
    this.lastOffset = offset;
    return root;
  }

  /** x = y + c: their classes become one. */
  union(x: number, y: number, c: number): void {
    this.mark(x);
    this.mark(y);
    const rx = this.find(x);
    const ox = this.lastOffset;
    const ry = this.find(y);
    const oy = this.lastOffset;
    if (rx === ry) return;
    // rx + ox = ry + oy + c.
    this.parent[rx] = ry;
    this.offset[rx] = oy + c - ox;
    this.set.push(rx);
  }

  mark(v: number): void {
    if (this.marks[v]) return;
    this.marks[v] = 1;
    this.set.push(v);
  }

  marked(v: number): boolean {
    return this.marks[v] !== 0;
  }

  /** Root r's value is found (it is marked too). */
  fix(r: number, value: number): void {
    this.mark(r);
    this.marks[r] = 2;
    this.values[r] = value;
  }

  isFixed(r: number): boolean {
    return this.marks[r] === 2;
  }

  /** A fixed root's value. */
  valueOf(r: number): number {
    return this.values[r]!;
  }

  /** Clears every quantity this one set (only those with a parent have one: path compression changes only them). */
  release(): void {
    for (const v of this.set) ((this.parent[v] = -1), (this.offset[v] = 0), (this.marks[v] = 0), (this.values[v] = 0));
    this.set.length = 0;
  }
}
