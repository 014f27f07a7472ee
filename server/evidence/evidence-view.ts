import { SUPPRESSED_COUNT, suppressionNote, type Cell } from './disclosure.ts';
import { formatCell, type FormattedCell } from './evidence-format.ts';
import type { EvidenceTables, IndicatorRow, QuestionRow } from './indicator.service.ts';
import { isPicks, shareBase, type Distribution } from './indicators.ts';
import { choiceLabel, DONT_KNOW, type QuestionCatalogue, type QuestionMeta } from './question-catalogue.ts';
import { DIMENSIONS } from './evidence-filter.ts';
import { groupValues, NOT_STATED } from './evidence-tally.ts';
import type { Language } from '../shared/languages.ts';
import { localText, reportIndicatorLabel, reportText } from './report-text.ts';

/**
 * How the evidence pages lay out the published tables: groups of a breakdown
 * are rows, one chosen set of indicators (or one question) is the column set,
 * so a table grows downwards with the number of groups, never sideways.
 * Nothing here decides what is published: it only arranges EvidenceTables.
 */

/** The indicator sets a reader chooses between on a page with a breakdown. */
export const INDICATOR_SETS = [
  { code: 'headline', label: 'Headline indicators' },
  { code: 'barrier_index', label: 'S1 barrier index (% moderate or major)' },
  { code: 'top3_ranking', label: 'S1 top-3 barriers (% naming it)' },
  { code: 'S1', label: 'S1 participation and unmet demand' },
  { code: 'S2', label: 'S2 quality of learner mobility' },
  { code: 'S3', label: 'S3 roles and competences' },
  { code: 'S4', label: 'S4 impact on management' },
] as const;
export type IndicatorSetCode = (typeof INDICATOR_SETS)[number]['code'];

export const HEADLINE = ['participation_rate:S1_1', 'qci:agree', 'qci', 'learner_mobility_rate', 'lsi:agree', 'imi', 'staff_mobility_rate', 'accreditation_gap'];

/** The strand each indicator family belongs to. */
const FAMILY_STRAND: Record<string, string> = {
  participation_rate: 'S1',
  unmet_demand: 'S1',
  barrier_index: 'S1',
  top3_ranking: 'S1',
  qci: 'S2',
  europeanisation: 'S2',
  learner_mobility_rate: 'S2',
  long_term_rate: 'S2',
  recognition_rate: 'S2',
  europass_rate: 'S2',
  inclusion_rate: 'S2',
  reciprocity: 'S2',
  lsi: 'S3',
  competence_gap: 'S3',
  capacity: 'S3',
};

export function strandOf(row: Pick<IndicatorRow, 'family'>): string {
  return FAMILY_STRAND[row.family] ?? 'S4';
}

export function inSet(row: Pick<IndicatorRow, 'code' | 'family'>, set: IndicatorSetCode): boolean {
  if (set === 'headline') return HEADLINE.includes(row.code);
  if (set === 'barrier_index' || set === 'top3_ranking') return row.family === set;
  if (set === 'S1') return strandOf(row) === 'S1' && row.family !== 'barrier_index' && row.family !== 'top3_ranking';
  return strandOf(row) === set;
}

/**
 * An indicator's label where it cannot be told from another's: the barrier
 * index and the top-3 share of one barrier have the same wording.
 */
export function indicatorLabel(row: Pick<IndicatorRow, 'family' | 'label'>): string {
  if (row.family === 'barrier_index') return `${row.label} (barrier index, % moderate or major)`;
  if (row.family === 'top3_ranking') return `${row.label} (top-3 share, % naming it)`;
  return row.label;
}

export interface ViewCell extends FormattedCell {
  /** A colour class for every figure with a value: the Scoreboard band of a banded mean, else a shade of its place in the column. */
  colourClass?: string;
}

export interface GroupTableView {
  columns: Array<{ code: string; label: string }>;
  rows: Array<{ label: string; overall: boolean; cells: ViewCell[] }>;
  /** Says how many groups and columns are left out because every one of their cells is suppressed. */
  hiddenNote?: string;
}

/**
 * Indicators by group, transposed: one row per group (the view's overall
 * first), one column per indicator of the chosen set. Groups and indicators
 * whose cells are all suppressed are left out, and one note says how many.
 */
export function indicatorGroupTable(tables: EvidenceTables, rows: IndicatorRow[], report?: { language: Language; catalogue: QuestionCatalogue }): GroupTableView {
  if (report && report.language !== 'en') return localGroupTable(tables, rows, report.language, report.catalogue);
  const keys = ['', ...tables.columns.map((c) => c.key)];
  const cellOf = (row: IndicatorRow, key: string): Cell<unknown> => (key === '' ? row.overall : row.groups[key]!);
  const shownRows = rows.filter((row) => keys.some((key) => !cellOf(row, key).suppressed));
  const shownKeys = keys.filter((key) => key === '' || shownRows.some((row) => !cellOf(row, key).suppressed));
  const labels = new Map(tables.columns.map((c) => [c.key, c.label]));
  const formatted = shownRows.map((row) => shownKeys.map((key) => formatCell(row, cellOf(row, key) as IndicatorRow['overall'], tables.thresholds) as ViewCell));
  // Shades per column, over the groups that are published (the overall row included).
  shownRows.forEach((row, c) => {
    const values = shownKeys.map((key) => {
      const cell = cellOf(row, key) as IndicatorRow['overall'];
      return cell.suppressed ? null : cell.value;
    });
    values.forEach((value, r) => {
      const cell = formatted[c]![r]!;
      if (value === null) return;
      cell.colourClass = cell.bandClass ?? shadeClass(value, range(values));
    });
  });
  // Where every column is of one family, the caption names it and the labels need not repeat it.
  const oneFamily = new Set(rows.map((row) => row.family)).size === 1;
  return {
    columns: shownRows.map((row) => ({ code: row.code, label: oneFamily ? row.label : indicatorLabel(row) })),
    rows: shownKeys.map((key, r) => ({ label: key === '' ? 'Overall' : labels.get(key)!, overall: key === '', cells: formatted.map((column) => column[r]!) })),
    hiddenNote: hiddenNote(keys.length - shownKeys.length, 'group', rows.length - shownRows.length, 'indicator', tables),
  };
}

/**
 * The same table in the report's language: indicator and group labels from
 * the survey's translations, figures in the language's number format.
 */
function localGroupTable(tables: EvidenceTables, rows: IndicatorRow[], language: Language, catalogue: QuestionCatalogue): GroupTableView {
  const english = indicatorGroupTable(tables, rows);
  const t = reportText(language);
  const byCode = new Map(rows.map((row) => [row.code, row]));
  const keys = ['', ...tables.columns.map((c) => c.key)];
  const label = (key: string) =>
    groupValues(key)
      .map((value, i) => {
        if (value === NOT_STATED) return t.notStated;
        const question = catalogue.byName.get(DIMENSIONS[tables.dimensions[i]!].question);
        return localText(question?.choices.find((c) => String(c.value) === value)?.label, language) ?? choiceLabel(question, value);
      })
      .join(' · ');
  const englishLabels = new Map(tables.columns.map((c) => [c.label, c.key]));
  const hiddenGroups = keys.length - english.rows.length;
  const hiddenColumns = rows.length - english.columns.length;
  return {
    columns: english.columns.map((column) => ({ code: column.code, label: reportIndicatorLabel(byCode.get(column.code)!, catalogue, language) })),
    rows: english.rows.map((row) => {
      const key = row.overall ? '' : englishLabels.get(row.label)!;
      return {
        label: row.overall ? t.overall : label(key),
        overall: row.overall,
        cells: row.cells.map((cell, c) => {
          const indicator = byCode.get(english.columns[c]!.code)!;
          const source = (key === '' ? indicator.overall : indicator.groups[key]!) as IndicatorRow['overall'];
          return { ...formatCell(indicator, source, tables.thresholds, language), colourClass: cell.colourClass };
        }),
      };
    }),
    hiddenNote: english.hiddenNote && `${[hiddenGroups > 0 ? t.groupsNotShown(hiddenGroups) : '', hiddenColumns > 0 ? t.indicatorsNotShown(hiddenColumns) : ''].filter(Boolean).join(', ')}: ${t.suppressed(tables.thresholds)}.`,
  };
}

/** A shade 1 (lowest fifth of the column's range) to 5 (highest): a heat map that says "more", not "better". */
function shadeClass(value: number, [min, max]: [number, number]): string {
  const step = max > min ? Math.min(4, Math.floor(((value - min) / (max - min)) * 5)) : 2;
  return `shade-${step + 1}`;
}

function range(values: Array<number | null>): [number, number] {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? [0, 0] : [Math.min(...known), Math.max(...known)];
}

function hiddenNote(groups: number, groupWord: string, columns: number, columnWord: string, tables: EvidenceTables): string | undefined {
  const parts = [groups > 0 ? `${groups} ${groupWord}${groups === 1 ? '' : 's'}` : '', columns > 0 ? `${columns} ${columnWord}${columns === 1 ? '' : 's'}` : ''].filter(Boolean);
  if (parts.length === 0) return undefined;
  return `${parts.join(' and ')} not shown: every one of ${groups + columns === 1 ? 'its' : 'their'} cells is ${suppressionNote(tables.thresholds)}.`;
}

type Count = Distribution['counts'][number];
const keyOf = (c: Pick<Count, 'row' | 'rank' | 'value'>) => `${c.row ?? ''}|${c.rank ?? ''}|${typeof c.value}|${String(c.value)}`;
export const answerLabel = (meta: QuestionMeta | undefined, c: Pick<Count, 'row' | 'rank' | 'value'>) =>
  [c.row, c.rank ? `rank ${c.rank}` : undefined, choiceLabel(meta, c.value)].filter(Boolean).join(' · ');

/**
 * One question's distribution by group, transposed: one row per group (the
 * view's overall first), columns for n, valid answers or picks, "don't know",
 * the top-two share, the mean and every answer category. Groups whose cell is
 * suppressed are left out, with one note saying how many.
 */
export function questionGroupTable(meta: QuestionMeta | undefined, q: QuestionRow, tables: EvidenceTables) {
  const all = [{ label: 'Overall', overall: true, cell: q.overall }, ...tables.columns.map((c) => ({ label: c.label, overall: false, cell: q.groups[c.key]! }))];
  const shown = all.filter((g) => g.overall || !g.cell.suppressed);
  const answers = new Map<string, Count>();
  for (const { cell } of all) if (!cell.suppressed) for (const c of cell.counts) if (!answers.has(keyOf(c))) answers.set(keyOf(c), c);
  const summaries: Array<{ label: string; value: (d: Distribution) => string }> = [
    { label: 'Respondents (n)', value: (d) => (d.respondents === null ? SUPPRESSED_COUNT : String(d.respondents)) },
    { label: isPicks(q.kind) ? 'Picks' : 'Valid answers', value: (d) => String(d.validN) },
    { label: "Don't know", value: (d) => (d.dk === null ? SUPPRESSED_COUNT : String(d.dk)) },
    ...(q.kind === 'scale' || q.kind === 'yesno' ? [{ label: 'Top two / yes', value: (d: Distribution) => (d.topShare === null ? (d.withheld ? SUPPRESSED_COUNT : '') : `${d.topShare.toFixed(1)}%`) }] : []),
    ...(q.kind === 'scale' || q.kind === 'number' ? [{ label: 'Mean', value: (d: Distribution) => (d.mean === null ? (d.withheld ? SUPPRESSED_COUNT : '') : d.mean.toFixed(2)) }] : []),
  ];
  const columns = [...summaries.map((s) => s.label), ...[...answers.values()].map((a) => answerLabel(meta, a))];
  const rows = shown.map(({ label, overall, cell }) => ({
    label,
    overall,
    suppressed: cell.suppressed,
    cells: cell.suppressed
      ? []
      : [
          ...summaries.map((s) => s.value(cell)),
          ...[...answers].map(([key, answer]) => {
            const count = cell.counts.find((c) => keyOf(c) === key);
            if (count?.n === null) return SUPPRESSED_COUNT;
            const share = count ? count.share : answer.value === DONT_KNOW || shareBase(q.kind, cell) === 0 ? null : 0;
            return `${count?.n ?? 0}${share === null ? '' : ` (${share.toFixed(1)}%)`}`;
          }),
        ],
  }));
  return { columns, rows, span: columns.length, hiddenNote: hiddenNote(all.length - shown.length, 'group', 0, '', tables) };
}
