import { formatDateTime } from '../../server/shared/dates.ts';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Types } from 'mongoose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { sendCampaign, type CampaignSendDeps } from '../../server/cli/campaign-send.ts';
import { institutionKey } from '../../server/institutions/institution.model.ts';
import { DEFAULT_SMTP_TIMEOUTS } from '../../server/mail/mail-transport.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { setContactActive } from '../../server/institutions/institution.service.ts';
import { createInvitations } from '../../server/invitations/invitation.service.ts';
import { senderFor } from '../helpers/mail.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

const run = promisify(execFile);
let platform: TestPlatform;
let sink: SmtpSink;
let workDir: string;

beforeEach(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink();
  workDir = mkdtempSync(join(tmpdir(), 'vet-cli-send-'));
});
afterEach(async () => {
  await sink.close();
  await platform.close();
  rmSync(workDir, { recursive: true, force: true });
});

/**
 * The tool as `npm run cli` starts it: one node process running the build of
 * scripts/cli.ts (scripts/run-built.mjs). The tsx launcher
 * (node_modules/.bin/tsx) runs the script in a child and, on a signal, kills
 * that child outright when it has not acknowledged within some 60 ms (a busy
 * moment on a loaded machine), so Ctrl-C there could lose "Stopping after
 * the batch in flight" and the batch's outcomes.
 */
const TOOL = ['scripts/run-built.mjs', 'scripts/cli.ts'];

/** Runs the real command-line tool against the test platform's database, with its secrets; stderr is a pipe, not a terminal. */
async function cli(extraEnv: Record<string, string>, ...args: string[]) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'test',
    MONGODB_URI: `${inject('mongoUri')}/${platform.models.User.db.name}`,
    DATA_DIR: workDir,
    TOKEN_KEY: platform.tokenKey.toString('hex'),
    SESSION_SECRET: platform.sessionSecret,
    PUBLIC_URL: 'http://survey.test',
    SEND_RATE_PER_SECOND: '1000',
    ...extraEnv,
  };
  delete env.SMTP_URL;
  Object.assign(env, extraEnv);
  try {
    const { stdout, stderr } = await run(process.execPath, [...TOOL, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** The tool as a process of its own, to be interrupted like Ctrl-C does; resolves its exit code and output. */
function startCli(extraEnv: Record<string, string>, ...args: string[]) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'test',
    MONGODB_URI: `${inject('mongoUri')}/${platform.models.User.db.name}`,
    DATA_DIR: workDir,
    TOKEN_KEY: platform.tokenKey.toString('hex'),
    SESSION_SECRET: platform.sessionSecret,
    PUBLIC_URL: 'http://survey.test',
    SEND_RATE_PER_SECOND: '1000',
    ...extraEnv,
  };
  const child = spawn(process.execPath, [...TOOL, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers: Array<() => void> = [];
  const notify = () => watchers.splice(0).forEach((w) => w());
  child.stdout.on('data', (chunk: Buffer) => ((stdout += chunk.toString()), notify()));
  child.stderr.on('data', (chunk: Buffer) => ((stderr += chunk.toString()), notify()));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return {
    child,
    exited,
    /** Resolves when stderr has printed a match; fails with the output if the tool exits first, instead of waiting for the test's guard. */
    async stderrMatches(pattern: RegExp) {
      let closed = false;
      void exited.then(() => ((closed = true), notify()));
      while (!pattern.test(stderr)) {
        if (closed) throw new Error(`the tool exited (code ${child.exitCode}) without printing ${pattern}:\n${stdout}\n${stderr}`);
        await new Promise<void>((resolve) => watchers.push(resolve));
      }
    },
  };
}

/** The invitations went out `days` ago: the reminder policy counts its days between rounds from then. */
async function invitationsSentDaysAgo(campaignId: Types.ObjectId, days: number) {
  await platform.models.ReminderRound.updateOne({ campaign: campaignId, round: 0 }, { $set: { startedAt: new Date(Date.now() - days * 86_400_000) } });
}

/**
 * An open campaign (by the real clock: the tool runs with it) and `count`
 * institutions with one contact each; the tool creates the personal links.
 */
async function campaignWithContacts(count: number): Promise<{ campaignId: Types.ObjectId; emails: string[] }> {
  const { models } = platform;
  const campaign = await models.Campaign.create({
    name: 'Command-line wave',
    strands: ['S1'],
    opensAt: new Date(Date.now() - 86_400_000),
    closesAt: new Date(Date.now() + 30 * 86_400_000),
  });
  const institutions = await models.Institution.insertMany(
    Array.from({ length: count }, (_, i) => ({ name: `Send School ${i}`, country: 'AT', type: 'ivet_school', key: institutionKey({ name: `Send School ${i}`, country: 'AT' }) })),
  );
  const contacts = await models.Contact.insertMany(institutions.map((institution, i) => ({ institution: institution._id, name: `Leader ${i}`, email: `leader${i}@send.example`, language: 'en' })));
  return { campaignId: campaign._id, emails: contacts.map((c) => c.email) };
}

/** The progress lines the tool printed on stderr (one every 5 % when stderr is not a terminal). */
function progressLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /^\[[#-]+\] \d+\/\d+ sent · \d+ failed · \d+ unknown/.test(line));
}

describe('campaign:send on the command line', () => {
  it('sends every invitation of a campaign exactly once with a progress bar, and a second run sends nothing new', async () => {
    const { campaignId, emails } = await campaignWithContacts(20);

    const first = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId));
    expect(first.stderr).not.toContain('failed:');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('20 personal links created (20 in all); 20 invitations queued (20 in all).');
    expect(first.stdout).toContain('Done: 20 sent, 0 skipped, 0 failed, 0 unknown, of 20.');
    const lines = progressLines(first.stderr);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toContain('0/20 sent');
    expect(lines.at(-1)).toMatch(/^\[#{30}\] 20\/20 sent · 0 failed · 0 unknown · \d+ msg\/s$/);

    const counts = sink.countsByRecipient();
    expect(sink.messages).toHaveLength(20);
    expect([...counts.keys()].sort()).toEqual([...emails].sort());
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    // Each message carries the contact's own personal link.
    const toLeader3 = sink.messages.find((m) => m.to[0] === 'leader3@send.example')!;
    expect(toLeader3.raw).toContain('Leader 3');
    expect(toLeader3.raw).toMatch(/http:\/\/survey\.test\/[^\s]+/);
    expect(
      await platform.models.AuditEntry.exists({ action: 'mail.send-invitations', target: `campaign:${campaignId}`, actor: /^command line/ }),
    ).not.toBeNull();

    const again = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId));
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('0 personal links created (20 in all); 0 invitations queued (20 in all).');
    expect(progressLines(again.stderr).at(-1)).toContain('20/20 sent');
    expect(sink.messages).toHaveLength(20);
  });

  /** The command's dependencies with a relay at the test sink, queueing 10 links a step, its lines printed to `printed`. */
  const queueingDeps = (printed: string[], overrides: Partial<CampaignSendDeps> = {}): CampaignSendDeps => ({
    models: platform.models,
    now: () => new Date(),
    tokenKey: platform.tokenKey,
    publicUrl: 'http://survey.test',
    print: (line) => printed.push(line),
    mail: { smtpUrl: sink.url, from: 'Survey <survey@test.example>', ratePerSecond: 1000, maxConnections: 2, maxAttempts: 3, leaseMs: 120_000, timeouts: DEFAULT_SMTP_TIMEOUTS },
    progress: { write: () => undefined, isTTY: false },
    queueStep: 10,
    ...overrides,
  });

  it('sends the first invitations while the rest are still being queued, and a run stopped in the middle of the queueing then run again mails every contact once', async () => {
    const { campaignId, emails } = await campaignWithContacts(30);
    const printed: string[] = [];
    const stop = new AbortController();
    const deps = (onQueued?: CampaignSendDeps['onQueued'], signal?: AbortSignal) => queueingDeps(printed, { stop: signal, onQueued });
    // The relay holds the first message it gets, and answers once the outbox has been looked at.
    sink.hold();
    const queuedWhenTheRelayHadOne = sink.heldMessages(1).then(async () => {
      const queued = await platform.models.Outbox.countDocuments({ campaign: campaignId });
      sink.release();
      return queued;
    });
    // The queueing's first step (10 links and their emails) waits until the relay has a message; then Ctrl-C.
    const code = await sendCampaign(
      deps(async (queued) => {
        if (queued !== 10) return;
        await queuedWhenTheRelayHadOne;
        stop.abort();
      }, stop.signal),
      campaignId,
      { actor: 'command line (test)' },
    );
    expect(await queuedWhenTheRelayHadOne).toBe(10);
    expect(code, printed.join('\n')).toBe(130);
    expect(sink.messages.length).toBeGreaterThan(0);
    expect(sink.messages.length).toBeLessThanOrEqual(10);
    expect(await platform.models.ReminderRound.countDocuments({ campaign: campaignId })).toBe(0);

    const again = await sendCampaign(deps(), campaignId, { actor: 'command line (test)' });
    expect(again, printed.join('\n')).toBe(0);
    const counts = sink.countsByRecipient();
    expect([...counts.keys()].sort()).toEqual([...emails].sort());
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(await platform.models.Outbox.countDocuments({ campaign: campaignId })).toBe(30);
    expect(await platform.models.ReminderRound.countDocuments({ campaign: campaignId, round: 0 })).toBe(1);
  });

  it('reads the contacts and institutions once while it queues and sends, and each window of links by _id', async () => {
    const { campaignId, emails } = await campaignWithContacts(30);
    // An earlier campaign's links, so that a read of links that is not by _id has more than this campaign's to go through.
    const earlier = await platform.models.Campaign.create({ name: 'Earlier wave', strands: ['S1'], opensAt: new Date(Date.now() - 86_400_000), closesAt: new Date(Date.now() + 30 * 86_400_000) });
    const contacts = await platform.models.Contact.find({}, { institution: 1, language: 1 }).lean();
    await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: 'http://survey.test' }, earlier._id, contacts);
    // The command's own connection, recording what it reads.
    const watched = await otherConnection(platform);
    const printed: string[] = [];
    // Steps of 10 links: several passes of the sender while the queueing goes on.
    const code = await sendCampaign(
      queueingDeps(printed, { models: watched.models }),
      campaignId,
      { actor: 'command line (test)' },
    );
    await watched.close();
    expect(code, printed.join('\n')).toBe(0);
    const counts = sink.countsByRecipient();
    expect([...counts.keys()].sort()).toEqual([...emails].sort());
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const whole = (collection: string) => watched.wholeReads.filter((c) => c === collection).length;
    // The audience, once: the sender's passes take the contacts and institutions from it.
    expect(whole('contacts')).toBe(1);
    expect(whole('institutions')).toBe(1);
    // The campaign's links once by campaign (which of its contacts have one); the sender reads each link it sends by _id.
    expect(watched.read.filter((c) => c === 'invitations').length).toBeGreaterThanOrEqual(30);
    expect(whole('invitations')).toBeLessThanOrEqual(2);
  });

  it("counts the round's progress from the campaign's email journal: while it waits for a retry, its passes read no email history by a filter", async () => {
    const { campaignId, emails } = await campaignWithContacts(30);
    // The relay asks for one address again later, twice: several passes of the command wait for its retries.
    sink.reply(emails[7]!, 451, '4.7.1 Try again later', 2);
    // A database's first pass on this version rebuilds the due view from every open campaign's emails, once: done here before.
    const earlier = senderFor(platform, sink.url);
    await sendDueMessages(earlier.deps, earlier.policy);
    earlier.close();
    const watched = await otherConnection(platform);
    const printed: string[] = [];
    const code = await sendCampaign(
      queueingDeps(printed, { models: watched.models, mail: { ...queueingDeps(printed).mail, maxAttempts: 4, backoffMs: 200 } }),
      campaignId,
      { actor: 'command line (test)' },
    );
    await watched.close();
    expect(code, printed.join('\n')).toBe(0);
    expect(printed).toContain('Done: 30 sent, 0 skipped, 0 failed, 0 unknown, of 30.');
    const counts = sink.countsByRecipient();
    expect([...counts.keys()].sort()).toEqual([...emails].sort());
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const whole = (collection: string) => watched.wholeReads.filter((c) => c === collection).length;
    // The round's emails, claims and outcomes read by a filter once at most (before anything is queued), however many passes.
    for (const collection of ['outbox', 'outbox_claims', 'outbox_outcomes']) expect(whole(collection), collection).toBeLessThanOrEqual(1);
  });

  it('a contact deactivated while the command queues gets no invitation, though the queueing read them as active', async () => {
    const { campaignId, emails } = await campaignWithContacts(30);
    const last = await platform.models.Contact.findOne({ email: 'leader29@send.example' }).lean();
    const printed: string[] = [];
    const code = await sendCampaign(
      queueingDeps(printed, {
        // After the first step, a coordinator deactivates the last contact, whose link comes in a later step.
        onQueued: async (queued) => {
          if (queued === 10) await setContactActive({ models: platform.models, now: () => new Date() }, last!._id, false, 'coordinator@test.example');
        },
      }),
      campaignId,
      { actor: 'command line (test)' },
    );
    expect(code, printed.join('\n')).toBe(0);
    expect(printed.join('\n')).toContain('Done: 29 sent, 1 skipped, 0 failed, 0 unknown, of 30.');
    const counts = sink.countsByRecipient();
    expect([...counts.keys()].sort()).toEqual(emails.filter((e) => e !== 'leader29@send.example').sort());
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });

  it('a refused recipient makes the run exit with 1 and names the address with the server reason', async () => {
    const { campaignId } = await campaignWithContacts(5);
    sink.reply('leader2@send.example', 550, 'No such mailbox here');

    const result = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId));
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('Done: 4 sent, 0 skipped, 1 failed, 0 unknown, of 5.');
    expect(result.stdout).toMatch(/failed {3}leader2@send\.example: .*No such mailbox here/);
    expect(progressLines(result.stderr).at(-1)).toContain('4/5 sent · 1 failed');
    expect(sink.messages).toHaveLength(4);
  });

  it('a relay that wants a login (530 at MAIL FROM) stops the run with exit 1 and the reason, suppresses no one, and the next run sends each invitation once', async () => {
    const { campaignId, emails } = await campaignWithContacts(6);
    sink.refuseSender(530, '5.7.0 Authentication required');
    const refused = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId));
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('Sending is paused: The mail server wants a login before it takes mail');
    expect(refused.stdout).toMatch(/530 5\.7\.0 Authentication required \(at MAIL FROM\)/);
    expect(refused.stdout).toContain('6 messages of the invitations wait; no address was suppressed.');
    expect(await platform.models.Suppression.countDocuments({ email: { $in: emails } })).toBe(0);
    expect(sink.messages).toHaveLength(0);

    sink.acceptSender();
    const fixed = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId));
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain('trying again now');
    expect(fixed.stdout).toContain('Done: 6 sent, 0 skipped, 0 failed, 0 unknown, of 6.');
    expect([...sink.countsByRecipient().values()]).toEqual(Array(6).fill(1));
  });

  it('--reminder-round shows a dry run first; --new-round 1 sends round 1 only to contacts who have not completed', async () => {
    const { campaignId } = await campaignWithContacts(3);
    expect((await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId))).code).toBe(0);
    // Right after the invitations, the dry run says from when round 1 can start, not a command the policy would refuse.
    const invitedAt = (await platform.models.ReminderRound.findOne({ campaign: campaignId, round: 0 }).lean())!.startedAt;
    const tooEarly = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round');
    expect(tooEarly.stdout).toContain(
      `Nothing was sent. Reminder round 1 can start from ${formatDateTime(new Date(invitedAt.getTime() + 7 * 86_400_000))} (the reminder policy leaves 7 days between rounds); then add --new-round 1.`,
    );
    await invitationsSentDaysAgo(campaignId, 8);
    const done = await platform.models.Contact.findOne({ email: 'leader1@send.example' }).lean();
    await platform.models.Invitation.updateOne({ campaign: campaignId, contact: done!._id }, { $set: { completedAt: new Date() } });

    const dryRun = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round');
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain('Dry run: the next reminder round would go to 2 contacts');
    expect(dryRun.stdout).not.toContain('leader1@send.example');
    expect(dryRun.stdout).toContain('Nothing was sent. Add --new-round 1 to start and send reminder round 1.');
    expect(sink.messages).toHaveLength(3);

    // --yes finishes a round in progress; it never starts one.
    const nothingToFinish = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round', '--yes');
    expect(nothingToFinish.code).toBe(1);
    expect(nothingToFinish.stdout).toContain('No reminder round has been started');
    expect(await platform.models.ReminderRound.countDocuments({ campaign: campaignId })).toBe(1);

    const result = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round', '--new-round', '1');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Reminder round 1 started: 2 contacts have not completed.');
    expect(result.stdout).toContain('Done (reminder round 1): 2 sent, 0 skipped, 0 failed, 0 unknown, of 2.');
    expect(progressLines(result.stderr).at(-1)).toContain('2/2 sent');
    expect(sink.messages).toHaveLength(5);
    expect(sink.countsByRecipient().get('leader1@send.example')).toBe(1);
    expect(await platform.models.AuditEntry.exists({ action: 'mail.send-round', target: `campaign:${campaignId}` })).not.toBeNull();
  });

  it('after Ctrl-C in the middle of a reminder round, running it again finishes that round and no contact gets a second reminder', async () => {
    const { campaignId, emails: all } = await campaignWithContacts(46);
    // A failure in the invitations (a mailbox the relay refuses) must not make a later reminder run fail.
    const refused = all.pop()!;
    sink.reply(refused, 550, 'No such mailbox here');
    const invited = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId));
    expect(invited.code).toBe(1);
    expect(invited.stdout).toContain('Done: 45 sent, 0 skipped, 1 failed, 0 unknown, of 46.');
    const emails = all;
    await invitationsSentDaysAgo(campaignId, 8);

    // The relay holds its answers; Ctrl-C comes while the first batch is in flight.
    sink.hold();
    const interrupted = startCli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round', '--new-round', '1');
    await Promise.race([
      sink.heldMessages(1),
      interrupted.exited.then(({ code, stdout, stderr }) => {
        throw new Error(`the tool exited (code ${code}) before its first message reached the relay:\n${stdout}\n${stderr}`);
      }),
    ]);
    interrupted.child.kill('SIGINT');
    await interrupted.stderrMatches(/Stopping after the batch in flight/);
    sink.release();
    const stopped = await interrupted.exited;
    expect(stopped.code, stopped.stdout + stopped.stderr).toBe(130);
    expect(stopped.stdout).toMatch(/Stopped after the batch in flight: \d+ messages of the reminder round 1 not sent yet\. Run campaign:send --campaign [0-9a-f]{24} --reminder-round --yes to finish/);
    const remindedBefore = sink.messages.length - 45;
    expect(remindedBefore).toBeGreaterThan(0);
    expect(remindedBefore).toBeLessThan(45);

    const dryRun = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round');
    expect(dryRun.stdout).toMatch(new RegExp(`Reminder round 1 is in progress: ${remindedBefore} sent, .* ${45 - remindedBefore} not sent yet, of 45\\.`));
    expect(dryRun.stdout).toContain('Add --yes to finish round 1.');

    const finished = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round', '--yes');
    expect(finished.code, finished.stdout).toBe(0);
    expect(finished.stdout).toContain('Reminder round 1 was started on');
    expect(finished.stdout).toContain('Done (reminder round 1): 45 sent, 0 skipped, 0 failed, 0 unknown, of 45.');

    // The starting command run once more is the same round: nothing new goes out.
    const again = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round', '--new-round', '1');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Done (reminder round 1): 45 sent');
    // Round 2 is refused within the policy's interval.
    const tooSoon = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round', '--new-round', '2');
    expect(tooSoon.code).toBe(1);
    expect(tooSoon.stdout).toMatch(/Reminder round 2 was not started: Reminder round 1 was started on .* the reminder policy leaves 7 days between rounds/);

    expect(await platform.models.ReminderRound.countDocuments({ campaign: campaignId })).toBe(2);
    const counts = sink.countsByRecipient();
    for (const email of emails) expect(counts.get(email), email).toBe(2);
  });

  it('without SMTP_URL it queues the invitations but leaves the sending to the platform, pointing to the sending page', async () => {
    const { campaignId } = await campaignWithContacts(3);

    const result = await cli({}, 'campaign:send', '--campaign', String(campaignId));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('3 invitations queued');
    expect(result.stdout).toContain('SMTP_URL is not set');
    expect(result.stdout).toContain(`http://survey.test/admin/campaigns/${campaignId}/sending`);
    expect(await platform.models.Outbox.countDocuments({ campaign: campaignId, kind: 'invitation' })).toBe(3);
    expect(await platform.models.OutboxClaim.countDocuments({ campaign: campaignId })).toBe(0);
    expect(sink.messages).toHaveLength(0);
  });

  it('in production, an http:// PUBLIC_URL is warned of when the tool sends (one-click unsubscribe needs https), not when it does not', async () => {
    const { campaignId } = await campaignWithContacts(1);
    const production = { NODE_ENV: 'production', INSTITUTION_TAG_KEY: 'a'.repeat(64), SMTP_URL: sink.url };
    const warning = 'Warning: PUBLIC_URL is http://: the one-click unsubscribe link of every email (RFC 8058) needs https';
    const sent = await cli(production, 'campaign:send', '--campaign', String(campaignId));
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stderr).toContain(warning);
    expect((await cli({ ...production, PUBLIC_URL: 'https://survey.test' }, 'campaign:send', '--campaign', String(campaignId))).stderr).not.toContain('PUBLIC_URL is http');
    expect((await cli(production, 'campaign:list')).stderr).not.toContain('PUBLIC_URL is http');
  });

  it('the help lists campaign:send, and a missing --campaign prints the usage with exit code 2', async () => {
    expect((await cli({}, '--help')).stdout).toContain('campaign:send --campaign <id> [--reminder-round [--yes | --new-round <n>]]');
    const missing = await cli({}, 'campaign:send');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('campaign:send needs --campaign <id>');
  });
});
