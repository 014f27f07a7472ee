import ExcelJS from 'exceljs';
import { createHmac } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { suppressionNote } from './disclosure.ts';
import { DIMENSION_NAMES, responseMatch, type EvidenceFilter } from './evidence-filter.ts';
import { csvLine, neutraliseFormula, type CsvSeparator } from '../shared/csv.ts';
import { formatCell } from './evidence-format.ts';
import type { EvidenceTables } from './indicator.service.ts';
import type { QuestionCatalogue } from './question-catalogue.ts';

export type Table = { name: string; rows: string[][] };

/** The indicator table exactly as the pages show it: the same texts, suppressed cells saying so. */
export function indicatorTable(tables: EvidenceTables): Table {
  const header = ['Indicator', 'Code', 'Overall', 'n (overall)', ...tables.columns.flatMap((c) => [c.label, `n (${c.label})`])];
  const rows = tables.indicators.map((row) => {
    const cells = [row.overall, ...tables.columns.map((c) => row.groups[c.key]!)].map((cell) => formatCell(row, cell, tables.thresholds));
    return [row.label, row.code, ...cells.flatMap((c) => [c.text, c.n === undefined ? '' : String(c.n)])];
  });
  return { name: 'Indicators', rows: [header, ...rows] };
}

/** Per question: valid answers, "don't know", the top-two share and the mean, overall and per group. */
export function questionTable(tables: EvidenceTables): Table {
  const note = suppressionNote(tables.thresholds);
  const columns = [{ key: '', label: 'Overall' }, ...tables.columns];
  const header = ['Question', 'Code', ...columns.flatMap((c) => [`${c.label}: respondents (n)`, `${c.label}: valid answers or picks`, `${c.label}: don't know`, `${c.label}: top two / yes (%)`, `${c.label}: mean`])];
  const rows = tables.questions.map((q) => {
    const cells = columns.map((c) => (c.key === '' ? q.overall : q.groups[c.key]!));
    return [
      q.title,
      q.name,
      ...cells.flatMap((cell) =>
        cell.suppressed
          ? [note, note, note, note, note]
          : [String(cell.respondents), String(cell.validN), String(cell.dk), cell.topShare === null ? '' : cell.topShare.toFixed(1), cell.mean === null ? '' : cell.mean.toFixed(2)],
      ),
    ];
  });
  return { name: 'Questions', rows: [header, ...rows] };
}

export function writeCsv(out: Writable, tablesToWrite: Table[], separator: CsvSeparator = ','): void {
  // A byte-order mark lets spreadsheet programs read the UTF-8 (accents, €) correctly.
  out.write('\ufeff');
  tablesToWrite.forEach((table, index) => {
    if (index > 0) out.write('\r\n');
    out.write(csvLine([table.name], separator));
    for (const row of table.rows) out.write(csvLine(row, separator));
  });
  out.end();
}

/** Streams an .xlsx workbook, one sheet per table, rows committed as they are written. */
export async function writeXlsx(out: Writable, tablesToWrite: Table[]): Promise<void> {
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useSharedStrings: false, useStyles: false });
  for (const table of tablesToWrite) {
    const sheet = workbook.addWorksheet(table.name);
    for (const row of table.rows) sheet.addRow(row.map(neutraliseFormula)).commit();
    sheet.commit();
  }
  await workbook.commit();
}

/** The codebook (server/evidence/codebook.ts), exported beside the raw responses. */
export { codebookTable } from './codebook.ts';

interface RawResponseDoc {
  _id: Types.ObjectId;
  campaign: Types.ObjectId;
  institution: Types.ObjectId;
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
 * For the coordinator only (free text is included as written).
 */
export async function writeRawResponsesCsv(
  deps: { models: Pick<Models, 'Response'>; catalogue: QuestionCatalogue; pseudonymKey: Buffer },
  filter: Pick<EvidenceFilter, 'campaigns' | 'where'>,
  out: Writable,
  separator: CsvSeparator = ',',
): Promise<number> {
  const questions = deps.catalogue.questions;
  const write = (text: string) => (out.write(text) ? Promise.resolve() : new Promise<void>((resolve) => out.once('drain', () => resolve())));
  await write('\ufeff' + csvLine(['response', 'institution', 'campaign', 'submittedAt', 'language', 'definitionVersion', ...DIMENSION_NAMES, ...questions.map((q) => q.name)], separator));
  let count = 0;
  const cursor = deps.models.Response.find(responseMatch(filter), { campaign: 1, institution: 1, submittedAt: 1, language: 1, definitionVersion: 1, profile: 1, data: 1 })
    .sort({ _id: 1 })
    .lean<RawResponseDoc[]>()
    .cursor({ batchSize: 200 });
  for await (const r of cursor as AsyncIterable<RawResponseDoc>) {
    count += 1;
    const data = r.data ?? {};
    await write(
      csvLine([
        pseudonym(deps.pseudonymKey, 'response', String(r._id)),
        pseudonym(deps.pseudonymKey, 'institution', String(r.institution)),
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
