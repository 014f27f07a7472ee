import { Router } from 'express';
import { Types } from 'mongoose';
import { z } from 'zod';
import { actorOf } from '../accounts/accounts.routes.ts';
import { recordAudit } from '../accounts/audit.service.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import type { Models } from '../db/models.ts';
import { countryLabel, institutionTypeLabel } from '../institutions/institution-codes.ts';
import { separatorOf } from '../shared/csv.ts';
import { formatDay } from '../shared/dates.ts';
import { HttpError } from '../shared/http-error.ts';
import { fieldworkTimelines, institutionRatesCsv } from './fieldwork-timeline.service.ts';
import { campaignFieldwork, LAG_MIN_INVITED, LAG_RULE, nonrespondentsCsv } from './fieldwork.service.ts';

export interface FieldworkRouteDeps {
  models: Models;
  now: () => Date;
}

const idParams = z.object({ id: z.string().regex(/^[0-9a-f]{24}$/).transform((id) => new Types.ObjectId(id)) });

/** The page lists this many non-respondents; the CSV has them all. */
const LISTED_ON_PAGE = 500;

const percent = (rate: number) => `${(rate * 100).toFixed(1)} %`;

/** The coordinator's fieldwork view of a campaign and its non-respondent export. Names and emails: coordinator only. */
export function fieldworkRoutes(deps: FieldworkRouteDeps): Router {
  const router = Router();
  const coordinator = [requireRole('coordinator'), csrfProtection];

  const timelines = fieldworkTimelines(deps);

  async function campaignOf(params: unknown) {
    const parsed = idParams.safeParse(params);
    if (!parsed.success) throw new HttpError(404, 'This campaign does not exist.');
    const campaign = await deps.models.Campaign.findById(parsed.data.id, { name: 1, opensAt: 1, closesAt: 1, closedAt: 1 }).lean();
    if (!campaign) throw new HttpError(404, 'This campaign does not exist.');
    return campaign;
  }

  router.get('/admin/campaigns/:id/fieldwork', ...coordinator, async (req, res) => {
    const campaign = await campaignOf(req.params);
    const [fieldwork, timeline] = await Promise.all([campaignFieldwork(deps, campaign._id), timelines.of(campaign)]);
    const busiest = Math.max(1, ...timeline.days.map((d) => d.completed));
    res.render('fieldwork/fieldwork', {
      days: timeline.days.map((d) => ({ ...d, date: formatDay(d.day), bar: Math.round((d.completed / busiest) * 100), ratePercent: percent(fieldwork.invited ? d.cumulative / fieldwork.invited : 0) })),
      rounds: timeline.rounds.map((r) => ({
        ...r,
        label: r.round === 0 ? 'Invitations' : `Reminder round ${r.round}`,
        date: formatDay(r.startedAt),
        ratePercent: percent(r.emailed ? r.completedAfter / r.emailed : 0),
      })),
      institutions: timeline.institutions.slice(0, LISTED_ON_PAGE).map((i) => ({ ...i, countryLabel: countryLabel(i.country), typeLabel: institutionTypeLabel(i.type), ratePercent: percent(i.completed / i.invited) })),
      institutionCount: timeline.institutions.length,
      institutionsTruncated: timeline.institutions.length > LISTED_ON_PAGE,
      title: `Fieldwork: ${campaign.name}`,
      campaign,
      fieldwork,
      ratePercent: percent(fieldwork.rate),
      segments: fieldwork.segments.map((s) => ({ ...s, ratePercent: percent(s.rate) })),
      lagRule: LAG_RULE,
      lagMinInvited: LAG_MIN_INVITED,
      nonrespondents: fieldwork.nonrespondents(LISTED_ON_PAGE).map((n) => ({ ...n, countryLabel: countryLabel(n.country), institutionTypeLabel: institutionTypeLabel(n.institutionType) })),
      nonrespondentCount: fieldwork.nonrespondentCount,
      truncated: fieldwork.nonrespondentCount > LISTED_ON_PAGE,
      listedOnPage: LISTED_ON_PAGE,
    });
  });

  router.get('/admin/campaigns/:id/fieldwork/nonrespondents.csv', ...coordinator, async (req, res) => {
    const campaign = await campaignOf(req.params);
    const separator = separatorOf(req.query);
    const nonrespondents = (await campaignFieldwork(deps, campaign._id)).nonrespondents();
    await recordAudit(deps.models, {
      actor: actorOf(res),
      action: 'export.nonrespondents',
      target: `campaign:${campaign._id}`,
      details: { rows: nonrespondents.length },
      at: deps.now(),
    });
    res.set({
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="nonrespondents-${campaign._id}.csv"`,
    });
    res.send(nonrespondentsCsv(nonrespondents, separator));
  });
  router.get('/admin/campaigns/:id/fieldwork/institutions.csv', ...coordinator, async (req, res) => {
    const campaign = await campaignOf(req.params);
    const separator = separatorOf(req.query);
    const { institutions } = await timelines.of(campaign);
    res.set({
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="response-rate-by-institution-${campaign._id}.csv"`,
    });
    res.send(institutionRatesCsv(institutions, separator));
  });
  return router;
}
