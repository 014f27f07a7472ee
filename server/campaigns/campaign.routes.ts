import { Router, type Response } from 'express';
import { Types } from 'mongoose';
import { z } from 'zod';
import { actorOf } from '../accounts/accounts.routes.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import type { SignedInUser } from '../accounts/user.service.ts';
import { listTestSends } from '../mail/test-send.service.ts';
import { HttpError } from '../shared/http-error.ts';
import { COUNTRY_CODES, INSTITUTION_TYPES } from '../institutions/institution-codes.ts';
import { LANGUAGES, LANGUAGE_NAMES } from '../shared/languages.ts';
import { defaultNotice, LAWFUL_BASES, LAWFUL_BASIS_NAMES } from '../privacy/privacy-notice.ts';
import { countryLabel, EVERYONE, parseEmailList, parseTags, summariseAudience, type StoredAudience } from './audience.service.ts';
import { closedEarlyAt, EMAIL_KINDS, STRAND_CODES } from './campaign.model.ts';
import { PLACEHOLDERS } from './campaign-email.service.ts';
import { campaignLinks } from '../invitations/link-population.ts';
import {
  closeCampaignEarly,
  closePreview,
  createCampaign,
  formTemplates,
  getCampaign,
  inviteCampaign,
  listCampaigns,
  previewCampaignEmails,
  updateCampaign,
  type CampaignDeps,
  type CampaignInput,
} from './campaign.service.ts';

export interface CampaignRouteDeps extends CampaignDeps {
  tokenKey: Buffer;
  publicUrl: string;
}

const STRAND_NAMES: Record<string, string> = {
  S1: 'S1 Preconditions and supporting factors',
  S2: 'S2 Quality of learner mobility',
  S3: 'S3 Roles and competences',
  S4: 'S4 Impact on management (one per institution)',
};
const DAY = 86_400_000;
const idParams = z.object({ id: z.string().regex(/^[0-9a-f]{24}$/).transform((id) => new Types.ObjectId(id)) });
const list = z.preprocess((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]), z.array(z.string().max(20)).max(10));
const codes = z.preprocess((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]), z.array(z.string().max(20)).max(60));
const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date is missing');
const formBody = z.looseObject({
  name: z.string().max(300),
  strands: list,
  languages: list,
  opensOn: date,
  lastDay: date,
  senderName: z.string().max(300).default(''),
  replyTo: z.string().max(300).default(''),
  lawfulBasis: z.string().max(40).default('legitimate-interest'),
  retentionMonths: z.string().max(10).default('24'),
  audienceCountries: codes,
  audienceTypes: codes,
  audienceTags: z.string().max(1000).default(''),
  audienceEmails: z.string().max(2_000_000).default(''),
});
const inviteBody = z.object({ expected: z.string().regex(/^\d{1,7}$/).transform(Number).optional() });

/** Coordinator pages for campaigns: create, edit (with the email texts), preview the emails, invite. */
export function campaignRoutes(deps: CampaignRouteDeps): Router {
  const router = Router();
  const coordinator = [requireRole('coordinator'), csrfProtection];

  router.get('/admin/campaigns', ...coordinator, async (_req, res) => {
    res.render('campaigns/list', { title: 'Campaigns', campaigns: await listCampaigns(deps) });
  });

  router.get('/admin/campaigns/new', ...coordinator, (_req, res) => {
    const today = deps.now().toISOString().slice(0, 10);
    const inSixWeeks = new Date(deps.now().getTime() + 42 * DAY).toISOString().slice(0, 10);
    renderForm(res, { values: { name: '', strands: [...STRAND_CODES], languages: [...LANGUAGES], opensOn: today, lastDay: inSixWeeks, senderName: '', replyTo: '', ...audienceValues(EVERYONE), lawfulBasis: 'legitimate-interest', retentionMonths: '24' }, templates: formTemplates(undefined), notices: formNotices(undefined) });
  });

  router.post('/admin/campaigns', ...coordinator, async (req, res) => {
    const input = campaignFromForm(req.body);
    try {
      const campaign = await createCampaign(deps, input, actorOf(res));
      res.redirect(303, `/admin/campaigns/${campaign._id}`);
    } catch (error) {
      renderProblems(res, error, req.body, input);
    }
  });

  router.get('/admin/campaigns/:id', ...coordinator, async (req, res) => {
    const id = parseId(req.params);
    const campaign = await getCampaign(deps, id);
    const audience = await summariseAudience(deps.models, campaign);
    const closedEarly = closedEarlyAt(campaign);
    renderForm(res, {
      campaign,
      audience,
      invitations: (await campaignLinks(deps.models, id)).total,
      values: {
        name: campaign.name,
        strands: campaign.strands,
        languages: campaign.languages,
        opensOn: campaign.opensAt.toISOString().slice(0, 10),
        lastDay: new Date(campaign.closesAt.getTime() - 1).toISOString().slice(0, 10),
        senderName: campaign.senderName ?? '',
        replyTo: campaign.replyTo ?? '',
        lawfulBasis: campaign.lawfulBasis ?? 'legitimate-interest',
        retentionMonths: String(campaign.retentionMonths ?? 24),
        ...audienceValues({ ...EVERYONE, ...campaign.audience }),
      },
      templates: formTemplates(campaign),
      notices: formNotices(campaign),
      invited: typeof req.query.invited === 'string' && /^\d+$/.test(req.query.invited) ? Number(req.query.invited) : undefined,
      justClosed: req.query.closed === '1',
      open: !campaign.closedAt && campaign.closesAt > deps.now(),
      // Closed before its last day, or ended (its last day passed, or closed on it as seed:demo's past waves are).
      closedEarlyAt: closedEarly,
      ended: !closedEarly && (Boolean(campaign.closedAt) || campaign.closesAt <= deps.now()),
    });
  });

  // Closing early: a page that says what will happen, then a confirmation.
  router.get('/admin/campaigns/:id/close', ...coordinator, async (req, res) => {
    const preview = await closePreview(deps, parseId(req.params));
    res.render('campaigns/close', { title: `Close ${preview.campaign.name} early`, ...preview, today: deps.now() });
  });

  router.post('/admin/campaigns/:id/close', ...coordinator, async (req, res) => {
    const id = parseId(req.params);
    if (req.body?.confirm !== 'yes') throw new HttpError(400, 'Please confirm on the closing page.');
    await closeCampaignEarly(deps, id, actorOf(res));
    res.redirect(303, `/admin/campaigns/${id}?closed=1`);
  });

  router.post('/admin/campaigns/:id', ...coordinator, async (req, res) => {
    const id = parseId(req.params);
    const input = campaignFromForm(req.body);
    try {
      await updateCampaign(deps, id, input, actorOf(res));
      res.redirect(303, `/admin/campaigns/${id}`);
    } catch (error) {
      renderProblems(res, error, req.body, input, await getCampaign(deps, id));
    }
  });

  router.get('/admin/campaigns/:id/preview', ...coordinator, async (req, res) => {
    const id = parseId(req.params);
    const campaign = await getCampaign(deps, id);
    const emails = await previewCampaignEmails(deps, id);
    res.render('campaigns/preview', {
      title: `Emails of ${campaign.name}`,
      campaign,
      emails: emails.map((e) => ({ ...e, languageName: LANGUAGE_NAMES[e.language] })),
      testSends: await listTestSends(deps, id),
      me: (res.locals.user as SignedInUser).email,
      returnTo: 'preview',
    });
  });

  router.post('/admin/campaigns/:id/invite', ...coordinator, async (req, res) => {
    const id = parseId(req.params);
    const body = inviteBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'The form is incomplete: please reload the campaign page.');
    const result = await inviteCampaign(deps, id, actorOf(res), { expected: body.data.expected });
    res.redirect(303, `/admin/campaigns/${id}?invited=${result.created}`);
  });

  return router;
}

/** Reads the campaign form: the dates are whole days in UTC; the close is the end of the last day. */
function campaignFromForm(body: unknown): CampaignInput {
  const form = formBody.safeParse(body);
  if (!form.success) throw new HttpError(400, 'The form is incomplete: please fill in the name and both dates.');
  const fields = form.data as Record<string, unknown>;
  const templates = LANGUAGES.flatMap((language) =>
    EMAIL_KINDS.map((kind) => ({
      kind,
      language,
      subject: String(fields[`tpl_${language}_${kind}_subject`] ?? ''),
      body: String(fields[`tpl_${language}_${kind}_body`] ?? '').replace(/\r\n/g, '\n'),
    })),
  ).filter((t) => (form.data.languages as string[]).includes(t.language));
  return {
    name: form.data.name,
    strands: form.data.strands as CampaignInput['strands'],
    languages: form.data.languages as CampaignInput['languages'],
    opensAt: new Date(`${form.data.opensOn}T00:00:00Z`),
    closesAt: new Date(new Date(`${form.data.lastDay}T00:00:00Z`).getTime() + DAY),
    senderName: form.data.senderName,
    replyTo: form.data.replyTo,
    templates,
    lawfulBasis: form.data.lawfulBasis as CampaignInput['lawfulBasis'],
    retentionMonths: form.data.retentionMonths,
    privacyNotices: LANGUAGES.filter((language) => (form.data.languages as string[]).includes(language)).map((language) => ({
      language,
      text: String(fields[`notice_${language}`] ?? '').replace(/\r\n/g, '\n'),
    })),
    audience: {
      // Checked by campaignInputSchema in the service.
      countries: form.data.audienceCountries as never,
      types: form.data.audienceTypes as never,
      tags: parseTags(form.data.audienceTags),
      emails: parseEmailList(form.data.audienceEmails).emails,
    },
  };
}

/**
 * The notice per language as the form shows it: the campaign's own text, or
 * empty (then the default text, shown beside it, applies).
 */
function formNotices(campaign: { privacyNotices?: ReadonlyArray<{ language: string; text: string }>; name?: string } | undefined, body?: Record<string, unknown>) {
  return LANGUAGES.map((language) => ({
    language,
    languageName: LANGUAGE_NAMES[language],
    field: `notice_${language}`,
    text: body ? String(body[`notice_${language}`] ?? '') : (campaign?.privacyNotices?.find((n) => n.language === language)?.text ?? ''),
    defaultText: defaultNotice({ name: campaign?.name ?? '(campaign name)', ...campaign }, language),
  }));
}


/** The audience as the form shows it. */
function audienceValues(audience: StoredAudience) {
  return { audienceCountries: [...audience.countries], audienceTypes: [...audience.types], audienceTags: audience.tags.join(', '), audienceEmails: audience.emails.join('\n') };
}

function renderForm(
  res: Response,
  data: Record<string, unknown> & {
    values: Record<string, unknown> & { strands: readonly string[]; languages: readonly string[]; audienceCountries: readonly string[]; audienceTypes: readonly string[] };
    templates: ReturnType<typeof formTemplates>;
    notices: ReturnType<typeof formNotices>;
  },
  status = 200,
) {
  res.status(status).render('campaigns/form', {
    title: data.campaign ? `Campaign: ${(data.campaign as { name: string }).name}` : 'New campaign',
    ...data,
    strandChoices: STRAND_CODES.map((code) => ({ code, label: STRAND_NAMES[code], checked: data.values.strands.includes(code) })),
    languageChoices: LANGUAGES.map((code) => ({ code, label: LANGUAGE_NAMES[code], checked: data.values.languages.includes(code) })),
    basisChoices: LAWFUL_BASES.map((code) => ({ code, label: LAWFUL_BASIS_NAMES[code], checked: data.values.lawfulBasis === code })),
    countryChoices: COUNTRY_CODES.map((code) => ({ code, label: countryLabel(code), selected: data.values.audienceCountries.includes(code) })),
    typeChoices: INSTITUTION_TYPES.map((t) => ({ code: t.code, label: t.label, checked: data.values.audienceTypes.includes(t.code) })),
    templates: data.templates.map((t) => ({ ...t, languageName: LANGUAGE_NAMES[t.language as keyof typeof LANGUAGE_NAMES], field: `tpl_${t.language}_${t.kind}` })),
    placeholders: PLACEHOLDERS.filter((p) => p !== 'started').map((p) => `{{${p}}}`).join(' '),
  });
}

function renderProblems(res: Response, error: unknown, body: Record<string, unknown>, input: CampaignInput, campaign?: unknown) {
  if (!(error instanceof HttpError) || error.status !== 400) throw error;
  renderForm(
    res,
    {
      campaign,
      problems: (error.details?.problems as string[] | undefined) ?? [error.message],
      values: { ...body, strands: input.strands as string[], languages: input.languages as string[], ...audienceValues({ ...EVERYONE, ...input.audience }) },
      templates: LANGUAGES.flatMap((language) =>
        EMAIL_KINDS.map((kind) => ({ kind, language, subject: String(body[`tpl_${language}_${kind}_subject`] ?? ''), body: String(body[`tpl_${language}_${kind}_body`] ?? '') })),
      ),
      notices: formNotices(campaign as Parameters<typeof formNotices>[0], body),
    },
    400,
  );
}

function parseId(params: unknown): Types.ObjectId {
  const parsed = idParams.safeParse(params);
  if (!parsed.success) throw new HttpError(404, 'This page does not exist.');
  return parsed.data.id;
}
