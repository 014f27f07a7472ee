import express, { type NextFunction, type Request, type Response } from 'express';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accountRoutes } from './accounts/accounts.routes.ts';
import { accountSession, SESSION_PATHS } from './accounts/auth.middleware.ts';
import type { SignInLimits } from './accounts/sign-in-throttle.ts';
import { campaignRoutes } from './campaigns/campaign.routes.ts';
import type { Models } from './db/models.ts';
import { IMPORT_BODY_LIMIT, IMPORT_UPLOAD_PATH, institutionRoutes } from './institutions/institution.routes.ts';
import { mailRoutes, type MailCatcherView } from './mail/mail.routes.ts';
import { unsubscribeRoutes } from './mail/unsubscribe.routes.ts';
import { reminderRoutes } from './reminders/reminder.routes.ts';
import { respondRoutes } from './respond/respond.routes.ts';
import { DEFAULT_THRESHOLDS } from './evidence/disclosure.ts';
import { evidenceRoutes } from './evidence/evidence.routes.ts';
import { fieldworkRoutes } from './fieldwork/fieldwork.routes.ts';
import { EvidenceService } from './evidence/indicator.service.ts';
import { buildCatalogue } from './evidence/question-catalogue.ts';
import { HttpError } from './shared/http-error.ts';
import { RateLimitWindows } from './shared/rate-limit.store.ts';
import { createViewEngine } from './shared/view-engine.ts';
import { loadSurveyLibrary } from './surveys/definitions.ts';
import type { QuestionnaireRegistry } from './surveys/questionnaire-registry.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const viewsDir = join(root, 'views');
const modulesDir = join(root, 'node_modules');

export interface AppDeps {
  models: Models;
  questionnaires: QuestionnaireRegistry;
  secrets: { sessionSecret: string; tokenKey: Buffer };
  now: () => Date;
  /** The local mail catcher's messages, shown at /admin/mail when the platform runs without SMTP_URL. */
  mailCatcher?: MailCatcherView;
  /** Tells the background sender that messages were just enqueued. */
  wakeSender?: () => void;
  /** The address people reach the platform at (used in links shown to the coordinator). */
  publicUrl?: string;
  options: {
    bodyLimit: number;
    /** Requests per personal link, and per unsubscribe link, per minute. */
    tokenRateLimit: number;
    /** Unknown link tokens per client address per 15 minutes (default 10). */
    unknownTokenLimit?: number;
    /** Cache compiled templates (off in development so edits show at once). */
    cacheViews: boolean;
    /** Express "trust proxy": set when the platform runs behind a reverse proxy. */
    trustProxy?: boolean | number | string;
    /** Secure flag on the session cookie: set when PUBLIC_URL is https. */
    secureCookies?: boolean;
    /** Failed sign-ins before delays start, per (account, client address) and per client address (defaults 5 and 20). */
    signInLimits?: SignInLimits;
    /** Disclosure control: evidence cells with fewer institutions or respondents are suppressed (defaults 5 and 10). */
    minCellInstitutions?: number;
    minCellRespondents?: number;
  };
}

/** Builds the platform's web application from its dependencies; index.ts runs it. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  if (deps.options.trustProxy !== undefined) app.set('trust proxy', deps.options.trustProxy);

  const views = createViewEngine(viewsDir, { cache: deps.options.cacheViews });
  app.engine('hbs', views.render);
  app.set('view engine', 'hbs');
  app.set('views', viewsDir);

  app.use(securityHeaders);

  // Browser libraries come from the installed packages, never from a CDN:
  // the platform must work on a closed network and send no visitor elsewhere.
  const vendor = (path: string) => express.static(join(modulesDir, path), { immutable: true, maxAge: '7d', index: false });
  app.use('/vendor/survey-core', vendor('survey-core'));
  app.use('/vendor/survey-js-ui', vendor('survey-js-ui'));
  app.use('/vendor/chart.js', vendor('chart.js/dist'));
  app.use('/static', express.static(join(viewsDir, 'static'), { maxAge: '1h', index: false }));

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/', (_req, res) => {
    res.render('home', { title: 'VET staff mobility survey', lang: 'en' });
  });

  // Signed-in pages only: respondents' personal links never get a session cookie.
  app.use(
    SESSION_PATHS,
    accountSession({
      models: deps.models,
      secret: deps.secrets.sessionSecret,
      secureCookies: deps.options.secureCookies ?? false,
      bodyLimit: deps.options.bodyLimit,
      largeBodies: [{ path: IMPORT_UPLOAD_PATH, limit: IMPORT_BODY_LIMIT }],
      now: deps.now,
    }),
  );
  // Rate-limit counters in the database: the limits hold across every instance of the platform.
  const windows = new RateLimitWindows({ models: deps.models, now: deps.now });
  const linkLimits = { requestsPerLinkPerMinute: deps.options.tokenRateLimit, unknownTokensPerAddress: deps.options.unknownTokenLimit ?? 10 };

  app.use(accountRoutes({ models: deps.models, now: deps.now, windows }, deps.options.signInLimits));
  app.use(institutionRoutes({ models: deps.models, now: deps.now }));
  app.use(campaignRoutes({ models: deps.models, now: deps.now, tokenKey: deps.secrets.tokenKey, publicUrl: deps.publicUrl ?? '' }));

  const evidence = new EvidenceService({
    models: deps.models,
    catalogue: buildCatalogue(loadSurveyLibrary()),
    thresholds: {
      minInstitutions: deps.options.minCellInstitutions ?? DEFAULT_THRESHOLDS.minInstitutions,
      minRespondents: deps.options.minCellRespondents ?? DEFAULT_THRESHOLDS.minRespondents,
    },
  });
  app.use(evidenceRoutes({ models: deps.models, evidence, pseudonymKey: deps.secrets.tokenKey, now: deps.now }));

  app.use(
    respondRoutes(
      { models: deps.models, questionnaires: deps.questionnaires, now: deps.now, onResponseRecorded: evidence.invalidate, windows },
      { secret: deps.secrets.sessionSecret, bodyLimit: deps.options.bodyLimit, ...linkLimits },
    ),
  );

  app.use(unsubscribeRoutes({ models: deps.models, tokenKey: deps.secrets.tokenKey, now: deps.now, windows }, linkLimits));
  app.use(mailRoutes({ models: deps.models, now: deps.now, mailCatcher: deps.mailCatcher, wakeSender: deps.wakeSender }));
  app.use(reminderRoutes({ models: deps.models, now: deps.now, wakeSender: deps.wakeSender }));
  app.use(fieldworkRoutes({ models: deps.models, now: deps.now }));

  app.use((_req, _res, next) => next(new HttpError(404, 'This page does not exist.')));
  app.use(errorHandler);
  return app;
}

/** Content-Security-Policy allows only the platform's own origin: no request can leave it. */
function securityHeaders(_req: Request, res: Response, next: NextFunction) {
  res.set({
    'Content-Security-Policy': [
      "default-src 'self'",
      "script-src 'self'",
      // SurveyJS sets inline style attributes on rendered elements.
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data:",
      "font-src 'self'",
      "connect-src 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
      "object-src 'none'",
    ].join('; '),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
  });
  next();
}

/**
 * The one error middleware. Expected failures (HttpError, and the body
 * parser's 400/413) answer with their status and message; anything else is
 * logged with its context and shown as a plain 500 without details.
 */
function errorHandler(error: unknown, req: Request, res: Response, _next: NextFunction) {
  let status = 500;
  let message = 'Something went wrong on our side. Please try again in a moment.';
  let details: Record<string, unknown> | undefined;
  if (error instanceof HttpError) {
    ({ status, message, details } = error);
  } else if (isBodyParserError(error)) {
    status = error.status;
    message = status === 413 ? 'The request is too large.' : 'The request body is not valid JSON.';
  } else {
    console.error(`Unexpected error on ${req.method} ${req.originalUrl}:`, error);
  }
  if (res.headersSent) return;
  const wantsJson = req.method !== 'GET' || req.accepts(['html', 'json']) === 'json';
  if (wantsJson) {
    res.status(status).json({ error: message, ...details });
  } else if (error instanceof HttpError && error.view) {
    res.status(status).render(error.view.name, error.view.data);
  } else {
    res.status(status).render('error', { title: message, lang: 'en', status, message });
  }
}

function isBodyParserError(error: unknown): error is { status: 400 | 413; type: string } {
  return (
    typeof error === 'object' &&
    error !== null &&
    'type' in error &&
    typeof (error as { type: unknown }).type === 'string' &&
    ((error as { status?: unknown }).status === 400 || (error as { status?: unknown }).status === 413)
  );
}
