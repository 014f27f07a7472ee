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
 * counts: a 0 left published does not protect (zeros are what an outsider
 * derives first), and whenever a line has exactly one hidden count that is not 0
 * (its total included), one more count of that category is hidden: a
 * published one of the line that does not force its whole cell, where it
 * costs least: first where it withholds no more of the cell's published
 * figures (an indicator's value or the top-two share is withheld once the
 * cell's hidden counts lie on both sides of its split), then where the sum
 * already has a hidden count, then the smallest count. On the overall
 * cell's lines, failing that, a published group's 0 whose sum has other
 * answers, hidden with them: an outsider then no longer knows it is 0 (a
 * valid answer's 0 hidden in a cell with answers is an unknown like any
 * count; "don't know" and the number of responses keep their zeros known);
 * and there a hidden group that answered, 0 there, is already a second
 * unknown. Failing that, the total's. Without these, a rare answer given in
 * one hidden group only (S2.1's one "strongly disagree" on the demo wave)
 * had the overall count as its only protector, and the overall cell then
 * hid every count of the question (below), withholding the overall
 * indicators built on it: 9 of 51 on the demo wave, none now. Only there
 * (zeroProtectsAt: elsewhere chains of lines give most such zeros back, and
 * leaning on them cost dozens of audit rounds a decision). The audit below
 * checks every such zero as an unknown, and names a published 0 there to
 * hide as it names a count.
 *
 * Inside a published cell a sum (all valid answers; a grid row) shows all
 * its counts or none: once one is hidden, every other, zeros included, is
 * hidden too. Hiding two and showing the rest is not enough. An outsider
 * adds a scale's counts up over a split of its points (the top two and the
 * rest, say) in every cell; such a sum adds up along lines like a count,
 * and in a cell whose hidden counts all lie on one side of the split it is
 * known (the valid answers minus the shown counts). A line whose other
 * cells' sums are known gives the last one's, and a hidden count is that
 * sum minus the shown counts beside it: 1,673 hidden counts on the demo
 * wave, none of which the count-by-count audit below finds. With every
 * count of a sum hidden, a cell's sum over any split is unknown wherever
 * one of its counts is. Only when a sum has no other non-zero count and no
 * other category whose 0, hidden beside it, is an unknown (the hidden count
 * is then the whole sum) is the cell hidden whole: the caller then
 * decides the cell's unit again with that cell hidden and asks again.
 * Repeated until nothing changes, so the outcome does not depend on which
 * view asks.
 *
 * The rule looks at one line or sum at a time, which does not protect a
 * sparse lattice (lines whose only non-zero member equals their total chain
 * hidden counts to published ones): every outcome is then audited as an
 * outsider would (count-audit.ts), and the published counts the audit names
 * are hidden and the rule run again, until no hidden count is pinned.
 *
 * "Don't know" is one more category of a single answer or of a number (its
 * valid answers, one number each, the other; AnswerCounts.openSum):
 * a published cell shows it and its respondents (valid answers plus "don't
 * know"), so it is hidden there with the respondents and nothing else; its
 * "sum" is then not published, so it needs no second hidden count in the
 * cell, never hides the cell whole, and lies outside every split (the valid
 * answers' shares, means and indicators exclude it).
 */

import { bitArray, bitAt, markBit } from './bits.ts';
import { CountAudit, differingCells, sameList } from './count-audit.ts';
import { hiddenCells, type Figure, type Line } from './disclosure.ts';
import { IntMap } from './int-map.ts';

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

/**
 * Counts per cell: 16-bit where the decisions keep them between decisions
 * until one does not fit (evidence-decision.ts countColumn), 32-bit
 * elsewhere.
 */
export type CountColumn = Int32Array | Uint16Array;

/** One question's answer counts per cell: categories in one fixed order, each with the within-cell sum it belongs to. */
export interface AnswerCounts {
  counts: readonly CountColumn[];
  /**
   * Per cell, the question's respondents and its "don't know" answers: an
   * outsider's audit (count-audit.ts) relates them to the counts (no count
   * above the respondents; for a single answer, respondents = valid answers
   * + "don't know"). Without them the audit sees the counts alone.
   */
  respondents?: CountColumn;
  dontKnow?: CountColumn;
  /**
   * Per cell, what an outsider knows bounds the question's respondents from
   * above from outside its unit: the group's published number of responses
   * (nobody answers without a response), -1 where it is not published. A
   * cell whose respondents exceed it is left unbounded (the relation would
   * not hold there). The audit takes it in hidden cells only, and given, it
   * also protects the hidden respondents of hidden cells: narrowed below
   * the protection width, and below what the bound alone leaves, they are
   * pinned (README "A question's respondents bounded in its own audit").
   * The caller may change it between decisions, naming the cells it
   * changed in as changed cells.
   */
  respondentsAtMost?: Int32Array;
  /** Per category, its sum inside a cell (a grid row; else one sum of every valid answer). */
  sumOf: readonly number[];
  /**
   * The sum of a category whose within-cell total a published cell withholds
   * with it: a single answer's or a number's "don't know" (its own sum, the
   * last), whose hiding withholds the cell's respondents too (valid answers
   * + "don't know"). Its count in `dontKnow` is the same.
   */
  openSum?: number;
  /**
   * Splits of the categories by the figures computed from them (an
   * indicator's share counts some answers, not others): per split, each
   * category's side. A figure gives nothing away about hidden counts that
   * all lie on one side of its split, so counts are hidden on the side of
   * the cell's other hidden counts where one is.
   */
  sides?: readonly Int32Array[];
  /**
   * Whether a cell where a count is not 0 is listed by the views even when
   * hidden (a group's number of responses: a view lists every group that
   * has one, as a suppressed column if need be), so that an outsider knows
   * that count is at least 1.
   */
  listed?: boolean;
  /**
   * The protection width (Thresholds.minRange): a hidden count that is not 0
   * whose bounds an outsider narrows below it is pinned. 1 when absent.
   */
  minRange?: number;
  /**
   * Open quantities (after propagation) up to which the audit of counts that
   * are not `listed` also takes the equality steps, solving a system beyond
   * their elimination budget as a linear program (count-equalities.ts
   * UnknownBounds.solveUpTo says what it costs). 0 when absent: propagation only.
   * Listed counts always take those steps, without the solver beyond the budget.
   */
  solveUnknowns?: number;
}

export interface CountDecision {
  /** Per published cell with hidden counts, the categories hidden there, ascending (a hidden cell hides every count anyway). */
  hidden: ReadonlyMap<number, readonly number[]>;
  /** Published cells whose only non-zero count of a sum would have to be hidden: they must be hidden whole. */
  wholeCells: number[];
}

/**
 * The counts to hide in the published cells of one question, given its
 * unit's hidden cells (`cellHidden`), from scratch. See the module comment.
 */
export function hiddenCounts(lattice: LineIndex, cellHidden: Uint8Array, answers: AnswerCounts): CountDecision {
  return new CountSuppression(lattice, answers).decide(cellHidden, []);
}

/**
 * The decision of one question's counts, kept to be taken again after its
 * counts or its unit's hidden cells changed, at the cost of what changed.
 *
 * Most lines can never act: one that starts with two unknowns (non-zero
 * counts in hidden cells, or a hidden total) keeps them, since hidden counts
 * only add to them. Left out, they change nothing of the order in which the
 * others act. What the decision needs of every line is kept here: whether it
 * can act, and, when it starts with one unknown, where (the order in which
 * the run meets it first). A change of counts touches only the lines of the
 * cells where a count went to or from 0, a change of hidden cells only those
 * cells' lines. The run over the lines that can act is then replayed in
 * full, in the order a run from scratch takes, so the decision is exactly
 * the one from scratch; unless nothing that changed lies on a line or sum
 * the last run took up, and its ties fall as before: then it is that run's
 * (outOfReach, firstRunStands).
 */
export class CountSuppression {
  private readonly K: number;
  private readonly n: number;
  private readonly L: number;
  private readonly sums: number;
  private readonly sumMembers: number[][];
  /** The unit's hidden cells and each count's being non-zero (at k × n + c, a bit each: bitAt) as last seen. */
  private readonly cellHidden: Uint8Array;
  private readonly nonZeroBits: Int32Array;
  /** Per cell and sum, its non-zero counts: whether hiding one leaves another beside it (a byte each while a sum has fewer than 256 categories, as every one has). */
  private readonly nonZeroInSum: Uint8Array | Int32Array;
  /** Per cell, whether its hidden zeros can be unknown to an outsider (answeredAt): a hidden count of 0 in such a cell is (zeroProtects). */
  private readonly answered: Uint8Array;
  /** The overall cell (-1 in a lattice without lines): on its lines a hidden group's 0 protects too (run). */
  private readonly top: number;
  /**
   * The overall cell and the members of its lines (one dimension's groups),
   * marked: the only cells whose zeros protect (zeroProtectsAt); and the same
   * groups listed, the overall cell not among them (answeredAt reads other
   * cells there, so each decision looks at them all again). Made when first
   * asked (nearTopGroups).
   */
  private nearTopMade: { marked: Uint8Array; groups: Int32Array } | undefined;
  /**
   * Per (category, line) at k × L + l, a bit (bitAt) set where it can act; and the lines that
   * start with one unknown, each with the run's key of its first push (a
   * few of the K × L lines: as an array of them with -1 elsewhere it was
   * ~90 bytes a response at 50,000; as a Map, ~120 at 50,000 and 10,000).
   */
  private readonly live: Int32Array;
  private readonly firstPush = new IntMap();
  /** The most lines a cell is a member or the total of: the stride of a first push's key. */
  private readonly stride: number;
  /** The last decision; none yet: every line is still to be looked at. */
  private last: CountDecision | undefined;
  /**
   * The outsider's audit, kept between decisions: one for the run without
   * forced counts, one for each of the first repair rounds after it (made
   * when first needed; later rounds share the last: KEPT_REPAIR_AUDITS).
   * A decision's rounds hide more counts one after another, and an
   * audit's kept bounds taken with fewer hidden are mostly narrower than
   * those from scratch: audited from the first round's bounds, the second
   * round pinned falsely in most questions and ran its audit from scratch.
   * From the last decision's repair round, whose hidden counts are mostly
   * the same, it mostly does not.
   */
  private readonly audit: CountAudit;
  private repairAudits: CountAudit[] = [];
  /** Carried over to a new lattice: every line is to be looked at again (the non-zero bits kept are of the old counts). */
  private relined = false;
  /**
   * The last run without forced counts, and its ties: every choice where
   * more than one count was as cheap as the one chosen, so that only their
   * sizes decided (see firstRunStands).
   */
  private firstRun: { decision: CountDecision; ties: Int32Array | Uint16Array } | undefined;
  /** The splits as bit masks (splitMasks); null: none to make. */
  private masks: { twoSided: number; side: Int32Array; wider: number[] } | null | undefined;
  /** The most members a line has (longestLine); -1: not counted yet. */
  private longest = -1;
  /** The cells of the decision audited last (cellsOf), the audit's own list of them too. */
  private listed: { decision: CountDecision; cells: Int32Array } | undefined;

  constructor(
    private readonly lattice: LineIndex,
    /** Its counts: the caller changes them in place and names the cells it changed at the next decide. */
    private readonly answers: AnswerCounts,
    audit?: CountAudit,
  ) {
    const { counts, sumOf } = answers;
    this.K = counts.length;
    this.L = lattice.lineTotal.length;
    this.n = lattice.rank.length;
    this.sums = Math.max(0, ...sumOf.map((s) => s + 1));
    this.sumMembers = Array.from({ length: this.sums }, () => []);
    sumOf.forEach((s, k) => this.sumMembers[s]!.push(k));
    this.cellHidden = new Uint8Array(this.n);
    this.nonZeroBits = bitArray(this.K * this.n);
    this.nonZeroInSum = this.K < 256 ? new Uint8Array(this.n * this.sums) : new Int32Array(this.n * this.sums);
    for (let k = 0; k < this.K; k++) {
      for (let c = 0; c < this.n; c++) {
        if (counts[k]![c]! <= 0) continue;
        markBit(this.nonZeroBits, k * this.n + c, true);
        this.nonZeroInSum[c * this.sums + sumOf[k]!]! += 1;
      }
    }
    // The overall cell: the total of lines, a member of none.
    this.top = -1;
    for (let c = 0; c < this.n && this.top < 0; c++) if (lattice.memberOfStart[c + 1] === lattice.memberOfStart[c] && lattice.totalOfStart[c + 1]! > lattice.totalOfStart[c]!) this.top = c;
    this.answered = new Uint8Array(this.n);
    for (let c = 0; c < this.n; c++) this.answered[c] = this.answeredAt(c);
    this.live = bitArray(this.K * this.L);
    let stride = 1;
    for (let c = 0; c < this.n; c++) stride = Math.max(stride, lattice.memberOfStart[c + 1]! - lattice.memberOfStart[c]! + lattice.totalOfStart[c + 1]! - lattice.totalOfStart[c]!);
    this.stride = stride;
    this.audit = audit ?? new CountAudit(lattice, answers);
  }

  /**
   * This decision over a lattice that cells joined or left (`from`: each old
   * cell's number in `lattice`, -1 for one that went), for the question's
   * counts there (the caller names the cells that joined as changed at the
   * next decide). The lattice's numbering is the one from scratch, so every
   * line is looked at again and the run replayed in its order; the audit
   * keeps its bounds (CountAudit carriedOver).
   */
  carriedOver(lattice: LineIndex, answers: AnswerCounts, from: Int32Array): CountSuppression {
    const next = new CountSuppression(lattice, answers, this.audit.carriedOver(lattice, answers, from));
    next.repairAudits = this.repairAudits.map((audit) => audit.carriedOver(lattice, answers, from));
    const { K, n } = this;
    const m = next.n;
    for (let c = 0; c < n; c++) {
      const to = from[c]!;
      if (to < 0) continue;
      next.cellHidden[to] = this.cellHidden[c]!;
      for (let k = 0; k < K; k++) if (bitAt(this.nonZeroBits, k * n + c)) markBit(next.nonZeroBits, k * m + to, true);
    }
    next.nonZeroInSum.fill(0);
    for (let k = 0; k < K; k++) for (let c = 0; c < m; c++) next.nonZeroInSum[c * next.sums + next.answers.sumOf[k]!]! += bitAt(next.nonZeroBits, k * m + c);
    if (this.last) {
      const hidden = new Map<number, readonly number[]>();
      for (const [c, categories] of this.last.hidden) if (from[c]! >= 0) hidden.set(from[c]!, categories);
      next.last = { hidden, wholeCells: this.last.wholeCells.flatMap((c) => (from[c]! >= 0 ? [from[c]!] : [])) };
      next.relined = true;
    }
    return next;
  }

  /**
   * The decision for the unit's hidden cells, after the counts changed in
   * `changedCells` (any cells where they may have). The same decision
   * object as the last time when nothing of it changed.
   *
   * When no count changed and no hidden cell changed, nothing is taken
   * again. Otherwise the run is replayed over the lines that can act, and
   * audited from the last audit's bounds (count-audit.ts CountAudit: the
   * cells that changed start again), with the finding of an audit from
   * scratch.
   */
  decide(cellHidden: Uint8Array, changedCells: Iterable<number>): CountDecision {
    const { K, n, L, lattice } = this;
    const dirty = new Set<number>();
    let again = !this.last;
    const linesOf = (k: number, c: number) => {
      for (let i = lattice.memberOfStart[c]!; i < lattice.memberOfStart[c + 1]!; i++) dirty.add(k * L + lattice.memberOf[i]!);
      for (let i = lattice.totalOfStart[c]!; i < lattice.totalOfStart[c + 1]!; i++) dirty.add(k * L + lattice.totalOf[i]!);
    };
    // Counts that went to or from 0 (at k × n + c) and cells hidden or published since: what the last run may have read differently.
    const crossed: number[] = [];
    const toggled: number[] = [];
    const changed: number[] = [];
    const reanswered: number[] = [];
    const reanswer = (c: number, answered: number) => {
      // Its hidden zeros become unknown or known: every line through the cell reads it.
      this.answered[c] = answered;
      for (let k = 0; k < K; k++) linesOf(k, c);
      reanswered.push(c);
    };
    for (const c of changedCells) {
      again = true;
      changed.push(c);
      const answered = this.answeredAt(c);
      if (answered !== this.answered[c]) reanswer(c, answered);
      for (let k = 0; k < K; k++) {
        const nonZero = this.answers.counts[k]![c]! > 0 ? 1 : 0;
        if (nonZero === bitAt(this.nonZeroBits, k * n + c)) continue;
        again = true;
        markBit(this.nonZeroBits, k * n + c, nonZero === 1);
        this.nonZeroInSum[c * this.sums + this.answers.sumOf[k]!]! += nonZero ? 1 : -1;
        crossed.push(k * n + c);
        linesOf(k, c);
      }
    }
    // A group of one dimension whose counts did not change can still come to hold another group's respondents, or cease to.
    if (this.answers.respondents && this.top >= 0) {
      for (const c of this.nearTopGroups().groups) {
        const answered = this.answeredAt(c);
        if (answered !== this.answered[c]) ((again = true), reanswer(c, answered));
      }
    }
    this.audit.countsChanged(changed);
    for (const audit of this.repairAudits) audit.countsChanged(changed);
    const restarted = !this.last || this.relined;
    if (restarted) {
      again = true;
      this.relined = false;
      this.cellHidden.set(cellHidden);
      for (let at = 0; at < K * L; at++) this.lineChanged(at);
    }
    for (const c of differingCells(cellHidden, this.cellHidden)) {
      this.cellHidden[c] = cellHidden[c]!;
      for (let k = 0; k < K; k++) linesOf(k, c);
      if (!restarted) toggled.push(c);
    }
    if (!restarted) for (const c of reanswered) if (!toggled.includes(c)) toggled.push(c);
    if (!again && toggled.length === 0) return this.last!;
    // The lines as they were, to tell whether the last run would meet them as before (see outOfReach).
    const was = restarted ? [] : [...dirty].map((at) => [at, bitAt(this.live, at), this.firstPush.get(at) ?? -1] as const);
    for (const at of dirty) this.lineChanged(at);
    const decision = this.audited(!restarted && this.outOfReach(crossed, toggled, was), changed);
    if (this.last && sameDecision(this.last, decision)) return this.last;
    return (this.last = decision);
  }

  /**
   * Whether the last run without forced counts is still the run from
   * scratch, as far as what changed goes (firstRunStands then checks its
   * ties on sizes): no count it looked at went to or from 0 and no cell it
   * looked at was hidden or published. A run reads a count's being non-zero
   * and its cell's being hidden only at the lines and sums it takes up (a
   * line's members and total; a choice's cost reads the sums of those
   * cells), and it takes up only the lines it starts with and, for each
   * count it hides, that count's lines that can act and its sum. So it
   * stands when no line or sum through a changed count (of any category of
   * that count's sum) or a changed cell was taken up, every line that
   * changed starts as before (where it starts with one unknown), and no line
   * that could not act before and can now holds a count the run hid (it
   * would take that line up now). `was`: the changed lines as they were
   * (can act, first push).
   */
  private outOfReach(crossed: readonly number[], toggled: readonly number[], was: ReadonlyArray<readonly [number, number, number]>): boolean {
    const run = this.firstRun;
    if (!run) return false;
    const { K, L, n, sums, sumMembers, lattice } = this;
    const { sumOf } = this.answers;
    const { memberOfStart, memberOf, totalOfStart, totalOf, lineStart, lineMembers, lineTotal } = lattice;
    const before = new Map(was.map(([at, live]) => [at, { live }]));
    const hid = (k: number, c: number) => run.decision.hidden.get(c)?.includes(k) ?? false;
    const holdsHidden = (k: number, l: number) => {
      if (hid(k, lineTotal[l]!)) return true;
      for (let i = lineStart[l]!; i < lineStart[l + 1]!; i++) if (hid(k, lineMembers[i]!)) return true;
      return false;
    };
    // Line (k, l) was taken up when it could act and held a count the run hid (one it started with hid one there, or met one hidden already).
    const lineTaken = (k: number, l: number) => {
      const at = k * L + l;
      return (before.get(at)?.live ?? bitAt(this.live, at)) === 1 && holdsHidden(k, l);
    };
    const cellTaken = (k: number, c: number) => {
      for (let i = memberOfStart[c]!; i < memberOfStart[c + 1]!; i++) if (lineTaken(k, memberOf[i]!)) return true;
      for (let i = totalOfStart[c]!; i < totalOfStart[c + 1]!; i++) if (lineTaken(k, totalOf[i]!)) return true;
      return false;
    };
    // Sum s of cell c was taken up: the run hid one of its counts.
    const sumTaken = (c: number, s: number) => run.decision.hidden.get(c)?.some((k) => sumOf[k] === s) ?? false;
    for (const at of crossed) {
      const c = at % n;
      const s = sumOf[(at - c) / n]!;
      if (sumTaken(c, s)) return false;
      for (const k of sumMembers[s]!) if (cellTaken(k, c)) return false;
    }
    for (const c of toggled) {
      for (let s = 0; s < sums; s++) if (sumTaken(c, s)) return false;
      for (let k = 0; k < K; k++) if (cellTaken(k, c)) return false;
    }
    for (const [at, live, firstPush] of was) {
      if ((this.firstPush.get(at) ?? -1) !== firstPush) return false;
      if (!live && bitAt(this.live, at) && holdsHidden(Math.floor(at / L), at % L)) return false;
    }
    return true;
  }

  /** Whether line (k, l) at `at` can act, and where it starts with one unknown, after its cells' counts or hidden state changed. */
  private lineChanged(at: number): void {
    const { lineTotal, lineStart, lineMembers, memberOfStart, totalOfStart } = this.lattice;
    const { L, n } = this;
    const k = Math.floor(at / L);
    const l = at % L;
    const nonZeroBits = this.nonZeroBits;
    let members = 0;
    let unknowns = 0;
    let unknown = -1;
    for (let i = lineStart[l]!; i < lineStart[l + 1]! && unknowns < 2; i++) {
      const m = lineMembers[i]!;
      if (!bitAt(nonZeroBits, k * n + m)) continue;
      members += 1;
      if (this.cellHidden[m]) ((unknowns += 1), (unknown = m));
    }
    const total = lineTotal[l]!;
    if (this.cellHidden[total]) ((unknowns += 1), (unknown = total));
    markBit(this.live, at, members > 0 && unknowns < 2);
    this.firstPush.delete(at);
    // A run from scratch first touches, cell by cell and category by category, each hidden cell's non-zero counts: the lines it is a member of, then those it is the total of, each in ascending order.
    if (!bitAt(this.live, at) || unknowns !== 1 || !bitAt(nonZeroBits, k * n + unknown)) return;
    const starts = unknown === total ? totalOfStart : memberOfStart;
    const list = unknown === total ? this.lattice.totalOf : this.lattice.memberOf;
    let position = starts[unknown]!;
    while (list[position] !== l) position += 1;
    const before = unknown === total ? memberOfStart[unknown + 1]! - memberOfStart[unknown]! : 0;
    this.firstPush.set(at, (unknown * this.K + k) * this.stride + before + position - starts[unknown]!);
  }

  /**
   * The run, then the outsider's audit of its outcome (count-audit.ts):
   * while the audit pins a hidden count, the published counts it names are
   * hidden from the start and the run is taken again. Each round hides at
   * least one more count, so this ends. `changedCells`: the cells whose
   * counts changed since the last decision.
   */
  private audited(reachedAsBefore: boolean, changedCells: readonly number[]): CountDecision {
    const forced: number[] = [];
    for (let round = 0; ; round++) {
      let decision: CountDecision;
      if (forced.length > 0) decision = this.run(forced);
      else if (reachedAsBefore && this.firstRun && this.firstRunStands(this.firstRun.ties, changedCells)) decision = this.firstRun.decision;
      else {
        decision = this.run(forced, true);
        // Copied out of the shared list, in 16 bits while every cell number fits (a choice's tied cells are fewer than the cells,
        // the categories far fewer than 65,536), else in 32: a list of numbers holds each in 8 bytes and grows by half again.
        const noted = tieList.data.subarray(0, tieList.length);
        this.firstRun = { decision, ties: this.n <= 0x10000 ? Uint16Array.from(noted) : noted.slice() };
      }
      if (decision.wholeCells.length > 0) {
        noteRounds(round);
        return decision;
      }
      const audit = round === 0 ? this.audit : (this.repairAudits[Math.min(round, KEPT_REPAIR_AUDITS) - 1] ??= new CountAudit(this.lattice, this.answers));
      const finding = audit.audit(
        {
          lattice: this.lattice,
          answers: this.answers,
          cellHidden: this.cellHidden,
          countHidden: hiddenCountOf(decision.hidden),
          forcesWhole: (k: number, c: number) => this.forcesWhole(k, c),
          hiddenIn: decision.hidden,
        },
        this.cellsOf(decision),
      );
      if (finding.repairs.length === 0) noteRounds(round + 1);
      if (finding.wholeCells.length > 0 && finding.repairs.length === 0) return { hidden: decision.hidden, wholeCells: finding.wholeCells.slice().sort((a, b) => a - b) };
      if (finding.repairs.length === 0) return decision;
      forced.push(...finding.repairs);
    }
  }

  /**
   * Whether the last run without forced counts is the run for the counts as
   * they are now, given that no count it looked at went to or from 0 and no
   * cell it looked at was hidden or published since (outOfReach). Then
   * every line and sum is met in the same order and
   * every choice's cost is the same (both read only which counts are
   * non-zero and hidden); sizes decide only among the counts tied on cost,
   * so the run is the same when each tie still falls to the count it fell to
   * (a sum makes no choice: it hides all its counts or none).
   * `ties`: per choice on a line, the category, the chosen cell, how many
   * tied, the tied cells.
   *
   * Every decision that follows a change of counts either finds its ties
   * falling as before or takes the run again, so only the ties that read a
   * count of `changedCells` (the cells changed since the last decision) can
   * fall otherwise now: a line's tie reads its tied cells.
   */
  private firstRunStands(ties: Int32Array | Uint16Array, changedCells: readonly number[]): boolean {
    if (changedCells.length === 0) return true;
    const { counts } = this.answers;
    const rank = this.lattice.rank;
    if (changedMarks.length < this.n) changedMarks = new Uint8Array(this.n);
    const marked = changedMarks;
    for (const c of changedCells) marked[c] = 1;
    let stands = true;
    for (let i = 0; i < ties.length && stands; ) {
      const k = ties[i]!;
      const chosen = ties[i + 1]!;
      const from = i + 3;
      const to = from + ties[i + 2]!;
      i = to;
      let touched = false;
      for (let j = from; j < to && !touched; j++) touched = marked[ties[j]!] === 1;
      if (!touched) continue;
      const count = counts[k]!;
      let best = -1;
      for (let j = from; j < to; j++) {
        const m = ties[j]!;
        if (best < 0 || count[m]! < count[best]! || (count[m] === count[best] && rank[m]! < rank[best]!)) best = m;
      }
      stands = best === chosen;
    }
    for (const c of changedCells) marked[c] = 0;
    return stands;
  }

  /** The cells where a decision hides counts, listed once per decision (a decision that stands is audited again after every change). */
  private cellsOf(decision: CountDecision): Int32Array {
    if (this.listed?.decision !== decision) {
      const cells = new Int32Array(decision.hidden.size);
      let i = 0;
      for (const c of decision.hidden.keys()) cells[i++] = c;
      this.listed = { decision, cells };
    }
    return this.listed.cells;
  }

  /**
   * Whether hiding category k's count in published cell c leaves an
   * outsider its value: its sum has no other non-zero count, and no other
   * category whose 0, hidden with it, is an unknown (zeroProtects). Such a
   * cell is hidden whole instead.
   */
  private forcesWhole(k: number, c: number): boolean {
    const { counts, sumOf, openSum } = this.answers;
    const s = sumOf[k]!;
    // A 0 whose zeros do not protect is no count to hide (the audit names none).
    if (counts[k]![c]! <= 0 && !this.zeroProtectsAt(c)) return true;
    if (s === openSum || this.nonZeroInSum[c * this.sums + s]! - (counts[k]![c]! > 0 ? 1 : 0) > 0) return false;
    return !(counts[k]![c]! > 0 && this.sumMembers[s]!.length > 1 && this.zeroProtects(k) && this.zeroProtectsAt(c));
  }

  /**
   * Whether zeros hidden in cell c can protect: only in the overall cell and
   * its groups of one dimension (the members of its lines). Zeros hidden
   * anywhere let the rule lean on zeros that chains of lines give back
   * (a finer group's 0 under a published 0, and so on); the audit knocked
   * them down one repair round at a time, and each repair (a 0 hidden with
   * its sum) gave the rule new zeros to lean on: up to 87 rounds a decision
   * at 5,000 responses, 18 s of CPU for a page after a response where 0.6 s
   * had been, with no better protection of the overall indicators, the
   * figures this was for.
   */
  private zeroProtectsAt(c: number): boolean {
    return this.nearTopGroups().marked[c] === 1;
  }

  /** The overall cell and one dimension's groups (nearTopMade), made when first asked. */
  private nearTopGroups(): { marked: Uint8Array; groups: Int32Array } {
    if (this.nearTopMade) return this.nearTopMade;
    const marked = new Uint8Array(this.n);
    const { totalOfStart, totalOf, lineStart, lineMembers } = this.lattice;
    const listed: number[] = [];
    if (this.top >= 0) {
      marked[this.top] = 1;
      for (let i = totalOfStart[this.top]!; i < totalOfStart[this.top + 1]!; i++) {
        const l = totalOf[i]!;
        for (let j = lineStart[l]!; j < lineStart[l + 1]!; j++) if (!marked[lineMembers[j]!]) ((marked[lineMembers[j]!] = 1), listed.push(lineMembers[j]!));
      }
    }
    return (this.nearTopMade = { marked, groups: Int32Array.from(listed) });
  }

  /**
   * Whether cell c's hidden zeros can be unknown to an outsider: someone
   * answered the question there (its respondents, else its counts), and,
   * for a group of one dimension, its respondents are not exactly those of
   * a group of another dimension (sameRespondentsAsAnotherGroup). Respondents
   * who give no size, no Erasmus+ status and no location are the same
   * respondents in three "not given" groups, and the lines through the empty
   * groups beside them tie those groups' counts to each other, so their zeros
   * come back: leaning on them, the run left counts that the audit pinned
   * again after every response, and each decision audited seventeen questions
   * from scratch (README, "Bound: another process's response").
   */
  private answeredAt(c: number): number {
    const { respondents, counts } = this.answers;
    if (respondents) return respondents[c]! > 0 && !(c !== this.top && this.zeroProtectsAt(c) && this.sameRespondentsAsAnotherGroup(c)) ? 1 : 0;
    for (const count of counts) if (count[c]! > 0) return 1;
    return 0;
  }

  /**
   * Whether group c (of one dimension) holds exactly the question's
   * respondents of a group of another dimension: all of c's are in one cell
   * of a line c is the total of (c by that dimension), and that cell holds
   * all of the other group's (the total of another of its lines).
   */
  private sameRespondentsAsAnotherGroup(c: number): boolean {
    const respondents = this.answers.respondents!;
    const r = respondents[c]!;
    // Mostly no other group has as many: then none holds the same respondents, and no line need be read.
    const { groups } = this.nearTopGroups();
    let alike = false;
    for (let i = 0; i < groups.length && !alike; i++) alike = groups[i] !== c && respondents[groups[i]!] === r;
    if (!alike) return false;
    const { totalOfStart, totalOf, lineStart, lineMembers, lineTotal, memberOfStart, memberOf } = this.lattice;
    for (let i = totalOfStart[c]!; i < totalOfStart[c + 1]!; i++) {
      const l = totalOf[i]!;
      let only = -1;
      for (let j = lineStart[l]!; j < lineStart[l + 1]! && only !== -2; j++) {
        const m = lineMembers[j]!;
        if (respondents[m]! > 0) only = only === -1 ? m : -2;
      }
      if (only < 0 || respondents[only] !== r) continue;
      for (let j = memberOfStart[only]!; j < memberOfStart[only + 1]!; j++) {
        const t = lineTotal[memberOf[j]!]!;
        if (t !== c && t !== this.top && this.zeroProtectsAt(t) && respondents[t] === r) return true;
      }
    }
    return false;
  }

  /**
   * Whether category k's zeros can protect once hidden: a valid answer's
   * count of 0, hidden in a cell where the question has answers, is unknown
   * to an outsider (as in the audit). A "don't know" of 0 stays known (the
   * line rule's premise for "don't know": see the README), and so does a
   * count the views list (a group's number of responses), which is 0 only
   * where the cell is empty.
   */
  private zeroProtects(k: number): boolean {
    return this.answers.sumOf[k] !== this.answers.openSum && !this.answers.listed;
  }

  /** The most members a line of the lattice has. */
  private longestLine(): number {
    if (this.longest < 0) {
      const { lineStart } = this.lattice;
      this.longest = 0;
      for (let l = 0; l < this.L; l++) this.longest = Math.max(this.longest, lineStart[l + 1]! - lineStart[l]!);
    }
    return this.longest;
  }

  /**
   * The question's splits as bit masks, for what hiding a count withholds
   * (the run's newlyWithheld): the splits of two sides, and per category its
   * side of each as a bit; the splits of more sides listed apart. None when
   * there are none or more than 31 splits (each split is then looked at in
   * turn).
   */
  private splitMasks(): { twoSided: number; side: Int32Array; wider: number[] } | undefined {
    if (this.masks !== undefined) return this.masks ?? undefined;
    const sides = this.answers.sides ?? [];
    if (sides.length === 0 || sides.length > 31) {
      this.masks = null;
      return undefined;
    }
    const side = new Int32Array(this.K);
    let twoSided = 0;
    const wider: number[] = [];
    sides.forEach((split, s) => {
      if (split.every((v) => v === 0 || v === 1)) {
        twoSided |= 1 << s;
        for (let k = 0; k < this.K; k++) side[k]! |= (split[k] ?? 0) << s;
      } else wider.push(s);
    });
    return (this.masks = { twoSided, side, wider });
  }

  /** The run over the lines that can act, from the unit's hidden cells and the counts `forced` hidden (at k × n + c), in the order of a run from scratch; with `ties`, its choices decided by sizes are noted in tieList (see firstRunStands). */
  private run(forced: readonly number[] = [], ties = false): CountDecision {
    tieList.length = 0;
    const { lineTotal, lineStart, lineMembers, memberOfStart, memberOf, totalOfStart, totalOf, rank } = this.lattice;
    const { counts, sumOf, openSum } = this.answers;
    const { K, L, n, sums, sumMembers, cellHidden, live } = this;
    const sides = this.answers.sides ?? [];
    const splits = sides.length;
    const { hiddenAt, hiddenInSum, sideState, sideOf, oneSide, sideBits, metSplits, queued, queue, openCells, openCosts, cellListed, cellList } = runBuffers(K * n, n, n * sums, n * splits, K * L + n * sums, this.longestLine());
    const masks = this.splitMasks();
    const nonZeroInSum = this.nonZeroInSum;
    const whole = new Set<number>();
    // The cells where a count is hidden, each once, in the order met.
    let cellsListed = 0;
    /** Whether hiding category k's count in cell c leaves its sum with no other non-zero count to hide beside it. */
    const forcesWhole = (k: number, c: number) => this.forcesWhole(k, c);

    /**
     * The figures of published cell c that hiding category k's count there
     * would withhold beyond those withheld already: its indicators' values
     * and its top-two share, each a weighted sum of the counts, give a hidden
     * count away where the cell's hidden counts lie on both sides of its split.
     */
    const newlyWithheld = (k: number, c: number) => {
      if (sumOf[k] === openSum) return 0;
      if (masks) {
        // Splits of two sides as bits: those with the cell's hidden counts on one side that k's count lies across, then the others one by one.
        const open = oneSide[c]!;
        if (open === 0) return 0;
        let lost = bitCount(open & masks.twoSided & (masks.side[k]! ^ sideBits[c]!));
        for (const s of masks.wider) if ((open >>> s) & 1 && sides[s]![k] !== sideOf[c * splits + s]) lost += 1;
        return lost;
      }
      let lost = 0;
      for (let s = 0; s < splits; s++) if (sideState[c * splits + s] === 1 && sides[s]![k] !== sideOf[c * splits + s]) lost += 1;
      return lost;
    };
    /** What hiding category k's count in published cell c costs beyond itself: figures withheld first, then whether its sum has no hidden count yet (hiding one then hides all its counts). */
    const costOf = (k: number, c: number) => {
      const partners = hiddenInSum[c * sums + sumOf[k]!]! - (hiddenAt[k * n + c] && counts[k]![c]! > 0 ? 1 : 0);
      return 2 * newlyWithheld(k, c) + (partners > 0 || sumOf[k] === openSum ? 0 : 1);
    };

    /**
     * Whether category k's 0 in published cell c, hidden, stays unknown along
     * the lines c is the total of: each has a member that answered whose
     * count is hidden there. Where one has none, its members' published
     * zeros give c's 0 back, and the audit would name another count.
     */
    const openBelow = (k: number, c: number) => {
      for (let i = totalOfStart[c]!; i < totalOfStart[c + 1]!; i++) {
        const l = totalOf[i]!;
        let open = false;
        for (let j = lineStart[l]!; j < lineStart[l + 1]! && !open; j++) {
          const m = lineMembers[j]!;
          open = this.answered[m] === 1 && (cellHidden[m] === 1 || hiddenAt[k * n + m] === 1);
        }
        if (!open) return false;
      }
      return true;
    };

    // Constraints: (category, line) at k × L + l, then (cell, sum) at K × L + c × sums + s; each queued at most once at a time.
    const lineConstraints = K * L;
    const capacity = queue.length;
    let head = 0;
    let tail = 0;
    const push = (at: number) => {
      if (queued[at]) return;
      queued[at] = 1;
      queue[tail] = at;
      tail = tail + 1 === capacity ? 0 : tail + 1;
    };
    // The lines that start with one unknown, in the order of their first push: by key (cell, category, place among the cell's lines), sorted as numbers.
    const seeds = new Int32Array(this.firstPush.size);
    let i = 0;
    for (const key of this.firstPush.values()) seeds[i++] = key;
    for (const key of seeds.sort()) {
      const place = key % this.stride;
      const k = ((key - place) / this.stride) % K;
      const c = ((key - place) / this.stride - k) / K;
      const members = memberOfStart[c + 1]! - memberOfStart[c]!;
      push(k * L + (place < members ? memberOf[memberOfStart[c]! + place]! : totalOf[totalOfStart[c]! + place - members]!));
    }
    const touch = (k: number, c: number) => {
      const base = k * L;
      for (let i = memberOfStart[c]!; i < memberOfStart[c + 1]!; i++) if (bitAt(live, base + memberOf[i]!)) push(base + memberOf[i]!);
      for (let i = totalOfStart[c]!; i < totalOfStart[c + 1]!; i++) if (bitAt(live, base + totalOf[i]!)) push(base + totalOf[i]!);
    };
    const hide = (k: number, c: number) => {
      const open = sumOf[k] === openSum;
      if (!hiddenAt[k * n + c] && counts[k]![c]! > 0) hiddenInSum[c * sums + sumOf[k]!]! += 1;
      if (!hiddenAt[k * n + c] && counts[k]![c]! > 0 && !open) {
        if (masks) {
          // Splits of two sides as bits: first met here (one side, k's), or met on the other side (both).
          const side = masks.side[k]!;
          const across = oneSide[c]! & masks.twoSided & (side ^ sideBits[c]!);
          const first = masks.twoSided & ~metSplits[c]!;
          metSplits[c]! |= first;
          sideBits[c]! |= side & first;
          oneSide[c] = (oneSide[c]! | first) & ~across;
          for (const s of masks.wider) {
            const at = c * splits + s;
            if (sideState[at] === 0) ((sideState[at] = 1), (sideOf[at] = sides[s]![k]!), (oneSide[c]! |= 1 << s));
            else if (sideState[at] === 1 && sideOf[at] !== sides[s]![k]) ((sideState[at] = 2), (oneSide[c]! &= ~(1 << s)));
          }
        } else {
          for (let s = 0; s < splits; s++) {
            const at = c * splits + s;
            if (sideState[at] === 0) ((sideState[at] = 1), (sideOf[at] = sides[s]![k]!));
            else if (sideState[at] === 1 && sideOf[at] !== sides[s]![k]) sideState[at] = 2;
          }
        }
      }
      hiddenAt[k * n + c] = 1;
      if (!cellListed[c]) ((cellListed[c] = 1), (cellList[cellsListed++] = c));
      touch(k, c);
      if (!open) push(lineConstraints + c * sums + sumOf[k]!);
    };

    // A 0 hides nothing alone: a 0 chosen to protect goes with the rest of its sum.
    const hideWithSum = (k: number, c: number) => {
      hide(k, c);
      if (counts[k]![c]! <= 0) for (const j of sumMembers[sumOf[k]!]!) if (!hiddenAt[j * n + c]) hide(j, c);
    };

    for (const at of forced) hideWithSum(Math.floor(at / n), at % n);
    while (head !== tail) {
      const at = queue[head]!;
      head = head + 1 === capacity ? 0 : head + 1;
      queued[at] = 0;
      if (at < lineConstraints) {
        const k = Math.floor(at / L);
        const l = at - k * L;
        const count = counts[k]!;
        const kn = k * n;
        const from = lineStart[l]!;
        const to = lineStart[l + 1]!;
        const total = lineTotal[l]!;
        const totalHidden = cellHidden[total]! | hiddenAt[kn + total]!;
        // It acts only with a non-zero member and exactly one unknown (a hidden non-zero member or the total): a second one ends the scan.
        let nonZero = 0;
        let unknowns = totalHidden;
        // Zeros protect on the overall cell's lines only (zeroProtectsAt: its members are the cells where they can).
        const zeroProtects = total === this.top && this.zeroProtects(k);
        const answered = this.answered;
        for (let i = from; i < to && unknowns < 2; i++) {
          const m = lineMembers[i]!;
          if (count[m]! <= 0) {
            // A 0 hidden with the rest of its sum in a published cell that has answers: unknown, like any hidden count; so is a hidden
            // group's that answered.
            if (zeroProtects && answered[m]) unknowns += hiddenAt[kn + m]! | cellHidden[m]!;
            continue;
          }
          nonZero += 1;
          unknowns += cellHidden[m]! | hiddenAt[kn + m]!;
        }
        if (nonZero === 0 || unknowns !== 1) continue;
        // A published member whose cell can lose this count alone (else the total, else a member whose cell must go whole): the one where it costs least, then the smallest.
        // Each one's cost is noted as it is weighed, for the ties below.
        let best = -1;
        let bestWhole = true;
        let bestCost = 0;
        let open = 0;
        let zero = -1;
        let zeroCost = 0;
        for (let i = from; i < to; i++) {
          const m = lineMembers[i]!;
          if (cellHidden[m] || hiddenAt[kn + m]) continue;
          if (count[m]! <= 0) {
            // A published 0 of a group whose sum has other answers: hidden with them, it is unknown, and protects (ahead of the total).
            if (!zeroProtects || !answered[m] || nonZeroInSum[m * sums + sumOf[k]!]! === 0) continue;
            // First a 0 that stays unknown below it too (openBelow), then where it costs least.
            const mCost = costOf(k, m) + (openBelow(k, m) ? 0 : ZERO_SHUT);
            if (zero < 0 || mCost < zeroCost || (mCost === zeroCost && rank[m]! < rank[zero]!)) ((zero = m), (zeroCost = mCost));
            continue;
          }
          const mWhole = forcesWhole(k, m);
          const mCost = costOf(k, m);
          openCells[open] = m;
          openCosts[open++] = mWhole ? ~mCost : mCost;
          if (best < 0 || (bestWhole && !mWhole) || (bestWhole === mWhole && (mCost < bestCost || (mCost === bestCost && (count[m]! < count[best]! || (count[m] === count[best] && rank[m]! < rank[best]!)))))) {
            best = m;
            bestWhole = mWhole;
            bestCost = mCost;
          }
        }
        if (zero >= 0 && (best < 0 || bestWhole)) best = zero;
        else if (!totalHidden && (best < 0 || (bestWhole && !forcesWhole(k, total)))) best = total;
        else if (ties) {
          // The members as cheap as the chosen one (same cost, same need to go whole), in line order, when there are two or more.
          const cost = bestWhole ? ~bestCost : bestCost;
          let tied = 0;
          for (let j = 0; j < open; j++) if (openCosts[j] === cost) tied += 1;
          if (tied > 1) {
            noteTie(k);
            noteTie(best);
            noteTie(tied);
            for (let j = 0; j < open; j++) if (openCosts[j] === cost) noteTie(openCells[j]!);
          }
        }
        hideWithSum(k, best);
      } else {
        const c = Math.floor((at - lineConstraints) / sums);
        const s = (at - lineConstraints) % sums;
        if (cellHidden[c] || hiddenInSum[c * sums + s] === 0) continue;
        // All of the sum's counts, zeros too, or none: the same hidden categories in every split (module comment).
        // Where zeros protect (zeroProtects), the sum's zeros hidden beside its one hidden count are unknowns: that count is then not the whole sum.
        let other = sumMembers[s]!.length > 1 && this.zeroProtects(sumMembers[s]![0]!) && this.zeroProtectsAt(c);
        for (const k of sumMembers[s]!) {
          if (other) break;
          other = counts[k]![c]! > 0 && !hiddenAt[k * n + c];
        }
        if (!other && hiddenInSum[c * sums + s] === 1) whole.add(c);
        else for (const k of sumMembers[s]!) if (!hiddenAt[k * n + c]) hide(k, c);
      }
    }
    // By cell in ascending order, then category: the cells listed, sorted, each read across its categories and its buffers cleared once.
    // (Sorting every hidden count as c × K + k took a tenth of a run: a hidden cell mostly hides a whole sum, so the cells are far fewer.)
    const hidden = new Map<number, readonly number[]>();
    for (const c of cellList.subarray(0, cellsListed).sort()) {
      cellListed[c] = 0;
      const list = sharedLists.start();
      for (let k = 0; k < K; k++) {
        if (!hiddenAt[k * n + c]) continue;
        hiddenAt[k * n + c] = 0;
        list.add(k);
      }
      hiddenInSum.fill(0, c * sums, (c + 1) * sums);
      sideState.fill(0, c * splits, (c + 1) * splits);
      oneSide[c] = 0;
      sideBits[c] = 0;
      metSplits[c] = 0;
      hidden.set(c, list.shared());
    }
    return { hidden, wholeCells: [...whole].sort((a, b) => a - b) };
  }
}

/**
 * The buffers of a run (CountSuppression.run), one set that every question's
 * run uses: a run leaves them clear and runs never overlap (a run is one
 * synchronous call). Kept per question they were about a fifth of the
 * decision's bytes (bench:evidence:memory).
 *
 * hiddenAt: the counts hidden so far (at k × n + c). hiddenInSum: per (cell,
 * sum) at c × sums + s, the non-zero counts hidden there so far; sideState:
 * per (cell, split) at c × splits + s, whether those lie on no side (0), one
 * side (1, sideOf holding it) or both (2); per cell, the same as bits
 * (CountSuppression splitMasks): oneSide, the splits in state 1,
 * metSplits, the splits of two sides not in state 0, and sideBits, their
 * side (sideState and sideOf then hold only the splits of more sides). What choosing a count costs
 * reads them instead of every category of the cell. queue: the constraints to look
 * at, a ring in which each is at most once at a time (queued). cellList: the
 * cells where a count is hidden so far, each once (cellListed).
 */
const buffers = {
  hiddenAt: new Uint8Array(0),
  hiddenInSum: new Int32Array(0),
  sideState: new Uint8Array(0),
  sideOf: new Int32Array(0),
  oneSide: new Int32Array(0),
  sideBits: new Int32Array(0),
  metSplits: new Int32Array(0),
  queued: new Uint8Array(0),
  queue: new Int32Array(0),
  openCells: new Int32Array(0),
  openCosts: new Int32Array(0),
  cellListed: new Uint8Array(0),
  cellList: new Int32Array(0),
};

/** The run's buffers, clear, with room for `counts` counts, `cells` cells, `cellSums` (cell, sum) and `cellSplits` (cell, split) pairs, `constraints` constraints and a line of `members` members (openCells, openCosts: a line's published members as weighed, with their costs). */
function runBuffers(counts: number, cells: number, cellSums: number, cellSplits: number, constraints: number, members: number): typeof buffers {
  if (buffers.openCells.length < members) {
    buffers.openCells = new Int32Array(members);
    buffers.openCosts = new Int32Array(members);
  }
  if (buffers.oneSide.length < cells) {
    buffers.oneSide = new Int32Array(cells);
    buffers.sideBits = new Int32Array(cells);
    buffers.metSplits = new Int32Array(cells);
    buffers.cellListed = new Uint8Array(cells);
    buffers.cellList = new Int32Array(cells);
  }
  if (buffers.hiddenAt.length < counts) buffers.hiddenAt = new Uint8Array(counts);
  if (buffers.hiddenInSum.length < cellSums) buffers.hiddenInSum = new Int32Array(cellSums);
  if (buffers.sideState.length < cellSplits) {
    buffers.sideState = new Uint8Array(cellSplits);
    buffers.sideOf = new Int32Array(cellSplits);
  }
  if (buffers.queued.length < constraints) {
    buffers.queued = new Uint8Array(constraints);
    buffers.queue = new Int32Array(constraints + 1);
  }
  return buffers;
}

function sameDecision(a: CountDecision, b: CountDecision): boolean {
  if (a === b) return true;
  if (a.hidden.size !== b.hidden.size || !sameList(a.wholeCells, b.wholeCells)) return false;
  // By key, then a look-up: an entry of the map's own iterator is an array made for it, ~0.6 MB a page at 50,000.
  for (const c of a.hidden.keys()) {
    const other = b.hidden.get(c);
    if (!other || !sameList(a.hidden.get(c), other)) return false;
  }
  return true;
}

/**
 * One unit's decision over a lattice given by cell ids (the reference
 * engine's): its hidden cells (hiddenCells), then its questions' hidden
 * answer counts; a cell whose counts cannot be protected otherwise is hidden
 * whole, and both steps are taken again.
 */
export function unitDecision(
  ids: readonly string[],
  lines: readonly Line[],
  index: LineIndex,
  figures: readonly Figure[],
  questions: readonly AnswerCounts[],
  /** Cells hidden beside the primary ones from the start (indicator.service.ts sameSizeRounds). */
  forced: ReadonlySet<string> = new Set(),
): { hidden: Set<string>; counts: CountDecision[] } {
  const whole = new Set<string>(forced);
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

/** The ties a run notes (CountSuppression.run), shared by every run and copied out after it: as a list of numbers they were a good part of a run's garbage. */
const tieList = { data: new Int32Array(4096), length: 0 };

function noteTie(value: number): void {
  if (tieList.length === tieList.data.length) {
    const grown = new Int32Array(2 * tieList.data.length);
    grown.set(tieList.data);
    tieList.data = grown;
  }
  tieList.data[tieList.length++] = value;
}

/** Repair rounds with an audit of their own (CountSuppression.repairAudits); later rounds share the last: each is a copy of the question's bounds. */
const KEPT_REPAIR_AUDITS = 2;

/**
 * The audited runs of the count decisions taken in this process (rounds: a
 * run and its audit; most: the most one decision took), for the benchmarks
 * and for the test that keeps them few: each round is an audit, mostly from
 * scratch, so their number is what a decision costs.
 */
export const repairRounds = { decisions: 0, rounds: 0, most: 0 };

function noteRounds(rounds: number): void {
  repairRounds.decisions += 1;
  repairRounds.rounds += rounds;
  repairRounds.most = Math.max(repairRounds.most, rounds);
}

/** What a published 0 that its own lines give back adds to its cost as a protector: more than any cost of hiding a count (two per figure withheld, one more for a new sum). */
const ZERO_SHUT = 1 << 20;

/** Marks of the cells changed since the last decision, shared (firstRunStands, one at a time, leaves them clear). */
let changedMarks = new Uint8Array(0);

/**
 * The lists of hidden categories that decisions hand out (CountDecision.hidden),
 * one array for every cell, question and step that hides the same categories:
 * a decision lists thousands of cells, mostly alike (a whole sum, a category
 * beside its "don't know"), and the kept decisions' arrays, one a cell, were
 * ~350 bytes a response of the state at 50,000. A list is never changed once
 * handed out, so sharing it is safe, and a list the next decision hides again
 * is the same array (sameList compares it at once). Lists stay shared while
 * fewer than SHARED_LISTS_HELD are held; past that the table starts again
 * (lists handed out stay as they are).
 */
class SharedLists {
  private readonly byHash = new Map<number, Array<readonly number[]>>();
  private held = 0;
  private readonly scratch: number[] = [];
  private length = 0;
  private hash = 0;

  /** A list to build (add in ascending order, then shared): one at a time. */
  start(): this {
    this.length = 0;
    this.hash = 0;
    return this;
  }

  add(k: number): void {
    this.scratch[this.length++] = k;
    this.hash = (Math.imul(this.hash, 31) + k + 1) | 0;
  }

  /** The array every list with the same categories is given. */
  shared(): readonly number[] {
    const { scratch, length, hash } = this;
    let bucket = this.byHash.get(hash);
    for (const list of bucket ?? []) {
      if (list.length !== length) continue;
      let same = true;
      for (let i = 0; i < length && same; i++) same = list[i] === scratch[i];
      if (same) return list;
    }
    if (this.held >= SHARED_LISTS_HELD) {
      this.byHash.clear();
      this.held = 0;
      bucket = undefined;
    }
    // Frozen: a change to a shared list would throw rather than change other cells' decisions.
    const list = Object.freeze(scratch.slice(0, length));
    if (bucket) bucket.push(list);
    else this.byHash.set(hash, [list]);
    this.held += 1;
    return list;
  }
}

const SHARED_LISTS_HELD = 1 << 16;
const sharedLists = new SharedLists();

/**
 * Whether a decision hides category k's count in published cell c, from its
 * lists by cell: the audit asks a cell's categories in turn, so the cell's
 * list is looked up once for them.
 */
function hiddenCountOf(hidden: ReadonlyMap<number, readonly number[]>): (k: number, c: number) => boolean {
  let cell = -1;
  let list: readonly number[] | undefined;
  return (k, c) => {
    if (c !== cell) ((cell = c), (list = hidden.get(c)));
    return list !== undefined && list.includes(k);
  };
}

/** The number of bits set in a 32-bit integer. */
function bitCount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}
