/**
 * Suppression of single answer counts inside published cells (issue 10).
 *
 * A question's distribution is a (cell × answer category) table whose
 * margins are published twice over: along the lattice's lines (the groups'
 * counts of one category add up to the coarser cell's count) and inside a
 * published cell (its answer counts add up to its valid answers, or, in a
 * grid, a row's counts to those who answered that row, which the row's shares
 * give away). Primary and secondary suppression of the cell (disclosure.ts)
 * hide a small group's whole distribution, but its category counts could
 * still be recomputed as a total minus the published counts of the line.
 *
 * So, per question and category, the same line rule as for cells, on the
 * counts: a count of 0 never protects (zeros are what an outsider derives
 * first), and whenever a line has exactly one hidden count that is not 0
 * (its total included), one more count of that category is hidden: the
 * smallest published one of the line that does not force its whole cell,
 * else the total's. Inside a published cell the same again over its sums:
 * when exactly one of a sum's non-zero counts is hidden, its smallest other
 * non-zero count is hidden too. Only when a sum has no other non-zero count
 * (the hidden count is the whole sum) is the cell hidden whole: the caller
 * then decides the cell's unit again with that cell hidden and asks again.
 * Repeated until nothing changes, so the outcome does not depend on which
 * view asks.
 *
 * "Don't know" counts are not handled here: for a single answer they are
 * the respondents minus the valid answers, both published sizes.
 */

import { hiddenCells, type Figure, type Line } from './disclosure.ts';

/** The lattice's lines as index arrays (cells are numbered; see evidence-decision.ts). */
export interface LineIndex {
  lineTotal: Int32Array;
  lineStart: Int32Array;
  lineMembers: Int32Array;
  /** Per cell, the lines it is a member of and those it is the total of (compressed rows). */
  memberOfStart: Int32Array;
  memberOf: Int32Array;
  totalOfStart: Int32Array;
  totalOf: Int32Array;
  /** Position of each cell's id in code-unit order (the tie rule). */
  rank: Int32Array;
}

/** One question's answer counts per cell: categories in one fixed order, each with the within-cell sum it belongs to. */
export interface AnswerCounts {
  counts: readonly Int32Array[];
  /** Per category, its sum inside a cell (a grid row; else one sum of every valid answer). */
  sumOf: readonly number[];
  /**
   * Splits of the categories by the figures computed from them (an
   * indicator's share counts some answers, not others): per split, each
   * category's side. A figure gives nothing away about hidden counts that
   * all lie on one side of its split, so a second count is hidden on the
   * same side as the first where one is.
   */
  sides?: readonly Int32Array[];
}

export interface CountDecision {
  /** Per category, 1 where its count is hidden in a published cell (a hidden cell hides every count anyway). */
  hidden: Uint8Array[];
  /** Published cells whose only non-zero count of a sum would have to be hidden: they must be hidden whole. */
  wholeCells: number[];
}

/**
 * The counts to hide in the published cells of one question, given its
 * unit's hidden cells (`cellHidden`). See the module comment.
 */
export function hiddenCounts(lattice: LineIndex, cellHidden: Uint8Array, answers: AnswerCounts): CountDecision {
  const { lineTotal, lineStart, lineMembers, memberOfStart, memberOf, totalOfStart, totalOf, rank } = lattice;
  const { counts, sumOf } = answers;
  const K = counts.length;
  const n = cellHidden.length;
  const L = lineTotal.length;
  const sums = Math.max(0, ...sumOf.map((s) => s + 1));
  const sumMembers: number[][] = Array.from({ length: sums }, () => []);
  sumOf.forEach((s, k) => sumMembers[s]!.push(k));
  const hidden = counts.map(() => new Uint8Array(n));
  const isHidden = (k: number, c: number) => cellHidden[c] === 1 || hidden[k]![c] === 1;
  const whole = new Set<number>();

  // Constraints: (category, line) at k × L + l, then (cell, sum) at K × L + c × sums + s; each queued at most once at a time.
  const lineConstraints = K * L;
  const queued = new Uint8Array(lineConstraints + n * sums);
  const queue: number[] = [];
  let head = 0;
  const push = (at: number) => {
    if (queued[at]) return;
    queued[at] = 1;
    queue.push(at);
  };
  const touch = (k: number, c: number) => {
    for (let i = memberOfStart[c]!; i < memberOfStart[c + 1]!; i++) push(k * L + memberOf[i]!);
    for (let i = totalOfStart[c]!; i < totalOfStart[c + 1]!; i++) push(k * L + totalOf[i]!);
  };
  for (let c = 0; c < n; c++) if (cellHidden[c]) for (let k = 0; k < K; k++) if (counts[k]![c]! > 0) touch(k, c);

  /** Whether hiding category k's count in cell c leaves its sum with no other non-zero count to hide beside it. */
  const forcesWhole = (k: number, c: number) => {
    for (const other of sumMembers[sumOf[k]!]!) if (other !== k && counts[other]![c]! > 0) return false;
    return true;
  };
  const hide = (k: number, c: number) => {
    hidden[k]![c] = 1;
    touch(k, c);
    push(lineConstraints + c * sums + sumOf[k]!);
  };

  while (head < queue.length) {
    const at = queue[head++]!;
    queued[at] = 0;
    if (at < lineConstraints) {
      const k = Math.floor(at / L);
      const l = at % L;
      const count = counts[k]!;
      let nonZero = 0;
      let unknowns = 0;
      for (let i = lineStart[l]!; i < lineStart[l + 1]!; i++) {
        const m = lineMembers[i]!;
        if (count[m]! <= 0) continue;
        nonZero += 1;
        if (isHidden(k, m)) unknowns += 1;
      }
      if (nonZero === 0) continue;
      const total = lineTotal[l]!;
      if (isHidden(k, total)) unknowns += 1;
      if (unknowns !== 1) continue;
      // The smallest published member whose cell can lose this count alone, then the total, then a member whose cell must go whole.
      let best = -1;
      let bestWhole = true;
      for (let i = lineStart[l]!; i < lineStart[l + 1]!; i++) {
        const m = lineMembers[i]!;
        if (count[m]! <= 0 || isHidden(k, m)) continue;
        const mWhole = forcesWhole(k, m);
        if (best < 0 || (bestWhole && !mWhole) || (bestWhole === mWhole && (count[m]! < count[best]! || (count[m] === count[best] && rank[m]! < rank[best]!)))) {
          best = m;
          bestWhole = mWhole;
        }
      }
      if (!isHidden(k, total) && (best < 0 || (bestWhole && !forcesWhole(k, total)))) best = total;
      hide(k, best);
    } else {
      const c = Math.floor((at - lineConstraints) / sums);
      const s = (at - lineConstraints) % sums;
      if (cellHidden[c]) continue;
      let unknowns = 0;
      let first = -1;
      for (const k of sumMembers[s]!) {
        if (counts[k]![c]! > 0 && hidden[k]![c]) ((unknowns += 1), (first = k));
      }
      if (unknowns !== 1) continue;
      // The other non-zero count on the same side of the most splits as the hidden one, then the smallest.
      const straddles = (k: number) => (answers.sides ?? []).reduce((t, side) => t + (side[k] === side[first] ? 0 : 1), 0);
      let best = -1;
      let bestStraddles = 0;
      for (const k of sumMembers[s]!) {
        const value = counts[k]![c]!;
        if (value <= 0 || hidden[k]![c]) continue;
        const kStraddles = straddles(k);
        if (best < 0 || kStraddles < bestStraddles || (kStraddles === bestStraddles && value < counts[best]![c]!)) ((best = k), (bestStraddles = kStraddles));
      }
      if (best < 0) whole.add(c);
      else hide(best, c);
    }
  }
  return { hidden, wholeCells: [...whole].sort((a, b) => a - b) };
}

/**
 * One unit's decision over a lattice given by cell ids (the reference
 * engine's): its hidden cells (hiddenCells), then its questions' hidden
 * answer counts; a cell whose counts cannot be protected otherwise is hidden
 * whole, and both steps are taken again.
 */
export function unitDecision(ids: readonly string[], lines: readonly Line[], index: LineIndex, figures: readonly Figure[], questions: readonly AnswerCounts[]): { hidden: Set<string>; counts: CountDecision[] } {
  const whole = new Set<string>();
  for (;;) {
    const hidden = hiddenCells(ids, lines, figures, { whole });
    const isHidden = Uint8Array.from(ids, (id) => (hidden.has(id) ? 1 : 0));
    const counts = questions.map((q) => hiddenCounts(index, isHidden, q));
    const more = counts.flatMap((d) => d.wholeCells.map((c) => ids[c]!)).filter((id) => !whole.has(id));
    if (more.length === 0) return { hidden, counts };
    for (const id of more) whole.add(id);
  }
}

/** Lines given by cell ids (the reference engine's lattice) as index arrays, cells numbered in the order given. */
export function indexLines(ids: readonly string[], lines: ReadonlyArray<{ total: string; members: readonly string[] }>): LineIndex {
  const index = new Map(ids.map((id, i) => [id, i]));
  const totals: number[] = [];
  const starts: number[] = [];
  const members: number[] = [];
  for (const line of lines) {
    totals.push(index.get(line.total)!);
    starts.push(members.length);
    for (const m of line.members) members.push(index.get(m)!);
  }
  starts.push(members.length);
  const lineTotal = Int32Array.from(totals);
  const lineStart = Int32Array.from(starts);
  const lineMembers = Int32Array.from(members);
  const memberOf = linesByCell(ids.length, lineTotal.length, (l, visit) => {
    for (let k = lineStart[l]!; k < lineStart[l + 1]!; k++) visit(lineMembers[k]!);
  });
  const totalOf = linesByCell(ids.length, lineTotal.length, (l, visit) => visit(lineTotal[l]!));
  const order = ids.map((_, i) => i).sort((a, b) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0));
  const rank = new Int32Array(ids.length);
  order.forEach((cell, position) => (rank[cell] = position));
  return { lineTotal, lineStart, lineMembers, memberOfStart: memberOf.start, memberOf: memberOf.lines, totalOfStart: totalOf.start, totalOf: totalOf.lines, rank };
}

/** Inverts line → cells into cell → lines (compressed rows, lines in ascending order). */
export function linesByCell(cellCount: number, lineCount: number, cellsOf: (line: number, visit: (cell: number) => void) => void): { start: Int32Array; lines: Int32Array } {
  const start = new Int32Array(cellCount + 1);
  for (let l = 0; l < lineCount; l++) cellsOf(l, (c) => (start[c + 1]! += 1));
  for (let c = 0; c < cellCount; c++) start[c + 1]! += start[c]!;
  const lines = new Int32Array(start[cellCount]!);
  const next = start.slice(0, cellCount);
  for (let l = 0; l < lineCount; l++) cellsOf(l, (c) => (lines[next[c]!++] = l));
  return { start, lines };
}
