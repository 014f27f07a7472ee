import { accreditationKey, type GroupTally, type Population, type RatioSpec } from './evidence-tally.ts';
import { DONT_KNOW, type QuestionCatalogue, type QuestionMeta } from './question-catalogue.ts';

/**
 * The aggregate indicators of the design brief, each derived in TypeScript
 * from the grouped counts of one group (see evidence-tally.ts). Which questions
 * feed which indicator comes from the definitions' `indicator` property, so a
 * barrier or a competence added to surveys/ appears here without code.
 */

export type Unit = 'percent' | 'mean' | 'points' | 'eur' | 'number';

export interface IndicatorValue {
  value: number | null;
  /** Valid answers (or responses, for pooled ratios) behind the value. */
  n: number;
}

export interface IndicatorDef {
  /** Unique row code, e.g. "barrier_index:S1_2c". */
  code: string;
  /** The indicator code of indicators.json this row belongs to. */
  family: string;
  label: string;
  unit: Unit;
  /** Shown against a target (the 12% learner mobility target). */
  target?: number;
  /** Means shown in the Scoreboard's colour bands. */
  banded?: boolean;
  /** Population key: who answered validly; decides disclosure. */
  population: string;
  /** Questions whose valid answers count in the population (none for ratios, which count themselves). */
  questions: string[];
  compute(tally: GroupTally): IndicatorValue;
  /** The populations the cell is protected by (two for the accreditation gap). */
  populations?: (tally: GroupTally) => Population[];
}

export interface IndicatorSet {
  indicators: IndicatorDef[];
  ratios: RatioSpec[];
  /** Question → population keys of the indicators its valid answers count in. */
  indicatorsOf: Map<string, string[]>;
}

/** Erasmus+ statuses (P8) of institutions holding an Erasmus+ accreditation in VET. */
export const ACCREDITED_STATUSES = new Set(['accredited', 'consortium_coordinator']);

/**
 * S4.7 (arrangements for substitutes) read as a maturity level 1–4 so it can sit
 * in the IMI beside the MAT4 items: none = not in place, ad hoc = planned/partial
 * first step, budgeted = partly implemented, shared regional pool = fully implemented.
 */
export const SUBSTITUTE_MATURITY: Readonly<Record<string, number>> = { none: 1, ad_hoc: 2, budgeted: 3, regional_pool: 4 };

export type Band = 'excellent' | 'very good' | 'good' | 'some progress' | 'little progress';

/** The Scoreboard's colour bands for a mean on 1–5: > 4.5, (3.5, 4.5], (2.5, 3.5], (1.5, 2.5], ≤ 1.5. */
export function bandOf(mean: number): Band {
  if (mean > 4.5) return 'excellent';
  if (mean > 3.5) return 'very good';
  if (mean > 2.5) return 'good';
  if (mean > 1.5) return 'some progress';
  return 'little progress';
}

const percent = (part: number, whole: number) => (whole > 0 ? (100 * part) / whole : null);

/** Items of the questions with a numeric value, and how many of them satisfy the test. */
function numericShare(tally: GroupTally, questions: readonly string[], test: (value: number) => boolean): IndicatorValue {
  let hits = 0;
  let n = 0;
  for (const name of questions) {
    const q = tally.questions.get(name);
    if (!q) continue;
    n += q.numericN;
    for (const item of q.items.values()) if (typeof item.value === 'number' && test(item.value)) hits += item.n;
  }
  return { value: percent(hits, n), n };
}

function numericMean(tally: GroupTally, questions: readonly string[]): IndicatorValue {
  let sum = 0;
  let n = 0;
  for (const name of questions) {
    const q = tally.questions.get(name);
    if (!q) continue;
    n += q.numericN;
    sum += q.sum;
  }
  return { value: n > 0 ? sum / n : null, n };
}

function yesShare(tally: GroupTally, question: string): IndicatorValue {
  let yes = 0;
  let n = 0;
  for (const item of tally.questions.get(question)?.items.values() ?? []) {
    if (item.value === true || item.value === 'yes') yes += item.n;
    if (item.value === true || item.value === false || item.value === 'yes' || item.value === 'no') n += item.n;
  }
  return { value: percent(yes, n), n };
}

function ratio(tally: GroupTally, key: string, scale: number): IndicatorValue {
  const r = tally.ratios.get(key);
  if (!r || r.denominator === 0) return { value: null, n: r?.n ?? 0 };
  return { value: (scale * r.numerator) / r.denominator, n: r.n };
}

const names = (questions: QuestionMeta[]) => questions.map((q) => q.name);

/** Builds every indicator row from the question catalogue. */
export function defineIndicators(catalogue: QuestionCatalogue): IndicatorSet {
  const feeding = (indicator: string) => catalogue.questions.filter((q) => q.indicator === indicator);
  const label = (indicator: string) => catalogue.indicatorLabels.get(indicator)?.default ?? indicator;
  const indicators: IndicatorDef[] = [];
  const ratios: RatioSpec[] = [];

  const share = (family: string, code: string, rowLabel: string, questions: string[], test: (v: number) => boolean) =>
    indicators.push({ code, family, label: rowLabel, unit: 'percent', population: `ind:${code}`, questions, compute: (t) => numericShare(t, questions, test) });
  const agree = (family: string, questions: QuestionMeta[], rowLabel = `${label(family)}: % agree (4–5)`) =>
    share(family, `${family}:agree`, rowLabel, names(questions), (v) => v >= 4);
  const pooled = (family: string, spec: Omit<RatioSpec, 'code'>, unit: Unit, scale: number, extra: Partial<IndicatorDef> = {}, rowLabel = label(family)) => {
    const code = extra.code ?? family;
    ratios.push({ code, ...spec });
    indicators.push({ code, family, label: rowLabel, unit, population: code, questions: [], compute: (t) => ratio(t, code, scale), ...extra });
  };

  for (const q of feeding('participation_rate')) {
    indicators.push({ code: `participation_rate:${q.name}`, family: 'participation_rate', label: `${label('participation_rate')} (% yes)`, unit: 'percent', population: `ind:participation_rate:${q.name}`, questions: [q.name], compute: (t) => yesShare(t, q.name) });
  }
  for (const q of feeding('barrier_index')) {
    share('barrier_index', `barrier_index:${q.name}`, q.title.default, [q.name], (v) => v >= 3);
  }
  for (const q of feeding('top3_ranking')) {
    for (const choice of q.choices) {
      const barrier = catalogue.byName.get(String(choice.value));
      indicators.push({
        code: `top3_ranking:${choice.value}`,
        family: 'top3_ranking',
        label: barrier?.title.default ?? choice.label.default,
        unit: 'percent',
        population: q.name,
        questions: [],
        compute: (t) => {
          const respondents = t.populations.get(q.name)?.respondents ?? 0;
          let named = 0;
          for (const item of t.questions.get(q.name)?.items.values() ?? []) if (item.value === choice.value) named += item.n;
          return { value: percent(named, respondents), n: respondents };
        },
      });
    }
  }
  const unmet = feeding('unmet_demand').filter((q) => q.kind === 'scale');
  if (unmet.length > 0) agree('unmet_demand', unmet);

  const qci = feeding('qci').filter((q) => q.kind === 'scale');
  if (qci.length > 0) {
    agree('qci', qci);
    indicators.push({ code: 'qci', family: 'qci', label: `${label('qci')}: mean (1–5)`, unit: 'mean', banded: true, population: 'ind:qci', questions: names(qci), compute: (t) => numericMean(t, names(qci)) });
  }
  const europeanisation = feeding('europeanisation').filter((q) => q.kind === 'scale');
  if (europeanisation.length > 0) agree('europeanisation', europeanisation);

  const [outgoing, cohort] = names(feeding('learner_mobility_rate'));
  if (outgoing && cohort) {
    pooled('learner_mobility_rate', { numerator: [outgoing], denominator: cohort }, 'percent', 100, { target: 12 }, `${label('learner_mobility_rate')} (% of the cohort; EU target 12%)`);
    for (const family of ['long_term_rate', 'recognition_rate', 'europass_rate', 'inclusion_rate', 'reciprocity']) {
      const parts = names(feeding(family));
      if (parts.length === 0) continue;
      const rowLabel = family === 'reciprocity' ? `${label(family)} (incoming per 100 outgoing learners)` : `${label(family)} (% of outgoing learners)`;
      pooled(family, { numerator: parts, denominator: outgoing }, 'percent', 100, {}, rowLabel);
    }
  }

  const lsi = feeding('lsi').filter((q) => q.kind === 'scale');
  if (lsi.length > 0) agree('lsi', lsi, `${label('lsi')}: % agree (4–5)`);
  for (const q of feeding('competence_gap').filter((c) => c.kind === 'scale')) {
    share('competence_gap', `competence_gap:${q.name}`, `${q.title.default} (% rating 1–2)`, [q.name], (v) => v <= 2);
  }
  for (const q of feeding('capacity').filter((c) => c.kind === 'yesno')) {
    indicators.push({ code: `capacity:${q.name}`, family: 'capacity', label: `${label('capacity')} (% yes)`, unit: 'percent', population: `ind:capacity:${q.name}`, questions: [q.name], compute: (t) => yesShare(t, q.name) });
  }

  const imi = feeding('imi');
  const imiScales = names(imi.filter((q) => q.kind === 'scale'));
  const imiChoices = names(imi.filter((q) => q.kind === 'choice'));
  if (imi.length > 0) {
    indicators.push({
      code: 'imi',
      family: 'imi',
      label: `${label('imi')}: mean rescaled to 1–5`,
      unit: 'mean',
      banded: true,
      population: 'ind:imi',
      questions: names(imi),
      compute: (t) => {
        const scales = numericMean(t, imiScales);
        let sum = scales.value === null ? 0 : scales.value * scales.n;
        let n = scales.n;
        for (const name of imiChoices) {
          for (const item of t.questions.get(name)?.items.values() ?? []) {
            const level = SUBSTITUTE_MATURITY[String(item.value)];
            if (level === undefined) continue;
            sum += level * item.n;
            n += item.n;
          }
        }
        // MAT4 runs 1–4: 1 + (mean − 1) × 4/3 puts it on the Scoreboard's 1–5 bands.
        return { value: n > 0 ? 1 + ((sum / n - 1) * 4) / 3 : null, n };
      },
    });
  }

  const staff = names(feeding('staff_mobility_rate'));
  const [headcount, ...staffRest] = staff;
  if (headcount) {
    const outgoingStaff = staffRest.slice(0, 3);
    pooled('staff_mobility_rate', { numerator: outgoingStaff, denominator: headcount, byAccreditation: true }, 'percent', 100, {}, `${label('staff_mobility_rate')} (outgoing staff per 100 staff)`);
    const accredited = accreditationKey('staff_mobility_rate', true);
    const other = accreditationKey('staff_mobility_rate', false);
    indicators.push({
      code: 'accreditation_gap',
      family: 'accreditation_gap',
      label: `${label('accreditation_gap')} (staff mobility rate, accredited minus not accredited, points)`,
      unit: 'points',
      population: accredited,
      questions: [],
      compute: (t) => {
        const a = ratio(t, accredited, 100);
        const b = ratio(t, other, 100);
        return { value: a.value === null || b.value === null ? null : a.value - b.value, n: a.n + b.n };
      },
      populations: (t) => [t.populations.get(accredited), t.populations.get(other)].map((p) => p ?? { respondents: 0, institutions: new Set() }),
    });
    const [fte] = names(feeding('capacity_ratios'));
    if (fte) pooled('capacity_ratios', { numerator: [fte], denominator: headcount }, 'number', 100, { code: 'capacity_ratios:fte' }, 'Coordinator FTE per 100 staff');
    const [budget, , , ownFunds] = names(feeding('funding_mix'));
    if (budget) pooled('capacity_ratios', { numerator: [budget], denominator: headcount }, 'eur', 1, { code: 'capacity_ratios:budget' }, 'Mobility budget per staff member (EUR)');
    if (budget && ownFunds) {
      pooled('capacity_ratios', { numerator: [budget], denominator: budget, numeratorShareOf: ownFunds }, 'percent', 100, { code: 'capacity_ratios:own_funds' }, 'Share of own funds in the mobility budget (%)');
    }
    const [experience] = names(feeding('experience_share').filter((q) => q.kind === 'number'));
    if (experience) {
      pooled('experience_share', { numerator: [headcount], denominator: headcount, numeratorShareOf: experience }, 'percent', 100, {}, `${label('experience_share')} (%, weighted by headcount)`);
    }
  }
  const impact = feeding('impact_index').filter((q) => q.kind === 'scale');
  if (impact.length > 0) agree('impact_index', impact);

  const indicatorsOf = new Map<string, string[]>();
  for (const indicator of indicators) {
    for (const question of indicator.questions) {
      indicatorsOf.set(question, [...(indicatorsOf.get(question) ?? []), indicator.population]);
    }
  }
  return { indicators, ratios, indicatorsOf };
}

/** The questions each indicator row is computed from: its own list, its ratio's parts, or its ranking question. */
export function indicatorSources(set: IndicatorSet, catalogue: QuestionCatalogue): Map<string, string[]> {
  const ratioParts = new Map(set.ratios.map((r) => [r.code, [...r.numerator, r.denominator, ...(r.numeratorShareOf ? [r.numeratorShareOf] : [])]]));
  return new Map(
    set.indicators.map((def) => {
      if (def.questions.length > 0) return [def.code, def.questions];
      // Ratio populations are the ratio's code, or code@accredited / code@other for the accreditation gap.
      const parts = ratioParts.get(def.population.split('@')[0]!);
      if (parts) return [def.code, parts];
      return [def.code, catalogue.byName.has(def.population) ? [def.population] : []];
    }),
  );
}

/** Every question's answers in one group: valid answers, "don't know" apart, counts per choice. */
export interface Distribution {
  /** Respondents who answered the question ("don't know" included): the question's n; null where its "don't know" count is suppressed (count-suppression.ts). */
  respondents: number | null;
  /** Valid answers ("don't know" excluded); for multiple choice, ranking and matrix questions, picks (several per respondent). */
  validN: number;
  /** "Don't know" answers; null where suppressed, with the respondents. */
  dk: number | null;
  /** Share choosing the top two points of a scale (agree, major barrier, implemented…), or % yes. */
  topShare: number | null;
  mean: number | null;
  sum: number | null;
  /** n and share are null where that count is suppressed (count-suppression.ts). */
  counts: Array<{ value: string | number | boolean; row?: string; rank?: number; n: number | null; share: number | null }>;
  /** Some counts are suppressed: so are the top-two share and the mean, which would give them back. */
  withheld?: true;
}

/**
 * Shares of a single answer are of valid answers; of a multiple choice or a
 * ranking of respondents (each may pick several); of a matrix of those who
 * answered that row (row shares).
 */
export function shareBase(kind: QuestionMeta['kind'], d: Pick<Distribution, 'respondents' | 'validN'>): number {
  return kind === 'multi' || kind === 'ranking' || kind === 'matrix' ? (d.respondents ?? 0) : d.validN;
}

/** Whether a question's answers are picks (several per respondent) rather than one answer each. */
export const isPicks = (kind: QuestionMeta['kind']) => kind === 'multi' || kind === 'ranking' || kind === 'matrix';

/** Every answer category of a question: each choice (per row of a matrix, per rank of a ranking), "don't know" last when offered. */
function categories(question: QuestionMeta): Array<{ value: string | number | boolean; row?: string; rank?: number }> {
  const values: Array<string | number | boolean> = question.kind === 'yesno' ? [true, false] : question.choices.map((c) => c.value);
  if (question.kind === 'number' || question.kind === 'text') return [];
  if (question.kind === 'matrix') return question.rows.flatMap((r) => values.map((value) => ({ value, row: String(r.value) })));
  if (question.kind === 'ranking') {
    const ranks = Math.min(3, values.length);
    return values.flatMap((value) => Array.from({ length: ranks }, (_, i) => ({ value, rank: i + 1 })));
  }
  return values.map((value) => ({ value }));
}

export function distributionOf(question: QuestionMeta, tally: GroupTally): Distribution {
  const q = tally.questions.get(question.name);
  const respondents = tally.populations.get(question.name)?.respondents ?? 0;
  const items = [...(q?.items.values() ?? [])];
  const dk = q?.dk ?? 0;
  const validItems = items.filter((i) => i.value !== DONT_KNOW);
  const validN = question.kind === 'number' ? (q?.numericN ?? 0) : validItems.reduce((t, i) => t + i.n, 0);
  let topShare: number | null = null;
  let mean: number | null = null;
  let sum: number | null = null;
  if (question.kind === 'scale' && question.scaleMax) {
    const top = validItems.filter((i) => typeof i.value === 'number' && i.value >= question.scaleMax! - 1).reduce((t, i) => t + i.n, 0);
    topShare = percent(top, q?.numericN ?? 0);
    mean = q && q.numericN > 0 ? q.sum / q.numericN : null;
  } else if (question.kind === 'yesno') {
    topShare = yesShare(tally, question.name).value;
  } else if (question.kind === 'number') {
    sum = q?.sum ?? 0;
    mean = q && q.numericN > 0 ? q.sum / q.numericN : null;
  }
  const base = shareBase(question.kind, { respondents, validN });
  // A matrix row's share is of those who answered that row.
  const rowAnswers = new Map<string, number>();
  if (question.kind === 'matrix') for (const i of validItems) rowAnswers.set(i.row ?? '', (rowAnswers.get(i.row ?? '') ?? 0) + i.n);
  const keyOf = (c: { value: unknown; row?: string; rank?: number }) => `${c.row ?? ''}|${c.rank ?? ''}|${typeof c.value}|${String(c.value)}`;
  const given = new Map(items.map((i) => [keyOf(i), i]));
  // Every category, nobody's choice included (0); then anything given outside them (an older definition's code).
  const known = categories(question);
  const knownKeys = new Set(known.map(keyOf));
  const listed = [...known, ...items.filter((i) => !knownKeys.has(keyOf(i)))];
  const order = new Map(question.choices.map((c, index) => [c.value, index]));
  const rowOrder = new Map(question.rows.map((r, index) => [String(r.value), index]));
  const counts = listed
    .map((c) => {
      const n = given.get(keyOf(c))?.n ?? 0;
      const shareOf = question.kind === 'matrix' ? (rowAnswers.get(c.row ?? '') ?? 0) : base;
      return { value: c.value, ...(c.row !== undefined ? { row: c.row } : {}), ...(c.rank !== undefined ? { rank: c.rank } : {}), n, share: c.value === DONT_KNOW ? null : percent(n, shareOf) };
    })
    .sort(
      (a, b) =>
        (rowOrder.get(a.row ?? '') ?? 0) - (rowOrder.get(b.row ?? '') ?? 0) ||
        (order.get(a.value as string | number) ?? 99) - (order.get(b.value as string | number) ?? 99) ||
        (a.rank ?? 0) - (b.rank ?? 0),
    );
  return { respondents, validN, dk, topShare, mean, sum, counts };
}
