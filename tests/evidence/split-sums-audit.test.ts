import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, type Thresholds } from '../../server/evidence/disclosure.ts';
import { decideFromCounts } from '../../server/evidence/evidence-decision.ts';
import { DIMENSION_NAMES, type Dimension } from '../../server/evidence/evidence-filter.ts';
import type { EvidenceRecord } from '../../server/evidence/evidence-record.ts';
import { EvidenceStore } from '../../server/evidence/evidence-store.ts';
import { answerSides, buildTablesFrom, disclosureUnits, viewTables } from '../../server/evidence/indicator.service.ts';
import { ACCREDITED_STATUSES, defineIndicators } from '../../server/evidence/indicators.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../../server/surveys/questionnaire-registry.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from '../../scripts/synthetic-responses.ts';
import { isDontKnowCount, latticeOf, Publication, solveAll } from './auditor.ts';

/**
 * An outsider who adds up a scale's counts over its top-two split (the top
 * two points and the rest) in every cell, from the published counts and valid
 * answers alone, against a campaign made as seed:demo makes its waves (50
 * institutions here, four contacts each, the real thresholds). When a
 * published cell could hide some of a sum's counts and show the others, such
 * sums pinned 18 hidden counts of eleven scales on this campaign (1,673 on the
 * demo wave of 150 institutions, 1,816 adding up over every split): a line
 * whose other cells' sums are known gives one cell's sum, and a hidden count
 * is that sum minus the shown counts beside it. Now a published cell shows
 * all of a sum's counts or none (count-suppression.ts).
 */

const registry = new QuestionnaireRegistry();
const catalogue = buildCatalogue(loadSurveyLibrary());
const set = defineIndicators(catalogue);
const units = disclosureUnits(catalogue, set);
const sidesOf = (question: string, keys: readonly string[]) => answerSides(catalogue, set, question, keys);
const CAMPAIGN = 'wave';

function records(institutions: number): EvidenceRecord[] {
  const out: EvidenceRecord[] = [];
  for (let i = 0; i < institutions; i++) {
    const profile = syntheticInstitution(randomSource(10_000 + i), i);
    for (let c = 0; c < 4; c++) {
      const random = randomSource(2_000_000 + i * 10 + c);
      if (random.next() > 0.74) continue;
      const result = validatedResponse(registry, syntheticAnswers(random, profile, 2), ['S1', 'S2', 'S3', 'S4']);
      if (!result.ok) continue;
      out.push({ id: `${i}:${c}`, campaign: CAMPAIGN, institution: `inst${i}`, revision: 1, submittedAt: new Date(Date.UTC(2022, 3, 1, 0, out.length)), profile: result.profile, items: result.items });
    }
  }
  return out;
}

/** Every combination of up to three dimensions. */
const combinations = (k: number, from = 0, chosen: Dimension[] = []): Dimension[][] =>
  chosen.length === k ? [chosen] : [chosen, ...DIMENSION_NAMES.slice(from).flatMap((d, i) => combinations(k, from + i + 1, [...chosen, d]))];

/** Every view a reviewer can ask for: overall, every breakdown and cross-tab, every filter value with the other dimensions' breakdowns. */
function publish(all: EvidenceRecord[], thresholds: Thresholds, answerCounts: boolean): Publication {
  const store = new EvidenceStore({ catalogue, ratios: set.ratios, indicatorsOf: set.indicatorsOf, institutionCap: thresholds.minInstitutions, accredited: ACCREDITED_STATUSES }, viewTables());
  for (const record of all) store.apply(record);
  const decision = decideFromCounts(store.scope([CAMPAIGN]), units, thresholds, { answerCounts, sidesOf });
  const valuesOf = (d: Dimension) => [...new Set(all.map((r) => (r.profile as Partial<Record<Dimension, string>>)[d]).filter((v): v is string => Boolean(v)))];
  const publication = new Publication();
  for (const dims of combinations(3)) {
    if (dims.length <= 2) publication.addTables(buildTablesFrom(catalogue, set, decision, { campaigns: [CAMPAIGN], where: {}, breakdown: dims }, thresholds));
    for (const d of dims) {
      for (const value of valuesOf(d)) publication.addTables(buildTablesFrom(catalogue, set, decision, { campaigns: [CAMPAIGN], where: { [d]: [value] }, breakdown: dims.filter((x) => x !== d) }, thresholds));
    }
  }
  return publication;
}

describe('sums over a split of a scale\'s points', () => {
  it('pin no hidden answer count on a campaign made like the demo data, with the real thresholds', () => {
    const all = records(50);
    const publication = publish(all, DEFAULT_THRESHOLDS, true);
    expect(publication.contradictions).toEqual([]);
    const open = publish(all, { minInstitutions: 1, minRespondents: 1 }, false);
    const lattice = latticeOf(open, 3);
    const scales = new Set([...publication.kinds].filter(([, kind]) => kind === 'scale').map(([figure]) => figure));
    const quantities = (figure: string) => scales.has(figure);
    const truth = solveAll(open, lattice, (figure, cell) => open.hidden.get(figure)?.has(cell) ?? false, { sides: 'topTwo', quantities });
    const valueOf = (figure: string, cell: string, quantity: string) => truth.get(figure)?.get(cell)?.get(quantity)?.lo ?? 0;
    const hasAnswers = (figure: string, cell: string) => [...(truth.get(figure)?.get(cell)?.values() ?? [])].some((b) => b.lo !== 0);
    const bounds = solveAll(publication, lattice, (figure, cell) => !hasAnswers(figure, cell), { withinCells: true, sides: 'topTwo', quantities });
    const pinned: string[] = [];
    let hiddenCounts = 0;
    for (const figure of scales) {
      for (const [cell, cellBounds] of bounds.get(figure) ?? []) {
        const shown = publication.published.get(figure)?.get(cell);
        if ((!shown && !publication.hidden.get(figure)?.has(cell)) || !hasAnswers(figure, cell)) continue;
        for (const [quantity, { lo, hi }] of cellBounds) {
          if (!quantity.startsWith('count ') || isDontKnowCount(quantity) || (shown && !Number.isNaN(shown.get(quantity)))) continue;
          const value = valueOf(figure, cell, quantity);
          if (value === 0) continue;
          expect(value, `${figure} ${quantity} at "${cell}"`).toBeGreaterThanOrEqual(lo - 1e-6);
          expect(value, `${figure} ${quantity} at "${cell}"`).toBeLessThanOrEqual(hi + 1e-6);
          hiddenCounts += 1;
          if (hi - lo < 1 - 1e-6) pinned.push(`${figure} ${quantity} at "${cell}" (true ${value}) pinned to [${lo}, ${hi}]`);
        }
      }
    }
    // Counts hidden one sum at a time inside published cells, not only with whole cells.
    const withheldInPublished = [...scales].some((figure) => [...(publication.published.get(figure)?.values() ?? [])].some((q) => [...q.values()].some(Number.isNaN)));
    expect(withheldInPublished).toBe(true);
    expect(hiddenCounts).toBeGreaterThan(0);
    expect(pinned.slice(0, 5)).toEqual([]);
  });
});
