import { AnswerValidator } from '../respond/answer-validator.ts';
import { assembleQuestionnaire, loadSurveyLibrary, STRANDS, type LocalizedText, type StrandCode, type SurveyLibrary } from './definitions.ts';

export interface Questionnaire {
  /** SurveyJS JSON: the profile section followed by the chosen strands. */
  json: object;
  /** Content hash of json; every stored response records it. */
  version: string;
  validator: AnswerValidator;
  /** The profile and each chosen strand, in order, with its title and page names: the page counter names the section. */
  sections: Array<{ title: LocalizedText; pages: string[] }>;
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
        sections: [this.library.profile, ...STRANDS.filter((s) => strands.includes(s)).map((s) => this.library.strands[s])].map((section) => ({
          title: section.title,
          pages: section.pages.map((page) => String((page as { name?: unknown }).name)),
        })),
      };
      this.built.set(key, questionnaire);
    }
    return questionnaire;
  }
}
