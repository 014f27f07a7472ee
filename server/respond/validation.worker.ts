import type { Language } from '../shared/languages.ts';
import { QuestionnaireRegistry } from '../surveys/questionnaire-registry.ts';
import type { AnswerValidation } from './answer-validator.ts';

const questionnaires = new QuestionnaireRegistry();

/** Runs in a validation thread: the same validator the process would run, on this thread's own models. */
export function validateSubmission(task: { strands: string[]; data: unknown; language: Language }): AnswerValidation {
  return questionnaires.forStrands(task.strands).validator.validate(task.data, task.language);
}
