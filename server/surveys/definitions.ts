import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Model, Serializer } from 'survey-core';
// Side-effect imports: they register survey-core's own French and German UI texts
// (buttons, built-in error messages) so server-side validation speaks the respondent's language.
import 'survey-core/i18n/french';
import 'survey-core/i18n/german';
import { registerSurveyProperties } from './survey-properties.ts';

registerSurveyProperties(Serializer);

export const STRANDS = ['S1', 'S2', 'S3', 'S4'] as const;
export type StrandCode = (typeof STRANDS)[number];
/** The profile section (P) or one of the strands. */
export type SectionCode = 'P' | StrandCode;
export const SECTIONS: readonly SectionCode[] = ['P', ...STRANDS];

export const DEFAULT_SURVEY_DIR = fileURLToPath(new URL('../../surveys/', import.meta.url));
export const INDICATORS_FILE = 'indicators.json';
/** Keys of a definition file that frame the SurveyJS JSON and are not part of it. */
export const ENVELOPE_KEYS = ['strand', 'questionnaire'] as const;

export type JsonObject = Record<string, unknown>;

export interface LocalizedText {
  default: string;
  fr: string;
  de: string;
}

export interface Indicator {
  code: string;
  label: LocalizedText;
}

/** One file of surveys/: the pages of one section, as SurveyJS JSON, plus its strand. */
export interface SurveyDefinition {
  file: string;
  strand: SectionCode;
  title: LocalizedText;
  /** Only in profile.json: the title and introduction of every assembled questionnaire. */
  questionnaire?: { title: LocalizedText; description?: LocalizedText };
  pages: JsonObject[];
}

export interface SurveyLibrary {
  dir: string;
  profile: SurveyDefinition;
  strands: Record<StrandCode, SurveyDefinition>;
  indicators: Indicator[];
}

export interface QuestionInfo {
  name: string;
  strand: SectionCode;
  indicator: string;
  /** SurveyJS question type: text, radiogroup, checkbox, ranking, matrix, … */
  type: string;
}

export interface AssembledQuestionnaire {
  json: JsonObject;
  /** Content hash of json: the same definitions always give the same version. */
  version: string;
  questions: QuestionInfo[];
}

/** The definition files of a directory (every .json except the indicator list), sorted by name. */
export function definitionFileNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json') && file !== INDICATORS_FILE)
    .sort();
}

/** The SurveyJS part of a definition file: everything but the envelope keys. */
export function surveyJsonOf(definition: JsonObject): JsonObject {
  const json: JsonObject = { ...definition };
  for (const key of ENVELOPE_KEYS) delete json[key];
  return json;
}

/** Every question of some pages or panels, in order, looking inside panels. */
export function questionsOf(elements: unknown): JsonObject[] {
  const found: JsonObject[] = [];
  const visit = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const element of list) {
      if (!isObject(element)) continue;
      if (Array.isArray(element.elements)) visit(element.elements);
      else if (element.type !== 'panel') found.push(element);
    }
  };
  visit(elements);
  return found;
}

/**
 * Reads the profile, the four strand definitions and the indicator list from
 * `dir`, once and synchronously. Throws when a section is missing or given twice;
 * the finer checks are `npm run check:surveys`'s.
 */
export function loadSurveyLibrary(dir: string = DEFAULT_SURVEY_DIR): SurveyLibrary {
  const bySection = new Map<SectionCode, SurveyDefinition>();
  for (const file of definitionFileNames(dir)) {
    const raw = readJson(path.join(dir, file));
    if (!isObject(raw) || !SECTIONS.includes(raw.strand as SectionCode) || !Array.isArray(raw.pages)) {
      throw new Error(`${file}: not a survey definition (needs "strand" among ${SECTIONS.join(', ')} and "pages")`);
    }
    const strand = raw.strand as SectionCode;
    const previous = bySection.get(strand);
    if (previous) throw new Error(`${file}: strand ${strand} is already defined in ${previous.file}`);
    bySection.set(strand, { ...(raw as unknown as SurveyDefinition), file });
  }
  const missing = SECTIONS.filter((section) => !bySection.has(section));
  if (missing.length > 0) throw new Error(`${dir}: no definition for ${missing.join(', ')}`);

  const indicators = readJson(path.join(dir, INDICATORS_FILE));
  if (!Array.isArray(indicators)) throw new Error(`${INDICATORS_FILE}: expected an array of indicators`);

  const strands = Object.fromEntries(STRANDS.map((s) => [s, bySection.get(s)!])) as Record<StrandCode, SurveyDefinition>;
  return { dir, profile: bySection.get('P')!, strands, indicators: indicators as Indicator[] };
}

/**
 * Builds one questionnaire: the profile pages followed by the pages of the chosen
 * strands, always in S1…S4 order, whatever order they are asked in.
 */
export function assembleQuestionnaire(library: SurveyLibrary, strands: readonly StrandCode[]): AssembledQuestionnaire {
  for (const strand of strands) {
    if (!STRANDS.includes(strand)) throw new Error(`unknown strand: ${String(strand)}`);
  }
  const chosen = STRANDS.filter((strand) => strands.includes(strand));
  const sections = [library.profile, ...chosen.map((strand) => library.strands[strand])];
  const intro = library.profile.questionnaire;

  // A deep copy, so no caller can alter the library through the result.
  const json: JsonObject = structuredClone({
    ...(intro ? { title: intro.title } : {}),
    ...(intro?.description ? { description: intro.description } : {}),
    // The page draws its own counter over every page of the questionnaire
    // (respond.js): survey-core's counts only the pages shown so far, so its
    // total grew as visibleIf pages appeared ("3 of 8", then "4 of 13").
    showProgressBar: false,
    showQuestionNumbers: 'off',
    checkErrorsMode: 'onNextPage',
    pages: sections.flatMap((section) => section.pages),
  });

  const jsonErrors = new Model(json).jsonErrors ?? [];
  if (jsonErrors.length > 0) {
    throw new Error(`assembled questionnaire is not valid SurveyJS JSON: ${jsonErrors.map((e) => e.message).join('; ')}`);
  }

  const questions = questionsOf(json.pages).map((q) => ({
    name: String(q.name),
    strand: q.strand as SectionCode,
    indicator: String(q.indicator),
    type: String(q.type),
  }));
  const version = createHash('sha256').update(canonicalJson(json)).digest('hex').slice(0, 16);
  return { json, version, questions };
}

/** JSON with object keys sorted at every level, so equal content always serialises equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isObject(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v,
  );
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${path.basename(file)}: ${(error as Error).message}`);
  }
}
