import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { csrfToken, csrfTokenMatches } from '../shared/csrf.ts';
import { formatDay, formatLastDay } from '../shared/dates.ts';
import { HttpError } from '../shared/http-error.ts';
import { jsonBody } from '../shared/json-body.ts';
import { noStore } from '../shared/no-store.ts';
import { LANGUAGES, LANGUAGE_NAMES, type Language } from '../shared/languages.ts';
import { browserLanguage, pageText } from '../shared/page-text.ts';
import { tokenLinkLimits, type Refusal } from '../shared/rate-limit.ts';
import type { RateLimitWindows } from '../shared/rate-limit.store.ts';
import { SURVEY_CUSTOM_PROPERTIES } from '../surveys/survey-properties.ts';
import { findConsent } from '../privacy/consent.store.ts';
import { noticeFor, requiresConsent } from '../privacy/privacy-notice.ts';
import { answersCopy } from './answers-copy.service.ts';
import { findLink, giveConsent, openQuestionnaire, saveDraft, submit, type LinkState, type RespondDeps } from './respond.service.ts';
import { closedEarlyAt } from '../campaigns/campaign.model.ts';

const languageSchema = z.enum(LANGUAGES);
const draftBody = z.object({
  data: z.record(z.string(), z.unknown()),
  pageNo: z.number().int().min(0).max(500),
  baseRevision: z.number().int().min(0),
  language: languageSchema,
});
const consentBody = z.object({ version: z.string().regex(/^[0-9a-f]{16}$/), language: languageSchema });
const submitBody = z.object({
  data: z.unknown(),
  baseRevision: z.number().int().min(0),
  language: languageSchema,
});

export interface RespondRouteOptions {
  secret: string;
  bodyLimit: number;
  /** Requests allowed per personal link per minute: opening, saving drafts, submitting. */
  requestsPerLinkPerMinute: number;
  /** Unknown tokens allowed per client address per 15 minutes. */
  unknownTokensPerAddress: number;
}

/** The respondent's personal link: /s/<token>, its page, draft saving and submission. */
export function respondRoutes(deps: RespondDeps & { windows: RateLimitWindows }, options: RespondRouteOptions): Router {
  const router = Router();
  const json = jsonBody(options.bodyLimit);

  // The token is looked up first (by primary key): a valid link is then limited per link, an unknown token per address.
  const findPersonalLink = async (req: Request, res: Response, next: NextFunction) => {
    res.locals.link = await findLink(deps, req.params.token);
    next();
  };
  const limits = tokenLinkLimits(
    deps,
    { name: 'link', perLinkPerMinute: options.requestsPerLinkPerMinute, unknownPerAddress: options.unknownTokensPerAddress },
    (req, res) => {
      const link = res.locals.link as LinkState;
      return link.kind === 'unknown' ? undefined : { key: String(req.params.token), language: link.language };
    },
    tooMany,
  );

  /** The open link found for this request; otherwise answers with the page that says why and returns undefined. */
  function openLink(req: Request, res: Response): Extract<LinkState, { kind: 'open' }> | undefined {
    const link = res.locals.link as LinkState;
    if (link.kind === 'open') return link;
    renderUnavailable(req, res, link);
    return undefined;
  }

  router.get('/s/:token', noStore, findPersonalLink, limits, async (req, res) => {
    const link = openLink(req, res);
    if (!link) return;
    const state = await openQuestionnaire(deps, link.campaign, link.invitation);
    const { sections } = deps.questionnaires.forStrands(link.campaign.strands as string[]);
    const text = pageText(state.language, {
      date: formatDate(state.submittedAt, state.language),
      campaign: link.campaign.name,
    });
    const closes = formatLastDay(link.campaign.closesAt, state.language);
    const consent = requiresConsent(link.campaign) ? await findConsent(deps.models, link.invitation._id) : null;
    const languagesOffered = link.campaign.languages as Language[];
    // After submission the link shows a confirmation; ?edit opens the answers for correction.
    const submitted = state.revision > 0 && req.query.edit === undefined;
    res.render('respond/questionnaire', {
      title: text.platformName,
      lang: state.language,
      text,
      closes,
      correctHint: pageText(state.language, { date: closes }).correctHint,
      submitted,
      answersHref: `${req.path.replace(/\/$/, '')}/answers`,
      privacyUrl: privacyPath(link.campaign._id, state.language),
      notice: noticeFor(link.campaign, state.language).text,
      consentRequired: requiresConsent(link.campaign) && !consent,
      consentGiven: consent ? pageText(state.language, { date: formatDate(consent.at, state.language) }).consentGiven : undefined,
      styles: submitted ? [] : ['/vendor/survey-core/survey-core.fontless.min.css'],
      scripts: submitted ? [] : [
        '/vendor/survey-core/survey.core.min.js',
        '/vendor/survey-core/i18n/french.min.js',
        '/vendor/survey-core/i18n/german.min.js',
        '/vendor/survey-js-ui/survey-js-ui.min.js',
        '/static/respond.js',
      ],
      languages: link.campaign.languages.map((code) => ({ code, name: LANGUAGE_NAMES[code as Language], selected: code === state.language })),
      boot: {
        json: state.json,
        version: state.version,
        data: state.data,
        pageNo: state.pageNo,
        revision: state.revision,
        serverSavedAt: state.draftSavedAt?.getTime() ?? 0,
        language: state.language,
        csrf: csrfToken(options.secret, link.invitation.tokenHash),
        customProperties: SURVEY_CUSTOM_PROPERTIES,
        sections: sections.map(({ title, pages }) => ({ title: { en: title.default, fr: title.fr, de: title.de }, pages })),
        texts: Object.fromEntries(LANGUAGES.map((l) => [l, pageText(l)])),
        privacy: {
          consentRequired: requiresConsent(link.campaign) && !consent,
          notices: Object.fromEntries(languagesOffered.map((l) => [l, { ...noticeFor(link.campaign, l), url: privacyPath(link.campaign._id, l) }])),
        },
      },
    });
  });

  // The respondent's copy of their submitted answers: only through their own link, never cached.
  router.get('/s/:token/answers', noStore, findPersonalLink, limits, async (req, res) => {
    const link = openLink(req, res);
    if (!link) return;
    const copy = await answersCopy(deps, deps.questionnaires.forStrands(link.campaign.strands as string[]), link.invitation._id);
    if (!copy) {
      const text = pageText(link.language);
      return void res.status(404).render('respond/unavailable', { lang: link.language, text, title: text.answersCopyTitle, heading: text.answersCopyTitle, message: text.noAnswersYet });
    }
    const text = pageText(copy.language, { campaign: link.campaign.name, date: formatDate(copy.submittedAt, copy.language) });
    if (req.query.download !== undefined) res.attachment(`${text.answersCopyTitle} - ${link.campaign.name}.html`);
    res.render('respond/answers', { title: `${text.answersCopyTitle} – ${link.campaign.name}`, lang: copy.language, text, pages: copy.pages, layout: false });
  });

  router.post('/s/:token/consent', noStore, findPersonalLink, limits, json, async (req, res) => {
    const link = openLink(req, res);
    if (!link) return;
    checkCsrf(req, link);
    const body = parseBody(consentBody, req.body, link.language);
    const consent = await giveConsent(deps, link.campaign, link.invitation, body);
    res.status(201).json({ version: consent.version, at: consent.at });
  });

  router.put('/s/:token/draft', noStore, findPersonalLink, limits, json, async (req, res) => {
    const link = openLink(req, res);
    if (!link) return;
    checkCsrf(req, link);
    const body = parseBody(draftBody, req.body, link.language);
    const { savedAt } = await saveDraft(deps, link.campaign, link.invitation, body);
    res.json({ savedAt });
  });

  router.post('/s/:token/submit', noStore, findPersonalLink, limits, json, async (req, res) => {
    const link = openLink(req, res);
    if (!link) return;
    checkCsrf(req, link);
    const body = parseBody(submitBody, req.body, link.language);
    const result = await submit(deps, link.campaign, link.invitation, body);
    res.status(result.duplicate ? 200 : 201).json(result);
  });

  function checkCsrf(req: Request, link: Extract<LinkState, { kind: 'open' }>) {
    if (!csrfTokenMatches(options.secret, link.invitation.tokenHash, req.get('x-csrf-token'))) {
      throw new HttpError(403, pageText(link.language).pageExpired);
    }
  }

  return router;
}

/** The campaign's public privacy notice, linked from the questionnaire and the emails. */
export function privacyPath(campaignId: unknown, language: Language): string {
  return `/privacy/${String(campaignId)}?lang=${language}`;
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown, language: Language): T {
  const result = schema.safeParse(body);
  if (!result.success) {
    const fields = result.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
    throw new HttpError(400, `${pageText(language).badRequest} (${fields.join('; ')})`);
  }
  return result.data;
}

function wantsJson(req: Request): boolean {
  return req.method !== 'GET';
}

/** 429 in the respondent's language (the invitation's; for unknown tokens, the browser's). */
function tooMany(req: Request, res: Response, { reason, language, seconds }: Refusal) {
  const text = pageText(language, { seconds: String(seconds) });
  const message = reason === 'link' ? text.tooManyRequests : text.tooMany;
  if (wantsJson(req)) return void res.status(429).json({ error: message });
  res.status(429).render('respond/unavailable', { lang: language, text, title: text.tooManyTitle, heading: text.tooManyTitle, message });
}

function renderUnavailable(req: Request, res: Response, state: Exclude<LinkState, { kind: 'open' }>) {
  // A link that names nobody is answered in the browser's language.
  const language = state.kind === 'unknown' ? browserLanguage(req) : state.language;
  const campaign = 'campaign' in state ? state.campaign : undefined;
  // A campaign closed early closed that day; otherwise it closed at the end of its last day.
  const early = campaign && closedEarlyAt(campaign);
  const date = !campaign ? '' : state.kind === 'not-open-yet' ? formatDay(campaign.opensAt, language) : early ? formatDay(early, language) : formatLastDay(campaign.closesAt, language);
  const text = pageText(language, { campaign: campaign?.name ?? '', date });
  const [heading, message, status] = {
    unknown: [text.unknownTitle, text.unknown, 404],
    revoked: [text.revokedTitle, text.revoked, 410],
    replaced: [text.replacedTitle, text.replaced, 410],
    closed: [text.closedTitle, text.closed, 410],
    'not-open-yet': [text.notYetTitle, text.notYet, 403],
  }[state.kind] as [string, string, number];
  if (wantsJson(req)) return void res.status(status).json({ error: message });
  res.status(status).render('respond/unavailable', { lang: language, text, title: heading, heading, message });
}

function formatDate(date: Date | undefined | null, language: Language): string {
  return date ? formatDay(date, language) : '';
}

