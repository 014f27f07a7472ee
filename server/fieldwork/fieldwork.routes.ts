import { Router } from 'express';
import { Types } from 'mongoose';
import { z } from 'zod';
import { actorOf } from '../accounts/accounts.routes.ts';
import { recordAudit } from '../accounts/audit.service.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import type { Models } from '../db/models.ts';
import { countryLabel, institutionTypeLabel } from '../institutions/institution-codes.ts';
import { separatorOf } from '../shared/csv.ts';
import { HttpError } from '../shared/http-error.ts';
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

  async function campaignOf(params: unknown) {
    const parsed = idParams.safeParse(params);
    if (!parsed.success) throw new HttpError(404, 'This campaign does not exist.');
    const campaign = await deps.models.Campaign.findById(parsed.data.id, { name: 1 }).lean();
    if (!campaign) throw new HttpError(404, 'This campaign does not exist.');
    return campaign;
  }

  router.get('/admin/campaigns/:id/fieldwork', ...coordinator, async (req, res) => {
    const campaign = await campaignOf(req.params);
    const fieldwork = await campaignFieldwork(deps, campaign._id);
    res.render('fieldwork/fieldwork', {
      title: `Fieldwork: ${campaign.name}`,
      campaign,
      fieldwork,
      ratePercent: percent(fieldwork.rate),
      segments: fieldwork.segments.map((s) => ({ ...s, ratePercent: percent(s.rate) })),
      lagRule: LAG_RULE,
      lagMinInvited: LAG_MIN_INVITED,
      nonrespondents: fieldwork.nonrespondents.slice(0, LISTED_ON_PAGE).map((n) => ({ ...n, countryLabel: countryLabel(n.country), institutionTypeLabel: institutionTypeLabel(n.institutionType) })),
      nonrespondentCount: fieldwork.nonrespondents.length,
      truncated: fieldwork.nonrespondents.length > LISTED_ON_PAGE,
      listedOnPage: LISTED_ON_PAGE,
    });
  });

  router.get('/admin/campaigns/:id/fieldwork/nonrespondents.csv', ...coordinator, async (req, res) => {
    const campaign = await campaignOf(req.params);
    const separator = separatorOf(req.query);
    const { nonrespondents } = await campaignFieldwork(deps, campaign._id);
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
  return router;
}
