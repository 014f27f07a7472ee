import { loadavg } from 'node:os';

/**
 * What every benchmark prints beside its figures: medians of repeated runs,
 * and the load average, since the machine may be shared with other work.
 */

/** The middle of the values (of an even number, the mean of the two in the middle); NaN when there are none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The load average over 1, 5 and 15 minutes: "1.52 1.31 0.98". */
export function loadAverage(digits = 2): string {
  return loadavg()
    .map((l) => l.toFixed(digits))
    .join(' ');
}
