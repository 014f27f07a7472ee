import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { followContactList, type ContactListFollower } from '../campaigns/audience-state.ts';
import { smtpTimeouts, type Config } from '../config.ts';
import type { Models } from '../db/models.ts';
import type { Logger } from '../shared/logger.ts';
import { startInvitationQueue } from './invitation-send.service.ts';
import { createMailTransport } from './mail-transport.ts';
import { sendingWindows, startOutboxSender, type RunningSender, type SenderPolicy } from './outbox-sender.service.ts';

/** The sender's policy as the configuration sets it (the platform's own sender and an extra one alike). */
export function senderPolicyOf(config: Config): SenderPolicy {
  return {
    maxAttempts: config.SEND_MAX_ATTEMPTS,
    leaseMs: config.SEND_LEASE_SECONDS * 1000,
    ...sendingWindows(config.SEND_MAX_CONNECTIONS),
    backoffMs: config.SEND_BACKOFF_SECONDS * 1000,
    outcomeWaitMs: config.SEND_OUTCOME_WAIT_MS,
  };
}

export interface SenderProcess {
  sender: RunningSender;
  contactList: ContactListFollower;
  /** Stops queueing, sending (after the messages in hand have their outcomes) and following; closes the relay's connections. */
  stop(): Promise<void>;
}

/**
 * An extra sender beside the platform (scripts/run-sender.ts): the outbox
 * sender, the queueing of invitations a crashed platform left unfinished, and
 * the contact list followed in the background as the platform's process
 * follows it. Without that, the first pass after any change of the contacts
 * (an import, a bounce, an unsubscribe in another process) read the whole
 * list on its own path, before its windows of more than a few recipients
 * could go.
 */
export function startSenderProcess(deps: { config: Config & { SMTP_URL: string }; models: Models; logger: Logger; tokenKey: Buffer; now?: () => Date; idleMs?: number }): SenderProcess {
  const { config, models, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const transport = createMailTransport({
    url: config.SMTP_URL,
    ratePerSecond: config.SEND_RATE_PER_SECOND,
    maxConnections: config.SEND_MAX_CONNECTIONS,
    timeouts: smtpTimeouts(config),
  });
  const contactList = followContactList(models, { onError: (error: unknown) => logger.error({ err: error }, 'reading the contact list failed; read again shortly') });
  const sender = startOutboxSender(
    {
      models,
      transport,
      tokenKey: deps.tokenKey,
      publicUrl: config.PUBLIC_URL ?? 'http://localhost:3000',
      from: config.MAIL_FROM,
      now,
      workerId: `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
      logger,
    },
    senderPolicyOf(config),
    { idleMs: deps.idleMs ?? 500, onError: (error: unknown) => logger.error({ err: error }, 'sending emails failed, retrying shortly') },
  );
  const invitations = startInvitationQueue({ models, now, onQueued: () => sender.wake() }, { resumeEveryMs: 30_000 });
  return {
    sender,
    contactList,
    async stop() {
      await invitations.stop();
      await sender.stop();
      await contactList.stop();
      transport.close();
    },
  };
}
