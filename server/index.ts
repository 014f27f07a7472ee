import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { removeExpiredSessions } from './accounts/auth.middleware.ts';
import { createSetupToken, hasUsers } from './accounts/user.service.ts';
import { createApp } from './app.ts';
import { followContactList } from './campaigns/audience-state.ts';
import { createDemoCampaign } from './campaigns/demo.service.ts';
import { checkPlatformConfig, ConfigError, parseConfig, smtpTimeouts, type Config } from './config.ts';
import { openDatabase } from './db/connection.ts';
import { DataDirLockedError } from './db/data-dir-lock.ts';
import { EngineMissingError } from './db/embedded-engine.ts';
import { defineModels, ensureIndexes } from './db/models.ts';
import { startMailCatcher } from './mail/mail-catcher.ts';
import { createMailTransport } from './mail/mail-transport.ts';
import { startInvitationQueue } from './mail/invitation-send.service.ts';
import { startOutboxSender, type RunningSender } from './mail/outbox-sender.service.ts';
import { senderPolicyOf } from './mail/sender-process.ts';
import { migrateRecords, textQuestionsOf } from './evidence/analytic-record.ts';
import { migrateQuoteTexts } from './evidence/quote-text.ts';
import { InstitutionTagKeyError, migrateInstitutionTags, sealInstitutionSecrets } from './evidence/institution-tag.ts';
import type { EvidenceService } from './evidence/indicator.service.ts';
import { prepareEvidenceLanding } from './evidence/evidence.routes.ts';
import { buildCatalogue } from './evidence/question-catalogue.ts';
import { textQuestionNames } from './privacy/privacy.service.ts';
import { startRetentionScheduler } from './privacy/retention.service.ts';
import { startReminderScheduler } from './reminders/reminder.service.ts';
import { backfillCompletions } from './respond/respond.service.ts';
import { loadSurveyLibrary } from './surveys/definitions.ts';
import { startValidationPool } from './respond/validation-pool.ts';
import { createLogger, type Logger } from './shared/logger.ts';
import { secretsOf } from './shared/secrets.ts';
import { QuestionnaireRegistry } from './surveys/questionnaire-registry.ts';

/** Loads the configuration, connects, starts background work and listens. */
async function main() {
  const config = parseConfig(process.env);
  const logger = createLogger({ level: config.LOG_LEVEL, pretty: (config.LOG_FORMAT ?? (config.NODE_ENV === 'development' ? 'pretty' : 'json')) === 'pretty' });
  for (const warning of checkPlatformConfig(config)) logger.warn(warning);
  const now = () => new Date();

  if (!config.MONGODB_URI) logger.info({ dataDir: `${config.DATA_DIR}/ferretdb` }, 'starting the embedded database (FerretDB)');
  // With its database gone the platform can only fail every request: it stops, for its supervisor to start it again.
  const database = await openDatabase(config, logger, () => process.exit(1));
  const models = defineModels(database.connection);
  await ensureIndexes(models);
  const secrets = secretsOf(config);
  // Before anything tags: refuses a key that does not open the stored secrets, and seals those of an earlier version kept in the clear.
  const sealed = await sealInstitutionSecrets(models, secrets.tagKey);
  if (sealed > 0) logger.info({ sealed }, 'institution tag secrets sealed with the institution tag key');
  // Once per database: completion marks for responses stored before marks existed.
  const marked = await backfillCompletions(models, now, (done) => logger.info({ done }, 'marking stored responses as completed'));
  if (marked > 0) logger.info({ marked }, 'stored responses marked as completed');
  // Once per database: analytic records for responses stored before records existed (npm run migrate:records does the same).
  const recorded = await migrateRecords(models, secrets.tagKey, textQuestionsOf(buildCatalogue(loadSurveyLibrary())), now, (read, written) =>
    logger.info({ read, written }, 'writing analytic records of stored responses'),
  );
  if (recorded > 0) logger.info({ recorded }, 'analytic records written for stored responses');
  // Once per database: the quotes' copies of free-text answers stored before the copies existed (npm run migrate:records too).
  const quoted = await migrateQuoteTexts(models, textQuestionsOf(buildCatalogue(loadSurveyLibrary())), now, (read, written) =>
    logger.info({ read, written }, 'copying free-text answers of stored responses for the quotes'),
  );
  if (quoted > 0) logger.info({ quoted }, 'free-text answers copied for the quotes');
  // Once per database: institution tags in place of institution ids in records and anonymous responses stored before tags.
  const tagged = await migrateInstitutionTags(models, secrets.tagKey, now, (done, of) => logger.info({ done, of }, 'replacing institution ids by their tags'));
  if (tagged > 0) logger.info({ tagged }, 'institution ids replaced by their tags in analytic records and anonymous responses');

  const questionnaires = new QuestionnaireRegistry();
  // Without SMTP_URL, emails go to the local mail catcher and are read at /admin/mail.
  const catcher = config.SMTP_URL ? undefined : await startMailCatcher({ dataDir: config.DATA_DIR, port: config.MAIL_CATCHER_PORT });
  const transport = createMailTransport({
    url: config.SMTP_URL ?? catcher!.url,
    ratePerSecond: config.SEND_RATE_PER_SECOND,
    maxConnections: config.SEND_MAX_CONNECTIONS,
    timeouts: smtpTimeouts(config),
  });
  const validation = startValidationPool({ threads: config.VALIDATION_THREADS });
  let sender: RunningSender | undefined;
  // Queues the invitations the coordinator decided to send, in the background; at start it resumes
  // what a crash interrupted, and every 30 s what another instance left unfinished.
  const invitations = startInvitationQueue(
    { models, now, onQueued: () => sender?.wake(), onError: (error: unknown) => logger.error({ err: error }, 'queueing the invitations failed; resumed shortly') },
    { resumeEveryMs: 30_000 },
  );
  // Listen first: with PORT=0 only the listening socket knows the address that links must carry.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(config.PORT, config.HOST, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const publicUrl = config.PUBLIC_URL ?? `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${port}`;
  const https = publicUrl.startsWith('https:');
  const app = createApp({
    mailCatcher: catcher?.view,
    wakeSender: () => sender?.wake(),
    queueInvitations: () => invitations.request(),
    logger,
    validateSubmission: validation.validate,
    models,
    questionnaires,
    secrets,
    now,
    publicUrl,
    options: {
      // Behind a TLS-terminating proxy, only a trusted proxy's X-Forwarded-Proto makes a request secure (see checkPlatformConfig).
      trustProxy: config.TRUST_PROXY,
      secureCookies: https,
      strictTransportSecurity: https,
      bodyLimit: config.BODY_LIMIT,
      tokenRateLimit: config.TOKEN_RATE_LIMIT,
      unknownTokenLimit: config.UNKNOWN_TOKEN_LIMIT,
      cacheViews: config.NODE_ENV === 'production',
      minCellInstitutions: config.MIN_CELL_INSTITUTIONS,
      minCellRespondents: config.MIN_CELL_RESPONDENTS,
      disclosureMinRange: config.DISCLOSURE_MIN_RANGE,
      disclosureSolveUnknowns: config.DISCLOSURE_SOLVE_UNKNOWNS,
      evidencePollMs: config.EVIDENCE_POLL_MS,
      evidenceDecisionGapMs: config.EVIDENCE_DECISION_GAP_MS,
    },
  });
  // Load the evidence records now (progress in the log), not on the first reviewer's page; then follow other processes'.
  // Then take the decision the evidence page opens on, so that the first reviewer after a start does not wait for it.
  const evidence = app.locals.evidence as EvidenceService;
  evidence
    .ready()
    .then(
      () =>
        prepareEvidenceLanding({ models, evidence, now }).then(
          ({ campaign, ms }) => logger.info({ campaign: campaign ?? null, ms }, campaign ? 'evidence page ready: the landing campaign\'s overview is decided' : 'evidence page ready: no campaign yet'),
          (error: unknown) => logger.warn({ err: error }, 'deciding the evidence page\'s overview ahead failed; the first evidence page will decide it'),
        ),
      (error: unknown) => logger.error({ err: error }, 'loading the evidence records failed; the first evidence page will try again'),
    );
  // Read the contact list now and follow its changes in the background, not on the confirmation page's first load.
  const contactList = followContactList(models, { onError: (error: unknown) => logger.error({ err: error }, 'reading the contact list failed; read again shortly') });
  server.on('request', app);
  // Behind a proxy the public address is not where the platform listens: say both, for the proxy's configuration.
  const listening = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
  logger.info(`The platform is running at ${publicUrl}${config.PUBLIC_URL ? ` (listening on ${listening})` : ''}`);
  if (catcher) logger.info(`No SMTP_URL: emails are kept by the local mail catcher (${catcher.url}) and shown at ${publicUrl}/admin/mail`);
  sender = startOutboxSender(
    { models, transport, tokenKey: secrets.tokenKey, publicUrl, from: config.MAIL_FROM, now, workerId: `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`, logger },
    senderPolicyOf(config),
    { onError: (error: unknown) => logger.error({ err: error }, 'sending emails failed, retrying shortly') },
  );
  const reminders = startReminderScheduler(
    { models, now },
    { onRoundStarted: () => sender?.wake(), onError: (error: unknown) => logger.error({ err: error }, 'checking for due reminders failed') },
  );
  // Purges each campaign's personal data once its retention has run out (state in retention_runs).
  const retention = startRetentionScheduler({
    models,
    now,
    tokenKey: secrets.tokenKey,
    tagKey: secrets.tagKey,
    textQuestions: textQuestionNames(buildCatalogue(loadSurveyLibrary())),
    workerId: `${hostname()}:${process.pid}`,
  });
  const sessionCleanup = setInterval(() => {
    removeExpiredSessions({ models, now }).catch((error: unknown) => logger.error({ err: error }, 'removing expired sessions failed'));
  }, 10 * 60_000);
  sessionCleanup.unref();
  if (database.embedded) {
    // Only one process can own the embedded engine's data: the command-line tool connects through this address.
    logger.info(`Command-line tool while the platform runs: MONGODB_URI=${database.uri} npm run cli -- <command>`);
  }
  if (!(await hasUsers({ models }))) {
    // No default password: the first coordinator is created through a one-time link.
    const token = await createSetupToken({ models, now });
    tellOperator(config, logger, 'first-coordinator-link.txt', 'No user exists yet. Create the first coordinator within 24 hours at (works once):', [`${publicUrl}/setup/${token}`]);
  }

  if (database.embedded && !config.NO_DEMO) {
    const links = await createDemoCampaign({ models, tokenKey: secrets.tokenKey, publicUrl, now });
    if (links) tellOperator(config, logger, 'demo-links.txt', 'A demo campaign was created. Open a link to fill out the questionnaires as a school leader:', links);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    server.close();
    server.closeAllConnections();
    reminders.stop();
    await retention.stop();
    await invitations.stop();
    await contactList.stop();
    clearInterval(sessionCleanup);
    await sender?.stop();
    await validation.close();
    transport.close();
    await catcher?.close();
    await database.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

/**
 * Secret links the person starting the platform needs (the one-time setup
 * link, demo links) never go into the log, where tokens are redacted. With
 * human-readable logs (development) they are printed to the terminal; with
 * JSON logs (production, where output is collected) they are written to a
 * file only the platform's user can read, and the log says where.
 */
function tellOperator(config: Config, logger: Logger, fileName: string, heading: string, links: readonly string[]) {
  const text = `${heading}\n${links.map((link) => `  ${link}`).join('\n')}\n`;
  if ((config.LOG_FORMAT ?? (config.NODE_ENV === 'development' ? 'pretty' : 'json')) === 'pretty') {
    process.stdout.write(`\n${text}\n`);
    return;
  }
  const file = join(config.DATA_DIR, fileName);
  writeFileSync(file, text, { mode: 0o600 });
  logger.warn({ file }, heading.replace(/:$/, ` (the link is in ${file})`));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof EngineMissingError || error instanceof DataDirLockedError || error instanceof InstitutionTagKeyError) console.error(error.message);
  else console.error('The platform could not start:', error);
  process.exit(1);
});
