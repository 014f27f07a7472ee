import { countText, SUPPRESSED_COUNT, suppressionNote, type Cell, type Thresholds } from './disclosure.ts';
import type { EvidenceFilter } from './evidence-filter.ts';
import type { Table } from './evidence-export.service.ts';
import { formatCell, formatValue } from './evidence-format.ts';
import type { EvidenceService, IndicatorFigures } from './indicator.service.ts';
import { indicatorSources, shareBase, type Distribution, type Unit } from './indicators.ts';
import { choiceLabel, DONT_KNOW, type AnswerKind, type QuestionMeta } from './question-catalogue.ts';

/**
 * Wave against wave: the indicators and distributions of campaign A beside
 * those of campaign B, and B − A.
 *
 * Only what both campaigns asked is compared. "Asked" is read from the answers
 * stored for each campaign (a question with at least one counted answer), not
 * from the campaigns' strand lists: a strand's questions can change between
 * definition versions, the question codes in the responses cannot. An indicator
 * is compared only when every question it is computed from was asked in both.
 *
 * Disclosure: each side is exactly the cell the campaign's own pages
 * publish for the same profile filter (indicator.service.ts), suppressed there
 * or here alike, and a suppressed side hides the difference. Campaigns are
 * never pooled anywhere, so no published total holds A and B together and
 * one side being hidden says nothing about the other.
 */

export interface Wave {
  id: string;
  name: string;
}

/** B − A: suppressed when a side is; null when a side has no value. */
export type Difference = { suppressed: true } | { suppressed: false; value: number | null };

export interface ComparedIndicator {
  code: string;
  label: string;
  unit: Unit;
  a: Cell<IndicatorFigures>;
  b: Cell<IndicatorFigures>;
  difference: Difference;
}

export interface AnswerShare {
  /** null: suppressed (count-suppression.ts). */
  n: number | null;
  share: number | null;
}

export interface ComparedAnswer {
  label: string;
  /** Absent when the side is suppressed. */
  a?: AnswerShare;
  b?: AnswerShare;
  /** Difference of the shares, in points. */
  difference: Difference;
}

export interface ComparedQuestion {
  name: string;
  strand: string;
  kind: AnswerKind;
  title: string;
  a: Cell<Distribution>;
  b: Cell<Distribution>;
  topShare: Difference;
  mean: Difference;
  answers: ComparedAnswer[];
}

export interface WaveComparison {
  /** Responses on each side; null when the profile filter leaves too few to say (see EvidenceTables). */
  a: Wave & { responses: number | null };
  b: Wave & { responses: number | null };
  /** Question codes answered in both campaigns, in questionnaire order. */
  common: string[];
  onlyA: string[];
  onlyB: string[];
  indicators: ComparedIndicator[];
  /** Indicators left out, with the questions that were not asked in both. */
  notCompared: Array<{ code: string; label: string; missing: string[] }>;
  questions: ComparedQuestion[];
  thresholds: Thresholds;
}

/** Compares two campaigns, for the same respondents (a profile filter, or everyone), from the evidence service's published tables. */
export async function compareWaves(evidence: EvidenceService, a: Wave, b: Wave, where: EvidenceFilter['where'] = {}): Promise<WaveComparison> {
  const [tablesA, tablesB] = await Promise.all([a, b].map((wave) => evidence.tables({ campaigns: [wave.id], where, breakdown: [] })));
  const catalogue = evidence.catalogue;
  // A side whose number of responses is suppressed says nothing about what its respondents answered:
  // it is taken to have asked what the other side asked, and nothing is listed as its own.
  const suppressedA = tablesA!.responses === null;
  const suppressedB = tablesB!.responses === null;
  const askedA = new Set(suppressedA ? (suppressedB ? [] : tablesB!.answered) : tablesA!.answered);
  const askedB = new Set(suppressedB ? (suppressedA ? [] : tablesA!.answered) : tablesB!.answered);
  const inOrder = (test: (name: string) => boolean) => catalogue.questions.map((q) => q.name).filter(test);
  const common = new Set(inOrder((name) => askedA.has(name) && askedB.has(name)));

  const feeding = indicatorSources(evidence.indicatorSet, catalogue);
  const rowsB = new Map(tablesB!.indicators.map((row) => [row.code, row]));
  const indicators: ComparedIndicator[] = [];
  const notCompared: WaveComparison['notCompared'] = [];
  for (const rowA of tablesA!.indicators) {
    const rowB = rowsB.get(rowA.code)!;
    const questions = feeding.get(rowA.code) ?? [];
    const missing = questions.filter((q) => !common.has(q));
    if (questions.length === 0 || missing.length > 0) {
      notCompared.push({ code: rowA.code, label: rowA.label, missing });
      continue;
    }
    const [cellA, cellB] = [rowA.overall, rowB.overall];
    indicators.push({ code: rowA.code, label: rowA.label, unit: rowA.unit, a: cellA, b: cellB, difference: differenceOf(cellA, cellB, (c) => c.value) });
  }

  const questionsB = new Map(tablesB!.questions.map((q) => [q.name, q]));
  const questions = tablesA!.questions
    .filter((q) => common.has(q.name))
    .map((qA): ComparedQuestion => {
      const meta = catalogue.byName.get(qA.name)!;
      const [cellA, cellB] = [qA.overall, questionsB.get(qA.name)!.overall];
      return {
        name: qA.name,
        strand: qA.strand,
        kind: qA.kind,
        title: qA.title,
        a: cellA,
        b: cellB,
        topShare: differenceOf(cellA, cellB, (c) => c.topShare),
        mean: differenceOf(cellA, cellB, (c) => c.mean),
        answers: compareAnswers(meta, cellA, cellB),
      };
    });

  return {
    a: { ...a, responses: tablesA!.responses },
    b: { ...b, responses: tablesB!.responses },
    common: [...common],
    onlyA: inOrder((name) => askedA.has(name) && !askedB.has(name)),
    onlyB: inOrder((name) => askedB.has(name) && !askedA.has(name)),
    indicators,
    notCompared,
    questions,
    thresholds: tablesA!.thresholds,
  };
}

function differenceOf<T extends object>(a: Cell<T>, b: Cell<T>, value: (cell: T) => number | null): Difference {
  if (a.suppressed || b.suppressed) return { suppressed: true };
  const va = value(a);
  const vb = value(b);
  // A value withheld beside a hidden answer count is suppressed, not missing.
  if ((va === null && isWithheld(a)) || (vb === null && isWithheld(b))) return { suppressed: true };
  return { suppressed: false, value: va === null || vb === null ? null : vb - va };
}

/** Every answer given in either campaign, with count and share on each side; an answer not given on one side counts 0 there. */
function compareAnswers(meta: QuestionMeta, a: Cell<Distribution>, b: Cell<Distribution>): ComparedAnswer[] {
  if (a.suppressed || b.suppressed) return [];
  type Count = Distribution['counts'][number];
  const keyOf = (c: Count) => `${c.row ?? ''}|${c.rank ?? ''}|${typeof c.value}|${String(c.value)}`;
  const countsA = new Map(a.counts.map((c) => [keyOf(c), c]));
  const countsB = new Map(b.counts.map((c) => [keyOf(c), c]));
  const all = [...countsA.values(), ...[...countsB].filter(([key]) => !countsA.has(key)).map(([, c]) => c)];
  const side = (d: Distribution, count: Count | undefined, value: Count['value']): AnswerShare => {
    if (count) return { n: count.n, share: count.share };
    const base = shareBase(meta.kind, d);
    return { n: 0, share: value === DONT_KNOW || base === 0 ? null : 0 };
  };
  return all.map((c) => {
    const key = keyOf(c);
    const sa = side(a, countsA.get(key), c.value);
    const sb = side(b, countsB.get(key), c.value);
    const row = c.row === undefined ? undefined : (meta.rows.find((r) => String(r.value) === c.row)?.label.default ?? c.row);
    return {
      label: [row, c.rank ? `rank ${c.rank}` : undefined, choiceLabel(meta, c.value)].filter(Boolean).join(' · '),
      a: sa,
      b: sb,
      difference: sa.n === null || sb.n === null ? { suppressed: true } : { suppressed: false, value: sa.share === null || sb.share === null ? null : sb.share - sa.share },
    };
  });
}

/** B − A as text: points of a percentage or of a scale, EUR for amounts; a real minus sign (never a spreadsheet formula). */
export function formatDifference(difference: Difference, unit: Unit, thresholds: Thresholds): string {
  if (difference.suppressed) return suppressionNote(thresholds);
  const { value } = difference;
  if (value === null) return 'no data';
  if (unit === 'percent' || unit === 'points') return formatValue(value, 'points');
  const sign = value >= 0 ? '+' : '\u2212';
  if (unit === 'eur') return `${sign}${Math.round(Math.abs(value)).toLocaleString('en-GB')} EUR`;
  return `${sign}${Math.abs(value).toFixed(2)} points`;
}

const isWithheld = (cell: object) => (cell as { withheld?: true }).withheld === true;
const countOf = (s: AnswerShare | undefined) => (s === undefined ? '' : s.n === null ? SUPPRESSED_COUNT : s.n);
const shareText = (s: AnswerShare | undefined) => (s?.share === null || s === undefined ? '' : `${s.share.toFixed(1)}%`);

/** The comparison as the page shows it: the same texts in the page and the export. */
export function waveView(comparison: WaveComparison) {
  const { thresholds } = comparison;
  const note = suppressionNote(thresholds);
  const indicators = comparison.indicators.map((row) => ({
    code: row.code,
    label: row.label,
    a: formatCell(row, row.a, thresholds),
    b: formatCell(row, row.b, thresholds),
    difference: { text: formatDifference(row.difference, row.unit, thresholds), suppressed: row.difference.suppressed },
  }));
  const summary = (cell: Cell<Distribution>) =>
    cell.suppressed
      ? { suppressed: true, text: note }
      : { suppressed: false, text: [`valid ${cell.validN}`, `don't know ${cell.dk ?? SUPPRESSED_COUNT}`, cell.topShare === null ? '' : `top two / yes ${cell.topShare.toFixed(1)}%`, cell.mean === null ? '' : `mean ${cell.mean.toFixed(2)}`].filter(Boolean).join(' · ') };
  const questions = comparison.questions.map((q) => ({
    name: q.name,
    title: q.title,
    a: summary(q.a),
    b: summary(q.b),
    suppressed: q.a.suppressed || q.b.suppressed,
    topShare: q.topShare.suppressed || q.topShare.value !== null ? formatDifference(q.topShare, 'percent', thresholds) : '',
    mean: q.mean.suppressed || q.mean.value !== null ? formatDifference(q.mean, 'mean', thresholds) : '',
    answers: q.answers.map((answer) => ({
      label: answer.label,
      nA: countOf(answer.a),
      shareA: shareText(answer.a),
      nB: countOf(answer.b),
      shareB: shareText(answer.b),
      difference: formatDifference(answer.difference, 'percent', thresholds),
    })),
  }));
  return { indicators, questions, responsesA: countText(comparison.a.responses, thresholds), responsesB: countText(comparison.b.responses, thresholds) };
}

/** The comparison as export tables: one for the indicators, one line per answer for the questions. */
export function waveTables(comparison: WaveComparison): Table[] {
  const view = waveView(comparison);
  const a = comparison.a.name;
  const b = comparison.b.name;
  const indicatorRows = view.indicators.map((row) => [row.label, row.code, row.a.text, row.a.n === undefined ? '' : String(row.a.n), row.b.text, row.b.n === undefined ? '' : String(row.b.n), row.difference.text]);
  const questionRows = view.questions.flatMap((q) => {
    const differences = [q.topShare && `top two / yes ${q.topShare}`, q.mean && `mean ${q.mean}`].filter(Boolean).join('; ');
    const heading = [q.title, q.name, 'All answers', q.a.text, '', q.b.text, '', differences];
    return [heading, ...q.answers.map((answer) => [q.title, q.name, answer.label, String(answer.nA), answer.shareA, String(answer.nB), answer.shareB, answer.difference])];
  });
  return [
    { name: 'Indicators by wave', rows: [['Indicator', 'Code', a, `n (${a})`, b, `n (${b})`, `Difference (${b} minus ${a})`], ...indicatorRows] },
    { name: 'Questions by wave', rows: [['Question', 'Code', 'Answer', `${a}: count`, `${a}: share`, `${b}: count`, `${b}: share`, 'Difference (points)'], ...questionRows] },
  ];
}
