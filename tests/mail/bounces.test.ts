import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { createCampaignWithContacts, drainOutbox, senderFor, statusesOf } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

const run = promisify(execFile);
let platform: TestPlatform;
let sink: SmtpSink;
let workDir: string;

beforeAll(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink();
  workDir = mkdtempSync(join(tmpdir(), 'vet-bounces-'));
});
afterAll(async () => {
  await sink.close();
  await platform.close();
  rmSync(workDir, { recursive: true, force: true });
});

/** The real command-line tool on the test platform's database. */
async function cli(...args: string[]) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'test',
    MONGODB_URI: `${inject('mongoUri')}/${platform.models.User.db.name}`,
    DATA_DIR: workDir,
    TOKEN_KEY: platform.tokenKey.toString('hex'),
    SESSION_SECRET: platform.sessionSecret,
    PUBLIC_URL: 'http://survey.test',
  };
  delete env.SMTP_URL;
  try {
    const { stdout } = await run(join('node_modules', '.bin', 'tsx'), ['scripts/cli.ts', ...args], { env });
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: `${failed.stdout}${failed.stderr}` };
  }
}

describe('recording bounces (mail:bounces)', { timeout: 180_000 }, () => {
  it('previews without writing, then suppresses the bounced contacts with reason "bounce" (audited), and they are mailed no more', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    const [bounced, other] = [emails[0]!, emails[1]!];
    // A relay's report pasted whole: the address in mixed case, twice, beside one of no contact.
    const file = join(workDir, 'bounces.txt');
    writeFileSync(file, `Delivery to the following recipient failed permanently:\n  ${bounced.toUpperCase()}\nFinal-Recipient: rfc822; ${bounced}\nstranger@elsewhere.example\n`);

    const preview = await cli('mail:bounces', '--file', file);
    expect(preview.code).toBe(0);
    expect(preview.stdout).toContain('Preview: 1 address to suppress (reason "bounce"), 0 addresses already suppressed, 1 address of no contact (left out).');
    expect(preview.stdout).toContain(bounced);
    expect(await platform.models.Suppression.exists({ email: bounced })).toBeNull();

    const recorded = await cli('mail:bounces', '--file', file, '--commit');
    expect(recorded.code).toBe(0);
    expect(recorded.stdout).toContain('Recorded: 1 address suppressed');
    expect(await platform.models.Suppression.findOne({ email: bounced }).lean()).toMatchObject({ reason: 'bounce' });
    expect(await platform.models.Suppression.exists({ email: 'stranger@elsewhere.example' })).toBeNull();
    const audit = await platform.models.AuditEntry.findOne({ action: 'mail.bounces' }).lean();
    expect(JSON.parse(String(audit?.details))).toMatchObject({ added: 1, notContacts: 1 });
    // Again: the address keeps its entry, nothing is added.
    expect((await cli('mail:bounces', '--file', file, '--commit')).stdout).toContain('Recorded: 0 addresses suppressed (reason "bounce"), 1 address already suppressed');

    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, close } = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(deps, policy));
    close();
    const received = sink.countsByRecipient();
    expect(received.get(bounced)).toBeUndefined();
    expect(received.get(other)).toBe(1);
    // A suppressed address gets no invitation queued at all.
    const statuses = await statusesOf(platform.models, campaignId);
    expect(statuses.map((s) => s.message.to).sort()).toEqual(emails.filter((e) => e !== bounced).sort());
  });
});
