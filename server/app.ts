import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accountRoutes } from './accounts/accounts.routes.ts';
import { accountSession, SESSION_PATHS } from './accounts/auth.middleware.ts';
import type { SignInLimits } from './accounts/sign-in-throttle.ts';
import { campaignRoutes } from './campaigns/campaign.routes.ts';
import { demoDataRoutes } from './campaigns/demo-data.routes.ts';
import type { Models } from './db/models.ts';
import type { Secrets } from './shared/secrets.ts';
import { IMPORT_BODY_LIMIT, IMPORT_UPLOAD_PATH, institutionRoutes } from './institutions/institution.routes.ts';
import { invitationRoutes } from './invitations/invitation.routes.ts';
import { mailRoutes, type MailCatcherView } from './mail/mail.routes.ts';
import { unsubscribeRoutes } from './mail/unsubscribe.routes.ts';
import { privacyRoutes } from './privacy/privacy.routes.ts';
import { textQuestionNames } from './privacy/privacy.service.ts';
import { reminderRoutes } from './reminders/reminder.routes.ts';
import { respondRoutes } from './respond/respond.routes.ts';
import type { ValidateSubmission } from './respond/validation-pool.ts';
import { DEFAULT_THRESHOLDS } from './evidence/disclosure.ts';
import { evidenceRoutes } from './evidence/evidence.routes.ts';
import { QuoteCache, quotedQuestions } from './evidence/evidence-quotes.service.ts';
import { fieldworkRoutes } from './fieldwork/fieldwork.routes.ts';
import { decodeRecord, flattenerOf, type JournalTimings, type RecordChange } from './evidence/analytic-record.ts';
import { EvidenceService } from './evidence/indicator.service.ts';
import { buildCatalogue } from './evidence/question-catalogue.ts';
import { HttpError } from './shared/http-error.ts';
import { MAX_JSON_DEPTH } from './shared/json-body.ts';
import { isLanguage, type Language } from './shared/languages.ts';
import { browserLanguage, pageText } from './shared/page-text.ts';
import { createLogger, requestLogger, type Logger } from './shared/logger.ts';
import { noStore } from './shared/no-store.ts';
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
  secrets: Secrets;
  now: () => Date;
  /** The local mail catcher's messages, shown at /admin/mail when the platform runs without SMTP_URL. */
  mailCatcher?: MailCatcherView;
  /** Tells the background sender that messages were just enqueued. */
  wakeSender?: () => void;
  /** Starts queueing a recorded "send the invitations" in the background (index.ts runs the queue). */
  queueInvitations?: () => void;
  /** The structured log (pino); without it, warnings and errors as JSON on standard output. */
  logger?: Logger;
  /** Validates submissions in worker threads; without it, on the event loop. */
  validateSubmission?: ValidateSubmission;
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
    /** Strict-Transport-Security (browsers then use https only): set when PUBLIC_URL is https. */
    strictTransportSecurity?: boolean;
    /** Failed sign-ins before delays start, per (account, client address) and per client address (defaults 5 and 20). */
    signInLimits?: SignInLimits;
    /** Disclosure control: evidence cells with fewer institutions or respondents are suppressed (defaults 5 and 10). */
    minCellInstitutions?: number;
    minCellRespondents?: number;
    /** Disclosure control: the narrowest range an outsider may derive for a hidden count (DISCLOSURE_MIN_RANGE, default 1). */
    disclosureMinRange?: number;
    /**
     * Disclosure control: open quantities up to which answer counts are also solved by linear programming
     * (DISCLOSURE_SOLVE_UNKNOWNS: the server passes the setting's, 6,000 by default). Absent: 0, none, for the tests'
     * platforms, whose many small campaigns are each decided from scratch (the solver's tests set it themselves).
     */
    disclosureSolveUnknowns?: number;
    /** How often the evidence looks for records other processes stored (EVIDENCE_POLL_MS, default 500). */
    evidencePollMs?: number;
    /** The least time between the starts of two disclosure decisions taken ahead of pages (EVIDENCE_DECISION_GAP_MS, default 500). */
    evidenceDecisionGapMs?: number;
    /** The evidence journal's timings: intents' grace, followers' lease, compaction (tests shorten them). */
    evidenceJournal?: JournalTimings;
  };
}

/** Builds the platform's web application from its dependencies; index.ts runs it. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const logger = deps.logger ?? createLogger({ level: 'warn', pretty: false });
  if (deps.options.trustProxy !== undefined) app.set('trust proxy', deps.options.trustProxy);

  const views = createViewEngine(viewsDir, { cache: deps.options.cacheViews });
  app.engine('hbs', views.render);
  app.set('view engine', 'hbs');
  app.set('views', viewsDir);

  app.use(requestLogger(logger));
  app.use(securityHeaders({ strictTransportSecurity: deps.options.strictTransportSecurity ?? false }));

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
    noStore,
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
  const windows = new RateLimitWindows({ models: deps.models, now: deps.now, logger });
  const linkLimits = { requestsPerLinkPerMinute: deps.options.tokenRateLimit, unknownTokensPerAddress: deps.options.unknownTokenLimit ?? 10 };

  app.use(accountRoutes({ models: deps.models, now: deps.now, windows, logger, publicUrl: deps.publicUrl }, deps.options.signInLimits));
  app.use(institutionRoutes({ models: deps.models, now: deps.now }));
  app.use(campaignRoutes({ models: deps.models, now: deps.now, tokenKey: deps.secrets.tokenKey, publicUrl: deps.publicUrl ?? '' }));
  app.use(invitationRoutes({ models: deps.models, now: deps.now, tokenKey: deps.secrets.tokenKey, publicUrl: deps.publicUrl ?? '' }));

  const catalogue = buildCatalogue(loadSurveyLibrary());
  const evidence = new EvidenceService({
    models: deps.models,
    catalogue,
    tagKey: deps.secrets.tagKey,
    thresholds: {
      minInstitutions: deps.options.minCellInstitutions ?? DEFAULT_THRESHOLDS.minInstitutions,
      minRespondents: deps.options.minCellRespondents ?? DEFAULT_THRESHOLDS.minRespondents,
      minRange: deps.options.disclosureMinRange ?? DEFAULT_THRESHOLDS.minRange,
      solveUnknowns: deps.options.disclosureSolveUnknowns ?? 0,
    },
    pollMs: deps.options.evidencePollMs,
    decisionGapMs: deps.options.evidenceDecisionGapMs,
    journal: deps.options.evidenceJournal,
    logger,
  });
  app.locals.evidence = evidence;
  // Following other processes' records ends with the database connection.
  deps.models.Response.db.once('close', () => void evidence.close());
  const flatten = flattenerOf(catalogue);
  // Quotes are read from the responses (free text is not in the records): a response stored here is taken into the kept reads, and every read is forgotten when responses are erased or removed.
  const quoteCache = new QuoteCache(() => deps.now().getTime());
  const quoted = quotedQuestions(catalogue);
  const recordsChanged = (change: RecordChange) => {
    evidence.changed({ written: change.written.map((doc) => decodeRecord(doc, flatten)), removed: change.removed });
    quoteCache.invalidate();
  };
  app.use(
    demoDataRoutes({
      models: deps.models,
      now: deps.now,
      onRemoved: (removed) => {
        evidence.changed({ removed });
        quoteCache.invalidate();
      },
    }),
  );
  app.use(evidenceRoutes({ models: deps.models, evidence, quoteCache, pseudonymKey: deps.secrets.tokenKey, tagKey: deps.secrets.tagKey, now: deps.now }));

  app.use(
    respondRoutes(
      {
        models: deps.models,
        questionnaires: deps.questionnaires,
        tokenKey: deps.secrets.tokenKey,
        tagKey: deps.secrets.tagKey,
        now: deps.now,
        onResponseRecorded: (record) => {
          evidence.apply(record);
          quoteCache.responseStored(record.id, record.campaign, deps.models, quoted);
        },
        validateSubmission: deps.validateSubmission,
        windows,
      },
      { secret: deps.secrets.sessionSecret, bodyLimit: deps.options.bodyLimit, ...linkLimits },
    ),
  );

  app.use(unsubscribeRoutes({ models: deps.models, tokenKey: deps.secrets.tokenKey, now: deps.now, windows }, linkLimits));
  app.use(mailRoutes({ models: deps.models, now: deps.now, mailCatcher: deps.mailCatcher, wakeSender: deps.wakeSender, queueInvitations: deps.queueInvitations }));
  app.use(reminderRoutes({ models: deps.models, now: deps.now, wakeSender: deps.wakeSender }));
  app.use(fieldworkRoutes({ models: deps.models, now: deps.now }));
  app.use(
    privacyRoutes({
      models: deps.models,
      now: deps.now,
      tokenKey: deps.secrets.tokenKey,
      tagKey: deps.secrets.tagKey,
      textQuestions: textQuestionNames(evidence.catalogue),
      onResponsesChanged: recordsChanged,
    }),
  );

  app.use((req, res, next) => {
    const language = respondentLanguage(req, res);
    next(new HttpError(404, language ? pageText(language).notFound : 'This page does not exist.'));
  });
  app.use(errorHandler);
  return app;
}

/**
 * helmet's headers. The Content-Security-Policy allows only the platform's own
 * origin: no request can leave it. HSTS only when the platform is reached over
 * https, and without includeSubDomains: the platform owns its host name, not
 * the names under it.
 */
function securityHeaders(options: { strictTransportSecurity: boolean }) {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // SurveyJS sets inline style attributes on rendered elements.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    strictTransportSecurity: options.strictTransportSecurity ? { maxAge: 365 * 24 * 3600, includeSubDomains: false } : false,
  });
}

/**
 * The one error middleware. Expected failures (HttpError, and the client's
 * own errors that Express and the body parsers raise with a 4xx status) answer
 * with their status and a message fit for the user, and are not logged as
 * faults; anything else is logged with its context and shown as a plain 500
 * without details.
 */
function errorHandler(error: unknown, req: Request, res: Response, _next: NextFunction) {
  // A respondent (personal and unsubscribe links) reads every page, errors included, in their language.
  const language = respondentLanguage(req, res);
  let status = 500;
  let message = pageText(language ?? 'en').serverError;
  let details: Record<string, unknown> | undefined;
  if (error instanceof HttpError) {
    ({ status, message, details } = error);
  } else if (isClientError(error)) {
    status = error.status;
    message = clientErrorMessage(error, language);
  } else {
    // The request logger writes one "error" line for this request with the error, its id and the
    // redacted URL as fields: the URL is never part of a message.
    res.err = error instanceof Error ? error : new Error(String(error));
  }
  if (res.headersSent) return;
  // JSON for the questionnaire's own requests (a JSON body), a .json address (a script's curl sends */*) and
  // a client that asks for it; a page for a browser's page or form post, which would show raw JSON otherwise.
  const wantsJson = Boolean(req.is('application/json')) || req.path.endsWith('.json') || req.accepts(['html', 'json']) === 'json';
  if (wantsJson) {
    res.status(status).json({ error: message, ...details });
  } else if (error instanceof HttpError && error.view) {
    res.status(status).render(error.view.name, error.view.data);
  } else if (language) {
    res.status(status).render('error', { title: message, lang: language, status, message, text: pageText(language, { status: String(status) }) });
  } else {
    res.status(status).render('error', { title: message, lang: 'en', status, message });
  }
}

/**
 * The language of a respondent's request (/s/ and /u/ paths): the invitation's or
 * the contact's once the link is known, else the browser's; undefined elsewhere.
 */
function respondentLanguage(req: Request, res: Response): Language | undefined {
  if (!/^\/[su](\/|$)/.test(req.path)) return undefined;
  const holder = (res.locals.link ?? res.locals.contact) as { language?: unknown } | undefined;
  return isLanguage(holder?.language) ? holder.language : browserLanguage(req);
}

type ClientError = Error & { status: number; type?: string };

/**
 * An error the request caused, flagged by the library that raised it with a
 * 4xx status: the body parsers (http-errors) and the router's percent-decoding
 * of path parameters (a URIError with status 400).
 */
function isClientError(error: unknown): error is ClientError {
  const status = (error as { status?: unknown } | null)?.status;
  return error instanceof Error && typeof status === 'number' && status >= 400 && status < 500;
}

/**
 * What the client did wrong, in words, in the given language (a respondent's; English
 * elsewhere); the library's own message is not shown (it may echo the request).
 */
function clientErrorMessage(error: ClientError, language: Language = 'en'): string {
  const text = pageText(language, { depth: String(MAX_JSON_DEPTH) });
  if (error instanceof URIError) return text.malformedAddress;
  switch (error.type) {
    case 'entity.too.large':
      return text.requestTooLarge;
    case 'entity.parse.failed':
      return text.notJson;
    case 'entity.too.deep':
      return text.tooDeep;
    case 'charset.unsupported':
      return text.unsupportedCharset;
    case 'encoding.unsupported':
      return text.unsupportedEncoding;
    default:
      return text.badRequest;
  }
}
