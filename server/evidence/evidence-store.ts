import { createHash } from 'node:crypto';
import { DIMENSION_NAMES, type Dimension } from './evidence-filter.ts';
import type { EvidenceRecord, EvidenceSink } from './evidence-record.ts';
import { accreditationKey, contentRank, dontKnowBoxes, emptyTally, groupingKey, NOT_STATED, ratioParts, RESPONSES, validKey, type GroupTally, type TallySpec } from './evidence-tally.ts';
import { DONT_KNOW } from './question-catalogue.ts';
import { RecordRows } from './record-rows.ts';

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
 * 16-bit integers until one is not (then 32-bit, or 64-bit floats for a value
 * that is no 32-bit integer), institution lists are bits, one per institution
 * of the cell's own list of institutions (a cell names a few: one byte a
 * population for up to eight), and arrays
 * grow only to the slots and populations the layout has. A record is a row
 * of typed-array columns (RowColumns); its part is the places of the
 * counters it adds one to, plus the slots with other amounts, each list
 * sorted and kept as the steps between its numbers, mostly one byte each
 * (PartStore), in one array its campaign's records share; the populations it
 * counts in follow from its slots (CountLayout.partPopulations).
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

/**
 * The records of one campaign, as columns indexed by a row number: no object
 * per record (a Row object, its two parts' objects and the sets that listed
 * them cost ~750 bytes a record at 50,000; these columns ~90). The row of a
 * record that left is reused.
 *
 * A record's part in the counts (its S4 items, or the others) is numbered
 * row × 2 (main) and row × 2 + 1 (S4; length 0 when it has none: an S4 part
 * counts in one slot at least). Its numbers lie in its campaign's PartStore,
 * as steps (putSteps; `partAt`, `split` and `length` are byte offsets): from
 * `partAt`, the places in a cell's whole-number counters it adds one to
 * (CountLayout.places / 2, so that counting is one typed-array loop), then
 * (from `partAt + split` to `partAt + length`) the other slots it counts in,
 * whose amounts, in the same order, start at `amountsAt` (PartStore.claimAmounts). The populations it
 * counts in are not kept: its slots imply them (CountLayout.partPopulations).
 * `weight` is the most it adds to any one whole-number counter or population
 * (1 unless an amount is more): how far a cell's counters grow by it.
 */
class RowColumns {
  revision = new Int32Array(INITIAL_ROWS);
  institution = new Int32Array(INITIAL_ROWS);
  at = new Float64Array(INITIAL_ROWS);
  /** Its profile's number (CampaignCounts.profileIds). */
  profile = new Int32Array(INITIAL_ROWS);
  /** What decides between two S4 records of one institution stored at the same moment (evidence-tally.ts contentRank), never the id; 0 without S4. */
  s4Rank = new Float64Array(INITIAL_ROWS);
  /** The next row of the same institution, and the next of those with an S4 part (-1: none; CampaignCounts.firstOfInstitution). */
  nextOfInstitution = new Int32Array(INITIAL_ROWS);
  nextWithS4 = new Int32Array(INITIAL_ROWS);
  partAt = new Int32Array(2 * INITIAL_ROWS);
  split = new Int32Array(2 * INITIAL_ROWS);
  length = new Int32Array(2 * INITIAL_ROWS);
  amountsAt = new Int32Array(2 * INITIAL_ROWS);
  weight = new Int32Array(2 * INITIAL_ROWS);
  private free: number[] = [];
  private end = 0;

  /** Its columns up to the last row taken, for an image (CampaignCounts.putInto). */
  putInto(image: ImageWriter): { end: number; free: number[] } {
    for (const column of this.perRow()) image.put(column, this.end);
    for (const column of this.perPart()) image.put(column, 2 * this.end);
    return { end: this.end, free: this.free };
  }

  /** Takes the columns an image holds (putInto), with room to grow as after a load (trim). */
  takeFrom(image: ImageReader, state: { end: number; free: number[] }): void {
    const rows = state.end + (state.end >> 4) + 1;
    // In putInto's order.
    this.revision = image.take(rows);
    this.institution = image.take(rows);
    this.at = image.take(rows);
    this.profile = image.take(rows);
    this.s4Rank = image.take(rows);
    this.nextOfInstitution = image.take(rows);
    this.nextWithS4 = image.take(rows);
    this.partAt = image.take(2 * rows);
    this.split = image.take(2 * rows);
    this.length = image.take(2 * rows);
    this.amountsAt = image.take(2 * rows);
    this.weight = image.take(2 * rows);
    this.end = state.end;
    this.free = [...state.free];
  }

  private perRow(): Array<Int32Array | Float64Array> {
    return [this.revision, this.institution, this.at, this.profile, this.s4Rank, this.nextOfInstitution, this.nextWithS4];
  }

  private perPart(): Int32Array[] {
    return [this.partAt, this.split, this.length, this.amountsAt, this.weight];
  }

  /** A row for a new record. */
  take(): number {
    const row = this.free.pop();
    if (row !== undefined) return row;
    if (this.end === this.revision.length) this.resize(this.end * 2);
    return this.end++;
  }

  release(row: number): void {
    this.free.push(row);
  }

  /** Bytes held (bench:evidence:memory). */
  bytes(): number {
    return [this.revision, this.institution, this.at, this.profile, this.s4Rank, this.nextOfInstitution, this.nextWithS4, this.partAt, this.split, this.length, this.amountsAt, this.weight].reduce((sum, column) => sum + column.byteLength, 0);
  }

  hasS4(row: number): boolean {
    return this.length[2 * row + 1]! > 0;
  }

  /** Gives back the room grown beyond what is held, but a sixteenth (after a load, which doubled it as it went). */
  trim(): void {
    const rows = this.end + (this.end >> 4) + 1;
    if (this.revision.length > rows) this.resize(rows);
  }

  private resize(rows: number): void {
    this.revision = resized(this.revision, rows);
    this.institution = resized(this.institution, rows);
    this.at = resized(this.at, rows);
    this.profile = resized(this.profile, rows);
    this.s4Rank = resized(this.s4Rank, rows);
    this.nextOfInstitution = resized(this.nextOfInstitution, rows);
    this.nextWithS4 = resized(this.nextWithS4, rows);
    this.partAt = resized(this.partAt, 2 * rows);
    this.split = resized(this.split, 2 * rows);
    this.length = resized(this.length, 2 * rows);
    this.amountsAt = resized(this.amountsAt, 2 * rows);
    this.weight = resized(this.weight, 2 * rows);
  }
}

const INITIAL_ROWS = 64;

/** Takes a row out of a list linked through `next` whose first row per institution is in `first`. */
function unlink(first: Map<number, number>, next: Int32Array, institution: number, row: number): void {
  let at = first.get(institution)!;
  if (at === row) {
    if (next[row]! < 0) first.delete(institution);
    else first.set(institution, next[row]!);
    return;
  }
  while (next[at] !== row) at = next[at]!;
  next[at] = next[row]!;
}

/** A copy of `array` holding `length` values (cut or grown). */
function resized<T extends Float64Array | Int32Array>(array: T, length: number): T {
  return length < array.length ? (array.slice(0, length) as T) : grownTo(array, length);
}

/**
 * The parts of one campaign's records, one after another in two growing
 * arrays. A part that leaves (a revision, a removal) leaves a gap; once the
 * gaps are half of what is held, the parts still counted are copied together
 * again (CampaignCounts.compactParts).
 */
class PartStore {
  /** The parts' sorted places and slots as steps (putSteps). */
  steps = new Uint8Array(2048);
  /**
   * The parts' amounts: a part's whole amounts as varints (putAmount), one byte up to ±63 and two
   * up to ±8,191 each, where one of 16 bits made all of the part's 16-bit (most are a few answers'
   * numbers, their sums and ratio parts, and one count of learners was enough); a part with an
   * amount that is not a 32-bit integer keeps them as 64-bit floats.
   */
  amounts: AmountArray[] = [new Uint8Array(1024), new Float64Array(0)];
  amountEnds = [0, 0];
  end = 0;
  /** Bytes in gaps. */
  gaps = 0;

  /** Room for `bytes` more bytes of steps. */
  reserve(bytes: number): void {
    if (this.end + bytes > this.steps.length) this.steps = grownTo(this.steps, Math.max(this.end + bytes, this.steps.length * 2));
  }

  /** Room for `n` entries of a part's amounts in the array of `kind` (bytes of varints, or floats); where they start, with the kind (see amountsIn, amountsStart). */
  claimAmounts(n: number, kind: number): number {
    const start = this.amountEnds[kind]!;
    const array = this.amounts[kind]!;
    if (start + n > array.length) this.amounts[kind] = grownTo(array, Math.max(start + n, array.length * 2, 256));
    this.amountEnds[kind] = start + n;
    return start * AMOUNT_KINDS + kind;
  }

  amountsIn(at: number): AmountArray {
    return this.amounts[at % AMOUNT_KINDS]!;
  }

  release(length: number): void {
    this.gaps += length;
  }

  /** What it holds, for an image (CampaignCounts.putInto). */
  putInto(image: ImageWriter): { end: number; gaps: number; amountEnds: number[] } {
    image.put(this.steps, this.end);
    this.amounts.forEach((array, kind) => image.put(array, this.amountEnds[kind]));
    return { end: this.end, gaps: this.gaps, amountEnds: [...this.amountEnds] };
  }

  /** Takes what an image holds (putInto), with room to grow as after a load (trim). */
  takeFrom(image: ImageReader, state: { end: number; gaps: number; amountEnds: number[] }): void {
    this.steps = image.take(state.end + (state.end >> 4));
    this.amounts = state.amountEnds.map((end) => image.take(end + (end >> 4)));
    this.amountEnds = [...state.amountEnds];
    this.end = state.end;
    this.gaps = state.gaps;
  }

  /** Bytes the amounts hold. */
  amountBytes(): number {
    return this.amounts.reduce((sum, array) => sum + array.byteLength, 0);
  }

  /** Gives back the room grown beyond what is held, but a sixteenth (after a load, which doubled it as it went). */
  trim(): void {
    const bytes = this.end + (this.end >> 4);
    if (this.steps.length > bytes) this.steps = this.steps.slice(0, bytes);
    for (let kind = 0; kind < AMOUNT_KINDS; kind++) {
      const end = this.amountEnds[kind]!;
      const room = end + (end >> 4);
      if (this.amounts[kind]!.length > room) this.amounts[kind] = this.amounts[kind]!.slice(0, room);
    }
  }
}

type AmountArray = Uint8Array | Float64Array;
/** PartStore.amounts: varints of whole amounts, then 64-bit floats. */
const AMOUNT_KINDS = 2;
const VARINTS = 0;

/**
 * A part's places (or slots) are kept sorted, as the steps from one to the next (the first from
 * -1): a part's ~100 places among a few thousand are mostly less than 255 apart, so a step is one
 * byte where a place took two. A step that does not fit a byte is a 0 (never a step: the numbers
 * are distinct) and the step in the next four bytes.
 */
const WIDE_STEP = 0;

/** Bytes the steps of `sorted` (ascending, distinct, from 0) take (putSteps). */
function stepBytes(sorted: Int32Array): number {
  let bytes = 0;
  let last = -1;
  for (let i = 0; i < sorted.length; i++) {
    bytes += sorted[i]! - last > 0xff ? 5 : 1;
    last = sorted[i]!;
  }
  return bytes;
}

/** Writes the steps of `sorted` (ascending, distinct, from 0) from `at`; where they end. */
function putSteps(bytes: Uint8Array, at: number, sorted: Int32Array): number {
  let last = -1;
  for (let i = 0; i < sorted.length; i++) {
    const step = sorted[i]! - last;
    last = sorted[i]!;
    if (step <= 0xff) bytes[at++] = step;
    else {
      bytes[at++] = WIDE_STEP;
      bytes[at++] = step & 0xff;
      bytes[at++] = (step >>> 8) & 0xff;
      bytes[at++] = (step >>> 16) & 0xff;
      bytes[at++] = step >>> 24;
    }
  }
  return at;
}

/** How many numbers the steps in bytes[from..to) give (putSteps). */
function countSteps(bytes: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; n++) i = nextStep(bytes, i);
  return n;
}

/** The step that starts at `at` (putSteps): loops read `for (let i = from; i < to; i = nextStep(bytes, i)) x += stepAt(bytes, i)`. */
function stepAt(bytes: Uint8Array, at: number): number {
  const step = bytes[at]!;
  if (step !== WIDE_STEP) return step;
  return bytes[at + 1]! | (bytes[at + 2]! << 8) | (bytes[at + 3]! << 16) | (bytes[at + 4]! << 24);
}

/** Where the step after the one at `at` starts. */
function nextStep(bytes: Uint8Array, at: number): number {
  return at + (bytes[at] === WIDE_STEP ? 5 : 1);
}

/** Bytes a whole amount (a 32-bit integer) takes as a varint (putAmount). */
function varintBytes(amount: number): number {
  let z = ((amount << 1) ^ (amount >> 31)) >>> 0;
  let bytes = 1;
  while (z >= 0x80) {
    z >>>= 7;
    bytes += 1;
  }
  return bytes;
}

/** Writes a whole amount from `at`, zigzag (small negative amounts stay short) in 7-bit groups, low first, the high bit set on all but the last; where it ends. */
function putAmount(bytes: Uint8Array, at: number, amount: number): number {
  let z = ((amount << 1) ^ (amount >> 31)) >>> 0;
  while (z >= 0x80) {
    bytes[at++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  bytes[at++] = z;
  return at;
}

/**
 * A part's `n` amounts (PartStore.claimAmounts at `amountsAt`), read into a buffer shared by
 * every caller: read once per part and used before the next part is read (the tables' loop reads
 * them once per table).
 */
function partAmounts(store: PartStore, amountsAt: number, n: number): Float64Array {
  if (n > amountBuffer.length) amountBuffer = new Float64Array(2 * n);
  const from = amountsStart(amountsAt);
  const array = store.amountsIn(amountsAt);
  if (amountsAt % AMOUNT_KINDS !== VARINTS) {
    amountBuffer.set(array.subarray(from, from + n));
    return amountBuffer;
  }
  for (let k = 0, at = from; k < n; k++) {
    let z = array[at++]!;
    if (z >= 0x80) {
      z &= 0x7f;
      let shift = 7;
      let byte: number;
      do {
        byte = array[at++]!;
        z |= (byte & 0x7f) << shift;
        shift += 7;
      } while (byte >= 0x80);
    }
    amountBuffer[k] = (z >>> 1) ^ -(z & 1);
  }
  return amountBuffer;
}
let amountBuffer = new Float64Array(256);

/** Entries of the array the `n` amounts of a part take (bytes of varints, or floats). */
function amountEntries(store: PartStore, amountsAt: number, n: number): number {
  if (amountsAt % AMOUNT_KINDS !== VARINTS) return n;
  const array = store.amountsIn(amountsAt);
  const from = amountsStart(amountsAt);
  let at = from;
  for (let k = 0; k < n; k++) while (array[at++]! >= 0x80);
  return at - from;
}

/** Where a part's amounts start in their array (PartStore.claimAmounts). */
function amountsStart(at: number): number {
  return Math.floor(at / AMOUNT_KINDS);
}

/** Whether an amount is kept exactly by a 32-bit integer (-0 is not). */
function isWhole(amount: number): boolean {
  return Object.is(amount | 0, amount);
}

/** Whole-number counters (never below 0): 8-bit, then 16-bit, while every value fits. */
type Counters = Uint8Array | Uint16Array | Int32Array;

/** Sums and ratio parts: 16-bit, then 32-bit integers while every value is one (summed). */
type Sums = Int16Array | Int32Array | Float64Array;

/** A profile: its codes (NOT_STATED when missing) as small numbers per dimension, in DIMENSION_NAMES order (CountLayout.codeOf; cell ids), and its number (CampaignCounts.profileIds). */
interface Profile {
  ids: ArrayLike<number>;
  n: number;
}

export interface Cell {
  key: string;
  /** Its number in its table (CampaignCounts.cellOf). */
  id: number;
  /** Records whose main part is counted here (the cell exists while there is one). */
  rows: number;
  /**
   * No whole-number counter or population of the cell exceeds this (the weights of the parts
   * counted in): the counters are widened when it passes what they hold, so a record is counted
   * with plain typed-array loops instead of a width check per counter.
   */
  bound: number;
  /** Bumped whenever its counts or institution lists change: what was derived from an older version is stale. */
  version: number;
  /** Whole-number counters and sums (sums, ratio parts), each slot at its place in one of them (CountLayout.places). */
  counts: Counters;
  sums: Sums;
  /** Respondents per population. */
  populations: Counters;
  /**
   * Up to `cap` institutions per population, as bits: population p's list is the bytes from
   * p × listStride, bit m standing for `members[m]` (position lists of `cap` bytes each cost
   * five times as much where, as mostly, a cell names eight institutions or fewer).
   */
  listed: Uint8Array;
  /** Bytes per population in `listed`: one more each time the members pass a multiple of eight (memberOf). */
  listStride: number;
  /** How many institutions each population's list holds (its bits set). */
  institutionN: Uint8Array;
  /** The institution numbers the lists name (some perhaps no longer: memberOf reuses those no list names), each once. */
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
  /** Per dimension (DIMENSION_NAMES order), its profile codes as numbers. */
  private readonly codes = DIMENSION_NAMES.map(() => new Interner());
  readonly responsesSlot: number;
  private readonly numberQuestions: Set<string>;
  private readonly textQuestions: Set<string>;
  private readonly boxes: Map<string, string>;
  private readonly byQuestion = new Map<string, QuestionSlots>();
  private readonly byRatio = new Map<string, number[]>();
  private readonly byItemQuestion = new Map<string, ItemQuestion>();
  private readonly scratch = new SlotAmounts();
  private readonly answered = new Marks();
  /**
   * Per slot, the populations a record counting in it counts in (its question's, and its valid
   * answers' and their indicators' when the slot is a valid answer; a ratio's; the responses'), and
   * the same per whole-number counter: a part's populations are found from its slots
   * (partPopulations) rather than kept with it, where they were about half its numbers.
   */
  private readonly slotPopulations: number[][] = [];
  private readonly countPopulations: number[][] = [];
  private readonly derived = new Marks();
  /** A part's places of ones and its other slots, to be sorted (contribution), reused from record to record. */
  private onesList = new Int32Array(256);
  private othersList = new Int32Array(256);

  constructor(readonly spec: TallySpec) {
    this.numberQuestions = new Set(spec.catalogue.questions.filter((q) => q.kind === 'number').map((q) => q.name));
    this.textQuestions = new Set(spec.catalogue.questions.filter((q) => q.kind === 'text').map((q) => q.name));
    this.boxes = dontKnowBoxes(spec.catalogue);
    this.responsesSlot = this.slot('responses', { kind: 'responses' });
  }

  /** What gives the layout's numbers, for an image (EvidenceStore.image). */
  describe(): LayoutImage {
    return {
      slots: [...this.slotIndex.keys()],
      made: this.slots,
      populations: this.populations.names,
      institutions: this.institutions.names,
      codes: this.codes.map((interner) => interner.names),
      implied: this.slots.map((_, slot) => this.slotPopulations[slot] ?? null),
    };
  }

  /**
   * Gives the slots, populations, institutions and codes of an image the
   * numbers they had there, appending those this layout lacks: false
   * (nothing changed) when a number this layout has given already stands
   * for something else there, since counts are kept by these numbers.
   */
  adopt(image: LayoutImage): boolean {
    const agree = (mine: readonly string[], theirs: readonly string[]) => {
      for (let i = 0; i < Math.min(mine.length, theirs.length); i++) if (mine[i] !== theirs[i]) return false;
      return true;
    };
    const mine = this.describe();
    if (!agree(mine.slots, image.slots) || !agree(mine.populations, image.populations) || !agree(mine.institutions, image.institutions)) return false;
    if (!mine.codes.every((codes, d) => agree(codes, image.codes[d] ?? []))) return false;
    image.slots.forEach((key, i) => this.slot(key, image.made[i]!));
    for (const name of image.populations) this.populations.of(name);
    for (const name of image.institutions) this.institutions.of(name);
    image.codes.forEach((codes, d) => codes.forEach((code) => this.codeOf(d, code)));
    image.implied.forEach((populations, slot) => populations && !this.slotPopulations[slot] && this.implies(slot, populations));
    return true;
  }

  /** The profile code a number stands for (codeOf). */
  codeName(dimension: number, n: number): string {
    return this.codes[dimension]!.names[n]!;
  }

  /** A profile code's number in its dimension (cell ids): codes are survey choices, a few dozen a dimension. */
  codeOf(dimension: number, code: string): number {
    const n = this.codes[dimension]!.of(code);
    if (n >= CODE_RADIX[1]!) throw new Error(`more than ${CODE_RADIX[1]} codes in ${DIMENSION_NAMES[dimension]}`);
    return n;
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
   * What one question counts in, whatever the answer, looked up once and then kept
   * (string keys cost more than the counting). Slots and populations are made when
   * first needed, in the order a record meets them, as before this was kept.
   */
  private questionSlots(question: string): QuestionSlots {
    let known = this.byQuestion.get(question);
    if (!known) {
      known = { question, numericN: -1, sum: -1, dk: -1, items: new Map(), plain: new Map(), population: -1, valid: -1, indicators: [], isNumber: this.numberQuestions.has(question) };
      this.byQuestion.set(question, known);
    }
    return known;
  }

  private itemSlot(question: string, slots: QuestionSlots, item: EvidenceRecord['items'][number], value: string | number | boolean): number {
    // Most answers have neither row nor rank: found by their value itself (a Map tells 3, "3" and true apart, as the key's type does).
    const plain = item.row === undefined && item.rank === undefined;
    if (plain) {
      const known = slots.plain.get(value);
      if (known !== undefined) return known;
    }
    const key = `${item.row ?? ''}|${item.rank ?? ''}|${typeof value}|${String(value)}`;
    let slot = slots.items.get(key);
    if (plain && slot !== undefined) slots.plain.set(value, slot);
    if (slot === undefined) {
      slot = this.slot(`i:${question}:${key}`, {
        kind: 'item',
        question,
        key,
        value,
        ...(item.row !== undefined ? { row: item.row } : {}),
        ...(item.rank !== undefined ? { rank: item.rank } : {}),
      });
      slots.items.set(key, slot);
      if (plain) slots.plain.set(value, slot);
    }
    return slot;
  }

  /** A ratio key's population and slots (numerator, denominator, n), looked up once. */
  private ratioSlots(key: string): number[] {
    let known = this.byRatio.get(key);
    if (!known) {
      known = [
        this.populations.of(key),
        this.slot(`r:${key}:numerator`, { kind: 'ratio', key, part: 'numerator' }),
        this.slot(`r:${key}:denominator`, { kind: 'ratio', key, part: 'denominator' }),
        this.slot(`r:${key}:n`, { kind: 'ratio', key, part: 'n' }),
      ];
      for (const slot of known.slice(1)) this.implies(slot, [known[0]!]);
      this.byRatio.set(key, known);
    }
    return known;
  }

  /**
   * One record's part (its S4 items, or the others) as counters: the same
   * rules as a count from scratch (evidence-tally.ts responseCounter).
   */
  contribution(record: EvidenceRecord, s4: boolean, store: PartStore, rows: RowColumns, part: number): void {
    rows.length[part] = 0;
    const { spec, scratch, answered } = this;
    scratch.reset();
    answered.reset();
    if (!s4) {
      scratch.add(this.responsesSlot, 1);
      answered.add(this.populations.of(RESPONSES));
      if (!this.slotPopulations[this.responsesSlot]) this.implies(this.responsesSlot, [this.populations.of(RESPONSES)]);
    }
    let numbers: Map<string, number> | undefined;
    let any = false;
    for (const item of record.items) {
      if ((item.strand === 'S4') !== s4) continue;
      const counted = this.itemQuestion(item.question);
      any = true;
      const slots = counted.slots;
      if (slots === null) continue;
      const question = slots.question;
      const value = (counted.box ? DONT_KNOW : item.value) as string | number | boolean;
      const isNumeric = typeof value === 'number';
      if (slots.isNumber && isNumeric) (numbers ??= new Map()).set(question, value);
      if (slots.population < 0) slots.population = this.populations.of(question);
      answered.add(slots.population);
      const valid = value !== DONT_KNOW;
      if (valid) {
        if (slots.valid < 0) {
          slots.valid = this.populations.of(validKey(question));
          slots.indicators = (spec.indicatorsOf.get(question) ?? []).map((key) => this.populations.of(key));
        }
        answered.add(slots.valid);
        for (const p of slots.indicators) answered.add(p);
      }
      if (isNumeric) {
        if (slots.numericN < 0) {
          slots.numericN = this.slot(`n:${question}`, { kind: 'numericN', question });
          slots.sum = this.slot(`s:${question}`, { kind: 'sum', question });
          // A number is a valid answer.
          for (const slot of [slots.numericN, slots.sum]) this.implies(slot, [slots.population, slots.valid, ...slots.indicators]);
        }
        scratch.add(slots.numericN, 1);
        scratch.add(slots.sum, value);
      }
      if (!valid) {
        if (slots.dk < 0) {
          slots.dk = this.slot(`d:${question}`, { kind: 'dk', question });
          this.implies(slots.dk, [slots.population]);
        }
        scratch.add(slots.dk, 1);
      }
      if (!(isNumeric && slots.isNumber)) {
        const slot = this.itemSlot(question, slots, item, value);
        // An answer's slot holds its value, so whether it is valid is the slot's too.
        if (!this.slotPopulations[slot]) this.implies(slot, valid ? [slots.population, slots.valid, ...slots.indicators] : [slots.population]);
        scratch.add(slot, 1);
      }
    }
    if (s4 && !any) return;

    const accredited = spec.accredited.has(record.profile.erasmus ?? '');
    for (const ratio of spec.ratios) {
      const parts = numbers && ratioParts(ratio, numbers);
      if (!parts) continue;
      const { numerator, denominator } = parts;
      for (const key of [ratio.code, ...(ratio.byAccreditation ? [accreditationKey(ratio.code, accredited)] : [])]) {
        const [population, numeratorSlot, denominatorSlot, n] = this.ratioSlots(key) as [number, number, number, number];
        answered.add(population);
        scratch.add(numeratorSlot, numerator);
        scratch.add(denominatorSlot, denominator);
        scratch.add(n, 1);
      }
    }
    if (s4 && answered.list.length === 0) return;
    // Split and sorted in reused arrays, sized, then written in place: no list per record to copy from.
    const { used, amounts } = scratch;
    const places = this.places;
    if (used.length > this.onesList.length) {
      this.onesList = new Int32Array(2 * used.length);
      this.othersList = new Int32Array(2 * used.length);
    }
    let nOnes = 0;
    let nOthers = 0;
    let whole = true;
    let weight = 1;
    for (let k = 0; k < used.length; k++) {
      const slot = used[k]!;
      const amount = amounts[slot]!;
      const place = places[slot]!;
      if (amount === 1 && place % 2 === 0) this.onesList[nOnes++] = place >> 1;
      else {
        this.othersList[nOthers++] = slot;
        if (!isWhole(amount)) whole = false;
        if (place % 2 === 0) weight = Math.max(weight, amount);
      }
    }
    const ones = this.onesList.subarray(0, nOnes).sort();
    const others = this.othersList.subarray(0, nOthers).sort();
    const split = stepBytes(ones);
    const length = split + stepBytes(others);
    store.reserve(length);
    const at = store.end;
    putSteps(store.steps, at, ones);
    store.end = putSteps(store.steps, at + split, others);
    // The amounts in the others' (sorted) order.
    let entries = nOthers;
    if (whole) {
      entries = 0;
      for (let k = 0; k < nOthers; k++) entries += varintBytes(amounts[others[k]!]!);
    }
    const amountsAt = store.claimAmounts(entries, whole ? VARINTS : 1);
    const otherAmounts = store.amountsIn(amountsAt);
    let nextAmount = amountsStart(amountsAt);
    if (whole) for (let k = 0; k < nOthers; k++) nextAmount = putAmount(otherAmounts as Uint8Array, nextAmount, amounts[others[k]!]!);
    else for (let k = 0; k < nOthers; k++) otherAmounts[nextAmount++] = amounts[others[k]!]!;
    rows.partAt[part] = at;
    rows.split[part] = split;
    rows.length[part] = length;
    rows.amountsAt[part] = amountsAt;
    rows.weight[part] = weight;
  }

  /**
   * The populations a part counts in, each once: those its slots imply (steps[at..split) are
   * whole-number counters, steps[split..end) slots: putSteps). The list is reused by the next call.
   */
  partPopulations(steps: Uint8Array, at: number, split: number, end: number): readonly number[] {
    const { derived, countPopulations, slotPopulations } = this;
    derived.reset();
    for (let i = at, place = -1; i < split; i = nextStep(steps, i)) {
      place += stepAt(steps, i);
      const implied = countPopulations[place]!;
      for (let k = 0; k < implied.length; k++) derived.add(implied[k]!);
    }
    for (let i = split, slot = -1; i < end; i = nextStep(steps, i)) {
      slot += stepAt(steps, i);
      const implied = slotPopulations[slot]!;
      for (let k = 0; k < implied.length; k++) derived.add(implied[k]!);
    }
    return derived.list;
  }

  private implies(slot: number, populations: number[]): void {
    this.slotPopulations[slot] = populations;
    const place = this.places[slot]!;
    if (place % 2 === 0) this.countPopulations[place >> 1] = populations;
  }

  /**
   * How an item's question is counted, looked up once per question name: the
   * slots of the question it counts for (a "don't know" box counts for its
   * number question, as that question's "don't know"), or null for free text.
   */
  private itemQuestion(name: string): ItemQuestion {
    let known = this.byItemQuestion.get(name);
    if (!known) {
      const box = this.boxes.get(name);
      const question = box ?? name;
      known = { box: box !== undefined, slots: this.textQuestions.has(question) ? null : this.questionSlots(question) };
      this.byItemQuestion.set(name, known);
    }
    return known;
  }
}

/** How the items of one question name are counted (CountLayout.itemQuestion). */
interface ItemQuestion {
  box: boolean;
  slots: QuestionSlots | null;
}

/** The slots and populations of one question that do not depend on the answer (-1: not made yet). */
interface QuestionSlots {
  question: string;
  numericN: number;
  sum: number;
  dk: number;
  /** Per answer (row, rank, type and value), its slot; `plain`: the same for answers without row and rank, by value. */
  items: Map<string, number>;
  plain: Map<string | number | boolean, number>;
  population: number;
  valid: number;
  /** The populations of the indicators drawing on the question (its valid answers); made with `valid`. */
  indicators: number[];
  isNumber: boolean;
}

/** Amounts per slot for the record being turned into a contribution, reused from record to record (no Map per record). */
class SlotAmounts {
  amounts = new Float64Array(256);
  /** Whether a slot is in `used` (an amount can add up to 0). */
  private listed = new Uint8Array(256);
  /** The slots met, in the order first met. */
  readonly used: number[] = [];

  reset(): void {
    for (const slot of this.used) {
      this.amounts[slot] = 0;
      this.listed[slot] = 0;
    }
    this.used.length = 0;
  }

  add(slot: number, amount: number): void {
    if (slot >= this.amounts.length) {
      const length = Math.max(slot + 1, this.amounts.length * 2);
      this.amounts = grownTo(this.amounts, length);
      this.listed = grownTo(this.listed, length);
    }
    if (this.listed[slot] === 0) {
      this.listed[slot] = 1;
      this.used.push(slot);
    }
    this.amounts[slot]! += amount;
  }
}

/** Populations a record counts in, each once, in the order first met (reused from record to record, as SlotAmounts). */
class Marks {
  private marked = new Uint8Array(256);
  readonly list: number[] = [];

  reset(): void {
    for (const p of this.list) this.marked[p] = 0;
    this.list.length = 0;
  }

  add(p: number): void {
    if (p >= this.marked.length) this.marked = grownTo(this.marked, Math.max(p + 1, this.marked.length * 2));
    if (this.marked[p] === 1) return;
    this.marked[p] = 1;
    this.list.push(p);
  }
}

function grownTo<T extends Float64Array | Int32Array | Int16Array | Int8Array | Uint16Array | Uint8Array>(array: T, length: number): T {
  const next = new (array.constructor as new (n: number) => T)(length);
  next.set(array);
  return next;
}

/** What a campaign's counts hold (CampaignCounts.footprint): typed-array bytes per structure, and object counts. */
export interface Footprint {
  records: number;
  profiles: number;
  cells: number;
  cellMembers: number;
  partPlaces: number;
  partAmounts: number;
  /** The records' columns (RowColumns). */
  rowColumns: number;
  /** Bytes of the parts' steps: places of ones, other slots. */
  partOnes: number;
  partOthers: number;
  cellCounts: number;
  cellSums: number;
  cellPopulations: number;
  cellInstitutions: number;
}

function emptyFootprint(): Footprint {
  return { records: 0, profiles: 0, cells: 0, cellMembers: 0, partPlaces: 0, partAmounts: 0, rowColumns: 0, partOnes: 0, partOthers: 0, cellCounts: 0, cellSums: 0, cellPopulations: 0, cellInstitutions: 0 };
}

/** The counts of one campaign (or of every record, for scripts): all its tables, kept current. */
export class CampaignCounts {
  private readonly allTables: Table[];
  private readonly tableIndex = new Map<string, Table>();
  /** Per record id, its row. */
  private readonly rows = new RecordRows();
  private readonly columns = new RowColumns();
  /** Per institution, its first row and its first row with an S4 part (the others linked from there: RowColumns.nextOfInstitution, nextWithS4), and the row whose S4 part counts. */
  private readonly firstOfInstitution = new Map<number, number>();
  private readonly firstWithS4 = new Map<number, number>();
  private readonly s4Current = new Map<number, number>();
  /**
   * Institutions with a new S4 record whose S4 count is not settled yet. A
   * load brings an institution's S4 records one after another, each newer
   * than the last: settling at each took the previous one's S4 answers out
   * of every table and put the next one's in, and left every cell touched
   * with an institution list to rebuild. Settled once, before anything reads
   * the counts (every reader below settles first).
   */
  private readonly unsettledS4 = new Set<number>();
  /** Records applied and not yet counted (see settle). */
  private uncounted: number[] = [];
  private partSum: PartSum | undefined;
  /** The parts of the records held. */
  private parts = new PartStore();
  /** Cells records have left, with the institutions of those records: their lists may name one no longer there. */
  private readonly dirty = new Map<Cell, { t: number; institutions: Set<number> }>();
  /**
   * The tallies of the cells pages showed, least recently used first, with
   * their weights (tallyWeight): at most the layout's tallyWeightKept in all
   * (per campaign: a wave comparison keeps two campaigns' tallies).
   * Kept for as long as their cells lived, they grew with every view a
   * reviewer opened: 175 cross-tabs, filtered and not, at 50,000 responses
   * kept 4,745 tallies, ~400 MB (README, "Memory").
   */
  private readonly tallies = new Map<Cell, { version: number; tally: GroupTally; weight: number }>();
  private talliesWeight = 0;
  /**
   * Per profile, its codes' numbers (Profile.ids), DIMENSION_NAMES.length apart, and its number
   * by those numbers: an object per profile with its codes and their numbers in lists was ~300
   * bytes of heap, for ~15,000 profiles at 50,000 records.
   */
  private profileIds = new Uint16Array(64 * DIMENSION_NAMES.length);
  private readonly profiles = new Map<string, number>();
  /** Per table, its dimensions as DIMENSION_NAMES positions, and its cells by number (codeOf's numbers of the cell's codes, CODE_RADIX apart): found without a string key. */
  private readonly tableDimensions: number[][];
  private readonly cellIndex: Array<Map<number, Cell>>;
  /** Per table, a table of one more dimension holding all of its own (-1: none), and the tables that have one, coarsest last (so that each is added up after its finer table). */
  private readonly finerTable: number[];
  private readonly coarserFirst: number[];
  private changes = 0;
  private shape = 0;

  constructor(
    readonly layout: CountLayout,
    tableList: Dimension[][],
  ) {
    this.allTables = tableList.map((dimensions) => ({ dimensions, cells: new Map() }));
    if (tableList.some((dimensions) => dimensions.length > CODE_RADIX.length)) throw new Error(`a table has more than ${CODE_RADIX.length} dimensions`);
    this.tableDimensions = tableList.map((dimensions) => dimensions.map((d) => DIMENSION_INDEX[d]));
    this.cellIndex = tableList.map(() => new Map());
    this.finerTable = tableList.map((dimensions) =>
      tableList.findIndex((other) => other.length === dimensions.length + 1 && dimensions.every((d) => other.includes(d))),
    );
    this.coarserFirst = tableList
      .map((_, t) => t)
      .filter((t) => this.finerTable[t]! >= 0)
      .sort((a, b) => tableList[b]!.length - tableList[a]!.length);
    for (const table of this.allTables) this.tableIndex.set(groupingKey(table.dimensions), table);
  }

  /**
   * Everything it holds, settled, as arrays put in `image` and what they
   * are (EvidenceStore.image): what takeFrom needs to hold the same. The
   * records' ids go in the order of `rows`, which the cells' institution
   * lists followed.
   */
  putInto(image: ImageWriter): CampaignImage {
    this.settleInstitutions();
    const D = DIMENSION_NAMES.length;
    const pairs = (map: Map<number, number>) => Int32Array.from([...map].flat());
    const columns = this.columns.putInto(image);
    const parts = this.parts.putInto(image);
    image.put(Int32Array.from(this.rows.values()));
    image.put(pairs(this.firstOfInstitution));
    image.put(pairs(this.firstWithS4));
    image.put(pairs(this.s4Current));
    image.put(this.profileIds, this.profiles.size * D);
    const cells: CampaignImage['cells'] = [];
    this.allTables.forEach((table, t) => {
      for (const cell of table.cells.values()) {
        cells.push([t, cell.key, cell.id, cell.rows, cell.bound, cell.version, cell.members, cell.listStride]);
        for (const array of [cell.counts, cell.sums, cell.populations, cell.listed, cell.institutionN]) image.put(array);
      }
    });
    return { ids: [...this.rows.keys()], columns, parts, profiles: this.profiles.size, cells, changes: this.changes, shape: this.shape };
  }

  /** Takes what an image holds (putInto) into these counts, which hold nothing yet. */
  takeFrom(image: ImageReader, held: CampaignImage): void {
    const D = DIMENSION_NAMES.length;
    this.columns.takeFrom(image, held.columns);
    this.parts.takeFrom(image, held.parts);
    const rows = image.take<Int32Array>();
    held.ids.forEach((id, i) => this.rows.set(id, rows[i]!));
    for (const map of [this.firstOfInstitution, this.firstWithS4, this.s4Current]) {
      const pairs = image.take<Int32Array>();
      for (let i = 0; i < pairs.length; i += 2) map.set(pairs[i]!, pairs[i + 1]!);
    }
    this.profileIds = image.take(Math.max(64, held.profiles + (held.profiles >> 4)) * D);
    for (let n = 0; n < held.profiles; n++) this.profiles.set(String.fromCharCode(...this.profileIds.subarray(n * D, n * D + D)), n);
    for (const [t, key, id, rows, bound, version, members, listStride] of held.cells) {
      // One buffer for the cell's five arrays, as emptyCell.
      const [counts, sums, populations, listed, institutionN] = image.takeTogether(5) as [Counters, Sums, Counters, Uint8Array, Uint8Array];
      const cell: Cell = { key, id, rows, bound, version, counts, sums, populations, listed, listStride, institutionN, members };
      this.allTables[t]!.cells.set(key, cell);
      this.cellIndex[t]!.set(id, cell);
    }
    this.changes = held.changes;
    this.shape = held.shape;
  }

  /** Every table, its cells counted up to date. */
  get tables(): readonly Table[] {
    this.settle();
    return this.allTables;
  }

  /** Bumped on every change: what was derived from an older version is stale. */
  get version(): number {
    this.settle();
    return this.changes;
  }

  /** Bumped when a cell appears or goes: the lattice's lines change. */
  get structure(): number {
    this.settle();
    return this.shape;
  }

  get size(): number {
    return this.rows.size;
  }

  ids(): IterableIterator<string> {
    return this.rows.keys();
  }

  has(id: string): boolean {
    return this.rows.has(id);
  }

  /** Bytes held in typed arrays, per structure, and how many of each object (bench:evidence:memory prints them). */
  footprint(): Footprint {
    const f = emptyFootprint();
    f.records = this.rows.size;
    f.profiles = this.profiles.size;
    f.partPlaces = this.parts.steps.byteLength;
    f.partAmounts = this.parts.amountBytes();
    const { split, length } = this.columns;
    f.rowColumns = this.columns.bytes() + this.rows.bytes();
    for (const row of this.rows.values()) {
      for (const part of [2 * row, 2 * row + 1]) {
        f.partOnes += split[part]!;
        f.partOthers += length[part]! - split[part]!;
      }
    }
    for (const table of this.allTables) {
      for (const cell of table.cells.values()) {
        f.cells += 1;
        f.cellCounts += cell.counts.byteLength;
        f.cellSums += cell.sums.byteLength;
        f.cellPopulations += cell.populations.byteLength;
        f.cellInstitutions += cell.listed.byteLength + cell.institutionN.byteLength;
        f.cellMembers += cell.members.length;
      }
    }
    return f;
  }

  table(dimensions: readonly Dimension[]): Table | undefined {
    this.settle();
    return this.tableIndex.get(groupingKey(dimensions));
  }

  apply(record: EvidenceRecord): void {
    const old = this.rows.get(record.id);
    // A load that read a record before this process stored its next revision must not take it back.
    if (old !== undefined && this.columns.revision[old]! > record.revision) return;
    if (old !== undefined) this.removeRow(record.id, old);
    if (this.parts.gaps > 4096 && this.parts.gaps > this.parts.end / 2) this.compactParts();
    const columns = this.columns;
    const row = columns.take();
    const institution = this.layout.institutions.of(record.institution);
    columns.revision[row] = record.revision;
    columns.institution[row] = institution;
    columns.at[row] = record.submittedAt.getTime();
    columns.profile[row] = this.profileOf(DIMENSION_NAMES.map((d) => record.profile[d] ?? NOT_STATED));
    this.layout.contribution(record, false, this.parts, columns, 2 * row);
    this.layout.contribution(record, true, this.parts, columns, 2 * row + 1);
    columns.s4Rank[row] = columns.hasS4(row) ? contentRank(record) : 0;
    this.rows.set(record.id, row);
    columns.nextOfInstitution[row] = this.firstOfInstitution.get(institution) ?? -1;
    this.firstOfInstitution.set(institution, row);
    this.uncounted.push(row);
    if (columns.hasS4(row)) {
      columns.nextWithS4[row] = this.firstWithS4.get(institution) ?? -1;
      this.firstWithS4.set(institution, row);
      this.unsettledS4.add(institution);
    }
    this.changes += 1;
  }

  /** A profile's number, the profile kept once (keyed by its codes' numbers). */
  private profileOf(codes: string[]): number {
    const ids = codes.map((code, d) => this.layout.codeOf(d, code));
    const key = String.fromCharCode(...ids);
    let n = this.profiles.get(key);
    if (n === undefined) {
      n = this.profiles.size;
      const at = n * ids.length;
      if (at + ids.length > this.profileIds.length) this.profileIds = grownTo(this.profileIds, 2 * this.profileIds.length);
      this.profileIds.set(ids, at);
      this.profiles.set(key, n);
    }
    return n;
  }

  private profile(n: number): Profile {
    const D = DIMENSION_NAMES.length;
    return { n, ids: this.profileIds.subarray(n * D, n * D + D) };
  }

  private profileOfRow(row: number): Profile {
    return this.profile(this.columns.profile[row]!);
  }

  /** A profile's cell key in a table of these dimensions: its codes of the table's dimensions (canonical order), joined. */
  private cellKeyOf(dimensions: readonly Dimension[], ids: ArrayLike<number>): string {
    let key = '';
    for (let i = 0; i < dimensions.length; i++) {
      const d = DIMENSION_INDEX[dimensions[i]!];
      key += (i ? '|' : '') + this.layout.codeName(d, ids[d]!);
    }
    return key;
  }

  remove(id: string): void {
    const row = this.rows.get(id);
    if (row === undefined) return;
    this.removeRow(id, row);
    this.changes += 1;
  }

  private removeRow(id: string, row: number): void {
    // Its part, and its institution's S4 part, are taken out of counts that hold every record.
    this.settle();
    const columns = this.columns;
    const institution = columns.institution[row]!;
    this.rows.delete(id);
    unlink(this.firstOfInstitution, columns.nextOfInstitution, institution, row);
    if (columns.hasS4(row)) {
      unlink(this.firstWithS4, columns.nextWithS4, institution, row);
      this.settleS4(institution);
    }
    this.count(row, 2 * row, -1);
    this.parts.release(columns.length[2 * row]! + columns.length[2 * row + 1]!);
    columns.release(row);
  }

  /** Copies the parts of the records held together, leaving out the gaps of those that left. */
  private compactParts(): void {
    const from = this.parts;
    const to = new PartStore();
    const { partAt, split, length, amountsAt } = this.columns;
    let bytes = 0;
    for (const row of this.rows.values()) for (const part of [2 * row, 2 * row + 1]) bytes += length[part]!;
    to.reserve(bytes);
    for (const row of this.rows.values()) {
      for (const part of [2 * row, 2 * row + 1]) {
        const others = countSteps(from.steps, partAt[part]! + split[part]!, partAt[part]! + length[part]!);
        const old = amountsAt[part]!;
        const entries = amountEntries(from, old, others);
        const moved = to.claimAmounts(entries, old % AMOUNT_KINDS);
        to.steps.set(from.steps.subarray(partAt[part]!, partAt[part]! + length[part]!), to.end);
        to.amountsIn(moved).set(from.amountsIn(old).subarray(amountsStart(old), amountsStart(old) + entries), amountsStart(moved));
        partAt[part] = to.end;
        amountsAt[part] = moved;
        to.end += length[part]!;
      }
    }
    this.parts = to;
  }

  /**
   * Counts the records applied since the counts were last read, and settles
   * their institutions' S4 parts: before anything reads the counts, and
   * before a record leaves. They are counted profile by profile: the parts
   * of the records of one profile are added up first (one small array, in
   * cache), and that sum goes once into each of the profile's ~42 cells.
   * Counting each record into its cells read and wrote ~40 KB of counters
   * scattered over every table, per record: what a cold load spent most of
   * its time on (see the README's figures).
   */
  settle(): void {
    if (this.uncounted.length === 0 && this.unsettledS4.size === 0) return;
    const uncounted = this.uncounted;
    this.uncounted = [];
    const waiting = new Set(uncounted);
    /** Records whose S4 part is the one to count and is counted with their main part. */
    const withS4 = new Set<number>();
    for (const institution of this.unsettledS4) {
      const latest = this.latestS4(institution);
      const current = this.s4Current.get(institution);
      if (current === latest) continue;
      // The one counted before has its main part counted: it goes out alone.
      if (current !== undefined) this.count(current, 2 * current + 1, -1, false);
      if (latest === undefined) this.s4Current.delete(institution);
      else {
        this.s4Current.set(institution, latest);
        if (waiting.has(latest)) withS4.add(latest);
        else this.count(latest, 2 * latest + 1, 1, false);
      }
    }
    this.unsettledS4.clear();
    const byProfile = new Map<number, number[]>();
    for (const row of uncounted) {
      const profile = this.columns.profile[row]!;
      let same = byProfile.get(profile);
      if (!same) byProfile.set(profile, (same = []));
      same.push(row);
    }
    // Counts holding nothing yet (a load): only the finest tables are counted from the records; each coarser one is added up from a finer one's cells.
    const empty = this.allTables.every((table) => table.cells.size === 0);
    const sum = (this.partSum ??= new PartSum());
    // A load counts the finest tables from the profiles, or from a grouping of five dimensions between them when that is fewer additions (see between).
    const groupings = empty ? this.between([...byProfile.keys()].map((n) => this.profile(n))) : [];
    const direct = this.allTables.map((_, t) => !(empty && (this.finerTable[t]! >= 0 || groupings.some((g) => g.tables.includes(t)))));
    for (const [n, rows] of byProfile) {
      const profile = this.profile(n);
      sum.reset(this.layout);
      for (const row of rows) {
        const institution = this.columns.institution[row]!;
        sum.add(this.parts, this.columns, 2 * row, institution, this.layout);
        if (withS4.has(row)) sum.add(this.parts, this.columns, 2 * row + 1, institution, this.layout);
      }
      for (let t = 0; t < this.allTables.length; t++) {
        if (!direct[t]) continue;
        const cell = this.cellOf(t, profile);
        addSum(cell, sum, this.layout);
        cell.rows += rows.length;
      }
      for (const grouping of groupings) {
        const key = grouping.keyOf(profile);
        let group = grouping.groups.get(key);
        if (!group) grouping.groups.set(key, (group = { profile, cell: this.emptyCell('', -1) }));
        addSum(group.cell, sum, this.layout);
        group.cell.rows += rows.length;
      }
    }
    for (const grouping of groupings) {
      for (const { profile, cell: source } of grouping.groups.values()) {
        for (const t of grouping.tables) addCell(this.cellOf(t, profile), source, this.layout);
      }
    }
    if (!empty) return;
    for (const t of this.coarserFirst) this.addUp(t);
    this.parts.trim();
    this.columns.trim();
  }

  /**
   * Groupings of five dimensions (each leaving one out) through which a
   * load counts some of its finest tables: a profile is added to its group,
   * and each group once to each finest table without the dimension left out,
   * instead of every profile to each. Profiles are many (a role within an
   * institution, ~15,000 at 50,000 records) where the groups without one
   * dimension can be few (without the role: ~2,500 there), so this saves
   * additions when groups are fewer than profiles by enough. Chosen greedily,
   * each for the tables no grouping chosen before counts.
   */
  private between(profiles: readonly Profile[]): Array<{ tables: number[]; keyOf: (profile: Profile) => string; groups: Map<string, { profile: Profile; cell: Cell }> }> {
    const list = profiles;
    const finest = this.allTables.map((_, t) => t).filter((t) => this.finerTable[t]! < 0 && this.tableDimensions[t]!.length > 0);
    const keyOf = (left: number) => (profile: Profile) => Array.prototype.filter.call(profile.ids, (_, d) => d !== left).join(',');
    const sizes = DIMENSION_NAMES.map((_, left) => new Set(list.map(keyOf(left))).size);
    const chosen: ReturnType<CampaignCounts['between']> = [];
    const covered = new Set<number>();
    for (;;) {
      let best = -1;
      let bestSaving = 0;
      for (let left = 0; left < DIMENSION_NAMES.length; left++) {
        const tables = finest.filter((t) => !covered.has(t) && !this.tableDimensions[t]!.includes(left));
        // Additions saved: each such table gets groups instead of profiles, against one addition per profile to the groups.
        const saving = tables.length * (list.length - sizes[left]!) - list.length;
        if (saving > bestSaving) [best, bestSaving] = [left, saving];
      }
      if (best < 0) return chosen;
      const tables = finest.filter((t) => !covered.has(t) && !this.tableDimensions[t]!.includes(best));
      for (const t of tables) covered.add(t);
      chosen.push({ tables, keyOf: keyOf(best), groups: new Map() });
    }
  }

  /** A cell with nothing counted, sized for the layout: of a table (cellOf), or of no table (a group of CampaignCounts.between: key '', id -1). */
  private emptyCell(key: string, id: number): Cell {
    const populationCount = this.layout.populations.names.length;
    // The cell's five arrays share one buffer (each array of its own costs ~200 bytes of heap besides its values, more than a fine cell's values); one that grows or widens later gets a buffer of its own.
    const sizes = [this.layout.sumSlots * 2, this.layout.countSlots, populationCount, populationCount, populationCount];
    const starts = [0];
    for (const size of sizes) starts.push(starts.at(-1)! + Math.ceil(size / 8) * 8);
    const buffer = new ArrayBuffer(starts.at(-1)!);
    return {
      key,
      id,
      rows: 0,
      bound: 0,
      version: 0,
      sums: new Int16Array(buffer, starts[0], this.layout.sumSlots),
      counts: new Uint8Array(buffer, starts[1], sizes[1]),
      populations: new Uint8Array(buffer, starts[2], sizes[2]),
      listed: new Uint8Array(buffer, starts[3], sizes[3]),
      listStride: 1,
      institutionN: new Uint8Array(buffer, starts[4], sizes[4]),
      members: [],
    };
  }

  /**
   * Table `t`'s cells as the sums of its finer table's cells (every finer
   * cell falls in one of t's, as its records do): a finer cell holds the
   * sum of its records' parts, so its counters, sums, populations and rows
   * add up; capped institution lists merge capped (exact up to the cap,
   * all disclosure reads). A cold load's 22 coarser tables then cost one
   * addition per finer cell instead of one per profile.
   */
  private addUp(t: number): void {
    const finer = this.finerTable[t]!;
    const finerDimensions = this.tableDimensions[finer]!;
    const dimensions = this.tableDimensions[t]!;
    const ids = new Array<number>(DIMENSION_NAMES.length).fill(0);
    for (const source of this.allTables[finer]!.cells.values()) {
      finerDimensions.forEach((d, position) => (ids[d] = Math.floor(source.id / CODE_RADIX[position]!) % CODE_RADIX[1]!));
      const cell = this.cellOf(t, { ids });
      addCell(cell, source, this.layout);
    }
  }

  private latestS4(institution: number): number | undefined {
    const { at, s4Rank, nextWithS4 } = this.columns;
    let latest: number | undefined;
    for (let row = this.firstWithS4.get(institution) ?? -1; row >= 0; row = nextWithS4[row]!) {
      if (latest === undefined || at[row]! > at[latest]! || (at[row] === at[latest] && s4Rank[row]! > s4Rank[latest]!)) latest = row;
    }
    return latest;
  }

  /**
   * Makes the institution's latest S4 record the one counted. A record
   * leaving settles its institution at once: its S4 part must come out of
   * the tables while its main part still holds its cells.
   */
  private settleS4(institution: number): void {
    this.unsettledS4.delete(institution);
    const latest = this.latestS4(institution);
    const current = this.s4Current.get(institution);
    if (current === latest) return;
    if (current !== undefined) this.count(current, 2 * current + 1, -1, false);
    if (latest !== undefined) {
      this.s4Current.set(institution, latest);
      this.count(latest, 2 * latest + 1, 1, false);
    } else this.s4Current.delete(institution);
  }

  /** The number of the profile's cell in table `t` (Cell.id). */
  private cellIdOf(t: number, ids: ArrayLike<number>): number {
    const dimensions = this.tableDimensions[t]!;
    let id = 0;
    for (let d = 0; d < dimensions.length; d++) id += ids[dimensions[d]!]! * CODE_RADIX[d]!;
    return id;
  }

  /** The profile's cell in table `t`, made (empty) when there is none. */
  private cellOf(t: number, profile: Pick<Profile, 'ids'>): Cell {
    const id = this.cellIdOf(t, profile.ids);
    const index = this.cellIndex[t]!;
    let cell = index.get(id);
    if (cell) return cell;
    const table = this.allTables[t]!;
    const key = this.cellKeyOf(table.dimensions, profile.ids);
    cell = this.emptyCell(key, id);
    table.cells.set(key, cell);
    index.set(id, cell);
    this.shape += 1;
    return cell;
  }

  /** Adds (sign 1) or takes out (sign −1) a contribution in every table. `main` parts decide whether a cell exists. */
  private count(row: number, part: number, sign: 1 | -1, main = true): void {
    const { layout, columns } = this;
    const cap = layout.spec.institutionCap;
    const { places } = layout;
    const { steps } = this.parts;
    const at = columns.partAt[part]!;
    const weight = columns.weight[part]!;
    const split = at + columns.split[part]!;
    const end = at + columns.length[part]!;
    const amounts = partAmounts(this.parts, columns.amountsAt[part]!, countSteps(steps, split, end));
    const populations = layout.partPopulations(steps, at, split, end);
    const profile = this.profileOfRow(row);
    const institution = columns.institution[row]!;
    for (let t = 0; t < this.allTables.length; t++) {
      const table = this.allTables[t]!;
      const cell = this.cellOf(t, profile);
      fitLayout(cell, layout);
      cell.version += 1;
      cell.bound += sign * weight;
      if (sign > 0) {
        cell.counts = wide(cell.counts, cell.bound);
        cell.populations = wide(cell.populations, cell.bound);
      }
      addSteps(cell.counts, steps, at, split, sign);
      addOnes(cell.populations, populations, 0, populations.length, sign);
      for (let i = split, slot = -1, a = 0; i < end; i = nextStep(steps, i), a++) {
        slot += stepAt(steps, i);
        const place = places[slot]!;
        const amount = sign * amounts[a]!;
        if (place % 2 === 1) cell.sums = summed(cell.sums, place >> 1, amount);
        else cell.counts[place >> 1]! += amount;
      }
      if (sign > 0) addInstitution(cell, populations, institution, cap);
      else {
        let suspects = this.dirty.get(cell);
        if (!suspects) this.dirty.set(cell, (suspects = { t, institutions: new Set() }));
        suspects.institutions.add(institution);
      }
      if (main) {
        cell.rows += sign;
        if (cell.rows === 0) {
          table.cells.delete(cell.key);
          this.cellIndex[t]!.delete(cell.id);
          this.forgetTally(cell);
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
   * population, it leaves the list, and a list that was full takes in other
   * institutions of that cell's records until it is full again (refill). A
   * list holds min(cap, institutions present) of them, whichever they are.
   */
  settleInstitutions(): void {
    this.settle();
    if (this.dirty.size === 0) return;
    const cap = this.layout.spec.institutionCap;
    let suspects = 0;
    for (const { institutions } of this.dirty.values()) suspects += institutions.size;
    // After a load (every S4 taken over by a later one) looking for each institution costs more than one pass over every record.
    if (suspects > BULK_SUSPECTS && suspects > this.rows.size / 8) {
      const rebuild = new Set(this.dirty.keys());
      this.dirty.clear();
      for (const cell of rebuild) {
        cell.version += 1;
        cell.institutionN.fill(0);
        cell.listed.fill(0);
        cell.members = [];
      }
      this.refill(rebuild, () => false);
      return;
    }
    // The populations whose full list lost an institution, by cell.
    const short = new Map<Cell, number[]>();
    const decoded = new Map<number, readonly number[]>();
    const populations = (part: number) => {
      let known = decoded.get(part);
      if (!known) decoded.set(part, (known = [...this.populationsOf(part)]));
      return known;
    };
    for (const [cell, { t, institutions }] of this.dirty) {
      cell.version += 1;
      for (const institution of institutions) {
        const present = new Set<number>();
        for (let row = this.firstOfInstitution.get(institution) ?? -1; row >= 0; row = this.columns.nextOfInstitution[row]!) {
          if (this.cellIdOf(t, this.profileOfRow(row).ids) !== cell.id) continue;
          for (const p of populations(2 * row)) present.add(p);
          if (this.s4Current.get(institution) === row) for (const p of populations(2 * row + 1)) present.add(p);
        }
        const member = cell.members.indexOf(institution);
        if (member < 0) continue;
        const bit = 1 << (member & 7);
        for (let p = 0; p < cell.institutionN.length; p++) {
          const n = cell.institutionN[p]!;
          if (n === 0 || present.has(p)) continue;
          const at = p * cell.listStride + (member >> 3);
          if ((cell.listed[at]! & bit) === 0) continue;
          cell.listed[at]! &= ~bit;
          cell.institutionN[p] = n - 1;
          if (n === cap) short.set(cell, [...(short.get(cell) ?? []), p]);
        }
      }
    }
    this.dirty.clear();
    if (short.size === 0) return;
    // A list that is not full holds every institution present, so only the short ones take in more; once they are full the
    // pass ends (a cell where many institutions answer finds one at its first records, where a pass over all cost 17-72 ms at 50,000).
    this.refill(new Set(short.keys()), (cell) => {
      const full = short.get(cell)!.every((p) => cell.institutionN[p] === cap);
      if (full) short.delete(cell);
      return full;
    });
  }

  /**
   * Lists the institutions of every record in `cells` (addInstitution: a full
   * list takes no more), record by record, until `done` says a cell has what
   * it needs (it is looked at no more) or the records end.
   */
  private refill(cells: Set<Cell>, done: (cell: Cell) => boolean): void {
    const cap = this.layout.spec.institutionCap;
    // Each cell with its table's dimensions, in the tables' order; a record is in it when its profile's codes give its id
    // (cellIdOf, from the profiles' codes in place, not a key looked up per table for every record).
    const targets: Array<{ cell: Cell; dimensions: readonly number[] }> = [];
    this.allTables.forEach((table, t) => {
      for (const cell of table.cells.values()) if (cells.has(cell)) targets.push({ cell, dimensions: this.tableDimensions[t]! });
    });
    const D = DIMENSION_NAMES.length;
    const codes = this.profileIds;
    for (const row of this.rows.values()) {
      const at = this.columns.profile[row]! * D;
      let parts: Array<readonly number[]> | undefined;
      for (let k = 0; k < targets.length; k++) {
        const { cell, dimensions } = targets[k]!;
        let id = 0;
        for (let d = 0; d < dimensions.length; d++) id += codes[at + dimensions[d]!]! * CODE_RADIX[d]!;
        if (id !== cell.id || !cells.has(cell)) continue;
        const institution = this.columns.institution[row]!;
        parts ??= (this.s4Current.get(institution) === row ? [2 * row, 2 * row + 1] : [2 * row]).map((part) => [...this.populationsOf(part)]);
        for (const populations of parts) addInstitution(cell, populations, institution, cap);
        if (done(cell)) cells.delete(cell);
      }
      if (cells.size === 0) return;
    }
  }

  /** The populations a part counts in (CountLayout.partPopulations: reused by the next call). */
  private populationsOf(part: number): readonly number[] {
    const { partAt, split, length } = this.columns;
    return this.layout.partPopulations(this.parts.steps, partAt[part]!, partAt[part]! + split[part]!, partAt[part]! + length[part]!);
  }

  /**
   * One cell as the indicator code reads it (empty counters left out, as a
   * count from scratch would); made again only when the cell changed, so a
   * page after a response rebuilds only the cells that response is in.
   */
  tally(cell: Cell): GroupTally {
    this.settle();
    const known = this.tallies.get(cell);
    if (known && known.version === cell.version) {
      // The most recently used last.
      this.tallies.delete(cell);
      this.tallies.set(cell, known);
      return known.tally;
    }
    this.forgetTally(cell);
    const tally = this.freshTally(cell);
    const weight = tallyWeight(tally);
    this.tallies.set(cell, { version: cell.version, tally, weight });
    this.talliesWeight += weight;
    const most = this.layout.spec.tallyWeightKept ?? TALLY_WEIGHT_KEPT;
    for (const [oldest, kept] of this.tallies) {
      if (this.talliesWeight <= most || oldest === cell) break;
      this.tallies.delete(oldest);
      this.talliesWeight -= kept.weight;
    }
    return tally;
  }

  /** How many cells' tallies are kept, and their weight in all (tests). */
  get talliesKept(): { cells: number; weight: number } {
    return { cells: this.tallies.size, weight: this.talliesWeight };
  }

  private forgetTally(cell: Cell): void {
    const known = this.tallies.get(cell);
    if (!known) return;
    this.tallies.delete(cell);
    this.talliesWeight -= known.weight;
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
    const names = this.layout.populations.names;
    // The populations of a cell mostly list the same institutions (its first few): one set for each list, shared (the
    // tallies of the 122 cells the benchmark's pages show held 20,153 sets, 799 of them different, 4.5 MB at 50,000
    // responses). Nothing changes a kept tally's sets: a coarser tally made from it copies them (addTally).
    const shared = new Map<string, Set<string>>();
    const members: number[] = [];
    for (let p = 0; p < Math.min(cell.populations.length, names.length); p++) {
      const respondents = cell.populations[p]!;
      if (respondents === 0) continue;
      members.length = 0;
      forListed(cell, p, (member) => members.push(member));
      const key = members.join(',');
      let institutions = shared.get(key);
      if (!institutions) shared.set(key, (institutions = new Set(members.map((member) => this.layout.institutions.names[cell.members[member]!]!))));
      tally.populations.set(names[p]!, { respondents, institutions });
    }
    return tally;
  }
}

/**
 * The most the kept tallies weigh in all (CampaignCounts.tally), a tally
 * weighing its questions, answer items and populations (tallyWeight): about
 * 150 bytes each, so ~38 MB. The four page kinds of bench:evidence:memory
 * show 122 cells weighing ~65,000 at 50,000 responses; a tally let go is
 * made again from its cell when a page shows it.
 */
export const TALLY_WEIGHT_KEPT = 250_000;

function tallyWeight(tally: GroupTally): number {
  let weight = 1 + tally.questions.size + tally.populations.size + tally.ratios.size;
  for (const q of tally.questions.values()) weight += q.items.size;
  return weight;
}

/** Makes room in a cell for the slots and populations that appeared since it was made. */
function fitLayout(cell: Cell, layout: CountLayout): void {
  const { countSlots, sumSlots } = layout;
  const populationCount = layout.populations.names.length;
  if (cell.counts.length < countSlots) cell.counts = grown(cell.counts, countSlots);
  if (cell.sums.length < sumSlots) cell.sums = grown(cell.sums, sumSlots);
  if (cell.populations.length < populationCount) {
    cell.populations = grown(cell.populations, populationCount);
    cell.institutionN = grown(cell.institutionN, populationCount);
    // Population p's bits start at p × listStride, so the rows keep their places in a longer array.
    const listed = new Uint8Array(cell.institutionN.length * cell.listStride);
    listed.set(cell.listed);
    cell.listed = listed;
  }
}

/**
 * The parts of several records of one profile added up (CampaignCounts.settle):
 * dense arrays indexed as a cell's, with the places, sums and populations
 * touched listed, so that adding it to a cell costs what it holds. Institutions:
 * up to the cap per population, in the records' order, as a cell would list them.
 */
class PartSum {
  counts = new Float64Array(0);
  sums = new Float64Array(0);
  populations = new Float64Array(0);
  /** Per population, up to the cap of the parts' institutions, as positions in `distinct`. */
  institutions = new Int32Array(0);
  institutionN = new Uint8Array(0);
  /** The parts' institutions, each once, in the order first met (a profile's records come from a few). */
  readonly distinct: number[] = [];
  readonly countsUsed: number[] = [];
  readonly sumsUsed: number[] = [];
  readonly populationsUsed: number[] = [];
  /** The sum of the parts' weights: as Cell.bound. */
  bound = 0;
  /** Per institution of `distinct`, its position in the cell being added to (listSumInstitutions). */
  readonly members: number[] = [];

  reset(layout: CountLayout): void {
    for (const i of this.countsUsed) this.counts[i] = 0;
    for (const i of this.sumsUsed) this.sums[i] = 0;
    for (const p of this.populationsUsed) {
      this.populations[p] = 0;
      this.institutionN[p] = 0;
    }
    this.countsUsed.length = this.sumsUsed.length = this.populationsUsed.length = this.distinct.length = 0;
    this.bound = 0;
    const cap = layout.spec.institutionCap;
    const populationCount = layout.populations.names.length;
    if (this.counts.length < layout.countSlots) this.counts = new Float64Array(layout.countSlots + 64);
    if (this.sums.length < layout.sumSlots) this.sums = new Float64Array(layout.sumSlots + 64);
    if (this.populations.length < populationCount) {
      this.populations = new Float64Array(populationCount + 64);
      this.institutionN = new Uint8Array(populationCount + 64);
      this.institutions = new Int32Array((populationCount + 64) * cap);
    }
  }

  add(store: PartStore, columns: RowColumns, part: number, institution: number, layout: CountLayout): void {
    const { steps } = store;
    const at = columns.partAt[part]!;
    const split = at + columns.split[part]!;
    const end = at + columns.length[part]!;
    const amounts = partAmounts(store, columns.amountsAt[part]!, countSteps(steps, split, end));
    const cap = layout.spec.institutionCap;
    this.bound += columns.weight[part]!;
    for (let i = at, place = -1; i < split; i = nextStep(steps, i)) {
      place += stepAt(steps, i);
      this.addCount(place, 1);
    }
    for (let i = split, slot = -1, a = 0; i < end; i = nextStep(steps, i), a++) {
      slot += stepAt(steps, i);
      const place = layout.places[slot]!;
      if (place % 2 === 0) this.addCount(place >> 1, amounts[a]!);
      else {
        const k = place >> 1;
        if (this.sums[k] === 0 && !this.sumsUsed.includes(k)) this.sumsUsed.push(k);
        this.sums[k]! += amounts[a]!;
      }
    }
    let local = this.distinct.indexOf(institution);
    if (local < 0) local = this.distinct.push(institution) - 1;
    const populations = layout.partPopulations(steps, at, split, end);
    for (let i = 0; i < populations.length; i++) {
      const p = populations[i]!;
      if (this.populations[p] === 0) this.populationsUsed.push(p);
      this.populations[p]! += 1;
      const n = this.institutionN[p]!;
      if (n >= cap) continue;
      let known = false;
      for (let k = p * cap; k < p * cap + n; k++) if (this.institutions[k] === local) known = true;
      if (known) continue;
      this.institutions[p * cap + n] = local;
      this.institutionN[p] = n + 1;
    }
  }

  private addCount(k: number, amount: number): void {
    // Counts only grow here (amounts of whole-number counters are positive), so 0 means not listed yet.
    if (this.counts[k] === 0) this.countsUsed.push(k);
    this.counts[k]! += amount;
  }
}

/** Adds a PartSum to a cell (what counting each of its records there would do). */
function addSum(cell: Cell, sum: PartSum, layout: CountLayout): void {
  fitLayout(cell, layout);
  cell.version += 1;
  cell.bound += sum.bound;
  cell.counts = wide(cell.counts, cell.bound);
  cell.populations = wide(cell.populations, cell.bound);
  const { counts, populations } = cell;
  for (const k of sum.countsUsed) counts[k]! += sum.counts[k]!;
  for (const k of sum.sumsUsed) cell.sums = summed(cell.sums, k, sum.sums[k]!);
  for (const p of sum.populationsUsed) populations[p]! += sum.populations[p]!;
  listSumInstitutions(cell, sum, layout.spec.institutionCap);
}

/** A PartSum's institution lists added to a cell's (not beyond the cap), each institution's position in the cell found once. */
function listSumInstitutions(cell: Cell, sum: PartSum, cap: number): void {
  const member = sum.members;
  member.length = 0;
  for (let j = 0; j < sum.distinct.length; j++) member.push(-1);
  for (const p of sum.populationsUsed) {
    let n = cell.institutionN[p]!;
    for (let k = 0; k < sum.institutionN[p]! && n < cap; k++) {
      const local = sum.institutions[p * cap + k]!;
      let m = member[local]!;
      if (m < 0) member[local] = m = memberOf(cell, sum.distinct[local]!);
      const at = p * cell.listStride + (m >> 3);
      const bit = 1 << (m & 7);
      if ((cell.listed[at]! & bit) !== 0) continue;
      cell.listed[at]! |= bit;
      cell.institutionN[p] = ++n;
    }
  }
}

/** Adds a cell's counts to a coarser cell's (CampaignCounts.addUp). */
function addCell(cell: Cell, source: Cell, layout: CountLayout): void {
  fitLayout(cell, layout);
  cell.version += 1;
  cell.rows += source.rows;
  cell.bound += source.bound;
  cell.counts = wide(cell.counts, cell.bound);
  cell.populations = wide(cell.populations, cell.bound);
  const { counts, populations } = cell;
  const from = source.counts;
  for (let k = 0; k < from.length; k++) counts[k]! += from[k]!;
  for (let k = 0; k < source.sums.length; k++) if (source.sums[k] !== 0) cell.sums = summed(cell.sums, k, source.sums[k]!);
  const cap = layout.spec.institutionCap;
  for (let p = 0; p < source.populations.length; p++) {
    if (source.populations[p] === 0) continue;
    populations[p]! += source.populations[p]!;
    forListed(source, p, (member) => cell.institutionN[p]! < cap && listInstitution(cell, p, source.members[member]!));
  }
}

/** Puts an institution in a population's list of a cell (not full), unless it is there. */
function listInstitution(cell: Cell, p: number, institution: number): void {
  const member = memberOf(cell, institution);
  const at = p * cell.listStride + (member >> 3);
  const bit = 1 << (member & 7);
  if ((cell.listed[at]! & bit) !== 0) return;
  cell.listed[at]! |= bit;
  cell.institutionN[p]! += 1;
}

/** Calls `each` with the member position of every institution in population p's list of a cell (a false return ends it). */
function forListed(cell: Cell, p: number, each: (member: number) => unknown): void {
  const from = p * cell.listStride;
  for (let b = 0; b < cell.listStride; b++) {
    for (let bits = cell.listed[from + b]!; bits !== 0; bits &= bits - 1) {
      if (each(b * 8 + (31 - Math.clz32(bits & -bits))) === false) return;
    }
  }
}

/**
 * An institution's position in a cell's members, given one if it has none: a
 * free bit of every list, else the place of a member no list names any more
 * (settleInstitutions took it out), else every list one byte longer.
 */
function memberOf(cell: Cell, institution: number): number {
  const known = cell.members.indexOf(institution);
  if (known >= 0) return known;
  if (cell.members.length < cell.listStride * 8) return cell.members.push(institution) - 1;
  const stride = cell.listStride;
  const named = new Uint8Array(stride);
  for (let p = 0; p < cell.institutionN.length; p++) {
    if (cell.institutionN[p] === 0) continue;
    for (let b = 0; b < stride; b++) named[b]! |= cell.listed[p * stride + b]!;
  }
  for (let m = 0; m < cell.members.length; m++) {
    if ((named[m >> 3]! & (1 << (m & 7))) !== 0) continue;
    cell.members[m] = institution;
    return m;
  }
  const listed = new Uint8Array(cell.institutionN.length * (stride + 1));
  for (let p = 0; p < cell.institutionN.length; p++) listed.set(cell.listed.subarray(p * stride, p * stride + stride), p * (stride + 1));
  cell.listed = listed;
  cell.listStride = stride + 1;
  return cell.members.push(institution) - 1;
}

/** Institutions to look for (cell by cell) above which the lists are rebuilt from every record at once. */
const BULK_SUSPECTS = 1000;

/** Lists the institution in the populations named, where not full. */
function addInstitution(cell: Cell, populations: readonly number[], institution: number, cap: number): void {
  let member = -1;
  for (let i = 0; i < populations.length; i++) {
    const p = populations[i]!;
    const n = cell.institutionN[p]!;
    if (n >= cap) continue;
    if (member < 0) member = memberOf(cell, institution);
    const at = p * cell.listStride + (member >> 3);
    const bit = 1 << (member & 7);
    if ((cell.listed[at]! & bit) !== 0) continue;
    cell.listed[at]! |= bit;
    cell.institutionN[p] = n + 1;
  }
}

/** Adds `sign` to the counters `places[from..to)` names (wide enough already: see Cell.bound). */
function addOnes(counters: Counters, places: ArrayLike<number>, from: number, to: number, sign: number): void {
  for (let i = from; i < to; i++) counters[places[i]!]! += sign;
}

/** Adds `sign` to the counters at the places steps[from..to) give (putSteps). */
function addSteps(counters: Counters, steps: Uint8Array, from: number, to: number, sign: number): void {
  for (let i = from, place = -1; i < to; i = nextStep(steps, i)) {
    place += stepAt(steps, i);
    counters[place]! += sign;
  }
}

/** The counters, or a wider copy when `value` does not fit them. */
function wide(counters: Counters, value: number): Counters {
  if (value > 0xffff && !(counters instanceof Int32Array)) return Int32Array.from(counters);
  if (value > 0xff && counters instanceof Uint8Array) return Uint16Array.from(counters);
  return counters;
}

/** Adds to a sum; integer sums become 64-bit floats at the first value that is no 32-bit integer, 16-bit ones 32-bit at the first past 16 bits. */
function summed(sums: Sums, i: number, amount: number): Sums {
  const value = sums[i]! + amount;
  if (!(sums instanceof Float64Array) && (value | 0) !== value) sums = Float64Array.from(sums);
  else if (sums instanceof Int16Array && (value << 16) >> 16 !== value) sums = Int32Array.from(sums);
  sums[i] = value;
  return sums;
}

/** A copy with room for `length` values and a sixteenth more (slots and populations first met later are few). */
function grown<T extends Float64Array | Int32Array | Int16Array | Uint16Array | Uint8Array>(array: T, length: number): T {
  const next = new (array.constructor as new (n: number) => T)(length + (length >> 4));
  next.set(array);
  return next;
}

/** A cell's number is its codes' numbers, each this many apart (at most 1,024 codes a dimension, so three dimensions stay small integers). */
const CODE_RADIX = [1, 1 << 10, 1 << 20];

const DIMENSION_INDEX = Object.fromEntries(DIMENSION_NAMES.map((d, i) => [d, i])) as Record<Dimension, number>;

/**
 * Every campaign's counts, fed record by record (EvidenceSink). The scope of
 * every campaign together (scripts) is made on first use from the campaigns'
 * records and then kept current like the others.
 */
export class EvidenceStore implements EvidenceSink {
  readonly layout: CountLayout;
  private readonly campaigns = new Map<string, CampaignCounts>();
  private everything: CampaignCounts | undefined;
  /** What the counts were made for (questions, indicators, cap, tables): an image made for anything else is not taken. */
  private readonly fingerprint: string;

  constructor(
    spec: TallySpec,
    private readonly tableList: Dimension[][],
  ) {
    this.layout = new CountLayout(spec);
    this.fingerprint = createHash('sha256')
      .update(JSON.stringify([IMAGE_FORMAT, spec.catalogue.questions, spec.ratios, [...spec.indicatorsOf], spec.institutionCap, [...spec.accredited].sort(), tableList]))
      .digest('hex');
  }

  /**
   * Every campaign's counts as bytes, settled: a snapshot keeps them beside
   * its records (record-snapshot.ts), so that a load copies arrays instead of
   * counting every record again. Null when every campaign together is kept
   * too (scripts), which an image does not hold.
   */
  image(): Buffer | null {
    if (this.everything) return null;
    const image = new ImageWriter();
    const campaigns = [...this.campaigns].map(([campaign, counts]) => ({ campaign, ...counts.putInto(image) }));
    return image.bytes({ format: IMAGE_FORMAT, fingerprint: this.fingerprint, layout: this.layout.describe(), campaigns });
  }

  /**
   * Takes on the counts of an image (image()) as they were there; returns
   * the ids of the records they hold. Null, and nothing changed, when the
   * image was made for other questions, indicators, cap or tables, or by
   * another format, when this layout already numbers things otherwise, or
   * when this store holds records already: the caller counts the records.
   */
  restore(bytes: Buffer): string[] | null {
    const image = new ImageReader(bytes);
    const held = image.header as { format: number; fingerprint: string; layout: LayoutImage; campaigns: Array<CampaignImage & { campaign: string }> };
    if (held.format !== IMAGE_FORMAT || held.fingerprint !== this.fingerprint || this.campaigns.size > 0 || this.everything) return null;
    if (!this.layout.adopt(held.layout)) return null;
    // Every campaign taken before any is kept: an image that fails half-way leaves this store as it was.
    const taken = held.campaigns.map((campaign) => {
      const counts = new CampaignCounts(this.layout, this.tableList);
      counts.takeFrom(image, campaign);
      return [campaign.campaign, counts] as const;
    });
    const ids: string[] = [];
    for (const [campaign, counts] of taken) {
      this.campaigns.set(campaign, counts);
      for (const id of counts.ids()) ids.push(id);
    }
    return ids;
  }

  apply(record: EvidenceRecord): void {
    // A record in another campaign before (no map of ids to campaigns: campaigns are few, records many).
    for (const [campaign, counts] of this.campaigns) if (campaign !== record.campaign && counts.has(record.id)) counts.remove(record.id);
    this.counts(record.campaign).apply(record);
    this.everything?.apply(record);
  }

  remove(id: string): void {
    for (const counts of this.campaigns.values()) counts.remove(id);
    this.everything?.remove(id);
  }

  /** Counts every record applied so far (each campaign counts its records in bulk when first read: see CampaignCounts.settle). */
  settle(): void {
    for (const counts of this.campaigns.values()) counts.settle();
    this.everything?.settle();
  }

  /** Whether any record of the campaign is kept. */
  has(campaign: string): boolean {
    return (this.campaigns.get(campaign)?.size ?? 0) > 0;
  }

  /** Forgets a campaign's records (before it is loaded again). */
  clearCampaign(campaign: string): void {
    const counts = this.campaigns.get(campaign);
    if (!counts) return;
    if (this.everything) for (const id of counts.ids()) this.everything.remove(id);
    this.campaigns.delete(campaign);
  }

  /** Forgets everything (before a reload). */
  clear(): void {
    this.campaigns.clear();
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
    let size = 0;
    for (const counts of this.campaigns.values()) size += counts.size;
    return size;
  }

  /** Every campaign's footprint added up. */
  footprint(): Footprint {
    const total = emptyFootprint();
    for (const counts of [...this.campaigns.values(), ...(this.everything ? [this.everything] : [])]) {
      const f = counts.footprint();
      for (const key of Object.keys(total) as Array<keyof Footprint>) total[key] += f[key];
    }
    return total;
  }

  private counts(campaign: string): CampaignCounts {
    let counts = this.campaigns.get(campaign);
    if (!counts) this.campaigns.set(campaign, (counts = new CampaignCounts(this.layout, this.tableList)));
    return counts;
  }
}

// ---------------------------------------------------------------------------
// Images: the counts as bytes (EvidenceStore.image, restore)

/** Bumped whenever what an image holds or how records are counted changes: an image of another format is not taken. */
const IMAGE_FORMAT = 4;

/** What gives a layout's numbers (CountLayout.describe): slot keys and slots, populations, institutions, codes, in number order. */
interface LayoutImage {
  slots: string[];
  made: Slot[];
  populations: string[];
  institutions: string[];
  codes: string[][];
  implied: Array<number[] | null>;
}

/** What an image says of one campaign's counts beside its arrays (CampaignCounts.putInto). */
interface CampaignImage {
  ids: string[];
  columns: { end: number; free: number[] };
  parts: { end: number; gaps: number; amountEnds: number[] };
  profiles: number;
  /** Per cell: its table, key, id, rows, bound, version, members and list stride. */
  cells: Array<[number, string, number, number, number, number, number[], number]>;
  changes: number;
  shape: number;
}

type StoredArray = Uint8Array | Uint16Array | Int32Array | Float64Array | Int8Array | Int16Array;
const ARRAY_TYPES = [Uint8Array, Uint16Array, Int32Array, Float64Array, Int8Array, Int16Array] as const;
const padded = (bytes: number) => Math.ceil(bytes / 8) * 8;

/**
 * Writes an image: a JSON header (its length first, in 8 bytes), then the
 * arrays' bytes one after another, each padded to 8 bytes; the header lists
 * each array's type and length, in the order they were put.
 */
class ImageWriter {
  private readonly arrays: StoredArray[] = [];
  private readonly shapes: number[] = [];

  put(array: StoredArray, length = array.length): void {
    const type = ARRAY_TYPES.findIndex((Type) => array instanceof Type);
    this.arrays.push(array.subarray(0, length));
    this.shapes.push(type, length);
  }

  bytes(header: object): Buffer {
    const head = Buffer.from(JSON.stringify({ ...header, shapes: this.shapes }));
    const out = Buffer.alloc(8 + padded(head.length) + this.arrays.reduce((sum, array) => sum + padded(array.byteLength), 0));
    out.writeUInt32LE(head.length, 0);
    head.copy(out, 8);
    let at = 8 + padded(head.length);
    for (const array of this.arrays) {
      out.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), at);
      at += padded(array.byteLength);
    }
    return out;
  }
}

/** Reads an image (ImageWriter) array by array, each copied into arrays of its own (the image's bytes are not kept). */
class ImageReader {
  readonly header: Record<string, unknown>;
  private readonly shapes: number[];
  private next = 0;
  private at: number;

  constructor(private readonly bytes: Buffer) {
    const length = bytes.readUInt32LE(0);
    this.header = JSON.parse(bytes.toString('utf8', 8, 8 + length)) as Record<string, unknown>;
    this.shapes = this.header.shapes as number[];
    this.at = 8 + padded(length);
  }

  /** The next array, with room for `room` values if that is more than it holds. */
  take<T = never>(room = 0): T {
    const [type, length] = [this.shapes[2 * this.next]!, this.shapes[2 * this.next + 1]!];
    const Type = ARRAY_TYPES[type]!;
    const array = new Type(Math.max(length, room));
    this.copyInto(array, length * Type.BYTES_PER_ELEMENT);
    return array as unknown as T;
  }

  /** The next `n` arrays, in one buffer (as a cell's: emptyCell). */
  takeTogether(n: number): StoredArray[] {
    const shapes = Array.from({ length: n }, (_, i) => [this.shapes[2 * (this.next + i)]!, this.shapes[2 * (this.next + i) + 1]!] as const);
    const buffer = new ArrayBuffer(shapes.reduce((sum, [type, length]) => sum + padded(length * ARRAY_TYPES[type]!.BYTES_PER_ELEMENT), 0));
    let offset = 0;
    return shapes.map(([type, length]) => {
      const Type = ARRAY_TYPES[type]!;
      const array = new Type(buffer, offset, length);
      this.copyInto(array, length * Type.BYTES_PER_ELEMENT);
      offset += padded(length * Type.BYTES_PER_ELEMENT);
      return array;
    });
  }

  private copyInto(array: StoredArray, bytes: number): void {
    // Byte by byte: the image's bytes need not lie at an offset the array's type could be laid over.
    new Uint8Array(array.buffer, array.byteOffset, bytes).set(this.bytes.subarray(this.at, this.at + bytes));
    this.at += padded(bytes);
    this.next += 1;
  }
}
