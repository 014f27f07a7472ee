/** A count with its noun, singular for exactly one: "1 response", "0 responses", "2 responses". */
export function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}
