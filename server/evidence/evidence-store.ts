import { DIMENSION_NAMES, type Dimension } from './evidence-filter.ts';
import type { EvidenceRecord, EvidenceSink } from './evidence-record.ts';
import { accreditationKey, dontKnowBoxes, emptyTally, groupingKey, NOT_STATED, ratioParts, RESPONSES, validKey, type GroupTally, type TallySpec } from './evidence-tally.ts';
import { DONT_KNOW } from './question-catalogue.ts';

/**
 * The evidence's counts, kept in memory and up to date as records arrive.
 *
 * Every table a view can show (overall, each dimension, each combination of
 * up to three: see viewTables) is kept, per campaign, as cells of plain
 * number arrays: one counter per "slot" (an answer category of a question,
 * its count of numbers and their sum, its "don't know"s, a ratio's parts, the
 * number of responses) and one per population (who stands behind a figure),
 * with up to `institutionCap` institutions per population (all disclosure
 * control needs). A record adds its contribution to the ~42 cells it falls
 * in; a new revision of the same response takes its old contribution out
 * first, so the counts are always those a count from scratch would give.
 *
 * S4 is counted once per institution: only the latest record (submittedAt,
 * then its counted content) of an institution that answered S4 contributes S4 answers; when
 * the latest changes, the old one's S4 part is taken out and the new one's
 * put in.
 *
 * Storage is sized for what is used, since most cells (fine three-dimension
 * groups) hold few records and few institutions: counters that are whole
 * numbers (answers, "don't know"s, respondents) are 8-bit until a value needs
 * more (then that array becomes 16-bit, then 32-bit), sums and ratio parts
 * 32-bit integers until one is not (then 64-bit floats), institution lists
 * hold 8-bit positions in the cell's own list of institutions, and arrays
 * grow only to the slots and populations the layout has. A
 * record's part is kept as one 16-bit array of the counters it adds one to
 * and the populations it counts in, plus the few counters with other amounts.
 *
 * Institutions can be added to a population's capped list but not taken out
 * at once (another record of the same institution may still be there): a
 * cell a record leaves is marked with the record's institution, which is
 * looked for among its own records before the next decision (see
 * settleInstitutions).
 */

/** What one counter of a cell counts. */
type Slot =
  | { kind: 'responses' }
  | { kind: 'item'; question: string; key: string; value: string | number | boolean; row?: string; rank?: number }
  | { kind: 'numericN' | 'sum' | 'dk'; question: string }
  | { kind: 'ratio'; key: string; part: 'numerator' | 'denominator' | 'n' };

/** A record's part in the counts. */
interface Contribution {
  /** The slots it adds one to, then (from `split`) the populations it counts in, then (from `othersFrom`) the other slots it counts in. */
  ones: Uint16Array | Int32Array;
  split: number;
  othersFrom: number;
  /** The amounts of the other slots, in their order; null when there are none. */
  amounts: Float64Array | null;
}

/** Whole-number counters (never below 0): 8-bit, then 16-bit, while every value fits. */
type Counters = Uint8Array | Uint16Array | Int32Array;

interface Row {
  id: string;
  revision: number;
  institution: number;
  at: number;
  /** Profile codes in DIMENSION_NAMES order, NOT_STATED when missing (one array shared by every record of that profile). */
  profile: readonly string[];
  main: Contribution;
  s4: Contribution | null;
  /** What decides between two S4 records of one institution stored at the same moment (as evidence-tally.ts isLater): their counted content, never the id. */
  s4Content?: string;
}

export interface Cell {
  key: string;
  /** Records whose main part is counted here (the cell exists while there is one). */
  rows: number;
  /** Bumped whenever its counts or institution lists change: what was derived from an older version is stale. */
  version: number;
  /** Whole-number counters and sums (sums, ratio parts), each slot at its place in one of them (CountLayout.places). */
  counts: Counters;
  sums: Int32Array | Float64Array;
  /** Respondents per population. */
  populations: Counters;
  /** Up to `cap` institutions per population (population × cap), as positions in `members`, and how many. */
  institutions: Counters;
  institutionN: Uint8Array;
  /** The institution numbers the lists name (some perhaps no longer), each once. */
  members: number[];
}

export interface Table {
  dimensions: Dimension[];
  cells: Map<string, Cell>;
}

/** Interns strings to small numbers. */
class Interner {
  readonly index = new Map<string, number>();
  readonly names: string[] = [];
  of(name: string): number {
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.names.length;
      this.index.set(name, i);
      this.names.push(name);
    }
    return i;
  }
}

/** The slots and populations every campaign shares (numbers are the same across campaigns of one process). */
export class CountLayout {
  readonly slots: Slot[] = [];
  /** Per slot, its index in a cell's counts (place × 2) or sums (place × 2 + 1). */
  readonly places: number[] = [];
  countSlots = 0;
  sumSlots = 0;
  private readonly slotIndex = new Map<string, number>();
  readonly populations = new Interner();
  readonly institutions = new Interner();
  readonly responsesSlot: number;
  private readonly numberQuestions: Set<string>;
  private readonly textQuestions: Set<string>;
  private readonly boxes: Map<string, string>;

  constructor(readonly spec: TallySpec) {
    this.numberQuestions = new Set(spec.catalogue.questions.filter((q) => q.kind === 'number').map((q) => q.name));
    this.textQuestions = new Set(spec.catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name));
    this.boxes = dontKnowBoxes(spec.catalogue);
    this.responsesSlot = this.slot('responses', { kind: 'responses' });
  }

  private slot(key: string, make: Slot): number {
    let i = this.slotIndex.get(key);
    if (i === undefined) {
      i = this.slots.length;
      this.slotIndex.set(key, i);
      this.slots.push(make);
      const isSum = make.kind === 'sum' || (make.kind === 'ratio' && make.part !== 'n');
      this.places.push(isSum ? this.sumSlots++ * 2 + 1 : this.countSlots++ * 2);
    }
    return i;
  }

  /**
   * One record's part (its S4 items, or the others) as counters: the same
   * rules as a count from scratch (evidence-tally.ts responseCounter).
   */
  contribution(record: EvidenceRecord, s4: boolean): Contribution | null {
    const { spec } = this;
    const amounts = new Map<number, number>();
    const add = (slot: number, amount: number) => amounts.set(slot, (amounts.get(slot) ?? 0) + amount);
    const answered = new Set<string>();
    if (!s4) {
      add(this.responsesSlot, 1);
      answered.add(RESPONSES);
    }
    const items = record.items
      .filter((item) => (item.strand === 'S4') === s4)
      .map((item) => (this.boxes.has(item.question) ? { ...item, question: this.boxes.get(item.question)!, value: DONT_KNOW } : item));
    if (s4 && items.length === 0) return null;

    const numbers = new Map<string, number>();
    for (const item of items) {
      if (this.textQuestions.has(item.question)) continue;
      const value = item.value as string | number | boolean;
      const isNumeric = typeof value === 'number';
      const isNumberQuestion = this.numberQuestions.has(item.question);
      if (isNumberQuestion && isNumeric) numbers.set(item.question, value);
      answered.add(item.question);
      const valid = value !== DONT_KNOW;
      if (valid) {
        answered.add(validKey(item.question));
        for (const key of spec.indicatorsOf.get(item.question) ?? []) answered.add(key);
      }
      if (isNumeric) {
        add(this.slot(`n:${item.question}`, { kind: 'numericN', question: item.question }), 1);
        add(this.slot(`s:${item.question}`, { kind: 'sum', question: item.question }), value);
      }
      if (!valid) add(this.slot(`d:${item.question}`, { kind: 'dk', question: item.question }), 1);
      if (!(isNumeric && isNumberQuestion)) {
        const key = `${item.row ?? ''}|${item.rank ?? ''}|${typeof value}|${String(value)}`;
        const slot = this.slot(`i:${item.question}:${key}`, {
          kind: 'item',
          question: item.question,
          key,
          value,
          ...(item.row !== undefined ? { row: item.row } : {}),
          ...(item.rank !== undefined ? { rank: item.rank } : {}),
        });
        add(slot, 1);
      }
    }

    const accredited = spec.accredited.has(record.profile.erasmus ?? '');
    for (const ratio of spec.ratios) {
      const parts = ratioParts(ratio, numbers);
      if (!parts) continue;
      const { numerator, denominator } = parts;
      for (const key of [ratio.code, ...(ratio.byAccreditation ? [accreditationKey(ratio.code, accredited)] : [])]) {
        answered.add(key);
        add(this.slot(`r:${key}:numerator`, { kind: 'ratio', key, part: 'numerator' }), numerator);
        add(this.slot(`r:${key}:denominator`, { kind: 'ratio', key, part: 'denominator' }), denominator);
        add(this.slot(`r:${key}:n`, { kind: 'ratio', key, part: 'n' }), 1);
      }
    }
    if (s4 && answered.size === 0) return null;
    const ones: number[] = [];
    const others: number[] = [];
    const otherAmounts: number[] = [];
    for (const [slot, amount] of amounts) {
      if (amount === 1 && this.places[slot]! % 2 === 0) ones.push(slot);
      else {
        others.push(slot);
        otherAmounts.push(amount);
      }
    }
    const split = ones.length;
    for (const key of answered) ones.push(this.populations.of(key));
    const othersFrom = ones.length;
    ones.push(...others);
    return {
      ones: ones.every((v) => v <= 0xffff) ? Uint16Array.from(ones) : Int32Array.from(ones),
      split,
      othersFrom,
      amounts: otherAmounts.length > 0 ? Float64Array.from(otherAmounts) : null,
    };
  }
}

/** The counts of one campaign (or of every record, for scripts): all its tables, kept current. */
export class CampaignCounts {
  private readonly allTables: Table[];
  private readonly tableIndex = new Map<string, Table>();
  private readonly rows = new Map<string, Row>();
  /** Per institution, its records that answered S4, and the one that counts. */
  private readonly s4Rows = new Map<number, Set<Row>>();
  private readonly s4Current = new Map<number, Row>();
  /**
   * Institutions with a new S4 record whose S4 count is not settled yet. A
   * load brings an institution's S4 records one after another, each newer
   * than the last: settling at each took the previous one's S4 answers out
   * of every table and put the next one's in, and left every cell touched
   * with an institution list to rebuild. Settled once, before anything reads
   * the counts (every reader below settles first).
   */
  private readonly unsettledS4 = new Set<number>();
  /** Per institution, its records. */
  private readonly byInstitution = new Map<number, Set<Row>>();
  /** Cells records have left, with the institutions of those records: their lists may name one no longer there. */
  private readonly dirty = new Map<Cell, { table: Table; institutions: Set<number> }>();
  private readonly tallies = new WeakMap<Cell, { version: number; tally: GroupTally }>();
  private readonly profiles = new Map<string, readonly string[]>();
  private changes = 0;
  private shape = 0;

  constructor(
    readonly layout: CountLayout,
    tableList: Dimension[][],
  ) {
    this.allTables = tableList.map((dimensions) => ({ dimensions, cells: new Map() }));
    for (const table of this.allTables) this.tableIndex.set(groupingKey(table.dimensions), table);
  }

  /** Every table, its cells counted up to date. */
  get tables(): readonly Table[] {
    this.settleS4s();
    return this.allTables;
  }

  /** Bumped on every change: what was derived from an older version is stale. */
  get version(): number {
    this.settleS4s();
    return this.changes;
  }

  /** Bumped when a cell appears or goes: the lattice's lines change. */
  get structure(): number {
    this.settleS4s();
    return this.shape;
  }

  get size(): number {
    return this.rows.size;
  }

  ids(): IterableIterator<string> {
    return this.rows.keys();
  }

  table(dimensions: readonly Dimension[]): Table | undefined {
    this.settleS4s();
    return this.tableIndex.get(groupingKey(dimensions));
  }

  apply(record: EvidenceRecord): void {
    const old = this.rows.get(record.id);
    // A load that read a record before this process stored its next revision must not take it back.
    if (old && old.revision > record.revision) return;
    if (old) this.removeRow(old);
    const row: Row = {
      id: record.id,
      revision: record.revision,
      institution: this.layout.institutions.of(record.institution),
      at: record.submittedAt.getTime(),
      profile: this.profileOf(DIMENSION_NAMES.map((d) => record.profile[d] ?? NOT_STATED)),
      main: this.layout.contribution(record, false)!,
      s4: this.layout.contribution(record, true),
    };
    if (row.s4) row.s4Content = JSON.stringify([record.profile, record.items.filter((item) => item.strand === 'S4')]);
    this.rows.set(row.id, row);
    let own = this.byInstitution.get(row.institution);
    if (!own) this.byInstitution.set(row.institution, (own = new Set()));
    own.add(row);
    this.count(row, row.main, 1);
    if (row.s4) {
      let own = this.s4Rows.get(row.institution);
      if (!own) this.s4Rows.set(row.institution, (own = new Set()));
      own.add(row);
      this.unsettledS4.add(row.institution);
    }
    this.changes += 1;
  }

  private profileOf(codes: string[]): readonly string[] {
    const key = codes.join('\u0000');
    let known = this.profiles.get(key);
    if (!known) this.profiles.set(key, (known = codes));
    return known;
  }

  remove(id: string): void {
    const row = this.rows.get(id);
    if (!row) return;
    this.removeRow(row);
    this.changes += 1;
  }

  private removeRow(row: Row): void {
    this.rows.delete(row.id);
    const own = this.byInstitution.get(row.institution)!;
    own.delete(row);
    if (own.size === 0) this.byInstitution.delete(row.institution);
    if (row.s4) {
      const own = this.s4Rows.get(row.institution)!;
      own.delete(row);
      if (own.size === 0) this.s4Rows.delete(row.institution);
      this.settleS4(row.institution);
    }
    this.count(row, row.main, -1);
  }

  private settleS4s(): void {
    if (this.unsettledS4.size === 0) return;
    for (const institution of this.unsettledS4) this.settleS4(institution);
  }

  /**
   * Makes the institution's latest S4 record the one counted. A record
   * leaving settles its institution at once: its S4 part must come out of
   * the tables while its main part still holds its cells.
   */
  private settleS4(institution: number): void {
    this.unsettledS4.delete(institution);
    let latest: Row | undefined;
    for (const row of this.s4Rows.get(institution) ?? []) {
      if (!latest || row.at > latest.at || (row.at === latest.at && row.s4Content! > latest.s4Content!)) latest = row;
    }
    const current = this.s4Current.get(institution);
    if (current === latest) return;
    if (current) this.count(current, current.s4!, -1, false);
    if (latest) {
      this.s4Current.set(institution, latest);
      this.count(latest, latest.s4!, 1, false);
    } else this.s4Current.delete(institution);
  }

  /** Adds (sign 1) or takes out (sign −1) a contribution in every table. `main` parts decide whether a cell exists. */
  private count(row: Row, part: Contribution, sign: 1 | -1, main = true): void {
    const { layout } = this;
    const cap = layout.spec.institutionCap;
    const populationCount = layout.populations.names.length;
    const { places, countSlots, sumSlots } = layout;
    const { ones, split, othersFrom, amounts } = part;
    for (const table of this.allTables) {
      const key = cellKey(table.dimensions, row.profile);
      let cell = table.cells.get(key);
      if (!cell) {
        // Only a record's main part makes a cell: its S4 part is counted where its main part is.
        cell = {
          key,
          rows: 0,
          version: 0,
          counts: new Uint8Array(countSlots),
          sums: new Int32Array(sumSlots),
          populations: new Uint8Array(populationCount),
          institutions: new Uint8Array(populationCount * cap),
          institutionN: new Uint8Array(populationCount),
          members: [],
        };
        table.cells.set(key, cell);
        this.shape += 1;
      }
      if (cell.counts.length < countSlots) cell.counts = grown(cell.counts, countSlots);
      if (cell.sums.length < sumSlots) cell.sums = grown(cell.sums, sumSlots);
      if (cell.populations.length < populationCount) {
        cell.populations = grown(cell.populations, populationCount);
        cell.institutionN = grown(cell.institutionN, populationCount);
        cell.institutions = grown(cell.institutions, populationCount * cap);
      }
      cell.version += 1;
      for (let i = 0; i < split; i++) cell.counts = added(cell.counts, places[ones[i]!]! >> 1, sign);
      for (let i = othersFrom; i < ones.length; i++) {
        const place = places[ones[i]!]!;
        const amount = sign * amounts![i - othersFrom]!;
        if (place % 2 === 1) cell.sums = summed(cell.sums, place >> 1, amount);
        else cell.counts = added(cell.counts, place >> 1, amount);
      }
      for (let i = split; i < othersFrom; i++) cell.populations = added(cell.populations, ones[i]!, sign);
      if (sign > 0) addInstitution(cell, part, row.institution, cap);
      else {
        let suspects = this.dirty.get(cell);
        if (!suspects) this.dirty.set(cell, (suspects = { table, institutions: new Set() }));
        suspects.institutions.add(row.institution);
      }
      if (main) {
        cell.rows += sign;
        if (cell.rows === 0) {
          table.cells.delete(key);
          this.dirty.delete(cell);
          this.shape += 1;
        }
      }
    }
  }

  /**
   * Brings the institution lists of the cells records have left up to date
   * (before a decision reads them). An institution whose records left a cell
   * is looked for among its own records still there; where it is gone from a
   * population, it leaves the list, and a list that was full is rebuilt from
   * every record (another institution may now belong in it).
   */
  settleInstitutions(): void {
    this.settleS4s();
    if (this.dirty.size === 0) return;
    const cap = this.layout.spec.institutionCap;
    const rebuild = new Set<Cell>();
    let suspects = 0;
    for (const { institutions } of this.dirty.values()) suspects += institutions.size;
    // After a load (every S4 taken over by a later one) looking for each institution costs more than one pass over every record.
    if (suspects > BULK_SUSPECTS && suspects > this.rows.size / 8) {
      for (const cell of this.dirty.keys()) {
        cell.version += 1;
        rebuild.add(cell);
      }
    }
    for (const [cell, { table, institutions }] of rebuild.size > 0 ? [] : this.dirty) {
      cell.version += 1;
      for (const institution of institutions) {
        const present = new Set<number>();
        for (const row of this.byInstitution.get(institution) ?? []) {
          if (cellKey(table.dimensions, row.profile) !== cell.key) continue;
          for (let i = row.main.split; i < row.main.othersFrom; i++) present.add(row.main.ones[i]!);
          if (row.s4 && this.s4Current.get(institution) === row) for (let i = row.s4.split; i < row.s4.othersFrom; i++) present.add(row.s4.ones[i]!);
        }
        const member = cell.members.indexOf(institution);
        for (let p = 0; p < cell.institutionN.length; p++) {
          const n = cell.institutionN[p]!;
          if (n === 0 || present.has(p)) continue;
          const at = member < 0 ? -1 : cell.institutions.subarray(p * cap, p * cap + n).indexOf(member);
          if (at < 0) continue;
          cell.institutions[p * cap + at] = cell.institutions[p * cap + n - 1]!;
          cell.institutionN[p] = n - 1;
          if (n === cap) rebuild.add(cell);
        }
      }
    }
    this.dirty.clear();
    if (rebuild.size === 0) return;
    for (const cell of rebuild) {
      cell.institutionN.fill(0);
      cell.members = [];
    }
    const tables = this.tables.filter((t) => [...t.cells.values()].some((c) => rebuild.has(c)));
    for (const row of this.rows.values()) {
      for (const table of tables) {
        const cell = table.cells.get(cellKey(table.dimensions, row.profile));
        if (!cell || !rebuild.has(cell)) continue;
        addInstitution(cell, row.main, row.institution, cap);
        if (row.s4 && this.s4Current.get(row.institution) === row) addInstitution(cell, row.s4, row.institution, cap);
      }
    }
  }

  /**
   * One cell as the indicator code reads it (empty counters left out, as a
   * count from scratch would); made again only when the cell changed, so a
   * page after a response rebuilds only the cells that response is in.
   */
  tally(cell: Cell): GroupTally {
    this.settleS4s();
    const known = this.tallies.get(cell);
    if (known && known.version === cell.version) return known.tally;
    const tally = this.freshTally(cell);
    this.tallies.set(cell, { version: cell.version, tally });
    return tally;
  }

  private freshTally(cell: Cell): GroupTally {
    const tally = emptyTally();
    const { slots } = this.layout;
    const question = (name: string) => {
      let q = tally.questions.get(name);
      if (!q) tally.questions.set(name, (q = { items: new Map(), numericN: 0, sum: 0, dk: 0 }));
      return q;
    };
    // A slot beyond a cell's arrays appeared after the cell was last counted in: it is 0 there.
    const { places } = this.layout;
    const valueOf = (i: number) => {
      const place = places[i]!;
      return (place % 2 === 1 ? cell.sums[place >> 1] : cell.counts[place >> 1]) ?? 0;
    };
    const present = new Set<string>();
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      if ((slot.kind === 'item' || slot.kind === 'numericN' || slot.kind === 'dk') && valueOf(i) !== 0) present.add(slot.question);
    }
    for (let i = 0; i < slots.length; i++) {
      const value = valueOf(i);
      const slot = slots[i]!;
      switch (slot.kind) {
        case 'responses':
          tally.responses = value;
          break;
        case 'item':
          if (value !== 0) question(slot.question).items.set(slot.key, { value: slot.value, ...(slot.row !== undefined ? { row: slot.row } : {}), ...(slot.rank !== undefined ? { rank: slot.rank } : {}), n: value });
          break;
        case 'numericN':
        case 'sum':
        case 'dk':
          if (present.has(slot.question)) question(slot.question)[slot.kind] = value;
          break;
        case 'ratio': {
          let r = tally.ratios.get(slot.key);
          if (!r) tally.ratios.set(slot.key, (r = { numerator: 0, denominator: 0, n: 0 }));
          r[slot.part] = value;
          break;
        }
      }
    }
    for (const [key, r] of tally.ratios) if (r.n === 0) tally.ratios.delete(key);
    const cap = this.layout.spec.institutionCap;
    const names = this.layout.populations.names;
    for (let p = 0; p < Math.min(cell.populations.length, names.length); p++) {
      const respondents = cell.populations[p]!;
      if (respondents === 0) continue;
      const institutions = new Set<string>();
      for (let k = 0; k < cell.institutionN[p]!; k++) institutions.add(this.layout.institutions.names[cell.members[cell.institutions[p * cap + k]!]!]!);
      tally.populations.set(names[p]!, { respondents, institutions });
    }
    return tally;
  }
}

/** Institutions to look for (cell by cell) above which the lists are rebuilt from every record at once. */
const BULK_SUSPECTS = 1000;

function addInstitution(cell: Cell, part: Contribution, institution: number, cap: number): void {
  const { ones } = part;
  let member = -1;
  for (let i = part.split; i < part.othersFrom; i++) {
    const p = ones[i]!;
    const n = cell.institutionN[p]!;
    if (n >= cap) continue;
    if (member < 0) {
      member = cell.members.indexOf(institution);
      if (member < 0) {
        member = cell.members.push(institution) - 1;
        cell.institutions = wide(cell.institutions, member);
      }
    }
    let known = false;
    for (let k = p * cap; k < p * cap + n; k++) if (cell.institutions[k] === member) known = true;
    if (known) continue;
    cell.institutions[p * cap + n] = member;
    cell.institutionN[p] = n + 1;
  }
}

/** Adds to a counter (counters never go below 0). */
function added(counters: Counters, i: number, amount: number): Counters {
  const value = counters[i]! + amount;
  counters = wide(counters, value);
  counters[i] = value;
  return counters;
}

/** The counters, or a wider copy when `value` does not fit them. */
function wide(counters: Counters, value: number): Counters {
  if (value > 0xffff && !(counters instanceof Int32Array)) return Int32Array.from(counters);
  if (value > 0xff && counters instanceof Uint8Array) return Uint16Array.from(counters);
  return counters;
}

/** Adds to a sum; 32-bit integer sums become 64-bit floats at the first value that is not one. */
function summed(sums: Int32Array | Float64Array, i: number, amount: number): Int32Array | Float64Array {
  const value = sums[i]! + amount;
  if (sums instanceof Int32Array && (value | 0) !== value) sums = Float64Array.from(sums);
  sums[i] = value;
  return sums;
}

/** A copy with room for `length` values and a sixteenth more (slots and populations first met later are few). */
function grown<T extends Float64Array | Int32Array | Uint16Array | Uint8Array>(array: T, length: number): T {
  const next = new (array.constructor as new (n: number) => T)(length + (length >> 4));
  next.set(array);
  return next;
}

/** A record's cell key in a table: its codes of the table's dimensions (canonical order), joined. */
export function cellKey(dimensions: readonly Dimension[], profile: readonly string[]): string {
  if (dimensions.length === 0) return '';
  let key = '';
  for (let i = 0; i < dimensions.length; i++) key += (i ? '|' : '') + profile[DIMENSION_INDEX[dimensions[i]!]]!;
  return key;
}

const DIMENSION_INDEX = Object.fromEntries(DIMENSION_NAMES.map((d, i) => [d, i])) as Record<Dimension, number>;

/**
 * Every campaign's counts, fed record by record (EvidenceSink). The scope of
 * every campaign together (scripts) is made on first use from the campaigns'
 * records and then kept current like the others.
 */
export class EvidenceStore implements EvidenceSink {
  readonly layout: CountLayout;
  private readonly campaigns = new Map<string, CampaignCounts>();
  private readonly campaignOf = new Map<string, string>();
  private everything: CampaignCounts | undefined;

  constructor(
    spec: TallySpec,
    private readonly tableList: Dimension[][],
  ) {
    this.layout = new CountLayout(spec);
  }

  apply(record: EvidenceRecord): void {
    const previous = this.campaignOf.get(record.id);
    if (previous !== undefined && previous !== record.campaign) this.campaigns.get(previous)?.remove(record.id);
    this.campaignOf.set(record.id, record.campaign);
    this.counts(record.campaign).apply(record);
    this.everything?.apply(record);
  }

  remove(id: string): void {
    const campaign = this.campaignOf.get(id);
    if (campaign === undefined) return;
    this.campaignOf.delete(id);
    this.campaigns.get(campaign)?.remove(id);
    this.everything?.remove(id);
  }

  /** Whether any record of the campaign is kept. */
  has(campaign: string): boolean {
    return (this.campaigns.get(campaign)?.size ?? 0) > 0;
  }

  /** Forgets a campaign's records (before it is loaded again). */
  clearCampaign(campaign: string): void {
    const counts = this.campaigns.get(campaign);
    if (!counts) return;
    for (const id of counts.ids()) {
      this.campaignOf.delete(id);
      this.everything?.remove(id);
    }
    this.campaigns.delete(campaign);
  }

  /** Forgets everything (before a reload). */
  clear(): void {
    this.campaigns.clear();
    this.campaignOf.clear();
    if (this.everything) this.everything = new CampaignCounts(this.layout, this.tableList);
  }

  /** The counts of one campaign, or of every record when `campaigns` is empty. */
  scope(campaigns: readonly string[]): CampaignCounts {
    if (campaigns.length === 1) return this.counts(campaigns[0]!);
    if (campaigns.length > 1) throw new Error('campaigns are never pooled');
    if (!this.everything) throw new Error('every campaign together is not kept: call keepEveryRecord() before loading');
    return this.everything;
  }

  /** Keeps a scope of every campaign together (scripts and single-campaign set-ups ask for it): call before loading. */
  get keepsEveryRecord(): boolean {
    return this.everything !== undefined;
  }

  keepEveryRecord(): void {
    this.everything ??= new CampaignCounts(this.layout, this.tableList);
  }

  get size(): number {
    return this.campaignOf.size;
  }

  private counts(campaign: string): CampaignCounts {
    let counts = this.campaigns.get(campaign);
    if (!counts) this.campaigns.set(campaign, (counts = new CampaignCounts(this.layout, this.tableList)));
    return counts;
  }
}
