import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { connect } from '../../server/db/connection.ts';
import { defineModels, type Models } from '../../server/db/models.ts';
import { DEFAULT_RETENTION_MONTHS } from '../../server/privacy/privacy-notice.ts';
import { retentionDueAt } from '../../server/privacy/retention.service.ts';
import { dropTestDatabase } from '../helpers/test-platform.ts';

const run = promisify(execFile);
const INSTITUTIONS = '6';
const workDir = mkdtempSync(join(tmpdir(), 'vet-seed-'));
const tokenKey = randomBytes(32).toString('hex');
const databases: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const db of databases) await db.close();
  rmSync(workDir, { recursive: true, force: true });
});

async function database() {
  const name = `test_seed_${randomBytes(5).toString('hex')}`;
  const connection = await connect(`${inject('mongoUri')}/${name}`);
  databases.push({ close: async () => (await connection.close(), await dropTestDatabase(name)) });
  return { name, models: defineModels(connection) };
}

function env(dbName: string): NodeJS.ProcessEnv {
  return { ...process.env, NODE_ENV: 'test', MONGODB_URI: `${inject('mongoUri')}/${dbName}`, DATA_DIR: workDir, TOKEN_KEY: tokenKey, SESSION_SECRET: 'x'.repeat(40) };
}

async function seed(dbName: string) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/run-built.mjs', 'scripts/seed-demo.ts', '--institutions', INSTITUTIONS], { env: env(dbName), timeout: 300_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** The seeded data by content (ids differ between databases): institutions, contacts, links and every response's answers. */
async function snapshot(models: Models) {
  const campaigns = new Map((await models.Campaign.find({}).lean()).map((c) => [String(c._id), `${c.name}|${c.demo}|${c.opensAt.toISOString()}|${c.closedAt?.toISOString()}`]));
  const institutions = new Map((await models.Institution.find({}).lean()).map((i) => [String(i._id), `${i.name}|${i.country}|${i.type}|${i.demo}`]));
  const contacts = new Map((await models.Contact.find({}).lean()).map((c) => [String(c._id), `${c.email}|${c.language}|${c.demo}|${institutions.get(String(c.institution))}`]));
  const invitations = await models.Invitation.find({}).lean();
  const responses = new Map((await models.Response.find({}).lean()).map((r) => [String(r._id), r]));
  const revisions = await models.ResponseRevision.countDocuments({});
  // What the respondent path writes beside each response: its completion mark and, with free text, the quotes' copy.
  const completions = await models.Completion.countDocuments({});
  const copies = await models.QuoteText.countDocuments({});
  const rows = invitations
    .map((inv) => {
      const response = responses.get(String(inv._id));
      const answers = response ? JSON.stringify({ data: response.data, profile: response.profile, at: response.submittedAt, items: response.items.length }) : 'no response';
      return `${campaigns.get(String(inv.campaign))}|${contacts.get(String(inv.contact))}|${inv.completedAt?.toISOString()}|${answers}`;
    })
    .sort();
  return { campaigns: [...campaigns.values()].sort(), institutions: [...institutions.values()].sort(), contacts: [...contacts.values()].sort(), rows, responses: responses.size, revisions, completions, copies };
}

describe('npm run seed:demo', () => {
  it('run twice gives the same data, and a run killed half-way then run again gives the same data too', async () => {
    const a = await database();
    const first = await seed(a.name);
    expect(first.stderr).not.toContain('refused by the validator');
    expect(first.code).toBe(0);
    // The progress bar on stderr, and a summary.
    expect(first.stderr).toMatch(/^\[#{30}\] 6\/6 institutions · \d+ responses$/m);
    expect(first.stdout).toMatch(/6 demo institutions in 15 countries, 24 contacts, 2 waves .*: (\d+) responses, \1 added by this run\./);
    const once = await snapshot(a.models);
    expect(once.campaigns).toEqual([
      'Demo wave 2024 (synthetic data)|true|2024-03-01T00:00:00.000Z|2024-06-01T00:00:00.000Z',
      'Demo wave 2025 (synthetic data)|true|2025-03-01T00:00:00.000Z|2025-06-01T00:00:00.000Z',
    ]);
    // Its waves closed long ago: their retention runs from the day they were seeded, so a running platform does not purge them at once.
    for (const campaign of await a.models.Campaign.find({}).lean()) {
      expect(retentionDueAt(campaign).getTime(), campaign.name).toBeGreaterThan(Date.now() + (DEFAULT_RETENTION_MONTHS - 1) * 30 * 86_400_000);
    }
    expect(once.institutions.every((i) => i.endsWith('|true'))).toBe(true);
    expect(once.rows).toHaveLength(48);
    expect(once.responses).toBeGreaterThan(24);
    expect(once.revisions).toBe(once.responses);
    expect(once.completions).toBe(once.responses);
    expect(once.copies).toBeGreaterThan(0);

    const second = await seed(a.name);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`${once.responses} responses, 0 added by this run.`);
    expect(await snapshot(a.models)).toEqual(once);

    // Interrupted: killed as soon as the progress shows 3 of 6 institutions, then run again on the same database.
    const b = await database();
    // node with tsx's loader, not the tsx launcher: the kill must reach the process that writes.
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/seed-demo.ts', '--institutions', INSTITUTIONS], { env: env(b.name), stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for await (const line of createInterface({ input: child.stderr! })) {
      if (/\] 3\/6 institutions/.test(line)) {
        child.kill('SIGKILL');
        break;
      }
    }
    await exited;
    const partial = await snapshot(b.models);
    expect(partial.institutions.length).toBeGreaterThanOrEqual(3);
    expect(partial.institutions.length).toBeLessThan(6);
    const resumed = await seed(b.name);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`${once.responses} responses, [1-9]\\d* added by this run\\.`));
    expect(await snapshot(b.models)).toEqual(once);
  }, 500_000);
});
