import fc from 'fast-check';
import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_VIEW_DIMENSIONS } from '../../server/evidence/disclosure.ts';
import type { Dimension, EvidenceFilter } from '../../server/evidence/evidence-filter.ts';
import type { Distribution } from '../../server/evidence/indicators.ts';
import { EvidenceService, type EvidenceTables } from '../../server/evidence/indicator.service.ts';
import { DONT_KNOW } from '../../server/evidence/question-catalogue.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { catalogue, dimensionCombinations, insertResponses, LOW_THRESHOLDS, NO_THRESHOLDS, responseArbitrary, toResponses, type ResponseSeed } from './evidence-data.ts';

/**
 * The auditor's other tests solve each figure on its own. An indicator pooled
 * over several questions (the QCI over S2.1–S2.7, the LSI over S3.1–S3.3, the
 * impact index over S4.12, the IMI over S4.1, S4.2, S4.7 and S4.8–S4.10) ties
 * those questions' figures together: its value × n is a weighted sum of every
 * member's counts in the cell. Where each member's own published cell already
 * gives its part of that sum, the pooled figure is a combination of published
 * numbers and tells an outsider nothing the question tables do not; where a
 * member's part does not follow from its own cell (some of its counts
 * withheld, and the pooled value shown all the same), the pooled figure gives
 * that part, or the sum of such parts, back. This test plays the outsider
 * with the brief's formulas, not the project's: for every view of random
 * campaigns, every published pooled value must leave no member's part open.
 */

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform.close();
});


/** S4.7's answers as steps of maturity, in the order the brief lists them (none; ad hoc; budgeted; shared regional pool). */
const SUBSTITUTES: Record<string, number> = { none: 1, ad_hoc: 2, budgeted: 3, regional_pool: 4 };

interface Pooled {
  code: string;
  members: string[];
  /** A valid answer's weight in the indicator's total (hits, or a sum of points). */
  weight: (question: string, value: string | number | boolean) => number;
  /** The total behind a published value and its n. */
  total: (value: number, n: number) => number;
}

/** The questions the survey definitions say feed `indicator`, of the given kinds. */
const feeding = (indicator: string, kinds: string[]) => catalogue.questions.filter((q) => q.indicator === indicator && kinds.includes(q.kind)).map((q) => q.name);
const agree = (question: string, value: string | number | boolean) => (Number(value) >= 4 ? 1 : 0);
const points = (question: string, value: string | number | boolean) => (question === 'S4_7' ? SUBSTITUTES[String(value)]! : Number(value));

/** The brief's pooled indicators: % agree (4–5) across several AGR5 items, the QCI's mean, and the IMI's mean rescaled from 1–4 to 1–5. */
const POOLED: Pooled[] = [
  { code: 'qci:agree', members: feeding('qci', ['scale']), weight: agree, total: (v, n) => (v * n) / 100 },
  { code: 'qci', members: feeding('qci', ['scale']), weight: points, total: (v, n) => v * n },
  { code: 'lsi:agree', members: feeding('lsi', ['scale']), weight: agree, total: (v, n) => (v * n) / 100 },
  { code: 'impact_index:agree', members: feeding('impact_index', ['scale']), weight: agree, total: (v, n) => (v * n) / 100 },
  { code: 'imi', members: feeding('imi', ['scale', 'choice']), weight: points, total: (v, n) => n * (1 + ((v - 1) * 3) / 4) },
];

/** Rank of a few short rows, by elimination. */
function rank(rows: readonly number[][]): number {
  const m = rows.map((r) => [...r]);
  let r = 0;
  for (let col = 0; col < (m[0]?.length ?? 0) && r < m.length; col++) {
    const pivot = m.slice(r).findIndex((row) => Math.abs(row[col]!) > 1e-9);
    if (pivot < 0) continue;
    [m[r], m[r + pivot]] = [m[r + pivot]!, m[r]!];
    for (let i = 0; i < m.length; i++) {
      if (i === r) continue;
      const f = m[i]![col]! / m[r]![col]!;
      for (let j = col; j < m[i]!.length; j++) m[i]![j]! -= f * m[r]![j]!;
    }
    r += 1;
  }
  return r;
}

/**
 * Whether a member's part (Σ weight × count over its valid answers) follows
 * from its published cell alone: from its valid answers, the counts it shows,
 * its top-two share (the top two points of a scale) and its mean.
 */
function partFollows(question: string, kind: string, d: Distribution, weight: Pooled['weight']): boolean {
  const valid = d.counts.filter((c) => c.value !== DONT_KNOW);
  const known: number[][] = [valid.map(() => 1)];
  valid.forEach((c, i) => c.n !== null && known.push(valid.map((_, j) => (j === i ? 1 : 0))));
  if (kind === 'scale') {
    const top = Math.max(...valid.map((c) => Number(c.value))) - 1;
    if (d.topShare !== null) known.push(valid.map((c) => (Number(c.value) >= top ? 1 : 0)));
    if (d.mean !== null) known.push(valid.map((c) => Number(c.value)));
  }
  const target = valid.map((c) => weight(question, c.value));
  return rank(known) === rank([...known, target]);
}

/** Every view a reviewer can ask for: overall, every breakdown and cross-tab, every filter value with the other dimensions' breakdowns. */
function views(campaign: string, valuesOf: (d: Dimension) => string[]): EvidenceFilter[] {
  const out: EvidenceFilter[] = [];
  for (const dims of dimensionCombinations(MAX_VIEW_DIMENSIONS)) {
    if (dims.length <= 2) out.push({ campaigns: [campaign], where: {}, breakdown: dims });
    for (const d of dims) for (const value of valuesOf(d)) out.push({ campaigns: [campaign], where: { [d]: [value] }, breakdown: dims.filter((x) => x !== d) });
  }
  return out;
}

interface Findings {
  /** Published pooled values looked at. */
  published: number;
  /** Shown cells whose pooled value is withheld (a member's withheld counts weigh differently in it). */
  withheld: number;
  /** Pooled totals checked against their members' true counts. */
  checkedAgainstTruth: number;
  /** A published pooled value that leaves a member's part open (or shows where a member is hidden). */
  open: string[];
  /** The brief's formula disagreeing with the published value: the test would be wrong. */
  mismatches: string[];
}

const cellsOf = <T,>(row: { overall: T; groups: Record<string, T> }) => [['', row.overall] as const, ...Object.entries(row.groups)];

function auditView(tables: EvidenceTables, truth: EvidenceTables, where: string, findings: Findings): void {
  const kinds = new Map(tables.questions.map((q) => [q.name, q.kind]));
  for (const pooled of POOLED) {
    const row = tables.indicators.find((r) => r.code === pooled.code);
    const truthRow = truth.indicators.find((r) => r.code === pooled.code);
    if (!row || !truthRow || pooled.members.length < 2) continue;
    const members = pooled.members.map((name) => ({ name, row: tables.questions.find((q) => q.name === name)!, truth: truth.questions.find((q) => q.name === name)! }));
    for (const [key, cell] of cellsOf(row)) {
      const at = `${pooled.code} at ${where}${key ? ` [${key}]` : ''}`;
      const truthCell = key === '' ? truthRow.overall : truthRow.groups[key];
      if (truthCell && !truthCell.suppressed && truthCell.value !== null) {
        let sum = 0;
        for (const m of members) {
          const d = key === '' ? m.truth.overall : m.truth.groups[key];
          if (!d || d.suppressed) continue;
          for (const c of d.counts) if (c.value !== DONT_KNOW) sum += pooled.weight(m.name, c.value) * (c.n ?? 0);
        }
        findings.checkedAgainstTruth += 1;
        if (Math.abs(sum - pooled.total(truthCell.value, truthCell.n)) > 1e-6) findings.mismatches.push(`${at}: members give ${sum}, the value ${pooled.total(truthCell.value, truthCell.n)}`);
      }
      if (!cell.suppressed && cell.value === null) findings.withheld += 1;
      if (cell.suppressed || cell.value === null) continue;
      findings.published += 1;
      for (const m of members) {
        const d = key === '' ? m.row.overall : m.row.groups[key];
        if (!d || d.suppressed) {
          // A member hidden where its indicator is shown: that member's part is the rest of the total.
          if (d) findings.open.push(`${at}: ${m.name} hidden`);
          continue;
        }
        if (!partFollows(m.name, kinds.get(m.name)!, d, pooled.weight)) findings.open.push(`${at}: ${m.name}'s part does not follow from its own cell`);
      }
    }
  }
}

async function auditCampaign(seeds: ResponseSeed[], service: EvidenceService, open: EvidenceService, findings: Findings): Promise<void> {
  await platform.models.Response.deleteMany({});
  service.invalidate();
  open.invalidate();
  const campaign = new Types.ObjectId();
  const responses = toResponses(seeds, campaign);
  await insertResponses(platform, responses);
  const valuesOf = (d: Dimension) => [...new Set(responses.map((r) => r.profile[d]).filter((v): v is string => Boolean(v)))];
  for (const filter of views(String(campaign), valuesOf)) {
    const where = [...Object.entries(filter.where).map(([d, v]) => `${d}=${v![0]}`), filter.breakdown.length ? `by ${filter.breakdown.join('×')}` : 'overall'].join(' ');
    auditView(await service.tables(filter), await open.tables(filter), where, findings);
  }
}

describe('indicators pooled over several questions', () => {
  const service = () => new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: LOW_THRESHOLDS });
  const open = () => new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: NO_THRESHOLDS });

  it('are shown only where each question they pool gives its part from its own cell, so an outsider who adds them up learns nothing new', async () => {
    expect(POOLED.map((p) => p.members.length)).toEqual([7, 7, 3, 4, 6]);
    const findings: Findings = { published: 0, withheld: 0, checkedAgainstTruth: 0, open: [], mismatches: [] };
    const [s, o] = [service(), open()];
    // Campaigns of 150 and 300: in smaller random ones every shown pooled value is withheld, as some member's counts are.
    for (const [seed, size] of [[7, 150], [8, 300]] as const) {
      const [seeds] = fc.sample(fc.array(responseArbitrary, { minLength: size, maxLength: size }), { seed, numRuns: 1 });
      await auditCampaign(seeds!, s, o, findings);
    }
    expect(findings.mismatches).toEqual([]);
    expect(findings.open.slice(0, 10)).toEqual([]);
    expect(findings.checkedAgainstTruth).toBeGreaterThan(1000);
    expect(findings.published).toBeGreaterThan(100);
    // Members' counts are withheld in shown cells (where the pooled value, shown, would give them back).
    expect(findings.withheld).toBeGreaterThan(100);
  });
});
