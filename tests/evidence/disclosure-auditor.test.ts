import fc from 'fast-check';
import * as highsPackage from 'highs';
import type { Highs } from 'highs';
import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexLines, unitDecision } from '../../server/evidence/count-suppression.ts';
import { hiddenCells, MAX_VIEW_DIMENSIONS, type Line } from '../../server/evidence/disclosure.ts';
import { DIMENSION_NAMES, type Dimension, type EvidenceFilter } from '../../server/evidence/evidence-filter.ts';
import { listQuotes } from '../../server/evidence/evidence-quotes.service.ts';
import { EvidenceService } from '../../server/evidence/indicator.service.ts';
import { compareWaves } from '../../server/evidence/wave-comparison.service.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { cube, isDontKnow, isDontKnowCount, isSize, latticeOf, pinnedCells, Publication, randomSizes, requiredForEveryone, solveAll, type CellId, type Interval, type Lattice, type SolveOptions } from './auditor.ts';
import { catalogue, dimensionCombinations, insertResponses, LOW_THRESHOLDS, NO_THRESHOLDS, responseArbitrary, toResponses, type RawResponse, type ResponseSeed } from './evidence-data.ts';
import { seededRandom } from '../seeded-random.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform.close();
});


/**
 * Everything a reviewer can ask for about one campaign: overall, every
 * breakdown and cross-tab, every filter value with every breakdown of the
 * other dimensions, the wave comparison against another campaign for everyone
 * and every filter value, and the quotes' country labels.
 */
async function publish(service: EvidenceService, responses: RawResponse[], campaign: string, other: string): Promise<Publication> {
  const publication = new Publication();
  const base: EvidenceFilter = { campaigns: [campaign], where: {}, breakdown: [] };
  const valuesOf = (d: Dimension) => [...new Set(responses.map((r) => r.profile[d]).filter((v): v is string => Boolean(v)))];
  for (const dims of dimensionCombinations(MAX_VIEW_DIMENSIONS)) {
    if (dims.length <= 2) publication.addTables(await service.tables({ ...base, breakdown: dims }));
    for (const d of dims) {
      for (const value of valuesOf(d)) publication.addTables(await service.tables({ ...base, where: { [d]: [value] }, breakdown: dims.filter((x) => x !== d) }));
    }
  }
  const waves = (where: Partial<Record<Dimension, string>>) =>
    compareWaves(service, { id: other, name: 'A' }, { id: campaign, name: 'B' }, Object.fromEntries(Object.entries(where).map(([d, v]) => [d, [v]])));
  publication.addWaveSide(await waves({}), {});
  for (const d of DIMENSION_NAMES) for (const value of valuesOf(d)) publication.addWaveSide(await waves({ [d]: value }), { [d]: value });
  // A quote's country label says that the country answered: it is published only with the country's number of responses.
  for (const where of [{}, ...valuesOf('country').map((v) => ({ country: [v] }))]) {
    const list = await listQuotes({ models: platform.models, catalogue, evidence: service, thresholds: service.thresholds }, { campaigns: [campaign], where }, { showIdentities: true });
    if (list.suppressed) continue;
    for (const quote of list.quotes) {
      if (quote.country !== '' && publication.published.get('responses')?.has(`country=${quote.country}`) !== true) {
        publication.contradictions.push(`a quote is labelled ${quote.country}, whose number of responses is not published`);
      }
    }
  }
  return publication;
}

type Bounds = Map<string, Map<CellId, Map<string, Interval>>>;

interface Audit {
  /** Hidden cells with answers looked at, per figure (and published cells with a suppressed count). */
  checked: number;
  /** Quantities of hidden cells with answers pinned to one value (upper − lower bound < 1), or to a range narrower than `SolveOptions.minRange`. */
  breaches: string[];
  /** True values outside the derived bounds: the solver would be wrong. */
  unsound: string[];
}

/**
 * The rule of the README: for every hidden cell where a figure has answers,
 * no quantity the audit looks at may be pinned (derived upper bound − lower
 * bound < 1, or below `options.minRange`), unless it is known to be 0. Known to be 0, as routing would
 * tell an outsider: every quantity of a figure in a cell where it has no
 * answers, and a size that is 0 (say, the valid answers of a group that only
 * answered "don't know").
 */
function audit(
  publication: Publication,
  truth: Bounds,
  lattice: Lattice,
  options: SolveOptions & { knownZeros?: (quantity: string) => boolean },
  rule: (figure: string, quantity: string, value: number) => boolean = () => true,
): Audit {
  const valueOf = (figure: string, cell: CellId, quantity: string) => truth.get(figure)?.get(cell)?.get(quantity)?.lo ?? 0;
  const hasAnswers = (figure: string, cell: CellId) => [...(truth.get(figure)?.get(cell)?.values() ?? [])].some((b) => b.lo !== 0);
  // Known to be 0: everything of a figure without answers there, a size that is 0 (nobody behind it, as the mechanism assumes),
  // and, with `knownZeros`, those quantities wherever they are 0.
  // A number's sum over no valid answers is 0 too (its valid answers, a size, are known to be 0).
  const known = (figure: string, cell: CellId, quantity: string) =>
    !hasAnswers(figure, cell) ||
    ((isSize(publication, figure, quantity) || options.knownZeros?.(quantity) === true) && valueOf(figure, cell, quantity) === 0) ||
    (quantity === 'sum' && publication.kinds.get(figure) === 'number' && valueOf(figure, cell, 'validN') === 0);
  const bounds = solveAll(publication, lattice, known, options);
  const result: Audit = { checked: 0, breaches: [], unsound: [] };
  // Hidden cells, and published cells that show some of their quantities as suppressed (those quantities only).
  const suppressedIn = (figure: string, cell: CellId) => [...(publication.published.get(figure)?.get(cell) ?? [])].filter(([, v]) => Number.isNaN(v)).map(([q]) => q);
  const looked: Array<[string, CellId, (quantity: string) => boolean]> = [];
  for (const [figure, hidden] of publication.hidden) for (const cell of hidden) looked.push([figure, cell, () => true]);
  for (const [figure, cells] of publication.published) {
    for (const cell of cells.keys()) {
      const suppressed = new Set(suppressedIn(figure, cell));
      if (suppressed.size > 0) looked.push([figure, cell, (quantity) => suppressed.has(quantity)]);
    }
  }
  for (const [figure, cell, isSuppressed] of looked) {
    {
      if (!hasAnswers(figure, cell)) continue;
      result.checked += 1;
      for (const [quantity, { lo, hi }] of bounds.get(figure)?.get(cell) ?? []) {
        if (!isSuppressed(quantity)) continue;
        const value = valueOf(figure, cell, quantity);
        const at = `${figure} ${quantity} at "${cell}" (true ${value})`;
        if (value < lo - 1e-6 || value > hi + 1e-6) result.unsound.push(`${at} outside [${lo}, ${hi}]`);
        if (hi - lo < (options.minRange ?? 1) - 1e-6 && !known(figure, cell, quantity) && rule(figure, quantity, value)) result.breaches.push(`${at} pinned to [${lo}, ${hi}]`);
      }
    }
  }
  return result;
}

/** A campaign of random responses (and another to compare with), published with and without thresholds. */
async function campaignOf(seeds: ResponseSeed[], otherSeeds: ResponseSeed[], service: EvidenceService, open: EvidenceService, sides: SolveOptions['sides'] = 'topTwo') {
  return campaignOfResponses((campaign) => toResponses(seeds, campaign), (other) => toResponses(otherSeeds, other), service, open, sides);
}

/** campaignOf with the responses made by the caller, for each campaign's id. */
/** `sides`: the sums over splits of a scale's points the truth holds too (every split only where a test audits them: they make its solve slower). */
async function campaignOfResponses(
  responsesOf: (campaign: Types.ObjectId) => RawResponse[],
  otherResponsesOf: (campaign: Types.ObjectId) => RawResponse[],
  service: EvidenceService,
  open: EvidenceService,
  sides: SolveOptions['sides'] = 'topTwo',
) {
  await platform.models.Response.deleteMany({});
  service.invalidate();
  open.invalidate();
  const campaign = new Types.ObjectId();
  const other = new Types.ObjectId();
  const responses = responsesOf(campaign);
  await insertResponses(platform, [...responses, ...otherResponsesOf(other)]);
  const publication = await publish(service, responses, String(campaign), String(other));
  const openPublication = await publish(open, responses, String(campaign), String(other));
  const lattice = latticeOf(openPublication, MAX_VIEW_DIMENSIONS);
  // Without thresholds only empty cells are hidden, so every cell of the lattice is known exactly.
  const truth = solveAll(openPublication, lattice, (figure, cell) => openPublication.hidden.get(figure)?.has(cell) ?? false, { weighted: true, sides });
  return { publication, lattice, truth };
}

describe('the auditor', () => {
  const service = () => new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: LOW_THRESHOLDS });
  const open = () => new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: NO_THRESHOLDS });
  const sizesOf = (publication: Publication): SolveOptions => ({ quantities: (figure, quantity) => isSize(publication, figure, quantity) });

  /**
   * No size of a hidden cell with answers can be pinned, on the campaigns
   * fast-check draws (from `seed` when given). The auditor knows that every
   * group a view lists has at least one response: before the mechanism used
   * that too, it pinned hidden numbers of responses on every campaign tried
   * (385 on seed 3's first; on sparse campaigns nearly every hidden group's).
   */
  async function auditSizes(seed?: number, options: Pick<SolveOptions, 'respondentsWithinResponses'> = {}) {
    const [s, o] = [service(), open()];
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(responseArbitrary, { minLength: 10, maxLength: 30 }), fc.array(responseArbitrary, { minLength: 3, maxLength: 10 }), async (seeds, otherSeeds) => {
        const { publication, lattice, truth } = await campaignOf(seeds, otherSeeds, s, o);
        expect(publication.contradictions).toEqual([]);
        // Published figures are the true ones (else the lines would not hold).
        for (const [figure, cells] of publication.published) {
          for (const [cell, quantities] of cells) {
            for (const [quantity, value] of quantities) if (!Number.isNaN(value)) expect(truth.get(figure)?.get(cell)?.get(quantity)?.lo ?? 0, `${figure} ${quantity} at "${cell}"`).toBeCloseTo(value, 6);
          }
        }
        const result = audit(publication, truth, lattice, { ...sizesOf(publication), ...options });
        expect(result.unsound).toEqual([]);
        expect(result.breaches).toEqual([]);
        checked += result.checked;
      }),
      // A failure is reported at once with its seed: shrinking a campaign through every view would take minutes.
      { numRuns: 2, endOnFailure: true, ...(seed === undefined ? {} : { seed }) },
    );
    expect(checked).toBeGreaterThan(0);
  }

  /**
   * On a random seed each run, with the relation that nobody answers a
   * question without a response (below): an auditor who knows it derives
   * narrower bounds than one who does not, so this covers both. Before it
   * became the default here (7 December 2026) it passed on the fixed seeds
   * below and on 37 more (11–16, 100–130).
   */
  it("from every published table of every view, the size of no hidden cell with answers can be pinned to one value, a question's respondents at most the group's number of responses", async () => {
    await auditSizes(undefined, { respondentsWithinResponses: true });
  });

  it('the same on seed 3, where the groups that views list as suppressed let the auditor pin every hidden number of responses', async () => {
    await auditSizes(3);
  });

  /**
   * Nobody answers a question without a response, so an outsider knows a
   * question's respondents are at most the group's number of responses.
   * Before the mechanism hid a question's cell wherever the number of
   * responses is hidden and bounded from above by published ones, the
   * auditor pinned 13,703 sizes on seed 3's first campaign and 15,626 on
   * seed 543961326's second (questions published in hidden groups, their
   * lower bounds added up along lines with a published total).
   */
  it.each([3, 543961326, 1, -1578804761])("the same on seed %i with a question's respondents at most the group's number of responses", async (seed) => {
    await auditSizes(seed, { respondentsWithinResponses: true });
  });

  /**
   * No hidden answer count that is not 0 can be pinned, on the campaigns that
   * fast-check draws from `seed`. Fixed seeds, so that CI is not red at random
   * and each run is the same: seed 1, and the two seeds on which the auditor
   * pinned hundreds of S1.4 counts before the mechanism audited its own
   * decisions (count-audit.ts): sparse groups whose only answer makes a line's
   * total equal to one member chained hidden counts to published ones.
   * `weighted`: the auditor also links means, top-two shares and one
   * question's indicators to the counts (SolveOptions.weighted), and adds up
   * a scale's top two points and the rest as sums of their own (`sides`).
   * Number sums are checked on every seed.
   */
  async function auditAnswerCounts(seed: number, minRange = 1) {
    const s = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: { ...LOW_THRESHOLDS, minRange } });
    const o = open();
    let checked = 0;
    let suppressedCounts = 0;
    let hiddenSums = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(responseArbitrary, { minLength: 10, maxLength: 30 }), fc.array(responseArbitrary, { minLength: 3, maxLength: 10 }), async (seeds, otherSeeds) => {
        const { publication, lattice, truth } = await campaignOf(seeds, otherSeeds, s, o);
        expect(publication.contradictions).toEqual([]);
        // A valid answer's count, "don't know" apart (for a single answer it is the respondents minus the valid answers, both sizes).
        // And a number's sum (hidden with its cell) where it has valid answers.
        const rule = (figure: string, quantity: string, value: number) => (value !== 0 && quantity.startsWith('count ') && !isDontKnowCount(quantity)) || (quantity === 'sum' && publication.kinds.get(figure) === 'number');
        const result = audit(publication, truth, lattice, { withinCells: true, minRange, weighted: true, sides: 'topTwo', respondentsWithinResponses: true }, rule);
        expect(result.unsound).toEqual([]);
        expect(result.breaches).toEqual([]);
        // The number of responses, audited by the mechanism as a count of its own (listed groups at least 1), keeps the same width.
        expect(audit(publication, truth, lattice, { quantities: (figure) => figure === 'responses', minRange }).breaches).toEqual([]);
        checked += result.checked;
        for (const cells of publication.published.values()) for (const quantities of cells.values()) for (const v of quantities.values()) if (Number.isNaN(v)) suppressedCounts += 1;
        for (const [figure, cells] of publication.hidden) if (publication.kinds.get(figure) === 'number') for (const cell of cells) if ((truth.get(figure)?.get(cell)?.get('validN')?.lo ?? 0) > 0) hiddenSums += 1;
      }),
      { numRuns: 2, endOnFailure: true, seed },
    );
    expect(checked).toBeGreaterThan(0);
    // Counts were hidden one by one inside published cells (else the rule would hold only by hiding whole cells).
    expect(suppressedCounts).toBeGreaterThan(0);
    expect(hiddenSums).toBeGreaterThan(0);
  }

  it('from every published table of every view, no hidden answer count that is not 0 can be pinned to one value, with every relation inside a cell', async () => {
    await auditAnswerCounts(1);
  });

  it.each([543961326, -1578804761])('the same on seed %i, where sparse groups once let the auditor pin S1.4 counts through chains of lines', async (seed) => {
    await auditAnswerCounts(seed);
  });

  /**
   * An outsider can add a scale's counts up over any split of its points
   * (its top two and the rest, say) as sums of their own, from the published
   * counts and valid answers alone: each adds up along lines like a single
   * count. While a published cell could hide some of a sum's counts and show
   * the others, such sums pinned counts that single counts leave open: on
   * seed 543961326's first campaign 974 through the top-two split and 1,536
   * through every split, on seed 1's 81 through every split. A published cell
   * now shows all of a sum's counts or none (count-suppression.ts).
   */
  it.each([543961326, 1])("on seed %i, sums over every split of a scale's points pin no hidden count", async (seed) => {
    const s = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: LOW_THRESHOLDS });
    const [seeds, otherSeeds] = fc.sample(fc.tuple(fc.array(responseArbitrary, { minLength: 10, maxLength: 30 }), fc.array(responseArbitrary, { minLength: 3, maxLength: 10 })), { seed, numRuns: 1 })[0]!;
    const { publication, lattice, truth } = await campaignOf(seeds, otherSeeds, s, open(), 'every');
    const countsOnly = (_: string, quantity: string, value: number) => value !== 0 && quantity.startsWith('count ') && !isDontKnowCount(quantity);
    const result = audit(publication, truth, lattice, { withinCells: true, sides: 'every' }, countsOnly);
    expect(result.unsound).toEqual([]);
    expect(result.checked).toBeGreaterThan(0);
    expect(result.breaches.slice(0, 5)).toEqual([]);
  });

  /**
   * No hidden or withheld "don't know" count that is not 0 can be pinned
   * either: in a hidden cell, zeros and published "don't know" counts
   * travelling along the lines pinned hundreds before the mechanism treated
   * "don't know" as one more answer category (withheld in a published cell
   * with the respondents, the figure that gives it away). The auditor knows
   * which "don't know" counts are 0 (the mechanism's premise), and counts
   * every question's, a number's separate box included.
   */
  it.each([1, 543961326, -1578804761])('no hidden or withheld "don\'t know" count that is not 0 can be pinned (seed %i)', async (seed) => {
    const s = service();
    const o = open();
    let withheld = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(responseArbitrary, { minLength: 10, maxLength: 30 }), fc.array(responseArbitrary, { minLength: 3, maxLength: 10 }), async (seeds, otherSeeds) => {
        const { publication, lattice, truth } = await campaignOf(seeds, otherSeeds, s, o);
        expect(publication.contradictions).toEqual([]);
        const result = audit(publication, truth, lattice, { withinCells: true, knownZeros: isDontKnow }, (_, quantity, value) => value !== 0 && quantity === 'dk');
        expect(result.unsound).toEqual([]);
        expect(result.breaches.length, result.breaches.slice(0, 3).join('\n')).toBe(0);
        for (const cells of publication.published.values()) for (const quantities of cells.values()) if (Number.isNaN(quantities.get('dk'))) withheld += 1;
      }),
      { numRuns: 2, endOnFailure: true, seed },
    );
    // Protected by withholding in published cells, not only by hiding cells whole.
    expect(withheld).toBeGreaterThan(0);
  });

  /**
   * With a protection width of 2 (Thresholds.minRange, DISCLOSURE_MIN_RANGE)
   * the mechanism audits its decision for ranges narrower than 2, and the
   * auditor checks the same width, on three seeds. On the first, with the mechanism auditing
   * for one value only, the auditor narrowed 168 hidden S1.4 counts to two
   * values (113 of them to [0, 1]).
   */
  it.each([543961326, 1, -1578804761])('with a protection width of 2, no hidden answer count that is not 0 and no hidden number of responses has a range narrower than 2 (seed %i)', async (seed) => {
    await auditAnswerCounts(seed, 2);
  });

  it("catches a mean published beside a cell's hidden answer counts, once it reads the mean as a weighted sum of the counts", async () => {
    const [seeds, otherSeeds] = fc.sample(fc.tuple(fc.array(responseArbitrary, { minLength: 25, maxLength: 25 }), fc.array(responseArbitrary, { minLength: 3, maxLength: 3 })), { seed: 11, numRuns: 1 })[0]!;
    const { publication, lattice, truth } = await campaignOf(seeds, otherSeeds, service(), open());
    const countsOnly = (_: string, quantity: string, value: number) => value !== 0 && quantity.startsWith('count ') && !isDontKnowCount(quantity);
    expect(audit(publication, truth, lattice, { withinCells: true, weighted: true }, countsOnly).breaches).toEqual([]);
    // Published cells of a scale whose mean is withheld beside hidden valid counts (a sum's counts are hidden all or none).
    const hiddenValid = (q: Map<string, number>) => [...q].filter(([k, v]) => k.startsWith('count ') && !isDontKnowCount(k) && Number.isNaN(v)).length;
    const withheld = [...publication.published]
      .filter(([figure]) => publication.kinds.get(figure) === 'scale')
      .flatMap(([figure, cells]) => [...cells].filter(([, q]) => Number.isNaN(q.get('valueSum')) && hiddenValid(q) >= 2).map(([cell]) => `${figure} ${cell}`));
    expect(withheld.length).toBeGreaterThan(0);
    // Weakened: those cells' means are shown after all (mean × valid answers, the sum of its values).
    const weakened = new Publication();
    for (const [f, kind] of publication.kinds) weakened.kinds.set(f, kind);
    for (const [f, cells] of publication.hidden) for (const id of cells) weakened.add(f, id, null, 'copy');
    for (const [f, cells] of publication.published) {
      for (const [id, q] of cells) weakened.add(f, id, withheld.includes(`${f} ${id}`) ? new Map([...q, ['valueSum', truth.get(f)!.get(id)!.get('valueSum')!.lo]]) : q, 'copy');
    }
    const pinned = audit(weakened, truth, lattice, { withinCells: true, weighted: true }, countsOnly).breaches;
    expect(pinned.filter((b) => withheld.some((at) => b.startsWith(`${at.split(' ')[0]} count`) && b.includes(`at "${at.slice(at.indexOf(' ') + 1)}"`))).length).toBeGreaterThan(0);
    // Read as a figure of its own, the mean says nothing about the counts.
    expect(audit(weakened, truth, lattice, { withinCells: true }, countsOnly).breaches).toEqual([]);
  });

  it('catches a mechanism that publishes one cell too many, and its full bounds (counts, within-cell relations) hold the truth', async () => {
    const [seeds, otherSeeds] = fc.sample(fc.tuple(fc.array(responseArbitrary, { minLength: 25, maxLength: 25 }), fc.array(responseArbitrary, { minLength: 3, maxLength: 3 })), { seed: 10, numRuns: 1 })[0]!;
    const { publication, lattice, truth } = await campaignOf(seeds, otherSeeds, service(), open());
    expect(audit(publication, truth, lattice, sizesOf(publication)).breaches).toEqual([]);

    // The full auditor (every count, every relation inside a cell) is sound: the truth lies within its bounds.
    const full = audit(publication, truth, lattice, { withinCells: true });
    expect(full.unsound).toEqual([]);
    expect(full.checked).toBeGreaterThan(0);

    // Weakened: the number of responses of one hidden group is shown after all.
    const hidden = [...publication.hidden.get('responses')!].filter((cell) => (truth.get('responses')!.get(cell)!.get('responses')!.lo ?? 0) > 0).slice(0, 20);
    expect(hidden.length).toBeGreaterThan(0);
    let caught = 0;
    for (const cell of hidden) {
      const weakened = new Publication();
      for (const [figure, kind] of publication.kinds) weakened.kinds.set(figure, kind);
      for (const [figure, cells] of publication.published) for (const [id, q] of cells) weakened.add(figure, id, q, 'copy');
      for (const [figure, cells] of publication.hidden) for (const id of cells) if (figure !== 'responses' || id !== cell) weakened.add(figure, id, null, 'copy');
      weakened.add('responses', cell, new Map([['responses', truth.get('responses')!.get(cell)!.get('responses')!.lo]]), 'weakened');
      const breaches = audit(weakened, truth, lattice, { quantities: (figure) => figure === 'responses' }).breaches;
      // What it gives away is another hidden group (its partner on a line), never the cell shown.
      expect(breaches.filter((b) => b.includes(`at "${cell}"`))).toEqual([]);
      if (breaches.length > 0) caught += 1;
    }
    expect(caught).toBeGreaterThan(0);
  });
});

describe('groups that views list', () => {
  it('a hidden group that views list has at least one response: with that, an outsider pins sizes of random tables after secondary suppression; after the mechanism audits the number of responses, none', () => {
    const { cells, lines, inner } = cube();
    const index = indexLines(cells, lines);
    const random = seededRandom(7);
    let pinnedByListing = 0;
    let published = 0;
    for (let run = 0; run < 100; run++) {
      // Groups of 0–5 responses, many empty; fewer than 3 is too few.
      const size = randomSizes(cells, inner, random);
      const figure = { size: (c: string) => size.get(c)!, tooSmall: (c: string) => size.get(c)! < 3 };
      const cellsOnly = hiddenCells(cells, lines, [figure]);
      expect(pinnedCells(cells, lines, size, cellsOnly)).toEqual([]);
      pinnedByListing += pinnedCells(cells, lines, size, cellsOnly, true).length;
      const responses = Int32Array.from(cells, (c) => size.get(c)!);
      const { hidden } = unitDecision(cells, lines, index, [figure], [{ counts: [responses], sumOf: [0], respondents: responses, dontKnow: new Int32Array(cells.length), listed: true }]);
      expect(pinnedCells(cells, lines, size, hidden, true)).toEqual([]);
      published += cells.filter((c) => !hidden.has(c)).length;
    }
    expect(pinnedByListing).toBeGreaterThan(0);
    // Not everything is hidden to get there.
    expect(published).toBeGreaterThan(0);
  });
});

describe('secondary suppression', () => {
  it('without it the auditor pins hidden cells of random tables; with it, none', () => {
    const { cells, lines, inner } = cube();
    const random = seededRandom(42);
    let pinnedWithout = 0;
    for (let run = 0; run < 100; run++) {
      // Groups of 0–5 respondents, many empty; fewer than 3 is too few.
      const size = randomSizes(cells, inner, random);
      const figure = { size: (c: string) => size.get(c)!, tooSmall: (c: string) => size.get(c)! < 3 };
      pinnedWithout += pinnedCells(cells, lines, size, hiddenCells(cells, lines, [figure], { secondary: false })).length;
      expect(pinnedCells(cells, lines, size, hiddenCells(cells, lines, [figure]))).toEqual([]);
    }
    expect(pinnedWithout).toBeGreaterThan(0);
  });
});

describe("a question's respondents and the group's number of responses", () => {
  /** Three countries whose numbers of responses are all published; a question published overall and in AT only. */
  function publicationOf(question: string, respondents: { overall: number; AT: number }, kind: string) {
    const publication = new Publication();
    publication.kinds.set(`question:${question}`, kind);
    const sizes = (n: number) => new Map([['respondents', n], ['validN', n], ['dk', 0]]);
    publication.add('responses', '', new Map([['responses', 12]]), 'overall');
    for (const country of ['AT', 'DE', 'FR']) publication.add('responses', `country=${country}`, new Map([['responses', 4]]), 'by country');
    publication.add(`question:${question}`, '', sizes(respondents.overall), 'overall');
    publication.add(`question:${question}`, 'country=AT', sizes(respondents.AT), 'by country');
    publication.add(`question:${question}`, 'country=DE', null, 'by country');
    publication.add(`question:${question}`, 'country=FR', null, 'by country');
    const lattice = latticeOf(publication, MAX_VIEW_DIMENSIONS);
    const respondentsAt = (options: SolveOptions, cell: string) => solveAll(publication, lattice, () => false, { ...options, quantities: (figure, quantity) => isSize(publication, figure, quantity) }).get(`question:${question}`)!.get(cell)!.get('respondents')!;
    return { respondentsAt };
  }

  it('where everyone in the hidden groups answered, their respondents are pinned by the published numbers of responses once the auditor ties them (at most the responses)', () => {
    // 10 answered overall, 2 in AT: DE and FR share 8, each at most its 4 responses, so each is 4.
    const { respondentsAt } = publicationOf('S1_1', { overall: 10, AT: 2 }, 'yesno');
    expect(respondentsAt({}, 'country=DE')).toEqual({ lo: 0, hi: 8 });
    expect(respondentsAt({ respondentsWithinResponses: true }, 'country=DE')).toEqual({ lo: 4, hi: 4 });
    // With answers left to share, nothing is pinned.
    const { respondentsAt: fewer } = publicationOf('S1_1', { overall: 7, AT: 2 }, 'yesno');
    expect(fewer({ respondentsWithinResponses: true }, 'country=DE')).toEqual({ lo: 1, hi: 4 });
  });

  it('a question the survey definitions make required and show to everyone has as many respondents as responses, where the published cells agree', () => {
    expect([...requiredForEveryone()].filter((name) => !name.startsWith('P'))).toEqual(['S1_3']);
    // S1.3 answered in every response overall and in AT: its hidden DE cell is DE's published number of responses.
    const { respondentsAt } = publicationOf('S1_3', { overall: 12, AT: 4 }, 'ranking');
    expect(respondentsAt({ respondentsWithinResponses: true }, 'country=DE')).toEqual({ lo: 4, hi: 4 });
    // Where a published cell says otherwise (the campaign did not make everyone answer it), only "at most".
    const { respondentsAt: partly } = publicationOf('S1_3', { overall: 9, AT: 3 }, 'ranking');
    expect(partly({ respondentsWithinResponses: true }, 'country=DE')).toEqual({ lo: 2, hi: 4 });
  });
});

/**
 * A hand-built campaign (and another, of its first three responses, to
 * compare with) published at low thresholds, audited for sizes by an
 * outsider who knows that a question's respondents are at most the group's
 * number of responses: nothing said twice, nothing pinned.
 */
async function auditTiedSizes(responsesOf: (campaign: Types.ObjectId) => RawResponse[]) {
  const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: LOW_THRESHOLDS });
  const open = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: NO_THRESHOLDS });
  const published = await campaignOfResponses(responsesOf, (other) => responsesOf(other).slice(0, 3), service, open);
  const { publication, lattice, truth } = published;
  expect(publication.contradictions).toEqual([]);
  const result = audit(publication, truth, lattice, { quantities: (figure, quantity) => isSize(publication, figure, quantity), respondentsWithinResponses: true });
  expect(result.unsound).toEqual([]);
  expect(result.breaches).toEqual([]);
  return published;
}

describe('a question every response answers', () => {
  /**
   * Countries of 1, 1, 3, 4 and 5 responses (thresholds 2 institutions / 3
   * respondents), everyone answering S1.3 (required, never routed). AT and DE
   * are too small; their numbers of responses, each at least 1 and adding up
   * to 2, would be pinned, so the number of responses of a third country is
   * hidden too. S1.3's respondents are that country's number of responses:
   * published there, they gave it back, and with it AT's and DE's.
   */
  function countries(campaign: Types.ObjectId): RawResponse[] {
    const choices = catalogue.byName.get('S1_3')!.choices.map((c) => c.value);
    let institution = 0;
    return (
      [
        ['AT', 1, 1],
        ['DE', 1, 1],
        ['IT', 2, 3],
        ['PL', 2, 4],
        ['FR', 3, 5],
      ] as const
    ).flatMap(([country, institutions, respondents]) => {
      const ids = Array.from({ length: institutions }, () => new Types.ObjectId());
      institution += institutions;
      return Array.from({ length: respondents }, (_, i): RawResponse => ({
        _id: new Types.ObjectId(),
        campaign,
        institution: ids[i % institutions]!,
        submittedAt: new Date(Date.UTC(2026, 1, 1, 0, institution * 10 + i)),
        profile: { country },
        items: [0, 1, 2].map((r) => ({ strand: 'S1', question: 'S1_3', value: choices[(i + r) % choices.length]!, rank: r + 1 })),
      }));
    });
  }

  it("has its respondents and the group's number of responses published or hidden together, so an auditor who ties them pins no size", async () => {
    const { publication, lattice, truth } = await auditTiedSizes(countries);
    const responsesHidden = publication.hidden.get('responses')!;
    expect(responsesHidden.has('country=AT') && responsesHidden.has('country=DE')).toBe(true);
    const apart = lattice.cells.filter((id) => truth.get('question:S1_3')?.get(id)?.get('respondents')?.lo && responsesHidden.has(id) !== (publication.hidden.get('question:S1_3')?.has(id) ?? false));
    expect(apart).toEqual([]);
  });
  /**
   * Countries and roles of 1 to 4 responses each, everyone answering S1.3.
   * Both units (S1.3's and the number of responses') are forced in the first
   * round of sameSizeRounds, and their decisions taken again part once more,
   * so one of them is forced again in a second: a loop that stopped after
   * the first round left 5 cells published in one and hidden in the other.
   */
  function countriesAndRoles(campaign: Types.ObjectId): RawResponse[] {
    const choices = catalogue.byName.get('S1_3')!.choices.map((c) => c.value);
    const groups: Array<[string, string, number, number]> = [
      ['AT', 'head', 1, 4],
      ['AT', 'intl_coordinator', 2, 3],
      ['AT', 'vocational_teacher', 2, 2],
      ['DE', 'head', 1, 1],
      ['DE', 'intl_coordinator', 1, 1],
      ['PL', 'head', 2, 4],
      ['PL', 'intl_coordinator', 2, 1],
      ['PL', 'vocational_teacher', 2, 1],
      ['FR', 'head', 2, 4],
      ['FR', 'intl_coordinator', 1, 1],
      ['FR', 'vocational_teacher', 2, 3],
    ];
    return groups.flatMap(([country, role, institutions, respondents], g) => {
      const ids = Array.from({ length: institutions }, () => new Types.ObjectId());
      return Array.from({ length: respondents }, (_, i): RawResponse => ({
        _id: new Types.ObjectId(),
        campaign,
        institution: ids[i % institutions]!,
        submittedAt: new Date(Date.UTC(2026, 1, 1, 0, g * 10 + i)),
        profile: { country, role },
        items: [0, 1, 2].map((r) => ({ strand: 'S1', question: 'S1_3', value: choices[(i + r + g) % choices.length]!, rank: r + 1 })),
      }));
    });
  }

  it('keeps them together when one round of forcing makes the other unit hide more, over as many rounds as that takes', async () => {
    const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: LOW_THRESHOLDS });
    const open = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: NO_THRESHOLDS });
    const { publication, lattice, truth } = await campaignOfResponses(countriesAndRoles, (other) => countriesAndRoles(other).slice(0, 3), service, open);
    expect(publication.contradictions).toEqual([]);
    const responsesHidden = publication.hidden.get('responses')!;
    const apart = lattice.cells.filter((id) => truth.get('question:S1_3')?.get(id)?.get('respondents')?.lo && responsesHidden.has(id) !== (publication.hidden.get('question:S1_3')?.has(id) ?? false));
    expect(apart).toEqual([]);
  });
});

describe("a question everyone in a group answered, where the group's number of responses is published", () => {
  /**
   * Countries of 3, 3, 4 and 5 responses (thresholds 2 institutions / 3
   * respondents), everyone answering S1.5, which is neither required nor
   * routed. In AT and DE one respondent says "don't know", so S1.5 has 2
   * valid answers there and its cells are hidden; the numbers of responses
   * are large enough to publish. S1.5's respondents in AT and DE add up to
   * the overall ones less FR's and PL's, 6, and each is at most its
   * country's 3 responses: both are pinned, unless a number of responses
   * there is hidden too.
   */
  function countries(campaign: Types.ObjectId): RawResponse[] {
    return (
      [
        ['AT', 2, 3],
        ['DE', 2, 3],
        ['FR', 2, 4],
        ['PL', 3, 5],
      ] as const
    ).flatMap(([country, institutions, respondents], g) => {
      const ids = Array.from({ length: institutions }, () => new Types.ObjectId());
      return Array.from({ length: respondents }, (_, i): RawResponse => ({
        _id: new Types.ObjectId(),
        campaign,
        institution: ids[i % institutions]!,
        submittedAt: new Date(Date.UTC(2026, 1, 1, 0, g * 10 + i)),
        profile: { country },
        items: [{ strand: 'S1', question: 'S1_5', value: (country === 'AT' || country === 'DE') && i === 0 ? 'dk' : 1 + ((i + g) % 5) }],
      }));
    });
  }

  it("hides the number of responses where published ones would pin the question's hidden respondents, so an auditor who ties them pins no size", async () => {
    const { publication } = await auditTiedSizes(countries);
    const questionHidden = publication.hidden.get('question:S1_5')!;
    expect(questionHidden.has('country=AT') && questionHidden.has('country=DE')).toBe(true);
    // The price: one of the two countries' numbers of responses, and what its line needs beside it.
    const responsesHidden = publication.hidden.get('responses')!;
    expect(responsesHidden.has('country=AT') || responsesHidden.has('country=DE')).toBe(true);
    expect(responsesHidden.has('')).toBe(false);
  });
});

describe("a question's respondents tied by the cells its own secondary suppression hides", () => {
  /**
   * Two countries by two roles, every group of 2 institutions with its
   * number of responses published (thresholds 2 institutions / 3
   * respondents). S1.5 is answered by 2 of AT's 4 heads (too few: primary
   * suppression hides the cell) and by everyone in the other three groups.
   * Its secondary suppression alone hides the other three as the
   * rectangle's complements; each of them holds as many respondents as
   * responses, its upper bound. With x AT's heads: AT's row gives x ≥ 5 − 3,
   * DE's intl coordinators (at most 3) give x ≤ 3 − (6 − 5). So x = 2, and
   * every hidden cell of the rectangle with it. The rule for tied
   * respondents (indicator.service.ts tiedRespondents) reads the primary
   * cells one line at a time, before the question's unit is decided, and
   * finds no line that leaves no room: AT's heads did not all answer. The
   * question's own audit (count-audit.ts) takes the published numbers of
   * responses as upper bounds of its hidden respondents
   * (AnswerCounts.respondentsAtMost), finds the pins and hides more.
   */
  function rectangle(campaign: Types.ObjectId): RawResponse[] {
    const groups: Array<[country: string, role: string, responses: number, answering: number]> = [
      ['AT', 'head', 4, 2],
      ['AT', 'intl_coordinator', 3, 3],
      ['DE', 'head', 3, 3],
      ['DE', 'intl_coordinator', 3, 3],
    ];
    const other = catalogue.byName.get('S1_3')!.choices[0]!.value;
    return groups.flatMap(([country, role, responses, answering], g) => {
      const ids = [new Types.ObjectId(), new Types.ObjectId()];
      return Array.from({ length: responses }, (_, i): RawResponse => ({
        _id: new Types.ObjectId(),
        campaign,
        institution: ids[i % 2]!,
        submittedAt: new Date(Date.UTC(2026, 1, 1, 0, g * 10 + i)),
        profile: { country, role },
        // Those who skip S1.5 answer another question, so that their response counts in the group's number of responses.
        items: i < answering ? [{ strand: 'S1', question: 'S1_5', value: 1 + ((i + g) % 5) }] : [{ strand: 'S1', question: 'S1_3', value: other, rank: 1 }],
      }));
    });
  }

  it('is not pinned by an auditor who knows that nobody answers without a response, the numbers of responses staying published', async () => {
    const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: LOW_THRESHOLDS });
    const open = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: NO_THRESHOLDS });
    const { publication, lattice, truth } = await campaignOfResponses(rectangle, (other) => rectangle(other).slice(0, 3), service, open);
    expect(publication.contradictions).toEqual([]);
    // The setting as described: AT's heads hidden for S1.5, the four groups' numbers of responses published.
    expect(publication.hidden.get('question:S1_5')?.has('country=AT&role=head')).toBe(true);
    for (const cell of ['country=AT&role=head', 'country=AT&role=intl_coordinator', 'country=DE&role=head', 'country=DE&role=intl_coordinator']) {
      expect(publication.hidden.get('responses')?.has(cell) ?? false).toBe(false);
    }
    const result = audit(publication, truth, lattice, { quantities: (figure, quantity) => isSize(publication, figure, quantity), respondentsWithinResponses: true });
    expect(result.unsound).toEqual([]);
    expect(result.breaches).toEqual([]);
  });
});

describe("a number question's \"don't know\" (S4.5's separate box)", () => {
  /**
   * Countries of 3, 2, 4 and 5 institutions, one response each (S4 counts
   * once per institution), all answering S4.5 (thresholds 2 institutions / 3
   * respondents): DE is too small and AT, the next smallest, is hidden as its
   * complement. AT's "don't know" is 0, so an outsider who knows the zeros
   * reads DE's 1 as the overall 4 minus FR's 1 and PL's 2: FR's is withheld,
   * with its respondents (valid answers + "don't know").
   */
  function countries(campaign: Types.ObjectId): RawResponse[] {
    return (
      [
        ['AT', 3, 0],
        ['DE', 2, 1],
        ['FR', 4, 1],
        ['PL', 5, 2],
      ] as const
    ).flatMap(([country, institutions, dontKnow], g) =>
      Array.from({ length: institutions }, (_, i): RawResponse => ({
        _id: new Types.ObjectId(),
        campaign,
        institution: new Types.ObjectId(),
        submittedAt: new Date(Date.UTC(2026, 1, 1, 0, g * 10 + i)),
        profile: { country },
        items: [i < dontKnow ? { strand: 'S4', question: 'S4_5_dk', value: 'dk' } : { strand: 'S4', question: 'S4_5', value: 10 + i }],
      })),
    );
  }

  it('is withheld with its respondents where a published one would give a hidden one back, so an auditor who knows the zeros pins none', async () => {
    const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: LOW_THRESHOLDS });
    const open = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: NO_THRESHOLDS });
    const { publication, lattice, truth } = await campaignOfResponses(countries, (other) => countries(other).slice(0, 3), service, open);
    expect(publication.contradictions).toEqual([]);
    const result = audit(publication, truth, lattice, { withinCells: true, knownZeros: isDontKnow }, (_, quantity, value) => value !== 0 && isDontKnow(quantity));
    expect(result.unsound).toEqual([]);
    expect(result.breaches).toEqual([]);
    const france = publication.published.get('question:S4_5')!.get('country=FR')!;
    expect([france.get('dk'), france.get('respondents'), france.get('validN')]).toEqual([NaN, NaN, 3]);
  });
});

/**
 * The rule for answer counts against an outsider with a linear-programming
 * solver (SolveOptions.linearProgramming) instead of interval propagation:
 * each hidden answer count that is not 0 minimised and maximised over every
 * relation of its question at once (lines, relations inside a cell,
 * non-negativity, empty cells as 0), knowing only what views publish now
 * (`unlisted`). On these seeds' first campaigns the solver pinned 35, 44
 * and 51 hidden counts while the mechanism audited answer counts by
 * propagation only; it pins none with questions of up to 6,000 open
 * quantities solved too (DISCLOSURE_SOLVE_UNKNOWNS, Thresholds.solveUnknowns;
 * the platform's default since 7 December 2026). Minutes a seed: seed 1
 * (2.6 minutes alone) runs with every test run, the other two when asked:
 *
 *   AUDIT_LINEAR_PROGRAMMING=1 npx vitest run tests/evidence/disclosure-auditor.test.ts -t 'linear-programming solver'
 *
 * AUDIT_LP_SEEDS=2,3 runs the seeds given instead (2, 3 and 6–10 pass;
 * 7 and 9 pinned counts through groups that answered only "don't know"
 * until the audit took their lack of valid answers as known).
 */
function linearProgrammingSeeds(): number[] {
  const asked = process.env.AUDIT_LP_SEEDS;
  if (asked) {
    const seeds = asked.split(',').map(Number);
    if (seeds.some((seed) => !Number.isInteger(seed))) throw new Error(`AUDIT_LP_SEEDS is a comma-separated list of whole numbers, not ${asked}`);
    return seeds;
  }
  return process.env.AUDIT_LINEAR_PROGRAMMING ? [1, 543961326, -1578804761] : [1];
}

describe('the auditor with a linear-programming solver over answer counts', () => {
  it.each(linearProgrammingSeeds())('pins no hidden answer count that is not 0 (seed %i)', async (seed) => {
    const highs = await (highsPackage as unknown as { default: () => Promise<Highs> }).default();
    // As the platform sets it by default (DISCLOSURE_SOLVE_UNKNOWNS, 6,000).
    const s = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: { ...LOW_THRESHOLDS, solveUnknowns: 6_000 } });
    const o = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: NO_THRESHOLDS });
    const [seeds, otherSeeds] = fc.sample(fc.tuple(fc.array(responseArbitrary, { minLength: 10, maxLength: 30 }), fc.array(responseArbitrary, { minLength: 3, maxLength: 10 })), { seed, numRuns: 1 })[0]!;
    const { publication, lattice, truth } = await campaignOf(seeds, otherSeeds, s, o);
    const isCount = (quantity: string) => quantity.startsWith('count ') && !isDontKnowCount(quantity);
    const rule = (_: string, quantity: string, value: number) => value !== 0 && isCount(quantity);
    const targets = (figure: string, cell: CellId, quantity: string) => isCount(quantity) && (truth.get(figure)?.get(cell)?.get(quantity)?.lo ?? 0) > 0;
    const result = audit(publication, truth, lattice, { withinCells: true, unlisted: true, linearProgramming: { highs, targets } }, rule);
    expect(result.checked).toBeGreaterThan(0);
    expect(result.unsound).toEqual([]);
    expect(result.breaches.slice(0, 10), `${result.breaches.length} pinned`).toEqual([]);
  }, 1_800_000);
});
