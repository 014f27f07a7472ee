import { z } from 'zod';
import { HttpError } from './http-error.ts';

/** The field separator of a CSV export: `,`, or `;` for spreadsheets of locales whose decimal mark is a comma. */
export type CsvSeparator = ',' | ';';

const separatorQuery = z.object({ separator: z.enum(['comma', 'semicolon']).optional() });

/** Reads `?separator=semicolon` (default comma); anything else is a 400 that says what to write. */
export function separatorOf(query: unknown): CsvSeparator {
  const parsed = separatorQuery.safeParse(query);
  if (!parsed.success) throw new HttpError(400, 'The separator must be "comma" or "semicolon".');
  return parsed.data.separator === 'semicolon' ? ';' : ',';
}

/**
 * Spreadsheet formula injection (OWASP; ASVS 5 1.2.10): a cell whose first
 * character is = + - @, a tab, a carriage return or NUL is run as a formula
 * (or starts one) by Excel and LibreOffice; so is one where spaces come first
 * and a spreadsheet trims them. Such a cell gets a leading apostrophe and stays text.
 */
export function neutraliseFormula(text: string): string {
  return /^(?:[\t\r\0]| *[=+\-@])/.test(text) ? `'${text}` : text;
}

/** A byte-order mark lets spreadsheet programs read the UTF-8 (accents, €) correctly. */
export const CSV_BOM = '\uFEFF';

/** The first line of every CSV the platform writes: the byte-order mark, then the header (or whatever line comes first). */
export function csvHeader(cells: ReadonlyArray<string | number | null | undefined>, separator: CsvSeparator = ','): string {
  return CSV_BOM + csvLine(cells, separator);
}

/**
 * One CSV line: every text cell neutralised, quoted when it holds the
 * separator, a quote or a line break (so a reader never splits it into a cell
 * that would start a formula), CRLF-terminated (RFC 4180).
 */
export function csvLine(cells: ReadonlyArray<string | number | null | undefined>, separator: CsvSeparator = ','): string {
  const mustQuote = separator === ';' ? /[";\r\n]/ : /[",\r\n]/;
  return (
    cells
      .map((cell) => {
        const text = typeof cell === 'number' ? String(cell) : neutraliseFormula(cell ?? '');
        return mustQuote.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
      })
      .join(separator) + '\r\n'
  );
}
