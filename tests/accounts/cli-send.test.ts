import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Types } from 'mongoose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { institutionKey } from '../../server/institutions/institution.model.ts';
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
    const { stdout, stderr } = await run(join('node_modules', '.bin', 'tsx'), ['scripts/cli.ts', ...args], { env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
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

  it('--reminder-round shows a dry run first; with --yes it sends the next round only to contacts who have not completed', async () => {
    const { campaignId } = await campaignWithContacts(3);
    expect((await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId))).code).toBe(0);
    const done = await platform.models.Contact.findOne({ email: 'leader1@send.example' }).lean();
    await platform.models.Invitation.updateOne({ campaign: campaignId, contact: done!._id }, { $set: { completedAt: new Date() } });

    const dryRun = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round');
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain('Dry run: the next reminder round would go to 2 contacts');
    expect(dryRun.stdout).not.toContain('leader1@send.example');
    expect(dryRun.stdout).toContain('Nothing was sent');
    expect(sink.messages).toHaveLength(3);

    const result = await cli({ SMTP_URL: sink.url }, 'campaign:send', '--campaign', String(campaignId), '--reminder-round', '--yes');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Reminder round 1 started: 2 contacts have not completed.');
    expect(progressLines(result.stderr).at(-1)).toContain('2/2 sent');
    expect(sink.messages).toHaveLength(5);
    expect(sink.countsByRecipient().get('leader1@send.example')).toBe(1);
    expect(await platform.models.AuditEntry.exists({ action: 'mail.send-round', target: `campaign:${campaignId}` })).not.toBeNull();
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

  it('the help lists campaign:send, and a missing --campaign prints the usage with exit code 2', async () => {
    expect((await cli({}, '--help')).stdout).toContain('campaign:send --campaign <id> [--reminder-round [--yes]]');
    const missing = await cli({}, 'campaign:send');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('campaign:send needs --campaign <id>');
  });
});
