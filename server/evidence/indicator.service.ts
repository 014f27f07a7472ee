import type { Models } from '../db/models.ts';
import { complementaryKeys, isTooSmall, type Cell, type Line, type Thresholds } from './disclosure.ts';
import { DIMENSION_NAMES, DIMENSIONS, filterKey, type Dimension, type EvidenceFilter } from './evidence-filter.ts';
import { addTally, emptyTally, groupingKey, groupValues, NOT_STATED, tallyResponses, type GroupTally, type Tallies } from './evidence-tally.ts';
import { ACCREDITED_STATUSES, bandOf, defineIndicators, distributionOf, type Band, type Distribution, type IndicatorDef, type IndicatorSet, type Unit } from './indicators.ts';
import { choiceLabel, type AnswerKind, type QuestionCatalogue } from './question-catalogue.ts';

export interface IndicatorFigures {
  value: number | null;
  n: number;
  band?: Band;
}

export interface IndicatorRow {
  code: string;
  family: string;
  label: string;
  unit: Unit;
  target?: number;
  banded: boolean;
  overall: Cell<IndicatorFigures>;
  groups: Record<string, Cell<IndicatorFigures>>;
}

export interface QuestionRow {
  name: string;
  strand: string;
  indicator: string;
  kind: AnswerKind;
  title: string;
  overall: Cell<Distribution>;
  groups: Record<string, Cell<Distribution>>;
}

export interface GroupColumn {
  key: string;
  label: string;
}

/** Everything the evidence pages and exports show for one filter, disclosure control applied. */
export interface EvidenceTables {
  filter: EvidenceFilter;
  /** Responses in the view; null when a profile filter leaves fewer than the respondent threshold (who took part is not shown for a small group). */
  responses: number | null;
  dimensions: Dimension[];
  columns: GroupColumn[];
  indicators: IndicatorRow[];
  questions: QuestionRow[];
  /** Questions with at least one counted answer (overall), published or not: what a campaign asked. */
  answered: string[];
  thresholds: Thresholds;
}

/** Longest time counts are reused, once read, without a response arriving through this process. */
export const CACHE_MAX_AGE_MS = 60_000;

export interface EvidenceDeps {
  models: Pick<Models, 'Response'>;
  catalogue: QuestionCatalogue;
  thresholds: Thresholds;
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
}

/**
 * Computes indicators and distributions. The grouped counts of a filter are
 * kept in memory until a response arrives (invalidate(), called by the
 * respondent path) or for at most CACHE_MAX_AGE_MS after the read finished,
 * which bounds how stale they can be after writes by another process
 * (seed:demo, a second instance). Counted from the end of the read: a read of
 * 50,000 responses takes minutes on the embedded engine, and counts that
 * expired while being read would be read again for every page of the
 * dashboard. Not a stored-count check: FerretDB 1.24 counts by reading every
 * document.
 */
export class EvidenceService {
  readonly indicatorSet: IndicatorSet;
  /** Counts per read scope; `at` is undefined while the read is under way. */
  private readonly cache = new Map<string, { at?: number; tallies: Promise<Tallies> }>();
  /** The published tables per filter and breakdown, derived from the cached counts. */
  private readonly built = new Map<string, { at: number; tables: EvidenceTables }>();

  constructor(private readonly deps: EvidenceDeps) {
    this.indicatorSet = defineIndicators(deps.catalogue);
  }

  get catalogue(): QuestionCatalogue {
    return this.deps.catalogue;
  }

  get thresholds(): Thresholds {
    return this.deps.thresholds;
  }

  /** Bumped by invalidate(): tables made from counts read before it are not kept. */
  private generation = 0;

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Forget every cached count: a response was stored or changed. */
  invalidate = (): void => {
    this.generation += 1;
    this.cache.clear();
    this.built.clear();
  };

  /** The tables for the filter's campaign, restricted to its profile values, broken down as it asks (overall only when it does not). */
  async tables(filter: EvidenceFilter): Promise<EvidenceTables> {
    const key = filterKey(filter);
    const cached = this.built.get(key);
    if (cached && this.now() - cached.at < CACHE_MAX_AGE_MS) return cached.tables;
    const generation = this.generation;
    const tallies = await this.tallies(filter);
    const tables = buildTables(this.deps.catalogue, this.indicatorSet, tallies, filter, this.deps.thresholds);
    if (generation === this.generation) this.built.set(key, { at: this.now(), tables });
    return tables;
  }

  /**
   * The counts a filter's tables are made from: the whole campaign, by every
   * dimension, and by the filter's and the breakdown's dimensions together
   * when they are two or more. Filters on one dimension and plain breakdowns
   * share one read.
   */
  private async tallies(filter: EvidenceFilter): Promise<Tallies> {
    const combined = canonicalDimensions([...filterDimensions(filter), ...filter.breakdown]);
    const scope = { campaigns: filter.campaigns, cross: combined.length >= 2 ? combined : [] };
    const key = JSON.stringify(scope);
    const cached = this.cache.get(key);
    if (cached && (cached.at === undefined || this.now() - cached.at < CACHE_MAX_AGE_MS)) return cached.tallies;
    const tallies = tallyResponses(this.deps.models, scope, {
      catalogue: this.deps.catalogue,
      ratios: this.indicatorSet.ratios,
      indicatorsOf: this.indicatorSet.indicatorsOf,
      institutionCap: this.deps.thresholds.minInstitutions,
      accredited: ACCREDITED_STATUSES,
    });
    const entry: { at?: number; tallies: Promise<Tallies> } = { tallies };
    this.cache.set(key, entry);
    tallies.then(
      () => (entry.at = this.now()),
      () => this.cache.get(key) === entry && this.cache.delete(key),
    );
    return tallies;
  }
}

/**
 * Derives the published tables from the counts: values, bands, then primary
 * and secondary suppression.
 *
 * Every figure shown is a cell of a campaign's table over some set of
 * dimensions: the overall figure of a filter (country = AT, role = head) is the
 * AT × head cell of the country × role table; its breakdown by size is a slice
 * of the country × role × size table. Each such table is protected on its own
 * lines with their totals taken from the coarser tables (protectedCells), so a
 * cell hidden in one view is hidden in every view that shows it, and a filter
 * cannot reveal what a breakdown suppressed.
 */
export function buildTables(
  catalogue: QuestionCatalogue,
  set: IndicatorSet,
  tallies: Tallies,
  filter: EvidenceFilter,
  thresholds: Thresholds,
): EvidenceTables {
  const dimensions = filter.breakdown;
  const whereDims = filterDimensions(filter);
  const whereValue = (d: Dimension) => filter.where[d]![0]!;
  const cellDims = canonicalDimensions([...whereDims, ...dimensions]);
  const source = new TableSource(tallies, thresholds.minInstitutions);

  const overallKey = whereDims.map(whereValue).join('|');
  const overallTally = source.cells(whereDims).get(overallKey) ?? emptyTally();
  // The breakdown's groups within the filter: view key (breakdown order) → cell key (canonical order).
  const groupKeys: Array<[string, string]> = [];
  if (dimensions.length > 0) {
    for (const key of source.cells(cellDims).keys()) {
      const parts = groupValues(key);
      const valueOf = (d: Dimension) => parts[cellDims.indexOf(d)]!;
      if (whereDims.some((d) => valueOf(d) !== whereValue(d))) continue;
      groupKeys.push([dimensions.map(valueOf).join('|'), key]);
    }
  }
  groupKeys.sort(([a], [b]) => compareGroupKeys(catalogue, dimensions, a, b));
  const columns = groupKeys.map(([key]) => ({ key, label: groupLabel(catalogue, dimensions, key) }));

  const view = <T extends object>(cellOf: (tally: GroupTally) => Cell<T>) => {
    const memo = new Map<string, Map<string, Cell<T>>>();
    const overall = protectedCells(source, whereDims, cellOf, memo).get(overallKey) ?? cellOf(emptyTally());
    const groups = dimensions.length > 0 ? protectedCells(source, cellDims, cellOf, memo) : new Map<string, Cell<T>>();
    return { overall, groups: Object.fromEntries(groupKeys.map(([viewKey, key]) => [viewKey, groups.get(key)!])) };
  };

  const indicators = set.indicators.map(
    (def): IndicatorRow => ({
      code: def.code,
      family: def.family,
      label: def.label,
      unit: def.unit,
      ...(def.target !== undefined ? { target: def.target } : {}),
      banded: def.banded ?? false,
      ...view((tally) => indicatorCell(def, tally, thresholds)),
    }),
  );

  const questions = catalogue.questions
    .filter((q) => q.kind !== 'text' && q.strand !== 'P')
    .map((q): QuestionRow => {
      const cell = (tally: GroupTally): Cell<Distribution> => {
        const population = tally.populations.get(q.name);
        if (!population || isTooSmall([population], thresholds)) return { suppressed: true };
        return { suppressed: false, ...distributionOf(q, tally) };
      };
      return { name: q.name, strand: q.strand, indicator: q.indicator, kind: q.kind, title: q.title.default, ...view(cell) };
    });

  const answered = [...overallTally.questions.keys()];
  const responses = whereDims.length > 0 && overallTally.responses < thresholds.minRespondents ? null : overallTally.responses;
  return { filter, responses, dimensions, columns, indicators, questions, answered, thresholds };
}

/** The dimensions a filter restricts, in canonical order (one value each: see filterSchema). */
export function filterDimensions(filter: Pick<EvidenceFilter, 'where'>): Dimension[] {
  return DIMENSION_NAMES.filter((d) => (filter.where[d]?.length ?? 0) > 0);
}

/** A table over a set of dimensions is the same table whichever view asks for it: its dimensions in one order. */
function canonicalDimensions(dimensions: Iterable<Dimension>): Dimension[] {
  const wanted = new Set(dimensions);
  return DIMENSION_NAMES.filter((d) => wanted.has(d));
}

/** The groups of a table over any dimensions the tallies can give: counted directly, or added up from a finer grouping. */
class TableSource {
  private readonly made = new Map<string, Map<string, GroupTally>>();

  constructor(
    private readonly tallies: Tallies,
    private readonly institutionCap: number,
  ) {}

  cells(dimensions: Dimension[]): Map<string, GroupTally> {
    const id = groupingKey(dimensions);
    const direct = this.tallies.groupings.get(id)?.groups;
    if (direct) return direct;
    let made = this.made.get(id);
    if (made) return made;
    const finer = [...this.tallies.groupings.values()].find((g) => dimensions.every((d) => g.dimensions.includes(d)));
    if (!finer) throw new Error(`no counts by ${id}`);
    const positions = dimensions.map((d) => finer.dimensions.indexOf(d));
    made = new Map();
    for (const [key, tally] of finer.groups) {
      const parts = groupValues(key);
      const coarse = positions.map((p) => parts[p]).join('|');
      let target = made.get(coarse);
      if (!target) made.set(coarse, (target = emptyTally()));
      addTally(target, tally, this.institutionCap);
    }
    this.made.set(id, made);
    return made;
  }
}

/**
 * One row's cells in the table over `dimensions`, primary and secondary
 * suppression applied. The lines are the cells that differ in one dimension
 * only; their total is the matching cell of the table without that dimension,
 * protected first (the overall cell for a one-dimension table). A line whose
 * total is hidden never shows all its members, so the hidden total cannot be
 * rebuilt, and a finer table never undoes a coarser table's suppression.
 */
function protectedCells<T extends object>(
  source: TableSource,
  dimensions: Dimension[],
  cellOf: (tally: GroupTally) => Cell<T>,
  memo: Map<string, Map<string, Cell<T>>>,
): Map<string, Cell<T>> {
  const id = groupingKey(dimensions);
  const known = memo.get(id);
  if (known) return known;
  const cells = new Map([...source.cells(dimensions)].map(([key, tally]) => [key, cellOf(tally)]));
  const lines: Line[] = [];
  dimensions.forEach((_, axis) => {
    const totals = protectedCells(
      source,
      dimensions.filter((__, i) => i !== axis),
      cellOf,
      memo,
    );
    const members = new Map<string, string[]>();
    for (const key of cells.keys()) {
      const rest = groupValues(key)
        .filter((__, i) => i !== axis)
        .join('|');
      members.set(rest, [...(members.get(rest) ?? []), key]);
    }
    for (const [rest, keys] of members) lines.push({ members: keys, totalSuppressed: totals.get(rest)?.suppressed ?? true });
  });
  const sizes = new Map([...cells].map(([key, cell]) => [key, { respondents: cell.suppressed ? 0 : cell.respondents, suppressed: cell.suppressed }]));
  for (const key of complementaryKeys(sizes, lines)) cells.set(key, { suppressed: true });
  memo.set(id, cells);
  return cells;
}

function indicatorCell(def: IndicatorDef, tally: GroupTally, thresholds: Thresholds): Cell<IndicatorFigures> {
  const populations = def.populations ? def.populations(tally) : [tally.populations.get(def.population) ?? { respondents: 0, institutions: new Set<string>() }];
  if (isTooSmall(populations, thresholds)) return { suppressed: true };
  const { value, n } = def.compute(tally);
  const respondents = Math.min(...populations.map((p) => p.respondents));
  return { suppressed: false, respondents, value, n, ...(def.banded && value !== null ? { band: bandOf(value) } : {}) };
}

function groupLabel(catalogue: QuestionCatalogue, dimensions: Dimension[], key: string): string {
  return groupValues(key)
    .map((value, index) => (value === NOT_STATED ? 'not stated' : choiceLabel(catalogue.byName.get(DIMENSIONS[dimensions[index]!].question), value)))
    .join(' · ');
}

function compareGroupKeys(catalogue: QuestionCatalogue, dimensions: Dimension[], a: string, b: string): number {
  const av = groupValues(a);
  const bv = groupValues(b);
  for (let i = 0; i < dimensions.length; i++) {
    const choices = catalogue.byName.get(DIMENSIONS[dimensions[i]!].question)?.choices.map((c) => String(c.value)) ?? [];
    const rank = (v: string) => (v === NOT_STATED ? 1e6 : choices.indexOf(v) === -1 ? 1e5 : choices.indexOf(v));
    const diff = rank(av[i]!) - rank(bv[i]!);
    if (diff !== 0) return diff;
  }
  return 0;
}
