import { buildCatalogue, type QuestionMeta } from '../server/evidence/question-catalogue.ts';
import type { ResponseItem } from '../server/respond/answer-validator.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';

/**
 * Synthetic answers for the demo data and the benchmark: random but plausible,
 * with tendencies by country so the dashboard shows differences, and always run
 * through the same AnswerValidator as a real submission, so the stored items
 * and profile have exactly the shape of real responses.
 */

export const DEMO_COUNTRIES = ['AT', 'BE', 'CZ', 'DE', 'DK', 'EL', 'ES', 'FI', 'FR', 'HU', 'IT', 'NL', 'PL', 'PT', 'SE'];
const PROFILE_DIMENSIONS = { country: 'P1', institutionType: 'P2', ownership: 'P3', size: 'P4a', staffSize: 'P4b', location: 'P5', erasmus: 'P8', role: 'P9' } as const;

/** A small deterministic generator (mulberry32), so every run makes the same data. */
export function randomSource(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  return { next, int, pick };
}
export type Random = ReturnType<typeof randomSource>;

export interface SyntheticInstitution {
  country: string;
  type: string;
  ownership: string;
  size: string;
  staffSize: string;
  location: string;
  erasmus: string;
  /** 0–1: how far along the institution is with mobility; drives its answers. */
  maturity: number;
}

export function syntheticInstitution(random: Random, index: number): SyntheticInstitution {
  const catalogue = sharedCatalogue();
  const codes = (q: string) => catalogue.byName.get(q)!.choices.map((c) => String(c.value));
  const country = DEMO_COUNTRIES[index % DEMO_COUNTRIES.length]!;
  const countryLean = (DEMO_COUNTRIES.indexOf(country) % 5) / 8;
  return {
    country,
    type: random.pick(codes('P2')),
    ownership: random.pick(codes('P3')),
    size: random.pick(codes('P4a')),
    staffSize: random.pick(codes('P4b')),
    location: random.pick(codes('P5')),
    erasmus: random.pick(codes('P8')),
    maturity: Math.min(1, Math.max(0, 0.2 + countryLean + random.next() * 0.4)),
  };
}

let catalogueCache: ReturnType<typeof buildCatalogue> | undefined;
function sharedCatalogue() {
  return (catalogueCache ??= buildCatalogue(loadSurveyLibrary()));
}

/** Raw answers as the browser would submit them, for one staff member of the institution. */
export function syntheticAnswers(random: Random, institution: SyntheticInstitution): Record<string, unknown> {
  const catalogue = sharedCatalogue();
  const m = institution.maturity;
  const leaning = (max: number, up: number) => Math.max(1, Math.min(max, Math.round(1 + (max - 1) * (0.5 * up + 0.5 * random.next()))));
  const answers: Record<string, unknown> = {
    P1: institution.country,
    P2: institution.type,
    P3: institution.ownership,
    P4a: institution.size,
    P4b: institution.staffSize,
    P5: institution.location,
    P8: institution.erasmus,
    P9: random.next() < 0.2 ? random.pick(['head', 'intl_coordinator']) : random.pick(['middle_manager', 'vocational_teacher', 'general_teacher', 'company_trainer', 'admin_staff']),
    P10a: random.pick(['none', 'one', 'two_three', 'four_plus']),
    P11: random.next() < 0.5,
  };
  for (const q of catalogue.questions) {
    if (q.strand === 'P' || q.name in answers) continue;
    const value = answerFor(q, random, m, leaning);
    if (value !== undefined) answers[q.name] = value;
  }
  if (answers.P10a !== 'none') answers.P10b = ['job_shadowing'];
  answers.P6 = ['eqf_3', 'eqf_4'];
  answers.P7 = ['isced_07'];
  // Barriers: more moderate or major where the institution is less mature; rank the three worst.
  const barriers = catalogue.questions.filter((q) => q.indicator === 'barrier_index').map((q) => q.name);
  answers.S1_3 = [...barriers].sort((a, b) => (Number(answers[b]) || 0) - (Number(answers[a]) || 0) || random.next() - 0.5).slice(0, 3);
  answers.S1_4 = ['funded_substitute', 'workload_credit', 'language_course', 'career_credit', 'partner_network'].filter(() => random.next() < 0.4).slice(0, 3);
  if ((answers.S1_4 as string[]).length === 0) answers.S1_4 = ['funded_substitute'];
  if (random.next() < 0.15) answers.S1_6 = random.pick(FREE_TEXT);
  else delete answers.S1_6;
  // Learner figures consistent with each other.
  const cohort = random.int(40, 600);
  const outgoing = Math.round(cohort * (0.02 + 0.2 * m * random.next()));
  Object.assign(answers, { S2_9a: outgoing, S2_9b: cohort, S2_10a: Math.round(outgoing * 0.2 * random.next()), S2_10b: Math.round(outgoing * random.next()), S2_10c: Math.round(outgoing * random.next()), S2_10d: Math.round(outgoing * 0.3 * random.next()), S2_11: random.int(0, outgoing) });
  const staff = random.int(20, 300);
  Object.assign(answers, {
    S4_4a: staff,
    S4_4b: Math.round(staff * 0.1 * m * random.next()),
    S4_4c: Math.round(staff * 0.05 * m * random.next()),
    S4_4d: Math.round(staff * 0.05 * random.next()),
    S4_4e: random.int(0, 10),
    S4_3a: Math.round(10 * m * random.next()) / 10,
    S4_3b: random.int(0, 500),
    S4_6a: random.int(5, 300) * 1000,
    S4_11: random.int(0, 30),
  });
  const own = random.int(0, 40);
  const erasmusShare = random.int(0, 100 - own);
  Object.assign(answers, { S4_6b: erasmusShare, S4_6c: 100 - own - erasmusShare, S4_6d: own });
  if (random.next() < 0.1) {
    answers.S4_5_dk = ['dk'];
    delete answers.S4_5;
  } else {
    answers.S4_5 = random.int(0, 100);
    delete answers.S4_5_dk;
  }
  return answers;
}

function answerFor(q: QuestionMeta, random: Random, m: number, leaning: (max: number, up: number) => number): unknown {
  switch (q.kind) {
    case 'scale': {
      if (random.next() < 0.06) return 'dk';
      // Barriers are worse where maturity is low; everything else better where it is high.
      return leaning(q.scaleMax!, q.indicator === 'barrier_index' ? 1 - m : m);
    }
    case 'choice':
      return q.choices[Math.min(q.choices.length - 1, Math.floor((0.5 * m + 0.5 * random.next()) * q.choices.length))]!.value;
    case 'yesno':
      return random.next() < 0.2 + 0.5 * m;
    case 'matrix':
      return Object.fromEntries(q.rows.map((row) => [row.value, random.pick(q.choices).value]));
    default:
      return undefined;
  }
}

const FREE_TEXT = [
  'A shared pool of substitute teachers in our region would make short visits possible.',
  'Our management supports mobility, but the paperwork for reporting takes longer than the visit.',
  'Job shadowing in a partner school changed how I organise workshop lessons.',
  'Without a language course beforehand I would not have dared to go.',
  'The grant does not cover travel to the islands; we top it up from our own budget.',
  'Nobody counts the time abroad in the appraisal, so colleagues see it as a holiday.',
  'Finding a host company abroad for our trainers is the hardest step.',
];

/** Validates the answers like a submission and returns what respond.service.ts would store. */
export function validatedResponse(registry: QuestionnaireRegistry, answers: Record<string, unknown>, strands: string[]) {
  const questionnaire = registry.forStrands(strands);
  const result = questionnaire.validator.validate(answers, 'en');
  if (!result.ok) return { ok: false as const, errors: result.errors };
  const profile: Record<string, string> = {};
  for (const [dimension, question] of Object.entries(PROFILE_DIMENSIONS)) {
    const value = result.data[question];
    if (typeof value === 'string' || typeof value === 'number') profile[dimension] = String(value);
  }
  return { ok: true as const, data: result.data, items: result.items as ResponseItem[], profile, version: questionnaire.version };
}
