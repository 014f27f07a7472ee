import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { institutionKey } from '../../server/institutions/institution.model.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

const run = promisify(execFile);
let platform: TestPlatform;
let sink: SmtpSink;
const workDir = mkdtempSync(join(tmpdir(), 'vet-cli-audience-'));
beforeAll(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
  rmSync(workDir, { recursive: true, force: true });
});

async function cli(...args: string[]) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'test',
    MONGODB_URI: `${inject('mongoUri')}/${platform.models.User.db.name}`,
    DATA_DIR: workDir,
    TOKEN_KEY: platform.tokenKey.toString('hex'),
    SESSION_SECRET: platform.sessionSecret,
    PUBLIC_URL: 'http://survey.test',
    SMTP_URL: sink.url,
    SEND_RATE_PER_SECOND: '1000',
  };
  try {
    const { stdout, stderr } = await run(join('node_modules', '.bin', 'tsx'), ['scripts/cli.ts', ...args], { env, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function school(name: string, country: string, email: string, demo = false) {
  const institution = await platform.models.Institution.create({ name, country, type: 'ivet_school', key: institutionKey({ name, country }), demo });
  await platform.models.Contact.create({ institution: institution._id, name: `Head of ${name}`, email, demo });
}

describe('the command-line tool and the audience', () => {
  it('campaign:send invites and mails only the audience: one country, never demo contacts', async () => {
    await school('Linz college', 'AT', 'head@linz.example');
    await school('Graz college', 'AT', 'head@graz.example');
    await school('Bonn college', 'DE', 'head@bonn.example');
    await school('Demo Wien', 'AT', 'demo-9-1@demo.invalid', true);
    const campaign = await platform.models.Campaign.create({
      name: 'Austria by CLI',
      strands: ['S1'],
      opensAt: new Date(Date.now() - 86_400_000),
      closesAt: new Date(Date.now() + 30 * 86_400_000),
      audience: { countries: ['AT'] },
    });
    const result = await cli('campaign:send', '--campaign', String(campaign._id));
    expect(result.stderr).not.toContain('failed:');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Audience: active contacts in AT (Austria): 2 contacts (1 demo contacts left out), 0 with a personal link already.');
    expect(result.stdout).toContain('2 personal links created (2 in all); 2 invitations queued (2 in all).');
    expect([...sink.countsByRecipient().keys()].sort()).toEqual(['head@graz.example', 'head@linz.example']);
  });

  it('demo:remove lists the demo data and removes it only with --commit, audited', async () => {
    const preview = await cli('demo:remove');
    expect(preview.code).toBe(0);
    expect(preview.stdout).toContain('Demo data: 0 campaigns, 1 institutions, 1 contacts, 0 personal links, 0 responses, 0 emails.');
    expect(preview.stdout).toContain('  institution  Demo Wien (AT)');
    expect(preview.stdout).toContain('  contact      Head of Demo Wien <demo-9-1@demo.invalid>');
    expect(preview.stdout).toContain('Nothing was removed.');
    expect(await platform.models.Institution.countDocuments({ demo: true })).toBe(1);

    const commit = await cli('demo:remove', '--commit');
    expect(commit.code).toBe(0);
    expect(commit.stdout).toContain('Removed: 0 campaigns, 1 institutions, 1 contacts');
    expect(await platform.models.Institution.countDocuments({ demo: true })).toBe(0);
    expect(await platform.models.Institution.countDocuments({})).toBe(3);
    expect(await platform.models.AuditEntry.exists({ action: 'demo.remove', actor: /^command line/ })).not.toBeNull();
  });
});
