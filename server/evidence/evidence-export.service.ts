import ExcelJS from 'exceljs';
import { createHmac } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { DONT_KNOW_WITHHELD_NOTE, suppressionNote, WITHHELD_NOTE } from './disclosure.ts';
import { DIMENSION_NAMES, responseMatch, type EvidenceFilter } from './evidence-filter.ts';
import { institutionTagger } from './institution-tag.ts';
import { csvHeader, csvLine, neutraliseFormula, type CsvSeparator } from '../shared/csv.ts';
import type { Quote } from './evidence-quotes.service.ts';
import { indicatorLabel } from './evidence-view.ts';
import type { EvidenceTables, IndicatorRow, QuestionRow } from './indicator.service.ts';
import type { Unit } from './indicators.ts';
import { choiceLabel, type QuestionCatalogue } from './question-catalogue.ts';

/** A cell of an export: text, a number (kept a number in Excel, with its column's number format) or empty. */
export type ExportCell = string | number | null;
export type Table = {
  name: string;
  rows: ExportCell[][];
  /** Lines above the header (what the table is of); the header is the first of `rows`. */
  preamble?: Array<[string, string]>;
  /** Excel number format of a numeric cell by row (0: the first after the header) and column index, e.g. '0.0' for shares in per cent. */
  format?: (row: number, column: number) => string | undefined;
};

const NUMBER_FORMATS: Record<Unit, string> = { percent: '0.0', mean: '0.00', points: '+0.0;-0.0;0.0', eur: '#,##0', number: '0.00' };
const UNIT_WORDS: Record<Unit, string> = { percent: '%', mean: 'mean', points: 'points', eur: 'EUR', number: 'number' };

type GroupOf = { key: string; label: string };
const groupsOf = (tables: EvidenceTables): GroupOf[] => [{ key: '', label: 'Overall' }, ...tables.columns];
const indicatorCell = (row: IndicatorRow, key: string) => (key === '' ? row.overall : row.groups[key]!);
const questionCell = (q: QuestionRow, key: string) => (key === '' ? q.overall : q.groups[key]!);
const round = (value: number | null, digits: number) => (value === null ? null : Number(value.toFixed(digits)));
const digitsOf = (unit: Unit) => (unit === 'mean' || unit === 'number' ? 2 : unit === 'eur' ? 0 : 1);

/**
 * Indicators wide: one row per indicator, a value and an n column per group
 * (the view's overall first). Values are numbers in the indicator's unit;
 * a suppressed cell is empty and the row's note names the groups hidden.
 */
export function indicatorTable(tables: EvidenceTables, rows: IndicatorRow[] = tables.indicators, name = 'Indicators'): Table {
  const groups = groupsOf(tables);
  const note = suppressionNote(tables.thresholds);
  const header = ['Indicator', 'Code', 'Unit', ...groups.flatMap((g) => [g.label, `n (${g.label})`]), 'Overall gap to target (points)', 'Note'];
  const body = rows.map((row) => {
    const cells = groups.map((g) => indicatorCell(row, g.key));
    const hidden = groups.filter((_, i) => cells[i]!.suppressed).map((g) => g.label);
    const withheld = groups.filter((_, i) => { const cell = cells[i]!; return !cell.suppressed && cell.withheld; }).map((g) => g.label);
    const overall = row.overall;
    return [
      indicatorLabel(row),
      row.code,
      UNIT_WORDS[row.unit],
      ...cells.flatMap((cell) => (cell.suppressed ? [null, null] : [round(cell.value, digitsOf(row.unit)), cell.n])),
      overall.suppressed || overall.targetGap === undefined ? null : round(overall.targetGap, 1),
      [hidden.length ? `${note}: ${hidden.join(', ')}` : '', withheld.length ? `value ${WITHHELD_NOTE}: ${withheld.join(', ')}` : ''].filter(Boolean).join('; '),
    ];
  });
  // Value columns are 3, 5, 7…; n columns and the gap have formats of their own.
  const format = (r: number, c: number) => (c === header.length - 2 ? NUMBER_FORMATS.points : c >= 3 && (c - 3) % 2 === 0 ? NUMBER_FORMATS[rows[r]!.unit] : '0');
  return { name, rows: [header, ...body], format };
}

/** Indicators long: one row per indicator and group, ready for a pivot table or a statistics package. */
export function indicatorLongTable(tables: EvidenceTables, rows: IndicatorRow[] = tables.indicators, name = 'Indicators (long)'): Table {
  const note = suppressionNote(tables.thresholds);
  const header = ['Indicator', 'Code', 'Unit', 'Group', 'Value', 'n', 'Band', 'Gap to target (points)', 'Note'];
  const body = rows.flatMap((row) =>
    groupsOf(tables).map((g) => {
      const cell = indicatorCell(row, g.key);
      if (cell.suppressed) return [indicatorLabel(row), row.code, UNIT_WORDS[row.unit], g.label, null, null, '', null, note];
      return [indicatorLabel(row), row.code, UNIT_WORDS[row.unit], g.label, round(cell.value, digitsOf(row.unit)), cell.n, cell.band ?? '', cell.targetGap === undefined ? null : round(cell.targetGap, 1), cell.withheld ? `value ${WITHHELD_NOTE}` : cell.value === null ? 'no data' : ''];
    }),
  );
  const units = rows.flatMap((row) => groupsOf(tables).map(() => row.unit));
  return { name, rows: [header, ...body], format: (r, c) => (c === 4 ? NUMBER_FORMATS[units[r]!] : c === 7 ? NUMBER_FORMATS.points : '0') };
}

/** Per question and group: respondents, valid answers or picks, "don't know", the top-two share and the mean. */
export function questionTable(tables: EvidenceTables): Table {
  const note = suppressionNote(tables.thresholds);
  const header = ['Question', 'Code', 'Group', 'Respondents (n)', 'Valid answers or picks', "Don't know", 'Top two / yes (%)', 'Mean', 'Note'];
  const body = tables.questions.flatMap((q) =>
    groupsOf(tables).map((g) => {
      const cell = questionCell(q, g.key);
      return cell.suppressed
        ? [q.title, q.name, g.label, null, null, null, null, null, note]
        : [q.title, q.name, g.label, cell.respondents, cell.validN, cell.dk, round(cell.topShare, 1), round(cell.mean, 2), [cell.withheld ? WITHHELD_NOTE : '', cell.dk === null ? DONT_KNOW_WITHHELD_NOTE : ''].filter(Boolean).join('; ')];
    }),
  );
  return { name: 'Questions', rows: [header, ...body], format: (_, c) => (c === 6 ? '0.0' : c === 7 ? '0.00' : '0') };
}

/** Every answer category of every question per group: count and share, "don't know" and categories nobody chose included. */
export function distributionTable(tables: EvidenceTables, catalogue: QuestionCatalogue): Table {
  const note = suppressionNote(tables.thresholds);
  const header = ['Question', 'Code', 'Group', 'Row', 'Rank', 'Answer', 'Answer code', 'Count', 'Share (%)', 'Note'];
  const body: ExportCell[][] = [];
  for (const q of tables.questions) {
    const meta = catalogue.byName.get(q.name);
    for (const g of groupsOf(tables)) {
      const cell = questionCell(q, g.key);
      if (cell.suppressed) {
        body.push([q.title, q.name, g.label, '', null, '', '', null, null, note]);
        continue;
      }
      for (const c of cell.counts) body.push([q.title, q.name, g.label, c.row ?? '', c.rank ?? null, choiceLabel(meta, c.value), String(c.value), c.n, round(c.share, 1), c.n === null ? 'suppressed' : '']);
    }
  }
  return { name: 'Distributions', rows: [header, ...body], format: (_, c) => (c === 8 ? '0.0' : '0') };
}

/** The quotes a page shows, as it shows them. */
export function quoteTable(quotes: Quote[], withIdentities: boolean): Table {
  const header = ['Country', 'Strand', 'Question', 'Quote', ...(withIdentities ? ['Institution', 'Review state'] : [])];
  const body = quotes.map((q) => [q.country || 'not shown', q.strand, q.question, q.text, ...(withIdentities ? [q.institution ?? '', q.state] : [])]);
  return { name: 'Quotes', rows: [header, ...body] };
}

export function writeCsv(out: Writable, tablesToWrite: Table[], separator: CsvSeparator = ','): void {
  // The first line carries the byte-order mark, as in every CSV of the platform (csvHeader).
  let first = true;
  const line = (cells: ReadonlyArray<string | number | null | undefined>) => {
    out.write(first ? csvHeader(cells, separator) : csvLine(cells, separator));
    first = false;
  };
  tablesToWrite.forEach((table, index) => {
    if (index > 0) out.write('\r\n');
    for (const cells of table.preamble ?? []) line(cells);
    if (table.preamble?.length) out.write('\r\n');
    line([table.name]);
    for (const row of table.rows) line(row);
  });
  out.end();
}

/**
 * Streams an .xlsx workbook, one sheet per table, rows committed as they are
 * written: what the table is of in its first lines, then the header (bold,
 * frozen) and the rows, numbers as numbers in their column's format.
 */
export async function writeXlsx(out: Writable, tablesToWrite: Table[]): Promise<void> {
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useSharedStrings: false, useStyles: true });
  for (const table of tablesToWrite) {
    const preamble = table.preamble ?? [];
    const headerRow = preamble.length ? preamble.length + 2 : 1;
    const sheet = workbook.addWorksheet(table.name.slice(0, 31), { views: [{ state: 'frozen', ySplit: headerRow }] });
    for (const line of preamble) sheet.addRow(line.map(neutraliseFormula)).commit();
    if (preamble.length) sheet.addRow([]).commit();
    table.rows.forEach((row, index) => {
      const added = sheet.addRow(row.map((cell) => (typeof cell === 'string' ? neutraliseFormula(cell) : cell)));
      if (index === 0) added.font = { bold: true };
      else
        row.forEach((value, column) => {
          const format = typeof value === 'number' ? table.format?.(index - 1, column) : undefined;
          if (format) added.getCell(column + 1).numFmt = format;
        });
      added.commit();
    });
    sheet.commit();
  }
  await workbook.commit();
}

/** The codebook (server/evidence/codebook.ts), exported beside the raw responses. */
export { codebookTable } from './codebook.ts';

interface RawResponseDoc {
  _id: Types.ObjectId;
  campaign: Types.ObjectId;
  /** An anonymous response has its institution's tag instead. */
  institution?: Types.ObjectId;
  institutionTag?: string;
  submittedAt: Date;
  language: string;
  definitionVersion: string;
  profile?: Record<string, string>;
  data?: Record<string, unknown>;
}

/** A stable pseudonym: the same institution always gets the same one, and it cannot be reversed without the key. */
export function pseudonym(key: Buffer, kind: string, id: string): string {
  return `${kind[0]!.toUpperCase()}-${createHmac('sha256', key).update(`evidence-pseudonym:${kind}:${id}`).digest('base64url').slice(0, 12)}`;
}

/**
 * Streams the responses the filter selects as CSV, one line per response, read
 * with a cursor so memory stays flat however many there are. Institutions and
 * responses appear only as HMAC pseudonyms; no contact, invitation or name.
 * An institution's pseudonym is made from its tag in the campaign
 * (institution-tag.ts), the only name an anonymous response keeps of it, so
 * a forgotten respondent's answers show the same institution as before.
 * For the coordinator only (free text is included as written).
 */
export async function writeRawResponsesCsv(
  deps: { models: Pick<Models, 'Response' | 'InstitutionSecret'>; catalogue: QuestionCatalogue; pseudonymKey: Buffer; tagKey: Buffer },
  filter: Pick<EvidenceFilter, 'campaigns' | 'where'>,
  out: Writable,
  separator: CsvSeparator = ',',
): Promise<number> {
  const questions = deps.catalogue.questions;
  const write = (text: string) => (out.write(text) ? Promise.resolve() : new Promise<void>((resolve) => out.once('drain', () => resolve())));
  await write(csvHeader(['response', 'institution', 'campaign', 'submittedAt', 'language', 'definitionVersion', ...DIMENSION_NAMES, ...questions.map((q) => q.name)], separator));
  let count = 0;
  const tagOf = institutionTagger(deps.models, deps.tagKey);
  const cursor = deps.models.Response.find(responseMatch(filter), { campaign: 1, institution: 1, institutionTag: 1, submittedAt: 1, language: 1, definitionVersion: 1, profile: 1, data: 1 })
    .sort({ _id: 1 })
    .lean<RawResponseDoc[]>()
    .cursor({ batchSize: 200 });
  for await (const r of cursor as AsyncIterable<RawResponseDoc>) {
    count += 1;
    const data = r.data ?? {};
    await write(
      csvLine([
        pseudonym(deps.pseudonymKey, 'response', String(r._id)),
        pseudonym(deps.pseudonymKey, 'institution', r.institutionTag ?? (await tagOf(r.campaign, r.institution))),
        String(r.campaign),
        r.submittedAt.toISOString(),
        r.language,
        r.definitionVersion,
        ...DIMENSION_NAMES.map((d) => r.profile?.[d] ?? ''),
        ...questions.map((q) => answerText(data[q.name])),
      ], separator),
    );
  }
  out.end();
  return count;
}

function answerText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map(String).join(';');
  if (typeof value === 'object') return Object.entries(value as Record<string, unknown>).map(([row, column]) => `${row}=${String(column)}`).join(';');
  return String(value);
}
