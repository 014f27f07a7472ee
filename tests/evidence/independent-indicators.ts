import type { RawResponse } from './evidence-data.ts';

/**
 * The indicators of the design brief computed the plain way, straight from the
 * raw responses of one group, written apart from the service (no shared code),
 * with the question codes spelled out. The property test compares the two.
 */
export interface Expected {
  value: number | null;
  n: number;
  /** Responses and distinct institutions behind the figure (both sides' smaller, for the gap). */
  respondents: number;
  institutions: number;
}

const BARRIERS = 'abcdefghijkl'.split('').map((l) => `S1_2${l}`);
const COMPETENCES = 'abcdef'.split('').map((l) => `S3_5${l}`);
const QCI = ['S2_1', 'S2_2', 'S2_3', 'S2_4', 'S2_5', 'S2_6', 'S2_7'];
const IMI_MAT4 = ['S4_1', 'S4_2', 'S4_8', 'S4_9', 'S4_10'];
const SUBSTITUTES: Record<string, number> = { none: 1, ad_hoc: 2, budgeted: 3, regional_pool: 4 };

/** Drops the S4 answers of every response but each institution's latest one with S4 answers. */
export function onceS4PerInstitution(responses: RawResponse[]): RawResponse[] {
  const latest = new Map<string, RawResponse>();
  for (const r of responses) {
    if (!r.items.some((i) => i.strand === 'S4')) continue;
    const current = latest.get(String(r.institution));
    if (!current || r.submittedAt > current.submittedAt) latest.set(String(r.institution), r);
  }
  return responses.map((r) => (latest.get(String(r.institution)) === r ? r : { ...r, items: r.items.filter((i) => i.strand !== 'S4') }));
}

function who(responses: RawResponse[]) {
  return { respondents: responses.length, institutions: new Set(responses.map((r) => String(r.institution))).size };
}

function answersOf(r: RawResponse, questions: string[]) {
  return r.items.filter((i) => questions.includes(i.question));
}

function numberOf(r: RawResponse, question: string): number | undefined {
  const item = r.items.find((i) => i.question === question);
  return typeof item?.value === 'number' ? item.value : undefined;
}

/** % of the numeric answers to the questions that pass the test; "dk" left out. */
function shareOf(responses: RawResponse[], questions: string[], test: (v: number) => boolean): Expected {
  let hits = 0;
  let n = 0;
  const contributors: RawResponse[] = [];
  for (const r of responses) {
    const numeric = answersOf(r, questions).filter((i) => typeof i.value === 'number');
    if (numeric.length > 0) contributors.push(r);
    n += numeric.length;
    hits += numeric.filter((i) => test(i.value as number)).length;
  }
  return { value: n ? (100 * hits) / n : null, n, ...who(contributors) };
}

function yesOf(responses: RawResponse[], question: string): Expected {
  const answers = responses.flatMap((r) => answersOf(r, [question]).map((i) => ({ r, yes: i.value === true })));
  return { value: answers.length ? (100 * answers.filter((a) => a.yes).length) / answers.length : null, n: answers.length, ...who(answers.map((a) => a.r)) };
}

/** Σ numerator ÷ Σ denominator over the responses that gave the denominator and a numerator part. */
function pooledRate(responses: RawResponse[], numerator: (r: RawResponse) => number | undefined, denominator: string, scale = 100): Expected {
  let top = 0;
  let bottom = 0;
  const contributors: RawResponse[] = [];
  for (const r of responses) {
    const d = numberOf(r, denominator);
    const t = numerator(r);
    if (d === undefined || t === undefined) continue;
    top += t;
    bottom += d;
    contributors.push(r);
  }
  return { value: bottom ? (scale * top) / bottom : null, n: contributors.length, ...who(contributors) };
}

const sumOf = (questions: string[]) => (r: RawResponse) => {
  const values = questions.map((q) => numberOf(r, q));
  return values.every((v) => v === undefined) ? undefined : values.reduce<number>((t, v) => t + (v ?? 0), 0);
};

const staffRate = (responses: RawResponse[]) => pooledRate(responses, sumOf(['S4_4b', 'S4_4c', 'S4_4d']), 'S4_4a');

/** The indicators of one group; S4 answers must already be once per institution (see onceS4PerInstitution). */
export function expectedIndicators(group: RawResponse[]): Map<string, Expected> {
  const m = new Map<string, Expected>();
  m.set('participation_rate:S1_1', yesOf(group, 'S1_1'));
  for (const b of BARRIERS) m.set(`barrier_index:${b}`, shareOf(group, [b], (v) => v === 3 || v === 4));
  const ranked = group.filter((r) => r.items.some((i) => i.question === 'S1_3'));
  for (const b of BARRIERS) {
    const named = ranked.filter((r) => r.items.some((i) => i.question === 'S1_3' && i.value === b)).length;
    m.set(`top3_ranking:${b}`, { value: ranked.length ? (100 * named) / ranked.length : null, n: ranked.length, ...who(ranked) });
  }
  m.set('unmet_demand:agree', shareOf(group, ['S1_5'], (v) => v >= 4));
  m.set('qci:agree', shareOf(group, QCI, (v) => v >= 4));
  const qciValues = group.flatMap((r) => answersOf(r, QCI)).filter((i) => typeof i.value === 'number').map((i) => i.value as number);
  m.set('qci', { value: qciValues.length ? qciValues.reduce((a, b) => a + b, 0) / qciValues.length : null, n: qciValues.length, ...who(group.filter((r) => answersOf(r, QCI).some((i) => typeof i.value === 'number'))) });
  m.set('europeanisation:agree', shareOf(group, ['S2_8'], (v) => v >= 4));
  m.set('learner_mobility_rate', pooledRate(group, (r) => numberOf(r, 'S2_9a'), 'S2_9b'));
  for (const [code, q] of [['long_term_rate', 'S2_10a'], ['recognition_rate', 'S2_10b'], ['europass_rate', 'S2_10c'], ['inclusion_rate', 'S2_10d'], ['reciprocity', 'S2_11']] as const) {
    m.set(code, pooledRate(group, (r) => numberOf(r, q), 'S2_9a'));
  }
  m.set('lsi:agree', shareOf(group, ['S3_1', 'S3_2', 'S3_3'], (v) => v >= 4));
  for (const c of COMPETENCES) m.set(`competence_gap:${c}`, shareOf(group, [c], (v) => v <= 2));
  m.set('capacity:S3_7', yesOf(group, 'S3_7'));

  const s4 = group;
  const levels: number[] = [];
  const imiContributors: RawResponse[] = [];
  for (const r of s4) {
    const mine = [
      ...answersOf(r, IMI_MAT4).filter((i) => typeof i.value === 'number').map((i) => i.value as number),
      ...answersOf(r, ['S4_7']).map((i) => SUBSTITUTES[String(i.value)]!),
    ];
    if (mine.length) imiContributors.push(r);
    levels.push(...mine);
  }
  const imiMean = levels.length ? levels.reduce((a, b) => a + b, 0) / levels.length : null;
  m.set('imi', { value: imiMean === null ? null : 1 + ((imiMean - 1) / 3) * 4, n: levels.length, ...who(imiContributors) });
  m.set('staff_mobility_rate', staffRate(s4));
  const isAccredited = (r: RawResponse) => r.profile.erasmus === 'accredited' || r.profile.erasmus === 'consortium_coordinator';
  const accredited = staffRate(s4.filter(isAccredited));
  const other = staffRate(s4.filter((r) => !isAccredited(r)));
  m.set('accreditation_gap', {
    value: accredited.value === null || other.value === null ? null : accredited.value - other.value,
    n: accredited.n + other.n,
    respondents: Math.min(accredited.respondents, other.respondents),
    institutions: Math.min(accredited.institutions, other.institutions),
  });
  m.set('capacity_ratios:fte', pooledRate(s4, (r) => numberOf(r, 'S4_3a'), 'S4_4a'));
  m.set('capacity_ratios:budget', pooledRate(s4, (r) => numberOf(r, 'S4_6a'), 'S4_4a', 1));
  m.set('capacity_ratios:own_funds', pooledRate(s4, (r) => {
    const budget = numberOf(r, 'S4_6a');
    const own = numberOf(r, 'S4_6d');
    return budget === undefined || own === undefined ? undefined : (budget * own) / 100;
  }, 'S4_6a'));
  m.set('experience_share', pooledRate(s4, (r) => {
    const staff = numberOf(r, 'S4_4a');
    const share = numberOf(r, 'S4_5');
    return staff === undefined || share === undefined ? undefined : (staff * share) / 100;
  }, 'S4_4a'));
  m.set('impact_index:agree', shareOf(s4, ['S4_12a', 'S4_12b', 'S4_12c', 'S4_12d'], (v) => v >= 4));
  return m;
}

/** Per question (S4 already once per institution): who answered, valid answers, "don't know" apart, and the mean of a numeric answer. */
export function expectedDistribution(group: RawResponse[], question: string) {
  // A separate "don't know" box (S4_5_dk) is its question's "don't know".
  const names = [question, `${question}_dk`];
  const answered = group.filter((r) => r.items.some((i) => names.includes(i.question)));
  const items = answered.flatMap((r) => answersOf(r, names));
  const dk = items.filter((i) => i.value === 'dk').length;
  const numeric = items.filter((i) => typeof i.value === 'number').map((i) => i.value as number);
  return {
    ...who(answered),
    validN: items.length - dk,
    dk,
    mean: numeric.length ? numeric.reduce((a, b) => a + b, 0) / numeric.length : null,
  };
}
