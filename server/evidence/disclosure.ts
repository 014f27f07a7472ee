import type { Population } from './evidence-tally.ts';

/**
 * Disclosure control. A cell whose answers come from fewer than
 * `minInstitutions` institutions or `minRespondents` respondents is
 * suppressed (primary suppression). So that a suppressed cell cannot be
 * recomputed from a published total, every line of cells that adds up to a
 * total (the groups of a breakdown; the rows and columns of a cross-tab) never
 * has exactly one unknown, counting a suppressed total as one: the smallest
 * other cell is suppressed too (secondary suppression), repeatedly until no
 * line has a single one. Which tables exist and how they nest is
 * indicator.service.ts's business (protectedCells).
 */
export interface Thresholds {
  minInstitutions: number;
  minRespondents: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = Object.freeze({ minInstitutions: 5, minRespondents: 10 });

/** A published cell: its figures, or only the fact that it is suppressed. */
export type Cell<T> = ({ suppressed: false; respondents: number } & T) | { suppressed: true };

export function suppressionNote(t: Thresholds): string {
  return `suppressed (fewer than ${t.minInstitutions} institutions or ${t.minRespondents} respondents)`;
}

/** A number of responses as pages show it: a hidden count says how small it is, never which number. */
export function countText(responses: number | null, t: Thresholds): string {
  return responses === null ? `fewer than ${t.minRespondents}` : String(responses);
}

export function isTooSmall(populations: readonly Population[], t: Thresholds): boolean {
  if (populations.length === 0) return true;
  return populations.some((p) => p.respondents < t.minRespondents || p.institutions.size < t.minInstitutions);
}

interface Candidate {
  key: string;
  respondents: number;
  suppressed: boolean;
}

/** Cells that add up to a total published elsewhere (a cell of a coarser table), and whether that total is suppressed. */
export interface Line {
  members: readonly string[];
  totalSuppressed?: boolean;
}

/**
 * Secondary suppression over lines of cell keys. Returns the keys to suppress
 * in addition to the primary ones. `cells` holds every published cell with its
 * size and whether it is already suppressed. A line whose total is suppressed
 * counts that total as one unknown: with every member shown the total could be
 * recomputed, so one member is suppressed too.
 */
export function complementaryKeys(cells: ReadonlyMap<string, { respondents: number; suppressed: boolean }>, lines: readonly Line[]): Set<string> {
  const state = new Map<string, Candidate>([...cells].map(([key, c]) => [key, { key, respondents: c.respondents, suppressed: c.suppressed }]));
  const added = new Set<string>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const line of lines) {
      const members = line.members.map((key) => state.get(key)).filter((c): c is Candidate => c !== undefined);
      const unknowns = members.filter((c) => c.suppressed).length + (line.totalSuppressed ? 1 : 0);
      if (unknowns !== 1) continue;
      const next = members.filter((c) => !c.suppressed).sort((a, b) => a.respondents - b.respondents || a.key.localeCompare(b.key))[0];
      if (!next) continue;
      next.suppressed = true;
      added.add(next.key);
      changed = true;
    }
  }
  return added;
}
