/**
 * What an outsider pins with one relation the mechanism's audits use only
 * in part (issue 10; README "Disclosure control", "A question's respondents
 * bounded in its own audit"; each question's audit takes published numbers
 * of responses as bounds, not hidden ones): nobody answers a question without a
 * response, so in every group each question's respondents are at most the
 * group's number of responses. The units are decided apart (one per figure
 * family, one for the number of responses), and each one's own audit
 * (count-audit.ts) sees its own figures only; with this relation an
 * outsider combines them: questions published in hidden groups give lower
 * bounds on their numbers of responses that can add up to a published
 * total, and where a group's number of responses is published (or pinned)
 * and everyone in it answered a question, that question's hidden
 * respondents equal it.
 *
 * The numbers of responses and every question's respondents are quantities
 * per cell, published ones known, those of empty cells and of a question
 * without respondents there 0 (as routing would tell), a hidden listed
 * group's number of responses at least 1; every line (per quantity) is an
 * equality, and each question's respondents are at most the number of
 * responses. Bounds are narrowed by interval propagation over a work list,
 * as count-audit.ts does. A hidden size that is not 0 whose bounds close to
 * less than the protection width is pinned.
 *
 * Used by `npm run bench:disclosure` to measure what the mechanism leaves
 * pinned; on seed 3's first random campaign of
 * tests/evidence/disclosure-auditor.test.ts it finds the pins the outside
 * auditor finds with SolveOptions.respondentsWithinResponses (13,726 and
 * 13,703, 417 and 416 of them numbers of responses).
 */

import type { LineIndex } from './count-suppression.ts';

/** One figure of the audit: its size per cell and whether each cell is hidden. */
export interface SizeColumn {
  sizes: Int32Array;
  hidden: (c: number) => boolean;
}

export interface WithinFinding {
  /** Hidden sizes that are not 0 (the quantities a pin is looked for in). */
  checked: number;
  /** Hidden sizes pinned: figure (0 the number of responses, q + 1 question q) × n + cell. */
  pinned: number[];
}

/** Half a unit: every size is a whole number, so bounds that moved by less say nothing new. */
const EPS = 0.5;

/**
 * Audits the numbers of responses (`responses`, listed: a hidden group with
 * responses is known to have at least 1) with the questions' respondents
 * (`questions`) over the lattice's lines.
 */
export function auditWithinResponses(lattice: LineIndex, responses: SizeColumn, questions: readonly SizeColumn[], minRange = 1): WithinFinding {
  const { lineTotal, lineStart, lineMembers, rank } = lattice;
  const n = rank.length;
  const L = lineTotal.length;
  const figures = [responses, ...questions];
  const F = figures.length;
  const V = F * n;
  const lo = new Float64Array(V);
  const hi = new Float64Array(V);
  const unknown = new Uint8Array(V);
  const value = (v: number) => figures[Math.floor(v / n)]!.sizes[v % n]!;
  for (let f = 0; f < F; f++) {
    const { sizes, hidden } = figures[f]!;
    for (let c = 0; c < n; c++) {
      const v = f * n + c;
      // A cell with no responses is empty and known (an empty group is not listed); a figure with no answers there is
      // known to be 0 as routing would tell (the outside auditor counts it as known too).
      if (responses.sizes[c]! > 0 && sizes[c]! > 0 && hidden(c)) {
        unknown[v] = 1;
        lo[v] = f === 0 ? 1 : 0;
        hi[v] = Infinity;
      } else lo[v] = hi[v] = sizes[c]!;
    }
  }

  // Relations with an unknown: lines per figure (origin f × L + l), then x ≤ r per question q ≥ 1 and cell (origin F × L + (q − 1) × n + c).
  const lineOrigins = F * L;
  const originList: number[] = [];
  for (let f = 0; f < F; f++) {
    const base = f * n;
    for (let l = 0; l < L; l++) {
      let any = unknown[base + lineTotal[l]!] === 1;
      for (let i = lineStart[l]!; i < lineStart[l + 1]! && !any; i++) any = unknown[base + lineMembers[i]!] === 1;
      if (any) originList.push(f * L + l);
    }
  }
  for (let q = 1; q < F; q++) {
    for (let c = 0; c < n; c++) if (unknown[q * n + c] || unknown[c]) originList.push(lineOrigins + (q - 1) * n + c);
  }
  const origins = Int32Array.from(originList);
  const E = origins.length;
  // Per quantity, the relations it is an unknown term of (compressed rows).
  const forEachTerm = (origin: number, visit: (v: number) => void) => {
    if (origin < lineOrigins) {
      const base = Math.floor(origin / L) * n;
      const l = origin % L;
      visit(base + lineTotal[l]!);
      for (let i = lineStart[l]!; i < lineStart[l + 1]!; i++) visit(base + lineMembers[i]!);
      return;
    }
    const q = Math.floor((origin - lineOrigins) / n) + 1;
    const c = (origin - lineOrigins) % n;
    visit(q * n + c);
    visit(c);
  };
  const rowStart = new Int32Array(V + 1);
  for (let e = 0; e < E; e++) forEachTerm(origins[e]!, (v) => void (unknown[v] && (rowStart[v + 1]! += 1)));
  for (let v = 0; v < V; v++) rowStart[v + 1]! += rowStart[v]!;
  const byVar = new Int32Array(rowStart[V]!);
  const next = rowStart.slice(0, V);
  for (let e = 0; e < E; e++) forEachTerm(origins[e]!, (v) => void (unknown[v] && (byVar[next[v]!++] = e)));

  // A ring of relations to look at, each in it at most once at a time.
  const queued = new Uint8Array(E).fill(1);
  const queue = new Int32Array(E + 1);
  for (let e = 0; e < E; e++) queue[e] = e;
  let head = 0;
  let tail = E;
  let size = E;
  const narrow = (v: number, low: number, high: number) => {
    let changed = false;
    if (low > lo[v]! + EPS) ((lo[v] = low), (changed = true));
    if (high < hi[v]! - EPS) ((hi[v] = high), (changed = true));
    if (!changed) return;
    for (let i = rowStart[v]!; i < rowStart[v + 1]!; i++) {
      const r = byVar[i]!;
      if (queued[r]) continue;
      queued[r] = 1;
      queue[tail] = r;
      tail = tail + 1 === queue.length ? 0 : tail + 1;
      size += 1;
    }
  };
  // Bounds only narrow, by half a unit or more each time, so this ends; the budget guards against a slow crawl.
  let budget = 64 * E + 1024;
  while (size > 0 && budget-- > 0) {
    const e = queue[head]!;
    head = head + 1 === queue.length ? 0 : head + 1;
    size -= 1;
    queued[e] = 0;
    const origin = origins[e]!;
    if (origin >= lineOrigins) {
      const q = Math.floor((origin - lineOrigins) / n) + 1;
      const c = (origin - lineOrigins) % n;
      const x = q * n + c;
      narrow(x, -Infinity, hi[c]!);
      narrow(c, lo[x]!, Infinity);
      continue;
    }
    // total − Σ members = 0: each term's range from the others'.
    const base = Math.floor(origin / L) * n;
    const l = origin % L;
    const total = base + lineTotal[l]!;
    const from = lineStart[l]!;
    const to = lineStart[l + 1]!;
    let membersLo = 0;
    let membersHi = 0;
    let infinite = 0;
    for (let i = from; i < to; i++) {
      const m = base + lineMembers[i]!;
      membersLo += lo[m]!;
      if (hi[m] === Infinity) infinite++;
      else membersHi += hi[m]!;
    }
    narrow(total, membersLo, infinite > 0 ? Infinity : membersHi);
    for (let i = from; i < to; i++) {
      const m = base + lineMembers[i]!;
      if (!unknown[m]) continue;
      const othersLo = membersLo - lo[m]!;
      const othersHi = infinite - (hi[m] === Infinity ? 1 : 0) > 0 ? Infinity : membersHi - (hi[m] === Infinity ? 0 : hi[m]!);
      narrow(m, lo[total]! - othersHi, hi[total]! - othersLo);
    }
  }

  const finding: WithinFinding = { checked: 0, pinned: [] };
  for (let v = 0; v < V; v++) {
    if (!unknown[v] || value(v) <= 0) continue;
    finding.checked += 1;
    if (hi[v]! - lo[v]! < minRange - 1e-9) finding.pinned.push(v);
  }
  return finding;
}
