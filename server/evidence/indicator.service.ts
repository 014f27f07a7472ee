import type { Models } from '../db/models.ts';
import { complementaryKeys, isTooSmall, type Cell, type Thresholds } from './disclosure.ts';
import { DIMENSIONS, filterKey, type Dimension, type EvidenceFilter } from './evidence-filter.ts';
import { groupingKey, groupValues, NOT_STATED, OVERALL, tallyResponses, type GroupTally, type Tallies } from './evidence-tally.ts';
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
  responses: number;
  dimensions: Dimension[];
  columns: GroupColumn[];
  indicators: IndicatorRow[];
  questions: QuestionRow[];
  /** Questions with at least one counted answer (overall), published or not: what a campaign asked. */
  answered: string[];
  thresholds: Thresholds;
}

/** Longest time counts are reused without a response arriving through this process. */
export const CACHE_MAX_AGE_MS = 60_000;

export interface EvidenceDeps {
  models: Pick<Models, 'Response'>;
  catalogue: QuestionCatalogue;
  thresholds: Thresholds;
}

/**
 * Computes indicators and distributions. The grouped counts of a filter are
 * kept in memory until a response arrives (invalidate(), called by the
 * respondent path) or for at most CACHE_MAX_AGE_MS, which bounds how stale
 * they can be after writes by another process (seed:demo, a second instance).
 * Not a stored-count check: FerretDB 1.24 counts by reading every document.
 */
export class EvidenceService {
  readonly indicatorSet: IndicatorSet;
  private readonly cache = new Map<string, { at: number; tallies: Promise<Tallies> }>();
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

  /** Forget every cached count: a response was stored or changed. */
  invalidate = (): void => {
    this.cache.clear();
    this.built.clear();
  };

  /** The tables for the filter's breakdown (overall only when it has none). */
  async tables(filter: EvidenceFilter): Promise<EvidenceTables> {
    const key = filterKey(filter);
    const cached = this.built.get(key);
    if (cached && Date.now() - cached.at < CACHE_MAX_AGE_MS) return cached.tables;
    const tallies = await this.tallies(filter);
    const tables = buildTables(this.deps.catalogue, this.indicatorSet, tallies, filter, this.deps.thresholds);
    this.built.set(key, { at: Date.now(), tables });
    return tables;
  }

  private async tallies(filter: EvidenceFilter): Promise<Tallies> {
    const key = filterKey({ ...filter, breakdown: filter.breakdown.length === 2 ? filter.breakdown : [] });
    const now = Date.now();
    const cached = this.cache.get(key);
    if (cached && now - cached.at < CACHE_MAX_AGE_MS) return cached.tallies;
    const tallies = tallyResponses(this.deps.models, filter, {
      catalogue: this.deps.catalogue,
      ratios: this.indicatorSet.ratios,
      indicatorsOf: this.indicatorSet.indicatorsOf,
      institutionCap: this.deps.thresholds.minInstitutions,
      accredited: ACCREDITED_STATUSES,
    });
    this.cache.set(key, { at: now, tallies });
    tallies.catch(() => this.cache.delete(key));
    return tallies;
  }
}

/** Derives the published tables from the counts: values, bands, then primary and secondary suppression. */
export function buildTables(
  catalogue: QuestionCatalogue,
  set: IndicatorSet,
  tallies: Tallies,
  filter: EvidenceFilter,
  thresholds: Thresholds,
): EvidenceTables {
  const dimensions = filter.breakdown;
  const overallTally = tallies.groupings.get(OVERALL)?.groups.get(OVERALL) ?? emptyTally();
  const grouping = dimensions.length > 0 ? tallies.groupings.get(groupingKey(dimensions)) : undefined;
  const groupEntries = [...(grouping?.groups ?? new Map<string, GroupTally>())].sort(([a], [b]) => compareGroupKeys(catalogue, dimensions, a, b));
  const columns = groupEntries.map(([key]) => ({ key, label: groupLabel(catalogue, dimensions, key) }));
  const lines = linesOf(dimensions, columns.map((c) => c.key));

  const indicators = set.indicators.map((def): IndicatorRow => {
    const figures = (tally: GroupTally) => indicatorCell(def, tally, thresholds);
    return {
      code: def.code,
      family: def.family,
      label: def.label,
      unit: def.unit,
      ...(def.target !== undefined ? { target: def.target } : {}),
      banded: def.banded ?? false,
      overall: figures(overallTally),
      groups: protect(groupEntries, figures, lines),
    };
  });

  const questions = catalogue.questions
    .filter((q) => q.kind !== 'text' && q.strand !== 'P')
    .map((q): QuestionRow => {
      const cell = (tally: GroupTally): Cell<Distribution> => {
        const population = tally.populations.get(q.name);
        if (!population || isTooSmall([population], thresholds)) return { suppressed: true };
        return { suppressed: false, ...distributionOf(q, tally) };
      };
      return { name: q.name, strand: q.strand, indicator: q.indicator, kind: q.kind, title: q.title.default, overall: cell(overallTally), groups: protect(groupEntries, cell, lines) };
    });

  const answered = [...overallTally.questions.keys()];
  return { filter, responses: tallies.responses, dimensions, columns, indicators, questions, answered, thresholds };
}

function indicatorCell(def: IndicatorDef, tally: GroupTally, thresholds: Thresholds): Cell<IndicatorFigures> {
  const populations = def.populations ? def.populations(tally) : [tally.populations.get(def.population) ?? { respondents: 0, institutions: new Set<string>() }];
  if (isTooSmall(populations, thresholds)) return { suppressed: true };
  const { value, n } = def.compute(tally);
  const respondents = Math.min(...populations.map((p) => p.respondents));
  return { suppressed: false, respondents, value, n, ...(def.banded && value !== null ? { band: bandOf(value) } : {}) };
}

/** Primary suppression per cell, then secondary suppression along the lines of the breakdown. */
function protect<T extends object>(groups: Array<[string, GroupTally]>, cellOf: (tally: GroupTally) => Cell<T>, lines: string[][]): Record<string, Cell<T>> {
  const cells = new Map(groups.map(([key, tally]) => [key, cellOf(tally)]));
  const sizes = new Map([...cells].map(([key, cell]) => [key, { respondents: cell.suppressed ? 0 : cell.respondents, suppressed: cell.suppressed }]));
  for (const key of complementaryKeys(sizes, lines)) cells.set(key, { suppressed: true });
  return Object.fromEntries(cells);
}

/** The lines that add up to a published total: all groups of one dimension; rows and columns of a cross-tab. */
function linesOf(dimensions: Dimension[], keys: string[]): string[][] {
  if (dimensions.length === 0) return [];
  if (dimensions.length === 1) return [keys];
  const byPart = (index: number) => {
    const lines = new Map<string, string[]>();
    for (const key of keys) {
      const part = groupValues(key)[index]!;
      lines.set(part, [...(lines.get(part) ?? []), key]);
    }
    return [...lines.values()];
  };
  return [...byPart(0), ...byPart(1)];
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

function emptyTally(): GroupTally {
  return { questions: new Map(), populations: new Map(), ratios: new Map() };
}
