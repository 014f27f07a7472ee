/**
 * Values that the audit's equalities give only when taken together (issue 10).
 *
 * Interval propagation (count-audit.ts) narrows one relation at a time. An
 * outsider with a linear-programming solver takes them all at once
 * (tests/evidence/linear-programming.ts), and at the demo wave's size it
 * pinned two hidden groups that propagation left open, both the same way:
 * a line gives the sum of two hidden groups (a country's 27 less its
 * published 19: 8 for two size groups); each of the two answered from rural
 * places only, so each equals its rural cell (its other members are empty,
 * known to be 0); and the country's rural line, 13, holds those two rural
 * cells and one more hidden group, which is therefore 13 − 8 = 5. Every
 * line involved holds two unknowns or more.
 *
 * This step catches such chains with the cheap part of elimination:
 * - a relation between two unknowns, x − y = c (the rest known), makes them
 *   one class up to a constant (union-find with offsets: x = root + offset);
 * - every other relation is rewritten over the classes; one left with a
 *   single class fixes it;
 * - where a relation's classes are another's but one, with the same
 *   coefficients (or all opposite), the difference of the two fixes that one.
 * Repeated while values are found (they are known in the next round), a few
 * rounds at most. Every value it finds follows from the relations, so it
 * never pins what is open. It is not the whole of elimination: a value that
 * needs relations combined otherwise (three cells published only in pairs),
 * or the bounds as well, is left to the standing test with the solver.
 *
 * The audit runs it for the numbers of responses only (AnswerCounts.listed).
 * On the demo data every value it found was a number of responses, none an
 * answer count, while running it for every question made a decision about
 * four times as costly from scratch and twenty times after a response
 * (bench:disclosure).
 */

/** Relations with two unknown quantities or more, the known ones moved to the constant: Σ ±x = constant. */
export interface OpenRelations {
  /** How many. */
  count: number;
  /** Relation i's terms are terms[start[i]] … terms[start[i + 1] − 1]: v for +x_v, ~v for −x_v. */
  start: Int32Array;
  terms: Int32Array;
  constants: Float64Array;
  /** Each relation's number as its caller knows it (for the chain to break). */
  origins: Int32Array;
}

/** Collects OpenRelations one at a time. */
export class OpenRelationList {
  private start: Int32Array = new Int32Array(1025);
  private terms: Int32Array = new Int32Array(4096);
  private constants = new Float64Array(1024);
  private origins: Int32Array = new Int32Array(1024);
  private count = 0;
  private length = 0;

  /** Adds a relation over `unknowns` terms, taken from `from` at 0 … unknowns − 1. */
  add(from: Int32Array, unknowns: number, constant: number, origin: number): void {
    if (this.length + unknowns > this.terms.length) this.terms = grown(this.terms, this.length + unknowns);
    if (this.count + 1 >= this.constants.length) {
      this.constants = Float64Array.from({ length: 2 * this.constants.length }, (_, i) => this.constants[i] ?? 0);
      this.origins = grown(this.origins, 2 * this.origins.length);
      this.start = grown(this.start, 2 * this.start.length);
    }
    for (let i = 0; i < unknowns; i++) this.terms[this.length + i] = from[i]!;
    this.length += unknowns;
    this.constants[this.count] = constant;
    this.origins[this.count] = origin;
    this.count += 1;
    this.start[this.count] = this.length;
  }

  get relations(): OpenRelations {
    return { count: this.count, start: this.start, terms: this.terms, constants: this.constants, origins: this.origins };
  }
}

function grown(a: Int32Array, least: number): Int32Array {
  const next = new Int32Array(Math.max(least, 2 * a.length));
  next.set(a);
  return next;
}

/** At most this many rounds: each one runs only when the last found a value. */
const MOST_ROUNDS = 4;

/**
 * The unknown quantities (numbered below `quantities`) whose value the
 * relations fix, each with the origins of the relations that fix it: their
 * published quantities are the chain to break.
 */
export function equalityPins(open: OpenRelations, quantities: number): Map<number, number[]> {
  if (open.count === 0) return new Map();
  const classes = Classes.over(quantities);
  try {
    return pinsWith(open, classes);
  } finally {
    classes.release();
  }
}

function pinsWith(open: OpenRelations, classes: Classes): Map<number, number[]> {
  const pins = new Map<number, number[]>();
  const { count, start, terms, constants, origins } = open;
  // Relations between two unknowns of opposite signs: x − y = c. Their quantities are the only ones in classes of two or
  // more, and only a relation that holds one of those (or, later, a quantity whose value is found) can be rewritten into
  // anything new: two relations without one share at most one quantity (two lines of a lattice share at most one cell).
  const identity = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    if (start[i + 1]! - start[i]! !== 2) continue;
    const a = terms[start[i]!]!;
    const b = terms[start[i]! + 1]!;
    if (a >= 0 === b >= 0) continue;
    const [x, y] = a >= 0 ? [a, ~b] : [b, ~a];
    identity[i] = 1;
    classes.union(x, y, constants[i]!);
  }

  // Per root whose value is found: the value, and the relations that found it (one, or two subtracted).
  const fixed = new Map<number, number>();
  const foundBy = new Map<number, number[]>();
  const done = new Uint8Array(count);
  const forms: Form[] = [];
  for (let round = 0; round < MOST_ROUNDS; round++) {
    let found = 0;
    forms.length = 0;
    const byHash = new Map<number, number[]>();
    for (let i = 0; i < count; i++) {
      if (identity[i] || done[i]) continue;
      let touches = false;
      for (let t = start[i]!; t < start[i + 1]! && !touches; t++) touches = classes.marked(terms[t]! >= 0 ? terms[t]! : ~terms[t]!);
      if (!touches) continue;
      const form = formOf(i, open, classes, fixed);
      if (form.roots.length === 0) done[i] = 1;
      else if (form.roots.length === 1) {
        done[i] = 1;
        const value = form.constant / form.coefficients[0]!;
        if (Number.isInteger(value) && !fixed.has(form.roots[0]!)) (fixed.set(form.roots[0]!, value), foundBy.set(form.roots[0]!, [i]), classes.mark(form.roots[0]!), (found += 1));
      } else {
        forms.push(form);
        const list = byHash.get(form.hash);
        if (list) list.push(forms.length - 1);
        else byHash.set(form.hash, [forms.length - 1]);
      }
    }
    // A relation b whose classes are a's and one more: b − f·a fixes that one.
    for (const b of forms) {
      if (b.roots.length < 3) continue;
      for (let j = 0; j < b.roots.length; j++) {
        const root = b.roots[j]!;
        if (fixed.has(root)) continue;
        // Forms are hashed with their first coefficient made positive: so is b without term j, by its first one's sign f.
        const f = (j === 0 ? b.coefficients[1]! : b.coefficients[0]!) > 0 ? 1 : -1;
        const rest = (Math.imul(b.sign, b.hash) - Math.imul(rootHash(root), b.coefficients[j]!)) | 0;
        const candidates = byHash.get(Math.imul(f, rest) | 0);
        if (!candidates) continue;
        for (const at of candidates) {
          const a = forms[at]!;
          const g = restFactor(a, b, j);
          if (g === 0) continue;
          // a = g × (b without j), so b − g·a leaves term j alone.
          const value = (b.constant - g * a.constant) / b.coefficients[j]!;
          if (!Number.isInteger(value)) continue;
          fixed.set(root, value);
          foundBy.set(root, [b.relation, a.relation]);
          classes.mark(root);
          found += 1;
          break;
        }
      }
    }
    if (found === 0) break;
  }
  if (fixed.size === 0) return pins;

  const chains = new Map<number, number[]>();
  const chainOf = (root: number): number[] => {
    let chain = chains.get(root);
    if (chain) return chain;
    // The relations that fixed it, the relations that fixed any class they read as known, and the merges of every class met.
    const relations = new Set<number>();
    const roots = new Set<number>([root]);
    const stack = [root];
    while (stack.length > 0) {
      for (const i of foundBy.get(stack.pop()!) ?? []) {
        if (relations.has(i)) continue;
        relations.add(i);
        for (let t = start[i]!; t < start[i + 1]!; t++) {
          const v = terms[t]! >= 0 ? terms[t]! : ~terms[t]!;
          const r = classes.find(v);
          if (!roots.has(r)) (roots.add(r), stack.push(r));
        }
      }
    }
    for (let i = 0; i < count; i++) if (identity[i] && roots.has(classes.find(terms[start[i]!]! >= 0 ? terms[start[i]!]! : ~terms[start[i]!]!))) relations.add(i);
    chain = [...relations].map((i) => origins[i]!);
    chains.set(root, chain);
    return chain;
  };
  for (let t = 0; t < start[count]!; t++) {
    const v = terms[t]! >= 0 ? terms[t]! : ~terms[t]!;
    if (pins.has(v)) continue;
    const root = classes.find(v);
    if (fixed.has(root)) pins.set(v, chainOf(root));
  }
  return pins;
}

/** A relation over classes: roots ascending, their coefficients and the constant; `sign` makes the first coefficient positive, and the hash is of the terms times it. */
interface Form {
  relation: number;
  roots: number[];
  coefficients: number[];
  constant: number;
  sign: number;
  hash: number;
}

function formOf(i: number, open: OpenRelations, classes: Classes, fixed: ReadonlyMap<number, number>): Form {
  const { start, terms } = open;
  let constant = open.constants[i]!;
  const pairs: number[] = [];
  for (let t = start[i]!; t < start[i + 1]!; t++) {
    const sign = terms[t]! >= 0 ? 1 : -1;
    const v = sign > 0 ? terms[t]! : ~terms[t]!;
    const root = classes.find(v);
    constant -= sign * classes.lastOffset;
    const value = fixed.get(root);
    if (value !== undefined) constant -= sign * value;
    else pairs.push(root, sign);
  }
  // Few terms: insertion order by root, equal roots added up, zeros dropped.
  const roots: number[] = [];
  const coefficients: number[] = [];
  for (let p = 0; p < pairs.length; p += 2) {
    const root = pairs[p]!;
    let at = roots.length;
    while (at > 0 && roots[at - 1]! > root) at -= 1;
    if (at > 0 && roots[at - 1] === root) coefficients[at - 1]! += pairs[p + 1]!;
    else (roots.splice(at, 0, root), coefficients.splice(at, 0, pairs[p + 1]!));
  }
  for (let k = roots.length - 1; k >= 0; k--) if (coefficients[k] === 0) (roots.splice(k, 1), coefficients.splice(k, 1));
  const sign = coefficients.length > 0 && coefficients[0]! < 0 ? -1 : 1;
  let hash = 0;
  for (let k = 0; k < roots.length; k++) hash = (hash + Math.imul(rootHash(roots[k]!), coefficients[k]! * sign)) | 0;
  return { relation: i, roots, coefficients, constant, sign, hash };
}

/** g (±1) when a's terms are g × b's without term j, else 0. */
function restFactor(a: Form, b: Form, j: number): number {
  if (a.roots.length !== b.roots.length - 1) return 0;
  const g = a.coefficients[0]! / b.coefficients[j === 0 ? 1 : 0]!;
  if (g !== 1 && g !== -1) return 0;
  for (let k = 0, m = 0; k < b.roots.length; k++) {
    if (k === j) continue;
    if (a.roots[m] !== b.roots[k] || a.coefficients[m] !== g * b.coefficients[k]!) return 0;
    m += 1;
  }
  return g;
}

function rootHash(root: number): number {
  let h = Math.imul(root + 1, 0x9e3779b1);
  h ^= h >>> 15;
  return Math.imul(h, 0x85ebca6b) | 1;
}

/**
 * Union-find with offsets over quantities numbered below a bound: every
 * quantity is its class's root plus an offset; quantities in a class of two
 * or more, or whose class's value is found, are marked. One set of arrays
 * serves every audit (an audit runs to its end before the next starts):
 * release() clears what this one set, whatever happened.
 */
class Classes {
  private static shared: { parent: Int32Array; offset: Float64Array; marks: Uint8Array } | undefined;
  /** The offset of the quantity the last find was for. */
  lastOffset = 0;
  private readonly set: number[] = [];

  private constructor(
    private readonly parent: Int32Array,
    private readonly offset: Float64Array,
    private readonly marks: Uint8Array,
  ) {}

  static over(quantities: number): Classes {
    let arrays = Classes.shared;
    if (!arrays || arrays.parent.length < quantities) {
      const size = Math.max(quantities, 2 * (arrays?.parent.length ?? 0));
      arrays = Classes.shared = { parent: new Int32Array(size).fill(-1), offset: new Float64Array(size), marks: new Uint8Array(size) };
    }
    return new Classes(arrays.parent, arrays.offset, arrays.marks);
  }

  /** Quantity v's root; its offset in lastOffset. */
  find(v: number): number {
    let root = v;
    let offset = 0;
    while (this.parent[root]! >= 0) ((offset += this.offset[root]!), (root = this.parent[root]!));
    // Path compression: each quantity on the way points at the root, with its whole offset.
    for (let at = v, left = offset; at !== root; ) {
      const next = this.parent[at]!;
      const step = this.offset[at]!;
      this.parent[at] = root;
      this.offset[at] = left;
      left -= step;
      at = next;
    }
    this.lastOffset = offset;
    return root;
  }

  /** x = y + c: their classes become one. */
  union(x: number, y: number, c: number): void {
    this.mark(x);
    this.mark(y);
    const rx = this.find(x);
    const ox = this.lastOffset;
    const ry = this.find(y);
    const oy = this.lastOffset;
    if (rx === ry) return;
    // rx + ox = ry + oy + c.
    this.parent[rx] = ry;
    this.offset[rx] = oy + c - ox;
    this.set.push(rx);
  }

  mark(v: number): void {
    if (this.marks[v]) return;
    this.marks[v] = 1;
    this.set.push(v);
  }

  marked(v: number): boolean {
    return this.marks[v] === 1;
  }

  /** Clears every quantity this one set (only those with a parent have one: path compression changes only them). */
  release(): void {
    for (const v of this.set) ((this.parent[v] = -1), (this.offset[v] = 0), (this.marks[v] = 0));
    this.set.length = 0;
  }
}
