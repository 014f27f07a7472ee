import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Types } from 'mongoose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { countByState } from '../../server/mail/outbox.service.ts';
import { findSentEmails } from '../../server/mail/sent-email.store.ts';
import { createCampaignWithContacts, PUBLIC_URL, statusesOf } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

const script = fileURLToPath(new URL('../../scripts/run-sender.ts', import.meta.url));
const CONTACTS = 2000;
const CONNECTIONS = 4;

let platform: TestPlatform;
let sink: SmtpSink;

// Each test has a database of its own: on FerretDB every pass of the sender reads the whole outbox.
beforeEach(async () => {
  platform = await startTestPlatform();
  // The sender processes run on the real clock: the campaign must be open now.
  platform.clock.current = new Date();
  sink = await startSmtpSink({ keepRaw: false });
});
afterEach(async () => {
  await sink.close();
  await platform.close();
});

/** scripts/run-sender.ts in a process of its own, on the test's database and sink. */
function startSender(env: Record<string, string> = {}): ChildProcess & { exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--until-idle'], {
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      MONGODB_URI: `${inject('mongoUri')}/${platform.models.Outbox.db.name}`,
      SMTP_URL: sink.url,
      TOKEN_KEY: platform.tokenKey.toString('hex'),
      PUBLIC_URL,
      SEND_RATE_PER_SECOND: '10000',
      SEND_MAX_CONNECTIONS: String(CONNECTIONS),
      // Short lease so the killed worker's claims turn "unknown" within the test.
      SEND_LEASE_SECONDS: '2',
      // A temporary error on a loaded machine (a slow greeting) is retried in seconds, not minutes.
      SEND_BACKOFF_SECONDS: '1',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return Object.assign(child, { exited });
}

/**
 * Waits for the sink to have received `count` more messages while the senders
 * make progress. There is no time budget (a busy machine is slow, not wrong):
 * it fails only when every sender has exited first, or when nothing arrives
 * for two minutes after the first message, or five before it (a real stall).
 */
async function untilReceived(count: number, senders: ReadonlyArray<ChildProcess>) {
  const start = sink.messages.length;
  let seen = start;
  let lastProgress = Date.now();
  while (sink.messages.length - start < count) {
    if (senders.every((s) => s.exitCode !== null || s.signalCode !== null)) throw new Error(`the senders exited after ${sink.messages.length - start} of ${count} messages`);
    if (sink.messages.length > seen) {
      seen = sink.messages.length;
      lastProgress = Date.now();
    } else if (Date.now() - lastProgress > (seen > start ? 120_000 : 300_000)) {
      // A sender starting on a loaded machine takes a while before its first message: five minutes then.
      throw new Error(`no message for ${seen > start ? 'two' : 'five'} minutes after ${seen - start} of ${count}`);
    }
    await sleep(20);
  }
}

/**
 * Waits for a sender to exit while it makes progress. No time budget either:
 * it fails only when the sink has received nothing for three minutes, and
 * then says where every message is, the campaign's pause and the last errors,
 * instead of leaving the test to time out without a word. (Progress is read
 * off the sink, not the outbox: counting the outbox reads thousands of
 * documents, which would slow the sender being watched.)
 */
async function untilExited(sender: ChildProcess & { exited: Promise<number | null> }, campaignId: Types.ObjectId): Promise<number | null> {
  let received = sink.messages.length;
  let lastProgress = Date.now();
  for (;;) {
    const code = await Promise.race([sender.exited, sleep(1_000).then(() => 'running' as const)]);
    if (code !== 'running') return code;
    if (sink.messages.length > received) {
      received = sink.messages.length;
      lastProgress = Date.now();
    } else if (Date.now() - lastProgress > 180_000) {
      const counts = await countByState({ models: platform.models }, { campaign: campaignId });
      const pauses = await platform.models.SendingPause.find({ campaign: campaignId }).lean();
      const errors = await platform.models.OutboxOutcome.find({ campaign: campaignId, state: { $in: ['retry', 'unknown', 'failed'] } }, { state: 1, error: 1, nextAttemptAt: 1 }).lean();
      sender.kill('SIGKILL');
      throw new Error(`the sender received nothing new for three minutes: ${JSON.stringify(counts)}; pauses ${JSON.stringify(pauses)}; last errors ${JSON.stringify(errors.slice(-5))}`);
    }
  }
}

/**
 * The invariant: every contact got exactly one invitation at the SMTP server,
 * or its message is listed as unknown (then it got at most one). None lost,
 * none duplicated, nothing left queued or sending.
 */
async function expectExactlyOnceOrUnknown(campaignId: Types.ObjectId, emails: string[]) {
  const received = sink.countsByRecipient();
  const statuses = await statusesOf(platform.models, campaignId);
  expect(statuses).toHaveLength(emails.length);
  const byState: Record<string, number> = {};
  for (const { message, state } of statuses) {
    byState[state] = (byState[state] ?? 0) + 1;
    const count = received.get(message.to) ?? 0;
    if (state === 'sent') expect(count, message.to).toBe(1);
    else if (state === 'unknown') expect(count, message.to).toBeLessThanOrEqual(1);
    else throw new Error(`${message.to} ended ${state}`);
  }
  for (const email of emails) expect(received.get(email) ?? 0).toBeLessThanOrEqual(1);
  const ids = sink.messages.map((m) => m.messageId);
  expect(new Set(ids).size).toBe(ids.length);
  return byState;
}

// The timeout only guards against a hang; the waits below follow the senders' progress.
describe('sending survives a killed sender and a second sender', { timeout: 900_000 }, () => {
  it('after SIGKILL in the middle of 2,000 invitations and a restart, every contact has exactly one invitation or is listed as unknown', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: CONTACTS });
    await enqueueInvitations({ models: platform.models, now: () => new Date() }, campaignId, 'test');
    const before = sink.messages.length;

    const first = startSender();
    await untilReceived(CONTACTS / 3, [first]);
    first.kill('SIGKILL');
    await first.exited;
    const atKill = sink.messages.length - before;
    expect(atKill).toBeLessThan(CONTACTS);

    const second = startSender();
    expect(await untilExited(second, campaignId)).toBe(0);
    const byState = await expectExactlyOnceOrUnknown(campaignId, emails);
    console.log(`kill after ${atKill} messages; outcome ${JSON.stringify(byState)}`);
    // The killed sender left at most 6 claims per connection without an outcome (sendingWindows): claimed ahead, in the relay's hands, or answered and not yet recorded.
    expect(byState.unknown ?? 0).toBeLessThanOrEqual(6 * CONNECTIONS);
    // The email as sent is kept exactly with its outcome "sent" (in it): a kill between the relay's answer and the write leaves neither.
    const outcomes = await platform.models.OutboxOutcome.find({ campaign: campaignId }).lean();
    const kept = new Set((await findSentEmails(platform.models, outcomes.map((o) => o.message), outcomes)).map((e) => String(e._id)));
    for (const outcome of outcomes) expect(kept.has(String(outcome.message)), `${outcome.state} ${String(outcome.message)}`).toBe(outcome.state === 'sent');
  });

  it('a sender killed while it gathers a batch of outcomes leaves those messages claimed: after a restart they are unknown, never sent again', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 60 });
    await enqueueInvitations({ models: platform.models, now: () => new Date() }, campaignId, 'test');
    // The relay receives every message and answers only when told; an outcome waits for its batch (10 with 4 connections) for an hour.
    sink.hold();
    const first = startSender({ SEND_OUTCOME_WAIT_MS: '3600000' });
    // One message on each connection, received and waiting for its answer.
    await sink.heldMessages(CONNECTIONS);
    // Three messages accepted: their outcomes wait for seven more; each connection has a message again once the sender knows.
    const accepted = sink.messages.slice(0, 3).map((m) => m.to[0]!);
    sink.answer(3);
    await sink.heldMessages(CONNECTIONS);
    // Time for a write of those outcomes to land, had one been sent.
    await sleep(1000);
    first.kill('SIGKILL');
    await first.exited;
    const ids = (await platform.models.Outbox.find({ campaign: campaignId, to: { $in: accepted } }, { _id: 1 }).lean()).map((m) => m._id);
    expect(ids).toHaveLength(3);
    // The batch was pending: claimed, accepted by the relay, no outcome written.
    expect(await platform.models.OutboxClaim.countDocuments({ message: { $in: ids } })).toBe(3);
    expect(await platform.models.OutboxOutcome.countDocuments({ campaign: campaignId })).toBe(0);

    sink.release();
    const second = startSender();
    expect(await untilExited(second, campaignId)).toBe(0);
    const byState = await expectExactlyOnceOrUnknown(campaignId, emails);
    console.log(`killed with a batch pending; outcome ${JSON.stringify(byState)}`);
    const statuses = await statusesOf(platform.models, campaignId);
    for (const email of accepted) expect(statuses.find((s) => s.message.to === email)?.state, email).toBe('unknown');
    const received = sink.countsByRecipient();
    for (const email of accepted) expect(received.get(email)).toBe(1);
    expect(byState.unknown ?? 0).toBeLessThanOrEqual(6 * CONNECTIONS);
  });

  it('two senders at once, one of them killed and restarted, never send the same invitation twice', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: CONTACTS });
    await enqueueInvitations({ models: platform.models, now: () => new Date() }, campaignId, 'test');
    const before = sink.messages.length;

    const a = startSender();
    const b = startSender();
    await untilReceived(CONTACTS / 4, [a, b]);
    a.kill('SIGKILL');
    await a.exited;
    const c = startSender();
    expect(await untilExited(b, campaignId)).toBe(0);
    expect(await untilExited(c, campaignId)).toBe(0);
    const byState = await expectExactlyOnceOrUnknown(campaignId, emails);
    // Both processes really took part: the claims name more than one worker.
    const workers = await platform.models.OutboxClaim.distinct('worker', { message: { $in: (await platform.models.Outbox.find({ campaign: campaignId }, { _id: 1 }).lean()).map((m) => m._id) } });
    expect(workers.length).toBeGreaterThanOrEqual(2);
    console.log(`two senders: ${workers.length} workers; outcome ${JSON.stringify(byState)}`);
  });
});

describe('scripts/run-sender.ts at start', () => {
  it('in production, warns that an http:// PUBLIC_URL makes the one-click unsubscribe link of every email non-compliant', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, '--until-idle'], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        MONGODB_URI: `${inject('mongoUri')}/${platform.models.Outbox.db.name}`,
        SMTP_URL: sink.url,
        TOKEN_KEY: platform.tokenKey.toString('hex'),
        SESSION_SECRET: platform.sessionSecret,
        INSTITUTION_TAG_KEY: 'a'.repeat(64),
        PUBLIC_URL: 'http://survey.test',
        LOG_FORMAT: 'json',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, output).toBe(0);
    expect(output).toContain('PUBLIC_URL is http://: the one-click unsubscribe link of every email (RFC 8058) needs https');
  });
});

