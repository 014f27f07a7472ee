import { AnswerValidator } from '../respond/answer-validator.ts';
import { assembleQuestionnaire, loadSurveyLibrary, type StrandCode, type SurveyLibrary } from './definitions.ts';

export interface Questionnaire {
  /** SurveyJS JSON: the profile section followed by the chosen strands. */
  json: object;
  /** Content hash of json; every stored response records it. */
  version: string;
  validator: AnswerValidator;
}

/**
 * Builds each campaign's questionnaire (one per set of strands) once and keeps it,
 * with its validator, for the life of the process.
 */
export class QuestionnaireRegistry {
  private readonly built = new Map<string, Questionnaire>();

  constructor(private readonly library: SurveyLibrary = loadSurveyLibrary()) {}

  forStrands(strands: readonly string[]): Questionnaire {
    const key = [...strands].sort().join(',');
    let questionnaire = this.built.get(key);
    if (!questionnaire) {
      const assembled = assembleQuestionnaire(this.library, [...strands].sort() as StrandCode[]);
      questionnaire = {
        json: assembled.json,
        version: assembled.version,
        validator: new AnswerValidator(assembled.json, assembled.questions),
      };
      this.built.set(key, questionnaire);
    }
    return questionnaire;
  }
}
