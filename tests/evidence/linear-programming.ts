import type { Highs } from 'highs';
import type { WeightedRow } from './auditor.ts';

/**
 * The bounds an outsider with a linear-programming solver derives: each
 * target variable minimised and maximised over every constraint of the
 * system at once (the continuous relaxation, solved by HiGHS), then rounded
 * inwards where the variable is a whole number. Interval propagation narrows
 * one constraint at a time and can stop short of these; the published tables
 * protect a cell only if these bounds, too, leave it open.
 *
 * Narrows `lo` and `hi` in place. Variables already fixed (lo = hi) are moved
 * into the rows' bounds, so that the solver sees only the unknowns. A target
 * that two solutions found on the way already set `openWidth` or more apart
 * keeps its bounds unsolved: the solver's could only be wider, and an audit
 * that asks whether a range is narrower than that learns nothing more.
 */
export function narrowByLinearProgramming(
  highs: Highs,
  lo: Float64Array,
  hi: Float64Array,
  equalities: readonly number[][],
  atMost: ReadonlyArray<readonly [number, number]>,
  weighted: readonly WeightedRow[],
  targets: readonly number[],
  whole: (v: number) => boolean,
  openWidth = Infinity,
): void {
  const open = (v: number) => hi[v]! - lo[v]! > 1e-9;
  const pending = targets.filter(open);
  if (pending.length === 0) return;
  const rows = [
    ...equalities.map((eq) => ({ vars: eq, coefficients: eq.map((_, i) => (i === 0 ? 1 : -1)), min: 0, max: 0 })),
    ...atMost.map(([a, b]) => ({ vars: [a, b], coefficients: [1, -1], min: -Infinity, max: 0 })),
    ...weighted,
  ];
  // Only the unknowns become columns; a fixed variable's term moves into its row's bounds.
  const column = new Map<number, number>();
  const variables: number[] = [];
  const starts = [0];
  const indices: number[] = [];
  const values: number[] = [];
  const rowLower: number[] = [];
  const rowUpper: number[] = [];
  for (const row of rows) {
    let constant = 0;
    const terms = new Map<number, number>();
    row.vars.forEach((v, i) => {
      const a = row.coefficients[i]!;
      if (!open(v)) constant += a * lo[v]!;
      else terms.set(v, (terms.get(v) ?? 0) + a);
    });
    if (terms.size === 0) continue;
    for (const [v, a] of terms) {
      if (!column.has(v)) (column.set(v, variables.length), variables.push(v));
      indices.push(column.get(v)!);
      values.push(a);
    }
    starts.push(indices.length);
    rowLower.push(row.min - constant);
    rowUpper.push(row.max - constant);
  }
  const infinity = highs.infinity;
  const finite = (x: number) => (x === Infinity ? infinity : x === -Infinity ? -infinity : x);
  highs.withModel((model) => {
    // Primal simplex without presolve: after a change of costs the last basis still fits every constraint, so each solve starts from it.
    model.options.set({ output_flag: false, presolve: 'off', solver: 'simplex', simplex_strategy: 4 });
    model.passModel({
      numCols: variables.length,
      numRows: rowLower.length,
      colCost: new Float64Array(variables.length),
      colLower: Float64Array.from(variables, (v) => lo[v]!),
      colUpper: Float64Array.from(variables, (v) => finite(hi[v]!)),
      rowLower: Float64Array.from(rowLower, finite),
      rowUpper: Float64Array.from(rowUpper, finite),
      matrix: { format: 'csr', numRows: rowLower.length, numCols: variables.length, starts: Int32Array.from(starts), indices: Int32Array.from(indices), values: Float64Array.from(values) },
    });
    const { optimal, infeasible } = highs.constants.modelStatus;
    // The values each column took in the solutions found so far: every one a point that fits all constraints.
    const seenLo = new Float64Array(variables.length).fill(Infinity);
    const seenHi = new Float64Array(variables.length).fill(-Infinity);
    // The least value of the objective, or null where it is unbounded. (Maximising is minimising the negated costs: the solver starts from the last basis.)
    const least = (): number | null => {
      model.run();
      const status = model.getModelStatus();
      if (status === infeasible) throw new Error('no value fits the published tables (linear programming)');
      if (status !== optimal) return null;
      const { colValue } = model.getSolution();
      for (let c = 0; c < colValue.length; c++) ((seenLo[c] = Math.min(seenLo[c]!, colValue[c]!)), (seenHi[c] = Math.max(seenHi[c]!, colValue[c]!)));
      return model.getObjectiveValue();
    };
    const columns = pending.map((v) => column.get(v)).filter((c): c is number => c !== undefined).sort((a, b) => a - b);
    if (columns.length === 0) return;
    // Two far-apart points first (all targets as low, then as high, as they go), which leave most targets visibly open.
    model.changeColsCost({ kind: 'set', indices: Int32Array.from(columns) }, new Float64Array(columns.length).fill(1));
    least();
    model.changeColsCost({ kind: 'set', indices: Int32Array.from(columns) }, new Float64Array(columns.length).fill(-1));
    least();
    model.changeColsCost({ kind: 'set', indices: Int32Array.from(columns) }, new Float64Array(columns.length));
    for (const v of pending) {
      const col = column.get(v);
      // A target in no row keeps the bounds it has.
      if (col === undefined) continue;
      const round = whole(v);
      // Two solutions already apart by `openWidth` (whole values between them, for a whole number): the solver's bounds are at least as far apart.
      const apart = round ? Math.floor(seenHi[col]! + 1e-6) - Math.ceil(seenLo[col]! - 1e-6) : seenHi[col]! - seenLo[col]!;
      if (apart >= openWidth) continue;
      model.changeColCost(col, 1);
      const lowest = least();
      model.changeColCost(col, -1);
      const negatedHighest = least();
      const most = negatedHighest === null ? null : -negatedHighest;
      model.changeColCost(col, 0);
      if (lowest !== null) lo[v] = Math.max(lo[v]!, round ? Math.ceil(lowest - 1e-6) : lowest);
      if (most !== null) hi[v] = Math.min(hi[v]!, round ? Math.floor(most + 1e-6) : most);
    }
  });
}
