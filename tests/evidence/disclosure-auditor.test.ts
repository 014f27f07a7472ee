import fc from 'fast-check';
import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cell, Thresholds } from '../../server/evidence/disclosure.ts';
import { DIMENSION_NAMES, type Dimension, type EvidenceFilter } from '../../server/evidence/evidence-filter.ts';
import { groupValues, tallyResponses, type GroupTally } from '../../server/evidence/evidence-tally.ts';
import { cellId, EvidenceService, latticeOf, RESPONSES_FIGURE, shownQuestions, TableSource, viewTables, type EvidenceTables } from '../../server/evidence/indicator.service.ts';
import { ACCREDITED_STATUSES, distributionOf, type Distribution, type IndicatorDef } from '../../server/evidence/indicators.ts';
import { compareWaves } from '../../server/evidence/wave-comparison.service.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { deriveBounds } from './auditor.ts';
import { catalogue, insertResponses, responseArbitrary, toResponses } from './evidence-data.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform.close();
});

/** Low thresholds, so that small random campaigns have published and hidden cells side by side. */
const THRESHOLDS: Thresholds = { minInstitutions: 2, minRespondents: 3 };

type Quantities = Map<string, number>;

/**
 * The quantities the auditor must never pin: the size of a hidden cell. Counts
 * of single answers inside hidden cells are not protected (README: a count can
 * be narrowed, even to one value, when the other hidden cells of its lines
 * have none of that answer).
 */
const SIZES = new Set(['respondents', 'responses', 'n', 'validN']);

/** The additive quantities a published indicator cell gives away: n, respondents, and counts or sums rebuilt from share or mean × n. */
function indicatorQuantities(def: IndicatorDef, figures: { value: number | null; n: number; respondents?: number }): Quantities {
  const q: Quantities = new Map([['n', figures.n]]);
  if (!def.populations && figures.respondents !== undefined) q.set('respondents', figures.respondents);
  const perItem = def.population.startsWith('ind:') || def.family === 'top3_ranking';
  if (perItem && def.unit === 'percent') q.set('hits', ((figures.value ?? 0) * figures.n) / 100);
  if (perItem && def.unit === 'mean' && def.code !== 'imi') q.set('sum', (figures.value ?? 0) * figures.n);
  return q;
}

function distributionQuantities(d: Pick<Distribution, 'respondents' | 'validN' | 'dk' | 'sum' | 'counts'>): Quantities {
  const q: Quantities = new Map([
    ['respondents', d.respondents],
    ['validN', d.validN],
    ['dk', d.dk],
  ]);
  if (d.sum !== null) q.set('sum', d.sum);
  for (const c of d.counts) q.set(`count ${c.row ?? ''}|${c.rank ?? ''}|${String(c.value)}`, c.n);
  return q;
}

/** A plain check: the loops below make hundreds of thousands, too many for expect(). */
function check(condition: boolean, message: () => string): void {
  if (!condition) throw new Error(message());
}

const sameQuantities = (a: Quantities, b: Quantities) => a.size === b.size && [...a].every(([k, v]) => Math.abs((b.get(k) ?? NaN) - v) < 1e-9);

/** Everything published, per figure and cell id; a figure's cell published twice must say the same. */
class Publication {
  readonly published = new Map<string, Map<string, Quantities>>();
  readonly hidden = new Map<string, Set<string>>();

  add(figure: string, cell: string, quantities: Quantities | null, where: string) {
    const published = this.published.get(figure) ?? new Map<string, Quantities>();
    const hidden = this.hidden.get(figure) ?? new Set<string>();
    this.published.set(figure, published);
    this.hidden.set(figure, hidden);
    if (quantities === null) {
      check(!published.has(cell), () => `${figure} ${cell} hidden in ${where} but published elsewhere`);
      hidden.add(cell);
      return;
    }
    check(!hidden.has(cell), () => `${figure} ${cell} published in ${where} but hidden elsewhere`);
    const before = published.get(cell);
    if (before) check(sameQuantities(before, quantities), () => `${figure} ${cell} in ${where}: ${JSON.stringify([...quantities])} against ${JSON.stringify([...before])}`);
    published.set(cell, quantities);
  }

  /** One view's tables, its cells named by their id in the campaign's lattice. */
  addView(tables: EvidenceTables, defs: Map<string, IndicatorDef>, where: string) {
    const whereDims = DIMENSION_NAMES.filter((d) => tables.filter.where[d]?.length);
    const cellDims = DIMENSION_NAMES.filter((d) => whereDims.includes(d) || tables.dimensions.includes(d));
    const overall = cellId(whereDims, whereDims.map((d) => tables.filter.where[d]![0]).join('|'));
    const groupId = (viewKey: string) => {
      const parts = groupValues(viewKey);
      return cellId(cellDims, cellDims.map((d) => (whereDims.includes(d) ? tables.filter.where[d]![0] : parts[tables.dimensions.indexOf(d)])).join('|'));
    };
    const each = <T extends object>(figure: string, overallCell: Cell<T>, groups: Record<string, Cell<T>>, quantities: (cell: T & { respondents: number }) => Quantities) => {
      this.add(figure, overall, overallCell.suppressed ? null : quantities(overallCell), where);
      for (const [key, cell] of Object.entries(groups)) this.add(figure, groupId(key), cell.suppressed ? null : quantities(cell), where);
    };
    for (const row of tables.indicators) each(`indicator:${row.code}`, row.overall, row.groups, (c) => indicatorQuantities(defs.get(row.code)!, c));
    for (const row of tables.questions) each(`question:${row.name}`, row.overall, row.groups, distributionQuantities);
    const count = (n: number | null) => (n === null ? null : new Map([['responses', n]]));
    this.add(RESPONSES_FIGURE, overall, count(tables.responses), where);
    for (const [key, n] of Object.entries(tables.groupResponses)) this.add(RESPONSES_FIGURE, groupId(key), count(n), where);
  }
}

/** The true quantities of every figure in every cell of the lattice. */
function truth(tally: GroupTally, defs: IndicatorDef[]): Map<string, Quantities> {
  const figures = new Map<string, Quantities>();
  for (const def of defs) {
    const populations = def.populations ? def.populations(tally) : [tally.populations.get(def.population)];
    const respondents = Math.min(...populations.map((p) => p?.respondents ?? 0));
    figures.set(`indicator:${def.code}`, indicatorQuantities(def, { ...def.compute(tally), respondents }));
  }
  for (const q of shownQuestions(catalogue)) figures.set(`question:${q.name}`, distributionQuantities(distributionOf(q, tally)));
  figures.set(RESPONSES_FIGURE, new Map([['responses', tally.responses]]));
  return figures;
}

describe('the auditor', () => {
  it('from every published table of every view, the size of no hidden cell with answers can be pinned to one value', { timeout: 300_000 }, async () => {
    const service = new EvidenceService({ models: platform.models, catalogue, thresholds: THRESHOLDS });
    const set = service.indicatorSet;
    const defs = new Map(set.indicators.map((d) => [d.code, d]));
    let hiddenChecked = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(responseArbitrary, { minLength: 10, maxLength: 40 }), fc.array(responseArbitrary, { minLength: 5, maxLength: 20 }), async (seeds, otherSeeds) => {
        await platform.models.Response.deleteMany({});
        service.invalidate();
        const campaign = new Types.ObjectId();
        const other = new Types.ObjectId();
        const responses = toResponses(seeds, campaign);
        await insertResponses(platform.models, [...responses, ...toResponses(otherSeeds, other)]);

        // Every view a reviewer can ask for: overall, each breakdown and cross-tab, each filter value alone and broken down (three dimensions at most), and the wave comparison.
        const publication = new Publication();
        const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
        const valuesOf = (d: Dimension) => [...new Set(responses.map((r) => r.profile[d]).filter((v): v is string => Boolean(v)))];
        for (const dims of viewTables()) {
          if (dims.length <= 2) publication.addView(await service.tables({ ...base, breakdown: dims }), defs, dims.join('×') || 'overall');
          if (dims.length >= 1) {
            for (const value of valuesOf(dims[0]!)) {
              const filter = { ...base, where: { [dims[0]!]: [value] }, breakdown: dims.slice(1) };
              publication.addView(await service.tables(filter), defs, JSON.stringify(filter.where) + dims.slice(1).join('×'));
            }
          }
        }
        for (const d of DIMENSION_NAMES) {
          for (const value of valuesOf(d)) {
            const comparison = await compareWaves(service, { id: String(other), name: 'A' }, { id: String(campaign), name: 'B' }, { [d]: [value] });
            const id = cellId([d], value);
            for (const row of comparison.indicators) publication.add(`indicator:${row.code}`, id, row.b.suppressed ? null : indicatorQuantities(defs.get(row.code)!, row.b), `waves ${d}=${value}`);
            for (const row of comparison.questions) publication.add(`question:${row.name}`, id, row.b.suppressed ? null : distributionQuantities(row.b), `waves ${d}=${value}`);
          }
        }

        // The auditor's view of the campaign: its lattice of tables and, for checking only, the true figures.
        const tallies = await tallyResponses(platform.models, { campaigns: [String(campaign)] }, {
          catalogue,
          ratios: set.ratios,
          indicatorsOf: set.indicatorsOf,
          institutionCap: THRESHOLDS.minInstitutions,
          accredited: ACCREDITED_STATUSES,
        });
        const { cells, lines } = latticeOf(new TableSource(tallies, THRESHOLDS.minInstitutions));
        const ids = [...cells.keys()];
        const truths = new Map([...cells].map(([id, tally]) => [id, truth(tally, set.indicators)]));

        // Published figures are the true ones (else the solver's equalities would not hold).
        for (const [figure, published] of publication.published) {
          for (const [id, quantities] of published) {
            for (const [quantity, value] of quantities) {
              const actual = truths.get(id)?.get(figure)?.get(quantity) ?? 0;
              check(Math.abs(value - actual) < 1e-6, () => `${figure} ${quantity} at ${id}: published ${value}, true ${actual}`);
            }
          }
        }
        for (const [figure, hidden] of publication.hidden) {
          const published = publication.published.get(figure)!;
          const withAnswers = (id: string) => [...(truths.get(id)!.get(figure)?.values() ?? [])].some((v) => v !== 0);
          // Hidden everywhere the views reach, or never shown: unknown to the auditor unless known to be empty.
          const unknown = ids.filter((id) => !published.has(id));
          const targets = [...hidden].filter((id) => cells.has(id) && withAnswers(id));
          if (targets.length === 0) continue;
          const empty = new Set(unknown.filter((id) => !withAnswers(id)));
          // The sizes behind a cell: how many respondents, answers or responses it holds.
          const quantityNames = new Set(ids.flatMap((id) => [...(truths.get(id)!.get(figure)?.keys() ?? [])]).filter((q) => SIZES.has(q)));
          for (const quantity of quantityNames) {
            const known = new Map([...published].map(([id, q]) => [id, q.get(quantity) ?? 0]));
            const bounds = deriveBounds(ids, lines, known, empty);
            for (const id of targets) {
              const value = truths.get(id)!.get(figure)!.get(quantity) ?? 0;
              const { lo, hi } = bounds.get(id)!;
              check(lo <= value + 0.5 && value <= hi + 0.5, () => `${figure} ${quantity} at ${id}: ${value} outside [${lo}, ${hi}] (the solver is wrong)`);
              check(value === 0 || hi - lo >= 1, () => `${figure} ${quantity} at ${id} is pinned to ${value}`);
            }
          }
          hiddenChecked += targets.length;
        }
      }),
      // A failure is reported at once with its seed: shrinking a campaign through every view would take minutes.
      { numRuns: 6, endOnFailure: true },
    );
    expect(hiddenChecked).toBeGreaterThan(0);
  });
});
