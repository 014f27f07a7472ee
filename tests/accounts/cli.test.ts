import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { personalLink } from '../../server/invitations/invitation.service.ts';
import { csrfOf } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

const run = promisify(execFile);
let platform: TestPlatform;
let workDir: string;

beforeAll(async () => {
  platform = await startTestPlatform();
  workDir = mkdtempSync(join(tmpdir(), 'vet-cli-'));
});
afterAll(async () => {
  await platform.close();
  rmSync(workDir, { recursive: true, force: true });
});

/** Runs the real command-line tool against the test platform's database, with its secrets. */
async function cli(...args: string[]) {
  return cliWith({}, ...args);
}

function envWith(extraEnv: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'test',
    MONGODB_URI: `${inject('mongoUri')}/${platform.models.User.db.name}`,
    DATA_DIR: workDir,
    TOKEN_KEY: platform.tokenKey.toString('hex'),
    SESSION_SECRET: platform.sessionSecret,
    ...extraEnv,
  };
}

/** The tool as `npm run cli` starts it: one node process running the build of scripts/cli.ts (no tsx launcher in between). */
const TOOL = ['scripts/run-built.mjs', 'scripts/cli.ts'];

async function cliWith(extraEnv: Record<string, string>, ...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [...TOOL, ...args], { env: envWith(extraEnv) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('the command-line tool', () => {
  it('adds a coordinator with a generated password that signs in on the web, then disables them', async () => {
    const added = await cli('users:add', '--email', 'Cli.Admin@board.example', '--name', 'Cli Admin', '--role', 'coordinator');
    expect(added.code).toBe(0);
    const password = /Password \(shown only this once\): (\S+)/.exec(added.stdout)?.[1];
    expect(password).toBeDefined();
    const agent = request.agent(platform.app);
    const csrf = csrfOf((await agent.get('/login')).text);
    await agent.post('/login').type('form').send({ email: 'cli.admin@board.example', password, _csrf: csrf }).expect(303);
    // Whoever ran the tool knows this password: it opens only the page where the user sets their own.
    expect(added.stdout).toContain('At the first sign-in they must set their own password.');
    expect((await agent.get('/admin').set('Accept', 'text/html')).headers.location).toBe('/admin/password');
    expect(await platform.models.AuditEntry.exists({ action: 'user.add', target: 'cli.admin@board.example', actor: /^command line/ })).not.toBeNull();

    expect((await cli('users:add', '--email', 'cli.admin@board.example', '--name', 'Again', '--role', 'reviewer')).stderr).toContain('already exists');
    const disabled = await cli('users:disable', '--email', 'cli.admin@board.example');
    expect(disabled.code).toBe(0);
    expect((await platform.models.User.findOne({ email: 'cli.admin@board.example' }).lean())?.disabledAt).toBeInstanceOf(Date);
  });

  it('enables a disabled user again', async () => {
    await platform.models.User.create({ name: 'Off User', email: 'off@board.example', role: 'reviewer', passwordHash: 'x', disabledAt: new Date() });
    const enabled = await cli('users:enable', '--email', 'off@board.example');
    expect(enabled.stdout).toContain('off@board.example is enabled again.');
    expect((await platform.models.User.findOne({ email: 'off@board.example' }).lean())?.disabledAt).toBeUndefined();
    expect(await platform.models.AuditEntry.exists({ action: 'user.enable', target: 'off@board.example', actor: /^command line/ })).not.toBeNull();
  });

  it('imports a file only with --commit, reports rejected rows, and invites a campaign with links that open', async () => {
    const file = join(workDir, 'contacts.csv');
    writeFileSync(file, 'institution_name,country,institution_type,erasmus_id,contact_name,email,language\nCli School,PT,ivet_school,,Rui Costa,rui@cli.example,en\nBad,XX,ivet_school,,N,n@cli.example,en\n');
    const preview = await cli('import', '--file', file);
    expect(preview.stdout).toContain('Preview: 1 to create, 0 to update, 0 unchanged, 1 rejected.');
    expect(preview.stdout).toContain('row 3 rejected: country "XX"');
    expect(await platform.models.Contact.countDocuments()).toBe(0);
    const committed = await cli('import', '--file', file, '--commit');
    expect(committed.stdout).toContain('Imported: 1 to create');
    expect(await platform.models.Contact.countDocuments({ email: 'rui@cli.example' })).toBe(1);

    const campaign = await platform.models.Campaign.create({
      name: 'CLI wave',
      strands: ['S1'],
      opensAt: new Date(platform.clock.current.getTime() - 86_400_000),
      closesAt: new Date(platform.clock.current.getTime() + 30 * 86_400_000),
    });
    const invited = await cli('campaign:invite', '--campaign', String(campaign._id));
    expect(invited.stdout).toContain('1 personal links created; the campaign has 1.');
    const invitation = await platform.models.Invitation.findOne({ campaign: campaign._id }).lean();
    const link = personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitation!);
    expect((await request(platform.app).get(link)).status).toBe(200);

    // Run with another token key (e.g. another DATA_DIR), the tool refuses to make links that would not open.
    const otherKey = await cliWith({ TOKEN_KEY: 'ab'.repeat(32) }, 'campaign:invite', '--campaign', String(campaign._id));
    expect(otherKey.code).toBe(2);
    expect(otherKey.stderr).toContain('The token key differs');
  });

  it('a long report printed to a pipe that is read slowly arrives whole, to its last line', async () => {
    // 1 row to create and 4,000 rejected: some 300 KB of report, far more than a pipe holds at once.
    const rows = ['Slow Reader School,PT,ivet_school,,Ana Lima,ana@slow.example,en'];
    for (let i = 0; i < 4000; i++) rows.push(`Bad ${i},XX,ivet_school,,N ${i},bad${i}@slow.example,en`);
    const file = join(workDir, 'long-report.csv');
    writeFileSync(file, `institution_name,country,institution_type,erasmus_id,contact_name,email,language\n${rows.join('\n')}\n`);

    const child = spawn(process.execPath, [...TOOL, 'import', '--file', file], { env: envWith({}), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const stdout = await readSlowly(child.stdout);
    expect(await exited, stderr).toBe(0);
    expect(stdout.split('\n').filter((line) => /^  row \d+ rejected: country "XX"/.test(line))).toHaveLength(4000);
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('Nothing was written. Run again with --commit to import.');
  });

  it('an unknown command or a missing option prints the usage and exits with 2', async () => {
    const unknown = await cli('users:remove');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown command: users:remove');
    expect(unknown.stderr).toContain('Usage: npm run cli');
    expect((await cli('campaign:invite')).code).toBe(2);
  });
});

/**
 * Reads a stream 4 KB at a time with a pause after each, as a slow program at
 * the end of a pipe does. A 'readable' listener stays on throughout: without
 * one, Node resumes a child's unread output when the child exits and drops it.
 */
async function readSlowly(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  const signals: Array<() => void> = [];
  const signal = () => signals.splice(0).forEach((resolve) => resolve());
  stream.on('readable', signal);
  stream.on('end', signal);
  while (!stream.readableEnded) {
    const chunk = (stream.read(4096) ?? stream.read()) as Buffer | null;
    if (chunk) {
      chunks.push(chunk);
      await sleep(10);
    } else if (!stream.readableEnded) {
      await new Promise<void>((resolve) => signals.push(resolve));
    }
  }
  return Buffer.concat(chunks).toString();
}
