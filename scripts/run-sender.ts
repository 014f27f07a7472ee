/**
 * The outbox sender on its own, without the web application:
 *   MONGODB_URI=... SMTP_URL=smtp://127.0.0.1:2525 TOKEN_KEY=... PUBLIC_URL=... tsx scripts/run-sender.ts [--until-idle]
 *
 * The crash test starts it as a child process and kills it with SIGKILL in
 * the middle of a campaign; an operator can also run extra senders this way.
 * With --until-idle it exits once nothing is queued or being sent (messages
 * left "sending" by a killed worker count until their lease turns them "unknown").
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig, sendingWarnings, smtpTimeouts } from '../server/config.ts';
import { openDatabase } from '../server/db/connection.ts';
import { defineModels } from '../server/db/models.ts';
import { createMailTransport } from '../server/mail/mail-transport.ts';
import { startInvitationQueue } from '../server/mail/invitation-send.service.ts';
import { sendingWindows, startOutboxSender } from '../server/mail/outbox-sender.service.ts';
import { countByState } from '../server/mail/outbox.service.ts';
import { createLogger } from '../server/shared/logger.ts';
import { secretsOf } from '../server/shared/secrets.ts';

const { values: args } = parseArgs({ options: { 'until-idle': { type: 'boolean', default: false } } });

async function main() {
  const config = parseConfig(process.env);
  if (!config.MONGODB_URI || !config.SMTP_URL) throw new ConfigError('run-sender needs MONGODB_URI and SMTP_URL.');
  const logger = createLogger({ level: config.LOG_LEVEL, pretty: config.LOG_FORMAT === 'pretty' });
  for (const warning of sendingWarnings(config)) logger.warn(warning);
  const database = await openDatabase(config);
  const models = defineModels(database.connection);
  const secrets = secretsOf(config);
  const leaseMs = config.SEND_LEASE_SECONDS * 1000;
  const transport = createMailTransport({
    url: config.SMTP_URL,
    ratePerSecond: config.SEND_RATE_PER_SECOND,
    maxConnections: config.SEND_MAX_CONNECTIONS,
    timeouts: smtpTimeouts(config),
  });
  const sender = startOutboxSender(
    {
      models,
      transport,
      tokenKey: secrets.tokenKey,
      publicUrl: config.PUBLIC_URL ?? 'http://localhost:3000',
      from: config.MAIL_FROM,
      now: () => new Date(),
      workerId: `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
      logger,
    },
    { maxAttempts: config.SEND_MAX_ATTEMPTS, leaseMs, ...sendingWindows(config.SEND_MAX_CONNECTIONS), backoffMs: config.SEND_BACKOFF_SECONDS * 1000, outcomeWaitMs: config.SEND_OUTCOME_WAIT_MS },
    { idleMs: 500 },
  );
  // A sender also finishes queueing invitations that a crashed platform left unfinished.
  const invitations = startInvitationQueue({ models, now: () => new Date(), onQueued: () => sender.wake() }, { resumeEveryMs: 30_000 });
  const stop = async () => {
    await invitations.stop();
    await sender.stop();
    transport.close();
    await database.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  const hasWorkLeft = async () => {
    const counts = await countByState({ models });
    return counts.queued + counts.sending > 0;
  };
  if (args['until-idle']) {
    // Every two seconds: a count reads the campaign's messages, claims and outcomes, which would slow the sending if done back to back.
    while (await hasWorkLeft()) await sleep(2000);
    await stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
