import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Types } from 'mongoose';
import { recordAudit } from '../accounts/audit.service.ts';
import { inviteCampaign } from '../campaigns/campaign.service.ts';
import type { Models } from '../db/models.ts';
import { enqueueInvitations } from '../mail/invitation-mail.service.ts';
import { createMailTransport } from '../mail/mail-transport.ts';
import type { MessageKind } from '../mail/outbox.model.ts';
import { DEFAULT_POLICY, findDueMessages, sendBatch, type SenderDeps, type SenderPolicy } from '../mail/outbox-sender.service.ts';
import { countByState, listUnknown, messageStatuses, type OutboxCounts } from '../mail/outbox.service.ts';
import { startReminderRound } from '../reminders/reminder.service.ts';
import { HttpError } from '../shared/http-error.ts';

/** The sending settings of the configuration (server/config.ts) that the command needs. */
export interface CliMailSettings {
  smtpUrl?: string;
  from: string;
  ratePerSecond: number;
  maxConnections: number;
  maxAttempts: number;
  leaseMs: number;
}

/** Where the progress goes (stderr in the real tool): redrawn in place on a terminal, else a line every 5 %. */
export interface ProgressOutput {
  write(text: string): void;
  isTTY: boolean;
}

export interface CampaignSendDeps {
  models: Models;
  now: () => Date;
  tokenKey: Buffer;
  publicUrl: string;
  print: (line: string) => void;
  mail: CliMailSettings;
  progress: ProgressOutput;
  /** Aborted on Ctrl-C: sending stops after the batch in flight. */
  stop?: AbortSignal;
}

/**
 * campaign:send — creates the personal links and enqueues the invitations (or
 * starts the next reminder round), then sends the campaign's queued messages
 * from this process until none is left, drawing the progress. Every step is
 * idempotent and the outbox records each message's outcome, so running the
 * command again, or after Ctrl-C or a crash, sends nothing twice.
 * Returns the exit code: 0 when every message was sent or skipped, 1 when
 * some failed or their outcome is unknown, 130 when stopped by Ctrl-C.
 */
export async function sendCampaign(deps: CampaignSendDeps, campaignId: Types.ObjectId, options: { reminderRound: boolean; actor: string }): Promise<number> {
  if (!(await deps.models.Campaign.exists({ _id: campaignId }))) throw new HttpError(404, 'This campaign does not exist (see campaign:list).');
  const kind: MessageKind = options.reminderRound ? 'reminder' : 'invitation';
  if (options.reminderRound) {
    const round = await startReminderRound(deps, campaignId, options.actor);
    if (!round.started) {
      deps.print(`No reminder round started: ${round.reason}`);
      return 1;
    }
    await recordAudit(deps.models, { actor: options.actor, action: 'mail.send-round', target: `campaign:${campaignId}`, details: round, at: deps.now() });
    deps.print(`Reminder round ${round.round} started: ${round.recipients} contacts have not completed.`);
  } else {
    const links = await inviteCampaign(deps, campaignId, options.actor);
    const queued = await enqueueInvitations(deps, campaignId, options.actor);
    await recordAudit(deps.models, { actor: options.actor, action: 'mail.send-invitations', target: `campaign:${campaignId}`, details: queued, at: deps.now() });
    deps.print(`${links.created} personal links created (${links.total} in all); ${queued.added} invitations queued (${queued.total} in all).`);
  }

  if (!deps.mail.smtpUrl) {
    deps.print(
      'Not sending from the command line: SMTP_URL is not set.\n' +
        "The running platform's sender sends the queued messages (to its local mail catcher when it has no SMTP_URL either).\n" +
        `Follow the sending at ${deps.publicUrl}/admin/campaigns/${campaignId}/sending`,
    );
    return 0;
  }

  const transport = createMailTransport({ url: deps.mail.smtpUrl, ratePerSecond: deps.mail.ratePerSecond, maxConnections: deps.mail.maxConnections, leaseMs: deps.mail.leaseMs });
  const sender: SenderDeps = {
    models: deps.models,
    transport,
    tokenKey: deps.tokenKey,
    publicUrl: deps.publicUrl,
    from: deps.mail.from,
    now: deps.now,
    workerId: `${hostname()}:${process.pid}:cli-${randomBytes(3).toString('hex')}`,
  };
  const policy: SenderPolicy = { ...DEFAULT_POLICY, maxAttempts: deps.mail.maxAttempts, leaseMs: deps.mail.leaseMs };
  const bar = progressBar(deps.progress);
  const filter = { campaign: campaignId, kind };
  // The progress is counted beside the sending, not between batches: on FerretDB a count reads whole collections.
  let sending = true;
  const watcher = (async () => {
    while (sending) {
      // A failed count only skips one redraw; the sending goes on.
      await countByState(deps, filter).then(bar.draw, () => undefined);
      await sleep(500);
    }
  })();
  let counts: OutboxCounts;
  try {
    counts = await sendUntilDone(sender, policy, campaignId, filter, deps.stop);
  } finally {
    sending = false;
    await watcher.catch(() => undefined);
    transport.close();
  }
  bar.draw(counts);
  bar.end(counts);

  if (deps.stop?.aborted) {
    deps.print(`Stopped after the batch in flight: ${counts.queued + counts.sending} messages not sent yet. Run the same command again to continue; nothing is sent twice.`);
    return 130;
  }
  deps.print(`Done: ${counts.sent} sent, ${counts.skipped} skipped, ${counts.failed} failed, ${counts.unknown} unknown, of ${counts.total}.`);
  if (counts.failed + counts.unknown === 0) return 0;
  await printProblems(deps, campaignId, kind);
  return 1;
}

/** Lists the failed messages with the server's reason, and the unknown ones the coordinator must resolve. */
async function printProblems(deps: CampaignSendDeps, campaignId: Types.ObjectId, kind: MessageKind) {
  const failed = (await messageStatuses(deps, { campaign: campaignId, kind })).filter((s) => s.state === 'failed');
  for (const status of failed) deps.print(`  failed   ${status.message.to}: ${status.last?.error ?? 'no reason recorded'}`);
  const unknown = (await listUnknown(deps, { campaign: campaignId })).filter(({ message }) => message.kind === kind);
  for (const { message, outcome } of unknown) {
    deps.print(`  unknown  ${message.to} (Message-ID <${message._id}@…>): ${outcome.error ?? ''}`);
  }
  if (unknown.length > 0) deps.print(`Resolve the unknown messages at ${deps.publicUrl}/admin/campaigns/${campaignId}/sending`);
}

/**
 * Sends the campaign's due messages batch by batch until none is queued or
 * being sent; waits while only retries not yet due, or claims of another
 * sender, remain. Other campaigns' messages are left to the platform's sender.
 */
async function sendUntilDone(
  sender: SenderDeps,
  policy: SenderPolicy,
  campaignId: Types.ObjectId,
  filter: { campaign: Types.ObjectId; kind: MessageKind },
  stop: AbortSignal | undefined,
): Promise<OutboxCounts> {
  for (;;) {
    const { due, nextDueAt, context } = await findDueMessages(sender, policy);
    const ours = due.filter((item) => String(item.message.campaign) === String(campaignId));
    // Ctrl-C is looked at between batches only: a batch handed to the SMTP server always gets its outcomes recorded.
    for (let start = 0; start < ours.length && !stop?.aborted; start += policy.batchSize) {
      await sendBatch(sender, policy, ours.slice(start, start + policy.batchSize), context!);
    }
    if (ours.length > 0 && !stop?.aborted) continue;
    const counts = await countByState(sender, filter);
    if (stop?.aborted || counts.queued + counts.sending === 0) return counts;
    const waitMs = Math.max(250, Math.min(5000, nextDueAt ? nextDueAt.getTime() - sender.now().getTime() : 1000));
    await sleep(waitMs, undefined, { signal: stop }).catch(() => undefined);
  }
}

const BAR_WIDTH = 30;

/**
 * The progress line `[#####-----] 512/2000 sent · 3 failed · 0 unknown · 210 msg/s`.
 * The bar fills with every message that has an outcome (sent, skipped,
 * failed, unknown); the rate is messages settled per second over the last
 * few seconds.
 */
export function progressBar(output: ProgressOutput, clock: () => number = Date.now) {
  const samples: Array<{ at: number; settled: number }> = [];
  let lastStep = -1;
  let lastLine = '';
  let printedLine = '';

  function line(counts: OutboxCounts): string {
    const settled = counts.sent + counts.skipped + counts.failed + counts.unknown;
    const at = clock();
    samples.push({ at, settled });
    while (samples.length > 2 && at - samples[0]!.at > 5000) samples.shift();
    const first = samples[0]!;
    const rate = at > first.at ? ((settled - first.settled) * 1000) / (at - first.at) : 0;
    const filled = counts.total === 0 ? BAR_WIDTH : Math.round((settled / counts.total) * BAR_WIDTH);
    const skipped = counts.skipped > 0 ? ` · ${counts.skipped} skipped` : '';
    return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${counts.sent}/${counts.total} sent · ${counts.failed} failed · ${counts.unknown} unknown${skipped} · ${Math.round(rate)} msg/s`;
  }

  return {
    draw(counts: OutboxCounts) {
      const text = line(counts);
      if (output.isTTY) {
        output.write(`\r${text}\x1b[K`);
      } else {
        // Without a terminal, a line at every 5 % step keeps logs short.
        const settled = counts.sent + counts.skipped + counts.failed + counts.unknown;
        const step = counts.total === 0 ? 20 : Math.floor((settled / counts.total) * 20);
        if (step > lastStep) {
          output.write(`${text}\n`);
          printedLine = text;
        }
        lastStep = Math.max(lastStep, step);
      }
      lastLine = text;
    },
    end(counts: OutboxCounts) {
      if (output.isTTY) {
        output.write('\n');
        return;
      }
      // Where sending stopped, even between two 5 % steps.
      if (lastLine !== printedLine) output.write(`${lastLine}\n`);
    },
  };
}
