/**
 * Flags kept a bit each in an Int32Array (32 to an element), for the
 * decisions' per-count and per-cell flags that stay in memory between
 * decisions (CountAudit unknownBits, CountSuppression nonZeroBits and live,
 * SecondaryRun withData): as a byte each they were about 280 bytes a
 * response at 50,000 + 10,000 (bench:evidence:memory).
 */

/** The bits for `flags` flags, all clear. */
export const bitArray = (flags: number) => new Int32Array((flags + 31) >>> 5);

/** Flag i: 1 or 0. */
export function bitAt(bits: Int32Array, i: number): number {
  return (bits[i >>> 5]! >>> (i & 31)) & 1;
}

/** Sets or clears flag i. */
export function markBit(bits: Int32Array, i: number, on: boolean): void {
  if (on) bits[i >>> 5]! |= 1 << (i & 31);
  else bits[i >>> 5]! &= ~(1 << (i & 31));
}
