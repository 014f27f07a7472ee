import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { recordAudit } from '../accounts/audit.service.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import type { SignedInUser } from '../accounts/user.service.ts';
import type { Models } from '../db/models.ts';
import { separatorOf } from '../shared/csv.ts';
import { HttpError } from '../shared/http-error.ts';
import { countText, DONT_KNOW_WITHHELD_NOTE, SUPPRESSED_COUNT, suppressionNote, UNLISTED_GROUPS_NOTE, WITHHELD_CELL_NOTE, WITHHELD_NOTE } from './disclosure.ts';
import { codebookTable, distributionTable, indicatorLongTable, indicatorTable, questionTable, quoteTable, writeCsv, writeRawResponsesCsv, writeXlsx, type Table } from './evidence-export.service.ts';
import { DIMENSION_NAMES, DIMENSIONS, filterQueryString, filterSchema, objectId, type EvidenceFilter } from './evidence-filter.ts';
import { reportScope, scopeLines, type ReportScope } from './evidence-scope.service.ts';
import { HEADLINE, indicatorGroupTable, indicatorLabel, inSet, INDICATOR_SETS, questionGroupTable, type IndicatorSetCode } from './evidence-view.ts';
import { formatCell } from './evidence-format.ts';
import { listQuotes, reviewQuote, type QuoteCache } from './evidence-quotes.service.ts';
import type { EvidenceService, EvidenceTables, IndicatorRow } from './indicator.service.ts';
import { reportPdf } from './report-pdf.ts';
import { localText, reportIndicatorLabel, reportText } from './report-text.ts';
import { LANGUAGE_NAMES, LANGUAGES } from '../shared/languages.ts';
import { isPicks } from './indicators.ts';
import { choiceLabel, type QuestionCatalogue } from './question-catalogue.ts';
import { compareWaves, waveTables, waveView, type ComparedIndicator, type WaveComparison } from './wave-comparison.service.ts';

type ComparedIndicatorCell = ComparedIndicator['a'];

export interface EvidenceRouteDeps {
  models: Models;
  evidence: EvidenceService;
  /** Free-text answers kept between quote pages (forgotten when responses change). */
  quoteCache?: QuoteCache;
  /** The Chromium that prints the report's PDF (Debian's by default). */
  chromiumPath?: string;
  /** Key of the pseudonyms in the raw export. */
  pseudonymKey: Buffer;
  /** Opens the campaigns' institution tag secrets (the raw export names institutions by their tags). */
  tagKey: Buffer;
  now: () => Date;
}

const quoteReview = z.object({
  campaign: objectId,
  key: z.string().max(100),
  state: z.enum(['approved', 'hidden']),
  returnTo: z.string().max(2000).optional(),
});
const quoteQuery = z.object({ strand: z.enum(['S1', 'S2', 'S3', 'S4']).optional().catch(undefined) });
const EXPORT_TABLES = ['indicators', 'indicators-long', 'barriers', 'barriers-long', 'questions', 'distributions', 'quotes', 'codebook', 'responses'] as const;
type ExportTable = (typeof EXPORT_TABLES)[number];
const exportParams = z.object({ table: z.enum(EXPORT_TABLES), format: z.enum(['csv', 'xlsx']) });
/** The columns of a table by group: an indicator set, or one question. */
const columnQuery = z.object({
  set: z.enum(INDICATOR_SETS.map((s) => s.code) as [IndicatorSetCode, ...IndicatorSetCode[]]).optional().catch(undefined),
  question: z.string().regex(/^[A-Za-z0-9_]{1,40}$/).optional().catch(undefined),
});
/** Two campaigns: `campaign=A&campaign=B`, or `a=A&b=B` (the form's). */
const waveQuery = z.object({ campaign: z.union([objectId, z.array(objectId).max(2)]).optional(), a: objectId.optional(), b: objectId.optional() });
const waveExportParams = z.object({ format: z.enum(['csv', 'xlsx']) });
/** The report's language: one of the platform's, English when not given. */
const reportLanguageQuery = z.object({ lang: z.enum(LANGUAGES).optional() });

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The campaigns a reviewer can choose from, newest first. */
const campaignOptions = (models: Models) => models.Campaign.find({}, { name: 1, opensAt: 1, demo: 1 }).sort({ opensAt: -1 }).lean();

/**
 * The campaign a page shows when none is chosen: the newest one that has
 * opened and publishes its number of responses (enough institutions and
 * respondents to show anything), real campaigns before demo ones; failing
 * that, the newest that has opened. A campaign nobody has answered yet
 * publishes "0 responses" and nothing else, so it is passed over too (the
 * first start's demo campaign, newer than the waves seed:demo adds).
 * Evidence is always one campaign's. Finding it decides the overview of
 * each campaign it looks at.
 */
async function landingCampaign(evidence: EvidenceService, campaigns: CampaignOption[], now: Date): Promise<string | undefined> {
  const opened = campaigns.filter((c) => c.opensAt && c.opensAt <= now);
  const ordered = [...opened.filter((c) => !c.demo), ...opened.filter((c) => c.demo)];
  for (const c of ordered.slice(0, 10)) {
    const tables = await evidence.tables({ campaigns: [String(c._id)], where: {}, breakdown: [] });
    if (tables.responses !== null && tables.responses > 0) return String(c._id);
  }
  const fallback = ordered[0] ?? campaigns[0];
  return fallback ? String(fallback._id) : undefined;
}

/**
 * Takes, after a start, the disclosure decision the evidence page opens on
 * (the landing campaign's overview), so that the first reviewer does not
 * wait for it: ~3.4 s of CPU at 50,000 responses, taken in slices with
 * requests served between them. Breakdowns of that campaign then take tens
 * of milliseconds. Says which campaign and how long it took.
 */
export async function prepareEvidenceLanding(deps: Pick<EvidenceRouteDeps, 'models' | 'evidence' | 'now'>): Promise<{ campaign?: string; ms: number }> {
  const started = performance.now();
  await deps.evidence.ready();
  const campaign = await landingCampaign(deps.evidence, await campaignOptions(deps.models), deps.now());
  return { campaign, ms: Math.round(performance.now() - started) };
}

/** The evidence pages, their JSON and the exports: reviewers and the coordinator only. */
export function evidenceRoutes(deps: EvidenceRouteDeps): Router {
  const router = Router();
  const { evidence } = deps;
  const catalogue = evidence.catalogue;
  const schema = filterSchema(catalogue);
  router.use('/evidence', requireRole('coordinator', 'reviewer'));

  const campaignList = () => campaignOptions(deps.models);
  const defaultCampaign = (campaigns: CampaignOption[]) => landingCampaign(evidence, campaigns, deps.now());

  /** The filter of a page or an export; a filter that is not valid is a 400 saying what to change. */
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
      const id = await defaultCampaign(options.campaigns ?? (await campaignList()));
      if (id) filter.campaigns = [id];
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

  const scopeOf = (filter: EvidenceFilter, tables: Pick<EvidenceTables, 'responses' | 'thresholds'>) => reportScope({ models: deps.models, catalogue, now: deps.now }, filter, tables.responses, tables.thresholds);

  /**
   * The filter, tables and common context of a page; null when the filter is
   * not valid, after rendering the page's filter bar with the message (400),
   * so the reader changes it where they chose it.
   */
  const page = async (req: Request, res: Response, exportTable: ExportTable | null, title: string, defaults: Partial<EvidenceFilter> = {}) => {
    const campaigns = await campaignList();
    let filter: EvidenceFilter;
    try {
      filter = await parseFilter(req, { campaigns });
    } catch (error) {
      if (!(error instanceof HttpError) || error.status !== 400) throw error;
      const chosen = campaigns.find((c) => String(c._id) === req.query.campaign);
      const fallback: EvidenceFilter = { campaigns: chosen ? [String(chosen._id)] : [(await defaultCampaign(campaigns)) ?? ''].filter(Boolean), where: {}, breakdown: [] };
      res.status(400).render('evidence/filter-error', { title, styles: ['/static/evidence.css'], heading: title.replace(/^Evidence: (.)/, (_, first: string) => first.toUpperCase()), message: error.message, ...filterBar(catalogue, fallback, campaigns, req.path, null) });
      return null;
    }
    if (filter.breakdown.length === 0 && defaults.breakdown) filter.breakdown = defaults.breakdown;
    const tables = await evidence.tables(filter);
    const scope = await scopeOf(filter, tables);
    const columns = columnQuery.parse(req.query);
    return {
      filter,
      tables,
      scope,
      columns,
      context: {
        title,
        styles: ['/static/evidence.css'],
        scripts: ['/vendor/chart.js/chart.umd.js', '/static/evidence-charts.js'],
        ...filterBar(catalogue, filter, campaigns, req.path, exportTable),
        ...tableView(tables),
        scope,
        filtered: Object.keys(filter.where).length > 0,
        note: suppressionNote(tables.thresholds),
        unlistedNote: UNLISTED_GROUPS_NOTE,
        withheldCellNote: WITHHELD_CELL_NOTE,
      },
    };
  };

  /** The chooser of an indicator set for a table by group, and the table. */
  const setTable = (tables: EvidenceTables, filter: EvidenceFilter, chosen: IndicatorSetCode | undefined, fallback: IndicatorSetCode) => {
    const set = chosen ?? fallback;
    return {
      setOptions: INDICATOR_SETS.map((s) => ({ ...s, selected: s.code === set })),
      hiddenFilter: hiddenFields(filter),
      groupTable: indicatorGroupTable(tables, tables.indicators.filter((row) => inSet(row, set))),
      groupCaption: `${INDICATOR_SETS.find((s) => s.code === set)!.label} by ${tables.dimensions.map((d) => DIMENSIONS[d].label.toLowerCase()).join(' × ')}`,
    };
  };

  router.get('/evidence', async (req, res) => {
    const shown = await page(req, res, 'indicators', 'Evidence: overview');
    if (!shown) return;
    const { filter, tables, context, columns } = shown;
    res.render('evidence/overview', {
      ...context,
      headline: context.indicatorRows.filter((row) => HEADLINE.includes(row.code)),
      ...(filter.breakdown.length ? setTable(tables, filter, columns.set, 'headline') : {}),
    });
  });

  router.get('/evidence/barriers', async (req, res) => {
    const shown = await page(req, res, 'barriers', 'Evidence: barriers');
    if (!shown) return;
    const { filter, tables, context } = shown;
    const barrierRows = context.indicatorRows.filter((r) => r.family === 'barrier_index');
    const ranked = [...barrierRows].sort((a, b) => (b.overallValue ?? -1) - (a.overallValue ?? -1));
    const top3 = context.indicatorRows.filter((r) => r.family === 'top3_ranking').sort((a, b) => (b.overallValue ?? -1) - (a.overallValue ?? -1));
    const by = (family: 'barrier_index' | 'top3_ranking') => indicatorGroupTable(tables, tables.indicators.filter((row) => row.family === family));
    const groupBy = tables.dimensions.map((d) => DIMENSIONS[d].label.toLowerCase()).join(' × ');
    res.render('evidence/barriers', {
      ...context,
      ranked,
      top3,
      byGroup: filter.breakdown.length ? { index: by('barrier_index'), top3: by('top3_ranking'), indexCaption: `Barrier index (% moderate or major) by ${groupBy}`, top3Caption: `Top-3 share (% naming the barrier among their three biggest) by ${groupBy}` } : undefined,
      charts: [chartOf('barrier-index', 'Barrier index: % moderate or major', ranked), chartOf('top3', 'Named among the three biggest barriers (%)', top3)],
    });
  });

  router.get('/evidence/heatmap', async (req, res) => {
    const shown = await page(req, res, 'indicators', 'Evidence: indicators by country', { breakdown: ['country'] });
    if (!shown) return;
    const { filter, tables, context, columns } = shown;
    res.render('evidence/heatmap', { ...context, ...setTable(tables, filter, columns.set, 'headline') });
  });

  router.get('/evidence/questions', async (req, res) => {
    const shown = await page(req, res, 'questions', 'Evidence: answers per question');
    if (!shown) return;
    const { filter, tables, context, columns } = shown;
    const summary = (q: (typeof tables.questions)[number]) => {
      const meta = catalogue.byName.get(q.name);
      if (q.overall.suppressed) return { suppressed: true };
      const d = q.overall;
      return {
        suppressed: false,
        respondents: d.respondents ?? SUPPRESSED_COUNT,
        picks: isPicks(q.kind),
        validN: d.validN,
        dk: d.dk ?? SUPPRESSED_COUNT,
        dontKnowWithheld: d.dk === null,
        topShare: d.topShare?.toFixed(1),
        mean: d.mean?.toFixed(2),
        withheld: d.withheld === true,
        counts: d.counts.map((c) => ({ label: [c.row, c.rank ? `rank ${c.rank}` : undefined, choiceLabel(meta, c.value)].filter(Boolean).join(' · '), n: c.n === null ? SUPPRESSED_COUNT : c.n, share: c.share === null ? '' : `${c.share.toFixed(1)}%` })),
      };
    };
    if (filter.breakdown.length === 0) {
      res.render('evidence/questions', { ...context, withheldNote: WITHHELD_NOTE, dontKnowNote: DONT_KNOW_WITHHELD_NOTE, suppressedCount: SUPPRESSED_COUNT, questions: tables.questions.map((q) => ({ name: q.name, strand: q.strand, title: q.title, overall: summary(q) })) });
      return;
    }
    // With a breakdown, one question at a time: groups are rows, its answers the columns.
    const chosen = tables.questions.find((q) => q.name === columns.question) ?? tables.questions.find((q) => !q.overall.suppressed) ?? tables.questions[0];
    res.render('evidence/questions', {
      ...context,
      questionOptions: tables.questions.map((q) => ({ name: q.name, title: q.title, selected: q === chosen })),
      hiddenFilter: hiddenFields(filter),
      chosen: chosen && { name: chosen.name, title: chosen.title, overall: summary(chosen), byGroup: questionGroupTable(catalogue.byName.get(chosen.name), chosen, tables) },
    });
  });

  const quoteDeps = { models: deps.models, catalogue, evidence, thresholds: evidence.thresholds, cache: deps.quoteCache };
  router.get('/evidence/quotes', csrfProtection, async (req, res) => {
    const shown = await page(req, res, 'quotes', 'Evidence: quotes');
    if (!shown) return;
    const { filter, context } = shown;
    const { strand } = quoteQuery.parse(req.query);
    const user = res.locals.user as SignedInUser;
    const quotes = await listQuotes(quoteDeps, filter, { strand, showIdentities: user.role === 'coordinator' });
    res.render('evidence/quotes', {
      ...context,
      scripts: [],
      returnTo: req.originalUrl,
      campaignId: filter.campaigns[0],
      reviewActions: [
        { state: 'approved', label: 'Approve' },
        { state: 'hidden', label: 'Hide' },
      ],
      hiddenFilter: hiddenFields(filter),
      strands: ['S1', 'S2', 'S3', 'S4'].map((s) => ({ code: s, selected: s === strand })),
      quotes,
      coordinator: user.role === 'coordinator',
    });
  });

  router.post('/evidence/quotes/review', requireRole('coordinator'), csrfProtection, async (req, res) => {
    const parsed = quoteReview.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, 'Choose a quote and approve or hide it.');
    const { campaign, key, state, returnTo } = parsed.data;
    const user = res.locals.user as SignedInUser;
    const at = deps.now();
    if (!(await reviewQuote(quoteDeps, { campaign, key, state, by: user.email, at }))) throw new HttpError(404, 'This quote no longer exists; reload the page.');
    await recordAudit(deps.models, { actor: user.email, action: `evidence.quote.${state === 'approved' ? 'approve' : 'hide'}`, target: key, details: { campaign }, at });
    res.redirect(303, returnTo && returnTo.startsWith('/evidence/quotes') ? returnTo : `/evidence/quotes?campaign=${campaign}`);
  });

  /**
   * Everything the report shows, for the page and for its PDF, in the
   * language asked for (?lang=en|fr|de, English by default): its own texts
   * from report-text.ts, labels from the survey's translations, numbers and
   * dates in the language's format. The filter bar above it stays in English,
   * as on every other evidence page.
   */
  const reportContext = async (req: Request, res: Response) => {
    const asked = reportLanguageQuery.safeParse(req.query);
    if (!asked.success) throw new HttpError(400, 'The report is available in English (lang=en), French (lang=fr) and German (lang=de).');
    const language = asked.data.lang ?? 'en';
    const shown = await page(req, res, 'indicators', 'Evidence report');
    if (!shown) return null;
    const { filter, tables, context } = shown;
    const t = reportText(language);
    const scope = language === 'en' ? shown.scope : await reportScope({ models: deps.models, catalogue, now: deps.now }, filter, tables.responses, tables.thresholds, language);
    const user = res.locals.user as SignedInUser;
    const dimensionLabel = (d: keyof typeof DIMENSIONS) => (language === 'en' ? DIMENSIONS[d].label : t.dimensions[d]);
    const choice = (d: keyof typeof DIMENSIONS, code: string, english: string) =>
      language === 'en' ? english : (localText(catalogue.byName.get(DIMENSIONS[d].question)?.choices.find((c) => String(c.value) === code)?.label, language) ?? english);
    const profile = await Promise.all(
      (['country', 'institutionType', 'role'] as const).map(async (d) => {
        const by = await evidence.tables({ ...filter, breakdown: [d] });
        const rows = by.columns.map((c) => ({ label: choice(d, c.key, c.label), count: by.groupResponses[c.key] }));
        const shownRows = rows.filter((r) => r.count !== null && r.count !== undefined);
        return { label: dimensionLabel(d), rows: shownRows, hidden: rows.length - shownRows.length, hiddenText: t.groupsNotShown(rows.length - shownRows.length) };
      }),
    );
    const byCountry = await evidence.tables({ ...filter, breakdown: ['country'] });
    // The rows in the report's language: labels from the survey's translations, figures formatted again.
    const inLanguage = (row: (typeof context.indicatorRows)[number]) => {
      if (language === 'en') return row;
      const source = tables.indicators.find((r) => r.code === row.code)!;
      const label = reportIndicatorLabel(source, catalogue, language);
      return { ...row, label, shortLabel: label, overall: formatCell(source, source.overall, tables.thresholds, language) };
    };
    const headline = context.indicatorRows.filter((row) => HEADLINE.includes(row.code)).map(inLanguage);
    const barrierRows = context.indicatorRows.filter((r) => r.family === 'barrier_index').sort((a, b) => (b.overallValue ?? -1) - (a.overallValue ?? -1)).map(inLanguage);
    const quotes = await listQuotes(quoteDeps, filter, { showIdentities: false });
    const translated = { language, catalogue };
    const pageQuery = filterQueryString(filter);
    const withLanguage = (path: string, code: string) => `${path}?${pageQuery ? `${pageQuery}&` : ''}lang=${code}`;
    return {
      filter,
      language,
      view: {
        ...context,
        lang: language,
        t,
        scripts: ['/vendor/chart.js/chart.umd.js', '/static/evidence-charts.js'],
        pdfHref: language === 'en' ? `/evidence/report.pdf${context.exportQuery}` : withLanguage('/evidence/report.pdf', language),
        languages: LANGUAGES.map((code) => ({ code, name: LANGUAGE_NAMES[code], href: withLanguage('/evidence/report', code), current: code === language })),
        reportScope: scope,
        basedOn: t.basedOn(escapeHtml(String(context.responses)), escapeHtml(scope.campaign), escapeHtml(scope.filter), escapeHtml(scope.generatedAt)),
        methodNote: t.methodNote(tables.thresholds),
        profile,
        headline,
        barrierRows,
        heatmap: indicatorGroupTable(byCountry, byCountry.indicators.filter((row) => inSet(row, 'headline')), translated),
        heatmapCaption: filter.where.country ? undefined : t.heatmapCaption,
        groupTable: filter.breakdown.length ? indicatorGroupTable(tables, tables.indicators.filter((row) => inSet(row, 'headline')), translated) : undefined,
        groupCaption: `${t.headline} ${t.by} ${tables.dimensions.map((d) => (language === 'de' ? dimensionLabel(d) : dimensionLabel(d).toLowerCase())).join(' × ')}`,
        quotes: quotes.suppressed ? undefined : quotes.quotes.slice(0, 12),
        quotesSuppressed: quotes.suppressed,
        reportNote: language === 'en' ? context.note : t.suppressed(tables.thresholds),
        // In another language a withheld value reads as suppressed (report-text.ts), and the English note would not fit.
        withheldCellNote: language === 'en' ? context.withheldCellNote : undefined,
        charts: [chartOf('headline', t.headlineChart, headline.filter((r) => r.unit === 'percent')), chartOf('barrier-index', t.barrierChart, barrierRows)],
        thresholds: tables.thresholds,
        coordinator: user.role === 'coordinator',
      },
      scope,
    };
  };

  router.get('/evidence/report', async (req, res) => {
    const report = await reportContext(req, res);
    if (report) res.render('evidence/report', report.view);
  });

  router.get('/evidence/report.pdf', async (req, res) => {
    const report = await reportContext(req, res);
    if (!report) return;
    const user = res.locals.user as SignedInUser;
    const html = await renderView(req, 'evidence/report', { ...report.view, print: true, layout: false });
    const t = reportText(report.language);
    const pdf = await reportPdf(html, { chromiumPath: deps.chromiumPath, title: `${t.pdfTitle}: ${report.scope.campaign}`, language: report.language, pageWords: [t.page, t.of] });
    await recordAudit(deps.models, { actor: user.email, action: 'evidence.export', target: 'report.pdf', details: { filter: report.filter }, at: deps.now() });
    res.attachment(exportFileName(report.scope, report.filter, 'report', 'pdf', deps.now()));
    res.type('application/pdf').send(pdf);
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
    if ((table === 'codebook' || table === 'responses') && user.role !== 'coordinator') throw new HttpError(403, 'Your role does not allow this export.');
    if (table === 'responses' && format !== 'csv') throw new HttpError(404, 'The raw responses are exported as CSV.');
    const filter = await parseFilter(req);
    await recordAudit(deps.models, { actor: user.email, action: 'evidence.export', target: `${table}.${format}`, details: { filter }, at: deps.now() });

    if (table === 'responses') {
      res.attachment(`responses-${deps.now().toISOString().slice(0, 10)}.csv`);
      res.type('text/csv; charset=utf-8');
      await writeRawResponsesCsv({ models: deps.models, catalogue, pseudonymKey: deps.pseudonymKey, tagKey: deps.tagKey }, filter, res, separatorOf(req.query));
      return;
    }
    let sheets: Table[];
    let scope: ReportScope | undefined;
    if (table === 'codebook') sheets = [codebookTable(catalogue)];
    else {
      const tables = await evidence.tables(filter);
      scope = await scopeOf(filter, tables);
      sheets = await exportSheets(table, tables, filter, user, format);
      const preamble = scopeLines(scope);
      for (const sheet of sheets) sheet.preamble = preamble;
    }
    res.attachment(scope ? exportFileName(scope, filter, table, format, deps.now()) : `${table}-${deps.now().toISOString().slice(0, 10)}.${format}`);
    if (format === 'csv') {
      res.type('text/csv; charset=utf-8');
      writeCsv(res, sheets, separatorOf(req.query));
    } else {
      res.type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
      await writeXlsx(res, sheets);
    }
  });

  /**
   * The tables of one page's download. A CSV holds one table (wide, or long:
   * one row per figure and group); a workbook holds the page's tables, wide
   * and long, one sheet each.
   */
  const exportSheets = async (table: Exclude<ExportTable, 'codebook' | 'responses'>, tables: EvidenceTables, filter: EvidenceFilter, user: SignedInUser, format: 'csv' | 'xlsx'): Promise<Table[]> => {
    const barriers = tables.indicators.filter((row) => row.family === 'barrier_index' || row.family === 'top3_ranking');
    const xlsx = format === 'xlsx';
    switch (table) {
      case 'indicators':
        return xlsx ? [indicatorTable(tables), indicatorLongTable(tables)] : [indicatorTable(tables)];
      case 'indicators-long':
        return [indicatorLongTable(tables)];
      case 'barriers':
        return xlsx ? [indicatorTable(tables, barriers, 'Barriers'), indicatorLongTable(tables, barriers, 'Barriers (long)')] : [indicatorTable(tables, barriers, 'Barriers')];
      case 'barriers-long':
        return [indicatorLongTable(tables, barriers, 'Barriers (long)')];
      case 'questions':
        return xlsx ? [questionTable(tables), distributionTable(tables, catalogue)] : [questionTable(tables)];
      case 'distributions':
        return [distributionTable(tables, catalogue)];
      case 'quotes': {
        const coordinator = user.role === 'coordinator';
        const quotes = await listQuotes(quoteDeps, filter, { strand: quoteQuery.parse({}).strand, showIdentities: coordinator });
        const sheet = quoteTable(quotes.suppressed ? [] : quotes.quotes, coordinator);
        if (quotes.suppressed) sheet.rows.push([`Quotes ${suppressionNote(tables.thresholds)}.`]);
        return [sheet];
      }
    }
  };

  return router;
}

/** A file name that says what the file is: campaign, table, filter and breakdown, date. */
function exportFileName(scope: ReportScope, filter: EvidenceFilter, table: string, format: string, now: Date): string {
  const slug = (s: string) =>
    s
      .normalize('NFD')
      .replace(/\p{M}/gu, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40);
  const where = DIMENSION_NAMES.filter((d) => filter.where[d]?.length).map((d) => `${d}-${filter.where[d]![0]}`);
  const by = filter.breakdown.length ? [`by-${filter.breakdown.join('-')}`] : [];
  return [slug(scope.campaign) || 'evidence', table, ...where.map(slug), ...by.map(slug), now.toISOString().slice(0, 10)].join('_') + `.${format}`;
}

/** A view's HTML without the site's layout (the PDF wraps it in its own document). */
function renderView(req: Request, view: string, options: object): Promise<string> {
  return new Promise((resolve, reject) => req.app.render(view, options, (error, html) => (error ? reject(error) : resolve(html))));
}

/** The filter as hidden form fields, so that a second form (the column chooser) keeps it. */
function hiddenFields(filter: EvidenceFilter) {
  return [...new URLSearchParams(filterQueryString(filter))].map(([name, value]) => ({ name, value }));
}

/** The JSON the pages could load: suppressed cells carry only {suppressed: true}. */
function publicJson(tables: EvidenceTables) {
  return {
    responses: tables.responses,
    groupResponses: tables.groupResponses,
    breakdown: tables.dimensions,
    columns: tables.columns,
    thresholds: tables.thresholds,
    indicators: tables.indicators,
    questions: tables.questions,
  };
}

type CampaignOption = { _id: unknown; name: string; opensAt?: Date; demo?: boolean | null };

function filterBar(catalogue: QuestionCatalogue, filter: EvidenceFilter, campaigns: CampaignOption[], path: string, exportTable: ExportTable | null) {
  const query = filterQueryString(filter);
  const whereOptions = dimensionSelects(catalogue, filter.where);
  const href = (table: string, format: string, extra = '') => `/evidence/export/${table}.${format}${query || extra ? '?' : ''}${[query, extra].filter(Boolean).join('&')}`;
  const long: Record<string, string | undefined> = { indicators: 'indicators-long', barriers: 'barriers-long', questions: 'distributions' };
  const exportLinks = exportTable
    ? [
        { href: href(exportTable, 'csv'), label: 'CSV' },
        ...(long[exportTable] ? [{ href: href(long[exportTable]!, 'csv'), label: exportTable === 'questions' ? 'CSV, every answer (long)' : 'CSV, long (one row per indicator × group)' }] : []),
        { href: href(exportTable, 'csv', 'separator=semicolon'), label: 'CSV (;)', title: 'For spreadsheets that use a decimal comma' },
        { href: href(exportTable, 'xlsx'), label: 'Excel' },
      ]
    : [];
  return {
    exportLinks,
    filterAction: path,
    campaignOptions: campaigns.map((c) => ({ id: String(c._id), name: c.name, selected: filter.campaigns.includes(String(c._id)) })),
    whereOptions,
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
    // A barrier's index and its top-3 share carry the same name: the label says which is which.
    labels: shown.map((row) => indicatorLabel({ family: row.code.split(':')[0]!, label: row.label })),
    datasets: [
      { label: `A: ${comparison.a.name}`, values: shown.map((row) => value(row.a)) },
      { label: `B: ${comparison.b.name}`, values: shown.map((row) => value(row.b)) },
    ],
  };
}

function tableView(tables: EvidenceTables) {
  const indicatorRows = tables.indicators.map((row: IndicatorRow) => {
    const overall = formatCell(row, row.overall, tables.thresholds);
    return {
      code: row.code,
      family: row.family,
      unit: row.unit,
      label: indicatorLabel(row),
      shortLabel: row.label,
      target: row.target,
      overall,
      overallValue: row.overall.suppressed ? null : row.overall.value,
    };
  });
  return { indicatorRows, responses: countText(tables.responses, tables.thresholds) };
}

/** A bar chart of the overall figures; bars are labelled without the family (the chart's caption names it). */
function chartOf(id: string, label: string, rows: Array<{ shortLabel: string; overallValue: number | null; overall: { suppressed: boolean } }>) {
  const shown = rows.filter((r) => !r.overall.suppressed && r.overallValue !== null);
  return { id, label, labels: shown.map((r) => r.shortLabel), values: shown.map((r) => Number(r.overallValue!.toFixed(1))) };
}
