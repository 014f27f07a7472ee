/**
 * A campaign's rows by record id (CampaignCounts): what a Map of id strings
 * to rows did, in typed arrays. A record's id is an ObjectId's hex string
 * (24 lowercase digits) wherever the platform stores one; such an id is
 * kept as its 12 bytes in its row, and found through an open-addressing
 * table of rows. At 50,000 records the Map took ~75 bytes a record (the
 * string and the entry); this takes 13 bytes a row and 4–10 a record in the
 * table. Any other id (tests and scripts name records freely) goes into a
 * Map beside, as before.
 *
 * Rows are listed in their order (values, keys), which is not the order the
 * records came in: nothing that reads the counts depends on that order.
 */

const ID_BYTES = 12;
/** A row's kind: none (free), an ObjectId's hex kept as bytes, or another id kept in the Map. */
const NONE = 0;
const BYTES = 1;
const OTHER = 2;
/** A slot of the table: 0 empty, -1 a removed entry (probes pass over it), else row + 1. */
const EMPTY = 0;
const REMOVED = -1;

export class RecordRows {
  private idBytes = new Uint8Array(ID_BYTES * 64);
  private kinds = new Uint8Array(64);
  private slots = new Int32Array(16);
  /** Slots not EMPTY: live entries and removed ones. */
  private taken = 0;
  private inTable = 0;
  private readonly others = new Map<string, number>();
  private readonly otherIds = new Map<number, string>();
  /** One past the highest row that may be live. */
  private end = 0;
  /** An id being looked up, as bytes. */
  private readonly wanted = new Uint8Array(ID_BYTES);

  get size(): number {
    return this.inTable + this.others.size;
  }

  get(id: string): number | undefined {
    if (!hexInto(id, this.wanted)) return this.others.get(id);
    const slot = this.find(this.wanted, 0);
    return slot < 0 ? undefined : this.slots[slot]! - 1;
  }

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /** Keeps `id` at `row` (a row no other id holds), moving it there if it was at another. */
  set(id: string, row: number): void {
    if (!Number.isInteger(row) || row < 0 || row >= 0x7fffffff) throw new RangeError(`a row is a whole number from 0, not ${row}`);
    if ((this.kinds[row] ?? NONE) !== NONE) throw new Error(`row ${row} holds another record`);
    this.delete(id);
    this.room(row + 1);
    if (!hexInto(id, this.wanted)) {
      this.others.set(id, row);
      this.otherIds.set(row, id);
      this.kinds[row] = OTHER;
      return;
    }
    // The table first grows over the rows it holds, then this one goes in (a row marked before would be placed twice).
    if (8 * (this.taken + 1) > 5 * this.slots.length) this.rehash(this.inTable + 1);
    this.idBytes.set(this.wanted, row * ID_BYTES);
    this.kinds[row] = BYTES;
    this.place(row);
    this.inTable += 1;
  }

  delete(id: string): boolean {
    if (!hexInto(id, this.wanted)) {
      const row = this.others.get(id);
      if (row === undefined) return false;
      this.others.delete(id);
      this.otherIds.delete(row);
      this.kinds[row] = NONE;
      return true;
    }
    const slot = this.find(this.wanted, 0);
    if (slot < 0) return false;
    this.kinds[this.slots[slot]! - 1] = NONE;
    this.slots[slot] = REMOVED;
    this.inTable -= 1;
    // Smaller again once an eighth or less is used.
    if (this.slots.length > 64 && 8 * this.inTable <= this.slots.length) this.rehash(this.inTable);
    return true;
  }

  /** The rows held, in their order. */
  *values(): IterableIterator<number> {
    for (let row = 0; row < this.end; row++) if (this.kinds[row] !== NONE) yield row;
  }

  /** The ids held, in their rows' order (as values). */
  *keys(): IterableIterator<string> {
    for (let row = 0; row < this.end; row++) {
      const kind = this.kinds[row];
      if (kind === BYTES) yield hexOf(this.idBytes, row * ID_BYTES);
      else if (kind === OTHER) yield this.otherIds.get(row)!;
    }
  }

  /** Bytes held in typed arrays (bench:evidence:memory). */
  bytes(): number {
    return this.idBytes.byteLength + this.kinds.byteLength + this.slots.byteLength;
  }

  /** The slot holding the row whose id is `bytes` at `at`, -1 when none does. */
  private find(bytes: Uint8Array, at: number): number {
    const { slots, idBytes } = this;
    const mask = slots.length - 1;
    for (let i = hashOf(bytes, at) & mask; ; i = (i + 1) & mask) {
      const held = slots[i]!;
      if (held === EMPTY) return -1;
      if (held > 0 && sameBytes(idBytes, (held - 1) * ID_BYTES, bytes, at)) return i;
    }
  }

  /** Puts `row` (its id's bytes in place, not in the table) into the first free slot of its probe. */
  private place(row: number): void {
    const { slots } = this;
    const mask = slots.length - 1;
    let i = hashOf(this.idBytes, row * ID_BYTES) & mask;
    while (slots[i]! > 0) i = (i + 1) & mask;
    if (slots[i] === EMPTY) this.taken += 1;
    slots[i] = row + 1;
  }

  /** A table for `entries` (at most 5 slots in 8 used, at least 16), the rows of ids kept as bytes placed anew. */
  private rehash(entries: number): void {
    let length = 16;
    while (5 * length < 8 * entries + 8) length *= 2;
    this.slots = new Int32Array(length);
    this.taken = 0;
    for (let row = 0; row < this.end; row++) if (this.kinds[row] === BYTES) this.place(row);
  }

  /** Room for rows below `rows`. */
  private room(rows: number): void {
    if (rows > this.end) this.end = rows;
    if (rows <= this.kinds.length) return;
    const length = Math.max(rows, 2 * this.kinds.length);
    const kinds = new Uint8Array(length);
    kinds.set(this.kinds);
    this.kinds = kinds;
    const idBytes = new Uint8Array(ID_BYTES * length);
    idBytes.set(this.idBytes);
    this.idBytes = idBytes;
  }
}

/** Whether `id` is 24 lowercase hex digits, then its 12 bytes in `into`. */
function hexInto(id: string, into: Uint8Array): boolean {
  if (id.length !== 2 * ID_BYTES) return false;
  for (let i = 0; i < ID_BYTES; i++) {
    const high = digitOf(id.charCodeAt(2 * i));
    const low = digitOf(id.charCodeAt(2 * i + 1));
    if (high < 0 || low < 0) return false;
    into[i] = (high << 4) | low;
  }
  return true;
}

/** A lowercase hex digit's value, -1 for any other character (an uppercase digit would not give the same id back). */
function digitOf(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

function hexOf(bytes: Uint8Array, at: number): string {
  let hex = '';
  for (let i = at; i < at + ID_BYTES; i++) hex += (bytes[i]! < 16 ? '0' : '') + bytes[i]!.toString(16);
  return hex;
}

function sameBytes(a: Uint8Array, at: number, b: Uint8Array, bt: number): boolean {
  for (let i = 0; i < ID_BYTES; i++) if (a[at + i] !== b[bt + i]) return false;
  return true;
}

/** FNV-1a over the id's 12 bytes: an ObjectId's time, machine and counter all move it. */
function hashOf(bytes: Uint8Array, at: number): number {
  let hash = 0x811c9dc5;
  for (let i = at; i < at + ID_BYTES; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash >>> 0;
}
