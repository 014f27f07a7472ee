/**
 * The outbox sender on its own, without the web application:
 *   MONGODB_URI=... SMTP_URL=smtp://127.0.0.1:2525 TOKEN_KEY=... PUBLIC_URL=... tsx scripts/run-sender.ts [--until-idle]
 *
 * The crash test starts it as a child process and kills it with SIGKILL in
 * the middle of a campaign; an operator can also run extra senders this way.
 * With --until-idle it exits once nothing is queued or being sent (messages
 * left "sending" by a killed worker count until their lease turns them "unknown").
 * Like the platform's process, it follows the contact list in the background
 * (server/mail/sender-process.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig, sendingWarnings } from '../server/config.ts';
import { openDatabase } from '../server/db/connection.ts';
import { defineModels } from '../server/db/models.ts';
import { startSenderProcess } from '../server/mail/sender-process.ts';
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
  const { stop: stopSending } = startSenderProcess({ config: { ...config, SMTP_URL: config.SMTP_URL }, models, logger, tokenKey: secretsOf(config).tokenKey });
  const stop = async () => {
    await stopSending();
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
