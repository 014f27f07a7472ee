import { questionsOf, type JsonObject, type LocalizedText, type SectionCode, type SurveyLibrary } from '../surveys/definitions.ts';

/**
 * How the evidence reads a question's answers. Taken from the SurveyJS type and
 * choices, so a question added to surveys/ gets its distribution without code.
 *
 * - scale: a radiogroup whose choices are the numbers 1…n (plus "dk"): AGR5, BAR4, MAT4, ratings
 * - choice: a single choice between codes; multi: several codes (one item each)
 * - ranking: codes with a rank; matrix: one code per row; yesno: true/false
 * - number: a whole or decimal number; text: free text (quotes, never counted)
 */
export type AnswerKind = 'scale' | 'choice' | 'multi' | 'ranking' | 'matrix' | 'yesno' | 'number' | 'text';

export interface Choice {
  value: string | number;
  label: LocalizedText;
}

export interface QuestionMeta {
  name: string;
  strand: SectionCode;
  indicator: string;
  kind: AnswerKind;
  surveyType: string;
  title: LocalizedText;
  choices: Choice[];
  rows: Choice[];
  /** Highest point of a numeric scale (4 or 5); undefined for other kinds. */
  scaleMax?: number;
  /** When the question is asked: the visibleIf of its page, panels and itself (all must hold), as written in the definition. */
  askedIf: string[];
  /** The question's own definition (ranges, steps, validators), for the codebook. */
  definition: JsonObject;
}

/** The code every scale uses for "don't know / not applicable": counted apart, never averaged. */
export const DONT_KNOW = 'dk';

export interface QuestionCatalogue {
  questions: QuestionMeta[];
  byName: Map<string, QuestionMeta>;
  indicatorLabels: Map<string, LocalizedText>;
}

/** Reads every question of the survey library once, in questionnaire order. */
export function buildCatalogue(library: SurveyLibrary): QuestionCatalogue {
  const sections = [library.profile, ...Object.values(library.strands)];
  const questions = sections.flatMap((section) => withConditions(section.pages).map(([q, askedIf]) => describe(q, askedIf)));
  return {
    questions,
    byName: new Map(questions.map((q) => [q.name, q])),
    indicatorLabels: new Map(library.indicators.map((i) => [i.code, i.label])),
  };
}

/** Every question of the pages with the visibleIf conditions of the page and panels around it and its own (same order as questionsOf). */
function withConditions(pages: unknown): Array<[JsonObject, string[]]> {
  const found: Array<[JsonObject, string[]]> = [];
  const visit = (list: unknown, conditions: string[]) => {
    if (!Array.isArray(list)) return;
    for (const element of list as unknown[]) {
      if (typeof element !== 'object' || element === null) continue;
      const e = element as JsonObject;
      const own = typeof e.visibleIf === 'string' ? [...conditions, e.visibleIf] : conditions;
      if (Array.isArray(e.elements)) visit(e.elements, own);
      else if (e.type !== 'panel') found.push([e, own]);
    }
  };
  visit(pages, []);
  if (found.length !== questionsOf(pages).length) throw new Error('withConditions and questionsOf disagree');
  return found;
}

function describe(q: JsonObject, askedIf: string[]): QuestionMeta {
  const surveyType = String(q.type);
  const choices = choiceList(q.choices ?? q.columns);
  const rows = choiceList(q.rows);
  const numericChoices = choices.filter((c) => typeof c.value === 'number');
  let kind: AnswerKind;
  switch (surveyType) {
    case 'radiogroup':
    case 'dropdown':
    case 'rating':
      kind = numericChoices.length >= 2 ? 'scale' : 'choice';
      break;
    case 'checkbox':
    case 'tagbox':
      kind = 'multi';
      break;
    case 'ranking':
      kind = 'ranking';
      break;
    case 'matrix':
      kind = 'matrix';
      break;
    case 'boolean':
      kind = 'yesno';
      break;
    case 'text':
      kind = q.inputType === 'number' ? 'number' : 'text';
      break;
    default:
      kind = 'text';
  }
  return {
    name: String(q.name),
    strand: q.strand as SectionCode,
    indicator: String(q.indicator),
    kind,
    surveyType,
    title: localized(q.title ?? q.name),
    choices,
    rows,
    scaleMax: kind === 'scale' ? Math.max(...numericChoices.map((c) => c.value as number)) : undefined,
    askedIf,
    definition: q,
  };
}

function choiceList(list: unknown): Choice[] {
  if (!Array.isArray(list)) return [];
  return list.map((entry) => {
    if (typeof entry === 'object' && entry !== null) {
      const choice = entry as JsonObject;
      return { value: choice.value as string | number, label: localized(choice.text ?? choice.value) };
    }
    return { value: entry as string | number, label: localized(entry) };
  });
}

function localized(text: unknown): LocalizedText {
  if (typeof text === 'object' && text !== null) {
    const t = text as Partial<LocalizedText>;
    const fallback = String(t.default ?? '');
    return { default: fallback, fr: t.fr ?? fallback, de: t.de ?? fallback };
  }
  const plain = String(text ?? '');
  return { default: plain, fr: plain, de: plain };
}

/** The English label of a choice code, or the code itself. */
export function choiceLabel(question: QuestionMeta | undefined, value: unknown): string {
  const choice = question?.choices.find((c) => c.value === value);
  if (choice) return choice.label.default;
  if (value === DONT_KNOW) return "Don't know";
  if (value === true) return 'Yes';
  if (value === false) return 'No';
  return String(value);
}
