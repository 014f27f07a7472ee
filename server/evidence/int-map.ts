/**
 * A map from non-negative whole numbers (below 2^31) to 32-bit whole
 * numbers, held in two typed arrays (open addressing, linear probing):
 * 8 bytes a slot, at most 5 slots in 8 used, so ~14–27 bytes an entry where
 * a Map of numbers took ~44. The count decisions keep one per question and
 * step (CountSuppression.firstPush): ~165,000 entries at 50,000 responses.
 */

const EMPTY = -1;
const REMOVED = -2;

export class IntMap {
  private keys = new Int32Array(8).fill(EMPTY);
  private entries = new Int32Array(8);
  /** Live entries. */
  private count = 0;
  /** Slots not EMPTY: live entries and removed ones, which probes pass over. */
  private taken = 0;

  get size(): number {
    return this.count;
  }

  get(key: number): number | undefined {
    const at = this.find(key);
    return at < 0 ? undefined : this.entries[at]!;
  }

  set(key: number, value: number): void {
    if (!Number.isInteger(key) || key < 0 || key > 0x7fffffff) throw new RangeError(`IntMap keys are whole numbers from 0 to 2^31 - 1, not ${key}`);
    // An Int32Array would keep any other value wrapped, silently.
    if ((value | 0) !== value) throw new RangeError(`IntMap values are 32-bit whole numbers, not ${value}`);
    const at = this.find(key);
    if (at >= 0) {
      this.entries[at] = value;
      return;
    }
    if (8 * (this.taken + 1) > 5 * this.keys.length) this.rehash(this.count + 1);
    const mask = this.keys.length - 1;
    let i = slotOf(key, mask);
    while (this.keys[i]! >= 0) i = (i + 1) & mask;
    if (this.keys[i] === EMPTY) this.taken += 1;
    this.keys[i] = key;
    this.entries[i] = value;
    this.count += 1;
  }

  delete(key: number): boolean {
    const at = this.find(key);
    if (at < 0) return false;
    this.keys[at] = REMOVED;
    this.count -= 1;
    // Smaller again once an eighth or less is used: a map that grew for a while (an audit's wide bounds) does not keep its peak.
    if (this.keys.length > 64 && 8 * this.count <= this.keys.length) this.rehash(this.count);
    return true;
  }

  clear(): void {
    this.keys = new Int32Array(8).fill(EMPTY);
    this.entries = new Int32Array(8);
    this.count = 0;
    this.taken = 0;
  }

  /** Every value, in no particular order. */
  *values(): IterableIterator<number> {
    const { keys, entries } = this;
    for (let i = 0; i < keys.length; i++) if (keys[i]! >= 0) yield entries[i]!;
  }

  /** The slot that holds `key`, -1 when none does. */
  private find(key: number): number {
    const { keys } = this;
    const mask = keys.length - 1;
    for (let i = slotOf(key, mask); ; i = (i + 1) & mask) {
      const held = keys[i]!;
      if (held === key) return i;
      if (held === EMPTY) return -1;
    }
  }

  /** The entries again in room for `live` (twice as many slots at least, never fewer than 8), removed slots dropped: to grow or to shrink. */
  private rehash(live: number): void {
    const { keys, entries } = this;
    let capacity = 8;
    while (capacity < 2 * live) capacity *= 2;
    this.keys = new Int32Array(capacity).fill(EMPTY);
    this.entries = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let j = 0; j < keys.length; j++) {
      const key = keys[j]!;
      if (key < 0) continue;
      let i = slotOf(key, mask);
      while (this.keys[i] !== EMPTY) i = (i + 1) & mask;
      this.keys[i] = key;
      this.entries[i] = entries[j]!;
    }
    this.taken = this.count;
  }
}

/** Where a key's probe starts: its bits mixed (Fibonacci hashing), so that keys a line apart do not crowd one run of slots. */
function slotOf(key: number, mask: number): number {
  return (Math.imul(key, 0x9e3779b1) >>> 7) & mask;
}
