import { Model, type Question } from 'survey-core';
import type { Language } from '../shared/languages.ts';
import { answerMessage } from './answer-messages.ts';
import { flattenAnswers, type ResponseItem } from './answer-items.ts';

export type { ResponseItem } from './answer-items.ts';

export type AnswerValidation =
  | { ok: true; data: Record<string, unknown>; items: ResponseItem[] }
  | { ok: false; errors: Record<string, string[]> };

export type DraftValidation = { ok: true; data: Record<string, unknown> } | { ok: false; errors: Record<string, string[]> };

/**
 * A submission is checked in full; a draft (partial) only for the shape of
 * each answer it holds: type, text length, offered choices, at most the
 * allowed picks. What an unfinished questionnaire legitimately lacks or has
 * not yet corrected (required answers, too few picks, a number outside its
 * range while being typed, cross-checks) waits for the submission.
 */
type Mode = 'complete' | 'partial';

type Scalar = string | number;

/** Longest free text accepted where a question sets no maxLength. */
const DEFAULT_TEXT_LIMIT = 2000;
const FORM_ERROR_KEY = '_form';

/**
 * Validates submitted answers against a questionnaire definition, on the
 * server, with the same survey-core model the browser runs.
 *
 * survey-core's own validate() checks required answers, ranges of numeric
 * text inputs and the expression validators (cross-checks), but accepts values
 * of the wrong type, out-of-range ratings, too many picks, unknown choices and
 * overlong text. So before it runs, every answer is type-checked per question
 * type here; unknown keys and answers to questions the respondent could not
 * see (visibleIf) are dropped, not stored.
 *
 * One model instance per definition and language is reused: validation is
 * synchronous, so no two requests ever share it at the same time, and
 * building a model (or switching its language) per request would cost more
 * than the validation itself.
 */
export class AnswerValidator {
  private readonly json: object;
  private readonly models = new Map<Language, Model>();
  private readonly model: Model;
  private readonly strandOf: Map<string, string>;

  constructor(json: object, questions: ReadonlyArray<{ name: string; strand: string }>) {
    this.json = json;
    this.model = this.modelFor('en');
    if (this.model.jsonErrors?.length) {
      throw new Error(`questionnaire definition has errors: ${this.model.jsonErrors.map((e) => e.message).join('; ')}`);
    }
    this.strandOf = new Map(questions.map((q) => [q.name, q.strand]));
  }

  private modelFor(language: Language): Model {
    let model = this.models.get(language);
    if (!model) {
      model = new Model(this.json);
      model.locale = language === 'en' ? '' : language;
      this.models.set(language, model);
    }
    return model;
  }

  validate(raw: unknown, language: Language): AnswerValidation {
    if (!isPlainObject(raw)) return { ok: false, errors: { [FORM_ERROR_KEY]: [answerMessage('notAnObject', language)] } };
    // Both tiers report together, so the respondent sees every problem at once.
    // Only answers of the right shape reach survey-core: a wrongly typed one is
    // left out of its data (and reported here), never handed to its validators.
    const { data, errors: shapeErrors } = this.shapes(raw, language, 'complete');

    // Drop answers to hidden questions until nothing changes: removing one
    // answer can hide further questions that depended on it.
    const model = this.modelFor(language);
    for (;;) {
      model.data = data;
      const hidden = Object.keys(data).filter((name) => !isShown(model.getQuestionByName(name)));
      if (hidden.length === 0) break;
      for (const name of hidden) delete data[name];
    }

    // Collecting messages costs more than checking, so only invalid answers pay for it.
    const shapesOk = Object.keys(shapeErrors).length === 0;
    if (shapesOk && model.validate(false, false)) return { ok: true, data, items: this.itemsOf(data) };
    model.validate(true, false);
    const errors: Record<string, string[]> = {};
    // In questionnaire order; a wrongly typed answer keeps its own message (survey-core would only call it missing).
    for (const question of model.getAllQuestions(false)) {
      const own = shapeErrors[question.name];
      if (own) errors[question.name] = own;
      else if (isShown(question) && question.errors.length > 0) errors[question.name] = question.errors.map((e) => e.getText());
    }
    if (Object.keys(errors).length === 0) errors[FORM_ERROR_KEY] = [answerMessage('invalid', language)];
    return { ok: false, errors };
  }

  /**
   * Checks the answers of an unfinished questionnaire (see Mode) and keeps
   * only answers to its questions. Answers to questions hidden for now are
   * kept, as the browser keeps them: they may show again.
   */
  validateDraft(raw: unknown, language: Language): DraftValidation {
    return this.checkShapes(raw, language, 'partial');
  }

  /** Type-checks every answer to a question of this questionnaire; other keys are dropped. */
  private checkShapes(raw: unknown, language: Language, mode: Mode): DraftValidation {
    if (!isPlainObject(raw)) return { ok: false, errors: { [FORM_ERROR_KEY]: [answerMessage('notAnObject', language)] } };
    const { data, errors } = this.shapes(raw, language, mode);
    return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, data };
  }

  /** The answers of the right shape, and a message for each answer of the wrong one. */
  private shapes(raw: Record<string, unknown>, language: Language, mode: Mode) {
    const errors: Record<string, string[]> = {};
    const data: Record<string, unknown> = {};
    for (const question of this.answerable()) {
      if (!Object.hasOwn(raw, question.name)) continue;
      const value = raw[question.name];
      if (value === null || value === undefined || value === '') continue;
      const problem = checkType(question, value, language, mode);
      if (problem) errors[question.name] = [problem];
      else data[question.name] = value;
    }
    return { data, errors };
  }

  private answerable(): Question[] {
    return this.model.getAllQuestions(false).filter((q) => this.strandOf.has(q.name));
  }

  /** Flattens validated answers into items (answer-items.ts), free text included. */
  itemsOf(data: Record<string, unknown>): ResponseItem[] {
    return flattenAnswers(data, (question) => {
      const strand = this.strandOf.get(question);
      return strand === undefined ? undefined : { strand, ranking: this.model.getQuestionByName(question)?.getType() === 'ranking' };
    });
  }

  /**
   * Whether a question's answer is free text (a comment, or a text input that
   * is not a number): it may identify someone, so it stays with the response
   * and never goes into the analytic record.
   */
  isFreeText(question: string): boolean {
    const q = this.model.getQuestionByName(question) as (Question & Record<string, any>) | null;
    if (!q) return false;
    const type = q.getType();
    return type === 'comment' || (type === 'text' && q.inputType !== 'number' && q.inputType !== 'range');
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

function isShown(question: Question | null): boolean {
  if (!question) return false;
  return question.isVisible && question.isParentVisible && (question.page?.isVisible ?? true);
}

function isScalar(value: unknown): value is Scalar {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

function choiceValues(items: ReadonlyArray<{ value: unknown }> | undefined): Set<unknown> {
  return new Set((items ?? []).map((item) => item.value));
}

function selectable(question: Question): Set<unknown> {
  const q = question as Question & Record<string, any>;
  const values = choiceValues(q.choices);
  if (q.showNoneItem) values.add(q.noneItem?.value ?? 'none');
  if (q.showRefuseItem) values.add(q.refuseItem?.value ?? 'refused');
  if (q.showDontKnowItem) values.add(q.dontKnowItem?.value ?? 'dontknow');
  return values;
}

/** Returns a message when the value does not have the shape the question produces. */
function checkType(question: Question, value: unknown, language: Language, mode: Mode): string | undefined {
  const q = question as Question & Record<string, any>;
  const partial = mode === 'partial';
  switch (question.getType()) {
    case 'text': {
      if (q.inputType === 'number' || q.inputType === 'range') {
        if (typeof value !== 'number' || !Number.isFinite(value)) return answerMessage('number', language);
        if (partial) return undefined;
        const step = Number(q.step);
        const decimals = Number.isFinite(step) && step > 0 && !Number.isInteger(step);
        if (!decimals && !Number.isInteger(value)) return answerMessage('wholeNumber', language);
        const min = q.min === undefined || q.min === '' ? -Infinity : Number(q.min);
        const max = q.max === undefined || q.max === '' ? Infinity : Number(q.max);
        if (value < min || value > max) return answerMessage('range', language, { min, max });
        return undefined;
      }
      return checkText(q, value, language);
    }
    case 'comment':
      return checkText(q, value, language);
    case 'radiogroup':
    case 'dropdown':
      return isScalar(value) && selectable(question).has(value) ? undefined : answerMessage('choice', language);
    case 'rating': {
      const allowed = choiceValues(q.visibleRateValues);
      return isScalar(value) && allowed.has(value) ? undefined : answerMessage('choice', language);
    }
    case 'boolean': {
      const yes = q.valueTrue ?? true;
      const no = q.valueFalse ?? false;
      return value === yes || value === no ? undefined : answerMessage('yesNo', language);
    }
    case 'checkbox':
    case 'tagbox':
      return checkPicks(value, selectable(question), partial ? undefined : q.minSelectedChoices, q.maxSelectedChoices, language);
    case 'ranking': {
      const choices = choiceValues(q.choices);
      if (q.selectToRankEnabled) return checkPicks(value, choices, partial ? undefined : q.minSelectedChoices, q.maxSelectedChoices, language);
      // Without select-to-rank every choice is ranked.
      return checkPicks(value, choices, partial ? undefined : choices.size, choices.size, language);
    }
    case 'matrix': {
      if (!isPlainObject(value)) return answerMessage('matrix', language);
      const rows = choiceValues(q.rows);
      const columns = choiceValues(q.columns);
      const valid = Object.entries(value).every(([row, column]) => rows.has(row) && isScalar(column) && columns.has(column));
      return valid && (partial || Object.keys(value).length > 0) ? undefined : answerMessage('matrix', language);
    }
    default:
      // A question type this platform's definitions do not use: refuse rather than store unchecked data.
      return answerMessage('choice', language);
  }
}

function checkText(q: Record<string, any>, value: unknown, language: Language): string | undefined {
  if (typeof value !== 'string') return answerMessage('text', language);
  const limit = q.maxLength > 0 ? q.maxLength : DEFAULT_TEXT_LIMIT;
  return [...value].length > limit ? answerMessage('tooLong', language, { max: limit }) : undefined;
}

function checkPicks(
  value: unknown,
  allowed: Set<unknown>,
  min: number | undefined,
  max: number | undefined,
  language: Language,
): string | undefined {
  if (!Array.isArray(value) || !value.every(isScalar)) return answerMessage('choices', language);
  if (new Set(value).size !== value.length || !value.every((v) => allowed.has(v))) return answerMessage('choices', language);
  if (max && max > 0 && value.length > max) return answerMessage('tooManyChoices', language, { max });
  if (min && min > 0 && value.length < min) return answerMessage('tooFewChoices', language, { min });
  return undefined;
}
