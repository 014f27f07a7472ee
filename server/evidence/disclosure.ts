import type { Population } from './evidence-tally.ts';

/**
 * Disclosure control: one decision per cell of a campaign, shared by every
 * figure that is computed from the same answers.
 *
 * Cells. Every figure a view shows is a cell of one of the campaign's tables:
 * the table over no dimension (overall), over each dimension, and over each
 * combination of up to MAX_VIEW_DIMENSIONS dimensions. A filter (country = AT)
 * is a slice of such a table, never a table of its own. The tables nest in
 * lines: the cells of a table that differ in one dimension only add up to a
 * cell of the table without that dimension (their total).
 *
 * Units. Figures that can be computed from each other's published parts share
 * one decision: an indicator and the questions it is computed from (the
 * indicator table's valid answers and the question table's distribution of
 * the same answers) form a unit, and a cell of a unit is published or hidden
 * for all its figures together, in every page, chart, JSON and export.
 * A question everyone answers (S1.3) and the number of responses are two
 * units, decided together in the cells where their sizes are equal
 * (indicator.service.ts sameSizeRounds).
 *
 * Primary suppression: a unit's cell is hidden when one of its figures has
 * answers there from fewer than `minInstitutions` institutions or
 * `minRespondents` respondents (the people behind that figure: valid answers
 * for an indicator, every answer, "don't know" included, for a distribution).
 *
 * Secondary suppression, per figure and line: a cell where the figure has no
 * answers at all (routing made it empty, or nobody of that group answered) is
 * known to be zero, so it never protects. On every line, counting only the
 * cells with answers and the total, exactly one hidden one could be recomputed
 * as the total minus the others: then the smallest published cell with
 * answers is hidden too, or, when there is none, the total. Repeated over
 * every figure, line and table until nothing changes, so the decision does
 * not depend on which view asks for it.
 */
export interface Thresholds {
  minInstitutions: number;
  minRespondents: number;
  /**
   * The protection width: the narrowest range (upper − lower bound) an
   * outsider may derive for a hidden count that is not 0, and for a hidden
   * group's number of responses (count-audit.ts). 1 when absent: no such
   * count is pinned to one value.
   */
  minRange?: number;
  /**
   * Whether a single answer's and a number's "don't know" count is
   * protected as one more answer category (count-suppression.ts
   * AnswerCounts.openSum): hidden in a published cell with the cell's
   * respondents, the valid answers and what is computed from them still
   * shown. True when absent.
   */
  dontKnowCounts?: boolean;
  /**
   * Open quantities up to which a question's answer counts are also audited
   * by the equality steps, a system beyond their elimination budget solved
   * as a linear program (count-equalities.ts linearPins): AnswerCounts.solveUnknowns.
   * 0 when absent: answer counts by propagation only.
   */
  solveUnknowns?: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = Object.freeze({ minInstitutions: 5, minRespondents: 10, minRange: 1 });

/** A thresholds' protection width (Thresholds.minRange). */
export const minRangeOf = (t: Thresholds) => t.minRange ?? 1;

/** A thresholds' open quantities up to which answer counts are solved (Thresholds.solveUnknowns). */
export const solveUnknownsOf = (t: Thresholds) => t.solveUnknowns ?? 0;

/** Whether a thresholds' decision protects single answers' and numbers' "don't know" counts (Thresholds.dontKnowCounts). */
export const dontKnowCountsOf = (t: Thresholds) => t.dontKnowCounts ?? true;

/** Filters and breakdown together reach at most this many dimensions: the tables protected as one. */
export const MAX_VIEW_DIMENSIONS = 3;

/** A published cell: its figures, or only the fact that it is suppressed. */
export type Cell<T> = ({ suppressed: false } & Omit<{ respondents: number }, keyof T> & T) | { suppressed: true };

/** A single answer count hidden inside a published cell (count-suppression.ts), as pages and exports show it. */
export const SUPPRESSED_COUNT = '–';

/** Why a published cell shows some of its figures as suppressed. */
export const WITHHELD_NOTE = 'some answer counts suppressed, and the figures that would give them back';

/**
 * A published cell's indicator value withheld (its n shown), as a page's
 * table shows it: short, with WITHHELD_CELL_NOTE under the table and
 * WITHHELD_NOTE as the cell's title. The whole note in every such cell made
 * a column of a table by country 800 px wide.
 */
export const WITHHELD_CELL = 'value withheld';
export const WITHHELD_CELL_NOTE = `"${WITHHELD_CELL}": some of the group's answer counts are suppressed, and so are the figures that would give them back (n is shown)`;

/** Why a published cell shows its "don't know" count and respondents as suppressed (count-suppression.ts AnswerCounts.openSum). */
export const DONT_KNOW_WITHHELD_NOTE = "respondents and don't know suppressed";

/**
 * Why a breakdown lists fewer groups than exist. A group whose number of
 * responses is hidden and that publishes no other figure is left out of
 * every view (indicator.service.ts buildTablesFrom): listed, even as
 * suppressed, it would say that the group has a response, and on sparse data
 * those lower bounds together give back hidden numbers (README, "That a
 * group exists is not published").
 */
export const UNLISTED_GROUPS_NOTE = 'groups whose number of responses is suppressed are not listed';

export function suppressionNote(t: Thresholds): string {
  return `suppressed (fewer than ${t.minInstitutions} institutions or ${t.minRespondents} respondents)`;
}

/**
 * A number of responses as pages show it. A hidden count says neither its
 * number nor whether it was too small or hidden as another's complement.
 */
export function countText(responses: number | null, _t: Thresholds): string {
  return responses === null ? 'a suppressed number of' : String(responses);
}

export function isTooSmall(populations: readonly Population[], t: Thresholds): boolean {
  if (populations.length === 0) return true;
  return populations.some((p) => p.respondents < t.minRespondents || p.institutions.size < t.minInstitutions);
}

/** Cells (ids across all tables) that add up to a total cell. */
export interface Line {
  total: string;
  members: readonly string[];
}

/** One figure of a unit: per cell, how many respondents it has there (0: known empty) and whether they are too few. */
export interface Figure {
  size(cell: string): number;
  tooSmall(cell: string): boolean;
}

/**
 * The hidden cells of one unit: primary suppression, then secondary
 * suppression to a fixed point (see the module comment). Cells where no
 * figure has answers are hidden too (there is nothing to show), but they are
 * never counted as protecting another cell. `secondary: false` leaves the
 * second step out: only the audit test uses it, to show what it catches.
 * `whole` are cells hidden beside the primary ones: those that suppression
 * of single answer counts (count-suppression.ts) could not protect otherwise.
 */
export function hiddenCells(cells: readonly string[], lines: readonly Line[], figures: readonly Figure[], options: { secondary?: boolean; whole?: ReadonlySet<string> } = {}): Set<string> {
  const sizes = figures.map((figure) => new Map(cells.map((cell) => [cell, figure.size(cell)])));
  const hidden = new Set<string>(options.whole);
  for (const cell of cells) {
    const withData = figures.filter((_, i) => sizes[i]!.get(cell)! > 0);
    if (withData.length === 0 || withData.some((figure) => figure.tooSmall(cell))) hidden.add(cell);
  }
  if (options.secondary === false) return hidden;
  // Per figure, its lines restricted to the cells where it has answers.
  const figureLines = sizes.map((size) =>
    lines.map((line) => ({ total: line.total, members: line.members.filter((m) => (size.get(m) ?? 0) > 0) })).filter((line) => line.members.length > 0),
  );
  for (let changed = true; changed; ) {
    changed = false;
    figureLines.forEach((own, i) => {
      const size = sizes[i]!;
      for (const line of own) {
        let unknowns = hidden.has(line.total) ? 1 : 0;
        let smallest: string | undefined;
        for (const m of line.members) {
          if (hidden.has(m)) unknowns += 1;
          else if (smallest === undefined || size.get(m)! < size.get(smallest)! || (size.get(m) === size.get(smallest) && m < smallest)) smallest = m;
        }
        if (unknowns !== 1) continue;
        hidden.add(smallest ?? line.total);
        changed = true;
      }
    });
  }
  return hidden;
}
