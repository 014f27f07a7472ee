import { Router } from 'express';
import { Types } from 'mongoose';
import { z } from 'zod';
import type { Models } from '../db/models.ts';
import { HttpError } from '../shared/http-error.ts';
import { LANGUAGES, LANGUAGE_NAMES, type Language } from '../shared/languages.ts';
import { pageText } from '../shared/page-text.ts';
import { noticeFor } from './privacy-notice.ts';

export interface PrivacyRouteDeps {
  models: Models;
  now: () => Date;
}

const noticeParams = z.object({ campaign: z.string().regex(/^[0-9a-f]{24}$/) });
const noticeQuery = z.object({ lang: z.enum(LANGUAGES).catch('en') });

/** The public privacy notice of a campaign, and the coordinator's pages for the data subjects' rights. */
export function privacyRoutes(deps: PrivacyRouteDeps): Router {
  const router = Router();

  // Public: linked from every questionnaire page and every email; it names no respondent.
  router.get('/privacy/:campaign', async (req, res) => {
    const params = noticeParams.safeParse(req.params);
    if (!params.success) throw new HttpError(404, 'This page does not exist.');
    const campaign = await deps.models.Campaign.findById(new Types.ObjectId(params.data.campaign)).lean();
    if (!campaign) throw new HttpError(404, 'This page does not exist.');
    const offered = (campaign.languages?.length ? campaign.languages : [...LANGUAGES]) as Language[];
    const requested = noticeQuery.parse(req.query).lang;
    const language = offered.includes(requested) ? requested : offered[0]!;
    const text = pageText(language);
    res.render('privacy/notice', {
      title: `${text.privacyTitle}: ${campaign.name}`,
      lang: language,
      text,
      campaign: campaign.name,
      notice: noticeFor(campaign, language).text,
      languages: offered.map((code) => ({ code, name: LANGUAGE_NAMES[code], current: code === language, href: `/privacy/${campaign._id}?lang=${code}` })),
    });
  });

  return router;
}
