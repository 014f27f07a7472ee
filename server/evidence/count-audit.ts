/**
 * The outsider's audit of one question's count decision (issue 10).
 *
 * The line rule of count-suppression.ts looks at one line at a time: each
 * line has no hidden non-zero count or at least two. On a sparse lattice
 * that is not enough. Most finer groups are empty, and an outsider knows
 * which (an empty group is not listed), so many lines hold a single
 * non-zero member and say only that it equals their total; such equalities
 * chain a hidden count to another, and the chain, with a cell's counts
 * adding up to its valid answers, ends at published figures that fix it.
 * Seen on random campaigns of 30 responses over seven dimensions: hundreds
 * of hidden counts pinned, each line keeping two unknowns.
 *
 * So after the rule has run, the decision is audited as an outsider would:
 * every count, every within-cell sum (valid answers, a grid row), and, when
 * given, the respondents and "don't know" answers of every cell are
 * quantities; published ones are known, those of empty cells are 0, the
 * rest lie between 0 and no bound, or between 1 and no bound where the views
 * list the cell even when it is hidden (a group's number of responses:
 * AnswerCounts.listed). Every line (per quantity) and every
 * cell's sums are equalities, no count and no "don't know" exceeds the
 * respondents, and a single answer's respondents are its valid answers plus
 * "don't know". A single answer's or a number's "don't know" can be a
 * category of its own (AnswerCounts.openSum; a number's valid answers are
 * then its one other category): its count is then the cell's "don't
 * know", and where a published cell hides it, its respondents are hidden too (the
 * valid answers stay published); a published "don't know" or respondents
 * on a pinned count's chain is broken by hiding that cell's "don't know".
 * Bounds are narrowed over them until nothing moves (interval
 * propagation over a work list, as tests/evidence/auditor.ts does from the
 * published tables). A hidden count that is not 0 and whose bounds close to
 * less than the protection width (AnswerCounts.minRange, 1 by default: one
 * value) is pinned. For each pinned count the audit follows the
 * relations that set its bounds back to published counts, and names the
 * smallest one that its cell can lose alone (a 0 too, where its sum has
 * other answers and zeros protect: hidden with them it is unknown;
 * forcesWhole tells): hiding it breaks that chain
 * (when the chain ends only at a published sum, that cell is named to be
 * hidden whole). The caller hides those and runs the rule and the audit
 * again, until nothing is pinned.
 *
 * For the numbers of responses the audit also takes the equalities
 * together in the cheap steps of count-equalities.ts: a count they fix is
 * pinned, and its chain is the relations that fix it.
 *
 * Cost: one pass over every relation of the question's lattice and a few
 * more over those whose bounds move, ~16 ms a question on the demo data.
 * Between decisions the bounds are kept (CountAudit below), so a decision
 * after a response propagates only from what it changed.
 */

import { bitArray, bitAt, markBit } from './bits.ts';
import { equalityPins, OpenRelationList, Witnesses } from './count-equalities.ts';
import { IntMap } from './int-map.ts';
import type { AnswerCounts, LineIndex } from './count-suppression.ts';

/** What the audit looks at: the question's counts, the unit's hidden cells and the counts hidden in published cells. */
export interface AuditInput {
  lattice: LineIndex;
  answers: AnswerCounts;
  cellHidden: Uint8Array;
  /** Whether category k's count is hidden in published cell c. */
  countHidden: (k: number, c: number) => boolean;
  /** Whether hiding category k's count in published cell c would leave its sum no other non-zero count beside it. */
  forcesWhole: (k: number, c: number) => boolean;
  /**
   * The same hidden counts as countHidden, by cell: the categories hidden
   * there, ascending (CountDecision.hidden). Given, a kept audit compares
   * them with the last audit's lists instead of asking countHidden for
   * every category of every such cell.
   */
  hiddenIn?: ReadonlyMap<number, readonly number[]>;
}

export interface AuditFinding {
  /** Hidden non-zero counts an outsider can pin (narrow below the protection width), at k × n + c; then hidden respondents pinned, at (K + sums) × n + c, where the audit protects them (AnswerCounts.respondentsAtMost). */
  pinned: number[];
  /** Published counts to hide so that the chains that pin them break, at k × n + c (none when no such count exists). */
  repairs: number[];
  /** Published cells to hide whole: a pinned count's chain ends only at counts whose cell cannot lose one alone. */
  wholeCells: number[];
}

/** Half a unit: every quantity is a whole count, so bounds that moved by less say nothing new. */
const EPS = 0.5;

export function auditCounts(input: AuditInput): AuditFinding {
  return tracedAudit(input).finding;
}

/** An audit from scratch's finding and the bounds it ended with (quantities numbered as CountAudit's); `ended`: its propagation ran to the end. */
interface TracedAudit {
  finding: AuditFinding;
  lo: Float64Array;
  hi: Float64Array;
  ended: boolean;
}

function tracedAudit({ lattice, answers, cellHidden, countHidden, forcesWhole }: AuditInput): TracedAudit {
  const { counts, sumOf, respondents, dontKnow, openSum } = answers;
  const { lineTotal, lineStart, lineMembers, rank } = lattice;
  const minRange = answers.minRange ?? 1;
  const K = counts.length;
  const n = rank.length;
  const L = lineTotal.length;
  const sums = Math.max(0, ...sumOf.map((s) => s + 1));
  // Quantities: counts at k × n + c, sums at K × n + s × n + c, then respondents and "don't know" when given.
  const countVars = K * n;
  const R = (K + sums) * n;
  const D = R + n;
  const withPeople = respondents !== undefined && dontKnow !== undefined;
  const V = withPeople ? D + n : R;
  // "Don't know" as a category (openSum): its count, the same quantity as D, its sum's total (published nowhere) not one.
  const dk = withPeople && openSum !== undefined ? sumOf.indexOf(openSum) : -1;
  const sumTotal = (s: number, c: number) => (dk >= 0 && s === openSum ? D + c : countVars + s * n + c);
  const lo = new Float64Array(V);
  const hi = new Float64Array(V);
  const unknown = new Uint8Array(V);
  const sumAt = (s: number, c: number) => {
    let total = 0;
    for (let k = 0; k < K; k++) if (sumOf[k] === s) total += counts[k]![c]!;
    return total;
  };
  // An empty cell (nobody answered there) is known: empty groups are not listed.
  const empty = new Uint8Array(n);
  for (let c = 0; c < n; c++) {
    let any = withPeople ? respondents[c]! > 0 : false;
    for (let k = 0; k < K && !any; k++) any = counts[k]![c]! > 0;
    empty[c] = any ? 0 : 1;
  }
  const set = (v: number, isUnknown: boolean, value: number, least = 0) => {
    if (isUnknown) ((unknown[v] = 1), (lo[v] = least), (hi[v] = Infinity));
    else lo[v] = hi[v] = value;
  };
  for (let c = 0; c < n; c++) {
    const hiddenCell = cellHidden[c] === 1 && !empty[c];
    for (let s = 0; s < sums; s++) {
      // "Don't know"'s own sum is no quantity (its total is the "don't know" one): a known 0.
      const own = sumTotal(s, c) === countVars + s * n + c;
      // A sum of 0 in a cell with answers (a group that answered only "don't know") is known, as an empty cell is: an outsider
      // reads the group's lack of valid answers as routing's (README, "A group that answered only 'don't know'").
      set(countVars + s * n + c, hiddenCell && own && sumAt(s, c) > 0, own ? sumAt(s, c) : 0);
    }
    for (let k = 0; k < K; k++) set(k * n + c, !empty[c] && (cellHidden[c] === 1 || countHidden(k, c)), counts[k]![c]!, leastOf(answers, k, c));
    if (withPeople) {
      const people = hiddenCell || (dk >= 0 && !empty[c] && countHidden(dk, c));
      set(R + c, people, respondents[c]!);
      set(D + c, people, dontKnow[c]!);
      // The bound of a hidden cell only: a published cell's respondents are its valid answers and a hidden "don't know", whose
      // bound the group's number of responses less the valid answers is not taken (README, what is not protected).
      if (hiddenCell) hi[R + c] = boundOf(answers, c);
    }
  }

  // Relations, kept with their unknowns only, each Σ ±x = constant (the known quantities moved to the constant);
  // a variable is stored as v (coefficient +1) or ~v (−1). Each relation also keeps where it comes from, to list its
  // known quantities again when a pin is traced. One without an unknown says nothing and is dropped.
  const inSum: number[][] = Array.from({ length: sums }, () => []);
  sumOf.forEach((s, k) => inSum[s]!.push(k));
  const quantities = K + sums + (withPeople ? 2 : 0);
  const lineOrigins = quantities * L;
  const sumOrigins = lineOrigins + n * sums;
  const peopleOrigins = sumOrigins + n;
  /** Every quantity of the relation at `origin`, the total first (an inequality a ≤ b as [b, a]). */
  const relationOf = (origin: number): number[] => {
    if (origin < lineOrigins) {
      const base = Math.floor(origin / L) * n;
      const l = origin % L;
      const vars = [base + lineTotal[l]!];
      for (let i = lineStart[l]!; i < lineStart[l + 1]!; i++) vars.push(base + lineMembers[i]!);
      return vars;
    }
    if (origin < sumOrigins) {
      const c = Math.floor((origin - lineOrigins) / sums);
      const s = (origin - lineOrigins) % sums;
      return [sumTotal(s, c), ...inSum[s]!.map((k) => k * n + c)];
    }
    if (origin < peopleOrigins) return [R + origin - sumOrigins, countVars + origin - sumOrigins, D + origin - sumOrigins];
    const c = Math.floor((origin - peopleOrigins) / (K + 1));
    const k = (origin - peopleOrigins) % (K + 1);
    return [R + c, k < K ? k * n + c : D + c];
  };

  let capacity = 1024;
  let terms = new Int32Array(capacity);
  let length = 0;
  // At most one relation per line and quantity, per cell and sum, and per cell for the respondents (one and K + 1).
  const most = quantities * L + n * (sums + 1 + K + 1);
  const start = new Int32Array(most + 1);
  const rhs = new Float64Array(most);
  const origins = new Int32Array(most);
  const kind = new Uint8Array(most);
  let E = 0;
  let constant = 0;
  const term = (v: number, sign: number) => {
    if (!unknown[v]) {
      constant -= sign * lo[v]!;
      return;
    }
    if (length === capacity) {
      const grown = new Int32Array((capacity *= 2));
      grown.set(terms);
      terms = grown;
    }
    terms[length++] = sign > 0 ? v : ~v;
  };
  const close = (origin: number, type: number) => {
    if (length === start[E]) return;
    rhs[E] = constant;
    origins[E] = origin;
    kind[E] = type;
    E += 1;
    start[E] = length;
  };
  for (let q = 0; q < quantities; q++) {
    const base = q * n;
    for (let l = 0; l < L; l++) {
      constant = 0;
      term(base + lineTotal[l]!, 1);
      for (let i = lineStart[l]!; i < lineStart[l + 1]!; i++) term(base + lineMembers[i]!, -1);
      close(q * L + l, EQUAL);
    }
  }
  for (let c = 0; c < n; c++) {
    for (let s = 0; s < sums; s++) {
      constant = 0;
      term(sumTotal(s, c), 1);
      for (const k of inSum[s]!) term(k * n + c, -1);
      close(lineOrigins + c * sums + s, EQUAL);
    }
  }
  if (withPeople) {
    // A single answer: respondents are the valid answers and "don't know" (where that holds in every cell).
    let single = sums === (dk >= 0 ? 2 : 1);
    for (let c = 0; c < n && single; c++) single = respondents[c] === sumAt(0, c) + dontKnow[c]!;
    for (let c = 0; c < n; c++) {
      if (single) {
        constant = 0;
        term(R + c, 1);
        term(countVars + c, -1);
        term(D + c, -1);
        close(sumOrigins + c, EQUAL);
      }
      // No count and no "don't know" above the respondents: bounds at once where one side is known, else a relation.
      for (let k = 0; k <= K; k++) {
        const x = k < K ? k * n + c : D + c;
        const r = R + c;
        if (!unknown[x] && !unknown[r]) continue;
        if (!unknown[r]) hi[x] = Math.min(hi[x]!, lo[r]!);
        else if (!unknown[x]) lo[r] = Math.max(lo[r]!, lo[x]!);
        else {
          constant = 0;
          term(x, 1);
          term(r, -1);
          close(peopleOrigins + c * (K + 1) + k, AT_MOST);
        }
      }
    }
  }

  // Interval propagation over a work list: a relation is looked at again only when one of its variables' bounds moved.
  const byVar = relationsOfVars(V, E, start, terms);
  const queued = new Uint8Array(E).fill(1);
  const queue = new Int32Array(E + 1);
  for (let e = 0; e < E; e++) queue[e] = e;
  let head = 0;
  let tail = E % queue.length;
  let size = E;
  // Which relation last narrowed each bound (-1: none), to follow a pin back to what fixed it.
  const whyLo = new Int32Array(V).fill(-1);
  const whyHi = new Int32Array(V).fill(-1);
  const moved = (v: number) => {
    for (let i = byVar.start[v]!; i < byVar.start[v + 1]!; i++) {
      const r = byVar.relations[i]!;
      if (queued[r]) continue;
      queued[r] = 1;
      queue[tail] = r;
      tail = tail + 1 === queue.length ? 0 : tail + 1;
      size += 1;
    }
  };
  const narrow = (v: number, low: number, high: number, e: number) => {
    let changed = false;
    if (low > lo[v]! + EPS) ((lo[v] = low), (whyLo[v] = e), (changed = true));
    if (high < hi[v]! - EPS) ((hi[v] = high), (whyHi[v] = e), (changed = true));
    if (changed) moved(v);
  };
  // Every bound only narrows, by half a unit or more each time, so this ends; the budget guards against a slow crawl.
  let budget = 64 * E + 1024;
  while (size > 0 && budget-- > 0) {
    const e = queue[head]!;
    head = head + 1 === queue.length ? 0 : head + 1;
    size -= 1;
    queued[e] = 0;
    const from = start[e]!;
    const to = start[e + 1]!;
    if (kind[e] === AT_MOST) {
      // terms: x, ~r (x ≤ r).
      const x = terms[from]!;
      const r = ~terms[from + 1]!;
      narrow(x, -Infinity, hi[r]!, e);
      narrow(r, lo[x]!, Infinity, e);
      continue;
    }
    // Σ a·x = c: the range of Σ a·x over its terms, infinite parts counted apart.
    let minSum = 0;
    let maxSum = 0;
    let minInfinite = 0;
    let maxInfinite = 0;
    for (let i = from; i < to; i++) {
      const t = terms[i]!;
      if (t >= 0) {
        minSum += lo[t]!;
        if (hi[t] === Infinity) maxInfinite++;
        else maxSum += hi[t]!;
      } else {
        const v = ~t;
        if (hi[v] === Infinity) minInfinite++;
        else minSum -= hi[v]!;
        maxSum -= lo[v]!;
      }
    }
    const c = rhs[e]!;
    for (let i = from; i < to; i++) {
      const t = terms[i]!;
      const v = t >= 0 ? t : ~t;
      const infiniteHi = hi[v] === Infinity;
      // The others' range: the whole range without this term's part.
      const ownMin = t >= 0 ? lo[v]! : infiniteHi ? 0 : -hi[v]!;
      const ownMax = t >= 0 ? (infiniteHi ? 0 : hi[v]!) : -lo[v]!;
      const otherMinInfinite = minInfinite - (t < 0 && infiniteHi ? 1 : 0);
      const otherMaxInfinite = maxInfinite - (t >= 0 && infiniteHi ? 1 : 0);
      const otherMin = otherMinInfinite > 0 ? -Infinity : minSum - ownMin;
      const otherMax = otherMaxInfinite > 0 ? Infinity : maxSum - ownMax;
      // a·x = c − others, so a·x lies in [c − otherMax, c − otherMin].
      if (t >= 0) narrow(v, c - otherMax, c - otherMin, e);
      else narrow(v, otherMin - c, otherMax - c, e);
    }
  }
  const ended = size === 0;
  const relation = (e: number): number[] => relationOf(origins[e]!);

  // Values the equalities give only together (count-equalities.ts), for the numbers of responses and, when asked, for any
  // question whose open quantities are few enough to solve (see there why): quantities closed to one value count as known there.
  const solved = answers.listed || openAtMost(V, answers.solveUnknowns ?? 0, (v) => lo[v] !== hi[v]);
  const open = OpenRelationList.cleared();
  let longest = 0;
  for (let e = 0; e < E; e++) longest = Math.max(longest, start[e + 1]! - start[e]!);
  const buffer = new Int32Array(longest);
  for (let e = 0; e < E && solved; e++) {
    if (kind[e] !== EQUAL) continue;
    let constant = rhs[e]!;
    let unknowns = 0;
    for (let i = start[e]!; i < start[e + 1]!; i++) {
      const t = terms[i]!;
      const v = t >= 0 ? t : ~t;
      if (lo[v] === hi[v]) constant -= (t >= 0 ? 1 : -1) * lo[v]!;
      else buffer[unknowns++] = t;
    }
    if (unknowns >= 2) open.add(buffer, unknowns, constant, e);
  }
  const exact = solved ? equalityPins(open.relations, V, { lo: (v) => lo[v]!, hi: (v) => hi[v]!, minRange, nonZero: (v) => v < countVars && counts[Math.floor(v / n)]![v % n]! > 0, solveUpTo: answers.listed ? 0 : answers.solveUnknowns ?? 0 }) : new Map<number, number[]>();

  const finding: AuditFinding = { pinned: [], repairs: [], wholeCells: [] };
  const chosen = new Set<number>();
  const whole = new Set<number>();
  const valueOf = (u: number) => counts[Math.floor(u / n)]![u % n]!;
  // The counts, then the respondents of hidden cells where the audit protects them too (AnswerCounts.respondentsAtMost given;
  // in a published cell they are its valid answers and its hidden "don't know", which is a count).
  const last = withPeople && answers.respondentsAtMost ? D : countVars;
  for (let v = 0; v < last; v++) {
    if (v === countVars) v = R;
    const counted = v < countVars;
    if (!unknown[v] || (!counted && !cellHidden[v - R])) continue;
    const byBounds = counted ? hi[v]! - lo[v]! < minRange - 1e-9 : respondentsPinned(lo[v]!, hi[v]!, boundOf(answers, v - R), minRange);
    const byEqualities = byBounds || !counted ? undefined : exact.get(v);
    if ((!byBounds && !byEqualities) || (counted ? valueOf(v) : respondents![v - R]!) <= 0) continue;
    finding.pinned.push(v);
    // Follow the relations behind its bounds (or the equalities that fix it) back to published counts; the smallest its cell can lose alone breaks the chain.
    let best = -1;
    let bestWhole = true;
    let fallbackCell = -1;
    const visited = new Set<number>([v]);
    const stack = [v];
    while (stack.length > 0) {
      const w = stack.pop()!;
      const seeds = w === v && byEqualities ? byEqualities : [whyLo[w]!, whyHi[w]!];
      for (const r of seeds) {
        if (r < 0) continue;
        for (const quantity of relation(r)) {
          if (visited.has(quantity)) continue;
          visited.add(quantity);
          if (unknown[quantity]) {
            // In the equalities' own relations, the other unknowns cancel out; only those the bounds closed were taken as known.
            if (seeds !== byEqualities || lo[quantity] === hi[quantity]) stack.push(quantity);
            continue;
          }
          const cell = quantity % n;
          // A published respondents or "don't know" of a cell where "don't know" is a category: hiding that count hides both.
          const u = quantity >= R && dk >= 0 && counts[dk]![cell]! > 0 && !visited.has(dk * n + cell) ? dk * n + cell : quantity;
          if (u >= countVars) {
            // A published sum, respondents or "don't know": its cell's counts are the way in.
            if (!cellHidden[cell] && fallbackCell < 0 && lo[u]! > 0) fallbackCell = cell;
            continue;
          }
          visited.add(u);
          const uk = Math.floor(u / n);
          if (cellHidden[cell]) continue;
          const uWhole = forcesWhole(uk, cell);
          // A published 0 protects once hidden with the rest of its sum, where the sum has other answers, in the overall cell and its groups of one
          // dimension (never a "don't know" or a listed count): elsewhere forcesWhole holds for it (CountSuppression.zeroProtectsAt).
          if (valueOf(u) <= 0 && (uWhole || answers.listed || sumOf[uk] === openSum)) continue;
          const better = best < 0 || (bestWhole && !uWhole) || (bestWhole === uWhole && (valueOf(u) < valueOf(best) || (valueOf(u) === valueOf(best) && rank[cell]! < rank[best % n]!)));
          if (better) ((best = u), (bestWhole = uWhole));
        }
      }
    }
    if (best >= 0) {
      if (!chosen.has(best)) (chosen.add(best), finding.repairs.push(best));
    } else if (fallbackCell >= 0 && !whole.has(fallbackCell)) {
      whole.add(fallbackCell);
      finding.wholeCells.push(fallbackCell);
    }
  }
  return { finding, lo, hi, ended };
}

/**
 * Whether at most `limit` (AnswerCounts.solveUnknowns) of the quantities
 * 0..V − 1 are open; false at once for 0. Counting stops past the limit.
 */
function openAtMost(V: number, limit: number, isOpen: (v: number) => boolean): boolean {
  if (limit === 0) return false;
  let open = 0;
  for (let v = 0; v < V && open <= limit; v++) if (isOpen(v)) open++;
  return open <= limit;
}

/**
 * The cells where two arrays of hidden cells (one byte a cell) differ,
 * ascending, compared four cells at a time: a decision after a response
 * hides or publishes a few of thousands, and every question's decision and
 * audit look for them.
 */
export function differingCells(a: Uint8Array, b: Uint8Array): number[] {
  const n = Math.min(a.length, b.length);
  const differing: number[] = [];
  const words = a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0 ? n >> 2 : 0;
  if (words > 0) {
    const aWords = new Uint32Array(a.buffer, a.byteOffset, words);
    const bWords = new Uint32Array(b.buffer, b.byteOffset, words);
    for (let w = 0; w < words; w++) {
      if (aWords[w] === bWords[w]) continue;
      for (let c = 4 * w; c < 4 * w + 4; c++) if (a[c] !== b[c]) differing.push(c);
    }
  }
  for (let c = 4 * words; c < n; c++) if (a[c] !== b[c]) differing.push(c);
  return differing;
}

/** Cells, as a caller lists them (an array, or 32-bit integers). */
type CellList = readonly number[] | Int32Array;

const EQUAL = 0;
const AT_MOST = 1;

/** Whether two lists of numbers (categories, cells; none: empty) are the same, in the same order. */
export function sameList(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === b) return true;
  const length = a?.length ?? 0;
  if (length !== (b?.length ?? 0)) return false;
  for (let i = 0; i < length; i++) if (a![i] !== b![i]) return false;
  return true;
}

/** What an outsider knows of a hidden count before any relation: at least 1 where the views list its cell (a group's number of responses), else 0. */
const leastOf = (answers: AnswerCounts, k: number, c: number) => (answers.listed && answers.counts[k]![c]! > 0 ? 1 : 0);

/**
 * What an outsider knows bounds cell c's hidden respondents from above
 * before any relation (AnswerCounts.respondentsAtMost): the group's
 * published number of responses, where it holds; else no bound.
 */
function boundOf(answers: AnswerCounts, c: number): number {
  const bound = answers.respondentsAtMost?.[c] ?? -1;
  return bound >= 0 && bound >= answers.respondents![c]! ? bound : Infinity;
}

/**
 * Whether hidden respondents between `low` and `high` are pinned: narrower
 * than the protection width and than what their bound alone leaves (a
 * published number of responses below the width is the group's own figure:
 * the question cannot widen it).
 */
const respondentsPinned = (low: number, high: number, bound: number, minRange: number) => high - low < Math.min(minRange, bound) - 1e-9;

/** Per variable, the relations it is a term of (compressed rows); a term is v or ~v. */
function relationsOfVars(V: number, E: number, start: Int32Array, terms: Int32Array): { start: Int32Array; relations: Int32Array } {
  const rowStart = new Int32Array(V + 1);
  const at = (t: number) => (t >= 0 ? t : ~t);
  for (let i = 0; i < start[E]!; i++) rowStart[at(terms[i]!) + 1]! += 1;
  for (let v = 0; v < V; v++) rowStart[v + 1]! += rowStart[v]!;
  const relations = new Int32Array(rowStart[V]!);
  const next = rowStart.slice(0, V);
  for (let e = 0; e < E; e++) for (let i = start[e]!; i < start[e + 1]!; i++) relations[next[at(terms[i]!)]!++] = e;
  return { start: rowStart, relations };
}

/**
 * A kept bound's byte (CountAudit.bounded; every bound is a whole number:
 * the relations add and subtract whole counts): a bound from 0 to 251 is
 * the byte itself; SAME, a published count, respondents or "don't know"
 * whose bound is its value (read from the answers, CountAudit.trueValue);
 * WIDE, a bound held in the audit's map of wide bounds (32-bit); HUGE, one
 * past 32 bits, in a Map; NONE, no upper bound.
 */
const SAME = 252;
const WIDE = 253;
const HUGE = 254;
const NONE = 255;

/** The work list of the kept audits, shared (audits run one at a time): a ring of relations, and whether each is in it (left clear). */
let workQueue = new Int32Array(0);
let workQueued = new Uint8Array(0);
/** The cells a kept audit looks at again, marked (shared as the work list is, and left clear): thousands a call, where a set of them was most of its garbage. */
let cellsMarked = new Uint8Array(0);

/**
 * The audit of one question's counts, kept between decisions so that the
 * next one costs what changed (the decision is taken again after every
 * response, over a lattice where nearly every quantity is hidden and the
 * relations join them into one component, so splitting by components saves
 * nothing).
 *
 * It keeps the bounds the last audit ended with. Interval propagation
 * narrows; each relation's narrowing is monotone (a wider box never gives
 * narrower bounds), and every bound is a whole number, so a run to the end
 * ends at the greatest box that no relation narrows any more inside the
 * starting bounds: the same box whatever the order, the one auditCounts
 * ends at. Any other box inside the starting bounds that no relation
 * narrows and that has no empty range lies inside that one (the hull of the
 * two is such a box too, so it is the greatest's). So after a change, the
 * quantities of the changed cells start again from what an outsider knows
 * of them (0 and no bound, or their published value), every other keeps its
 * last bounds, and propagation runs from the relations of the changed
 * quantities only. If then no range is empty and no hidden non-zero count
 * is narrower than the protection width (AnswerCounts.minRange), none is in
 * the audit from scratch either: each of its ranges contains the kept one,
 * so it is at least as wide, whatever the width (nothing above needs the
 * width to be 1). Otherwise (kept bounds can be narrower than the audit
 * from scratch's, as they are never widened again) auditCounts
 * runs from scratch, tracing what it pins, and its bounds (that same
 * greatest box) are kept for the next decision: most such pins are true
 * ones, and a repair round follows. The finding is the one from scratch
 * either way.
 */
export class CountAudit {
  private readonly K: number;
  private readonly n: number;
  private readonly L: number;
  private readonly sums: number;
  private readonly inSum: number[][];
  private readonly withPeople: boolean;
  /** "Don't know" as a category (AnswerCounts.openSum, with people given): its index, else -1; its sum's total is the "don't know" quantity. */
  private readonly dk: number;
  /** Quantities at q × n + c: counts (q < K), sums, then respondents and "don't know" when given; bounds and whether each is hidden. */
  private readonly quantities: number;
  /**
   * A byte a bound (SAME, WIDE, HUGE, NONE): once an audit has ended, 0.3% of the
   * bounds at 5,000 responses and 3.5% at 50,000 are above 251 (those of
   * the coarser cells). Such a bound is held in a map by quantity (wideLo,
   * wideHi), and taken out of it when the bound comes back below 252,
   * unless it is a published count's, respondents' or "don't know"'s and
   * its value (SAME): those were two thirds of the maps' entries at 50,000
   * (both bounds of each), and the answers hold them already. An
   * audit from scratch holds most hidden upper bounds above 252 for a while
   * (they come down from the totals), which a map does not mind; slots of
   * every quantity of such a cell, kept until the lattice changed, took more
   * memory than 16-bit bounds. Where the kept bounds no longer hold the
   * counts, propagation can drive bounds past 32 bits (±4.29 billion in
   * kept-count-decision.test.ts, counts of 1–3; the audit then falls back to
   * the one from scratch): those go to hugeLo and hugeHi, exact (the 32-bit
   * bounds of before kept them wrapped). In 16 bits every bound, the bounds
   * were ~2,050 bytes a response at 5,000 and ~250 at 50,000.
   */
  private readonly lo: Uint8Array;
  private readonly hi: Uint8Array;
  private readonly wideLo = new IntMap();
  private readonly wideHi = new IntMap();
  private readonly hugeLo = new Map<number, number>();
  private readonly hugeHi = new Map<number, number>();
  /** Whether each quantity is hidden, a bit each (bitAt, markBit): as bytes they were ~120 bytes a response at 50,000. */
  private readonly unknownBits: Int32Array;
  /** Relations, numbered as auditCounts's origins: per quantity and line, per cell and sum, per cell the single answer's, per cell and count (or "don't know") at most the respondents. */
  private readonly lineRelations: number;
  private readonly sumRelations: number;
  private readonly singleRelations: number;
  private readonly relations: number;
  /** Per cell, whether respondents are not its valid answers plus "don't know" (a single answer's relation holds only where no cell is); a bit each. */
  private readonly notSingle: Int32Array;
  private notSingleCells = 0;
  /** What the kept bounds were taken for: the unit's hidden cells and the cells with hidden counts. */
  private readonly cellHidden: Uint8Array;
  /** Solutions of this question's system that an earlier solve found (count-equalities.ts Witnesses). */
  private witnesses = new Witnesses();
  private countCells: CellList = [];
  /** The last audit's hiddenIn, when it was given (its lists are never changed once handed out). */
  private hiddenIn: ReadonlyMap<number, readonly number[]> | undefined;
  /** Cells whose counts, respondents or "don't know" changed since the kept bounds were taken. */
  private readonly changed = new Set<number>();
  /** Whether bounds are kept (the last propagation ran to its end), and whether nothing was pinned or empty in them. */
  private kept = false;
  private clean = false;
  /** A relation's terms while it is looked at: quantity v as v (+1) or ~v (−1). */
  private terms = new Int32Array(64);

  constructor(
    private readonly lattice: LineIndex,
    private readonly answers: AnswerCounts,
  ) {
    const { counts, sumOf, respondents, dontKnow } = answers;
    this.K = counts.length;
    this.n = lattice.rank.length;
    this.L = lattice.lineTotal.length;
    this.sums = Math.max(0, ...sumOf.map((s) => s + 1));
    this.inSum = Array.from({ length: this.sums }, () => []);
    sumOf.forEach((s, k) => this.inSum[s]!.push(k));
    this.withPeople = respondents !== undefined && dontKnow !== undefined;
    this.dk = this.withPeople && answers.openSum !== undefined ? sumOf.indexOf(answers.openSum) : -1;
    this.quantities = this.K + this.sums + (this.withPeople ? 2 : 0);
    const V = this.quantities * this.n;
    this.lo = new Uint8Array(V);
    this.hi = new Uint8Array(V);
    this.unknownBits = bitArray(V);
    this.lineRelations = this.quantities * this.L;
    this.sumRelations = this.lineRelations + this.n * this.sums;
    this.singleRelations = this.sumRelations + this.n;
    this.relations = this.singleRelations + (this.withPeople ? this.n * (this.K + 1) : 0);
    this.notSingle = bitArray(this.n);
    this.cellHidden = new Uint8Array(this.n);
  }

  /**
   * This audit over a lattice that cells joined or left (`from`: each old
   * cell's number in `lattice`, -1 for one that went), for the question's
   * counts there: the kept bounds of the cells that stay, the cells that
   * joined to start again. Every relation whose terms changed holds a cell
   * that starts again: a new line or a line with a new member holds the new
   * cell, and a cell goes only when its last record leaves, which changes
   * the counts of the coarser cells that are the totals of its lines (and
   * the finer cells of that record go with it). So the kept bounds stay a
   * box that no unchanged relation narrows, and the argument above holds.
   */
  carriedOver(lattice: LineIndex, answers: AnswerCounts, from: Int32Array): CountAudit {
    const next = new CountAudit(lattice, answers);
    const { n, quantities } = this;
    const m = next.n;
    const carried = new Uint8Array(m);
    for (let c = 0; c < n; c++) {
      const to = from[c]!;
      if (to < 0) continue;
      carried[to] = 1;
      for (let q = 0; q < quantities; q++) {
        if (bitAt(this.unknownBits, q * n + c)) markBit(next.unknownBits, q * m + to, true);
        next.bounded(q * m + to, this.low(q * n + c), this.high(q * n + c));
      }
      const notSingle = bitAt(this.notSingle, c);
      markBit(next.notSingle, to, notSingle === 1);
      next.notSingleCells += notSingle;
      next.cellHidden[to] = this.cellHidden[c]!;
    }
    next.countCells = Array.from(this.countCells).flatMap((c) => (from[c]! >= 0 ? [from[c]!] : []));
    for (const c of this.changed) if (from[c]! >= 0) next.changed.add(from[c]!);
    for (let c = 0; c < m; c++) if (!carried[c]) next.changed.add(c);
    next.kept = this.kept;
    next.clean = this.clean;
    // The moves of the cells that stay, renumbered; one that moved a cell that went is dropped (the categories' number must hold too).
    if (next.quantities === quantities) next.witnesses = this.witnesses.renumbered((v) => {
      const q = Math.floor(v / n);
      const to = from[v - q * n]!;
      return to < 0 ? -1 : q * m + to;
    });
    return next;
  }

  /** Cells whose counts, respondents or "don't know" answers may have changed since the last audit. */
  countsChanged(cells: Iterable<number>): void {
    for (const c of cells) this.changed.add(c);
  }

  /** The finding of auditCounts for `input`, whose cells with hidden counts are `countCells` (kept: the caller never changes them). */
  audit(input: AuditInput, countCells: CellList): AuditFinding {
    if (!this.kept) return this.fromScratch(input, countCells) && !this.equalitiesPin() ? { pinned: [], repairs: [], wholeCells: [] } : auditCounts(input);
    if (this.again(input, countCells) && !this.equalitiesPin()) return { pinned: [], repairs: [], wholeCells: [] };
    // The kept bounds pin something: mostly a count the audit from scratch pins too (a repair round follows), so that
    // audit runs at once, traces what it pins, and its bounds are kept, instead of bounds from scratch first and then it.
    return this.traced(input, countCells);
  }

  /** The finding of auditCounts for `input`, its bounds kept. */
  private traced(input: AuditInput, countCells: CellList): AuditFinding {
    const { finding, lo, hi, ended } = tracedAudit(input);
    // reset sets which quantities are hidden and which cells hold a single answer; the bounds are the audit's.
    this.notSingleCells = 0;
    this.notSingle.fill(0);
    for (let c = 0; c < this.n; c++) this.reset(c, input);
    for (let v = 0; v < this.lo.length; v++) this.bounded(v, lo[v]!, hi[v]!);
    this.remember(input, countCells);
    this.kept = ended;
    this.clean = ended && this.check(null);
    return finding;
  }

  private get single(): boolean {
    return this.withPeople && this.sums === (this.dk >= 0 ? 2 : 1) && this.notSingleCells === 0;
  }

  private fromScratch(input: AuditInput, countCells: CellList): boolean {
    const { n, relations } = this;
    this.notSingleCells = 0;
    this.notSingle.fill(0);
    for (let c = 0; c < n; c++) this.reset(c, input);
    const queue = workList(relations);
    for (let e = 0; e < relations; e++) queue.push(e);
    this.remember(input, countCells);
    this.kept = this.propagate(queue);
    this.clean = this.kept && this.check(null);
    return this.clean;
  }

  /** From the kept bounds: the changed cells start again and propagation runs from their relations. False when that does not show that nothing is pinned. */
  private again(input: AuditInput, countCells: CellList): boolean {
    const { n, quantities, unknownBits } = this;
    // The cells to look at, each once, in the order first met.
    if (cellsMarked.length < n) cellsMarked = new Uint8Array(n);
    const marked = cellsMarked;
    const cells: number[] = [];
    const look = (c: number) => {
      if (marked[c]) return;
      marked[c] = 1;
      cells.push(c);
    };
    for (const c of this.changed) look(c);
    for (const c of differingCells(input.cellHidden, this.cellHidden)) look(c);
    // Which counts are hidden in a published cell is what its hidden flags say since its last start (reset): the last lists, when both audits have them.
    const lists = input.hiddenIn && this.hiddenIn ? { now: input.hiddenIn, last: this.hiddenIn } : undefined;
    // A cell whose counts' hiding changed: those with hidden counts, now or last time (none when the lists and cells are the last audit's own).
    if (!lists || lists.now !== lists.last || countCells !== this.countCells) {
      for (const c of this.countCells) look(c);
      for (const c of countCells) look(c);
    }
    for (const c of cells) marked[c] = 0;
    const wasSingle = this.single;
    const touched: number[] = [];
    const queue = workList(this.relations);
    const restarted: number[] = [];
    for (const c of cells) {
      if (!this.changed.has(c) && input.cellHidden[c] === this.cellHidden[c]) {
        // Same counts and the same cell hidden or not: start again only if which of its counts are hidden changed.
        if (lists && sameList(lists.now.get(c), lists.last.get(c))) continue;
        const open = !this.isEmpty(c) && input.cellHidden[c] === 0;
        let same = true;
        for (let k = 0; k < this.K && same; k++) same = !open || bitAt(unknownBits, k * n + c) === (input.countHidden(k, c) ? 1 : 0);
        if (same) continue;
      }
      restarted.push(c);
    }
    // A quantity that starts again where it was (a published count whose value did not change, a hidden one that had no
    // bounds yet) narrows nothing: the kept box was one that no relation narrows, so only the others' relations are queued.
    const was = new Float64Array(3 * quantities * restarted.length);
    let i = 0;
    for (const c of restarted) {
      // A bound that is its value (SAME) reads the answers, which hold the cell's new counts when it changed: taken as moved (NaN equals nothing).
      const moved = this.changed.has(c);
      for (let q = 0; q < quantities; q++, i += 3) {
        this.boundsAt(q * n + c, was, i);
        if (moved && (this.lo[q * n + c] === SAME || this.hi[q * n + c] === SAME)) was[i] = NaN;
      }
    }
    for (const c of restarted) this.reset(c, input);
    this.remember(input, countCells);
    if (this.single !== wasSingle) {
      queue.clear();
      this.kept = false;
      return false;
    }
    const now = new Float64Array(3);
    i = 0;
    for (const c of restarted) {
      for (let q = 0; q < quantities; q++, i += 3) {
        touched.push(q * n + c);
        this.boundsAt(q * n + c, now, 0);
        if (now[0] !== was[i] || now[1] !== was[i + 1] || now[2] !== was[i + 2]) this.relationsOf(q * n + c, queue);
      }
    }
    this.kept = this.propagate(queue, touched);
    if (!this.kept) return false;
    this.clean = this.check(this.clean ? touched : null);
    return this.clean;
  }

  /** Quantity v's lower and upper bound (Infinity: none) and whether it is hidden, into `into` at `at`. */
  private boundsAt(v: number, into: Float64Array, at: number): void {
    into[at] = this.low(v);
    into[at + 1] = this.high(v);
    into[at + 2] = bitAt(this.unknownBits, v);
  }

  private isEmpty(c: number): boolean {
    const { counts, respondents } = this.answers;
    if (this.withPeople && respondents![c]! > 0) return false;
    for (let k = 0; k < this.K; k++) if (counts[k]![c]! > 0) return false;
    return true;
  }

  /** Cell c's quantities as an outsider knows them before any relation: hidden ones between 0 (1 where listed) and no bound, the rest their value. */
  private reset(c: number, input: AuditInput): void {
    const { K, n, sums, inSum, unknownBits } = this;
    const { counts, respondents, dontKnow } = this.answers;
    const empty = this.isEmpty(c);
    const set = (v: number, hidden: boolean, value: number, least = 0) => {
      markBit(unknownBits, v, hidden);
      this.bounded(v, hidden ? least : value, hidden ? Infinity : value);
    };
    const cellHidden = !empty && input.cellHidden[c] === 1;
    for (let k = 0; k < K; k++) set(k * n + c, !empty && (cellHidden || input.countHidden(k, c)), counts[k]![c]!, leastOf(this.answers, k, c));
    let first = 0;
    for (let s = 0; s < sums; s++) {
      let total = 0;
      for (const k of inSum[s]!) total += counts[k]![c]!;
      if (s === 0) first = total;
      // "Don't know"'s own sum is no quantity: its total is the "don't know" one.
      if (this.dk >= 0 && s === this.answers.openSum) set((K + s) * n + c, false, 0);
      // A sum of 0 is known, hidden or not (as in tracedAudit).
      else set((K + s) * n + c, cellHidden && total > 0, total);
    }
    if (this.withPeople) {
      // Where a published cell hides its "don't know", its respondents are hidden with it.
      const people = cellHidden || (this.dk >= 0 && !empty && input.countHidden(this.dk, c));
      set((K + sums) * n + c, people, respondents![c]!);
      set((K + sums + 1) * n + c, people, dontKnow![c]!);
      if (cellHidden) this.bounded((K + sums) * n + c, 0, boundOf(this.answers, c));
      const notSingle = respondents![c] !== first + dontKnow![c]! ? 1 : 0;
      this.notSingleCells += notSingle - bitAt(this.notSingle, c);
      markBit(this.notSingle, c, notSingle === 1);
    }
  }

  private remember(input: AuditInput, countCells: CellList): void {
    this.cellHidden.set(input.cellHidden);
    this.countCells = countCells;
    this.hiddenIn = input.hiddenIn;
    this.changed.clear();
  }

  /** Queues every relation quantity v is a term of. */
  private relationsOf(v: number, queue: WorkList): void {
    const { K, n, L, sums, lattice } = this;
    const q = Math.floor(v / n);
    const c = v - q * n;
    const base = q * L;
    for (let i = lattice.memberOfStart[c]!; i < lattice.memberOfStart[c + 1]!; i++) queue.push(base + lattice.memberOf[i]!);
    for (let i = lattice.totalOfStart[c]!; i < lattice.totalOfStart[c + 1]!; i++) queue.push(base + lattice.totalOf[i]!);
    const single = this.single;
    const atMost = this.singleRelations + c * (K + 1);
    if (q < K) {
      queue.push(this.lineRelations + c * sums + this.answers.sumOf[q]!);
      if (this.withPeople) queue.push(atMost + q);
    } else if (q < K + sums) {
      queue.push(this.lineRelations + c * sums + q - K);
      if (single && q === K) queue.push(this.sumRelations + c);
    } else if (q === K + sums) {
      if (single) queue.push(this.sumRelations + c);
      for (let k = 0; k <= K; k++) queue.push(atMost + k);
    } else {
      if (single) queue.push(this.sumRelations + c);
      queue.push(atMost + K);
      if (this.dk >= 0) queue.push(this.lineRelations + c * sums + this.answers.openSum!);
    }
  }

  /**
   * Equality e's quantities into this.terms (v for +1, ~v for −1; the total
   * first, Σ = 0), their number returned: a line's, a sum's, or a single
   * answer's respondents (0 where that does not hold). Not for e at or past
   * singleRelations (the inequalities).
   */
  private equalityTerms(e: number, single: boolean): number {
    const { K, n, L, sums, inSum, lattice } = this;
    const { lineTotal, lineStart, lineMembers } = lattice;
    let terms = this.terms;
    if (e < this.lineRelations) {
      const q = Math.floor(e / L);
      const l = e - q * L;
      const base = q * n;
      const length = 1 + lineStart[l + 1]! - lineStart[l]!;
      if (length > terms.length) terms = this.terms = new Int32Array(2 * length);
      terms[0] = base + lineTotal[l]!;
      for (let i = lineStart[l]!, j = 1; i < lineStart[l + 1]!; i++, j++) terms[j] = ~(base + lineMembers[i]!);
      return length;
    }
    if (e < this.sumRelations) {
      const c = Math.floor((e - this.lineRelations) / sums);
      const s = e - this.lineRelations - c * sums;
      const members = inSum[s]!;
      const length = 1 + members.length;
      if (length > terms.length) terms = this.terms = new Int32Array(2 * length);
      terms[0] = this.dk >= 0 && s === this.answers.openSum ? (K + sums + 1) * n + c : (K + s) * n + c;
      for (let j = 0; j < members.length; j++) terms[j + 1] = ~(members[j]! * n + c);
      return length;
    }
    if (!single) return 0;
    const c = e - this.sumRelations;
    terms[0] = (K + sums) * n + c;
    terms[1] = ~(K * n + c);
    terms[2] = ~((K + sums + 1) * n + c);
    return 3;
  }

  /**
   * Whether the equalities taken together (count-equalities.ts) fix a
   * hidden non-zero count that the kept bounds leave open (numbers of
   * responses, and answer counts with few open quantities when asked, as in
   * auditCounts). The kept bounds
   * are never wider than an audit's from scratch, so a count they do not
   * let it fix, the audit from scratch does not either.
   */
  /** Quantity v's true value: counts, sums, respondents and "don't know", n cells each, in that order. */
  private trueValue(v: number): number {
    const { K, n, sums, inSum } = this;
    const { counts, respondents, dontKnow } = this.answers;
    const q = Math.floor(v / n);
    const c = v - q * n;
    if (q < K) return counts[q]![c]!;
    if (q < K + sums) return inSum[q - K]!.reduce((total, k) => total + counts[k]![c]!, 0);
    return (q === K + sums ? respondents : dontKnow)![c]!;
  }

  private equalitiesPin(): boolean {
    const { K, n, unknownBits } = this;
    const V = this.lo.length;
    const open = (v: number) => bitAt(unknownBits, v) === 1 && this.high(v) !== this.low(v);
    if (!this.answers.listed && !openAtMost(V, this.answers.solveUnknowns ?? 0, open)) return false;
    const single = this.single;
    const relations = OpenRelationList.cleared();
    for (let e = 0; e < this.singleRelations; e++) {
      const length = this.equalityTerms(e, single);
      const terms = this.terms;
      let unknowns = 0;
      let constant = 0;
      for (let i = 0; i < length; i++) {
        const t = terms[i]!;
        const v = t >= 0 ? t : ~t;
        if (open(v)) terms[unknowns++] = t;
        else constant -= (t >= 0 ? 1 : -1) * this.low(v);
      }
      if (unknowns >= 2) relations.add(terms, unknowns, constant, e);
    }
    const exact = equalityPins(relations.relations, V, { lo: (v) => this.low(v), hi: (v) => this.high(v), minRange: this.answers.minRange ?? 1, nonZero: (v) => v < K * n && this.answers.counts[Math.floor(v / n)]![v % n]! > 0, solveUpTo: this.answers.listed ? 0 : this.answers.solveUnknowns ?? 0, truth: (v) => this.trueValue(v), witnesses: this.witnesses });
    for (const v of exact.keys()) if (v < K * n && this.answers.counts[Math.floor(v / n)]![v % n]! > 0) return true;
    return false;
  }

  /** Narrows until no relation moves a bound; false when the budget ran out first (the bounds are then not kept). */
  private propagate(queue: WorkList, touched?: number[]): boolean {
    const { K, n, L, sums, inSum, unknownBits, lattice } = this;
    const { lineTotal, lineStart, lineMembers } = lattice;
    const single = this.single;
    let budget = 64 * this.relations + 1024;
    while (queue.size > 0) {
      if (budget-- <= 0) {
        queue.clear();
        return false;
      }
      const e = queue.pop();
      if (e >= this.singleRelations) {
        // x ≤ r: a count or "don't know" at most the respondents.
        const c = Math.floor((e - this.singleRelations) / (K + 1));
        const k = e - this.singleRelations - c * (K + 1);
        const x = k < K ? k * n + c : (K + sums + 1) * n + c;
        const r = (K + sums) * n + c;
        const atMost = this.high(r);
        if (bitAt(unknownBits, x) && atMost < this.high(x)) this.narrowed(x, this.low(x), atMost, queue, touched);
        const least = this.low(x);
        if (bitAt(unknownBits, r) && least > this.low(r)) this.narrowed(r, least, this.high(r), queue, touched);
        continue;
      }
      const length = this.equalityTerms(e, single);
      const terms = this.terms;
      // Σ ±x = 0 over every quantity of the relation (published ones have one value): as in auditCounts.
      let minSum = 0;
      let maxSum = 0;
      let minInfinite = 0;
      let maxInfinite = 0;
      let unknowns = 0;
      for (let i = 0; i < length; i++) {
        const t = terms[i]!;
        const v = t >= 0 ? t : ~t;
        unknowns += bitAt(unknownBits, v);
        const low = this.low(v);
        const high = this.high(v);
        if (t >= 0) {
          minSum += low;
          if (high === Infinity) maxInfinite++;
          else maxSum += high;
        } else {
          if (high === Infinity) minInfinite++;
          else minSum -= high;
          maxSum -= low;
        }
      }
      if (unknowns === 0) continue;
      for (let i = 0; i < length; i++) {
        const t = terms[i]!;
        const v = t >= 0 ? t : ~t;
        if (!bitAt(unknownBits, v)) continue;
        const wasLow = this.low(v);
        const wasHigh = this.high(v);
        const infinite = wasHigh === Infinity;
        const ownMin = t >= 0 ? wasLow : infinite ? 0 : -wasHigh;
        const ownMax = t >= 0 ? (infinite ? 0 : wasHigh) : -wasLow;
        const otherMin = minInfinite - (t < 0 && infinite ? 1 : 0) > 0 ? -Infinity : minSum - ownMin;
        const otherMax = maxInfinite - (t >= 0 && infinite ? 1 : 0) > 0 ? Infinity : maxSum - ownMax;
        // x = −others for a term +x, x = others for −x.
        const low = t >= 0 ? -otherMax : otherMin;
        const high = t >= 0 ? -otherMin : otherMax;
        if (low > wasLow || high < wasHigh) this.narrowed(v, Math.max(low, wasLow), Math.min(high, wasHigh), queue, touched);
      }
    }
    return true;
  }

  /** Sets quantity v's narrower bounds and queues its relations. */
  private narrowed(v: number, low: number, high: number, queue: WorkList, touched: number[] | undefined): void {
    this.bounded(v, low, high);
    touched?.push(v);
    this.relationsOf(v, queue);
  }

  /** Quantity v's kept lower and upper bound (Infinity: none), as the last audit left them (tests read them). */
  bounds(v: number): [number, number] {
    return [this.low(v), this.high(v)];
  }

  /** How many bounds the maps beside the bytes hold (tests read it). */
  get boundsInMaps(): number {
    return this.wideLo.size + this.wideHi.size + this.hugeLo.size + this.hugeHi.size;
  }

  /** Quantity v's lower bound. */
  private low(v: number): number {
    const byte = this.lo[v]!;
    return byte < SAME ? byte : byte === SAME ? this.trueValue(v) : byte === WIDE ? this.wideLo.get(v)! : byte === HUGE ? this.hugeLo.get(v)! : Infinity;
  }

  /** Quantity v's upper bound, Infinity where it has none. */
  private high(v: number): number {
    const byte = this.hi[v]!;
    return byte < SAME ? byte : byte === SAME ? this.trueValue(v) : byte === NONE ? Infinity : byte === WIDE ? this.wideHi.get(v)! : this.hugeHi.get(v)!;
  }

  /** Sets quantity v's bounds (high Infinity: none); one that a byte does not hold goes to the map. */
  private bounded(v: number, low: number, high: number): void {
    this.lo[v] = this.byteOf(v, low, this.lo[v]!, this.wideLo, this.hugeLo);
    this.hi[v] = this.byteOf(v, high, this.hi[v]!, this.wideHi, this.hugeHi);
  }

  /**
   * The byte for bound `value` of quantity v (Infinity: none), whose byte
   * was `was`, its maps kept in step. NaN (Infinity − Infinity, where such a
   * box's bounds overflowed) is kept as 0, as the 32-bit bounds kept it.
   */
  private byteOf(v: number, value: number, was: number, wide: IntMap, huge: Map<number, number>): number {
    if (Number.isNaN(value)) value = 0;
    const byte = value >= 0 && value < SAME ? value : value === Infinity ? NONE : (value | 0) === value ? (this.isOwnValue(v, value) ? SAME : WIDE) : HUGE;
    if (was === WIDE && byte !== WIDE) wide.delete(v);
    else if (was === HUGE && byte !== HUGE) huge.delete(v);
    if (byte === WIDE) wide.set(v, value);
    else if (byte === HUGE) huge.set(v, value);
    return byte;
  }

  /**
   * Whether quantity v is published (its hidden bit is marked before its
   * bounds: reset, carriedOver) and `value` is its value in the answers, a
   * count, respondents or "don't know" (a sum's value is added up, too slow
   * to read at every look). The answers change only in cells that are then
   * flagged (countsChanged), and such a cell starts again before any of its
   * bounds is read, except by again's comparison of old and new bounds,
   * which takes a SAME bound there as moved.
   */
  private isOwnValue(v: number, value: number): boolean {
    if (bitAt(this.unknownBits, v)) return false;
    const q = Math.floor(v / this.n);
    return (q < this.K || q >= this.K + this.sums) && this.trueValue(v) === value;
  }

  /** Whether no hidden range is empty and no hidden non-zero count is narrower than the protection width, over `only` (else every quantity). */
  private check(only: readonly number[] | null): boolean {
    const { K, n, unknownBits } = this;
    const { counts, respondents } = this.answers;
    const minRange = this.answers.minRange ?? 1;
    // The respondents, where the audit protects them too (as auditCounts).
    const people = this.withPeople && this.answers.respondentsAtMost ? K + this.sums : -1;
    const ok = (v: number) => {
      if (!bitAt(unknownBits, v)) return true;
      const low = this.low(v);
      const high = this.high(v);
      if (low > high) return false;
      const q = Math.floor(v / n);
      const c = v - q * n;
      if (q === people) return respondents![c]! <= 0 || this.cellHidden[c] === 0 || !respondentsPinned(low, high, boundOf(this.answers, c), minRange);
      return q >= K || counts[q]![c]! <= 0 || high - low >= minRange;
    };
    if (only) return only.every(ok);
    for (let v = 0; v < this.lo.length; v++) if (!ok(v)) return false;
    return true;
  }
}

interface WorkList {
  readonly size: number;
  push(e: number): void;
  pop(): number;
  clear(): void;
}

/** The shared work list, empty, for relations numbered below `relations`: each relation in it at most once at a time. */
function workList(relations: number): WorkList {
  if (workQueued.length < relations) {
    workQueued = new Uint8Array(relations);
    workQueue = new Int32Array(relations + 1);
  }
  const queue = workQueue;
  const queued = workQueued;
  const capacity = relations + 1;
  let head = 0;
  let tail = 0;
  let size = 0;
  return {
    get size() {
      return size;
    },
    push(e: number) {
      if (queued[e]) return;
      queued[e] = 1;
      queue[tail] = e;
      tail = tail + 1 === capacity ? 0 : tail + 1;
      size += 1;
    },
    pop() {
      const e = queue[head]!;
      head = head + 1 === capacity ? 0 : head + 1;
      size -= 1;
      queued[e] = 0;
      return e;
    },
    clear() {
      while (size > 0) this.pop();
    },
  };
}
