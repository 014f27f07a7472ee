import { Router } from 'express';
import { Types } from 'mongoose';
import { z } from 'zod';
import { actorOf } from '../accounts/accounts.routes.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import { formatDay, formatLastDay } from '../shared/dates.ts';
import { HttpError } from '../shared/http-error.ts';
import { LANGUAGES, LANGUAGE_NAMES } from '../shared/languages.ts';
import { pageText } from '../shared/page-text.ts';
import { separatorOf } from '../shared/csv.ts';
import { accessReport, accessReportCsv, ERASURE_MODES, erasePerson, lookUpPerson, previewErasure, publicNotice, SECTION_NAMES, type PrivacyDeps, type Section } from './privacy.service.ts';
import { exportRecordsOfProcessing, recordsCsv, recordsOfProcessing } from './records.service.ts';
import { retentionOverview, runRetention } from './retention.service.ts';

export type PrivacyRouteDeps = PrivacyDeps;

// The address travels in form bodies, never in a URL: URLs end up in logs.
const subjectBody = z.object({ email: z.string().trim().toLowerCase().pipe(z.email('this is not an email address').max(254)) });
const accessBody = subjectBody.extend({ format: z.enum(['json', 'html', 'csv', 'csv-semicolon']) });
const eraseBody = subjectBody.extend({ mode: z.enum(ERASURE_MODES), confirm: z.literal('yes').optional() });

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new HttpError(400, `The form is not valid: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data;
}

const sectionRows = (counts: Record<Section, number>) => (Object.keys(SECTION_NAMES) as Section[]).map((s) => ({ name: SECTION_NAMES[s], count: counts[s] }));

const noticeParams = z.object({ campaign: z.string().regex(/^[0-9a-f]{24}$/) });
const noticeQuery = z.object({ lang: z.enum(LANGUAGES).catch('en') });

/** The public privacy notice of a campaign, and the coordinator's pages for the data subjects' rights. */
export function privacyRoutes(deps: PrivacyRouteDeps): Router {
  const router = Router();

  // Public: linked from every questionnaire page and every email; it names no respondent.
  router.get('/privacy/:campaign', async (req, res) => {
    const params = noticeParams.safeParse(req.params);
    if (!params.success) throw new HttpError(404, 'This page does not exist.');
    const { campaign, language, offered, notice } = await publicNotice(deps, new Types.ObjectId(params.data.campaign), noticeQuery.parse(req.query).lang);
    const text = pageText(language);
    res.render('privacy/notice', {
      title: `${text.privacyTitle}: ${campaign.name}`,
      lang: language,
      text,
      campaign: campaign.name,
      notice,
      languages: offered.map((code) => ({ code, name: LANGUAGE_NAMES[code], current: code === language, href: `/privacy/${campaign._id}?lang=${code}` })),
    });
  });

  const coordinator = [requireRole('coordinator'), csrfProtection];

  const overviewPage = async () => {
    const retention = await retentionOverview(deps);
    return { title: 'Personal data', retention, anyDue: retention.some((plan) => plan.due && !plan.purgedAt) };
  };

  router.get('/admin/privacy', ...coordinator, async (_req, res) => {
    res.render('privacy/index', await overviewPage());
  });

  // What the scheduler would do at its next check, now: the same claims, so it never purges twice.
  router.post('/admin/privacy/retention', ...coordinator, async (_req, res) => {
    const actor = actorOf(res);
    const purged = await runRetention({ ...deps, workerId: `coordinator page, process ${process.pid}` }, actor);
    const page = await overviewPage();
    const names = new Map(page.retention.map((plan) => [String(plan.campaign), plan.name]));
    res.render('privacy/index', { ...page, ranNow: true, purgedNow: purged.map((id) => names.get(String(id)) ?? String(id)) });
  });

  router.get('/admin/privacy/records', ...coordinator, async (_req, res) => {
    const records = await recordsOfProcessing(deps);
    res.render('privacy/records', { title: 'Records of processing', records });
  });

  router.get('/admin/privacy/records.:format', ...coordinator, async (req, res) => {
    const format = z.enum(['json', 'csv']).safeParse(req.params.format);
    if (!format.success) throw new HttpError(404, 'This page does not exist.');
    const separator = separatorOf(req.query);
    const records = await exportRecordsOfProcessing(deps, format.data, actorOf(res));
    res.set('Content-Disposition', `attachment; filename="records-of-processing.${format.data}"`);
    if (format.data === 'json') return void res.json(records);
    res.type('text/csv; charset=utf-8').send(recordsCsv(records, separator));
  });

  // A person, found by address: what is held, and the actions on it.
  router.post('/admin/privacy/subject', ...coordinator, async (req, res) => {
    const { email } = parse(subjectBody, req.body);
    const counts = await lookUpPerson(deps, email, actorOf(res));
    res.render('privacy/subject', { title: 'Personal data of one person', email, sections: sectionRows(counts), held: Object.values(counts).some((n) => n > 0) });
  });

  router.post('/admin/privacy/access', ...coordinator, async (req, res) => {
    const { email, format } = parse(accessBody, req.body);
    const report = await accessReport(deps, email, actorOf(res));
    const stamp = report.generatedAt.toISOString().slice(0, 10);
    if (format === 'json') {
      res.set('Content-Disposition', `attachment; filename="personal-data-${stamp}.json"`);
      res.type('application/json').send(JSON.stringify(report, null, 2));
      return;
    }
    if (format === 'csv' || format === 'csv-semicolon') {
      res.set('Content-Disposition', `attachment; filename="personal-data-${stamp}.csv"`);
      res.type('text/csv; charset=utf-8').send(accessReportCsv(report, format === 'csv' ? ',' : ';'));
      return;
    }
    res.set('Content-Disposition', `attachment; filename="personal-data-${stamp}.html"`);
    res.render('privacy/access-report', {
      title: `Personal data held about ${report.subject}`,
      layout: false,
      report,
      emails: report.data.sentEmails,
      sections: (Object.keys(SECTION_NAMES) as Section[]).map((s) => ({ name: SECTION_NAMES[s], documents: report.data[s].map((d) => JSON.stringify(d, null, 2)) })),
    });
  });

  // Erasure: the preview lists what goes; the same form with confirm=yes runs it.
  router.post('/admin/privacy/erase', ...coordinator, async (req, res) => {
    const { email, mode, confirm } = parse(eraseBody, req.body);
    if (confirm !== 'yes') {
      const { counts, interruptedAt } = await previewErasure(deps, email, mode, actorOf(res));
      res.render('privacy/erase-preview', {
        title: 'Erase personal data: preview',
        email,
        mode,
        forget: mode === 'forget',
        sections: sectionRows(counts),
        interruptedAt,
      });
      return;
    }
    const result = await erasePerson(deps, { email, mode, actor: actorOf(res) });
    res.render('privacy/erased', { title: 'Personal data erased', changed: result.changed, forget: mode === 'forget', sections: sectionRows(result.counts) });
  });

  return router;
}
