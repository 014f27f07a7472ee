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
  /** Enrolled learners and staff headcount, consistent with the size bands (P4a, P4b). */
  learners: number;
  staff: number;
  /** 0–1: how far along the institution is with mobility; drives its answers. */
  maturity: number;
}

/**
 * Where a country's staff stand, as the working group's sources describe it
 * (Cedefop, TALIS): countries with long Erasmus+ accreditation traditions
 * are further along; foreign languages weigh more where teaching is rarely in
 * English. Values are shifts of maturity and of the language barrier.
 */
const COUNTRY_LEAN: Record<string, { maturity: number; language: number }> = {
  AT: { maturity: 0.15, language: -0.05 }, BE: { maturity: 0.05, language: 0 }, CZ: { maturity: -0.05, language: 0.15 },
  DE: { maturity: 0.1, language: 0.05 }, DK: { maturity: 0.15, language: -0.12 }, EL: { maturity: -0.15, language: 0.05 },
  ES: { maturity: 0, language: 0.15 }, FI: { maturity: 0.25, language: -0.12 }, FR: { maturity: -0.05, language: 0.2 },
  HU: { maturity: -0.15, language: 0.2 }, IT: { maturity: -0.1, language: 0.15 }, NL: { maturity: 0.2, language: -0.15 },
  PL: { maturity: -0.05, language: 0.12 }, PT: { maturity: -0.1, language: 0.05 }, SE: { maturity: 0.15, language: -0.12 },
};

/**
 * How often each barrier (S1.2a–l) is Moderate or Major for an average
 * institution: replacement cover and funding far ahead, language skills far
 * behind, as in the studies the design brief cites.
 */
const BARRIER_BASE: Record<string, number> = {
  S1_2a: 0.72, S1_2b: 0.55, S1_2c: 0.66, S1_2d: 0.2, S1_2e: 0.3, S1_2f: 0.45,
  S1_2g: 0.2, S1_2h: 0.42, S1_2i: 0.36, S1_2j: 0.3, S1_2k: 0.5, S1_2l: 0.6,
};
/** Institution types shift some barriers: cover is hardest in dual and school-based IVET, easiest in chambers and adult providers. */
const TYPE_SHIFT: Record<string, Partial<Record<string, number>>> = {
  ivet_school: { S1_2a: 0.08, S1_2f: 0.1 },
  ivet_dual: { S1_2a: 0.12, S1_2f: 0.08, S1_2j: 0.08 },
  cvet_adult: { S1_2a: -0.15, S1_2f: -0.15, S1_2c: 0.05 },
  company_centre: { S1_2a: -0.05, S1_2b: 0.12, S1_2h: 0.1 },
  chamber_sector: { S1_2a: -0.2, S1_2f: -0.2, S1_2k: 0.08 },
  post_secondary: { S1_2a: -0.05, S1_2d: -0.05 },
};

const LEARNER_BANDS: Record<string, [number, number]> = { under_250: [60, 249], '250_999': [250, 999], '1000_2499': [1000, 2499], '2500_plus': [2500, 6000] };
const STAFF_BANDS: Array<[string, number]> = [['under_25', 25], ['25_99', 100], ['100_249', 250], ['250_plus', Infinity]];

export function syntheticInstitution(random: Random, index: number): SyntheticInstitution {
  const catalogue = sharedCatalogue();
  const codes = (q: string) => catalogue.byName.get(q)!.choices.map((c) => String(c.value));
  const country = DEMO_COUNTRIES[index % DEMO_COUNTRIES.length]!;
  const type = random.pick(codes('P2'));
  // Most VET providers are small or middle-sized; a few are large regional centres.
  const size = random.next() < 0.3 ? 'under_250' : random.next() < 0.65 ? '250_999' : random.next() < 0.75 ? '1000_2499' : '2500_plus';
  const [low, high] = LEARNER_BANDS[size]!;
  const learners = random.int(low, high);
  // About one staff member per 9 to 16 learners; chambers and company centres train adults part-time with fewer staff.
  const perStaff = type === 'chamber_sector' || type === 'company_centre' ? random.int(18, 30) : random.int(9, 16);
  const staff = Math.max(6, Math.round(learners / perStaff));
  const staffSize = STAFF_BANDS.find(([, limit]) => staff < limit)![0];
  const erasmus = random.next() < 0.35 + (COUNTRY_LEAN[country]?.maturity ?? 0) ? random.pick(['accredited', 'consortium_coordinator']) : random.pick(codes('P8'));
  const accredited = erasmus === 'accredited' || erasmus === 'consortium_coordinator' ? 0.12 : 0;
  return {
    country,
    type,
    ownership: random.next() < 0.7 ? 'public' : random.pick(codes('P3')),
    size,
    staffSize,
    location: random.pick(codes('P5')),
    erasmus,
    learners,
    staff,
    maturity: clamp01(0.4 + (COUNTRY_LEAN[country]?.maturity ?? 0) + accredited + (random.next() - 0.5) * 0.4),
  };
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

let catalogueCache: ReturnType<typeof buildCatalogue> | undefined;
function sharedCatalogue() {
  return (catalogueCache ??= buildCatalogue(loadSurveyLibrary()));
}

/**
 * Raw answers as the browser would submit them, for one staff member of the
 * institution. `wave` 2 is a year later: a little more mobility, a little
 * less of the barriers that funding and information address, so that a
 * comparison of waves shows movement.
 */
export function syntheticAnswers(random: Random, institution: SyntheticInstitution, wave: 1 | 2 = 1): Record<string, unknown> {
  const catalogue = sharedCatalogue();
  const m = clamp01(institution.maturity + (wave === 2 ? 0.08 : 0) + (random.next() - 0.5) * 0.2);
  const leaning = (max: number, up: number) => Math.max(1, Math.min(max, Math.round(1 + (max - 1) * (0.5 * up + 0.5 * random.next()))));
  const answers: Record<string, unknown> = {
    P1: institution.country,
    P2: institution.type,
    P3: institution.ownership,
    P4a: institution.size,
    P4b: institution.staffSize,
    P5: institution.location,
    P8: institution.erasmus,
    P9: random.next() < 0.2 ? random.pick(['head', 'intl_coordinator']) : random.pick(['middle_manager', 'vocational_teacher', 'vocational_teacher', 'general_teacher', 'company_trainer', 'admin_staff']),
    P10a: random.next() < 0.55 - 0.3 * m ? 'none' : random.pick(['one', 'one', 'two_three', 'four_plus']),
    P11: random.next() < 0.5,
  };
  for (const q of catalogue.questions) {
    if (q.strand === 'P' || q.name in answers) continue;
    const value = q.indicator === 'barrier_index' ? barrierAnswer(q.name, random, institution, m, wave) : answerFor(q, random, m, leaning);
    if (value !== undefined) answers[q.name] = value;
  }
  if (answers.P10a !== 'none') answers.P10b = random.next() < 0.6 ? ['job_shadowing'] : random.pick([['structured_course'], ['teaching_assignment'], ['job_shadowing', 'structured_course']]);
  answers.P6 = random.pick([['eqf_3', 'eqf_4'], ['eqf_4'], ['eqf_2', 'eqf_3'], ['eqf_4', 'eqf_5']]);
  answers.P7 = random.pick([['isced_07'], ['isced_04'], ['isced_10'], ['isced_07', 'isced_06'], ['isced_09']]);
  // The three worst barriers, in order; ties broken at random.
  const barriers = catalogue.questions.filter((q) => q.indicator === 'barrier_index').map((q) => q.name);
  const score = (b: string) => (typeof answers[b] === 'number' ? (answers[b] as number) : 0);
  answers.S1_3 = [...barriers].map((b) => ({ b, key: score(b) + random.next() * 0.9 })).sort((x, y) => y.key - x.key).slice(0, 3).map((x) => x.b);
  const measures: Array<[string, number]> = [['funded_substitute', 0.55], ['workload_credit', 0.4], ['language_course', 0.15], ['career_credit', 0.3], ['partner_network', 0.3], ['coordinator_paperwork', 0.35], ['blended_short_formats', 0.2]];
  answers.S1_4 = measures.filter(([, p]) => random.next() < p).map(([code]) => code).slice(0, 3);
  if ((answers.S1_4 as string[]).length === 0) answers.S1_4 = ['funded_substitute'];
  if (random.next() < 0.22) answers.S1_6 = freeText(random, (answers.S1_3 as string[])[0]!);
  else delete answers.S1_6;
  // Learner figures from the institution's size: a graduating cohort of about a third, 2–15 % of it abroad.
  const cohort = Math.max(10, Math.round((institution.learners / 3) * (0.85 + 0.3 * random.next())));
  const outgoing = Math.round(cohort * (0.02 + 0.13 * m * (0.6 + 0.4 * random.next())));
  Object.assign(answers, {
    S2_9a: outgoing,
    S2_9b: cohort,
    S2_10a: Math.round(outgoing * (0.05 + 0.15 * m) * random.next()),
    S2_10b: Math.round(outgoing * (0.3 + 0.6 * m * random.next())),
    S2_10c: Math.round(outgoing * (0.2 + 0.6 * m * random.next())),
    S2_10d: Math.round(outgoing * 0.3 * random.next()),
    S2_11: Math.round(outgoing * (0.2 + 0.6 * random.next())),
  });
  // Staff figures: the headcount with a little reporting noise, 1–14 % abroad a year.
  const staff = Math.max(5, Math.round(institution.staff * (0.95 + 0.1 * random.next())));
  const abroad = Math.round(staff * (0.01 + 0.13 * m * random.next()));
  Object.assign(answers, {
    S4_4a: staff,
    S4_4b: Math.round(abroad * 0.6),
    S4_4c: Math.round(abroad * 0.25),
    S4_4d: abroad - Math.round(abroad * 0.6) - Math.round(abroad * 0.25),
    S4_4e: Math.round(staff * 0.03 * m * random.next()),
    S4_3a: Math.min(50, Math.round(Math.max(0.1, (staff / 120) * (0.3 + m)) * 10) / 10),
    S4_3b: Math.round(staff * (2 + 20 * m) * random.next()),
    S4_6a: Math.round((staff * (300 + 2500 * m) * (0.5 + random.next())) / 1000) * 1000,
    S4_11: Math.round(2 + 25 * m * random.next()),
  });
  const own = random.int(0, Math.round(10 + 30 * (1 - m)));
  const erasmusShare = random.int(Math.round((100 - own) * 0.4), 100 - own);
  Object.assign(answers, { S4_6b: erasmusShare, S4_6c: 100 - own - erasmusShare, S4_6d: own });
  if (random.next() < 0.1) {
    answers.S4_5_dk = ['dk'];
    delete answers.S4_5;
  } else {
    answers.S4_5 = Math.round(100 * clamp01(0.05 + 0.5 * m + (random.next() - 0.5) * 0.2));
    delete answers.S4_5_dk;
  }
  return answers;
}

/** One barrier (BAR4): Moderate or Major with the barrier's probability for this institution, country and wave. */
function barrierAnswer(code: string, random: Random, institution: SyntheticInstitution, m: number, wave: 1 | 2): number | 'dk' {
  if (random.next() < 0.05) return 'dk';
  let p = (BARRIER_BASE[code] ?? 0.35) + (TYPE_SHIFT[institution.type]?.[code] ?? 0) - 0.35 * (m - 0.4);
  if (code === 'S1_2d') p += COUNTRY_LEAN[institution.country]?.language ?? 0;
  // A year later: more substitute funding and information reached the institutions.
  if (wave === 2 && (code === 'S1_2c' || code === 'S1_2l' || code === 'S1_2i')) p -= 0.1;
  if (random.next() < clamp01(p)) return random.next() < 0.35 + 0.4 * clamp01(p) ? 4 : 3;
  return random.next() < 0.45 ? 2 : 1;
}

function answerFor(q: QuestionMeta, random: Random, m: number, leaning: (max: number, up: number) => number): unknown {
  switch (q.kind) {
    case 'scale':
      if (random.next() < 0.06) return 'dk';
      return leaning(q.scaleMax!, m);
    case 'choice':
      return q.choices[Math.min(q.choices.length - 1, Math.floor((0.5 * m + 0.5 * random.next()) * q.choices.length))]!.value;
    case 'yesno':
      return random.next() < 0.15 + 0.55 * m;
    case 'matrix':
      return Object.fromEntries(q.rows.map((row) => [row.value, random.pick(q.choices).value]));
    default:
      return undefined;
  }
}

/**
 * A free-text comment (S1.6) about the respondent's worst barrier, put
 * together from pieces so that the quotes page reads like many people, not
 * seven sentences repeated.
 */
function freeText(random: Random, topBarrier: string): string {
  const about = QUOTES[topBarrier] ?? QUOTES.other!;
  const opening = random.pick(OPENINGS);
  const detail = random.pick(about);
  const closing = random.next() < 0.6 ? ` ${random.pick(CLOSINGS)}` : '';
  return `${opening}${detail}${closing}`;
}

const OPENINGS = ['', '', 'Honestly, ', 'In our school, ', 'For me personally, ', 'As a department head: ', 'Speaking for the workshop teachers, ', 'After two exchanges, I can say that ', 'In a small team like ours, '];
const QUOTES: Record<string, string[]> = {
  S1_2a: [
    'nobody can take over my practical classes, so a week away means a week of lessons lost.',
    'the substitute list is empty in spring, exactly when partner schools invite us.',
    'we share one welding instructor between three groups; if he goes, the workshop closes.',
    'covering my classes falls on colleagues who are already overloaded, and I feel guilty going.',
    'cover for apprentices in companies is arranged by the company, and they rarely agree.',
  ],
  S1_2b: [
    'the marking and the reports simply wait for me, and the week after a mobility is awful.',
    'my administrative work is not reassigned, so I come back to twice the pile.',
  ],
  S1_2c: [
    'there is no budget line for a substitute, so the school loses money every time someone goes.',
    'the Erasmus+ grant pays my travel but not the person who replaces me.',
    'our municipality does not fund substitutes for anything but illness.',
  ],
  S1_2l: [
    'the daily allowance does not cover a hotel in Amsterdam or Copenhagen.',
    'we top up every grant from our own budget, which means fewer people can go.',
    'travel to the islands costs more than the flat rate allows.',
  ],
  S1_2d: [
    'my English is fine for the workshop but not for the paperwork.',
    'a short language course before leaving would have helped more than the grant.',
  ],
  S1_2f: [
    'exams in May and June block the only weeks our partners can host us.',
    'the timetable is fixed in August; anything later cannot be fitted in.',
  ],
  S1_2h: [
    'time abroad does not count in my appraisal, so colleagues see it as a holiday.',
    'nothing I learned abroad appears anywhere in my career record.',
  ],
  S1_2k: [
    'the reporting took longer than the job shadowing itself.',
    'our coordinator does the applications alone in the evenings.',
  ],
  S1_2i: ['I heard about the call two weeks before the deadline.', 'information reaches the management but not the teachers.'],
  S1_2j: ['finding a host company abroad for trainers is the hardest step.', 'our partner network is three schools we met ten years ago.'],
  other: [
    'job shadowing in a partner school changed how I organise workshop lessons.',
    'management supports mobility, but the practical arrangements are left to us.',
    'a regional pool of substitute teachers would make short visits possible.',
  ],
};
const CLOSINGS = [
  'Still, it was worth it.',
  'Blended or shorter formats would help.',
  'A funded substitute would change everything.',
  'I would go again tomorrow.',
  'Younger colleagues are keen but hesitate.',
  'We need this recognised by the ministry.',
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
