import { suppressionNote, WITHHELD_CELL, WITHHELD_NOTE, type Cell, type Thresholds } from './disclosure.ts';
import type { IndicatorFigures, IndicatorRow } from './indicator.service.ts';
import type { Unit } from './indicators.ts';
import type { Language } from '../shared/languages.ts';
import { reportText, reportValue } from './report-text.ts';

/** How a published figure reads in a page, a chart's table and an export: the same text everywhere. */
export function formatValue(value: number | null, unit: Unit): string {
  if (value === null) return 'no data';
  switch (unit) {
    case 'percent':
      return `${value.toFixed(1)}%`;
    case 'mean':
      return value.toFixed(2);
    case 'points':
      // A real minus sign: the text never starts with "-", which spreadsheets read as a formula.
      return `${value >= 0 ? '+' : '\u2212'}${Math.abs(value).toFixed(1)} points`;
    case 'eur':
      return `${Math.round(value).toLocaleString('en-GB')} EUR`;
    default:
      return value.toFixed(2);
  }
}

export interface FormattedCell {
  text: string;
  suppressed: boolean;
  n?: number;
  band?: string;
  /** A CSS class for colour bands: band-excellent, band-very-good, … */
  bandClass?: string;
  /** Why the value is withheld, for the cell's title (the table's note says it too). */
  title?: string;
}

/** A cell as a page shows it; in another language than English only the report does (report-text.ts). */
export function formatCell(row: Pick<IndicatorRow, 'unit'>, cell: Cell<IndicatorFigures>, thresholds: Thresholds, language: Language = 'en'): FormattedCell {
  if (language !== 'en') return formatCellIn(row, cell, thresholds, language);
  if (cell.suppressed) return { text: suppressionNote(thresholds), suppressed: true };
  if (cell.withheld) return { text: WITHHELD_CELL, suppressed: false, n: cell.n, title: WITHHELD_NOTE };
  const gap = cell.targetGap === undefined ? '' : ` (${formatValue(cell.targetGap, 'points')} against the target)`;
  const text = formatValue(cell.value, row.unit) + (cell.band ? ` (${cell.band})` : '') + gap;
  return { text, suppressed: false, n: cell.n, ...(cell.band ? { band: cell.band, bandClass: `band-${cell.band.replace(/ /g, '-')}` } : {}) };
}

function formatCellIn(row: Pick<IndicatorRow, 'unit'>, cell: Cell<IndicatorFigures>, thresholds: Thresholds, language: Language): FormattedCell {
  const t = reportText(language);
  if (cell.suppressed) return { text: t.suppressed(thresholds), suppressed: true };
  if (cell.withheld) return { text: t.suppressed(thresholds), suppressed: false, n: cell.n };
  const gap = cell.targetGap === undefined ? '' : ` (${reportValue(cell.targetGap, 'points', language)} ${t.againstTarget})`;
  const text = reportValue(cell.value, row.unit, language) + (cell.band ? ` (${t.bands[cell.band]})` : '') + gap;
  return { text, suppressed: false, n: cell.n, ...(cell.band ? { band: cell.band, bandClass: `band-${cell.band.replace(/ /g, '-')}` } : {}) };
}
