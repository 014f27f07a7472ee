import { decideFromCounts } from '../../server/evidence/evidence-decision.ts';
import type { Dimension } from '../../server/evidence/evidence-filter.ts';
import type { EvidenceRecord } from '../../server/evidence/evidence-record.ts';
import { EvidenceStore } from '../../server/evidence/evidence-store.ts';
import { answerSides, buildTablesFrom, disclosureUnits } from '../../server/evidence/indicator.service.ts';
import { viewTables } from '../../server/evidence/evidence-tally.ts';
import { ACCREDITED_STATUSES, defineIndicators } from '../../server/evidence/indicators.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import type { Thresholds } from '../../server/evidence/disclosure.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../../server/surveys/questionnaire-registry.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from '../../scripts/synthetic-responses.ts';
import { Publication } from './auditor.ts';
import { dimensionCombinations } from './evidence-data.ts';

/**
 * A campaign made as seed:demo makes its waves (four contacts an
 * institution, about three in four answering), decided in memory and
 * published as every view a reviewer can ask for: for the audits that need
 * realistic groups rather than random sparse ones.
 */
const registry = new QuestionnaireRegistry();
const catalogue = buildCatalogue(loadSurveyLibrary());
const set = defineIndicators(catalogue);
const units = disclosureUnits(catalogue, set);
const sidesOf = (question: string, keys: readonly string[]) => answerSides(catalogue, set, question, keys);
const CAMPAIGN = 'wave';

export function records(institutions: number): EvidenceRecord[] {
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

/** A store holding a wave's records, its institution cap at `thresholds`. */
function storeOf(all: EvidenceRecord[], thresholds: Thresholds): EvidenceStore {
  const store = new EvidenceStore({ catalogue, ratios: set.ratios, indicatorsOf: set.indicatorsOf, institutionCap: thresholds.minInstitutions, accredited: ACCREDITED_STATUSES }, viewTables());
  for (const record of all) store.apply(record);
  return store;
}

/** The overall view of a wave's records, decided at `thresholds` with the suppression of single answer counts, as the pages show it. */
export function overallTables(all: EvidenceRecord[], thresholds: Thresholds) {
  const store = storeOf(all, thresholds);
  const decision = decideFromCounts(store.scope([CAMPAIGN]), units, thresholds, { answerCounts: true, sidesOf });
  return buildTablesFrom(catalogue, set, decision, { campaigns: [CAMPAIGN], where: {}, breakdown: [] }, thresholds);
}

/** A wave's records in a store, decided from scratch with the suppression of single answer counts (then `firstDecided` is called), then again after each of `more` (the path of a page after a response). */
export function decideAfter(all: EvidenceRecord[], more: EvidenceRecord[], thresholds: Thresholds, firstDecided?: () => void): void {
  const store = storeOf(all, thresholds);
  decideFromCounts(store.scope([CAMPAIGN]), units, thresholds, { answerCounts: true, sidesOf });
  firstDecided?.();
  for (const record of more) {
    store.apply(record);
    decideFromCounts(store.scope([CAMPAIGN]), units, thresholds, { answerCounts: true, sidesOf });
  }
}

/** Every view a reviewer can ask for: overall, every breakdown and cross-tab, every filter value with the other dimensions' breakdowns. */
export function publish(all: EvidenceRecord[], thresholds: Thresholds, answerCounts: boolean): Publication {
  const store = storeOf(all, thresholds);
  const decision = decideFromCounts(store.scope([CAMPAIGN]), units, thresholds, { answerCounts, sidesOf });
  const valuesOf = (d: Dimension) => [...new Set(all.map((r) => (r.profile as Partial<Record<Dimension, string>>)[d]).filter((v): v is string => Boolean(v)))];
  const publication = new Publication();
  for (const dims of dimensionCombinations(3)) {
    if (dims.length <= 2) publication.addTables(buildTablesFrom(catalogue, set, decision, { campaigns: [CAMPAIGN], where: {}, breakdown: dims }, thresholds));
    for (const d of dims) {
      for (const value of valuesOf(d)) publication.addTables(buildTablesFrom(catalogue, set, decision, { campaigns: [CAMPAIGN], where: { [d]: [value] }, breakdown: dims.filter((x) => x !== d) }, thresholds));
    }
  }
  return publication;
}

