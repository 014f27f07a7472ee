import type { JsonObject } from '../surveys/definitions.ts';
import { DIMENSION_NAMES, DIMENSIONS } from './evidence-filter.ts';
import { ACCREDITED_STATUSES, defineIndicators, indicatorSources, SUBSTITUTE_MATURITY, type IndicatorDef, type IndicatorSet } from './indicators.ts';
import { choiceLabel, DONT_KNOW, type QuestionCatalogue, type QuestionMeta } from './question-catalogue.ts';

/**
 * The codebook that goes with the raw responses: one line per question, read
 * from the survey definitions (routing, ranges, pick limits, cross-checks) and
 * the indicator definitions (which indicator counts what), then one line per
 * indicator with its formula, then the rules that hold for the whole file.
 * Nothing here is written per question: a question added to surveys/ gets its
 * line from its definition.
 */
export function codebookTable(catalogue: QuestionCatalogue): { name: string; rows: string[][] } {
  const set = defineIndicators(catalogue);
  const sources = indicatorSources(set, catalogue);
  const usedBy = new Map<string, string[]>();
  for (const [code, questions] of sources) for (const q of questions) usedBy.set(q, [...(usedBy.get(q) ?? []), code]);

  const header = [
    'Code',
    'Strand',
    'Type',
    'Indicator',
    'Text (en)',
    'Text (fr)',
    'Text (de)',
    'Scale',
    'Choices (code = en / fr / de)',
    'Rows (code = en / fr / de)',
    'Asked when',
    'Numbers (range, decimals, unit)',
    'Pick limits',
    'Cross-checks',
    'Counted in (indicator rows)',
    'Raw export (how the answer is written)',
    'Formula (indicator lines)',
  ];
  const questionRows = catalogue.questions.map((q) => [
    q.name,
    q.strand,
    q.kind,
    q.indicator,
    q.title.default,
    q.title.fr,
    q.title.de,
    q.kind === 'scale' ? `1–${q.scaleMax}${q.choices.some((c) => c.value === DONT_KNOW) ? ' + dk (don’t know, never averaged)' : ''}` : '',
    q.choices.map((c) => `${c.value} = ${c.label.default} / ${c.label.fr} / ${c.label.de}`).join(' | '),
    q.rows.map((r) => `${r.value} = ${r.label.default} / ${r.label.fr} / ${r.label.de}`).join(' | '),
    askedWhen(q, catalogue),
    numbers(q),
    validatorTexts(q.definition, (expression) => expression.includes('.length')).join(' '),
    validatorTexts(q.definition, (expression) => !expression.includes('.length')).join(' '),
    [(usedBy.get(q.name) ?? []).join(', '), maturity(q)].filter(Boolean).join('; '),
    encoding(q),
    '',
  ]);
  const indicatorRows = set.indicators.map((def) => [def.code, '', 'indicator', def.family, def.label, '', '', '', '', '', '', '', '', '', '', '', formula(def, set, catalogue)]);
  const notes = [
    `S4 (management and impact) counts once per institution: of the responses of one institution that answered S4, only the latest (by submission time, then response id) counts for S4 figures; the other S4 answers stay in the raw export.`,
    `S4.7 (substitutes) enters the IMI as a maturity level: ${Object.entries(SUBSTITUTE_MATURITY).map(([code, level]) => `${code} = ${level}`).join(', ')}; the IMI mean on 1–4 is rescaled to 1–5 as 1 + (mean − 1) × 4/3.`,
    `Accredited (staff mobility rate by accreditation, accreditation gap): P8 = ${[...ACCREDITED_STATUSES].join(' or ')}; every other P8 answer, and none, counts as not accredited.`,
    `Raw export: CSV in UTF-8 with a byte-order mark, one line per response; institutions (one pseudonym per institution and campaign) and responses as keyed pseudonyms; profile columns ${DIMENSION_NAMES.map((d) => `${d} (${DIMENSIONS[d].question})`).join(', ')}; then one column per question, in this codebook's order.`,
    `A blank cell means no answer is stored: the question was not asked (its "Asked when" condition was false for that respondent, or its strand was not in the response) or it was asked and left unanswered. Read "Asked when" against the same line's answers to tell the two apart; "dk" is an answer ("don't know"), never a blank.`,
  ].map((text) => ['Note', '', '', '', text, ...header.slice(5).map(() => '')]);
  return { name: 'Codebook', rows: [header, ...questionRows, ...indicatorRows, ...notes] };
}

/** The question's routing in words: every condition of its page, panels and its own. */
function askedWhen(q: QuestionMeta, catalogue: QuestionCatalogue): string {
  return q.askedIf.map((condition) => conditionInWords(condition, catalogue)).join('; and ') || 'always (within its strand)';
}

/** A SurveyJS condition read aloud: "{P9} anyof ['head']" → "P9 is one of Head (head)". */
export function conditionInWords(condition: string, catalogue: QuestionCatalogue): string {
  const label = (question: string, code: string) => {
    const text = choiceLabel(catalogue.byName.get(question), code);
    return text === code ? code : `${text} (${code})`;
  };
  return condition
    .replace(/\{(\w+)\}\s+anyof\s+\[([^\]]*)\]/g, (_, name: string, list: string) => `${name} is one of ${list.split(',').map((v) => label(name, v.trim().replace(/^'|'$/g, ''))).join(', ')}`)
    .replace(/\{(\w+)\}\s+notcontains\s+'([^']*)'/g, (_, name: string, code: string) => `${name} does not include ${label(name, code)}`)
    .replace(/\{(\w+)\}\s+contains\s+'([^']*)'/g, (_, name: string, code: string) => `${name} includes ${label(name, code)}`)
    .replace(/\{(\w+)\}\s+notempty/g, '$1 is answered')
    .replace(/\{(\w+)\}\s+empty/g, '$1 is not answered')
    .replace(/\{(\w+)\}\s*=\s*true/g, '$1 is yes')
    .replace(/\{(\w+)\}\s*=\s*false/g, '$1 is no')
    .replace(/\{(\w+)\}\s*<>\s*'([^']*)'/g, (_, name: string, code: string) => `${name} is not ${label(name, code)}`)
    .replace(/\{(\w+)\}\s*=\s*'([^']*)'/g, (_, name: string, code: string) => `${name} is ${label(name, code)}`)
    .replace(/\{(\w+)\}\s*>\s*(\d+)/g, '$1 is more than $2')
    .replace(/\{(\w+)\}\s*<=\s*\{(\w+)\}/g, '$1 is at most $2')
    .replace(/\{([\w.]+)\}/g, '$1');
}

function numbers(q: QuestionMeta): string {
  if (q.kind !== 'number') return '';
  const d = q.definition;
  const step = typeof d.step === 'number' ? d.step : 1;
  const decimals = step >= 1 ? 'whole numbers' : `${String(step).split('.')[1]?.length ?? 0} decimal(s)`;
  const description = typeof d.description === 'object' && d.description !== null ? String((d.description as JsonObject).default ?? '') : '';
  const unit = q.title.default.match(/\(([^)]*)\)\s*$/)?.[1] ?? '';
  return [`${d.min ?? '–'} to ${d.max ?? '–'}`, decimals, unit && `unit: ${unit}`, description].filter(Boolean).join('; ');
}

/** English messages (and the rule) of the question's expression validators that the test selects. */
function validatorTexts(definition: JsonObject, test: (expression: string) => boolean): string[] {
  const validators = Array.isArray(definition.validators) ? (definition.validators as JsonObject[]) : [];
  return validators
    .filter((v) => v.type === 'expression' && typeof v.expression === 'string' && test(v.expression))
    .map((v) => `${String((v.text as JsonObject | undefined)?.default ?? '')} [${String(v.expression)}]`.trim());
}

/** A choice question read as a maturity level in the IMI (S4.7): its mapping. */
function maturity(q: QuestionMeta): string {
  if (q.indicator !== 'imi' || q.kind !== 'choice') return '';
  return `as IMI maturity: ${q.choices.map((c) => `${c.value} = ${SUBSTITUTE_MATURITY[String(c.value)] ?? 'not counted'}`).join(', ')}`;
}

function encoding(q: QuestionMeta): string {
  switch (q.kind) {
    case 'scale':
      return `the point 1–${q.scaleMax}, or dk`;
    case 'choice':
      return 'the choice code';
    case 'yesno':
      return 'true or false';
    case 'multi':
      return 'the codes ticked, separated by ;';
    case 'ranking':
      return 'the codes in rank order (first = rank 1), separated by ;';
    case 'matrix':
      return 'row=code for each row answered, separated by ;';
    case 'number':
      return 'the number as entered (a full stop for decimals)';
    default:
      return 'the text as written (coordinators only; may contain personal details)';
  }
}

/** How an indicator row is computed, in words, from its definition. */
function formula(def: IndicatorDef, set: IndicatorSet, catalogue: QuestionCatalogue): string {
  if (def.family === 'accreditation_gap') return `staff mobility rate of accredited institutions (P8 = ${[...ACCREDITED_STATUSES].join(' or ')}) minus that of all others, in points`;
  const ratio = set.ratios.find((r) => r.code === def.population);
  if (ratio) {
    const numerator = ratio.numerator.length > 1 ? `(${ratio.numerator.join(' + ')})` : ratio.numerator.join('');
    const who = catalogue.byName.get(ratio.denominator)?.strand === 'S4' ? 'one response per institution (its latest S4 answers)' : "every respondent's figures, several respondents of one institution each";
    const part = ratio.numeratorShareOf ? `${numerator} × ${ratio.numeratorShareOf} / 100` : numerator;
    const scale = def.unit === 'percent' || def.code === 'capacity_ratios:fte' ? '100 × ' : '';
    const needs = ratio.numeratorShareOf ? ratio.numeratorShareOf : `at least one of ${ratio.numerator.join(', ')} (a missing part counts 0)`;
    return `${scale}Σ ${part} / Σ ${ratio.denominator}, both sums over the responses that gave ${ratio.denominator} and ${needs}, pooled over ${who}${ratio.byAccreditation ? '; also split by accredited / not accredited' : ''}`;
  }
  if (def.family === 'imi') return `mean of the valid MAT4 answers (1–4) pooled over ${def.questions.join(', ')} (S4.7 as maturity 1–4), rescaled: 1 + (mean − 1) × 4/3`;
  if (def.family === 'top3_ranking') return `respondents who placed it among their 3 ranked barriers / respondents who answered the ranking × 100`;
  const questions = def.questions.join(', ');
  const pooled = def.questions.length > 1 ? `, pooled over the items ${questions} (each valid item answer counts once)` : ` of ${questions}`;
  if (def.unit === 'mean') return `mean of the valid answers${pooled}; don't know excluded`;
  if (def.family === 'participation_rate' || def.family === 'capacity') return `yes / (yes + no) × 100${pooled}`;
  const rule = /(\d)\s*[–-]\s*(\d)\)/.exec(def.label)?.slice(1, 3).join('–') ?? (def.family === 'barrier_index' ? '3–4' : '');
  const scale = catalogue.byName.get(def.questions[0] ?? '')?.scaleMax;
  return `valid answers rating ${rule || 'the top two points'}${scale ? ` (of 1–${scale})` : ''} / valid answers × 100${pooled}; don't know excluded`;
}
