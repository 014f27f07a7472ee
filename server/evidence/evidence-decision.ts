import type { Thresholds } from './disclosure.ts';
import type { Dimension } from './evidence-filter.ts';
import type { CampaignCounts, Cell } from './evidence-store.ts';
import type { GroupTally } from './evidence-tally.ts';
import { byCodeUnits, cellId, type CellLookup, type Disclosure, type UnitMember } from './indicator.service.ts';

/**
 * The disclosure decision of disclosure.ts, taken from a campaign's kept
 * counts (evidence-store.ts) with plain number arrays: the same cells, lines,
 * units and rules as disclosureOf, in the same order, so both engines hide
 * the same cells. Taken again whenever the counts changed; the lattice's
 * lines only when cells appeared or went.
 */

interface Lattice {
  structure: number;
  cells: Cell[];
  ids: string[];
  indexOf: Map<string, number>;
  /** Position of each cell's id in code-unit order (the tie rule). */
  rank: Int32Array;
  lineTotal: Int32Array;
  lineStart: Int32Array;
  lineMembers: Int32Array;
}

const lattices = new WeakMap<CampaignCounts, Lattice>();

function latticeOf(counts: CampaignCounts): Lattice {
  const known = lattices.get(counts);
  if (known && known.structure === counts.structure) return known;
  const cells: Cell[] = [];
  const ids: string[] = [];
  const indexOf = new Map<string, number>();
  const keysOf = new Map<string, string[]>();
  for (const table of counts.tables) {
    const keys = [...table.cells.keys()].sort(byCodeUnits);
    keysOf.set(table.dimensions.join('+'), keys);
    for (const key of keys) {
      const id = cellId(table.dimensions, key);
      indexOf.set(id, cells.length);
      cells.push(table.cells.get(key)!);
      ids.push(id);
    }
  }
  const totals: number[] = [];
  const starts: number[] = [];
  const members: number[] = [];
  for (const table of counts.tables) {
    const dimensions = table.dimensions;
    const keys = keysOf.get(dimensions.join('+'))!;
    dimensions.forEach((_, axis) => {
      const rest = dimensions.filter((__, i) => i !== axis);
      const lines = new Map<string, number[]>();
      for (const key of keys) {
        const restKey = key
          .split('|')
          .filter((__, i) => i !== axis)
          .join('|');
        let line = lines.get(restKey);
        if (!line) lines.set(restKey, (line = []));
        line.push(indexOf.get(cellId(dimensions, key))!);
      }
      for (const [restKey, line] of lines) {
        totals.push(indexOf.get(cellId(rest, restKey))!);
        starts.push(members.length);
        members.push(...line);
      }
    });
  }
  starts.push(members.length);
  const order = ids.map((_, i) => i).sort((a, b) => byCodeUnits(ids[a]!, ids[b]!));
  const rank = new Int32Array(ids.length);
  order.forEach((cell, position) => (rank[cell] = position));
  const lattice: Lattice = {
    structure: counts.structure,
    cells,
    ids,
    indexOf,
    rank,
    lineTotal: Int32Array.from(totals),
    lineStart: Int32Array.from(starts),
    lineMembers: Int32Array.from(members),
  };
  lattices.set(counts, lattice);
  return lattice;
}

/** The decision for a campaign's counts as they are now, with a table source that builds each group's tally when a view asks for it. */
export function decideFromCounts(counts: CampaignCounts, units: readonly UnitMember[][], thresholds: Thresholds): Disclosure {
  counts.settleInstitutions();
  const lattice = latticeOf(counts);
  const { cells, lineTotal, lineStart, lineMembers, rank } = lattice;
  const n = cells.length;
  const layout = counts.layout;
  const cap = layout.spec.institutionCap;
  const hidden = new Map<string, { has(id: string): boolean }>();

  for (const unit of units) {
    const figures = unit.map((member) => member.populationKeys.map((key) => layout.populations.index.get(key) ?? -1));
    const sizes = figures.map((populations) => {
      const size = new Int32Array(n);
      for (let c = 0; c < n; c++) {
        let total = 0;
        for (const p of populations) if (p >= 0 && p < cells[c]!.populations.length) total += cells[c]!.populations[p]!;
        size[c] = total;
      }
      return size;
    });
    const tooSmall = (populations: number[], cell: Cell) => {
      let any = false;
      for (const p of populations) {
        const respondents = p >= 0 && p < cell.populations.length ? cell.populations[p]! : 0;
        if (respondents === 0) continue;
        any = true;
        const institutions = Math.min(cell.institutionN[p]!, cap);
        if (respondents < thresholds.minRespondents || institutions < thresholds.minInstitutions) return true;
      }
      return !any;
    };
    const isHidden = new Uint8Array(n);
    for (let c = 0; c < n; c++) {
      let withData = false;
      let small = false;
      for (let f = 0; f < figures.length; f++) {
        if (sizes[f]![c]! <= 0) continue;
        withData = true;
        if (tooSmall(figures[f]!, cells[c]!)) small = true;
      }
      if (!withData || small) isHidden[c] = 1;
    }
    // Per figure, the lines restricted to the cells where it has answers (as disclosure.ts hiddenCells).
    const figureLines = sizes.map((size) => {
      const total: number[] = [];
      const start: number[] = [];
      const member: number[] = [];
      for (let l = 0; l + 1 < lineStart.length; l++) {
        const from = member.length;
        for (let k = lineStart[l]!; k < lineStart[l + 1]!; k++) if (size[lineMembers[k]!]! > 0) member.push(lineMembers[k]!);
        if (member.length === from) continue;
        total.push(lineTotal[l]!);
        start.push(from);
      }
      start.push(member.length);
      return { total, start, member };
    });
    for (let changed = true; changed; ) {
      changed = false;
      figureLines.forEach((own, f) => {
        const size = sizes[f]!;
        for (let l = 0; l < own.total.length; l++) {
          let unknowns = isHidden[own.total[l]!] ? 1 : 0;
          let smallest = -1;
          for (let k = own.start[l]!; k < own.start[l + 1]!; k++) {
            const m = own.member[k]!;
            if (isHidden[m]) unknowns += 1;
            else if (smallest < 0 || size[m]! < size[smallest]! || (size[m] === size[smallest] && rank[m]! < rank[smallest]!)) smallest = m;
          }
          if (unknowns !== 1) continue;
          isHidden[smallest >= 0 ? smallest : own.total[l]!] = 1;
          changed = true;
        }
      });
    }
    // A cell outside the lattice has no records: what it shows is the empty group's (as disclosureOf's sets say).
    const view = { has: (id: string) => isHidden[lattice.indexOf.get(id) ?? -1] === 1 };
    for (const member of unit) hidden.set(member.id, view);
  }

  const tallies = new Map<Cell, GroupTally>();
  const tallyOf = (cell: Cell) => {
    let tally = tallies.get(cell);
    if (!tally) tallies.set(cell, (tally = counts.tally(cell)));
    return tally;
  };
  const source = {
    cells(dimensions: Dimension[]): CellLookup {
      const table = counts.table(dimensions);
      if (!table) throw new Error(`no counts by ${dimensions.join('+')}`);
      return {
        keys: () => table.cells.keys(),
        get: (key: string) => {
          const cell = table.cells.get(key);
          return cell ? tallyOf(cell) : undefined;
        },
      };
    },
  };
  return { source, hidden };
}
