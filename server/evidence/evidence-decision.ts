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

  // Respondents per population across the lattice's cells, one column per population (read by every unit that uses it).
  const columns = new Map<number, Int32Array>();
  const column = (p: number) => {
    let values = columns.get(p);
    if (!values) {
      values = new Int32Array(n);
      if (p >= 0) for (let c = 0; c < n; c++) values[c] = p < cells[c]!.populations.length ? cells[c]!.populations[p]! : 0;
      columns.set(p, values);
    }
    return values;
  };
  const lineCount = lineTotal.length;

  for (const unit of units) {
    const figures = unit.map((member) => member.populationKeys.map((key) => layout.populations.index.get(key) ?? -1));
    const sizes = figures.map((populations) => {
      if (populations.length === 1) return column(populations[0]!);
      const size = new Int32Array(n);
      for (const p of populations) {
        const values = column(p);
        for (let c = 0; c < n; c++) size[c]! += values[c]!;
      }
      return size;
    });
    const tooSmall = (populations: number[], c: number) => {
      let any = false;
      for (const p of populations) {
        const respondents = column(p)[c]!;
        if (respondents === 0) continue;
        any = true;
        const institutions = Math.min(cells[c]!.institutionN[p]!, cap);
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
        if (tooSmall(figures[f]!, c)) small = true;
      }
      if (!withData || small) isHidden[c] = 1;
    }
    // Secondary suppression to a fixed point, per figure and line, counting only the members where the figure has answers (as disclosure.ts hiddenCells).
    for (let changed = true; changed; ) {
      changed = false;
      for (let f = 0; f < figures.length; f++) {
        const size = sizes[f]!;
        for (let l = 0; l < lineCount; l++) {
          let members = 0;
          let unknowns = isHidden[lineTotal[l]!] ? 1 : 0;
          let smallest = -1;
          for (let k = lineStart[l]!; k < lineStart[l + 1]!; k++) {
            const m = lineMembers[k]!;
            const sm = size[m]!;
            if (sm <= 0) continue;
            members += 1;
            if (isHidden[m]) unknowns += 1;
            else if (smallest < 0 || sm < size[smallest]! || (sm === size[smallest] && rank[m]! < rank[smallest]!)) smallest = m;
          }
          if (members === 0 || unknowns !== 1) continue;
          isHidden[smallest >= 0 ? smallest : lineTotal[l]!] = 1;
          changed = true;
        }
      }
    }
    // A cell outside the lattice has no records: what it shows is the empty group's (as disclosureOf's sets say).
    const view = { has: (id: string) => isHidden[lattice.indexOf.get(id) ?? -1] === 1 };
    for (const member of unit) hidden.set(member.id, view);
  }

  const source = {
    cells(dimensions: Dimension[]): CellLookup {
      const table = counts.table(dimensions);
      if (!table) throw new Error(`no counts by ${dimensions.join('+')}`);
      return {
        keys: () => table.cells.keys(),
        get: (key: string) => {
          const cell = table.cells.get(key);
          return cell ? counts.tally(cell) : undefined;
        },
      };
    },
  };
  return { source, hidden };
}
