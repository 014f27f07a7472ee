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
 * rest lie between 0 and no bound. Every line (per quantity) and every
 * cell's sums are equalities, no count and no "don't know" exceeds the
 * respondents, and a single answer's respondents are its valid answers plus
 * "don't know". Bounds are narrowed over them until nothing moves (interval
 * propagation over a work list, as tests/evidence/auditor.ts does from the
 * published tables). A hidden count that is not 0 and whose bounds close to
 * less than one is pinned. For each pinned count the audit follows the
 * relations that set its bounds back to published counts, and names the
 * smallest one that its cell can lose alone: hiding it breaks that chain
 * (when the chain ends only at a published sum, that cell is named to be
 * hidden whole). The caller hides those and runs the rule and the audit
 * again, until nothing is pinned.
 *
 * Cost: one pass over every relation of the question's lattice and a few
 * more over those whose bounds move, ~16 ms a question on the demo data.
 */

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
}

export interface AuditFinding {
  /** Hidden non-zero counts an outsider can pin, at k × n + c. */
  pinned: number[];
  /** Published counts to hide so that the chains that pin them break, at k × n + c (none when no such count exists). */
  repairs: number[];
  /** Published cells to hide whole: a pinned count's chain ends only at counts whose cell cannot lose one alone. */
  wholeCells: number[];
}

/** Half a unit: every quantity is a whole count, so bounds that moved by less say nothing new. */
const EPS = 0.5;

export function auditCounts({ lattice, answers, cellHidden, countHidden, forcesWhole }: AuditInput): AuditFinding {
  const { counts, sumOf, respondents, dontKnow } = answers;
  const { lineTotal, lineStart, lineMembers, rank } = lattice;
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
  const set = (v: number, isUnknown: boolean, value: number) => {
    if (isUnknown) ((unknown[v] = 1), (hi[v] = Infinity));
    else lo[v] = hi[v] = value;
  };
  for (let c = 0; c < n; c++) {
    const hiddenCell = cellHidden[c] === 1 && !empty[c];
    for (let s = 0; s < sums; s++) set(countVars + s * n + c, hiddenCell, sumAt(s, c));
    for (let k = 0; k < K; k++) set(k * n + c, !empty[c] && (cellHidden[c] === 1 || countHidden(k, c)), counts[k]![c]!);
    if (withPeople) {
      set(R + c, hiddenCell, respondents[c]!);
      set(D + c, hiddenCell, dontKnow[c]!);
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
      return [countVars + s * n + c, ...inSum[s]!.map((k) => k * n + c)];
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
      term(countVars + s * n + c, 1);
      for (const k of inSum[s]!) term(k * n + c, -1);
      close(lineOrigins + c * sums + s, EQUAL);
    }
  }
  if (withPeople) {
    // A single answer: respondents are the valid answers and "don't know" (where that holds in every cell).
    let single = sums === 1;
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
  const relation = (e: number): number[] => relationOf(origins[e]!);

  const finding: AuditFinding = { pinned: [], repairs: [], wholeCells: [] };
  const chosen = new Set<number>();
  const whole = new Set<number>();
  const valueOf = (u: number) => counts[Math.floor(u / n)]![u % n]!;
  for (let v = 0; v < countVars; v++) {
    if (!unknown[v] || hi[v]! - lo[v]! >= 1 - 1e-9) continue;
    if (valueOf(v) <= 0) continue;
    finding.pinned.push(v);
    // Follow the relations behind its bounds back to published counts; the smallest its cell can lose alone breaks the chain.
    let best = -1;
    let bestWhole = true;
    let fallbackCell = -1;
    const visited = new Set<number>([v]);
    const stack = [v];
    while (stack.length > 0) {
      const w = stack.pop()!;
      for (const r of [whyLo[w]!, whyHi[w]!]) {
        if (r < 0) continue;
        for (const u of relation(r)) {
          if (visited.has(u)) continue;
          visited.add(u);
          if (unknown[u]) {
            stack.push(u);
            continue;
          }
          const cell = u % n;
          if (u >= countVars) {
            // A published sum, respondents or "don't know": its cell's counts are the way in.
            if (!cellHidden[cell] && fallbackCell < 0 && lo[u]! > 0) fallbackCell = cell;
            continue;
          }
          const uk = Math.floor(u / n);
          if (cellHidden[cell] || valueOf(u) <= 0) continue;
          const uWhole = forcesWhole(uk, cell);
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
  return finding;
}

const EQUAL = 0;
const AT_MOST = 1;

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
