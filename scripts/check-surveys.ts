/**
 * Checks the survey definitions before they reach a respondent:
 *   npx tsx scripts/check-surveys.ts [dir]     (default: surveys/)
 * Prints one line per problem, naming the file and the question, and exits 1;
 * prints a summary and exits 0 when there is none.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Model } from 'survey-core';
import {
  DEFAULT_SURVEY_DIR,
  INDICATORS_FILE,
  SECTIONS,
  definitionFileNames,
  isObject,
  questionsOf,
  surveyJsonOf,
  type JsonObject,
  type SectionCode,
} from '../server/surveys/definitions.ts';

const LANGUAGES = ['default', 'fr', 'de'] as const;
/** Properties whose value is shown to a respondent, so must exist in every language. */
const LOCALIZABLE_KEYS = new Set([
  'title', 'description', 'text', 'html', 'label', 'placeholder',
  'requiredErrorText', 'minErrorText', 'maxErrorText', 'otherErrorText',
  'labelTrue', 'labelFalse', 'otherText', 'noneText', 'dontKnowText', 'refuseText', 'selectAllText',
  'minRateDescription', 'maxRateDescription', 'completedHtml', 'completedBeforeHtml', 'loadingHtml',
]);
/** Lists of items a respondent picks from: each needs a value and a localized text. */
const ITEM_LIST_KEYS = ['choices', 'rows', 'columns', 'rateValues'] as const;
const EXPRESSION_KEYS = new Set(['visibleIf', 'enableIf', 'requiredIf', 'expression', 'choicesVisibleIf', 'choicesEnableIf']);
const INDICATOR_CODE = /^[a-z][a-z0-9_]*$/;

interface Source {
  file: string;
  questions: JsonObject[];
  expressions: Array<{ where: string; expression: string }>;
}

/** Returns every problem found in the definitions of `dir`; none means the directory is fit to serve. */
export function checkSurveyDirectory(dir: string): string[] {
  const problems: string[] = [];
  const report = (file: string, where: string | undefined, message: string) =>
    problems.push(where ? `${file}: ${where}: ${message}` : `${file}: ${message}`);

  const indicatorCodes = checkIndicators(dir, report);

  const sources: Source[] = [];
  const strandFile = new Map<string, string>();
  const elementFile = new Map<string, string>();
  let files: string[] = [];
  try {
    files = definitionFileNames(dir);
  } catch (error) {
    report(dir, undefined, `cannot read the directory: ${(error as Error).message}`);
  }

  for (const file of files) {
    const raw = parseFile(dir, file, report);
    if (raw === undefined) continue;
    if (!isObject(raw)) {
      report(file, undefined, 'is not a JSON object');
      continue;
    }
    const strand = raw.strand as SectionCode;
    if (!SECTIONS.includes(strand)) {
      report(file, undefined, `"strand" must be one of ${SECTIONS.join(', ')}, not ${JSON.stringify(raw.strand)}`);
    } else if (strandFile.has(strand)) {
      report(file, undefined, `strand ${strand} is already defined in ${strandFile.get(strand)}`);
    } else {
      strandFile.set(strand, file);
    }

    checkLocalized(raw, file, '(survey)', [], report);

    const model = new Model(surveyJsonOf(raw));
    for (const error of model.jsonErrors ?? []) {
      const element = (error as { element?: { name?: unknown } }).element;
      const name = typeof element?.name === 'string' && element.name ? element.name : undefined;
      report(file, name, `SurveyJS: ${error.message}`);
    }

    for (const element of elementsOf(raw.pages)) {
      const name = element.name;
      if (typeof name !== 'string' || name === '') continue;
      const first = elementFile.get(name);
      if (first) report(file, name, `duplicate name (also in ${first})`);
      else elementFile.set(name, file);
    }

    const questions = questionsOf(raw.pages);
    for (const question of questions) checkQuestion(question, file, strand, indicatorCodes, report);
    sources.push({ file, questions, expressions: expressionsOf(raw) });
  }

  for (const section of SECTIONS) {
    if (!strandFile.has(section)) report(path.basename(dir), undefined, `no definition for strand ${section}`);
  }

  // Expressions may refer to questions of other files (S2 to P11, S4 to P9): check them once all names are known.
  const questionNames = new Set(sources.flatMap((s) => s.questions.map((q) => String(q.name))));
  for (const source of sources) {
    for (const { where, expression } of source.expressions) {
      for (const [, reference] of expression.matchAll(/\{([^{}]+)\}/g)) {
        const name = reference!.trim().split(/[.[]/)[0]!;
        if (!questionNames.has(name)) report(source.file, where, `expression "${expression}" refers to unknown question ${name}`);
      }
    }
  }
  return problems;
}

type Report = (file: string, where: string | undefined, message: string) => void;

function checkIndicators(dir: string, report: Report): Set<string> {
  const codes = new Set<string>();
  const raw = parseFile(dir, INDICATORS_FILE, report);
  if (raw === undefined) return codes;
  if (!Array.isArray(raw)) {
    report(INDICATORS_FILE, undefined, 'must be an array of {code, label}');
    return codes;
  }
  for (const entry of raw) {
    const code = isObject(entry) ? entry.code : undefined;
    if (typeof code !== 'string' || !INDICATOR_CODE.test(code)) {
      report(INDICATORS_FILE, undefined, `indicator code ${JSON.stringify(code)} is not snake_case`);
      continue;
    }
    if (codes.has(code)) report(INDICATORS_FILE, code, 'duplicate indicator code');
    codes.add(code);
    if (!isObject(entry) || !('label' in entry)) report(INDICATORS_FILE, code, 'has no label');
    checkLocalized(entry, INDICATORS_FILE, code, [], report);
  }
  return codes;
}

function checkQuestion(question: JsonObject, file: string, strand: SectionCode, indicators: Set<string>, report: Report) {
  const name = typeof question.name === 'string' ? question.name : '';
  const where = name || `unnamed ${String(question.type)} question`;
  if (!name) report(file, where, 'has no name');
  else if (!isStorableKey(name)) report(file, where, 'name must not contain "." or start with "$"');

  if (typeof question.strand !== 'string' || question.strand === '') report(file, where, 'has no strand');
  else if (question.strand !== strand) report(file, where, `strand ${question.strand} does not match the file's strand ${strand}`);

  if (typeof question.indicator !== 'string' || question.indicator === '') report(file, where, 'has no indicator');
  else if (!indicators.has(question.indicator)) report(file, where, `indicator ${question.indicator} is not in ${INDICATORS_FILE}`);

  for (const key of ITEM_LIST_KEYS) {
    const items = question[key];
    if (!Array.isArray(items)) continue;
    for (const item of items) {
      const value = isObject(item) ? item.value : item;
      if (value === undefined || value === null || value === '') report(file, where, `${key} has an item without a value`);
      else if (!isStorableKey(String(value))) report(file, where, `${key} value ${JSON.stringify(value)} must not contain "." or start with "$"`);
      if (!isObject(item) || item.text === undefined) report(file, where, `${key} value ${JSON.stringify(value)} has no text`);
    }
  }
}

/**
 * Walks the raw JSON: an object with a "default" key is a localized string and
 * needs French and German too; a shown property holding a plain string was not
 * translated at all. Problems name the nearest named element and the key path
 * below it, e.g. "S1_2a: choices.4.text has no "de" text".
 */
function checkLocalized(node: unknown, file: string, owner: string, keys: string[], report: Report): void {
  if (Array.isArray(node)) {
    node.forEach((child, index) => checkLocalized(child, file, owner, [...keys, String(index)], report));
    return;
  }
  if (!isObject(node)) return;
  if (typeof node.name === 'string' && node.name) {
    owner = node.name;
    keys = [];
  }
  if ('default' in node) {
    for (const language of LANGUAGES) {
      const text = node[language];
      if (typeof text !== 'string' || text.trim() === '') report(file, owner, `${keys.join('.')} has no "${language}" text`);
    }
    return;
  }
  for (const [key, value] of Object.entries(node)) {
    if (LOCALIZABLE_KEYS.has(key) && typeof value === 'string') {
      report(file, owner, `${[...keys, key].join('.')} is a plain string; give {"default", "fr", "de"}`);
    }
    checkLocalized(value, file, owner, [...keys, key], report);
  }
}

function expressionsOf(node: unknown, owner = '(survey)'): Array<{ where: string; expression: string }> {
  if (Array.isArray(node)) return node.flatMap((child) => expressionsOf(child, owner));
  if (!isObject(node)) return [];
  const here = typeof node.name === 'string' && node.name ? node.name : owner;
  return Object.entries(node).flatMap(([key, value]) =>
    EXPRESSION_KEYS.has(key) && typeof value === 'string' ? [{ where: here, expression: value }] : expressionsOf(value, here),
  );
}

/** Pages, panels and questions: every element whose name must be unique in an assembled questionnaire. */
function elementsOf(pages: unknown): JsonObject[] {
  const found: JsonObject[] = [];
  const visit = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const element of list) {
      if (!isObject(element)) continue;
      found.push(element);
      visit(element.elements);
    }
  };
  visit(pages);
  return found;
}

/** MongoDB (and FerretDB) cannot store keys that contain a dot or start with "$". */
function isStorableKey(key: string): boolean {
  return !key.includes('.') && !key.startsWith('$');
}

function parseFile(dir: string, file: string, report: Report): unknown {
  try {
    return JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  } catch (error) {
    report(file, undefined, (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `is not valid JSON: ${(error as Error).message}`);
    return undefined;
  }
}

function summary(dir: string): string {
  const lines = [`${path.relative(process.cwd(), dir) || dir}: no problems`];
  const counts: string[] = [];
  let total = 0;
  for (const file of definitionFileNames(dir)) {
    const raw = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as JsonObject;
    const questions = questionsOf(raw.pages).length;
    total += questions;
    counts.push(`${String(raw.strand)} ${questions} (${file})`);
  }
  const indicators = (JSON.parse(readFileSync(path.join(dir, INDICATORS_FILE), 'utf8')) as unknown[]).length;
  lines.push(`  ${counts.length} definitions, ${total} questions: ${counts.join(', ')}`);
  lines.push(`  ${indicators} indicators; languages: en (default), fr, de`);
  return lines.join('\n');
}

function main(): void {
  const dir = path.resolve(process.argv[2] ?? DEFAULT_SURVEY_DIR);
  const problems = checkSurveyDirectory(dir);
  if (problems.length > 0) {
    for (const problem of problems) console.error(problem);
    console.error(`${problems.length} problem(s) in ${dir}`);
    process.exit(1);
  }
  console.log(summary(dir));
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
