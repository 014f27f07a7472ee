import { ItemValue, Model, type Question } from 'survey-core';
import type { Language } from '../shared/languages.ts';
import { isLanguage } from '../shared/languages.ts';
import type { Questionnaire } from '../surveys/questionnaire-registry.ts';
import type { RespondDeps } from './respond.service.ts';

export interface AnswersCopy {
  language: Language;
  submittedAt: Date;
  /** The questionnaire's pages the respondent saw, each with its answered questions in order. */
  pages: Array<{ title: string; questions: Array<{ title: string; answers: string[] }> }>;
}

/**
 * The respondent's own copy of their latest submission: every answered
 * question with its wording and the chosen options' texts, in the language
 * they answered in. Read by the invitation's id only (the current response's
 * _id), so a link shows its own answers and nobody else's.
 */
export async function answersCopy(deps: RespondDeps, questionnaire: Questionnaire, invitationId: unknown): Promise<AnswersCopy | undefined> {
  const response = await deps.models.Response.findById(invitationId, { data: 1, language: 1, submittedAt: 1 }).lean();
  if (!response) return undefined;
  const language: Language = isLanguage(response.language) ? response.language : 'en';
  // A model per copy: copies are rare, and the validators' shared models must not change language under them.
  const model = new Model(questionnaire.json);
  model.locale = language === 'en' ? '' : language;
  model.data = response.data as Record<string, unknown>;
  const pages = model.visiblePages
    .map((page) => ({
      title: page.title,
      questions: page.questions.filter((q) => q.isVisible && !q.isEmpty()).map((q) => ({ title: q.title, answers: answerTexts(q) })),
    }))
    .filter((page) => page.questions.length > 0);
  return { language, submittedAt: response.submittedAt as Date, pages };
}

/** The answer as the respondent saw it: option texts rather than codes, one line per pick or matrix row. */
function answerTexts(question: Question): string[] {
  const q = question as Question & Record<string, any>;
  const value = question.value as unknown;
  const textOf = (items: ItemValue[] | undefined, v: unknown) => String(ItemValue.getTextOrHtmlByValue(items ?? [], v) ?? v);
  if (question.getType() === 'matrix' && value && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).map(([row, column]) => `${textOf(q.rows, row)}: ${textOf(q.columns, column)}`);
  }
  if (Array.isArray(value)) {
    const choices = (q.visibleChoices ?? q.choices) as ItemValue[];
    return value.map((v, index) => (question.getType() === 'ranking' ? `${index + 1}. ${textOf(choices, v)}` : textOf(choices, v)));
  }
  return [String(question.displayValue)];
}
