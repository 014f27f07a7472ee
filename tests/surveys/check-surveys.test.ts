import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Model, Serializer } from 'survey-core';
import { afterEach, describe, expect, it } from 'vitest';
import { checkSurveyDirectory } from '../../scripts/check-surveys.ts';
import {
  DEFAULT_SURVEY_DIR,
  STRANDS,
  assembleQuestionnaire,
  loadSurveyLibrary,
  questionsOf,
  type JsonObject,
} from '../../server/surveys/definitions.ts';
import { SURVEY_CUSTOM_PROPERTIES, registerSurveyProperties } from '../../server/surveys/survey-properties.ts';
import { completeAnswers, type Answers } from '../fixtures/complete-answers.ts';

/** Every item code of the design brief (docs: shared/design/questionnaires.md), as question names. */
const BRIEF_ITEMS: Record<string, string[]> = {
  P: ['P1', 'P2', 'P3', 'P4a', 'P4b', 'P5', 'P6', 'P7', 'P8', 'P9', 'P10a', 'P10b', 'P11'],
  S1: [
    'S1_1', 'S1_2a', 'S1_2b', 'S1_2c', 'S1_2d', 'S1_2e', 'S1_2f', 'S1_2g', 'S1_2h', 'S1_2i', 'S1_2j', 'S1_2k', 'S1_2l',
    'S1_3', 'S1_4', 'S1_5', 'S1_6',
  ],
  S2: ['S2_1', 'S2_2', 'S2_3', 'S2_4', 'S2_5', 'S2_6', 'S2_7', 'S2_8', 'S2_9a', 'S2_9b', 'S2_10a', 'S2_10b', 'S2_10c', 'S2_10d', 'S2_11'],
  S3: ['S3_1', 'S3_2', 'S3_3', 'S3_4', 'S3_5a', 'S3_5b', 'S3_5c', 'S3_5d', 'S3_5e', 'S3_5f', 'S3_6', 'S3_7'],
  S4: [
    'S4_1', 'S4_2', 'S4_3a', 'S4_3b', 'S4_4a', 'S4_4b', 'S4_4c', 'S4_4d', 'S4_4e', 'S4_5', 'S4_6a', 'S4_6b', 'S4_6c', 'S4_6d',
    'S4_7', 'S4_8', 'S4_9', 'S4_10', 'S4_11', 'S4_12a', 'S4_12b', 'S4_12c', 'S4_12d',
  ],
};

const S1 = 's1-preconditions.json';
const S2 = 's2-learner-mobility-quality.json';
const S3 = 's3-roles-competences.json';
const S4 = 's4-management-impact.json';

const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A private copy of surveys/ that a test may break. */
function copyOfSurveys(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'surveys-'));
  tempDirs.push(dir);
  cpSync(DEFAULT_SURVEY_DIR, dir, { recursive: true });
  return dir;
}

/** Rewrites one question of a definition file in place. */
function editQuestion(dir: string, file: string, name: string, edit: (question: JsonObject) => void): void {
  const full = path.join(dir, file);
  const definition = JSON.parse(readFileSync(full, 'utf8')) as JsonObject;
  const question = questionsOf(definition.pages).find((q) => q.name === name);
  if (!question) throw new Error(`${name} is not in ${file}`);
  edit(question);
  writeFileSync(full, JSON.stringify(definition, null, 2));
}

/** Validates answers with survey-core, as the browser does, and returns the errors by question. */
function errorsFor(json: object, answers: Answers, locale = ''): Record<string, string[]> {
  const model = new Model(json);
  model.locale = locale;
  model.data = answers;
  model.validate(true, false);
  const errors: Record<string, string[]> = {};
  for (const question of model.getAllQuestions(true)) {
    if (question.errors.length > 0) errors[question.name] = question.errors.map((e) => e.getText());
  }
  return errors;
}

describe('survey definitions in surveys/', () => {
  it('have no problems', () => {
    expect(checkSurveyDirectory(DEFAULT_SURVEY_DIR)).toEqual([]);
  });

  it('ask every item of the design brief, each in its own strand, and nothing else', () => {
    const library = loadSurveyLibrary();
    const sections = { P: library.profile, ...library.strands };
    for (const [strand, names] of Object.entries(BRIEF_ITEMS)) {
      const questions = questionsOf(sections[strand as keyof typeof sections].pages);
      // S4_5_dk is the "don't know" companion of S4_5, not an item of its own.
      expect(questions.map((q) => q.name).filter((n) => n !== 'S4_5_dk').sort()).toEqual([...names].sort());
      for (const question of questions) expect(question.strand).toBe(strand);
    }
  });

  it('rank exactly three of the twelve barriers in S1_3', () => {
    const s1 = loadSurveyLibrary().strands.S1;
    const ranking = questionsOf(s1.pages).find((q) => q.name === 'S1_3')!;
    expect(ranking).toMatchObject({ type: 'ranking', selectToRankEnabled: true, minSelectedChoices: 3, maxSelectedChoices: 3 });
    expect((ranking.choices as Array<{ value: string }>).map((c) => c.value)).toEqual(BRIEF_ITEMS.S1!.slice(1, 13));
  });
});

describe('checkSurveyDirectory', () => {
  it('reports a question name containing a dot', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S1, 'S1_2a', (q) => (q.name = 'S1.2a'));
    expect(checkSurveyDirectory(dir)).toContain(`${S1}: S1.2a: name must not contain "." or start with "$"`);
  });

  it('reports a localized text without its German version', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S2, 'S2_3', (q) => delete (q.title as JsonObject).de);
    expect(checkSurveyDirectory(dir)).toEqual([`${S2}: S2_3: title has no "de" text`]);
  });

  it('reports a text given as a plain string instead of in three languages', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S1, 'S1_1', (q) => (q.title = 'Have you been abroad?'));
    expect(checkSurveyDirectory(dir)).toEqual([`${S1}: S1_1: title is a plain string; give {"default", "fr", "de"}`]);
  });

  it('reports a choice whose text lacks French', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S3, 'S3_4', (q) => delete ((q.choices as JsonObject[])[1]!.text as JsonObject).fr);
    expect(checkSurveyDirectory(dir)).toEqual([`${S3}: S3_4: choices.1.text has no "fr" text`]);
  });

  it('reports an indicator that indicators.json does not list', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S3, 'S3_7', (q) => (q.indicator = 'capacity_index'));
    expect(checkSurveyDirectory(dir)).toEqual([`${S3}: S3_7: indicator capacity_index is not in indicators.json`]);
  });

  it('reports a question without strand or indicator, or with the strand of another file', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S2, 'S2_1', (q) => delete q.strand);
    editQuestion(dir, S2, 'S2_2', (q) => delete q.indicator);
    editQuestion(dir, S2, 'S2_11', (q) => (q.strand = 'S3'));
    expect(checkSurveyDirectory(dir)).toEqual([
      `${S2}: S2_1: has no strand`,
      `${S2}: S2_2: has no indicator`,
      `${S2}: S2_11: strand S3 does not match the file's strand S2`,
    ]);
  });

  it('reports duplicate names within a file and across files', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S4, 'S4_12b', (q) => (q.name = 'S4_12a'));
    editQuestion(dir, S4, 'S4_11', (q) => (q.name = 'S1_5'));
    const problems = checkSurveyDirectory(dir);
    expect(problems).toContain(`${S4}: S4_12a: duplicate name (also in ${S4})`);
    expect(problems).toContain(`${S4}: S1_5: duplicate name (also in ${S1})`);
  });

  it('reports what survey-core itself rejects: an unknown question type or property', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S1, 'S1_5', (q) => (q.type = 'likert'));
    editQuestion(dir, S1, 'S1_1', (q) => (q.colour = 'blue'));
    const problems = checkSurveyDirectory(dir);
    expect(problems).toContain(`${S1}: SurveyJS: The property type is incorrect in the object. Please take a look at property: 'elements'.`);
    expect(problems).toContain(`${S1}: S1_1: SurveyJS: Unknown property in class 'boolean': 'colour'.`);
  });

  it('reports choice, row and column values the database cannot store as keys', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S1, 'S1_2b', (q) => ((q.choices as JsonObject[])[4]!.value = '$dk'));
    editQuestion(dir, S3, 'S3_6', (q) => {
      (q.rows as JsonObject[])[0]!.value = 'mobility.strategy';
      (q.columns as JsonObject[])[5]!.value = '$nobody';
    });
    expect(checkSurveyDirectory(dir)).toEqual([
      `${S1}: S1_2b: choices value "$dk" must not contain "." or start with "$"`,
      `${S3}: S3_6: rows value "mobility.strategy" must not contain "." or start with "$"`,
      `${S3}: S3_6: columns value "$nobody" must not contain "." or start with "$"`,
    ]);
  });

  it('reports an expression that refers to a question no definition has', () => {
    const dir = copyOfSurveys();
    editQuestion(dir, S2, 'S2_10a', (q) => ((q.validators as JsonObject[])[0]!.expression = '{S2_10a} <= {S2_9}'));
    expect(checkSurveyDirectory(dir)).toEqual([`${S2}: S2_10a: expression "{S2_10a} <= {S2_9}" refers to unknown question S2_9`]);
  });

  it('reports a missing strand file', () => {
    const dir = copyOfSurveys();
    rmSync(path.join(dir, S3));
    expect(checkSurveyDirectory(dir)).toEqual([`${path.basename(dir)}: no definition for strand S3`]);
  });
});

describe('assembleQuestionnaire', () => {
  it('puts the profile first and the chosen strands in S1…S4 order', () => {
    const { json, questions } = assembleQuestionnaire(loadSurveyLibrary(), ['S3', 'S1']);
    const strands = [...new Set(questions.map((q) => q.strand))];
    expect(strands).toEqual(['P', 'S1', 'S3']);
    // The page draws its own counter over every page (respond.js), not survey-core's.
    expect(json).toMatchObject({ showProgressBar: false, showQuestionNumbers: 'off' });
    expect(questions.find((q) => q.name === 'S3_6')).toEqual({ name: 'S3_6', strand: 'S3', indicator: 'role_distribution', type: 'matrix' });
  });

  it('gives the same version for the same definitions, whatever order the strands are asked in', () => {
    const first = assembleQuestionnaire(loadSurveyLibrary(), ['S1', 'S2']);
    const second = assembleQuestionnaire(loadSurveyLibrary(), ['S2', 'S1']);
    expect(second.version).toBe(first.version);
    expect(first.version).toMatch(/^[0-9a-f]{16}$/);
    expect(assembleQuestionnaire(loadSurveyLibrary(), ['S1']).version).not.toBe(first.version);
  });

  it('changes the version when a definition changes', () => {
    const dir = copyOfSurveys();
    const before = assembleQuestionnaire(loadSurveyLibrary(dir), [...STRANDS]).version;
    editQuestion(dir, S4, 'S4_11', (q) => (q.max = 5000));
    const after = assembleQuestionnaire(loadSurveyLibrary(dir), [...STRANDS]).version;
    expect(after).not.toBe(before);
  });

  it('rejects an unknown strand', () => {
    expect(() => assembleQuestionnaire(loadSurveyLibrary(), ['S5' as never])).toThrow('unknown strand: S5');
  });
});

describe('validation of answers by survey-core', () => {
  const { json } = assembleQuestionnaire(loadSurveyLibrary(), [...STRANDS]);

  it('accepts the complete answers to every strand', () => {
    expect(errorsFor(json, completeAnswers())).toEqual({});
    const model = new Model(json);
    model.data = completeAnswers();
    const visible = model.getAllQuestions(true).map((q) => q.name);
    expect(visible).toEqual(expect.arrayContaining(Object.keys(completeAnswers())));
  });

  it('refuses funding shares that do not add up to 100', () => {
    const errors = errorsFor(json, completeAnswers({ S4_6b: 50, S4_6c: 30, S4_6d: 30 }));
    expect(errors).toEqual({ S4_6d: ['The three shares must add up to 100%.'] });
    expect(errorsFor(json, completeAnswers({ S4_6b: 100, S4_6c: undefined, S4_6d: undefined }))).toEqual({});
  });

  it('refuses more long-stay learners than outgoing learners, in the respondent’s language', () => {
    const answers = completeAnswers({ S2_10a: 60 });
    expect(errorsFor(json, answers)).toEqual({ S2_10a: ['This cannot be more than the number of outgoing learners.'] });
    expect(errorsFor(json, answers, 'de')).toEqual({
      S2_10a: ['Diese Zahl darf nicht größer sein als die Zahl der ins Ausland entsandten Lernenden.'],
    });
  });

  it('refuses a ranking of fewer than three barriers and numbers out of range', () => {
    const errors = errorsFor(json, completeAnswers({ S1_3: ['S1_2a', 'S1_2c'], S4_5: 120, S4_3a: 60 }));
    expect(Object.keys(errors).sort()).toEqual(['S1_3', 'S4_3a', 'S4_5']);
  });

  it('shows S2 only to organisers of learner mobility and S4 only to heads and international coordinators', () => {
    const model = new Model(json);
    model.data = completeAnswers({ P9: 'vocational_teacher', P11: false });
    const visible = new Set(model.getAllQuestions(true).map((q) => q.name));
    expect(visible.has('S1_1')).toBe(true);
    expect(visible.has('S3_6')).toBe(true);
    expect(visible.has('S2_1')).toBe(false);
    expect(visible.has('S4_1')).toBe(false);
    model.data = completeAnswers({ P9: 'intl_coordinator', S4_5_dk: ['dk'] });
    expect(model.getQuestionByName('S4_1').isVisible && model.getQuestionByName('S4_1').page.isVisible).toBe(true);
    expect(model.getQuestionByName('S4_5').isVisible).toBe(false);
  });
});

describe('registerSurveyProperties', () => {
  it('can be called again without adding the properties twice', () => {
    registerSurveyProperties(Serializer);
    registerSurveyProperties(Serializer);
    for (const { name } of SURVEY_CUSTOM_PROPERTIES) {
      expect(Serializer.getProperties('question').filter((p) => p.name === name)).toHaveLength(1);
    }
  });
});
