import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { recordAudit } from '../accounts/audit.service.ts';
import { requireRole } from '../accounts/auth.middleware.ts';
import type { SignedInUser } from '../accounts/user.service.ts';
import type { Models } from '../db/models.ts';
import { separatorOf } from '../shared/csv.ts';
import { formatDay } from '../shared/dates.ts';
import { HttpError } from '../shared/http-error.ts';
import { countText, suppressionNote, type Cell } from './disclosure.ts';
import { codebookTable, indicatorTable, questionTable, writeCsv, writeRawResponsesCsv, writeXlsx, type Table } from './evidence-export.service.ts';
import { DIMENSION_NAMES, DIMENSIONS, filterQueryString, filterSchema, objectId, type EvidenceFilter } from './evidence-filter.ts';
import { formatCell } from './evidence-format.ts';
import { listQuotes } from './evidence-quotes.service.ts';
import type { EvidenceService, EvidenceTables, QuestionRow } from './indicator.service.ts';
import { shareBase, type Distribution } from './indicators.ts';
import { choiceLabel, DONT_KNOW, type QuestionCatalogue, type QuestionMeta } from './question-catalogue.ts';
import { compareWaves, waveTables, waveView, type ComparedIndicator, type WaveComparison } from './wave-comparison.service.ts';

type ComparedIndicatorCell = ComparedIndicator['a'];

export interface EvidenceRouteDeps {
  models: Models;
  evidence: EvidenceService;
  /** Key of the pseudonyms in the raw export. */
  pseudonymKey: Buffer;
  now: () => Date;
}

const quoteQuery = z.object({ strand: z.enum(['S1', 'S2', 'S3', 'S4']).optional().catch(undefined) });
const exportParams = z.object({ table: z.enum(['indicators', 'codebook', 'responses']), format: z.enum(['csv', 'xlsx']) });
/** Two campaigns: `campaign=A&campaign=B`, or `a=A&b=B` (the form's). */
const waveQuery = z.object({ campaign: z.union([objectId, z.array(objectId).max(2)]).optional(), a: objectId.optional(), b: objectId.optional() });
const waveExportParams = z.object({ format: z.enum(['csv', 'xlsx']) });

/** The evidence pages, their JSON and the exports: reviewers and the coordinator only. */
export function evidenceRoutes(deps: EvidenceRouteDeps): Router {
  const router = Router();
  const { evidence } = deps;
  const catalogue = evidence.catalogue;
  const schema = filterSchema(catalogue);
  router.use('/evidence', requireRole('coordinator', 'reviewer'));

  const campaignList = () => deps.models.Campaign.find({}, { name: 1, opensAt: 1, demo: 1 }).sort({ opensAt: -1 }).lean();

  /**
   * The filter of a page or an export. Without a campaign it shows the most
   * recent one that has opened, preferring real campaigns to the demo one the
   * first start creates (which would otherwise hide the seeded demo data):
   * evidence is always one campaign's.
   */
  const parseFilter = async (req: Request, options: { omit?: string[]; campaigns?: CampaignOption[] } = {}): Promise<EvidenceFilter> => {
    const omit = options.omit ?? [];
    // Empty form fields ("All" in a select) mean "no filter".
    const query = Object.fromEntries(
      Object.entries(req.query as Record<string, unknown>)
        .filter(([key]) => !omit.includes(key))
        .map(([key, value]) => [key, Array.isArray(value) ? value.filter((v) => v !== '') : value])
        .filter(([, value]) => value !== '' && !(Array.isArray(value) && value.length === 0)),
    );
    const parsed = schema.safeParse(query);
    if (!parsed.success) throw new HttpError(400, `The filter is not valid. ${[...new Set(parsed.error.issues.map((i) => i.message))].join('; ')}.`);
    const filter = parsed.data;
    if (filter.campaigns.length === 0 && !omit.includes('campaign')) {
      const now = deps.now();
      const campaigns = options.campaigns ?? (await campaignList());
      const opened = campaigns.filter((c) => c.opensAt && c.opensAt <= now);
      const latest = opened.find((c) => !c.demo) ?? opened[0] ?? campaigns[0];
      if (latest) filter.campaigns = [String(latest._id)];
    }
    return filter;
  };

  /** The two campaigns to compare, checked against the campaign list (none when the form was not sent yet), and the profile filter both sides share. */
  const parseWaves = async (req: Request) => {
    const { where } = await parseFilter(req, { omit: ['campaign', 'a', 'b', 'by', 'cross'] });
    const query = Object.fromEntries(Object.entries(req.query as Record<string, unknown>).filter(([, value]) => value !== ''));
    const parsed = waveQuery.safeParse(query);
    if (!parsed.success) throw new HttpError(400, 'Choose two campaigns from the list.');
    const { campaign, a, b } = parsed.data;
    const ids = a || b ? [a, b] : campaign === undefined ? [] : [campaign].flat();
    const campaigns = await campaignList();
    if (ids.length === 0) return { campaigns, where, pair: undefined };
    const [first, second] = ids.map((id) => campaigns.find((c) => String(c._id) === id));
    if (!first || !second) throw new HttpError(400, 'Choose two campaigns from the list.');
    if (first === second) throw new HttpError(400, 'Choose two different campaigns.');
    return { campaigns, where, pair: [{ id: String(first._id), name: first.name }, { id: String(second._id), name: second.name }] as const };
  };

  const page = async (req: Request, res: Response, view: string, title: string, defaults: Partial<EvidenceFilter> = {}) => {
    const campaigns = await campaignList();
    const filter = await parseFilter(req, { campaigns });
    if (filter.breakdown.length === 0 && defaults.breakdown) filter.breakdown = defaults.breakdown;
    const tables = await evidence.tables(filter);
    return { filter, tables, context: { title, styles: ['/static/evidence.css'], scripts: ['/vendor/chart.js/chart.umd.js', '/static/evidence-charts.js'], ...filterBar(catalogue, filter, campaigns, req.path), ...tableView(tables), note: suppressionNote(tables.thresholds) } };
  };

  router.get('/evidence', async (req, res) => {
    const { filter, tables, context } = await page(req, res, 'overview', 'Evidence: overview');
    const invited = await deps.models.Invitation.countDocuments({ ...(filter.campaigns.length ? { campaign: { $in: filter.campaigns } } : {}), revokedAt: { $exists: false } });
    const headline = ['participation_rate:S1_1', 'qci:agree', 'qci', 'learner_mobility_rate', 'lsi:agree', 'imi', 'staff_mobility_rate', 'accreditation_gap'];
    res.render('evidence/overview', {
      ...context,
      invited,
      responseRate: invited > 0 && tables.responses !== null && Object.keys(filter.where).length === 0 ? `${((100 * tables.responses) / invited).toFixed(1)}%` : undefined,
      headline: context.indicatorRows.filter((row) => headline.includes(row.code)),
    });
  });

  router.get('/evidence/barriers', async (req, res) => {
    const { context } = await page(req, res, 'barriers', 'Evidence: barriers');
    const barrierRows = context.indicatorRows.filter((r) => r.family === 'barrier_index');
    const ranked = [...barrierRows].sort((a, b) => (b.overallValue ?? -1) - (a.overallValue ?? -1));
    const top3 = context.indicatorRows.filter((r) => r.family === 'top3_ranking').sort((a, b) => (b.overallValue ?? -1) - (a.overallValue ?? -1));
    res.render('evidence/barriers', {
      ...context,
      ranked,
      top3,
      charts: [chartOf('barrier-index', 'Barrier index: % moderate or major', ranked), chartOf('top3', 'Named among the three biggest barriers (%)', top3)],
    });
  });

  router.get('/evidence/heatmap', async (req, res) => {
    const { context } = await page(req, res, 'heatmap', 'Evidence: indicators by country', { breakdown: ['country'] });
    res.render('evidence/heatmap', context);
  });

  router.get('/evidence/questions', async (req, res) => {
    const { tables, context } = await page(req, res, 'questions', 'Evidence: answers per question');
    const questions = tables.questions.map((q) => {
      const meta = catalogue.byName.get(q.name);
      const overall = q.overall.suppressed
        ? { suppressed: true }
        : {
            suppressed: false,
            validN: q.overall.validN,
            dk: q.overall.dk,
            topShare: q.overall.topShare?.toFixed(1),
            mean: q.overall.mean?.toFixed(2),
            counts: q.overall.counts.map((c) => ({ label: [c.row, c.rank ? `rank ${c.rank}` : undefined, choiceLabel(meta, c.value)].filter(Boolean).join(' · '), n: c.n, share: c.share === null ? '' : `${c.share.toFixed(1)}%` })),
          };
      return { name: q.name, strand: q.strand, title: q.title, overall, byGroup: tables.columns.length > 0 ? distributionByGroup(meta, q, tables) : undefined };
    });
    res.render('evidence/questions', { ...context, questions });
  });

  router.get('/evidence/quotes', async (req, res) => {
    const campaigns = await campaignList();
    const filter = await parseFilter(req, { campaigns });
    const { strand } = quoteQuery.parse(req.query);
    const user = res.locals.user as SignedInUser;
    const quotes = await listQuotes({ models: deps.models, catalogue, thresholds: evidence.thresholds }, filter, { strand, showIdentities: user.role === 'coordinator' });
    res.render('evidence/quotes', {
      title: 'Evidence: quotes',
      styles: ['/static/evidence.css'],
      ...filterBar(catalogue, filter, campaigns, req.path),
      strands: ['S1', 'S2', 'S3', 'S4'].map((s) => ({ code: s, selected: s === strand })),
      quotes,
      coordinator: user.role === 'coordinator',
      note: suppressionNote(evidence.thresholds),
    });
  });

  router.get('/evidence/report', async (req, res) => {
    const { tables, context } = await page(req, res, 'report', 'Evidence report');
    res.render('evidence/report', { ...context, generatedAt: formatDay(deps.now()), thresholds: tables.thresholds });
  });

  router.get('/evidence/waves', async (req, res) => {
    const { campaigns, where, pair } = await parseWaves(req);
    const comparison = pair ? await compareWaves(evidence, pair[0], pair[1], where) : undefined;
    const whereQuery = filterQueryString({ campaigns: [], where, breakdown: [] });
    const view = comparison ? waveView(comparison) : undefined;
    res.render('evidence/waves', {
      title: 'Evidence: wave against wave',
      styles: ['/static/evidence.css'],
      scripts: ['/vendor/chart.js/chart.umd.js', '/static/evidence-charts.js'],
      optionsA: campaigns.map((c) => ({ id: String(c._id), name: c.name, selected: pair?.[0].id === String(c._id) })),
      optionsB: campaigns.map((c) => ({ id: String(c._id), name: c.name, selected: pair?.[1].id === String(c._id) })),
      whereOptions: dimensionSelects(catalogue, where),
      comparison,
      ...view,
      charts: comparison ? [waveChart(comparison)] : [],
      waveQuery: pair ? `?a=${pair[0].id}&b=${pair[1].id}${whereQuery ? `&${whereQuery}` : ''}` : '',
      note: suppressionNote(evidence.thresholds),
    });
  });

  router.get('/evidence/waves.json', async (req, res) => {
    const { where, pair } = await parseWaves(req);
    if (!pair) throw new HttpError(400, 'Choose two campaigns from the list.');
    res.json(await compareWaves(evidence, pair[0], pair[1], where));
  });

  router.get('/evidence/waves/export.:format', async (req, res) => {
    const params = waveExportParams.safeParse(req.params);
    if (!params.success) throw new HttpError(404, 'This export does not exist.');
    const { where, pair } = await parseWaves(req);
    if (!pair) throw new HttpError(400, 'Choose two campaigns from the list.');
    const user = res.locals.user as SignedInUser;
    await recordAudit(deps.models, { actor: user.email, action: 'evidence.export', target: `waves.${params.data.format}`, details: { campaigns: [pair[0].id, pair[1].id], where }, at: deps.now() });
    const sheets = waveTables(await compareWaves(evidence, pair[0], pair[1], where));
    res.attachment(`waves-${deps.now().toISOString().slice(0, 10)}.${params.data.format}`);
    if (params.data.format === 'csv') {
      res.type('text/csv; charset=utf-8');
      writeCsv(res, sheets, separatorOf(req.query));
    } else {
      res.type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
      await writeXlsx(res, sheets);
    }
  });

  router.get('/evidence/indicators.json', async (req, res) => {
    const tables = await evidence.tables(await parseFilter(req));
    res.json(publicJson(tables));
  });

  router.get('/evidence/export/:table.:format', async (req, res) => {
    const params = exportParams.safeParse(req.params);
    if (!params.success) throw new HttpError(404, 'This export does not exist.');
    const { table, format } = params.data;
    const user = res.locals.user as SignedInUser;
    // Raw answers and the codebook (which goes with them) are for the coordinator only.
    if (table !== 'indicators' && user.role !== 'coordinator') throw new HttpError(403, 'Your role does not allow this export.');
    if (table === 'responses' && format !== 'csv') throw new HttpError(404, 'The raw responses are exported as CSV.');
    const filter = await parseFilter(req);
    await recordAudit(deps.models, { actor: user.email, action: 'evidence.export', target: `${table}.${format}`, details: { filter }, at: deps.now() });

    const fileName = `${table}-${deps.now().toISOString().slice(0, 10)}.${format}`;
    res.attachment(fileName);
    if (table === 'responses') {
      res.type('text/csv; charset=utf-8');
      await writeRawResponsesCsv({ models: deps.models, catalogue, pseudonymKey: deps.pseudonymKey }, filter, res, separatorOf(req.query));
      return;
    }
    let sheets: Table[];
    if (table === 'codebook') sheets = [codebookTable(catalogue)];
    else {
      const tables = await evidence.tables(filter);
      sheets = [indicatorTable(tables), questionTable(tables)];
    }
    if (format === 'csv') {
      res.type('text/csv; charset=utf-8');
      writeCsv(res, sheets, separatorOf(req.query));
    } else {
      res.type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
      await writeXlsx(res, sheets);
    }
  });

  return router;
}

/** The JSON the pages could load: suppressed cells carry only {suppressed: true}. */
function publicJson(tables: EvidenceTables) {
  return {
    responses: tables.responses,
    breakdown: tables.dimensions,
    columns: tables.columns,
    thresholds: tables.thresholds,
    indicators: tables.indicators,
    questions: tables.questions,
  };
}

type CampaignOption = { _id: unknown; name: string; opensAt?: Date; demo?: boolean | null };

function filterBar(catalogue: QuestionCatalogue, filter: EvidenceFilter, campaigns: CampaignOption[], path: string) {
  const query = filterQueryString(filter);
  const whereOptions = dimensionSelects(catalogue, filter.where);
  return {
    filterAction: path,
    campaignOptions: campaigns.map((c) => ({ id: String(c._id), name: c.name, selected: filter.campaigns.includes(String(c._id)) })),
    whereOptions,
    countrySelect: whereOptions.find((w) => w.name === 'country'),
    dimensionOptions: DIMENSION_NAMES.map((d) => ({ code: d, label: DIMENSIONS[d].label, by: filter.breakdown[0] === d, cross: filter.breakdown[1] === d })),
    query,
    exportQuery: query ? `?${query}` : '',
  };
}

/** One select per profile dimension, with the codes and English labels of its profile question. */
function dimensionSelects(catalogue: QuestionCatalogue, where: EvidenceFilter['where']) {
  return DIMENSION_NAMES.map((d) => ({
    name: d,
    label: DIMENSIONS[d].label,
    options: (catalogue.byName.get(DIMENSIONS[d].question)?.choices ?? []).map((c) => ({ code: String(c.value), label: c.label.default, selected: where[d]?.includes(String(c.value)) ?? false })),
  }));
}

/** The percentage indicators both campaigns publish, A and B side by side (the table below the chart has every indicator). */
function waveChart(comparison: WaveComparison) {
  const shown = comparison.indicators.filter((row) => row.unit === 'percent' && !row.a.suppressed && !row.b.suppressed && row.a.value !== null && row.b.value !== null);
  const value = (cell: ComparedIndicatorCell) => (cell.suppressed || cell.value === null ? 0 : Number(cell.value.toFixed(1)));
  return {
    id: 'waves',
    label: 'Percentage indicators, A beside B',
    labels: shown.map((row) => row.label),
    datasets: [
      { label: `A: ${comparison.a.name}`, values: shown.map((row) => value(row.a)) },
      { label: `B: ${comparison.b.name}`, values: shown.map((row) => value(row.b)) },
    ],
  };
}

function tableView(tables: EvidenceTables) {
  const indicatorRows = tables.indicators.map((row) => {
    const overall = formatCell(row, row.overall, tables.thresholds);
    return {
      code: row.code,
      family: row.family,
      label: row.label,
      target: row.target,
      overall,
      overallValue: row.overall.suppressed ? null : row.overall.value,
      cells: tables.columns.map((c) => formatCell(row, row.groups[c.key]!, tables.thresholds)),
    };
  });
  return { indicatorRows, columns: tables.columns, responses: countText(tables.responses, tables.thresholds) };
}

/**
 * One question's distribution per group of the breakdown, beside the overall
 * one: rows are the summary figures and every answer given in a published
 * cell; a suppressed group says so in its column and shows no figure.
 */
function distributionByGroup(meta: QuestionMeta | undefined, q: QuestionRow, tables: EvidenceTables) {
  const note = suppressionNote(tables.thresholds);
  const cells = [{ label: 'Overall', cell: q.overall }, ...tables.columns.map((c) => ({ label: c.label, cell: q.groups[c.key]! }))];
  type Count = Distribution['counts'][number];
  const keyOf = (c: Count) => `${c.row ?? ''}|${c.rank ?? ''}|${typeof c.value}|${String(c.value)}`;
  const answers = new Map<string, Count>();
  for (const { cell } of cells) if (!cell.suppressed) for (const c of cell.counts) if (!answers.has(keyOf(c))) answers.set(keyOf(c), c);
  const figure = (cell: Cell<Distribution>, text: (d: Distribution) => string, first = false) =>
    cell.suppressed ? { text: first ? note : 'suppressed', suppressed: true } : { text: text(cell), suppressed: false };
  const rows = [
    { label: 'Valid answers', cells: cells.map(({ cell }) => figure(cell, (d) => String(d.validN), true)) },
    { label: "Don't know", cells: cells.map(({ cell }) => figure(cell, (d) => String(d.dk))) },
    ...(q.kind === 'scale' || q.kind === 'yesno' ? [{ label: 'Top two / yes', cells: cells.map(({ cell }) => figure(cell, (d) => (d.topShare === null ? '' : `${d.topShare.toFixed(1)}%`))) }] : []),
    ...(q.kind === 'scale' || q.kind === 'number' ? [{ label: 'Mean', cells: cells.map(({ cell }) => figure(cell, (d) => (d.mean === null ? '' : d.mean.toFixed(2)))) }] : []),
    ...[...answers].map(([key, answer]) => ({
      label: [answer.row, answer.rank ? `rank ${answer.rank}` : undefined, choiceLabel(meta, answer.value)].filter(Boolean).join(' · '),
      cells: cells.map(({ cell }) =>
        figure(cell, (d) => {
          const count = d.counts.find((c) => keyOf(c) === key);
          const base = shareBase(q.kind, d);
          const share = count ? count.share : answer.value === DONT_KNOW || base === 0 ? null : 0;
          return `${count?.n ?? 0}${share === null ? '' : ` (${share.toFixed(1)}%)`}`;
        }),
      ),
    })),
  ];
  return { columns: cells.map((c) => c.label), rows };
}

function chartOf(id: string, label: string, rows: Array<{ label: string; overallValue: number | null; overall: { suppressed: boolean } }>) {
  const shown = rows.filter((r) => !r.overall.suppressed && r.overallValue !== null);
  return { id, label, labels: shown.map((r) => r.label), values: shown.map((r) => Number(r.overallValue!.toFixed(1))) };
}
